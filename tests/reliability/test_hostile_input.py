"""Hostile input, through `tendermatch ingest` (files on disk) and `tendermatch crawl` (a
local HTTP server): XXE and billion laughs, a 100 MB document, truncated and binary files,
wrong encodings, script and style in titles, JSON with the wrong types, a listing page whose
layout changed, an emptied feed and a TED search response cut off mid-stream.

Each hostile document is rejected (or flagged) with a reason that names it, the good
documents of the same run are stored, and no byte of a local file an entity points at ever
reaches the store, the command output or a digest e-mail sent to a real SMTP server.
"""

from __future__ import annotations

import base64
import gzip
import json
import random
import re
import shutil
import sqlite3
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

import pytest
from lxml import etree
from lxml import html as lxml_html

from benchmarks.peak import Measured, run_with_peak
from tendermatch.store import Store, decompress
from tests.conftest import ROOT, SAMPLE, cli_env, run_cli
from tests.fixtures.web.selectors import ROSKILDE_UDBUD
from tests.notifier.smtp_server import RecordingHandler, SmtpServer
from tests.reliability.helpers import (
    MB,
    OCDS_BASE,
    Reply,
    Site,
    newest_runs,
    source,
    stored,
    write_digest_config,
)
from tests.web.served import parse_message, secret_env

pytestmark = pytest.mark.slow

# A string found in one local file only; entities in hostile documents point at that file.
CANARY = f"kanarie-{uuid.uuid4().hex[:10]}-lokal-fil-hemmelig"

# The real TED notice 095237-2016: HOFOR's canteen contract (deadline 2016-04-06 13:00).
TED_BASE = SAMPLE / "ted-dk" / "095237-2016.xml"
TED_TITLE = "Kontrakt om kantinedrift for Vejlandshuset og/eller Amagerværket."
EFORMS_BASE = SAMPLE / "eforms" / "665431-2023-slagelse.xml"  # real, Danish
EFORMS_GOOD = SAMPLE / "eforms" / "sdk-cn-social_24.xml"
TED_API_GOOD = SAMPLE / "ted-api" / "633448-2021.json"
AS_OF = "2016-03-25"  # the TED notices and the web pages' deadlines below are open then
PERIOD = "2016-W12"
DANISH_TITLE = "Kantinedrift på Ærø, i Ølstykke og Åbyhøj"  # of the Latin-1 and the UTF-16 notice


# --------------------------------------------------------------------------- hostile documents


def ted_notice(number: str, title: str) -> bytes:
    """The real TED notice 095237-2016 as notice ``number``-2016 with another title."""
    content = TED_BASE.read_bytes()
    original = f"<P>{TED_TITLE}</P>".encode()
    assert original in content
    return content.replace(b"095237", number.encode()).replace(original, f"<P>{title}</P>".encode())


def with_doctype(content: bytes, doctype: str, *, padding: int = 0) -> bytes:
    """``content`` with a DOCTYPE after its XML declaration (behind a comment of ``padding`` bytes)."""
    declaration, rest = content.split(b"?>", 1)
    comment = b"<!--" + b"p" * padding + b"-->\n" if padding else b""
    return declaration + b"?>\n" + comment + doctype.encode() + b"\n" + rest


def billion_laughs(content: bytes, title: str) -> bytes:
    entities = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{level} "{("&lol" + (str(level - 1) if level > 1 else "") + ";") * 10}">'
        for level in range(1, 10))
    return with_doctype(content.replace(title.encode(), b"&lol9;"), f"<!DOCTYPE TED_EXPORT [{entities}]>")


