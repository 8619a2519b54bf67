"""What the digest-delivery tests share (tests/notifier/test_smtp_delivery.py and the
reliability suite): the sample store ingested and matched once (``base``), a copy of it
with its own config per test (``workspace``), SMTP servers on loopback (``servers``), and
reading what arrived. The fixtures are made available through the conftest.py files."""

from __future__ import annotations

import email
import email.policy
import json
import re
import shutil
import subprocess
import tomllib
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests import configs
from tests.conftest import ROOT, SAMPLE, run_cli
from tests.notifier.smtp_server import RecordingHandler, SmtpServer

SECRET = "smtp-delivery-test-secret-0123456789"
ENV = {"TENDERMATCH_SECRET": SECRET}
SENDER = "Udbudsvagten <udbud@kk.example>"
BASE_URL = "https://udbud.kk.example"
HELD_BACK = "ted-dk/433955-2016.xml"  # madservice Rødovre (planning): ingested later, for week 2's digest
HOFOR = "ted:095237-2016"  # kantinedrift, deadline 2016-04-06 13:00 (DT_DATE_FOR_SUBMISSION)
RODOVRE = "ted:433955-2016"
MAALTID = "maaltidsvaerkstedet"
KONTAKT = "kontakt@maaltidsvaerkstedet.example"
UDBUD = "udbud@maaltidsvaerkstedet.example"


def cli_json(*args: str, env: dict | None = None):
    result = run_cli(*args, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """The whole sample (but one notice, held back for week 2) ingested and matched as of
    2016-01-01 against the ten sample profiles; read-only, each test copies the store."""
    folder = tmp_path_factory.mktemp("smtp-base")
    inbox = folder / "notices"
    shutil.copytree(SAMPLE, inbox)
    (inbox / HELD_BACK).unlink()
    profiles = folder / "profiles"
    profiles.mkdir()
    for path in (ROOT / "config" / "profiles").glob("*.toml"):
        text = path.read_text(encoding="utf-8")
        if path.stem != "maaltidsvaerkstedet":
            # The bundled notices hold few Danish ones: the others take work anywhere, so that
            # several enterprises get a digest.
            text = re.sub(r"(?m)^regions = .*$", "regions = []", text)
        (profiles / path.name).write_text(text, encoding="utf-8")
    db = folder / "store.db"
    run_cli("--db", str(db), "ingest", str(inbox), check=True)
    run_cli("--db", str(db), "--profiles", str(profiles), "match", "--as-of", "2016-01-01", check=True)
    log = cli_json("--db", str(db), "log", "--format", "json")
    records = {record["id"]: record for record in cli_json("--db", str(db), "tenders", "--format", "json")}
    found = {}
    for path in profiles.glob("*.toml"):
        profile = tomllib.loads(path.read_text(encoding="utf-8"))
        found[profile["id"]] = profile
    matched = {row["profile_id"] for row in log}
    # Every profile with a match gets a digest: checked with `digest --dry-run` and by the
    # deadlines of the matched notices (all after 2016-01-01).
    addresses = {address: profile_id for profile_id in matched for address in found[profile_id]["emails"]}
    assert len(addresses) >= 4 and {KONTAKT, UDBUD} <= set(addresses)
    return {"folder": folder, "db": db, "profiles": profiles, "log": log, "records": records, "profiles_by_id": found,
            "addresses": addresses}


class Workspace:
    """A copy of the base store with its own config pointing at an SMTP port."""

    def __init__(self, folder: Path, profiles: Path, port: int, *, digest: dict | None = None, **smtp):
        """``digest``: more [digest] settings; ``smtp``: more (or other) [smtp] settings."""
        self.folder = folder
        self.profiles = profiles
        self.db = folder / "store.db"
        self.port = port
        self.config = configs.write_config(
            folder, digest={"sender": SENDER, "base_url": BASE_URL, **(digest or {})},
            smtp={"host": "127.0.0.1", "port": port, "timeout": 10, "retries": 2, "retry_delay": 0.05, **smtp})

    def args(self, *args: str) -> list[str]:
        return ["--config", str(self.config), "--profiles", str(self.profiles), *args]

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return run_cli(*self.args(*args), env=ENV)

    def send(self, period: str = "2016-W01", as_of: str = "2016-01-01") -> subprocess.CompletedProcess:
        return self.cli("digest", "--send", "--period", period, "--as-of", as_of)

    def deliveries(self, *args: str) -> list[dict]:
        return cli_json(*self.args("deliveries", "--format", "json", *args), env=ENV)


def workspace(base, tmp_path: Path, port: int, **smtp) -> Workspace:
    for suffix in ("", "-wal", "-shm"):
        source = base["db"].with_name("store.db" + suffix)
        if source.exists():
            shutil.copy(source, tmp_path / source.name)
    return Workspace(tmp_path, base["profiles"], port, **smtp)


@pytest.fixture
def servers():
    """Start SMTP servers on 127.0.0.1 (stopped after the test)."""
    started: list[SmtpServer] = []

    def start(handler: RecordingHandler | None = None, port: int | None = None) -> SmtpServer:
        server = SmtpServer(handler or RecordingHandler(), port=port)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def parse(raw: bytes) -> EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[return-value]


def bodies(message: EmailMessage) -> tuple[str, str]:
    """(plain text, HTML) of a digest, checking it is multipart/alternative of the two."""
    assert message.get_content_type() == "multipart/alternative"
    parts = list(message.iter_parts())
    assert [part.get_content_type() for part in parts] == ["text/plain", "text/html"]
    return tuple(part.get_content().replace("\r\n", "\n") for part in parts)  # CRLF on the wire


def by_address(messages) -> dict[str, list]:
    found: dict[str, list] = {}
    for received in messages:
        assert len(received.rcpt_tos) == 1, received.rcpt_tos
        found.setdefault(received.rcpt_tos[0], []).append(received)
    return found


def assert_exactly_once(messages, addresses) -> None:
    """Every address got its digest, and one digest only: whatever arrived twice (a
    message in flight when a run died) is the same message, with the same Message-ID."""
    grouped = by_address(messages)
    assert set(grouped) == set(addresses)
    for address, received in grouped.items():
        ids = {message_id(parse(item.raw)) for item in received}
        assert len(ids) == 1, f"{address} got {len(ids)} different digests: {ids}"


def message_id(message: EmailMessage) -> str:
    """The Message-ID without the folding whitespace before it (RFC 5322 allows CFWS there,
    and a long id is folded onto its own line)."""
    return str(message["Message-ID"]).strip()


def unsubscribe_links(message: EmailMessage) -> tuple[str, str]:
    links = re.findall(r"<([^<>]+)>", str(message["List-Unsubscribe"]))
    assert len(links) == 2, message["List-Unsubscribe"]
    https = next(link for link in links if link.startswith("https:"))
    mailto = next(link for link in links if link.startswith("mailto:"))
    return https, mailto


def item_titles(text: str) -> list[str]:
    """The numbered item titles of the plain-text body, in order."""
    return re.findall(r"^\d+\. (.+)$", text, re.MULTILINE)
