"""Security, end to end, with real processes and servers on 127.0.0.1.

One hostile world (module fixture): a local site serves an OCDS package and an RSS feed whose
titles and buyer names carry CR/LF, header-looking text, encoded-word tricks, NUL, Unicode
line separators, markup and very long lines; `crawl` and `match` store and match them; the
digests go through `tendermatch run` (the worker) to an SMTP server that refuses the login,
through `digest --send` to a port where nothing listens, then to an SMTP server that requires
AUTH; `tendermatch serve` serves the store. TENDERMATCH_SECRET and the SMTP password are
unique canaries. On it this file proves:

1. crawled text never adds a header or a recipient to a digest, and is escaped in its HTML;
2. an unsubscribe token cannot be forged, spliced, truncated or re-cased into another
   address's (over HTTP and with `tendermatch unsubscribe`); a replay records once;
3. the secret and the SMTP password (or their base64 forms) are in no output, log or store;
5. the web view writes nothing, whatever the method, endpoint or SQL.

And, on a crawl of its own: 4. sources and redirects never leave http(s): non-http URLs are
refused at config load, redirects and links to file:, ftp:, data:, gopher: are never
fetched, the refusal is recorded with the URL, and /etc/passwd never reaches the store.
"""

from __future__ import annotations

import base64
import email
import email.policy
import hashlib
import json
import re
import sqlite3
import urllib.error
import urllib.parse
import urllib.request
from contextlib import closing
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from markupsafe import escape

from tendermatch.notifier.digest import NAME_CHARS, TITLE_CHARS, shorten
from tendermatch.notifier.tokens import make_token
from tendermatch.store import Store, decompress
from tendermatch.web.queries import CANNED_QUERIES
from tests import configs
from tests.conftest import SAMPLE, run_cli
from tests.crawler.servers import LocalServer, StaticSite
from tests.notifier.smtp_server import Received, RecordingHandler, SmtpServer, free_port
from tests.reliability.helpers import Trap
from tests.web.served import ServeProcess, parse_message, unsubscribe_url
from tests.worker.worker_process import RunningWorker

# -- the canaries ---------------------------------------------------------------------------------

SECRET = "tm-secret-CANARY-7f3a9c1e5b2d4068a1c3e5f7092b4d6e"
PASSWORD = "smtp-password-CANARY-d41e8a2c6b0f9e7d3a5c1b8f06e2d4a9"
SMTP_USER = "digest-sender"
USER_ENV, PASSWORD_ENV = "TM_SEC_SMTP_USER", "TM_SEC_SMTP_PASSWORD"
ENV = {"TENDERMATCH_SECRET": SECRET, USER_ENV: SMTP_USER, PASSWORD_ENV: PASSWORD}
SENDER = "Udbudsvagten <udbud@kk.example>"

# -- the hostile notices: marker -> (title, buyer name) ----------------------------------------------
# Each notice carries its marker word in its description; profile p-<marker> excludes every
# other marker, so each digest's top (and only) item is one hostile notice.

OCDS_NOTICES = {
    "zqa": ("Kantinedrift\r\nBcc: victim@evil.example", "Holbæk Kommune\r\nBcc: buyer@evil.example"),
    "zqb": ("Kantinedrift\r\nSubject: injected\r\n\r\n<b>a body</b>", "Kommune\r\n\r\nX-Injected: yes"),
    # Looks like an RFC 2047 encoded word for "\r\nBcc: ...": must reach the reader literally.
    "zqc": ("Kantinedrift =?utf-8?q?=0D=0ABcc:_ew@evil.example?=", "=?utf-8?b?DQpCY2M6IGV3MkBldmlsLmV4YW1wbGU=?="),
    "zqd": ("Kantinedrift\x00Bcc: nul@evil.example", "Kommune\x00\r\nCc: nul2@evil.example"),
    "zqe": ("Kantinedrift\u2028Bcc: ls@evil.example\u2029Cc: ps@evil.example\x85To: nel@evil.example",
            "Kommune\u2028Reply-To: ls2@evil.example\x0bCc: vt@evil.example\x0c"),
    # Bare CR, bare LF, and an HTML character reference to CR LF (OCDS text is unescaped).
    "zqf": ("Kantinedrift\rTo: cr@evil.example\nCc: lf@evil.example &#13;&#10;Bcc: ref@evil.example",
            "Kommune\rTo: cr2@evil.example"),
    "zqg": ("Kantinedrift " + "x" * 5000, "B" * 3000),  # far over any line limit, no space to fold at
    "zqh": ("Kantinedrift <script>alert(1)</script> <img src=x onerror=alert(2)>",
            "<b>Kommune</b> & \"quoted\" 'single'"),
}
# XML character references carry CR, LF and U+2028 through the feed parser.
FEED_NOTICES = {
    "zqi": ("Kantinedrift&#13;&#10;Bcc: feed@evil.example&#8232;Cc: feedls@evil.example",
            "Roskilde Kommune&#13;&#10;Reply-To: feed2@evil.example", "javascript:alert(document.cookie)"),
    "zqj": ("Kantinedrift &lt;script&gt;alert(3)&lt;/script&gt;&#x0D;To: feedcr@evil.example",
            "&lt;i&gt;Kommune&lt;/i&gt;", "file:///etc/passwd"),
}
MARKERS = [*OCDS_NOTICES, *FEED_NOTICES]
# The AUTH servers run without TLS on purpose (loopback); aiosmtpd warns about that.
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")]

HEADERS = ["From", "To", "Subject", "Date", "Message-ID", "Content-Language", "List-Unsubscribe",
           "List-Unsubscribe-Post", "Auto-Submitted", "MIME-Version", "Content-Type"]
INJECTED = re.compile(r"^(bcc|cc|to|subject|reply-to|x-injected|from)\s*:", re.IGNORECASE)


def addresses(marker: str) -> tuple[str, str]:
    return f"{marker}@one.example", f"{marker}@two.example"


