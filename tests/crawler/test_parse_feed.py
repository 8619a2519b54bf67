"""RSS / Atom feed parser: the invented fixture feeds and hostile XML."""

from __future__ import annotations

from pathlib import Path

import pytest

from tendermatch.crawler.parsers import parse_document
from tendermatch.crawler.parsers.common import ParseError
from tendermatch.crawler.parsers.feed import parse_feed

WEB = Path(__file__).resolve().parents[1] / "fixtures" / "web"
RSS_URL = "https://udbud.sjaelland.example/rss/udbud.xml"
ATOM_URL = "https://udbud.koegebugt.example/atom.xml"




@pytest.fixture(scope="module")
def rss():
    return parse_feed((WEB / "udbud_feed.xml").read_bytes(), url=RSS_URL)


@pytest.fixture(scope="module")
def atom():
    return parse_feed((WEB / "udbud_atom.xml").read_bytes(), url=ATOM_URL)


def test_rss_items(rss, validator):
    for notice in rss:
        assert not [e.message for e in validator.iter_errors(dict(notice.record, sources=["test"]))]
        assert (notice.record["kind"], notice.record["stage"], notice.record["language"]) == (
            "tender", "competition", "da",
        )
    assert [n.record["title"] for n in rss] == [
        "Rengøring af plejecentre i Holbæk Kommune",
        "Udbudsbekendtgørelse 2026/S 220-667788: Levering af fødevarer til kommunale køkkener",
        "Snerydning og vintertjeneste 2026-2029",
        "Tolkeydelser",
        "Vikar- & bemandingsydelser til sundhedsområdet",
        "Forhåndsmeddelelse: Fremtidig drift af cykelværksted i beskyttet beskæftigelse",
    ]
    assert [n.record["deadline"] for n in rss] == [
        "2027-01-04T12:00:00", "2027-01-11T10:00:00", "2026-12-14T12:00:00", None, "2027-01-20T12:00:00", None,
    ]
    assert [n.record["published"] for n in rss] == [
        "2026-11-16", "2026-11-17", "2026-11-18", "2026-11-19", "2026-11-19", "2026-11-20",
    ]
    assert [n.record["buyer"] and n.record["buyer"]["name"] for n in rss] == [
        "Holbæk Kommune", "Næstved Kommune", "Kalundborg Kommune", "Slagelse Kommune", "Ringsted Kommune",
        "Sorø Kommune",
    ]


def test_rss_first_item_fields(rss):
    notice = rss[0]
    r = notice.record
    assert r["id"] == "web:https://udbud.sjaelland.example/udbud/4711"
    assert notice.keys == ["url:https://udbud.sjaelland.example/udbud/4711"]
    assert r["url"] == "https://udbud.sjaelland.example/udbud/4711"
    assert r["description"] == (
        "Holbæk Kommune udbyder daglig rengøring af 6 plejecentre. Tilbudsfrist: 4. januar 2027 kl. 12:00 "
        "Anslået værdi: 3,2 mio. kr. CPV: 90911200-8 Kontrakten indeholder en social klausul om praktikanter."
    )
    assert r["value"] == {"amount": 3_200_000.0, "currency": "DKK"}
    assert r["cpv"] == ["90911200"]
    assert r["social"] == ["clause"]


def test_rss_ted_number_in_title_gives_publication_key(rss):
    assert rss[1].keys == ["url:https://udbud.sjaelland.example/udbud/4718", "pub:667788-2026"]


def test_rss_submission_deadline_wins_over_question_deadline(rss):
    assert "Frist for spørgsmål: 1. december 2026" in rss[2].record["description"]
    assert rss[2].record["deadline"] == "2026-12-14T12:00:00"


def test_rss_html_is_stripped(rss):
    r = rss[4].record
    assert r["description"] == "Vikarer til hjemmeplejen og plejecentre. Ansøgningsfrist: 2027-01-20 12:00"
    for notice in rss:
        assert "<" not in notice.record["title"] and "alert" not in (notice.record["description"] or "")


def test_rss_item_without_link(rss):
    notice = rss[5]
    assert notice.record["id"] == f"web:{RSS_URL}#forhaandsmeddelelse-2026-17"
    assert notice.keys == [f"url:{RSS_URL}#forhaandsmeddelelse-2026-17"]
    assert notice.record["social"] == ["clause"]


