"""The HTML digest as a reader's browser shows it: the file `tendermatch digest --preview`
writes, opened in headless Chromium (Debian's `chromium`). The screenshot must show a
rendered page (not blank: the page background, a white card, text and links), and the DOM
after scripts ran must hold the item titles, the Danish section headings and a working
unsubscribe link. A notice title made of markup stays text: no script runs, no element
appears, and the page loads no remote image.

Skipped, with the install command, where chromium is not installed (.ci/run installs it).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urlparse
from xml.sax.saxutils import escape

import numpy as np

from tendermatch.notifier.tokens import read_token
from tests import configs
from tests.chromium import read_png
from tests.chromium import run_chromium as shared_run_chromium
from tests.conftest import ROOT, SAMPLE, run_cli

SECRET = "browser-test-secret-0123456789"
PROFILE = "maaltidsvaerkstedet"
CANTEEN = SAMPLE / "ted-dk" / "095237-2016.xml"  # open tender, lot 2 fits the profile
MEALS = SAMPLE / "ted-dk" / "433955-2016.xml"  # prior information notice
CLEANING = SAMPLE / "eforms" / "262891-2023.xml"  # another profile's match
CANTEEN_TITLE = "Kontrakt om kantinedrift for Vejlandshuset og/eller Amagerværket."
MEALS_TITLE = "Forhåndsmeddelelse om madservice til Rødovre Kommune."
HEADINGS = ["Åbne udbud", "Forhåndsmeddelelser (udbud på vej)"]
HOSTILE = "<script>document.title='pwned'</script><img src=x onerror=alert(1)>"
BACKGROUND = (0xF3, 0xF4, 0xF6)  # the body's background-color in templates/digest.html


def preview(folder: Path, notices: list[Path]) -> Path:
    """Ingest ``notices``, match them for the sample profiles as of 2016-01-01 and write the
    profile's digest preview; returns the .html file."""
    config = configs.write_config(folder, digest={"sender": configs.SENDER, "base_url": "https://udbud.kk.example",
                                                  "outbox": "outbox"})
    common = ["--config", str(config), "--profiles", str(ROOT / "config" / "profiles")]
    env = {"TENDERMATCH_SECRET": SECRET}
    run_cli(*common, "ingest", *map(str, notices), cwd=folder, env=env, check=True)
    run_cli(*common, "match", "--as-of", "2016-01-01", cwd=folder, env=env, check=True)
    result = run_cli(*common, "digest", "--preview", PROFILE, "--out", str(folder / "preview"), "--as-of",
                     "2016-01-01", cwd=folder, env=env, check=True)
    assert "2 new, 0 changed" in result.stdout, result.stdout
    pages = sorted((folder / "preview").glob(f"{PROFILE}-*.html"))
    assert len(pages) == 1, result.stdout
    return pages[0]


def run_chromium(binary: str, page: Path, folder: Path, *action: str) -> bytes:
    """Chromium's standard output for the digest ``page`` in a tall phone-like window."""
    return shared_run_chromium(binary, page.as_uri(), folder, *action, timeout=30,
                               hint=": did a script in the page open a dialog (alert)?")[0]


def dump_dom(binary: str, page: Path, folder: Path) -> str:
    """The document after its scripts ran, serialised by Chromium."""
    dom = run_chromium(binary, page, folder, "--dump-dom").decode("utf-8")
    assert "</html>" in dom, dom[-2000:]
    return dom


