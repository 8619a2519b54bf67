"""The web view as a browser shows it: `tendermatch serve` (a real process on a filled store)
opened in headless Chromium (Debian's `chromium`).

It proves that the match-log page renders (a screenshot of the window size that is not
blank: text on Datasette's background) and that, after its scripts ran, its DOM holds the
query's title and one results row per row of the JSON API, with enterprise names, notice
titles and reasons, and no uncaught script error; that a search in the notices table
shows the matching notice and not the others; and that the unsubscribe link of a real
digest opens a page with the address, the enterprise and a POST form for the same token,
while merely loading it unsubscribes no one, and that a tampered token shows the "not
valid" page with no form.

Skipped, with the install command, where chromium is not installed (.ci/run installs it).
"""

from __future__ import annotations

import json
import sqlite3
import urllib.request
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, quote, urlencode, urlparse

import numpy as np
import pytest

from tests.chromium import read_png, run_chromium
from tests.web.served import TENDERS, Served, unsubscribe_url

pytestmark = pytest.mark.slow

MATCH_LOG = "/store/match_log?enterprise="
MATCH_LOG_TITLE = "Matches this week, by enterprise"
MATCHED = {"RentFokus": TENDERS[0].title, "Måltidsværkstedet": TENDERS[1].title}
CLEANING, ASPHALT = TENDERS[0].title, TENDERS[3].title
assert "Erhvervsrengøring" in CLEANING and "Asfalt" in ASPHALT
WINDOW = (1280, 1000)  # a desktop for staff
PHONE = (412, 800)  # a recipient may open the e-mail on a phone


def dump_dom(binary: str, url: str, folder: Path) -> tuple[Page, str]:
    """The document after its scripts ran, parsed, and Chromium's log."""
    output, log = run_chromium(binary, url, folder, "--dump-dom", window=WINDOW)
    dom = output.decode("utf-8")
    assert "</html>" in dom, dom[-2000:]
    return Page(dom), log


def screenshot(binary: str, url: str, path: Path, window: tuple[int, int] = WINDOW, *, ink: float = 0.05) -> np.ndarray:
    """A screenshot of ``url`` at ``path``, checked to be a PNG of the window size that is not
    blank (at least ``ink`` of it not the background colour); returns its RGB pixels."""
    run_chromium(binary, url, path.parent, f"--screenshot={path}", window=window)
    assert path.is_file(), "chromium wrote no screenshot"
    image = read_png(path)[:, :, :3].astype(np.int16)  # read_png asserts the PNG signature
    assert (image.shape[1], image.shape[0]) == window
    colours, counts = np.unique(image.reshape(-1, 3), axis=0, return_counts=True)
    background = counts.max() / counts.sum()
    dark = int((image.max(axis=2) < 100).sum())  # text
    summary = (f"{len(colours)} colours, background {tuple(colours[counts.argmax()])} {background:.0%},"
               f" {dark} dark pixels: see {path}")
    assert len(colours) >= 50, summary  # anti-aliased text, not a flat page
    assert 1 - background >= ink, summary
    assert dark >= 1500, summary
    return image


class Page(HTMLParser):
    """Every element of a document: (tag, attributes, its text, the indices of its ancestors)."""

    VOID = ("meta", "br", "img", "link", "input", "hr", "source", "col", "wbr", "area", "base", "embed")

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.html = text
        self.elements: list[tuple[str, dict[str, str | None], list[str], tuple[int, ...]]] = []
        self.open: list[int] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs), [], tuple(self.open)))
        if tag not in self.VOID:
            self.open.append(len(self.elements) - 1)

    def handle_endtag(self, tag: str) -> None:
        if any(self.elements[index][0] == tag for index in self.open):
            while self.elements[self.open.pop()][0] != tag:
                pass

    def handle_data(self, data: str) -> None:
        for index in self.open:
            self.elements[index][2].append(data)

    def text(self, index: int) -> str:
        return " ".join("".join(self.elements[index][2]).split())

    def find(self, tag: str, *, inside: int | None = None, cls: str | None = None) -> list[int]:
        return [index for index, (name, attrs, _, ancestors) in enumerate(self.elements)
                if name == tag and (inside is None or inside in ancestors)
                and (cls is None or cls in (attrs.get("class") or "").split())]

    def results(self) -> list[dict[str, str]]:
        """Datasette's results table (table.rows-and-columns) as {column: cell text} rows,
        the header row first ({column: column})."""
        tables = self.find("table", cls="rows-and-columns")
        assert len(tables) == 1, f"{len(tables)} results tables"
        rows = []
        for row in self.find("tr", inside=tables[0]):
            cells = self.find("td", inside=row) + self.find("th", inside=row)
            rows.append({(self.elements[cell][1].get("class") or "").split()[0].removeprefix("col-"): self.text(cell)
                         for cell in sorted(cells)})
        return rows


