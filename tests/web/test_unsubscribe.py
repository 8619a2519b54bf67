"""One-click unsubscribe against a real `tendermatch serve` process and a real sent digest.

Proves that: the link in a sent e-mail's List-Unsubscribe header opens a confirmation page
that changes nothing (a link scanner's GET does not unsubscribe); the RFC 8058 one-click
POST (no cookies, no CSRF token) and the page's button record the address once, with how
and when; the next week's digest skips exactly that address of the enterprise while its
other address still gets one; tampered, foreign, garbage or missing tokens and other
methods change nothing; and the serve log never holds a token or the address.
"""

from __future__ import annotations

import base64
import html
import json
import re
import sqlite3
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, date, datetime, timedelta

import pytest

from tendermatch.notifier.tokens import make_token
from tests.conftest import run_cli
from tests.web.served import Served, parse_message, secret_env, unsubscribe_url, write_site

pytestmark = pytest.mark.slow

ENTERPRISE = "Måltidsværkstedet"
ADDRESSES = ("kontakt@maaltidsvaerkstedet.example", "udbud@maaltidsvaerkstedet.example")
ONE_CLICK = b"List-Unsubscribe=One-Click"
INVALID_TEXT = "not valid"


def request(url: str, *, method: str = "GET", body: bytes | None = None) -> tuple[int, dict[str, str], str]:
    """(status, headers, body text) of one request without cookies; 4xx/5xx are returned, not raised."""
    headers = {"Content-Type": "application/x-www-form-urlencoded"} if body is not None else {}
    req = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=20) as response:
            return response.status, dict(response.headers), response.read().decode("utf-8")
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode("utf-8", errors="replace")


def rows(served: Served) -> list[tuple[str, str, str, str]]:
    with sqlite3.connect(served.store) as db:
        return db.execute("SELECT profile_id, email, at, via FROM unsubscribes ORDER BY email").fetchall()


def link_for(served: Served, address: str) -> str:
    """The unsubscribe URL of the digest that was sent to ``address``."""
    found = [unsubscribe_url(message) for message in served.messages if str(message["To"]).lower() == address]
    assert len(found) == 1, [str(message["To"]) for message in served.messages]
    assert found[0].startswith(served.url + "/unsubscribe?token="), found[0]
    return found[0]


def token_of(url: str) -> str:
    return urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["token"][0]


def form_action(page: str, page_url: str) -> str | None:
    """The absolute URL the page's POST form submits to, or None without such a form."""
    found = re.search(r'<form[^>]*method="post"[^>]*action="([^"]*)"', page, re.IGNORECASE)
    return urllib.parse.urljoin(page_url, html.unescape(found.group(1))) if found else None


def next_week() -> tuple[str, date]:
    day = date.today() + timedelta(days=7)
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}", day


def add_school_meals_tender(served: Served) -> None:
    """The site's feed again, plus one new tender for Måltidsværkstedet."""
    site = served.folder / "site"
    write_site(site)
    deadline = (date.today() + timedelta(days=45)).strftime("%d.%m.%Y")
    item = ("<item><title>Skolemad og frokostordning til kommunens skoler</title>"
            "<link>https://udbud.sjaelland.example/udbud/99</link><guid>https://udbud.sjaelland.example/udbud/99</guid>"
            "<dc:creator>Gentofte Kommune</dc:creator><description>&lt;p&gt;Levering af skolemad og frokostordning"
            f" til 12 skoler.&lt;/p&gt;&lt;p&gt;Tilbudsfrist: {deadline} kl. 12:00&lt;/p&gt;&lt;p&gt;CPV:"
            " 55520000-1&lt;/p&gt;</description></item>")
    feed = site / "udbud.xml"
    feed.write_text(feed.read_text(encoding="utf-8").replace("</channel>", item + "</channel>"), encoding="utf-8")


def test_one_click_from_a_sent_digest_stops_the_next_digest_to_that_address_only(fresh_served: Served) -> None:
    gone, kept = ADDRESSES[1], ADDRESSES[0]
    url = link_for(fresh_served, gone)

    status, _headers, page = request(url)
    assert status == 200, page
    assert gone in page and ENTERPRISE in page
    assert form_action(page, url) == url
    assert 'name="List-Unsubscribe" value="One-Click"' in page
    assert rows(fresh_served) == [], "a GET (e.g. a link scanner) must not unsubscribe"

    before = datetime.now(UTC).replace(microsecond=0)
    status, _headers, page = request(url, method="POST", body=ONE_CLICK)
    assert status == 200, page
    assert gone in page and "Unsubscribed" in page
    [(profile_id, email, at, via)] = rows(fresh_served)
    assert (profile_id, email, via) == ("maaltidsvaerkstedet", gone, "one-click")
    when = datetime.fromisoformat(at)
    assert when.utcoffset() == timedelta(0), at
    assert before - timedelta(seconds=1) <= when <= datetime.now(UTC), at
    assert datetime.now(UTC) - when < timedelta(minutes=1)

    add_school_meals_tender(fresh_served)
    period, day = next_week()
    config = ("--config", str(fresh_served.config))
    sent_before = len(fresh_served.smtp.messages)
    run_cli(*config, "crawl", check=True, env=secret_env())
    run_cli(*config, "match", check=True, env=secret_env())
    run_cli(*config, "digest", "--send", "--period", period, "--as-of", day.isoformat(), check=True, env=secret_env())

    new = fresh_served.smtp.messages[sent_before:]
    recipients = [address.lower() for received in new for address in received.rcpt_tos]
    assert kept in recipients, recipients
    assert gone not in recipients, recipients
    [to_kept] = [parse_message(received.raw) for received in new if kept in received.rcpt_tos]
    body = to_kept.get_body(preferencelist=("plain",)).get_content()
    assert "Skolemad og frokostordning" in body

    listed = run_cli(*config, "deliveries", "--period", period, "--profile", "maaltidsvaerkstedet",
                     "--format", "json", check=True, env=secret_env())
    emails = {row["email"].lower(): row["state"] for row in json.loads(listed.stdout)}
    assert emails == {kept: "sent"}, emails


