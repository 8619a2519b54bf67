"""One recipient never costs another: real `tendermatch digest --send` processes against a
real SMTP server (aiosmtpd on 127.0.0.1).

- Non-ASCII addresses: a local part like ``søren@`` to a server without SMTPUTF8 fails that
  delivery alone, with a line naming the server; an internationalised domain goes as its
  punycode A-label to any server; with SMTPUTF8 offered both go out.
- A stored value that breaks one digest, and addresses that slipped past validation (a
  NUL, CR/LF with a Bcc), fail those digests alone: every other enterprise gets its own.
- A notice with a 10 MB title (and a 1 MB buyer and a 100 KB link) in a store of ordinary
  ones: every digest stays under [digest] max_message_kb and the relay's limit, lists its
  best notices and "… N more", and the ones left out come next week."""

from __future__ import annotations

import email
import email.policy
import json
import re
import shutil
import sqlite3
from datetime import date, timedelta
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from tendermatch.notifier.digest import Recipient
from tendermatch.notifier.run import DigestSettings, deliver_pending, plan_digests
from tendermatch.notifier.send import SmtpSender
from tendermatch.store import Store
from tests.conftest import run_cli
from tests.notifier.delivery import (
    ENV,
    HOFOR,
    KONTAKT,
    MAALTID,
    UDBUD,
    Workspace,
    bodies,
    by_address,
    cli_json,
    item_titles,
    parse,
    workspace,
)
from tests.notifier.smtp_server import RecordingHandler, SmtpServer, free_port

SOEREN = "søren@maaltidsvaerkstedet.example"  # replaces UDBUD: a non-ASCII local part
CYKELBUD = "dispatch@byenscykelbud.example"
IDN = "dispatch@byens-cykelbød.example"  # replaces CYKELBUD: an internationalised domain
IDN_WIRE = "dispatch@xn--byens-cykelbd-mnb.example"


class RelaySmtpServer(SmtpServer):
    """The recording server with a relay's options: SMTPUTF8 offered or not, and a message
    size limit (answered 552 over it)."""

    def __init__(self, *, smtputf8: bool = False, data_size_limit: int | None = None):
        self.handler = RecordingHandler()
        self.port = free_port()
        options = {"data_size_limit": data_size_limit} if data_size_limit else {}
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, ready_timeout=10,
                                     enable_SMTPUTF8=smtputf8, **options)
        self.controller.start()


@pytest.fixture
def relays():
    started: list[SmtpServer] = []

    def start(**options) -> RelaySmtpServer:
        server = RelaySmtpServer(**options)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def profiles_with(base, folder: Path, replace: dict[str, str]) -> Path:
    """The sample profiles with some addresses replaced."""
    folder.mkdir()
    for path in base["profiles"].glob("*.toml"):
        text = path.read_text(encoding="utf-8")
        for old, new in replace.items():
            text = text.replace(f'"{old}"', json.dumps(new, ensure_ascii=False))
        (folder / path.name).write_text(text, encoding="utf-8")
    return folder


def with_addresses(base, tmp_path: Path, port: int, replace: dict[str, str]) -> Workspace:
    """A copy of the base store whose profiles have these addresses instead."""
    (tmp_path / "run").mkdir()
    space = workspace(base, tmp_path / "run", port)
    space.profiles = profiles_with(base, tmp_path / "profiles", replace)
    return space


def no_traceback(result) -> None:
    assert "Traceback" not in result.stdout + result.stderr, result.stdout + result.stderr


def digest_status(space: Workspace) -> dict:
    [job] = [job for job in cli_json(*space.args("status", "--format", "json"), env=ENV)["jobs"]
             if job["id"] == "digest"]
    return job


# -- 4. non-ASCII addresses ------------------------------------------------------------------------


