"""Real Scrapy crawls over HTTP on 127.0.0.1 of municipal pages, a feed and OCDS pages,
with the selectors of the shipped operator config; and one notice from two sources."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tendermatch.store import Store
from tendermatch.worker.config import load_config
from tests.conftest import ROOT, SAMPLE, run_cli
from tests.crawler.helpers import source_block, write_web_crawl_config
from tests.crawler.servers import StaticSite, TedApi

WEB = ROOT / "tests" / "fixtures" / "web"
CROSS = ROOT / "tests" / "fixtures" / "crosssource"


def shipped_source(name: str):
    return load_config(ROOT / "config" / "tendermatch.toml").source(name)


@pytest.fixture
def site():
    sites = []

    def start(root: Path, **kwargs) -> StaticSite:
        server = StaticSite(root, **kwargs)
        sites.append(server)
        return server

    yield start
    for server in sites:
        server.close()


def ocds_pages(base_url: str) -> dict[str, bytes]:
    package = json.loads((SAMPLE / "ocds" / "contracts_finder_search_package_CFSearchStr.json").read_bytes())
    releases = package["releases"]
    half = len(releases) // 2
    first = {**package, "releases": releases[:half], "links": {"next": f"{base_url}/ocds/page2.json"}}
    second = {**package, "releases": releases[half:], "links": {}}  # the last page: no next
    return {"/ocds/page1.json": json.dumps(first).encode(), "/ocds/page2.json": json.dumps(second).encode()}


def test_municipal_pages_feed_and_ocds_with_the_shipped_selectors(tmp_path, site):
    web = site(
        WEB, redirects={"/flyttet.html": "file:///etc/passwd", "/kk_udbud_detail_3.html": "/flyttet/detail3.html"}
    )
    web.routes.update(ocds_pages(web.url))
    web.routes["/flyttet/detail3.html"] = (WEB / "kk_udbud_detail_3.html").read_bytes()  # a detail page that moved
    udbud, aftaler = shipped_source("kk-udbud"), shipped_source("kk-aftaler")
    config = write_web_crawl_config(tmp_path, [
        source_block("kk-udbud", "html", f"{web.url}/kk_udbud.html", notice_kind="tender", detail=True,
                     selectors=udbud.selectors),
        source_block("kk-aftaler", "html", f"{web.url}/kk_leverandoraftaler.html", notice_kind="agreement",
                     selectors=aftaler.selectors),
        source_block("roskilde-feed", "feed", f"{web.url}/udbud_feed.xml"),
        source_block("aftale-feed", "feed", f"{web.url}/udbud_atom.xml", notice_kind="agreement"),
        source_block("ocds-pages", "ocds", f"{web.url}/ocds/page1.json"),
        source_block("blocked", "feed", f"{web.url}/intern/feed.xml"),       # robots.txt says no
        source_block("redirected", "feed", f"{web.url}/flyttet.html"),       # 302 to file:///etc/passwd
    ])
    result = run_cli("--config", config, "crawl")
    assert result.returncode == 1, result.stdout + result.stderr  # two sources failed, the rest stored
    store = Store.open(tmp_path / "store.db")
    by_source = {name: [r for r in store.notices() if name in r["sources"]]
                 for name in ("kk-udbud", "kk-aftaler", "roskilde-feed", "ocds-pages")}

    tenders = {r["title"]: r for r in by_source["kk-udbud"]}
    cleaning = tenders["Rengøring af daginstitutioner i Valby og Vesterbro"]
    assert cleaning["deadline"] == "2026-12-01T12:00:00"
    assert cleaning["kind"] == "tender" and cleaning["buyer"]["name"].startswith("Københavns Kommune")
    assert cleaning["value"] == {"amount": 1_500_000.0, "currency": "DKK"}
    assert cleaning["cpv"] and cleaning["description"]  # from the detail page
    green = tenders["Pleje af grønne arealer og legepladser i Sydhavnen"]
    assert green["description"]  # its detail page moved (302): still read
    details = [hit.path for hit in web.server.hits if "detail" in hit.path]
    assert sorted(details) == ["/flyttet/detail3.html", "/kk_udbud_detail_1.html", "/kk_udbud_detail_2.html",
                               "/kk_udbud_detail_3.html"]
    assert all("<" not in title and "alert" not in title for title in tenders)

    agreements = by_source["kk-aftaler"]
    assert agreements and all(r["kind"] == "agreement" and r["supplier"] and r["valid_until"] for r in agreements)
    assert by_source["roskilde-feed"]
    assert len(by_source["ocds-pages"]) > 1
    assert [hit.path for hit in web.server.hits if hit.path.startswith("/ocds/")] == [
        "/ocds/page1.json", "/ocds/page2.json",
    ]

    assert not web.server.hits_for("/intern/feed.xml")  # robots.txt obeyed
    runs = {run["source"]: run for run in store.runs()}
    assert runs["blocked"]["outcome"] == "failed"
    assert runs["redirected"]["outcome"] == "failed"
    assert "not followed" in runs["redirected"]["error"] or "refused" in runs["redirected"]["error"]
    assert runs["kk-udbud"]["outcome"] == "ok"
    udbud_stats = json.loads(runs["kk-udbud"]["stats"])
    assert sum("detail page not fetched" in w for w in udbud_stats["warnings"]) == 4  # 4 rows link to missing pages
    assert "passwd" not in json.dumps(list(store.notices()))
    store.close()

    # The kept pages rebuild the same notices without crawling (detail pages included).
    before = {r["id"]: r for r in json.loads(run_cli("--config", config, "tenders", "--format", "json").stdout)}
    reparse = run_cli("--config", config, "reparse")
    assert reparse.returncode == 0, reparse.stderr
    after = {r["id"]: r for r in json.loads(run_cli("--config", config, "tenders", "--format", "json").stdout)}
    assert after == before
    assert {r["kind"] for r in after.values() if "aftale-feed" in r["sources"]} == {"agreement"}


def test_changed_page_layout_is_rejected_and_the_run_flagged_suspicious(tmp_path, site):
    web = site(WEB)
    config = write_web_crawl_config(tmp_path, [
        source_block("roskilde", "html", f"{web.url}/roskilde_udbud_changed.html",
                     selectors={"row": "div.udbudsoversigt article.udbud-kort", "title": "h3.udbud-kort__titel"}),
    ])
    result = run_cli("--config", config, "crawl")
    assert result.returncode == 1
    assert "found no rows" in result.stderr and "roskilde_udbud_changed.html" in result.stderr
    assert "suspicious: no notices in 1 new or changed document(s)" in result.stderr
    run = json.loads(run_cli("--config", config, "runs", "--format", "json").stdout)[0]
    assert run["outcome"] == "suspicious"
    assert run["error"].startswith("no notices in 1 new or changed document(s)") and "found no rows" in run["error"]


def test_same_notice_on_ted_and_on_the_municipal_page_is_one_record_with_both_sources(tmp_path, site):
    api = TedApi({"436913-2017": SAMPLE / "ted-dk" / "436913-2017.xml"})
    web = site(CROSS)
    try:
        config = write_web_crawl_config(tmp_path, [
            source_block("ted-dk", "ted", api.url, query="buyer-country IN (DNK)"),
            source_block("fredericia", "html", f"{web.url}/fredericia_udbud.html",
                         selectors=shipped_source("kk-udbud").selectors | {"row": "table.udbudsliste tbody tr.udbud"}),
        ])
        result = run_cli("--config", config, "crawl", "ted-dk")
        assert result.returncode == 0, result.stderr
        result = run_cli("--config", config, "crawl", "fredericia")
        assert result.returncode == 0, result.stderr
    finally:
        api.close()
    records = json.loads(run_cli("--config", config, "tenders", "--format", "json", check=True).stdout)
    merged = [r for r in records if r["id"] == "ted:436913-2017"]
    assert len(merged) == 1 and merged[0]["sources"] == ["ted-dk", "fredericia"]
    assert len(merged[0]["lots"]) == 3  # the richer TED record was kept
    others = [r for r in records if r["id"] != "ted:436913-2017"]
    assert [r["title"] for r in others] == ["Vinduespudsning på kommunens skoler"]