def write_hostile_site(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    deadline = date.today() + timedelta(days=40)
    releases = [{
        "ocid": f"ocds-sec-{marker}", "id": f"{marker}-1", "date": f"{date.today().isoformat()}T08:00:00Z",
        "tag": ["tender"], "language": "da",
        "buyer": {"id": "buyer", "name": buyer}, "parties": [{"id": "buyer", "name": buyer, "roles": ["buyer"]}],
        "tender": {"id": marker, "title": title, "description": f"Drift af kantinen. Opgave {marker}.",
                   "status": "active", "classification": {"scheme": "CPV", "id": "55512000"},
                   "items": [{"id": "1", "classification": {"scheme": "CPV", "id": "55512000"}}],
                   "tenderPeriod": {"endDate": f"{deadline.isoformat()}T12:00:00Z"}},
    } for marker, (title, buyer) in OCDS_NOTICES.items()]
    (folder / "ocds.json").write_text(json.dumps({"uri": "http://127.0.0.1/ocds.json", "version": "1.1",
                                                  "publishedDate": "2026-01-01T00:00:00Z", "releases": releases}),
                                      encoding="utf-8")
    items = "".join(
        f"<item><title>{title}</title><link>{link}</link><guid>{link}</guid><dc:creator>{buyer}</dc:creator>"
        f"<description>&lt;p&gt;Drift af kantinen. Opgave {marker}.&lt;/p&gt;&lt;p&gt;Tilbudsfrist:"
        f" {deadline.strftime('%d.%m.%Y')} kl. 12:00&lt;/p&gt;&lt;p&gt;CPV: 55512000-8&lt;/p&gt;</description></item>"
        for marker, (title, buyer, link) in FEED_NOTICES.items())
    (folder / "feed.xml").write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/">'
        f"<channel><title>Udbud</title><link>http://127.0.0.1/</link>{items}</channel></rss>\n", encoding="utf-8")


def write_profiles(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for number, marker in enumerate(MARKERS):
        others = [other for other in MARKERS if other != marker]
        (folder / f"p-{marker}.toml").write_text(
            f'id = "p-{marker}"\nname = "Profil {marker}"\nemails = {json.dumps(list(addresses(marker)))}\n'
            f'language = "{"en" if number % 2 else "da"}"\nkeywords = ["kantinedrift"]\n'
            f"exclude = {json.dumps(others)}\ncpv = [\"55500000\"]\n", encoding="utf-8")


def write_hostile_config(path: Path, *, site_url: str, smtp_port: int, serve_port: int, schedule: str | None = None,
                         worker: dict | None = None) -> Path:
    return configs.write_config(
        path.parent, name=path.name, matcher={"profiles": "profiles"}, worker=worker,
        digest={"sender": SENDER, "base_url": f"http://127.0.0.1:{serve_port}", "schedule": schedule},
        smtp=configs.smtp_section(smtp_port, timeout=10, username_env=USER_ENV, password_env=PASSWORD_ENV),
        serve={"port": serve_port, "datasette_without_login": True},
        sources=[{"name": "hostile-ocds", "kind": "ocds", "url": f"{site_url}/ocds.json"},
                 {"name": "hostile-feed", "kind": "feed", "url": f"{site_url}/feed.xml"}])


class AuthSmtpServer(SmtpServer):
    """The recording SMTP server, but one that requires AUTH (without TLS, on loopback) and
    accepts only ``password`` (None: refuses every login). ``logins`` keeps what it was sent."""

    def __init__(self, *, password: str | None):
        self.handler = RecordingHandler()
        self.port = free_port()
        self.password = password
        self.logins: list[tuple[str, bytes, bytes]] = []
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, ready_timeout=10,
                                     authenticator=self._check, auth_required=True, auth_require_tls=False)
        self.controller.start()

    def _check(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        self.logins.append((mechanism, auth_data.login, auth_data.password))
        ok = self.password is not None and auth_data.password == self.password.encode()
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535


@dataclass
class World:
    folder: Path
    config: Path
    serve: ServeProcess
    good: AuthSmtpServer
    refusing: AuthSmtpServer
    messages: list[Received]
    notices: dict[str, dict]  # the stored records by id, as `tenders --format json` lists them
    outputs: dict[str, str] = field(default_factory=dict)  # every process output and log, by what made it

    @property
    def store(self) -> Path:
        return self.folder / "store.db"

    @property
    def url(self) -> str:
        return self.serve.url


def cli(world_outputs: dict[str, str], name: str, config: Path, *args: str, expect: int | None = 0):
    result = run_cli("--config", str(config), *args, env=ENV, timeout=120)
    world_outputs[name] = result.stdout + result.stderr
    if expect is not None:
        assert result.returncode == expect, f"{name}: exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile-world")
    write_hostile_site(folder / "site")
    write_profiles(folder / "profiles")
    site = StaticSite(folder / "site", robots="User-agent: *\nDisallow:\n")
    good, refusing = AuthSmtpServer(password=PASSWORD), AuthSmtpServer(password=None)
    down_port, serve_port = free_port(), free_port()
    outputs: dict[str, str] = {}
    serve = None
    try:
        config = write_hostile_config(folder / "tendermatch.toml", site_url=site.url, smtp_port=good.port,
                                      serve_port=serve_port)
        refused_config = write_hostile_config(folder / "refused.toml", site_url=site.url, smtp_port=refusing.port,
                                              serve_port=serve_port, schedule="*/2 * * * * *",
                                              worker={"watch": 0, "stop_grace": 2})
        down_config = write_hostile_config(folder / "down.toml", site_url=site.url, smtp_port=down_port,
                                           serve_port=serve_port)
        cli(outputs, "crawl", config, "crawl")
        cli(outputs, "match", config, "match")
        # The digests are planned, then offered to a server that refuses the login: by the CLI,
        # by the worker, then to a port where nothing listens; all stay pending until the last run.
        refused = cli(outputs, "digest to a refusing server", refused_config, "digest", "--send", expect=1)
        assert "login refused" in refused.stdout + refused.stderr, refused.stdout + refused.stderr
        tried = len(refusing.logins)
        worker = RunningWorker(refused_config, "--log-file", str(folder / "worker-file.log"), env=ENV)
        try:
            worker.wait_for(r"digest \d{4}-W\d\d: .*left pending|digest failed", timeout=60)
            cli(outputs, "status while the worker runs", refused_config, "status")
        finally:
            assert worker.stop() == 0
        outputs["worker stderr"] = worker.log()
        outputs["worker log file"] = (folder / "worker-file.log").read_text(encoding="utf-8")
        assert len(refusing.logins) > tried, "the worker never tried to log in: its refused-login path was not run"
        cli(outputs, "digest to a closed port", down_config, "digest", "--send", expect=1)
        cli(outputs, "digest", config, "digest", "--send")
        messages = good.handler.wait_for(2 * len(MARKERS), timeout=30)
        for name, args in {"status": ("status", "--format", "json"), "runs": ("runs", "--limit", "100"),
                           "runs json": ("runs", "--format", "json"), "sources": ("sources",),
                           "deliveries": ("deliveries", "--format", "json")}.items():
            cli(outputs, name, config, *args)
        listed = cli(outputs, "tenders", config, "tenders", "--format", "json")
        notices = {record["id"]: record for record in json.loads(listed.stdout)}
        serve = ServeProcess(config, serve_port, env=ENV).start()
        yield World(folder=folder, config=config, serve=serve, good=good, refusing=refusing, messages=messages,
                    notices=notices, outputs=outputs)
    finally:
        if serve is not None:
            serve.stop()
        good.stop()
        refusing.stop()
        site.close()