def test_a_non_ascii_local_part_fails_alone_at_a_server_without_smtputf8_and_an_idn_domain_goes_as_punycode(
        base, tmp_path, relays):
    server = relays(smtputf8=False)
    space = with_addresses(base, tmp_path, server.port, {UDBUD: SOEREN, CYKELBUD: IDN})
    result = space.send()
    no_traceback(result)
    assert result.returncode == 1, result.stdout + result.stderr

    # Everyone else got their digest: the IDN address as its A-label, in the envelope and the To header.
    others = {address for address in base["addresses"] if address not in (UDBUD, CYKELBUD)}
    grouped = by_address(server.messages)
    assert set(grouped) == others | {IDN_WIRE}
    assert all(len(received) == 1 for received in grouped.values())
    [idn_message] = grouped[IDN_WIRE]
    assert [a.addr_spec for a in parse(idn_message.raw)["To"].addresses] == [IDN_WIRE]
    assert item_titles(bodies(parse(idn_message.raw))[0])  # a real digest, not an empty shell

    # The non-ASCII local part: failed with the reason naming the server, shown in deliveries and status.
    [failed] = space.deliveries("--state", "failed")
    assert (failed["profile_id"], failed["email"]) == (MAALTID, SOEREN)
    where = f"127.0.0.1:{server.port}"
    assert f"the server at {where} does not accept non-ASCII addresses (SMTPUTF8)" in failed["error"]
    assert any(SOEREN in line and "SMTPUTF8" in line for line in result.stdout.splitlines())
    job = digest_status(space)
    assert job["outcome"] == "partial" and "failed 1" in job["counts"], job
    sent = {row["email"] for row in space.deliveries("--state", "sent")}
    assert sent == others | {IDN}


def test_with_smtputf8_offered_the_non_ascii_address_gets_its_digest_in_utf8(base, tmp_path, relays):
    server = relays(smtputf8=True)
    space = with_addresses(base, tmp_path, server.port, {UDBUD: SOEREN, CYKELBUD: IDN})
    result = space.send()
    no_traceback(result)
    assert result.returncode == 0, result.stdout + result.stderr
    grouped = by_address(server.messages)
    assert SOEREN in grouped and IDN_WIRE in grouped
    [received] = grouped[SOEREN]
    # Headers in UTF-8 (RFC 6532), read as a client does; the bodies are base64 as ever.
    message = email.message_from_string(received.raw.decode("utf-8"), policy=email.policy.default)
    assert [a.addr_spec for a in message["To"].addresses] == [SOEREN]
    assert str(message["Subject"]).startswith("Uge 1: 1 nyt udbud til Måltidsværkstedet")  # its region only
    assert item_titles(bodies(message)[0])[0] == base["records"][HOFOR]["title"]
    assert {row["state"] for row in space.deliveries()} == {"sent"}


# -- generalised: whatever breaks one digest costs only that digest -------------------------------------


def test_a_stored_value_that_breaks_one_digest_costs_only_that_enterprise(base, tmp_path, relays):
    server = relays()
    space = workspace(base, tmp_path, server.port)
    with sqlite3.connect(space.db) as db:  # a value no parser should have stored: the buyer a bare string
        db.execute("UPDATE notices SET record = json_set(record, '$.buyer', 'HOFOR') WHERE id = ?", [HOFOR])
    told_hofor = {row["profile_id"] for row in base["log"] if row["notice_id"] == HOFOR}
    assert told_hofor == {MAALTID}
    result = space.send()
    no_traceback(result)
    assert result.returncode == 1, result.stdout + result.stderr
    others = {address for address, profile_id in base["addresses"].items() if profile_id != MAALTID}
    assert set(by_address(server.messages)) == others
    failed = space.deliveries("--state", "failed")
    assert {row["email"] for row in failed} == {KONTAKT, UDBUD}
    assert all("the digest could not be made" in row["error"] and not row["notices"] for row in failed)
    assert digest_status(space)["outcome"] == "partial"
    # Nothing was told, so a later week (the value repaired) tells the enterprise everything.
    with sqlite3.connect(space.db) as db:
        db.execute("UPDATE notices SET record = json_set(record, '$.buyer', json('{\"name\": \"HOFOR A/S\"}'))"
                   " WHERE id = ?", [HOFOR])
    assert space.send("2016-W02", "2016-01-08").returncode == 0
    week2 = by_address(server.messages[len(others):])
    assert set(week2) == {KONTAKT, UDBUD}
    assert item_titles(bodies(parse(week2[KONTAKT][0].raw))[0])[0] == base["records"][HOFOR]["title"]


