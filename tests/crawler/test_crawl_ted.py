"""A real Scrapy crawl over HTTP on 127.0.0.1 against a local TED Search API v3 emulator."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest

from tendermatch.store import Store
from tests import configs
from tests.conftest import SAMPLE, run_cli
from tests.crawler.servers import Behaviour, TedApi

pytestmark = pytest.mark.slow

TED_FILES = {path.stem: path for path in sorted((SAMPLE / "ted-dk").glob("*.xml"))[:12]}


def write_ted_config(tmp_path, api_url: str, *, limit: int = 5, extra: str = "") -> str:
    """``extra``: more lines of the source's table, as TOML text."""
    source = configs.toml_table("[[sources]]", {"name": "ted-test", "kind": "ted", "url": api_url,
                                                "query": "buyer-country IN (DNK)", "limit": limit,
                                                "schedule": "*/5 * * * *"})
    return str(configs.write_config(tmp_path, crawler={"retry_times": 3,
                                                       "user_agent": "tendermatch-test (udbud@kk.example)"},
                                    sources=[f"{source}\n{extra}"]))


@pytest.fixture
def ted_api():
    servers = []

    def start(**kwargs):
        api = TedApi(dict(TED_FILES), **kwargs)
        servers.append(api)
        return api

    yield start
    for api in servers:
        api.close()


def last_run(store_path) -> dict:
    store = Store.open(store_path)
    run = store.last_run("ted-test")
    store.close()
    run["stats"] = json.loads(run["stats"])
    return run


def test_crawl_pages_through_the_api_retries_and_fetches_every_notice(tmp_path, ted_api):
    first_xml = f"/notices/{sorted(TED_FILES)[3]}.xml"
    api = ted_api(behaviour=Behaviour(fail_first={
        "/v3/notices/search": [(503, {})],                      # the API is busy once
        first_xml: [(429, {"Retry-After": "1"})],                # and rate-limits one download
    }))
    config = write_ted_config(tmp_path, api.url)
    result = run_cli("--config", config, "crawl")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ted-test: fetched 12, new 12" in result.stdout

    # Iteration mode: three pages of five, each following the previous page's token.
    assert [body.get("iterationNextToken") for body in api.search_bodies] == [None, "5", "10"]
    assert all(body["paginationMode"] == "ITERATION" and body["limit"] == 5 for body in api.search_bodies)
    assert sorted(api.xml_fetches()) == sorted([f"/notices/{n}.xml" for n in TED_FILES] + [first_xml])  # one retry
    # The 429 was honoured: the retry came at least Retry-After seconds later.
    hits = api.server.hits_for(first_xml)
    assert len(hits) == 2 and hits[1].at - hits[0].at >= 0.95
    # An API endpoint: robots.txt (which disallows everything here) is not consulted.
    assert not api.server.hits_for("/robots.txt")
    assert {hit.user_agent for hit in api.server.hits} == {"tendermatch-test (udbud@kk.example)"}

    store = Store.open(tmp_path / "store.db")
    records = list(store.notices())
    assert len(records) == 12 and all(r["sources"] == ["ted-test"] for r in records)
    assert {r["id"] for r in records} == {f"ted:{n}" for n in TED_FILES}
    assert store.counts()["raw_documents"] == 12
    store.close()
    run = last_run(tmp_path / "store.db")
    assert run["outcome"] == "ok" and run["stats"]["new"] == 12 and run["stats"]["warnings"] == []


def test_second_crawl_is_incremental_and_fetches_no_stored_xml(tmp_path, ted_api):
    api = ted_api()
    config = write_ted_config(tmp_path, api.url, limit=250)
    run_cli("--config", config, "crawl", check=True)
    fetched_once = len(api.xml_fetches())
    assert fetched_once == 12

    result = run_cli("--config", config, "crawl")
    assert result.returncode == 0, result.stderr
    assert len(api.xml_fetches()) == fetched_once  # nothing fetched again
    since = (date.today() - timedelta(days=1)).strftime("%Y%m%d")
    assert api.search_bodies[-1]["query"] == f"(buyer-country IN (DNK)) AND publication-date>={since}"
    assert "query" in api.search_bodies[0] and "publication-date" not in api.search_bodies[0]["query"]
    run = last_run(tmp_path / "store.db")
    assert run["stats"]["known_skipped"] == 12 and run["stats"]["new"] == 0


def test_shortfall_against_total_notice_count_is_a_warning(tmp_path, ted_api):
    api = ted_api(total_extra=3)
    result = run_cli("--config", write_ted_config(tmp_path, api.url), "crawl")
    assert result.returncode == 0, result.stderr
    assert "warning: TED reported 15 notices, received 12" in result.stdout
    assert last_run(tmp_path / "store.db")["stats"]["warnings"] == ["TED reported 15 notices, received 12"]


def test_search_page_cut_off_mid_stream_keeps_what_came_before(tmp_path, ted_api):
    api = ted_api(truncate_page=2)
    result = run_cli("--config", write_ted_config(tmp_path, api.url), "crawl")
    assert result.returncode == 1
    assert "search page 2: malformed JSON" in result.stderr
    run = last_run(tmp_path / "store.db")
    assert run["outcome"] == "partial" and run["stats"]["new"] == 5 and run["stats"]["errors"] == 1
    assert "received 5" in " ".join(run["stats"]["warnings"])


def test_unreachable_api_fails_the_run_not_the_command(tmp_path, ted_api):
    api = ted_api()
    url = api.url
    api.close()
    result = run_cli("--config", write_ted_config(tmp_path, url, extra="timeout = 60"), "crawl")
    assert result.returncode == 1
    run = last_run(tmp_path / "store.db")
    assert run["outcome"] == "failed" and run["stats"]["errors"] == 1
    assert "Connection" in run["error"] or "refused" in run["error"]


def test_stopping_at_max_pages_is_partial_and_the_next_run_asks_again_from_the_start(tmp_path, ted_api):
    api = ted_api()
    config = write_ted_config(tmp_path, api.url, extra="max_pages = 1")
    result = run_cli("--config", config, "crawl")
    assert "warning: TED reported 12 notices, received 5 (stopped early)" in result.stdout
    run = last_run(tmp_path / "store.db")
    assert run["outcome"] == "partial" and run["stats"]["new"] == 5
    run_cli("--config", config, "crawl")
    assert "publication-date" not in api.search_bodies[-1]["query"]  # no good run yet: not incremental


def test_a_notice_rejected_in_transit_is_fetched_again_next_time(tmp_path, ted_api):
    broken = f"/notices/{sorted(TED_FILES)[0]}.xml"
    api = ted_api(behaviour=Behaviour(fail_first={broken: [(200, {})]}))  # a 200 with junk instead of XML
    config = write_ted_config(tmp_path, api.url)
    first = run_cli("--config", config, "crawl")
    assert first.returncode == 1 and "rejected 1" in first.stdout
    second = run_cli("--config", config, "crawl")
    assert second.returncode == 0, second.stderr
    assert api.xml_fetches().count(broken) == 2 and len(api.xml_fetches()) == 13
    store = Store.open(tmp_path / "store.db")
    assert store.counts()["notices"] == 12
    store.close()