def test_atom_entries(atom, validator):
    for notice in atom:
        assert not [e.message for e in validator.iter_errors(dict(notice.record, sources=["test"]))]
    assert [(n.record["title"], n.record["deadline"], n.record["published"]) for n in atom] == [
        ("Indsamling af haveaffald", "2027-01-12T12:00:00", "2026-11-10"),
        ("Drift af café med socialøkonomisk profil", "2027-02-05T00:00:00", "2026-11-15"),
        ("Rammeaftale om rådgivning i klimatilpasning (614455-2026)", "2027-01-18T12:00:00", "2026-11-18"),
    ]
    first, second, third = atom
    assert first.record["id"] == "web:https://udbud.koegebugt.example/udbud/haveaffald-2027"
    assert first.record["buyer"] == {"name": "Greve Kommune", "country": None, "city": None}
    assert first.record["value"] == {"amount": 4_000_000.0, "currency": "DKK"}
    assert first.record["language"] == "da"
    assert second.record["id"] == "web:https://udbud.koegebugt.example/udbud/cafe-drift"  # relative link resolved
    assert second.record["buyer"]["name"] == "Solrød Kommune"  # from the category
    assert second.record["description"] == "Drift af caféen i Solrød Kulturhus. Frist: 5. februar 2027"
    assert second.record["social"] == ["clause"]
    assert third.keys == ["url:https://udbud.koegebugt.example/udbud/klimaraadgivning", "pub:614455-2026"]


def test_agreement_feed_kind():
    notices = parse_feed((WEB / "udbud_atom.xml").read_bytes(), url=ATOM_URL, notice_kind="agreement")
    assert {(n.record["kind"], n.record["stage"]) for n in notices} == {("agreement", "result")}


def test_dispatcher_detects_feeds():
    assert len(parse_document((WEB / "udbud_feed.xml").read_bytes(), url=RSS_URL)) == 6
    assert len(parse_document((WEB / "udbud_atom.xml").read_bytes(), url=ATOM_URL)) == 3


def test_empty_feeds_give_no_notices():
    assert parse_feed(b'<?xml version="1.0"?><rss version="2.0"><channel><title>Udbud</title></channel></rss>') == []
    assert parse_feed(b'<feed xmlns="http://www.w3.org/2005/Atom"><title>Udbud</title></feed>') == []


def test_rss_1_0():
    content = b"""<?xml version="1.0"?>
    <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/">
      <channel rdf:about="https://k.example/"><title>Udbud</title></channel>
      <item rdf:about="https://k.example/u/1"><title>Vinduespolering</title><link>https://k.example/u/1</link>
        <description>Tilbudsfrist: 2. februar 2027 kl. 12:00</description></item>
    </rdf:RDF>"""
    (notice,) = parse_feed(content)
    assert notice.record["title"] == "Vinduespolering"
    assert notice.record["deadline"] == "2027-02-02T12:00:00"


# ---------------------------------------------------------------- hostile input

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<rss version="2.0"><channel><item><title>&xxe;</title><link>https://k.example/1</link></item></channel></rss>"""

LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<rss><channel><item><title>&lol2;</title></item></channel></rss>"""


@pytest.mark.parametrize(
    "content, message",
    [
        (XXE, "DTD"),
        (LAUGHS, "DTD"),
        (b"", "empty"),
        (b"\x00\x01binary\x00", "binary"),
        (b"<rss><channel><item><title>cut", "malformed XML"),
        (b'{"releases": []}', "malformed XML"),
        (b"<html><body>no feed</body></html>", "not an RSS or Atom feed"),
        (b'<?xml version="1.0"?><TED_EXPORT/>', "not an RSS or Atom feed"),
        (b"<rss version='2.0'><item><title>x</title></item></rss>", "without a <channel>"),
    ],
)
def test_hostile_feeds_raise_parse_error(content, message):
    with pytest.raises(ParseError) as error:
        parse_feed(content)
    assert message.lower() in str(error.value).lower()
    assert "passwd" not in str(error.value) or "DTD" in str(error.value)


def test_hostile_items_are_harmless():
    content = (
        """<?xml version="1.0" encoding="utf-8"?>
    <rss version="2.0"><channel>
      <item><title>&lt;script&gt;alert(1)&lt;/script&gt;Rengøring</title><link>javascript:alert(1)</link></item>
      <item><title/><link/></item>
      <item><title>Uden link<!-- kommentar --></title>"""
        """<description><![CDATA[<style>p{}</style><p>Frist: 1.1.2027</p>]]></description>
        <pubDate>not a date</pubDate></item>
    </channel></rss>"""
    ).encode()
    notices = parse_feed(content, url="https://k.example/rss")
    assert [n.record["title"] for n in notices] == ["Rengøring", "Uden link"]
    assert notices[0].record["id"] == "web:https://k.example/rss#rengoering"
    assert notices[1].record["deadline"] == "2027-01-01T00:00:00"
    assert notices[1].record["published"] is None
    assert notices[1].record["description"] == "Frist: 1.1.2027"


def test_broken_link_is_dropped_not_fatal():
    content = b"<rss><channel><item><title>Udbud A</title><link>http://[broken</link></item></channel></rss>"
    (notice,) = parse_feed(content, url="https://k.example/rss")
    assert notice.record["id"] == "web:https://k.example/rss#udbud-a"