def test_addresses_that_slipped_past_validation_fail_alone_and_never_add_a_header(base, tmp_path, relays):
    # Profile files with these are refused at load; a profile built another way must still be safe.
    server = relays()
    shutil.copy(base["db"], tmp_path / "store.db")
    store = Store.open(tmp_path / "store.db")
    profiles = {p["id"]: p for p in base["profiles_by_id"].values()}
    injected = "kontakt@maaltidsvaerkstedet.example\r\nBcc: victim@evil.example"
    nul = "kontakt\x00@maaltidsvaerkstedet.example"
    recipients = [Recipient(profile_id=p["id"], name=p["name"], emails=tuple(p["emails"]),
                            language=p.get("language", "da")) for p in profiles.values()]
    recipients = [Recipient(profile_id=r.profile_id, name=r.name, language=r.language,
                            emails=(injected, nul, UDBUD) if r.profile_id == MAALTID else r.emails)
                  for r in recipients]
    settings = DigestSettings(sender="Udbudsvagten <udbud@kk.example>", base_url="https://udbud.kk.example")
    planned = plan_digests(store, recipients, period="2016-W01", as_of=date(2016, 1, 1), settings=settings,
                           secret=b"a-test-secret-of-enough-length", record=True)
    report = deliver_pending(store, SmtpSender(host="127.0.0.1", port=server.port, timeout=10),
                             from_address="udbud@kk.example", retries=0)
    failed = {plan.email: plan.error for plan in planned if plan.error}
    assert set(failed) == {injected, nul}
    assert all("is not an address a digest can be sent to" in error for error in failed.values())
    assert not report.failed and not report.pending
    assert set(by_address(server.messages)) == set(base["addresses"]) - {KONTAKT}
    for received in server.messages:
        message = parse(received.raw)
        assert message["Bcc"] is None and b"evil.example" not in received.raw
        assert [a.addr_spec for a in message["To"].addresses] == list(received.rcpt_tos)
    states = {row["email"]: row["state"] for row in store.deliveries(profile_id=MAALTID)}
    store.close()
    assert states == {injected: "failed", nul: "failed", UDBUD: "sent"}


# -- 9. a 10 MB title, and digests over the relay's size limit ------------------------------------------

MANY = 30
LIMIT_KB = 40  # [digest] max_message_kb in the test
RELAY_LIMIT = 48 * 1024  # the relay refuses bigger messages (552)


def write_notices(path: Path) -> None:
    """An OCDS package of MANY canteen tenders with long (but ordinary) descriptions."""
    deadline = date.today() + timedelta(days=40)
    releases = [{
        "ocid": f"ocds-size-{number:03d}", "id": f"size-{number:03d}-1", "date": f"{date.today()}T08:00:00Z",
        "tag": ["tender"], "language": "da",
        "buyer": {"id": "b", "name": f"Kommune nummer {number}"},
        "parties": [{"id": "b", "name": f"Kommune nummer {number}", "roles": ["buyer"]}],
        "tender": {"id": f"t{number}", "title": f"Kantinedrift og madservice, udbud nummer {number}",
                   "description": "Drift af kantinen og levering af mad til plejecentre. " * 20,
                   "status": "active", "classification": {"scheme": "CPV", "id": "55512000"},
                   "items": [{"id": "1", "classification": {"scheme": "CPV", "id": "55512000"}}],
                   "tenderPeriod": {"endDate": f"{deadline}T12:00:00Z"}},
    } for number in range(MANY)]
    path.write_text(json.dumps({"uri": "http://127.0.0.1/size.json", "version": "1.1",
                                "publishedDate": f"{date.today()}T00:00:00Z", "releases": releases}),
                    encoding="utf-8")


