"""A store filled the way production fills it (crawl from a local site -> match -> digest
sent to a local SMTP server), and `tendermatch serve` on it as a real process.

The site's notices are written for today: deadlines and agreement end dates are days
from now, so "open" and "ending within 12 months" keep meaning the same rows whenever the
tests run.
"""

from __future__ import annotations

import email
import email.policy
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import date, timedelta
from email.message import EmailMessage
from pathlib import Path

from tests import configs
from tests.conftest import ROOT, cli_env, run_cli
from tests.forked import ForkedCli, start_cli

SECRET = "web-tests-secret-0123456789abcdef"
STAFF_PASSWORD = "korrekt hest batteri"
# tendermatch hash-password of STAFF_PASSWORD (made once; hashing takes half a second).
STAFF_PASSWORD_HASH = ("pbkdf2_sha256$480000$5f0c1d2e3b4a59687766554433221100"
                       "$UXolA2ZCM7MMQi29fwciFdomC4spyxwyI3jZ8VEcrPU=")


@dataclass(frozen=True)
class Tender:
    title: str
    buyer: str
    days_left: int  # the deadline, in days from today (negative: closed)
    cpv: str
    description: str


@dataclass(frozen=True)
class Agreement:
    title: str
    buyer: str
    supplier: str
    days_left: int  # the end date, in days from today
    slug: str


TENDERS = (
    # The two that match are in Hovedstaden, the sample profiles' region (DK01)
    Tender("Erhvervsrengøring af kommunens plejecentre", "Gladsaxe Kommune", 40, "90911200-8",
           "Daglig rengøring og vinduespudsning af 6 plejecentre. Kontrakten har en social klausul om praktikanter."),
    Tender("Kantinedrift og frokostordning på rådhuset", "Frederiksberg Kommune", 30, "55510000-8",
           "Drift af kantinen og mødeforplejning på Frederiksberg Rådhus."),
    Tender("Levering af kontorartikler", "Roskilde Kommune", 25, "30192000-1",
           "Levering af papir, kuverter og kontorartikler til kommunens administration."),
    Tender("Asfaltarbejder på kommunens veje", "Holbæk Kommune", 50, "45233222-1",
           "Udlægning af asfalt på kommunale veje og stier."),
    Tender("Snerydning og glatførebekæmpelse", "Holbæk Kommune", -10, "90620000-9",
           "Vintertjeneste på veje og stier."),
)

AGREEMENTS = (
    Agreement("Vagtordning i kommunale bygninger", "Københavns Kommune", "Klar Udsigt ApS", 100,
              "vinduespudsning"),
    Agreement("Kontorartikler og papir", "Københavns Kommune", "Nordisk Kontorforsyning A/S", 500, "kontor"),
    Agreement("Flytte- og magasineringsydelser", "Frederiksberg Kommune", "Hovedstadens Flytteforretning ApS", -20,
              "flytning"),
)

AGREEMENT_SELECTORS = ('{ row = "table#aftaler tbody tr", title = "td.omraade", link = "td.omraade a",'
                       ' supplier = "td.leverandoer", valid_until = "td.udloeb", buyer = "td.ordregiver" }')


def _day(days: int) -> date:
    return date.today() + timedelta(days=days)


def write_site(folder: Path) -> None:
    """An RSS feed of TENDERS and a page of AGREEMENTS, dated from today."""
    folder.mkdir(parents=True, exist_ok=True)
    items = []
    for number, tender in enumerate(TENDERS, 1):
        deadline = _day(tender.days_left).strftime("%d.%m.%Y")
        items.append(
            f"<item><title>{tender.title}</title><link>https://udbud.sjaelland.example/udbud/{number}</link>"
            f"<guid>https://udbud.sjaelland.example/udbud/{number}</guid><dc:creator>{tender.buyer}</dc:creator>"
            f"<description>&lt;p&gt;{tender.description}&lt;/p&gt;"
            f"&lt;p&gt;Tilbudsfrist: {deadline} kl. 12:00&lt;/p&gt;&lt;p&gt;CPV: {tender.cpv}&lt;/p&gt;"
            "</description></item>")
    (folder / "udbud.xml").write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/">'
        "<channel><title>Udbud</title><link>https://udbud.sjaelland.example/</link><language>da-dk</language>"
        + "".join(items) + "</channel></rss>\n", encoding="utf-8")
    rows = "".join(
        f'<tr><td class="omraade"><a href="aftaler/{agreement.slug}.html">{agreement.title}</a></td>'
        f'<td class="leverandoer">{agreement.supplier}</td><td class="ordregiver">{agreement.buyer}</td>'
        f'<td class="udloeb">{_day(agreement.days_left).strftime("%d.%m.%Y")}</td></tr>'
        for agreement in AGREEMENTS)
    (folder / "aftaler.html").write_text(
        '<!DOCTYPE html><html lang="da"><head><meta charset="utf-8"><title>Leverandøraftaler</title></head><body>'
        '<table id="aftaler"><thead><tr><th>Område</th><th>Leverandør</th><th>Ordregiver</th><th>Udløber</th></tr>'
        f"</thead><tbody>{rows}</tbody></table></body></html>\n", encoding="utf-8")