def test_the_pages_button_records_web_page_once_and_then_says_already(fresh_served: Served) -> None:
    address = ADDRESSES[0]
    url = link_for(fresh_served, address)
    for _ in range(2):
        status, _, page = request(url, method="POST", body=ONE_CLICK + b"&via=page")
        assert status == 200, page
        assert address in page
    [(profile_id, email, _, via)] = rows(fresh_served)
    assert (profile_id, email, via) == ("maaltidsvaerkstedet", address, "web page")

    status, _, page = request(url)
    assert status == 200, page
    assert address in page and "already" in page
    assert form_action(page, url) is None, "no button once unsubscribed"


def tampered_tokens(served: Served) -> dict[str, str | None]:
    token = token_of(link_for(served, ADDRESSES[0]))
    version, payload, signature = token.split(".")
    flipped = ("B" if signature[0] == "A" else "A") + signature[1:]
    other = base64.urlsafe_b64encode(b"maaltidsvaerkstedet\nsomeone@else.example").decode().rstrip("=")
    foreign = make_token("maaltidsvaerkstedet", ADDRESSES[0], secret=b"another secret 0123456789")
    return {"flipped signature": f"{version}.{payload}.{flipped}", "replayed for another address":
            f"{version}.{other}.{signature}", "another secret": foreign, "garbage": "abc", "missing": None,
            "empty": ""}


def test_tampered_or_missing_tokens_get_400_and_change_nothing(fresh_served: Served) -> None:
    for name, token in tampered_tokens(fresh_served).items():
        url = fresh_served.url + "/unsubscribe" + ("" if token is None else "?token=" + urllib.parse.quote(token))
        for method, body in (("GET", None), ("POST", ONE_CLICK), ("POST", ONE_CLICK + b"&via=page")):
            status, headers, page = request(url, method=method, body=body)
            assert status == 400, (name, method, status, page)
            assert INVALID_TEXT in page and "Linket virker ikke" in page, (name, method)
            assert headers.get("Cache-Control") == "no-store", (name, method, headers)
            assert "<form" not in page, (name, method)
            assert rows(fresh_served) == [], (name, method)


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_other_methods_get_405_and_change_nothing(fresh_served: Served, method: str) -> None:
    url = link_for(fresh_served, ADDRESSES[0])
    status, _headers, page = request(url, method=method, body=ONE_CLICK)
    assert status == 405, (status, page)
    assert rows(fresh_served) == []
    status, _, page = request(url)
    assert status == 200 and "already" not in page  # the address is still subscribed


def test_the_serve_log_holds_no_token_and_no_address(fresh_served: Served) -> None:
    urls = [link_for(fresh_served, address) for address in ADDRESSES]
    request(urls[0])
    assert request(urls[0], method="POST", body=ONE_CLICK)[0] == 200
    assert request(urls[1], method="POST", body=ONE_CLICK + b"&via=page")[0] == 200
    request(urls[1], method="POST", body=ONE_CLICK)
    request(urls[1])
    bad = tampered_tokens(fresh_served)
    for token in filter(None, bad.values()):
        assert request(fresh_served.url + "/unsubscribe?token=" + urllib.parse.quote(token))[0] == 400
    assert {row[1] for row in rows(fresh_served)} == set(ADDRESSES)

    log = fresh_served.server.log()
    assert "unsubscribe refused" in log, "the log must be written for this test to mean anything:\n" + log
    secrets = [token_of(url) for url in urls] + [token for token in bad.values() if token and len(token) > 3]
    for secret in secrets:
        for part in secret.split("."):
            assert len(part) < 8 or part not in log, f"a token reached the serve log:\n{log}"
    for address in (*ADDRESSES, "someone@else.example"):
        assert address not in log.lower(), f"{address} reached the serve log:\n{log}"
        assert address.split("@")[0] + "@" not in log.lower()