# -- 1. header injection -----------------------------------------------------------------------------


def notice_of(world: World, marker: str) -> dict:
    [record] = [r for r in world.notices.values() if f"Opgave {marker}" in (r.get("description") or "")]
    return record


def test_every_profile_got_its_hostile_notice_as_the_top_item(world):
    # Guards the tests below: each hostile title really is the one in a Subject.
    assert len(world.messages) == 2 * len(MARKERS)
    for marker in MARKERS:
        stored = notice_of(world, marker)
        assert stored["title"].startswith("Kantinedrift"), stored["title"]
        for address in addresses(marker):
            [received] = [m for m in world.messages if m.rcpt_tos == (address,)]
            subject = str(parse_message(received.raw)["Subject"])
            assert stored["title"][:40] in subject, (marker, subject)


@pytest.mark.parametrize("marker", MARKERS)
def test_crawled_text_adds_no_header_no_recipient_and_no_line(world, marker):
    stored = notice_of(world, marker)
    expected = set(addresses(marker))
    mine = [m for m in world.messages if set(m.rcpt_tos) & expected]
    assert sorted(m.rcpt_tos for m in mine) == sorted((address,) for address in expected)  # one each, no one else
    for received in mine:
        assert received.mail_from == "udbud@kk.example"
        head = received.raw.partition(b"\r\n\r\n")[0]
        head.decode("ascii")  # raw headers are 7-bit: anything else went through an encoder
        lines = received.raw.split(b"\r\n")
        assert max(len(line) for line in lines) <= 998, "a line over RFC 5322's limit"
        assert b"\r" not in b"".join(lines) and b"\n" not in b"".join(lines), "a bare CR or LF in the message"
        unfolded = re.sub(rb"\r\n[ \t]", b" ", head).split(b"\r\n")
        assert [line.split(b":", 1)[0].decode() for line in unfolded] == HEADERS, unfolded

        message = email.message_from_bytes(received.raw, policy=email.policy.default)
        assert not message.defects
        for name in ("Subject", "To", "From"):
            assert len(message.get_all(name)) == 1, name
        assert str(message["To"]) == received.rcpt_tos[0]
        assert message["Bcc"] is None and message["Cc"] is None and message["Reply-To"] is None
        subject = str(message["Subject"])
        assert not re.search(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]", subject), repr(subject)
        if marker == "zqc":  # the encoded-word look-alike is shown as typed, not decoded into a header
            assert "=?utf-8?q?=0D=0ABcc:_ew@evil.example?=" in subject

        text = message.get_body(preferencelist=("plain",)).get_content().replace("\r\n", "\n")
        html = message.get_body(preferencelist=("html",)).get_content()
        for part in (message.get_body(preferencelist=("plain",)), message.get_body(preferencelist=("html",))):
            assert not part.defects
        text_lines = text.split("\n")
        assert not [line for line in text_lines if INJECTED.match(line.strip())], text
        assert not re.search(r"[\x00\r\x0b\x0c\x85\u2028\u2029]", text)
        # As the digest shows them: a field over its bound (zqg's 5,000 characters) is cut with "…".
        title = shorten(stored["title"], TITLE_CHARS)
        assert any(title in line for line in text_lines), "the title is not whole on one line"
        buyer = (stored.get("buyer") or {}).get("name")
        buyer = buyer and shorten(buyer, NAME_CHARS)
        if buyer:
            assert any(buyer in line for line in text_lines), "the buyer is not whole on one line"

        # The HTML shows the crawled text, escaped: no markup of its own, no link but http(s).
        assert str(escape(title)) in html
        if buyer:
            assert str(escape(buyer)) in html
        assert not re.search(r"<\s*(script|img|b|i)\b", html, re.IGNORECASE), html
        hrefs = re.findall(r'href="([^"]*)"', html)
        assert hrefs and all(href.startswith(("http://", "https://", "mailto:")) for href in hrefs), hrefs
        assert "javascript:" not in text and "file:" not in text
        for injected in re.findall(r"[\w.]+@evil\.example", stored["title"] + (buyer or "")):
            assert injected not in str(message["To"]) + str(message["From"])


# -- 2. unsubscribe tokens ---------------------------------------------------------------------------

B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
ONE_CLICK = b"List-Unsubscribe=One-Click"