def write_console_config(folder: Path, *, site_url: str, smtp_port: int, serve_port: int, extra: str = "") -> Path:
    """A config with the shipped profiles, the two sources, [smtp] on ``smtp_port`` and
    unsubscribe links pointing at ``serve_port``; ``extra``: more [serve] lines."""
    profiles = folder / "profiles"
    if not profiles.exists():
        shutil.copytree(ROOT / "config" / "profiles", profiles)
    return configs.write_config(
        folder, matcher={"profiles": "profiles"}, smtp=configs.smtp_section(smtp_port),
        digest={"sender": configs.SENDER, "base_url": f"http://127.0.0.1:{serve_port}"},
        serve={"port": serve_port}, extra=extra,
        sources=[{"name": "sjaelland", "kind": "feed", "url": f"{site_url}/udbud.xml"},
                 {"name": "kk-aftaler", "kind": "html", "notice_kind": "agreement", "url": f"{site_url}/aftaler.html",
                  "selectors": configs.Raw(AGREEMENT_SELECTORS)}])


def secret_env(**more: str) -> dict[str, str]:
    return {"TENDERMATCH_SECRET": SECRET, **more}


def fill_store(config: Path) -> None:
    """crawl -> match -> digest --send, as an operator would run them."""
    args = ("--config", str(config))
    run_cli(*args, "crawl", check=True, env=secret_env())
    run_cli(*args, "match", check=True, env=secret_env())
    run_cli(*args, "digest", "--send", check=True, env=secret_env())


def parse_message(raw: bytes) -> EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)


def unsubscribe_url(message: EmailMessage) -> str:
    """The https/http URL of a digest's List-Unsubscribe header."""
    found = re.search(r"<(https?://[^>]+)>", str(message["List-Unsubscribe"]))
    assert found, message["List-Unsubscribe"]
    return found.group(1)


@dataclass
class ServeProcess:
    """`tendermatch --config CONFIG serve` in its own process; stderr goes to ``log_path``."""

    config: Path
    port: int
    env: dict[str, str] = field(default_factory=secret_env)
    process: subprocess.Popen | ForkedCli | None = None
    # A fresh interpreter, not a fork of this process: for a test that measures its memory
    # (a forked child's peak counts the pages it shares with the test process).
    fresh: bool = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.config.parent / f"serve-{self.port}.log"

    def start(self, *, timeout: float = 30.0) -> ServeProcess:
        full_env = cli_env(self.env)
        command = ["--config", str(self.config), "serve", "--port", str(self.port)]
        with open(os.devnull, "wb") as devnull, self.log_path.open("wb") as log:
            # Forked from this process when it can be (tests/forked.py): a second of CPU less per start.
            self.process = start_cli(command, cwd=ROOT, env=full_env, stdout=devnull, stderr=log, fresh=self.fresh)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"serve exited {self.process.returncode}:\n{self.log()}")
            try:
                urllib.request.urlopen(self.url + "/-/login", timeout=2).close()
                return self
            except urllib.error.HTTPError:
                return self  # it answers
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"serve did not answer within {timeout} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def stop(self) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


@dataclass
class Served:
    """A filled store being served: the config, the server and the digests the SMTP server got."""

    folder: Path
    config: Path
    server: ServeProcess
    messages: list[EmailMessage]  # the digests the SMTP server accepted while the store was filled
    smtp: object = None  # the SmtpServer, still running: a later digest run sends to it

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def store(self) -> Path:
        return self.folder / "store.db"



# -- the console: personal accounts ---------------------------------------------------------------

STAFF_USER, VIEWER_USER = "anna.staff", "bo.viewer"
USER_PASSWORD = "lange hemmelige ord 42"
OWN_BUYERS = ("Holbæk Kommune", "Roskilde Kommune")


def add_user(config: Path, name: str, role: str, password: str = USER_PASSWORD) -> subprocess.CompletedProcess:
    """`tendermatch users add NAME --role ROLE --password-stdin`, as an operator would run it."""
    return run_cli("--config", str(config), "users", "add", name, "--role", role, "--password-stdin",
                   input=password + "\n")