def write_huge_notice(path: Path, size: int) -> None:
    """A valid-looking TED notice of ``size`` bytes: the real notice with a huge comment
    before its last line, written in 1 MB pieces (never whole in memory)."""
    content = ted_notice("900050", "Kantinedrift i kæmpestørrelse")
    head, tail = content[: content.rindex(b"</TED_EXPORT>")], b"-->\n</TED_EXPORT>\n"
    with path.open("wb") as out:
        out.write(head + b"<!--")
        left = size - len(head) - 4 - len(tail)
        piece = b"polstring " * (MB // 10)
        while left > 0:
            out.write(piece[:left])
            left -= len(piece[:left])
        out.write(tail)


def ocds_variants() -> dict[str, bytes]:
    """OCDS release packages, each built on a real Sell2Wales release with 3 lots; all but
    the first have a field of the wrong type."""
    base = next(json.loads(line) for line in OCDS_BASE.read_text(encoding="utf-8").splitlines()
                if len((json.loads(line).get("tender") or {}).get("lots") or []) == 3)

    def package(name: str, change: Callable[[dict], Any]) -> bytes:
        release = json.loads(json.dumps(base))
        release["ocid"] = release["id"] = f"{base['ocid']}-{name}"
        change(release)
        return json.dumps({"uri": f"https://ocds.example/{name}", "version": "1.1",
                           "publishedDate": "2016-03-20T00:00:00Z", "releases": [release]}).encode()

    def tender(**values: Any) -> Callable[[dict], None]:
        return lambda release: release["tender"].update(values)

    return {
        "ocds-good.json": package("good", lambda r: None),
        "ocds-title-number.json": package("title-number", tender(title=4711)),
        "ocds-title-list.json": package("title-list", tender(title=["Rengøring", {"da": "af skoler"}])),
        "ocds-lots-string.json": package("lots-string", tender(lots="tre delaftaler")),
        "ocds-dates-garbage.json": package("dates-garbage", lambda r: (
            r.update(date="i går"), r["tender"].update(tenderPeriod={"endDate": "snart, kl. 25:99"},
                                                       contractPeriod={"startDate": 20160401}))),
        "ocds-amount-abc.json": package("amount-abc", lambda r: (
            r["tender"].update(value={"amount": "abc", "currency": 7}),
            r["tender"]["lots"][0].update(value={"amount": "abc", "currency": "GBP"}))),
        "ocds-tender-null.json": package("tender-null", lambda r: r.update(tender=None)),
        "ocds-releases-string.json": json.dumps({"version": "1.1", "releases": "ingen"}).encode(),
        "ocds-releases-junk.json": json.dumps({"version": "1.1", "releases": [1, None, "x", []]}).encode(),
    }


def ted_api_variants(xxe_xml: bytes) -> dict[str, bytes]:
    """TED search API JSON: a real v2 record, and records and v3 pages of the wrong types."""
    return {
        "tedapi-good.json": TED_API_GOOD.read_bytes(),
        "tedapi-v3-types.json": json.dumps({
            "notices": [
                {"publication-number": ["900201-2016"], "notice-title": {"dan": ["Rengøring", 3]},
                 "buyer-name": "Holbæk Kommune", "publication-date": "i går",
                 "deadline-receipt-tender-date-lot": "snart",
                 "estimated-value-lot": "abc", "links": {"xml": {"MUL": 17}}},
                {"publication-number": "900202-2016", "notice-title": 42, "publication-date": 20160321,
                 "deadline-receipt-tender-date-lot": [20160415], "links": "ingen"},
                None, "x", [],
            ],
            "totalNoticeCount": "mange", "iterationNextToken": 5}).encode(),
        "tedapi-v3-notices-string.json": json.dumps({"notices": "ingen", "totalNoticeCount": 1}).encode(),
        "tedapi-v2-types.json": json.dumps({"ND": 5, "PD": [], "TI": {"x": 1}, "content": 7}).encode(),
        "tedapi-v2-xxe.json": json.dumps({"ND": "900203-2016", "content": base64.b64encode(xxe_xml).decode()}).encode(),
    }


@dataclass
class Hostile:
    """The hostile files (in ``files``) and the local files their entities point at."""

    folder: Path
    files: Path
    canary: Path
    dtd: Path


def build_hostile(folder: Path) -> Hostile:
    files = folder / "files"
    files.mkdir(parents=True)
    canary = folder / "secret" / "canary.txt"
    canary.parent.mkdir()
    canary.write_text(CANARY + "\n", encoding="utf-8")
    dtd = folder / "secret" / "evil.dtd"
    dtd.write_text(f'<!ENTITY canary SYSTEM "{canary.as_uri()}">\n', encoding="utf-8")

    def put(name: str, content: bytes) -> None:
        (files / name).write_bytes(content)

    put("good-ted-095237-2016.xml", TED_BASE.read_bytes())
    put("good-eforms.xml", EFORMS_GOOD.read_bytes())
    xxe = with_doctype(ted_notice("900001", "&xxe; kantinedrift"),
                       f'<!DOCTYPE TED_EXPORT [<!ENTITY xxe SYSTEM "{canary.as_uri()}">]>')
    put("xxe-internal-subset.xml", xxe)
    put("xxe-parameter-entity.xml",
        with_doctype(ted_notice("900002", "&canary; kantinedrift"),
                     f'<!DOCTYPE TED_EXPORT [<!ENTITY % ext SYSTEM "{dtd.as_uri()}"> %ext;]>'))
    put("xxe-external-dtd.xml", with_doctype(ted_notice("900003", "&canary; kantinedrift"),
                                             f'<!DOCTYPE TED_EXPORT SYSTEM "{dtd.as_uri()}">'))
    # Past the first 64 KB, where the quick search for a DOCTYPE does not look.
    put("xxe-behind-padding.xml", with_doctype(ted_notice("900004", "&canary; kantinedrift"),
                                               f'<!DOCTYPE TED_EXPORT SYSTEM "{dtd.as_uri()}">', padding=70_000))
    eforms = EFORMS_BASE.read_bytes()
    assert b"Gaskonvertering Slagelse Vest 2024" in eforms
    put("xxe-eforms.xml", with_doctype(eforms.replace(b">Gaskonvertering Slagelse Vest 2024<", b">&xxe; kantinedrift<"),
                                       f'<!DOCTYPE ContractNotice [<!ENTITY xxe SYSTEM "{canary.as_uri()}">]>'))
    put("billion-laughs.xml", billion_laughs(ted_notice("900005", "Kantinedrift LOL"), "Kantinedrift LOL"))
    write_huge_notice(files / "huge-100mb.xml", 100 * MB)
    half = ted_notice("900006", "Kantinedrift halveret")
    put("truncated-ted.xml", half[: len(half) // 2])
    put("truncated-eforms.xml", EFORMS_GOOD.read_bytes()[:3000])
    put("random-bytes.xml", random.Random(7).randbytes(8192))
    put("image.png.xml", (ROOT / "docs" / "match-log.png").read_bytes())
    put("gzipped.xml", gzip.compress(ted_notice("900007", "Kantinedrift pakket")))
    latin1 = ted_notice("900008", DANISH_TITLE).decode("utf-8").encode("latin-1", "xmlcharrefreplace")
    assert b'encoding="UTF-8"' in latin1[:60]
    put("latin1-declared-utf8.xml", latin1)
    utf16 = ted_notice("900009", DANISH_TITLE).replace(b'encoding="UTF-8"', b'encoding="UTF-16"').decode("utf-8")
    put("utf16-bom.xml", utf16.encode("utf-16"))  # with a BOM: valid XML, expected to be read
    for name, content in {**ocds_variants(), **ted_api_variants(xxe)}.items():
        put(name, content)
    return Hostile(folder, files, canary, dtd)


# --------------------------------------------------------------------------- web pages


def rss(items: list[tuple[str, str]]) -> str:
    """An RSS 2.0 feed; ``items`` are (title XML, link)."""
    body = "".join(
        f"<item><title>{title}</title><link>{link}</link><guid>{link}</guid>"
        f"<dc:creator>Holbæk Kommune</dc:creator><pubDate>Mon, 21 Mar 2016 09:00:00 +0100</pubDate>"
        "<description>&lt;p&gt;Tilbudsfrist: 15.04.2016 kl. 12:00&lt;/p&gt;</description></item>"
        for title, link in items)
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/">'
            f"<channel><title>Udbud</title><link>https://udbud.example/</link><language>da-dk</language>{body}"
            "</channel></rss>\n")


MARKUP_FEED = rss([
    # Escaped HTML in a title (how most feeds carry markup)
    ("Rengøring af skoler &lt;script&gt;alert(1)&lt;/script&gt;&lt;style&gt;body{display:none}&lt;/style&gt;",
     "https://udbud.example/feed/1"),
    # Raw HTML in CDATA, with an event handler
    (('<![CDATA[Vinduespudsning <script>alert(2)</script><style>p{color:red}</style>'
      '<img src="x" onerror="alert(3)"> på rådhuset]]>'), "https://udbud.example/feed/2"),
    # Escaped twice: the publisher shows the text "<script>..." itself
    ("Rengøring af &amp;lt;script&amp;gt;alert(4)&amp;lt;/script&amp;gt; kontorer", "https://udbud.example/feed/3"),
])
MARKUP_FEED_TITLES = {
    "https://udbud.example/feed/1": "Rengøring af skoler",
    "https://udbud.example/feed/2": "Vinduespudsning på rådhuset",
    "https://udbud.example/feed/3": "Rengøring af <script>alert(4)</script> kontorer",
}

LISTING_SELECTORS = {"row": "table.udbudsliste tbody tr.udbud", "title": "td.titel", "link": "td.titel a",
                     "deadline": "td.frist", "buyer": "td.udbyder"}


def listing(rows: list[str], *, meta: str = '<meta charset="utf-8">') -> str:
    cells = "".join(
        f'<tr class="udbud"><td class="titel">{title}</td><td class="frist">15.04.2016 kl. 12.00</td>'
        f'<td class="udbyder">Roskilde Kommune</td></tr>' for title in rows)
    return (f'<!DOCTYPE html><html lang="da"><head>{meta}<title>Udbud</title></head><body>'
            f'<table class="udbudsliste"><tbody>{cells}</tbody></table></body></html>\n')


MARKUP_PAGE = listing([
    '<a href="/udbud/1">Rengøring af plejecentre <script>alert(5)</script><style>td{color:red}</style></a>',
    '<a href="/udbud/2" onclick="alert(6)">Vinduespudsning af skoler<img src="x" onerror="alert(7)"></a>',
    '<a href="/udbud/3">Rengøring &lt;script&gt;alert(8)&lt;/script&gt; af biblioteker</a>',
])
MARKUP_PAGE_TITLES = {
    "/udbud/1": "Rengøring af plejecentre",
    "/udbud/2": "Vinduespudsning af skoler",
    "/udbud/3": "Rengøring <script>alert(8)</script> af biblioteker",
}
NOTICE_CSS = ("display:none", "p{color:red}", "td{color:red}")

CHARSET_FEED_TITLE = "Rengøring af Ærøskøbing Skole og Åbyhøj Børnehave"
CHARSET_PAGE_TITLE = "Vinduespudsning på Østerbro og Ålholm Rådhus"
NOMETA_PAGE_TITLE = "Rengøring af Sønderborg Rådhus og Æblehaven"


# --------------------------------------------------------------------------- a loopback server


# Site (the server) and Reply are in tests/reliability/helpers.py, shared with test_isolation_records.py.


class TedSearch:
    """``POST .../v3/notices/search`` of the TED Search API v3 (iteration mode) over
    ``notices``, recording each query. ``fault`` cuts page ``fault_page`` short: "hang-up"
    announces the whole body and closes the connection halfway; "cut-json" sends half the
    JSON with a Content-Length that matches it."""

    def __init__(self, notices: list[dict[str, Any]], *, fault: str | None = None, fault_page: int = 2):
        self.notices = notices
        self.fault = fault
        self.fault_page = fault_page
        self.queries: list[str] = []

    def __call__(self, body: bytes) -> Reply:
        request = json.loads(body)
        self.queries.append(request["query"])
        limit = int(request.get("limit", 10))
        start = int(request.get("iterationNextToken") or 0)
        end = start + limit
        page = json.dumps({"notices": self.notices[start:end], "totalNoticeCount": len(self.notices),
                           "iterationNextToken": str(end) if end < len(self.notices) else None,
                           "timedOut": False}).encode()
        if self.fault and start // limit + 1 == self.fault_page:
            if self.fault == "hang-up":
                return Reply(page, "application/json", cut_after=len(page) // 2)
            return Reply(page[: len(page) // 2], "application/json")
        return Reply(page, "application/json")


def ted_item(number: str, xml_url: Any) -> dict[str, Any]:
    return {"publication-number": number, "links": {"xml": {"MUL": xml_url}}}


# --------------------------------------------------------------------------- config and store


# write_digest_config, source, newest_runs and stored are in tests/reliability/helpers.py, shared
# with test_isolation_records.py.


def run_measured(*args: str, env: dict[str, str], timeout: float = 300) -> Measured:
    """Like tests.conftest.run_cli, always as a real process, and also that process's own
    peak memory (benchmarks/peak.py: not counting this test process's, which a child
    would otherwise inherit up to its exec)."""
    full_env = cli_env(env)
    try:
        return run_with_peak([sys.executable, "-m", "tendermatch", *args], cwd=ROOT, env=full_env, timeout=timeout)
    except TimeoutError:
        raise AssertionError(f"tendermatch {' '.join(args)} did not end within {timeout} s") from None


def rejections(store_path: Path) -> dict[tuple[str, str], str]:
    """(source, url) -> reason, from the store's rejections table."""
    with sqlite3.connect(store_path) as db:
        return {(source, url): reason for source, url, reason in
                db.execute("SELECT source, url, reason FROM rejections ORDER BY id")}


def store_text(store_path: Path) -> str:
    """Everything the store holds as text: a full SQL dump plus every kept document unpacked."""
    with sqlite3.connect(store_path) as db:
        dump = "\n".join(db.iterdump())
        kept = [decompress(row[0]).decode("utf-8", "replace")
                for row in db.execute("SELECT content FROM raw_documents WHERE content IS NOT NULL")]
    return dump + "\n".join(kept)


def email_text(raw: bytes) -> str:
    """A message's bytes and every decoded part, as text."""
    message = parse_message(raw)
    parts = [part.get_content() for part in message.walk() if not part.is_multipart()]
    return raw.decode("utf-8", "replace") + "\n".join(str(part) for part in parts)


def html_parts(raw: bytes) -> list[str]:
    message = parse_message(raw)
    return [part.get_content() for part in message.walk() if part.get_content_type() == "text/html"]


# --------------------------------------------------------------------------- one hostile run, shared

INGEST, FILES, HTTP = "ingest", "files-hostile", "ted-hostile"  # the three ways the files come in
# a process peaks at 80-210 MB (by machine and venv); expanded laughs (GBs) or the 100 MB file parsed pass it far
PEAK_MB = 300


@dataclass
class World:
    hostile: Hostile
    site: Site
    config: Path
    store: Path
    ingest: Measured
    after_ingest: str  # the store's text right after the ingest (see store_text)
    crawl: Measured
    match: CompletedProcess
    digest: CompletedProcess
    messages: list[bytes]
    notices: dict[str, dict[str, Any]]
    runs: dict[str, dict[str, Any]]
    rejections: dict[tuple[str, str], str]

    def url(self, name: str, via: str) -> str:
        """The URL a file was read from: by ``ingest`` or the ``files`` source, or over HTTP."""
        return f"{self.site.url}/notices/{name}" if via == HTTP else (self.hostile.files / name).resolve().as_uri()

    def reason(self, name: str, via: str) -> str | None:
        return self.rejections.get((via, self.url(name, via)))

    def output(self) -> str:
        return "\n".join(part for ran in (self.ingest, self.crawl, self.match, self.digest)
                         for part in (ran.stdout, ran.stderr))


def serve_hostile(site: Site, hostile: Hostile) -> list[str]:
    """Routes for every hostile document and web page; returns the crawl's sources."""
    for path in hostile.files.iterdir():
        site.routes[f"/notices/{path.name}"] = Reply(
            path, "application/xml" if path.suffix == ".xml" else "application/json")
    xml_files = sorted(path for path in hostile.files.iterdir() if path.suffix == ".xml")
    site.routes["/ted/v3/notices/search"] = TedSearch(
        [ted_item(path.stem, f"{site.url}/notices/{path.name}") for path in xml_files])
    entity = f'<!DOCTYPE rss [<!ENTITY xxe SYSTEM "{hostile.canary.as_uri()}">]>'
    xxe_feed = with_doctype(rss([("&xxe; rengøring", "https://udbud.example/xxe/1")]).encode(), entity)
    padded_feed = with_doctype(rss([("&canary; rengøring", "https://udbud.example/xxe/2")]).encode(),
                               f'<!DOCTYPE rss SYSTEM "{hostile.dtd.as_uri()}">', padding=70_000)
    site.routes.update({
        "/feed-markup.xml": Reply(MARKUP_FEED.encode(), "application/rss+xml; charset=utf-8"),
        "/feed-xxe.xml": Reply(xxe_feed, "application/rss+xml"),
        "/feed-xxe-padded.xml": Reply(padded_feed, "application/rss+xml"),
        # UTF-8 (declared in the document) but the header says Latin-1
        "/feed-charset.xml": Reply(rss([(CHARSET_FEED_TITLE, "https://udbud.example/charset/1")]).encode(),
                                   "application/rss+xml; charset=iso-8859-1"),
        "/udbud.html": Reply(MARKUP_PAGE.encode(), "text/html; charset=utf-8"),
        # windows-1252 (declared in the page) but the header says UTF-8
        "/udbud-1252.html": Reply(listing([f'<a href="/side/1">{CHARSET_PAGE_TITLE}</a>'],
                                          meta='<meta charset="windows-1252">').encode("windows-1252"),
                                  "text/html; charset=utf-8"),
        # UTF-8, not declared in the page, and the header says Latin-1
        "/udbud-nometa.html": Reply(listing([f'<a href="/side/2">{NOMETA_PAGE_TITLE}</a>'], meta="").encode(),
                                    "text/html; charset=iso-8859-1"),
    })
    ocds = sorted(path.name for path in hostile.files.glob("ocds-*.json"))
    return [
        source(HTTP, "ted", url=f"{site.url}/ted", query="buyer-country IN (DNK)", limit=100),
        source("feed-markup", "feed", url=f"{site.url}/feed-markup.xml"),
        source("feed-xxe", "feed", url=f"{site.url}/feed-xxe.xml"),
        source("feed-xxe-padded", "feed", url=f"{site.url}/feed-xxe-padded.xml"),
        source("feed-charset", "feed", url=f"{site.url}/feed-charset.xml"),
        source("page-markup", "html", url=f"{site.url}/udbud.html", selectors=LISTING_SELECTORS),
        source("page-charset", "html", url=f"{site.url}/udbud-1252.html", selectors=LISTING_SELECTORS),
        source("page-nometa", "html", url=f"{site.url}/udbud-nometa.html", selectors=LISTING_SELECTORS),
        source("ocds-types", "ocds", url=f"{site.url}/notices/{ocds[0]}",
               urls=[f"{site.url}/notices/{name}" for name in ocds[1:]]),
        source(FILES, "files", path=str(hostile.files)),
    ]


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    """Ingest the hostile files, crawl them and hostile pages over HTTP (and as a `files`
    source) into the same store, match, and send the digest to a real SMTP server."""
    folder = tmp_path_factory.mktemp("hostile")
    hostile = build_hostile(folder)
    site = Site()
    smtp = SmtpServer(RecordingHandler())
    try:
        config = write_digest_config(folder, sources=serve_hostile(site, hostile), smtp_port=smtp.port)
        args = ("--config", str(config))
        ingest = run_measured(*args, "ingest", str(hostile.files), env=secret_env())
        after_ingest = store_text(folder / "store.db")
        crawl = run_measured(*args, "crawl", env=secret_env())
        match = run_cli(*args, "match", "--as-of", AS_OF, env=secret_env(), timeout=120)
        digest = run_cli(*args, "digest", "--send", "--as-of", AS_OF, "--period", PERIOD, env=secret_env(), timeout=120)
        notices = {record["id"]: record for record in stored(config)}
        yield World(hostile, site, config, folder / "store.db", ingest, after_ingest, crawl, match, digest,
                    [message.raw for message in smtp.messages], notices, newest_runs(config),
                    rejections(folder / "store.db"))
    finally:
        smtp.stop()
        site.close()


def by_url(world: World, url_end: str) -> dict[str, Any]:
    (record,) = [r for r in world.notices.values() if r["url"] and r["url"].endswith(url_end)]
    return record


XXE_FILES = ("xxe-internal-subset.xml", "xxe-parameter-entity.xml", "xxe-external-dtd.xml", "xxe-eforms.xml")


# --------------------------------------------------------------------------- 1. XXE


def test_xml_declaring_entities_is_refused_by_ingest_and_crawl_naming_the_document(world):
    for name in XXE_FILES:
        for via in (INGEST, FILES, HTTP):
            reason = world.reason(name, via)
            assert reason and "DTD or entity declarations is not accepted" in reason, (name, via, reason)
            assert f"rejected {world.url(name, via)}: {reason}" in world.output()
    # the same XML inside a TED API record (base64), read from disk
    for via in (INGEST, FILES):
        assert "DTD or entity declarations" in world.reason("tedapi-v2-xxe.json", via)
    # feeds, one with the DOCTYPE behind a 70 KB comment (past the quick search of the head)
    for name in ("feed-xxe", "feed-xxe-padded"):
        (reason,) = [r for (source_, _), r in world.rejections.items() if source_ == name]
        assert "DTD or entity declarations is not accepted" in reason
    assert world.ingest.returncode == 1 and world.crawl.returncode == 1
    assert "Traceback" not in world.ingest.stderr + world.crawl.stderr


def test_no_byte_of_the_local_file_an_entity_names_reaches_the_store_the_output_or_an_email(world):
    # The hostile files do reach the canary when parsed naively: the check below can fail.
    naive = etree.XMLParser(resolve_entities=True, load_dtd=True, no_network=True)
    for name in XXE_FILES:
        root = etree.fromstring((world.hostile.files / name).read_bytes(), naive)
        assert CANARY in "".join(root.itertext()), name

    # every table and every kept document unpacked, after the ingest and after the crawl
    assert CANARY not in world.after_ingest and "ted:095237-2016" in world.after_ingest
    assert CANARY not in store_text(world.store)
    assert CANARY not in json.dumps(list(world.notices.values()), ensure_ascii=False)
    assert CANARY not in world.output()
    # The digest went out, with the hostile run's notices in it, and without the canary.
    assert len(world.messages) == 1, world.digest.stdout + world.digest.stderr
    text = email_text(world.messages[0])
    assert "Kontrakt om kantinedrift for Vejlandshuset" in text and "Vinduespudsning på rådhuset" in text
    assert CANARY not in text and "kanarie" not in text


# --------------------------------------------------------------------------- 2. billion laughs


def test_billion_laughs_is_refused_unexpanded_and_the_run_finishes(world):
    for via in (INGEST, FILES, HTTP):
        assert "DTD or entity declarations is not accepted" in world.reason("billion-laughs.xml", via), via
    assert f"rejected {world.url('billion-laughs.xml', INGEST)}: XML with a DTD" in world.ingest.stderr
    assert world.ingest.returncode == 1 and world.crawl.returncode == 1  # finished, and said something was refused
    assert world.ingest.peak_mb < PEAK_MB and world.crawl.peak_mb < PEAK_MB  # 10^9 "lol"s would be 3 GB
    assert not any("lollol" in (r["title"] or "") for r in world.notices.values())


# --------------------------------------------------------------------------- 3. 100 MB


def test_a_100_mb_document_is_refused_unread_with_its_size_and_the_limit(world):
    name = "huge-100mb.xml"
    assert (world.hostile.files / name).stat().st_size == 100 * MB
    for via in (INGEST, FILES):
        assert world.reason(name, via) == "document is 100.0 MB, over the 20 MB limit", via
    assert f"rejected {world.url(name, INGEST)}: document is 100.0 MB, over the 20 MB limit" in world.ingest.stderr
    # Over HTTP Scrapy's DOWNLOAD_MAXSIZE stops the download (in MB or in bytes).
    over_http = world.reason(name, HTTP)
    assert over_http and re.search(r"(100\.0 MB|104857600).*(20 MB|20971520)", over_http), over_http
    assert f"{world.url(name, HTTP)}: " in world.crawl.stderr
    assert world.ingest.peak_mb < PEAK_MB and world.crawl.peak_mb < PEAK_MB  # never held in memory
    assert "ted:900050-2016" not in world.notices
    # The good files of the same runs are stored, from each way in.
    for notice_id in ("ted:095237-2016", "eforms:76c82dad-10b1-4e6a-9326-9312b4bf9baf"):
        assert {INGEST, FILES, HTTP} <= set(world.notices[notice_id]["sources"]), notice_id
    assert world.notices["ted:095237-2016"]["title"] == TED_TITLE


# --------------------------------------------------------------------------- 4. truncated and binary


@pytest.mark.parametrize("name, reason", [
    ("truncated-ted.xml", "malformed XML"),
    ("truncated-eforms.xml", "malformed XML"),
    ("random-bytes.xml", "binary content, not a text document"),
    ("image.png.xml", "binary content, not a text document"),
    ("gzipped.xml", "binary content, not a text document"),
])
def test_truncated_and_binary_files_are_rejected_with_the_reason(world, name, reason):
    for via in (INGEST, FILES, HTTP):
        assert reason in (world.reason(name, via) or ""), (via, world.reason(name, via))
        assert f"rejected {world.url(name, via)}: {reason}" in world.output()
    assert not {"ted:900006-2016", "ted:900007-2016"} & set(world.notices)


# --------------------------------------------------------------------------- 5. encodings


def test_latin1_bytes_under_a_utf8_declaration_are_rejected_not_stored_as_mojibake(world):
    for via in (INGEST, FILES, HTTP):
        reason = world.reason("latin1-declared-utf8.xml", via) or ""
        assert reason.startswith("malformed XML") and "encoding" in reason, (via, reason)
    assert "ted:900008-2016" not in world.notices
    for record in world.notices.values():
        text = json.dumps(record, ensure_ascii=False)
        assert "\ufffd" not in text and not re.search("Ã[\u0080-\u00bf]", text), record["id"]


def test_a_wrong_charset_header_does_not_garble_danish_letters(world):
    assert by_url(world, "/charset/1")["title"] == CHARSET_FEED_TITLE  # UTF-8 feed, header says Latin-1
    assert by_url(world, "/side/1")["title"] == CHARSET_PAGE_TITLE  # windows-1252 page, header says UTF-8
    assert by_url(world, "/side/2")["title"] == NOMETA_PAGE_TITLE  # undeclared UTF-8 page, header says Latin-1
    assert by_url(world, "/charset/1")["buyer"]["name"] == "Holbæk Kommune"
    for name in ("feed-charset", "page-charset", "page-nometa"):
        assert world.runs[f"crawl:{name}"]["outcome"] == "ok", world.runs[f"crawl:{name}"]


def test_a_utf16_notice_with_a_bom_is_read_with_its_danish_title(world):
    for via in (INGEST, FILES, HTTP):
        assert world.reason("utf16-bom.xml", via) is None, world.reason("utf16-bom.xml", via)
    assert world.notices["ted:900009-2016"]["title"] == DANISH_TITLE


# --------------------------------------------------------------------------- 6. script and style


def test_script_and_style_in_titles_are_stored_as_text_without_markup(world):
    for link, title in MARKUP_FEED_TITLES.items():
        assert world.notices[f"web:{link}"]["title"] == title
    for path, title in MARKUP_PAGE_TITLES.items():
        assert by_url(world, path)["title"] == title
    for record in world.notices.values():
        for css in NOTICE_CSS:
            assert css not in json.dumps(record), record["id"]
        assert not re.search(r"alert\([1235679]\)|onerror|onclick", json.dumps(record)), record["id"]


def test_the_digest_html_has_no_script_element_or_event_handler_from_a_notice(world):
    (raw,) = world.messages
    (html_text,) = html_parts(raw)
    document = lxml_html.fromstring(html_text)
    assert document.xpath("//script") == [] and "<script" not in html_text.lower()
    handlers = [(element.tag, name) for element in document.iter() if isinstance(element.tag, str)
                for name in element.attrib if name.lower().startswith("on")]
    assert handlers == []
    assert not [href for href in document.xpath("//@href") if href.strip().lower().startswith("javascript:")]
    # The notices are there, the ones whose title reads "<script>..." as visible text only.
    visible = document.text_content()
    for title in (*MARKUP_FEED_TITLES.values(), *MARKUP_PAGE_TITLES.values()):
        assert title in visible, title
    assert "&lt;script&gt;alert(4)&lt;/script&gt;" in html_text
    everything = email_text(raw)
    assert not re.search(r"alert\([1235679]\)", everything)
    assert not any(css in everything for css in NOTICE_CSS)


# --------------------------------------------------------------------------- 7. JSON of the wrong types


JSON_REJECTED = {
    "ocds-title-number.json": "'tender.title' is not a string",
    "ocds-title-list.json": "'tender.title' is not a string",
    "ocds-lots-string.json": "'tender.lots' is not a list",
    "ocds-releases-string.json": "'releases' is not a list",
    "ocds-releases-junk.json": "not a JSON object",
    "tedapi-v3-notices-string.json": "not a TED search API record",
    "tedapi-v2-types.json": "content",
}


def test_json_of_the_wrong_types_is_rejected_with_a_reason_or_stored_with_sane_fields(world, validator):
    ocds_via = ("ocds-types", FILES, INGEST)
    for name, reason in JSON_REJECTED.items():
        for via in (INGEST, FILES):
            assert reason in (world.reason(name, via) or ""), (name, via, world.reason(name, via))
            assert f"rejected {world.url(name, via)}: " in world.output()
        if name.startswith("ocds"):
            assert reason in world.rejections[("ocds-types", f"{world.site.url}/notices/{name}")]
    base = "ocds:" + json.loads((world.hostile.files / "ocds-good.json").read_bytes())["releases"][0]["ocid"]
    good, garbage_dates, bad_amounts = (world.notices[base], world.notices[base.replace("-good", "-dates-garbage")],
                                        world.notices[base.replace("-good", "-amount-abc")])
    assert set(ocds_via) <= set(good["sources"]) and len(good["lots"]) == 3 and good["deadline"]
    assert garbage_dates["deadline"] is None and garbage_dates["title"] == good["title"]
    assert bad_amounts["value"] is None and bad_amounts["lots"][0]["value"] is None
    assert bad_amounts["lots"][1]["value"] == good["lots"][1]["value"]  # the sane lot kept its value
    assert set(ocds_via) <= set(world.notices[base.replace("-good", "-tender-null")]["sources"])
    # TED search API records with wrong types: kept with what is usable, the rest left empty
    assert {INGEST, FILES} <= set(world.notices["ted:633448-2021"]["sources"])
    for notice_id in ("ted:900201-2016", "ted:900202-2016"):
        record = world.notices[notice_id]
        assert isinstance(record["title"], str) and record["title"]
        assert record["published"] is None and record["deadline"] is None and record["value"] is None
    # Every stored notice is a valid notice, and nothing crashed.
    for record in world.notices.values():
        errors = [error.message for error in validator.iter_errors(record)]
        assert errors == [], (record["id"], errors)
    assert "Traceback" not in world.ingest.stderr + world.crawl.stderr
    assert "parser error" not in world.output()
    assert world.runs["crawl:ocds-types"]["outcome"] == "ok"


def test_documents_of_the_wrong_types_that_were_stored_do_not_fail_the_command(world, tmp_path):
    files = [str(world.hostile.files / name) for name in ("ocds-dates-garbage.json", "ocds-amount-abc.json",
                                                          "ocds-tender-null.json", "tedapi-v3-types.json")]
    result = run_cli("--db", str(tmp_path / "store.db"), "ingest", *files)
    assert result.returncode == 0, result.stdout + result.stderr  # exit 1 is for rejected documents only
    assert "new 5, updated 0, unchanged 0, rejected 0, errors 0" in result.stdout


def test_a_ted_api_record_with_a_numeric_cpv_code_is_no_parser_crash(tmp_path):
    (tmp_path / "cpv-number.json").write_text(json.dumps({"notices": [
        {"publication-number": "900301-2016", "notice-title": {"dan": "Rengøring af skoler"},
         "classification-cpv": [90911200]}]}), encoding="utf-8")
    shutil.copy(TED_BASE, tmp_path / "good.xml")
    result = run_cli("--db", str(tmp_path / "store.db"), "ingest", str(tmp_path))
    assert "Traceback" not in result.stderr and "parser error" not in result.stderr + result.stdout
    assert "errors 0" in result.stdout
    records = {r["id"]: r for r in json.loads(run_cli("--db", str(tmp_path / "store.db"), "tenders", "--format",
                                                      "json", check=True).stdout)}
    assert "ted:095237-2016" in records
    # stored with its CPV code, or rejected with a reason naming the file
    rejected = [line for line in result.stderr.splitlines()
                if line.strip().startswith("rejected") and "cpv-number" in line]
    assert records.get("ted:900301-2016", {}).get("cpv") == ["90911200"] or rejected



def test_a_dtd_behind_a_long_comment_is_refused_for_its_dtd(world):
    for via in (INGEST, FILES, HTTP):
        reason = world.reason("xxe-behind-padding.xml", via)
        assert reason and "DTD or entity declarations is not accepted" in reason, (via, reason)


# --------------------------------------------------------------------------- hostile TED search results


def test_search_results_of_the_wrong_types_do_not_lose_the_good_notice_on_the_page(tmp_path):
    site = Site()
    try:
        site.routes["/notices/good.xml"] = Reply(TED_BASE, "application/xml")
        site.routes["/ted/v3/notices/search"] = TedSearch([
            {"publication-number": "900401-2016", "links": "ingen"},
            {"publication-number": "900402-2016", "links": {"xml": "ingen"}},
            {"publication-number": "900403-2016", "links": {"xml": {"MUL": 17}}},
            None, "x", ted_item("095237-2016", f"{site.url}/notices/good.xml")])
        config = write_digest_config(tmp_path, sources=[source("ted-types", "ted", url=f"{site.url}/ted", query="x")])
        result = run_cli("--config", str(config), "crawl")
    finally:
        site.close()
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    assert [record["id"] for record in stored(config)] == ["ted:095237-2016"]


def test_an_oversized_notice_over_http_is_a_rejection_not_a_failed_fetch(world):
    # As the `files` source and `ingest` count it; a failed fetch makes the run 'partial', and
    # only an 'ok' run moves the next TED query's `since` on: every later crawl asks from the start.
    run = world.runs[f"crawl:{HTTP}"]
    assert world.reason("huge-100mb.xml", HTTP)
    assert run["stats"]["errors"] == 0 and run["outcome"] == "ok", (run["stats"], run["error"])


# --------------------------------------------------------------------------- 8. suspicious runs


def test_a_redesigned_listing_and_an_emptied_feed_are_flagged_suspicious_not_a_quiet_zero(tmp_path):
    web = ROOT / "tests" / "fixtures" / "web"
    site = Site()
    site.routes.update({
        "/udbud.html": Reply((web / "roskilde_udbud.html").read_bytes(), "text/html; charset=utf-8"),
        "/feed.xml": Reply(rss([("Rengøring af rådhuset", "https://udbud.example/r/1"),
                                ("Snerydning på skolerne", "https://udbud.example/r/2")]).encode(),
                           "application/rss+xml"),
    })
    config = write_digest_config(tmp_path, sources=[
        source("roskilde", "html", url=f"{site.url}/udbud.html", selectors=ROSKILDE_UDBUD),
        source("feed", "feed", url=f"{site.url}/feed.xml")])
    try:
        first = run_cli("--config", str(config), "crawl")
        assert first.returncode == 0, first.stdout + first.stderr
        before = {record["id"] for record in stored(config)}
        assert len(before) == 5 + 2
        # The municipality redesigns its page; the feed now serves a valid feed without items.
        site.routes["/udbud.html"] = Reply((web / "roskilde_udbud_changed.html").read_bytes(),
                                           "text/html; charset=utf-8")
        site.routes["/feed.xml"] = Reply(rss([]).encode(), "application/rss+xml")
        second = run_cli("--config", str(config), "crawl")
    finally:
        site.close()
    assert second.returncode == 1
    flagged = [line for line in second.stderr.splitlines() if "suspicious" in line]
    assert len(flagged) == 2, second.stderr
    runs = newest_runs(config)
    page, feed = runs["crawl:roskilde"], runs["crawl:feed"]
    assert page["outcome"] == "suspicious" and feed["outcome"] == "suspicious"
    assert "found no rows" in page["error"] and "layout may have changed" in page["error"]
    assert f"{site.url}/udbud.html" in page["error"]
    assert feed["error"].startswith("no notices in 1 new or changed document(s)")
    assert {record["id"] for record in stored(config)} == before  # what was found before is kept
    table = run_cli("--config", str(config), "runs", check=True).stdout
    assert len(re.findall(r"\bsuspicious\b", table)) == 2

    # ingest of a valid feed without items: the same flag
    (tmp_path / "empty-feed.xml").write_text(rss([]), encoding="utf-8")
    result = run_cli("--db", str(tmp_path / "ingested.db"), "ingest", str(tmp_path / "empty-feed.xml"))
    assert result.returncode == 1 and "suspicious: no notices in 1 new or changed document(s)" in result.stderr


# --------------------------------------------------------------------------- 9. a TED search page cut off


def test_a_cut_off_search_page_is_not_ok_and_the_next_run_fetches_what_was_missed(tmp_path):
    files = sorted((SAMPLE / "ted-dk").glob("*.xml"))[:8]
    site = Site()
    items = [ted_item(path.stem, f"{site.url}/notices/{path.name}") for path in files]
    for path in files:
        site.routes[f"/notices/{path.name}"] = Reply(path, "application/xml")
    search = TedSearch(items[:2])
    site.routes["/ted/v3/notices/search"] = search
    search_url = f"{site.url}/ted/v3/notices/search"
    config = write_digest_config(tmp_path, retry_times=1, sources=[
        source("ted-dk", "ted", url=f"{site.url}/ted", query="buyer-country IN (DNK)", limit=3)])
    crawl = ("--config", str(config), "crawl")

    def stored_ids() -> set[str]:
        store = Store.open(tmp_path / "store.db")
        try:
            return {record["id"] for record in store.notices()}
        finally:
            store.close()

    try:
        assert run_cli(*crawl).returncode == 0
        # As if that good crawl ran ten days ago: a `since` moved on by a broken run would show.
        started = (date.today() - timedelta(days=10)).isoformat() + "T06:00:00+00:00"
        with sqlite3.connect(tmp_path / "store.db") as db:
            db.execute("UPDATE runs SET started = ? WHERE job = 'crawl'", [started])
        since = f"publication-date>={date.today() - timedelta(days=11):%Y%m%d}"

        search.notices = items  # six more published
        # Page 2 of 3 cut off: the server hangs up before its Content-Length; then a JSON body cut short.
        for fault in ("hang-up", "cut-json"):
            search.fault = fault
            broken = run_cli(*crawl)
            run = newest_runs(config)["crawl:ted-dk"]
            # partial while page 1 brought new XML to fetch; failed once it brought none
            assert broken.returncode == 1 and run["outcome"] in ("partial", "failed"), (fault, run, broken.stderr)
            assert f"{search_url}: " in run["error"] and f"rejected {search_url}: " in broken.stderr, fault
            assert re.search(r"DataLoss|lost|cut off", run["error"]), run["error"]
            assert stored_ids() == {f"ted:{path.stem}" for path in files[:3]}  # page 1 kept

        search.fault = None
        healed = run_cli(*crawl)
        assert healed.returncode == 0, healed.stdout + healed.stderr
        assert newest_runs(config)["crawl:ted-dk"]["outcome"] == "ok"
    finally:
        site.close()
    assert stored_ids() == {f"ted:{path.stem}" for path in files}
    assert all(since in query for query in search.queries[1:]), search.queries  # not "since today"
    fetched = [path for path in site.paths() if path.startswith("/notices/")]
    assert sorted(fetched) == sorted(f"/notices/{path.name}" for path in files)  # each XML once


def test_a_search_page_whose_connection_drops_is_reported_like_a_page_cut_off(tmp_path):
    site = Site()
    files = sorted((SAMPLE / "ted-dk").glob("*.xml"))[:4]
    for path in files:
        site.routes[f"/notices/{path.name}"] = Reply(path, "application/xml")
    site.routes["/ted/v3/notices/search"] = TedSearch(
        [ted_item(path.stem, f"{site.url}/notices/{path.name}") for path in files], fault="hang-up")
    config = write_digest_config(tmp_path, sources=[source("ted-dk", "ted", url=f"{site.url}/ted", query="x", limit=2)])
    try:
        result = run_cli("--config", str(config), "crawl")
    finally:
        site.close()
    run = newest_runs(config)["crawl:ted-dk"]
    assert result.returncode == 1 and run["outcome"] == "partial"
    # as a page cut off inside its JSON is: "search page 2: malformed JSON search page: ... (cut off?)"
    assert re.search(r"search page 2: \w+", run["error"]), run["error"]