@pytest.fixture
def crowded(tmp_path, relays):
    """A store of MANY matched canteen tenders for two enterprises, one with room for all of
    them in a digest; the best one's stored title 10 MB, its buyer 1 MB, its link 100 KB."""
    write_notices(tmp_path / "size.json")
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    for profile_id, language, max_items in (("kantine", "da", MANY), ("madservice", "en", 20)):
        (profiles / f"{profile_id}.toml").write_text(
            f'id = "{profile_id}"\nname = "Profil {profile_id}"\nemails = ["{profile_id}@mad.example"]\n'
            f'language = "{language}"\nkeywords = ["kantinedrift"]\ncpv = ["55500000"]\nmax_items = {max_items}\n',
            encoding="utf-8")
    db = tmp_path / "store.db"
    run_cli("--db", str(db), "ingest", str(tmp_path / "size.json"), check=True)
    run_cli("--db", str(db), "--profiles", str(profiles), "match", check=True)
    log = cli_json("--db", str(db), "log", "--format", "json", "--profile", "kantine")
    assert len(log) == MANY, len(log)
    huge = min(log, key=lambda row: row["rank"])["notice_id"]
    title = ("Kantinedrift med økologisk mad " * 350_000)[:10_000_000]
    with sqlite3.connect(db) as connection:
        connection.execute(
            "UPDATE notices SET title = ?, record = json_set(record, '$.title', ?, '$.buyer.name', ?, '$.url', ?)"
            " WHERE id = ?", [title, title, "Kommune " * 130_000, "https://udbud.example/" + "x" * 100_000, huge])
    server = relays(data_size_limit=RELAY_LIMIT)
    space = Workspace(tmp_path, profiles, server.port, digest={"max_message_kb": LIMIT_KB})
    return {"space": space, "server": server, "huge": huge, "title": title, "log": log}


def test_every_digest_stays_under_the_limit_with_the_best_notices_and_the_rest_next_week(crowded):
    space, server = crowded["space"], crowded["server"]
    today = date.today()
    week = f"{today.isocalendar()[0]}-W{today.isocalendar()[1]:02d}"
    result = space.send(week, today.isoformat())
    no_traceback(result)
    assert result.returncode == 0, result.stdout + result.stderr
    grouped = by_address(server.messages)
    assert set(grouped) == {"kantine@mad.example", "madservice@mad.example"}
    for received in server.messages:
        assert len(received.raw) <= LIMIT_KB * 1024

    text, html = bodies(parse(grouped["kantine@mad.example"][0].raw))
    titles = item_titles(text)
    assert 1 < len(titles) < MANY  # fewer notices, the best first
    shown = titles[0]
    assert shown.endswith("…") and len(shown) <= 501 and crowded["title"].startswith(shown[:-1].rstrip())
    assert "https://udbud.example/xxx" not in text + html  # a link too long to be one is not shown
    left = MANY - len(titles)
    assert f"Og {left} udbud mere passer til jer" in text and f"Og {left} udbud mere" in html

    [kantine] = space.deliveries("--profile", "kantine")
    assert kantine["state"] == "sent" and kantine["items"] == len(titles) == len(kantine["notices"])
    assert kantine["notices"][0] == crowded["huge"]
    english = bodies(parse(grouped["madservice@mad.example"][0].raw))[0]
    assert re.search(r"\d+ more tenders fit you", english)

    # Next week: the ones left out, and nothing told twice.
    later = today + timedelta(days=7)
    week2 = f"{later.isocalendar()[0]}-W{later.isocalendar()[1]:02d}"
    assert space.send(week2, later.isoformat()).returncode == 0
    [second] = space.deliveries("--profile", "kantine", "--period", week2)
    assert second["notices"] and not set(second["notices"]) & set(kantine["notices"])