def http(url: str, *, method: str = "GET", body: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, str]:
    """(status, body) of one request without cookies or redirects; 4xx and 5xx are returned."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=30) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode("utf-8", "replace")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def unsubscribes(world: World) -> set[tuple[str, str, str]]:
    with sqlite3.connect(f"file:{world.store}?mode=ro", uri=True) as db:
        found = set(db.execute("SELECT profile_id, email, via FROM unsubscribes"))
    db.close()
    return found


def token_for(world: World, address: str) -> str:
    [received] = [m for m in world.messages if m.rcpt_tos == (address,)]
    url = unsubscribe_url(parse_message(received.raw))
    assert url.startswith(world.url + "/unsubscribe?token="), url
    return urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["token"][0]


def one_click(world: World, token: str) -> tuple[int, str]:
    return http(f"{world.url}/unsubscribe?token={urllib.parse.quote(token, safe='')}", method="POST",
                body=ONE_CLICK, headers={"Content-Type": "application/x-www-form-urlencoded"})


def payload(profile_id: str, address: str) -> str:
    return base64.urlsafe_b64encode(f"{profile_id}\n{address}".encode()).decode().rstrip("=")


def flipped(text: str, index: int) -> str:
    """``text`` with one base64url character changed in its top bit, so the decoded bytes change."""
    return text[:index] + B64[B64.index(text[index]) ^ 32] + text[index + 1:]


def forgeries(world: World, victim: str) -> dict[str, str]:
    """Tokens that must not unsubscribe anyone, built around the real token for ``victim``."""
    real = token_for(world, victim)
    version, body, signature = real.split(".")
    marker = victim.split("@")[0]
    other_profile_address = addresses("zqh")[0]
    other_secret = b"another-secret-of-enough-length-0123"
    found = {f"signature char {i} flipped": f"{version}.{body}.{flipped(signature, i)}" for i in range(len(signature))}
    found |= {f"payload char {i} flipped": f"{version}.{flipped(body, i)}.{signature}" for i in range(len(body))}
    sibling = addresses(marker)[1] if victim == addresses(marker)[0] else addresses(marker)[0]
    found |= {
        "signature spliced onto the sibling address": f"{version}.{payload(f'p-{marker}', sibling)}.{signature}",
        "signature spliced onto another profile": f"{version}.{payload('p-zqh', other_profile_address)}.{signature}",
        "signature spliced onto an address not in the store":
            f"{version}.{payload(f'p-{marker}', 'nobody@else.example')}.{signature}",
        "signature spliced onto the upper-cased address":
            f"{version}.{payload(f'p-{marker}', victim.upper())}.{signature}",
        "payload and signature swapped": f"{version}.{signature}.{body}",
        "made with another secret": make_token(f"p-{marker}", victim, secret=other_secret),
        "sibling, made with another secret": make_token(f"p-{marker}", sibling, secret=other_secret),
        "not in the store, made with another secret": make_token("p-nobody", "nobody@else.example",
                                                                 secret=other_secret),
        "upper case": real.upper(), "lower case": real.lower(), "swapped case": real.swapcase(),
        "version upper-cased": "U1" + real[2:], "version u2": "u2" + real[2:],
        "no signature": f"{version}.{body}", "empty signature": f"{version}.{body}.",
        "signature of another token": f"{version}.{body}.{token_for(world, sibling).split('.')[2]}",
        "four parts": f"{real}.{signature}", "unsigned payload only": body,
    }
    found |= {f"truncated to {n}": real[:n] for n in range(len(real)) if real[:n] not in found.values()}
    found |= {f"cut {n} from the start": real[n:] for n in range(1, len(real) - 1)}
    assert real not in found.values()
    return found


def test_forged_spliced_truncated_or_recased_tokens_get_400_and_record_nothing(world):
    victim = addresses("zqb")[0]
    before = unsubscribes(world)
    tokens = forgeries(world, victim)
    assert len(tokens) > 100
    for name, token in tokens.items():
        status, page = one_click(world, token)
        assert status == 400, (name, token, status, page[:300])
        status, _ = http(f"{world.url}/unsubscribe?token={urllib.parse.quote(token, safe='')}")
        assert status == 400, (name, "GET", status)
    assert unsubscribes(world) == before


def test_padding_and_base64_variants_of_a_real_token_are_refused(world):
    victim = addresses("zqc")[0]
    real = token_for(world, victim)
    version, body, signature = real.split(".")
    variants = {
        "padded payload": f"{version}.{body}{'=' * (-len(body) % 4 or 4)}.{signature}",
        "padded signature": f"{version}.{body}.{signature}====",
        "standard alphabet": real.replace("-", "+").replace("_", "/"),
        "a stray character in the signature": f"{version}.{body}.{signature[:5]}!{signature[5:]}",
        "a space in the payload": f"{version}.{body[:4]} {body[4:]}.{signature}",
    }
    variants = {name: token for name, token in variants.items() if token != real}
    before = unsubscribes(world)
    answers = {name: one_click(world, token)[0] for name, token in variants.items()}
    after = unsubscribes(world)
    assert after - before <= {("p-zqc", victim, "one-click")}, "a variant unsubscribed another address"
    assert answers == {name: 400 for name in variants} and after == before, answers


def test_a_replayed_token_records_once_and_touches_no_other_address(world):
    victim = addresses("zqa")[0]
    token = token_for(world, victim)
    before = unsubscribes(world)
    assert ("p-zqa", victim, "one-click") not in before
    for _ in range(3):
        status, page = one_click(world, token)
        assert status == 200 and victim in page, (status, page[:300])
    status, page = http(f"{world.url}/unsubscribe?token={urllib.parse.quote(token, safe='')}")
    assert status == 200 and "already" in page
    replay = run_cli("--config", str(world.config), "unsubscribe", token, env=ENV)
    world.outputs["unsubscribe replay"] = replay.stdout + replay.stderr
    assert replay.returncode == 0 and "already" in replay.stdout, replay.stdout + replay.stderr
    assert unsubscribes(world) == before | {("p-zqa", victim, "one-click")}


def test_the_cli_refuses_forged_tokens_with_one_line_and_records_nothing(world):
    victim = addresses("zqd")[1]
    tokens = forgeries(world, victim)
    picked = ["signature char 0 flipped", "signature spliced onto the sibling address", "made with another secret",
              "truncated to 20", "upper case"]
    before = unsubscribes(world)
    for name in picked:
        result = run_cli("--config", str(world.config), "unsubscribe", tokens[name], env=ENV)
        world.outputs[f"unsubscribe {name}"] = result.stdout + result.stderr
        assert result.returncode != 0, (name, result.stdout)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: invalid unsubscribe token"), (name, result.stderr)
        assert victim not in result.stdout + result.stderr
    assert unsubscribes(world) == before


# -- 5. the web view writes nothing -------------------------------------------------------------------


def store_state(world: World) -> tuple[str, str]:
    """(sha256 of the store file and its WAL, sha256 of every row), read without writing."""
    files = hashlib.sha256()
    for suffix in ("", "-wal"):
        path = Path(f"{world.store}{suffix}")
        files.update(path.read_bytes() if path.exists() else b"-")
    with sqlite3.connect(f"file:{world.store}?mode=ro", uri=True) as db:
        rows = hashlib.sha256("\n".join(db.iterdump()).encode()).hexdigest()
    db.close()
    return files.hexdigest(), rows


DB = "/store"
WRITE_PATHS = [
    DB, f"{DB}/notices", f"{DB}/notices.json", f"{DB}/profiles/p-zqa", f"{DB}/unsubscribes",
    f"{DB}/deliveries", *(f"{DB}/{name}" for name in CANNED_QUERIES), f"{DB}?sql=select+1",
    f"{DB}/-/create", f"{DB}/notices/-/insert", f"{DB}/notices/-/upsert", f"{DB}/notices/-/drop",
    f"{DB}/notices/1/-/delete", f"{DB}/notices/1/-/update", f"{DB}/profiles/p-zqa/-/delete",
    "/-/permissions", "/-/messages", "/-/actor", "/-/create-token", "/-/settings", "/-/metadata", "/-/allow-debug",
    "/", "/-/", "/%73tore/notices/-/insert", "//store/notices", "/store/./notices/-/insert",
]
WRITE_BODIES = [
    ({"Content-Type": "application/json", "Authorization": "Bearer dstok_forged-token"},
     json.dumps({"row": {"id": "x", "title": "written"}, "rows": [{"id": "y"}], "table": "pwned",
                 "columns": [{"name": "id"}], "sql": "DELETE FROM notices"}).encode()),
    ({"Content-Type": "application/x-www-form-urlencoded"},
     urllib.parse.urlencode({"sql": "DELETE FROM notices", "csrftoken": "x", "id": "x"}).encode()),
]


def test_no_method_but_get_reaches_any_page_and_nothing_changes(world):
    before = store_state(world)
    answers = {}
    for path in WRITE_PATHS:
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            for headers, body in WRITE_BODIES:
                answers[(method, path, headers["Content-Type"])] = http(world.url + path, method=method, body=body,
                                                                        headers=headers)[0]
    refused = {key: status for key, status in answers.items() if status != 405}
    assert not refused, f"not refused at the door: {refused}"
    assert store_state(world) == before


def test_sql_that_writes_reads_files_or_loads_code_is_refused(world, tmp_path):
    vacuum, attached = tmp_path / "vacuumed.db", tmp_path / "attached.db"
    statements = [
        "PRAGMA journal_mode=DELETE", "PRAGMA user_version=7", "PRAGMA wal_checkpoint(TRUNCATE)",
        "PRAGMA query_only=0", "pragma writable_schema=1",
        "select * from pragma_journal_mode('delete')", "select * from pragma_user_version(7)",
        f"ATTACH DATABASE '{attached}' AS other", f"VACUUM INTO '{vacuum}'", f"vacuum main into '{vacuum}'",
        "select load_extension('/usr/lib/x86_64-linux-gnu/libsqlite3.so.0')",
        "select readfile('/etc/passwd')", f"select writefile('{tmp_path}/written', 'x')",
        "select edit('x')",
        "WITH gone AS (SELECT 1) DELETE FROM unsubscribes",
        ("WITH x(n) AS (SELECT 1) INSERT INTO unsubscribes (profile_id, email, at, via)"
         " SELECT 'p-zqa', 'sql@evil.example', 'now', 'sql' FROM x"),
        "with recursive r(n) as (select 1) update notices set title = 'written'",
        "CREATE TEMP TABLE t AS SELECT * FROM notices", "create temp view v as select 1",
        "REPLACE INTO unsubscribes VALUES ('p-zqa', 'sql@evil.example', 'now', 'sql')",
        "select 1; delete from notices", "/* comment */ delete from notices", "-- c\ndelete from notices",
        "select 1 as x union all select count(*) from notices; drop table notices",
        "BEGIN; DELETE FROM notices; COMMIT", "savepoint a", "REINDEX", "ANALYZE", "DETACH main",
    ]
    before = store_state(world)
    answers = {}
    for sql in statements:
        for path in (f"{DB}.json", DB):
            status, body = http(world.url + f"{path}?{urllib.parse.urlencode({'sql': sql})}")
            answers[(path, sql)] = (status, body[:200])
    # SQL through a table page's parameters: one statement only, read-only.
    for query in ({"_where": "1); DELETE FROM notices; --"}, {"_sort": "id; DELETE FROM notices"},
                  {"_where": "id IN (SELECT load_extension('x'))"}):
        status, body = http(world.url + f"{DB}/notices.json?{urllib.parse.urlencode(query)}")
        answers[(f"{DB}/notices.json", json.dumps(query))] = (status, body[:200])
    # Datasette answers a bad _sort column with a 500; refused all the same (the store is checked below).
    allowed = {key: answer for key, answer in answers.items()
               if not 400 <= answer[0] < 500 and not (key[1].startswith('{"_sort"') and answer[0] == 500)}
    assert not allowed, f"not refused: {allowed}"
    assert store_state(world) == before
    assert not vacuum.exists() and not attached.exists() and not (tmp_path / "written").exists()
    passwd = Path("/etc/passwd").read_text(encoding="utf-8").splitlines()[0]
    assert all(passwd not in body for _, body in answers.values())


def test_sql_cannot_reach_the_fts3_tokenizer_pointer_interface(world):
    answers = {}
    for sql in ("select fts3_tokenizer('simple')", "select hex(fts3_tokenizer('porter'))",
                "select fts3_tokenizer('tm_probe', fts3_tokenizer('simple'))"):
        answers[sql] = http(world.url + f"{DB}.json?{urllib.parse.urlencode({'sql': sql})}")[0]
    assert all(400 <= status < 500 for status in answers.values()), answers


def test_read_only_sql_still_answers(world):
    # The refusals above are not an outage: a SELECT through the same endpoint works.
    status, body = http(world.url + f"{DB}.json?" + urllib.parse.urlencode(
        {"sql": "select count(*) as n from notices", "_shape": "array"}))
    assert status == 200 and json.loads(body) == [{"n": len(world.notices)}]


# -- 3. no secret in any output ----------------------------------------------------------------------


def leak_forms(secret: str) -> dict[str, str]:
    """How a secret could show: as is, URL-quoted, hex, and base64 at each of the three
    byte alignments (AUTH PLAIN and LOGIN send it base64-encoded after other bytes)."""
    raw = secret.encode()
    forms = {"plain": secret, "quoted": urllib.parse.quote(secret, safe=""), "hex": raw.hex()}
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + raw).decode()
        start, end = -(-shift * 8 // 6), (shift + len(raw)) * 8 // 6  # only the characters the secret alone decides
        core = encoded[start:end]
        forms[f"base64+{shift}"] = core
        forms[f"base64url+{shift}"] = core.replace("+", "-").replace("/", "_")
    return forms


def test_leak_forms_find_a_password_as_auth_plain_sends_it():
    # The check below is only as good as its encodings: AUTH PLAIN is base64("\0user\0password").
    sent = base64.b64encode(f"\0{SMTP_USER}\0{PASSWORD}".encode()).decode()
    assert any(form in sent for name, form in leak_forms(PASSWORD).items() if name.startswith("base64"))


def test_no_secret_or_smtp_password_in_any_output_log_message_or_the_store(world):
    # The secret and the password were used: the worker and the CLI logged in with it, the
    # digests carry tokens signed with it.
    assert any(password == PASSWORD.encode() for _, _, password in world.refusing.logins)
    assert any(password == PASSWORD.encode() for _, _, password in world.good.logins)
    assert "login refused" in world.outputs["worker stderr"], world.outputs["worker stderr"][-2000:]
    assert "cannot connect" in world.outputs["digest to a closed port"]
    texts = dict(world.outputs)
    texts["serve log"] = world.serve.log()
    assert "unsubscribe refused" in texts["serve log"]  # written to by the token tests
    for log in world.folder.glob("*.log*"):
        texts[f"file {log.name}"] = log.read_text(encoding="utf-8", errors="replace")
    with sqlite3.connect(f"file:{world.store}?mode=ro", uri=True) as db:
        texts["store dump"] = "\n".join(db.iterdump())
        texts["kept documents"] = "\n".join(decompress(row[0]).decode("utf-8", "replace")
                                            for row in db.execute("SELECT content FROM raw_documents"))
    db.close()
    texts["messages"] = "\n".join(m.raw.decode("utf-8", "replace") for m in world.messages)
    assert len(texts) >= 15
    for secret_name, secret in (("TENDERMATCH_SECRET", SECRET), (PASSWORD_ENV, PASSWORD)):
        for form_name, form in leak_forms(secret).items():
            leaks = [where for where, text in texts.items() if form in text]
            assert not leaks, f"{secret_name} ({form_name}) found in: {leaks}"


# -- 4. the crawler stays on http(s) ----------------------------------------------------------------


PASSWD_LINE = Path("/etc/passwd").read_text(encoding="utf-8").splitlines()[0]
FEED_FILE_URL = "file://localhost/etc/passwd"
DATA_MARKER = "data-uri-content-was-fetched"
DATA_URL = "data:text/plain;base64," + base64.b64encode(DATA_MARKER.encode()).decode()


def source_block(name: str, kind: str, url: str, extra: str = "") -> str:
    return f'[[sources]]\nname = "{name}"\nkind = "{kind}"\nurl = "{url}"\n{extra}\n'


@dataclass
class Crawl:
    store: Path
    site: LocalServer
    other: LocalServer
    trap: Trap
    result: object
    bad: dict[str, str]

    def run(self, source: str) -> dict:
        with closing(Store.open(self.store)) as store:
            [run] = [r for r in store.runs(limit=100) if r["source"] == source]
            run["rejections"] = store.rejections(run["id"])
            run["stats"] = json.loads(run["stats"] or "{}")
            return run


@pytest.fixture(scope="module")
def crawl(tmp_path_factory):
    folder = tmp_path_factory.mktemp("schemes")
    trap = Trap()
    bad = {"file": "file:///etc/passwd", "ftp": f"ftp://127.0.0.1:{trap.port}/pub/notice.xml", "data": DATA_URL,
           "gopher": f"gopher://127.0.0.1:{trap.port}/_notice"}
    deadline = (date.today() + timedelta(days=30)).strftime("%d.%m.%Y")
    good_xml = {"/notices/good.xml": (SAMPLE / "ted-dk" / "095237-2016.xml").read_bytes(),
                "/notices/good2.xml": (SAMPLE / "ted-dk" / "433955-2016.xml").read_bytes()}

    def feed(title: str) -> bytes:
        return (f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>x</title>'
                f"<link>http://127.0.0.1/</link><item><title>{title}</title><link>http://127.0.0.1/{title}</link>"
                f"<description>Tilbudsfrist: {deadline} kl. 12:00</description></item></channel></rss>").encode()

    other = LocalServer(lambda method, path, body: (200, {"Content-Type": "application/rss+xml"},
                                                    feed("Udbud fra en anden port")) if path.startswith("/feed")
                        else (404, {}, b"not found"))
    routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
    for code in (301, 302, 303, 307, 308):
        routes[f"/r{code}-file"] = (code, {"Location": bad["file"]}, b"")
    for kind in ("ftp", "data", "gopher"):
        routes[f"/r302-{kind}"] = (302, {"Location": bad[kind]}, b"")
    routes["/r307-other-port"] = (307, {"Location": f"{other.url}/feed.xml"}, b"")
    routes["/refresh-header"] = (200, {"Refresh": "0; url=file:///etc/passwd", "Content-Type": "application/rss+xml"},
                                 feed("Udbud med Refresh"))
    routes["/meta-refresh.html"] = (200, {"Content-Type": "text/html"},
                                    (b'<html><head><meta http-equiv="refresh" content="0; url=file:///etc/passwd">'
                                     b'</head><body><table id="u"><tbody></tbody></table></body></html>'))
    links = [*bad.values(), "javascript:alert(1)"]
    rows = "".join(f'<tr><td class="t"><a href="{link}">Rengøring {n}</a></td><td class="d">{deadline}</td></tr>'
                   for n, link in enumerate(links))
    routes["/listing.html"] = (200, {"Content-Type": "text/html; charset=utf-8"},
                               f'<html><body><table id="u"><tbody>{rows}</tbody></table></body></html>'.encode())
    # Another spelling of the same file for the feed: a notice's id comes from its link, and the
    # listing's row must not become the same notice.
    feed_links = [FEED_FILE_URL if link == bad["file"] else link for link in links]
    items = "".join(f"<item><title>Udbud {n}</title><link>{link}</link><guid>{link}</guid>"
                    f"<description>Tilbudsfrist: {deadline} kl. 12:00</description></item>"
                    for n, link in enumerate(feed_links))
    routes["/feed-links.xml"] = (200, {"Content-Type": "application/rss+xml"},
                                 ('<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>x</title>'
                                  f"<link>http://127.0.0.1/</link>{items}</channel></rss>").encode())
    for kind, url in bad.items():
        routes[f"/ocds-next-{kind}.json"] = (200, {"Content-Type": "application/json"}, json.dumps({
            "uri": "x", "version": "1.1", "links": {"next": url},
            "releases": [{"ocid": f"ocds-next-{kind}", "id": "1", "date": "2026-01-01T00:00:00Z", "tag": ["tender"],
                          "tender": {"id": "t", "title": f"Kantinedrift {kind}", "status": "active"}}]}).encode())

    def ted_search(mul_links: list[str]) -> bytes:
        return json.dumps({"notices": [{"publication-number": f"{n}-2026", "links": {"xml": {"MUL": link}}}
                                       for n, link in enumerate(mul_links)],
                           "totalNoticeCount": len(mul_links), "iterationNextToken": None}).encode()

    def handle(method: str, path: str, body: bytes):
        clean = path.split("?")[0]
        if clean == "/robots.txt":
            return 200, {"Content-Type": "text/plain"}, b"User-agent: *\nDisallow:\n"
        if clean == "/ted/v3/notices/search":
            return 200, {"Content-Type": "application/json"}, ted_search(
                [*bad.values(), f"{site.url}/notices/good.xml"])
        if clean == "/ted-js/v3/notices/search":
            return 200, {"Content-Type": "application/json"}, ted_search(
                ["javascript:alert(1)", f"{site.url}/notices/good2.xml"])
        if clean in good_xml:
            return 200, {"Content-Type": "application/xml"}, good_xml[clean]
        return routes.get(clean, (404, {"Content-Type": "text/plain"}, b"not found"))

    site = LocalServer(handle)
    selectors = 'selectors = { row = "table#u tbody tr", title = "td.t", link = "td.t a", deadline = "td.d" }'
    blocks = [source_block(path.strip("/").replace(".", "-"), "feed", site.url + path,
                           "allow_private_network = true" if path == "/r307-other-port" else "")
              for path in routes if path.startswith(("/r", "/refresh"))]
    blocks += [source_block("meta-refresh", "html", f"{site.url}/meta-refresh.html", selectors),
               source_block("listing", "html", f"{site.url}/listing.html", "detail = true\n" + selectors),
               source_block("feed-links", "feed", f"{site.url}/feed-links.xml"),
               source_block("ted", "ted", f"{site.url}/ted", 'query = "x"'),
               source_block("ted-js", "ted", f"{site.url}/ted-js", 'query = "x"')]
    blocks += [source_block(f"ocds-next-{kind}", "ocds", f"{site.url}/ocds-next-{kind}.json") for kind in bad]
    config = configs.write_config(folder, sources=blocks)
    try:
        result = run_cli("--config", str(config), "crawl", timeout=180)
        yield Crawl(store=folder / "store.db", site=site, other=other, trap=trap, result=result, bad=bad)
    finally:
        site.close()
        other.close()
        trap.close()


@pytest.mark.parametrize("kind, key, value", [
    ("feed", "url", "ftp://127.0.0.1/udbud.xml"),
    ("feed", "url", "gopher://127.0.0.1:70/_udbud"),
    ("html", "url", "data:text/html,<table></table>"),
    ("ocds", "url", "javascript:alert(1)"),
    ("feed", "url", "file:///etc/passwd"),
    ("ted", "url", "file:///etc/passwd"),
    ("html", "url", "//127.0.0.1/udbud.html"),
    ("feed", "url", "http:///udbud.xml"),
    ("files", "url", "file://evil.example/etc/passwd"),
    ("files", "url", "http://127.0.0.1/udbud.xml"),
    pytest.param("feed", "urls", "file:///etc/passwd"),
])
def test_a_source_url_that_is_not_http_is_refused_at_config_load_naming_source_and_key(tmp_path, kind, key, value):
    extra = {"ted": 'query = "x"\n', "html": 'selectors = { row = "tr", title = "td" }\n'}.get(kind, "")
    url = "http://127.0.0.1:1/ok.xml" if key == "urls" else value
    block = source_block("bad-source", kind, url, extra + (f"urls = {json.dumps([value])}\n" if key == "urls" else ""))
    config = tmp_path / "tendermatch.toml"
    # By hand: the bad config under test, a store and the one refused source, nothing else.
    config.write_text(f'[store]\npath = "store.db"\n\n{block}', encoding="utf-8")
    result = run_cli("--config", str(config), "crawl")
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "'bad-source'" in lines[0] and str(config) in lines[0] and value in lines[0], lines[0]
    assert re.search(rf"\b{key}\b", lines[0]), f"the key {key!r} is not named: {lines[0]}"
    assert not (tmp_path / "store.db").exists()  # refused before anything was opened


def stored_text(crawl: Crawl) -> str:
    """Everything the store holds, kept documents decompressed."""
    with sqlite3.connect(f"file:{crawl.store}?mode=ro", uri=True) as db:
        dump = "\n".join(db.iterdump())
        kept = "\n".join(decompress(row[0]).decode("utf-8", "replace")
                         for row in db.execute("SELECT content FROM raw_documents"))
    db.close()
    return dump + "\n" + kept


def test_nothing_outside_http_was_fetched_and_passwd_never_reached_the_store(crawl):
    assert crawl.result.returncode == 1, crawl.result.stdout + crawl.result.stderr  # refusals are failures
    assert crawl.trap.connections == 0, "an ftp:// or gopher:// URL was connected to"
    text = stored_text(crawl)
    assert PASSWD_LINE not in text and DATA_MARKER not in text
    assert PASSWD_LINE not in crawl.result.stdout + crawl.result.stderr


@pytest.mark.parametrize("source, target", [
    *((f"r{code}-file", "file:///etc/passwd") for code in (301, 302, 303, 307, 308)),
    ("r302-ftp", "ftp://"), ("r302-data", "data:"), ("r302-gopher", "gopher://"),
])
def test_a_redirect_off_http_is_not_followed_and_recorded_with_the_url(crawl, source, target):
    run = crawl.run(source)
    assert run["outcome"] == "failed", run
    [rejection] = run["rejections"]
    assert rejection["url"] == f"{crawl.site.url}/{source}"
    assert target in rejection["reason"] and "not followed" in rejection["reason"], rejection


def test_a_redirect_to_http_on_another_loopback_port_is_followed(crawl):
    # README: crawls follow http(s) redirects; only the scheme is restricted.
    run = crawl.run("r307-other-port")
    assert run["outcome"] == "ok", run
    assert [hit.path for hit in crawl.other.hits if hit.path.startswith("/feed")] == ["/feed.xml"]
    with closing(Store.open(crawl.store)) as store:
        assert any(n["title"] == "Udbud fra en anden port" for n in store.notices())


def test_refresh_headers_and_meta_refresh_are_not_followed(crawl):
    run = crawl.run("refresh-header")
    assert run["outcome"] == "ok", run  # the page itself was read, as a feed
    with closing(Store.open(crawl.store)) as store:
        assert any(n["title"] == "Udbud med Refresh" for n in store.notices())
    meta = crawl.run("meta-refresh")
    assert [r["url"] for r in meta["rejections"]] == [f"{crawl.site.url}/meta-refresh.html"], meta
    assert "found no rows" in meta["rejections"][0]["reason"]


def test_detail_links_off_http_are_refused_and_the_listing_is_kept(crawl):
    run = crawl.run("listing")
    warnings = run["stats"].get("warnings", [])
    refused = [w for w in warnings if "detail page not fetched" in w]
    assert any(w.startswith("file:///etc/passwd:") and "refused" in w for w in refused), warnings
    # ftp:, data:, gopher: and javascript: links are dropped as links (the row has no detail page).
    assert not [w for w in refused if not w.startswith("file:")], warnings
    with closing(Store.open(crawl.store)) as store:
        titles = {n["title"] for n in store.notices() if "listing" in n["sources"]}
    assert titles == {f"Rengøring {n}" for n in range(5)}


def test_feed_item_links_off_http_are_never_fetched_nor_linked(crawl):
    run = crawl.run("feed-links")
    assert run["outcome"] == "ok", run
    with closing(Store.open(crawl.store)) as store:
        stored = [n for n in store.notices() if "feed-links" in n["sources"]]
    assert len(stored) == 5
    # Links other than http(s) and file: are dropped; the file: one stays a string on the notice
    # (never fetched: the passwd test above; never a link in a digest: the header tests, notice zqj).
    assert all(n.get("url") in (None, FEED_FILE_URL, f"{crawl.site.url}/feed-links.xml") for n in stored), stored


@pytest.mark.parametrize("kind", ["file", "ftp", "data", "gopher"])
def test_an_ocds_next_link_off_http_is_refused_and_recorded_with_the_url(crawl, kind):
    run = crawl.run(f"ocds-next-{kind}")
    assert run["outcome"] == "partial", run
    assert [r["url"] for r in run["rejections"]] == [crawl.bad[kind]], run
    assert "refused URL scheme" in run["rejections"][0]["reason"]


def test_ted_xml_links_off_http_are_refused_and_the_good_notice_is_stored(crawl):
    run = crawl.run("ted")
    assert sorted(r["url"] for r in run["rejections"]) == sorted(crawl.bad.values()), run
    with closing(Store.open(crawl.store)) as store:
        assert store.get_notice("ted:095237-2016") is not None


def test_a_javascript_xml_link_in_a_ted_result_costs_no_other_notice_and_is_recorded(crawl):
    run = crawl.run("ted-js")
    with closing(Store.open(crawl.store)) as store:
        assert store.get_notice("ted:433955-2016") is not None, "the notice after the javascript: link was lost"
    assert run["outcome"] != "ok" or run["rejections"], run
    assert [r["url"] for r in run["rejections"]] == ["javascript:alert(1)"], run