class Elements(HTMLParser):
    """Every element of a document: (tag, attributes, its text)."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None], list[str]]] = []
        self.open: list[int] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs), []))
        if tag not in ("meta", "br", "img", "link", "input", "hr"):
            self.open.append(len(self.elements) - 1)

    def handle_endtag(self, tag: str) -> None:
        while self.open:
            if self.elements[self.open.pop()][0] == tag:
                break

    def handle_data(self, data: str) -> None:
        for index in self.open:
            self.elements[index][2].append(data)

    def texts(self, tag: str) -> list[str]:
        return [" ".join("".join(text).split()) for name, _, text in self.elements if name == tag]

    def tags(self) -> set[str]:
        return {name for name, _, _ in self.elements}


def assert_no_remote_content(html: str) -> None:
    """No image at all, and nothing else a mail client would fetch from a server."""
    assert not re.search(r"<img\b", html, re.IGNORECASE)
    assert not re.search(r"url\(\s*['\"]?\s*(https?:)?//", html, re.IGNORECASE)
    elements = Elements(html)
    assert not elements.tags() & {"img", "script", "link", "iframe", "object", "embed", "style"}, elements.tags()
    fetched = [(tag, name) for tag, attrs, _ in elements.elements for name in attrs
               if name in ("src", "srcset", "background", "poster", "data")]
    assert not fetched, fetched


def test_the_preview_renders_in_chromium_with_titles_headings_and_unsubscribe_link(chromium, tmp_path):
    page = preview(tmp_path, [CANTEEN, MEALS, CLEANING])
    html = page.read_text(encoding="utf-8")
    assert_no_remote_content(html)

    screenshot = tmp_path / "digest.png"
    run_chromium(chromium, page, tmp_path, f"--screenshot={screenshot}")
    assert screenshot.is_file(), "chromium wrote no screenshot"
    image = read_png(screenshot)[:, :, :3].astype(np.int16)
    height, width, _ = image.shape
    assert (width, height) == (800, 1600)
    assert tuple(image[4, 4]) == BACKGROUND, "the page background (inline CSS) is not there"
    colours = np.unique(image.reshape(-1, 3), axis=0)
    white = np.all(image == 255, axis=2).mean()
    background = np.all(image == BACKGROUND, axis=2).mean()
    dark = (image.max(axis=2) < 140).sum()  # text
    blue = ((image[:, :, 2] - image[:, :, 0]) > 80).sum()  # the title links and "Læs udbuddet"
    summary = (f"{len(colours)} colours, white {white:.0%}, background {background:.0%}, {dark} dark and"
               f" {blue} blue pixels: see {screenshot}")
    assert len(colours) >= 50, summary  # anti-aliased text in several colours, not a flat page
    assert 0.15 <= white <= 0.9, summary  # the white card
    assert background >= 0.05, summary
    assert dark >= 2000 and blue >= 500, summary

    dom = dump_dom(chromium, page, tmp_path)
    elements = Elements(dom)
    titles = elements.texts("h3")
    assert CANTEEN_TITLE in titles and MEALS_TITLE in titles, titles
    assert elements.texts("h2") == HEADINGS
    assert elements.texts("title") == ["Uge 53: Måltidsværkstedet"]
    assert elements.texts("h1") == ["Hej Måltidsværkstedet"]
    links = [(attrs.get("href") or "", " ".join("".join(text).split()))
             for tag, attrs, text in elements.elements if tag == "a"]
    unsubscribe = [href for href, text in links if text == "Afmeld"]
    assert len(unsubscribe) == 1, links
    url = urlparse(unsubscribe[0])
    assert (url.scheme, url.netloc, url.path) == ("https", "udbud.kk.example", "/unsubscribe")
    token = parse_qs(url.query)["token"][0]
    assert read_token(token, secret=SECRET.encode()) == (PROFILE, "kontakt@maaltidsvaerkstedet.example")
    assert [text for _, text in links].count("Læs udbuddet →") == 2


def test_a_title_made_of_markup_stays_text_in_chromium(chromium, tmp_path):
    notices = tmp_path / "notices"
    notices.mkdir()
    xml = CANTEEN.read_text(encoding="utf-8")
    original = f"<P>{CANTEEN_TITLE}</P>"
    assert xml.count(original) == 1
    hostile = notices / "095237-2016-hostile.xml"
    hostile.write_text(xml.replace(original, f"<P>{escape(HOSTILE)}</P>"), encoding="utf-8")
    page = preview(tmp_path, [hostile, MEALS])
    html = page.read_text(encoding="utf-8")
    assert_no_remote_content(html)
    assert escape(HOSTILE).replace("'", "&#39;") in html  # escaped once, not dropped

    dom = dump_dom(chromium, page, tmp_path)
    elements = Elements(dom)
    assert "script" not in elements.tags() and "img" not in elements.tags(), sorted(elements.tags())
    assert elements.texts("title") == ["Uge 53: Måltidsværkstedet"]  # the script did not run
    assert HOSTILE in elements.texts("h3"), elements.texts("h3")  # shown literally
    assert MEALS_TITLE in elements.texts("h3")