def uncaught(log: str) -> list[str]:
    return [line for line in log.splitlines() if "CONSOLE" in line and "Uncaught" in line]


def unsubscribed(served: Served) -> int:
    with sqlite3.connect(f"file:{served.store}?mode=ro", uri=True) as connection:
        return connection.execute("SELECT count(*) FROM unsubscribes").fetchone()[0]


def test_the_match_log_renders_with_enterprises_titles_and_reasons(chromium, served, tmp_path):
    url = served.url + MATCH_LOG
    screenshot(chromium, url, tmp_path / "match_log.png")

    page, _ = dump_dom(chromium, url, tmp_path)
    assert [page.text(index) for index in page.find("h1")] == [MATCH_LOG_TITLE], served.server.log()[-2000:]
    rows = page.results()[1:]
    shown = {row["enterprise"]: row["title"] for row in rows}
    assert shown == MATCHED, rows
    for row in rows:
        assert row["reasons"].count(";") >= 2 and "in the lot title" in row["reasons"], row


def test_scripts_run_without_errors_and_the_table_has_a_row_per_match(chromium, served, tmp_path):
    with urllib.request.urlopen(f"{served.url}/store/match_log.json?{urlencode({'enterprise': ''})}&_shape=array",
                                timeout=30) as response:
        expected = json.load(response)
    assert len(expected) == len(MATCHED), expected

    page, log = dump_dom(chromium, served.url + MATCH_LOG, tmp_path)
    assert not uncaught(log), uncaught(log)
    assert "cm-resize-handle" in page.html, "the page's scripts did not run (cm-resize adds its style)"
    rows = page.results()
    assert len(rows) == 1 + len(expected), rows
    assert list(rows[0]) == list(expected[0]), rows[0]  # the header: the query's columns, in order
    for row, record in zip(rows[1:], expected, strict=True):
        assert (row["enterprise_id"], row["enterprise"], row["title"], row["score"], row["reasons"]) == (
            record["enterprise_id"], record["enterprise"], record["title"], str(record["score"]),
            " ".join(record["reasons"].split())), row


def test_a_search_shows_the_matching_notice_only(chromium, served, tmp_path):
    page, log = dump_dom(chromium, f"{served.url}/store/notices?_search={quote('rengøring')}", tmp_path)
    assert not uncaught(log), uncaught(log)
    assert page.find("svg", cls="dropdown-menu-icon"), "table.js did not run (it adds the column menus)"
    titles = [row["title"] for row in page.results()[1:]]
    assert titles == [CLEANING], titles
    assert ASPHALT not in page.html


def test_the_unsubscribe_page_shows_a_form_and_changes_nothing(chromium, served, tmp_path):
    message = next(message for message in served.messages if "RentFokus" in str(message["Subject"]))
    link = unsubscribe_url(message)
    assert link.startswith(served.url + "/unsubscribe?"), link
    token = parse_qs(urlparse(link).query)["token"][0]
    address = str(message["To"])
    assert unsubscribed(served) == 0

    image = screenshot(chromium, link, tmp_path / "unsubscribe.png", PHONE, ink=0.02)
    assert ((image[:, :, 2] - image[:, :, 0]) > 80).sum() >= 2000, "no blue button in the screenshot"
    page, log = dump_dom(chromium, link, tmp_path)
    assert not uncaught(log), uncaught(log)
    assert address in page.html and "RentFokus" in page.text(page.find("body")[0]), page.html
    forms = page.find("form")
    assert len(forms) == 1, page.html
    attrs = page.elements[forms[0]][1]
    assert (attrs.get("method") or "").lower() == "post", attrs
    action = urlparse(attrs.get("action") or "")
    assert action.path == "/unsubscribe" and parse_qs(action.query)["token"] == [token], attrs
    assert page.find("button", inside=forms[0]), "no button inside the form"
    assert unsubscribed(served) == 0, "loading the confirmation page unsubscribed someone"

    body, signature = token.rsplit(".", 1)
    tampered = f"{body}.{'B' if signature[0] == 'A' else 'A'}{signature[1:]}"
    screenshot(chromium, f"{served.url}/unsubscribe?token={tampered}", tmp_path / "unsubscribe_invalid.png",
               PHONE, ink=0.02)
    page, _ = dump_dom(chromium, f"{served.url}/unsubscribe?token={tampered}", tmp_path)
    assert "not valid" in page.text(page.find("body")[0]), page.html
    assert not page.find("form") and not page.find("button"), page.html
    assert address not in page.html
    assert unsubscribed(served) == 0
