"""One bad value costs only itself, in the crawler: real `tendermatch crawl` processes
against servers on 127.0.0.1.

- A TED search result whose link cannot be parsed is rejected alone; a search page that
  cannot be read at all is a named failure that keeps `since` where it was; an exception in
  any callback is a counted error, never a traceback and a silently lost page.
- Nothing the crawl discovers (a detail link, a redirect, a next page, a notice link, their
  robots.txt) reaches a private, loopback or link-local address unless the source opts in.
  Every crawl here runs with its HTTP proxy set to a loopback trap (and only 127.0.0.1
  exempt), so even a regression cannot send a byte to 10.x or 169.254.x: it lands in the trap.
- A body that never ends is refused with a reason; a dripping server cannot stretch a
  source's timeout.
"""

from __future__ import annotations

import json
import threading
import time
from contextlib import closing
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from tendermatch.store import Store
from tests import configs
from tests.conftest import SAMPLE, run_cli
from tests.crawler.servers import LocalServer, QuietHandler, serve_on_loopback
from tests.reliability.helpers import Trap

pytestmark = pytest.mark.slow

TED_XML = {path.stem: path.read_bytes() for path in sorted((SAMPLE / "ted-dk").glob("*.xml"))[:6]}
DEADLINE = (date.today() + timedelta(days=30)).strftime("%d.%m.%Y")
SELECTORS = 'selectors = { row = "table#u tbody tr", title = "td.t", link = "td.t a", deadline = "td.d" }'


# -- helpers -------------------------------------------------------------------------------------


@pytest.fixture
def internet():
    """The stand-in for everything beyond 127.0.0.1: a trap every other host's request goes to
    (as the crawl's HTTP proxy). ``env`` is the crawl's environment."""
    trap = Trap()
    proxy = f"http://127.0.0.1:{trap.port}"
    trap.env = {"http_proxy": proxy, "https_proxy": proxy, "HTTP_PROXY": proxy, "HTTPS_PROXY": proxy,
                "no_proxy": "127.0.0.1", "NO_PROXY": "127.0.0.1"}
    yield trap
    trap.close()


@pytest.fixture
def servers():
    started: list[Any] = []

    def start(server: Any) -> Any:
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


def write_crawl_config(tmp_path: Path, blocks: list[str], *, crawler: dict | None = None, retry_times: int = 0) -> str:
    return str(configs.write_config(tmp_path, crawler={"retry_times": retry_times, **(crawler or {})}, sources=blocks))


def source_block(name: str, kind: str, url: str, extra: str = "") -> str:
    return f'[[sources]]\nname = "{name}"\nkind = "{kind}"\nurl = "{url}"\n{extra}\n'


def crawl(config: str, internet: Trap, timeout: float = 120) -> Any:
    result = run_cli("--config", config, "crawl", env=internet.env, timeout=timeout)
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output  # one line per problem, never a traceback
    return result


def last_run(tmp_path: Path, source: str) -> dict[str, Any]:
    with closing(Store.open(tmp_path / "store.db")) as store:
        run = store.runs(limit=1, source=source)[0]
        run["rejections"] = store.rejections(run["id"])
        run["stats"] = json.loads(run["stats"] or "{}")
        return run


def stored_ids(tmp_path: Path) -> set[str]:
    with closing(Store.open(tmp_path / "store.db")) as store:
        return {notice["id"] for notice in store.notices()}


def listing(links: list[str]) -> bytes:
    rows = "".join(f'<tr><td class="t"><a href="{link}">Rengøring {n}</a></td><td class="d">{DEADLINE}</td></tr>'
                   for n, link in enumerate(links))
    return f'<html><body><table id="u"><tbody>{rows}</tbody></table></body></html>'.encode()


def detail_page(text: str) -> bytes:
    return f"<html><body><h1>{text}</h1></body></html>".encode()


def ted_page(results: list[dict[str, Any]], token: str | None) -> bytes:
    return json.dumps({"notices": results, "totalNoticeCount": None, "iterationNextToken": token}).encode()


def ted_result(number: str, link: str) -> dict[str, Any]:
    return {"publication-number": number, "links": {"xml": {"MUL": link}}}


class TedSearch:
    """A TED search API on 127.0.0.1 serving ``pages`` (bytes, by iteration token) and the
    sample notices' XML at /notices/<number>.xml."""

    def __init__(self, pages: dict[str | None, bytes]):
        self.pages = pages
        self.searches: list[dict[str, Any]] = []
        self.server = LocalServer(self.handle)
        self.url = self.server.url

    def handle(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        if method == "POST" and path == "/v3/notices/search":
            request = json.loads(body)
            self.searches.append(request)
            return 200, {"Content-Type": "application/json"}, self.pages[request.get("iterationNextToken")]
        number = path.removeprefix("/notices/").removesuffix(".xml")
        if number in TED_XML:
            return 200, {"Content-Type": "application/xml"}, TED_XML[number]
        return 404, {}, b"not found"

    def link(self, number: str) -> str:
        return f"{self.url}/notices/{number}.xml"

    def close(self) -> None:
        self.server.close()


# -- 2. one bad search result, one unreadable page, one exception in a callback ----------------------


def test_a_malformed_notice_link_costs_only_its_own_search_result(tmp_path, servers, internet):
    numbers = sorted(TED_XML)
    api = servers(TedSearch({}))
    api.pages[None] = ted_page([
        ted_result(numbers[0], api.link(numbers[0])),
        ted_result("90001-2026", "http://[::1"),                       # cannot be parsed at all
        ted_result(numbers[1], api.link(numbers[1])),
        ted_result("90002-2026", "http://127.0.0.1:99999/notice.xml"),  # a port out of range
        ted_result("90003-2026", "http://exa mple.dk:x/notice.xml"),
        ted_result(numbers[2], api.link(numbers[2])),
    ], token="2")
    api.pages["2"] = ted_page([ted_result(n, api.link(n)) for n in numbers[3:6]], token=None)
    result = crawl(write_crawl_config(tmp_path, [source_block("ted-eu", "ted", api.url, 'query = "x"')]), internet)

    assert result.returncode == 1, result.stdout + result.stderr  # rejections are reported
    assert stored_ids(tmp_path) == {f"ted:{n}" for n in numbers}  # both pages, every good result
    run = last_run(tmp_path, "ted-eu")
    assert sorted(r["url"] for r in run["rejections"]) == sorted(
        ["http://[::1", "http://127.0.0.1:99999/notice.xml", "http://exa mple.dk:x/notice.xml"]), run
    reasons = {r["url"]: r["reason"] for r in run["rejections"]}
    assert reasons["http://[::1"].startswith("search page 1, result 2 (90001-2026): the notice's XML link is not"
                                            " a valid URL"), reasons
    assert reasons["http://127.0.0.1:99999/notice.xml"].startswith("search page 1, result 4 (90002-2026)"), reasons
    lines = [line for line in result.stderr.splitlines() if "http://[::1" in line]
    assert lines == [f"  rejected http://[::1: {reasons['http://[::1']}"], result.stderr
    assert internet.connections == 0


def test_a_search_page_too_deeply_nested_to_read_is_named_and_the_next_crawl_asks_again(tmp_path, servers,
                                                                                        internet):
    numbers = sorted(TED_XML)
    api = servers(TedSearch({}))
    api.pages[None] = ted_page([ted_result(n, api.link(n)) for n in numbers[:3]], token="2")
    api.pages["2"] = b'{"notices": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    config = write_crawl_config(tmp_path, [source_block("ted-eu", "ted", api.url, 'query = "buyer-country IN (DNK)"')])
    result = crawl(config, internet)

    assert result.returncode == 1, result.stdout + result.stderr
    assert stored_ids(tmp_path) == {f"ted:{n}" for n in numbers[:3]}  # page 1 is kept
    run = last_run(tmp_path, "ted-eu")
    assert run["outcome"] == "partial", run
    [failure] = run["rejections"]
    assert failure["url"] == f"{api.url}/v3/notices/search", failure
    assert failure["reason"].startswith("search page 2: search page is nested too deeply"), failure
    assert f"rejected {failure['url']}: {failure['reason']}" in result.stderr

    # What page 2 held was never read: the next crawl asks for everything again, not only since today.
    api.pages["2"] = ted_page([ted_result(n, api.link(n)) for n in numbers[3:]], token=None)
    crawl(config, internet)
    assert api.searches[-2]["query"] == "buyer-country IN (DNK)", api.searches
    assert stored_ids(tmp_path) == {f"ted:{n}" for n in numbers}
    assert internet.connections == 0


def test_an_exception_in_a_callback_is_a_counted_error_for_that_page_and_the_page_is_kept(tmp_path, servers,
                                                                                          internet):
    release = {"ocid": "ocds-x-1", "id": "1", "date": "2026-01-01T00:00:00Z", "tag": ["tender"],
               "tender": {"id": "t", "title": "Kantinedrift", "status": "active"}}
    page = json.dumps({"uri": "x", "version": "1.1", "releases": [release], "links": {"next": "http://[::1"}})
    site = servers(LocalServer(lambda method, path, body: (200, {"Content-Type": "application/json"}, page.encode())
                               if path == "/ocds.json" else (404, {}, b"not found")))
    result = crawl(write_crawl_config(tmp_path, [source_block("ocds", "ocds", f"{site.url}/ocds.json")]), internet)

    assert result.returncode == 1, result.stdout + result.stderr
    assert len(stored_ids(tmp_path)) == 1  # the page's own release is stored
    run = last_run(tmp_path, "ocds")
    assert run["outcome"] == "partial", run  # what came after the page was lost: not ok
    [failure] = run["rejections"]
    assert failure["url"] == f"{site.url}/ocds.json", failure
    assert failure["reason"].startswith("unexpected ValueError"), failure
    assert f"rejected {failure['url']}: unexpected ValueError" in result.stderr


def test_an_unusable_detail_link_costs_only_its_detail_page_not_the_listing(tmp_path, servers, internet):
    routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
    site = servers(LocalServer(lambda method, path, body: routes.get(path, (404, {}, b"not found"))))
    routes["/udbud.html"] = (200, {"Content-Type": "text/html"}, listing(
        [f"{site.url}/detalje-1.html", "http://udbud.kk.example:99999/2", f"{site.url}/detalje-3.html"]))
    routes["/detalje-1.html"] = routes["/detalje-3.html"] = (200, {"Content-Type": "text/html"}, detail_page("x"))
    config = write_crawl_config(tmp_path, [source_block("kommune", "html", f"{site.url}/udbud.html",
                                                        "detail = true\n" + SELECTORS)])
    result = crawl(config, internet)

    assert result.returncode == 0, result.stdout + result.stderr
    with closing(Store.open(tmp_path / "store.db")) as store:
        assert sorted(n["title"] for n in store.notices()) == [f"Rengøring {n}" for n in range(3)]
    assert [hit.path for hit in site.hits].count("/detalje-3.html") == 1  # the row after it still got its page
    run = last_run(tmp_path, "kommune")
    assert run["outcome"] == "ok", run
    assert run["stats"]["warnings"] == [("http://udbud.kk.example:99999/2: detail page not fetched (not a usable URL:"
                                         " Port out of range 0-65535); stored from the listing")], run


# -- 5. no request to a non-public address unless the source opts in ------------------------------


def test_links_and_redirects_to_non_public_addresses_are_refused_unfetched_and_recorded(tmp_path, servers,
                                                                                      internet):
    site = servers(LocalServer(lambda method, path, body: routes.get(path, (404, {}, b"not found"))))
    refused = {
        "http://127.0.0.2:8080/udbud/1": "refused: 127.0.0.2 is a loopback address",
        "http://169.254.169.254/latest/meta-data/": "refused: 169.254.169.254 is a link-local address",
        "http://10.0.0.5/udbud/3": "refused: 10.0.0.5 is a private address",
        "http://100.64.0.7/udbud/4": "refused: 100.64.0.7 is a shared (carrier-grade NAT) address",
        "http://[::ffff:10.0.0.5]/udbud/5": "refused: ::ffff:10.0.0.5 is a private address",
        f"http://localhost:{site.port}/via-name.html":
            "refused: localhost resolves to 127.0.0.1, a loopback address",
        "http://10.0.0.5:2375/containers/json": "refused: 10.0.0.5 is a private address",  # the redirect's target
    }
    routes = {
        "/robots.txt": (200, {"Content-Type": "text/plain"}, b"User-agent: *\nDisallow:\n"),
        "/udbud.html": (200, {"Content-Type": "text/html"}, listing(
            [link for link in refused if "2375" not in link] + [f"{site.url}/moved", f"{site.url}/detail-ok.html"])),
        "/moved": (302, {"Location": "http://10.0.0.5:2375/containers/json"}, b""),
        "/detail-ok.html": (200, {"Content-Type": "text/html"}, detail_page("Detalje")),
        "/via-name.html": (200, {"Content-Type": "text/html"}, detail_page("Via navn")),
        "/ocds.json": (200, {"Content-Type": "application/json"}, json.dumps({
            "uri": "x", "version": "1.1", "links": {"next": "http://169.254.169.254/latest/ocds.json"},
            "releases": [{"ocid": "ocds-x-1", "id": "1", "date": "2026-01-01T00:00:00Z", "tag": ["tender"],
                          "tender": {"id": "t", "title": "Kantinedrift", "status": "active"}}]}).encode()),
    }
    numbers = sorted(TED_XML)[:2]
    routes["/ted/v3/notices/search"] = (200, {"Content-Type": "application/json"}, ted_page([
        ted_result(numbers[0], "http://10.0.0.5/notices/x.xml"),
        ted_result(numbers[1], f"{site.url}/notices/{numbers[1]}.xml")], token=None))
    routes[f"/notices/{numbers[1]}.xml"] = (200, {"Content-Type": "application/xml"}, TED_XML[numbers[1]])
    config = write_crawl_config(tmp_path, [
        source_block("kommune", "html", f"{site.url}/udbud.html", "detail = true\n" + SELECTORS),
        source_block("ocds", "ocds", f"{site.url}/ocds.json"),
        source_block("ted-eu", "ted", f"{site.url}/ted", 'query = "x"'),
    ])
    result = crawl(config, internet)

    assert internet.connections == 0, "a request left 127.0.0.1"
    paths = [hit.path for hit in site.hits]
    assert "/via-name.html" not in paths and paths.count("/detail-ok.html") == 1, paths
    assert result.returncode == 1, result.stdout + result.stderr

    # The listing is stored whole; each refused link is one rejection naming the address.
    kommune = last_run(tmp_path, "kommune")
    reasons = {r["url"]: r["reason"] for r in kommune["rejections"]}
    assert set(reasons) == set(refused), kommune
    for url, start in refused.items():
        assert reasons[url] == f"{start}; set allow_private_network = true for an intranet source", reasons[url]
    with closing(Store.open(tmp_path / "store.db")) as store:
        titles = {n["title"] for n in store.notices() if "kommune" in n["sources"]}
    assert titles == {f"Rengøring {n}" for n in range(len(refused) + 1)}

    # A refused next page leaves the run incomplete; a refused notice link costs only its notice.
    ocds = last_run(tmp_path, "ocds")
    assert ocds["outcome"] == "partial", ocds
    assert [(r["url"], r["reason"].split(";")[0]) for r in ocds["rejections"]] == [
        ("http://169.254.169.254/latest/ocds.json", "refused: 169.254.169.254 is a link-local address")]
    ted = last_run(tmp_path, "ted-eu")
    assert [r["url"] for r in ted["rejections"]] == ["http://10.0.0.5/notices/x.xml"], ted
    assert f"ted:{numbers[1]}" in stored_ids(tmp_path)


def test_allow_private_network_lets_an_intranet_source_follow_links_to_other_private_hosts(tmp_path, servers,
                                                                                         internet):
    site = servers(LocalServer(lambda method, path, body: routes.get(path, (404, {}, b"not found"))))
    other = servers(LocalServer(lambda method, path, body: (200, {"Content-Type": "text/html"},
                                                            detail_page("Anden vært"))))
    routes = {"/robots.txt": (200, {"Content-Type": "text/plain"}, b"User-agent: *\nDisallow:\n"),
              "/udbud.html": (200, {"Content-Type": "text/html"}, listing(
                  [f"http://localhost:{site.port}/via-name.html", f"{other.url}/detalje.html"])),
              "/via-name.html": (200, {"Content-Type": "text/html"}, detail_page("Via navn"))}
    internet.env.update(no_proxy="127.0.0.1,localhost", NO_PROXY="127.0.0.1,localhost")
    config = write_crawl_config(tmp_path, [source_block("intranet", "html", f"{site.url}/udbud.html",
                                                        "detail = true\nallow_private_network = true\n" + SELECTORS)])
    result = crawl(config, internet)

    assert result.returncode == 0, result.stdout + result.stderr
    assert [hit.path for hit in site.hits].count("/via-name.html") == 1
    assert [hit.path for hit in other.hits if hit.path != "/robots.txt"] == ["/detalje.html"]
    assert last_run(tmp_path, "intranet")["outcome"] == "ok"
    assert internet.connections == 0


def test_a_host_name_is_looked_up_once_so_the_address_checked_is_the_address_connected_to(monkeypatch):
    from scrapy.resolver import CachingThreadedResolver
    from twisted.internet.defer import succeed

    from tendermatch.crawler.middlewares import PinningResolver

    # The internet's DNS: a rebinding server answers public first, loopback next.
    answers = iter(["93.184.216.34", "127.0.0.1"])
    monkeypatch.setattr(CachingThreadedResolver, "getHostByName",
                        lambda self, name, timeout=(): succeed(next(answers)))
    resolver = PinningResolver(reactor=None, cache_size=0, timeout=5)
    first, second = [], []
    resolver.getHostByName("rebind.example").addCallback(first.append)
    resolver.getHostByName("rebind.example").addCallback(second.append)
    assert first == second == ["93.184.216.34"]


# -- 11. endless and dripping bodies ------------------------------------------------------------


class StreamingServer:
    """HTTP on 127.0.0.1 that streams: /endless is a chunked body that never ends, /drip sends
    one byte a second, /busy asks to retry after 60 s; anything else is ``pages[path]``."""

    def __init__(self, pages: dict[str, bytes]):
        stop = self.stop = threading.Event()

        class Handler(QuietHandler):
            def answer(self) -> None:
                try:
                    if self.path == "/endless":
                        self.send_response(200)
                        self.send_header("Content-Type", "application/rss+xml")
                        self.send_header("Transfer-Encoding", "chunked")
                        self.end_headers()
                        chunk = b"<item>" + b"x" * 4000 + b"</item>"
                        while not stop.is_set():
                            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    elif self.path == "/drip":
                        self.send_response(200)
                        self.send_header("Content-Type", "application/rss+xml")
                        self.send_header("Content-Length", "100000")
                        self.end_headers()
                        while not stop.wait(1):
                            self.wfile.write(b" ")
                            self.wfile.flush()
                    elif self.path == "/busy":
                        self.send_response(429)
                        self.send_header("Retry-After", "60")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                    elif self.path in pages:
                        self.send_response(200)
                        self.send_header("Content-Length", str(len(pages[self.path])))
                        self.end_headers()
                        self.wfile.write(pages[self.path])
                    else:
                        self.send_error(404)
                except OSError:  # the crawler hung up: what it should do
                    pass

        self.httpd = serve_on_loopback(Handler, daemon_threads=True)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()


FEED = (f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>x</title>'
        f"<link>http://127.0.0.1/</link><item><title>Vinduespolering</title><link>http://127.0.0.1/v</link>"
        f"<description>Tilbudsfrist: {DEADLINE} kl. 12:00</description></item></channel></rss>").encode()


def test_a_body_that_never_ends_is_refused_with_the_limit_named_and_the_other_pages_are_read(tmp_path, servers,
                                                                                              internet):
    site = servers(StreamingServer({"/feed.xml": FEED, "/robots.txt": b"User-agent: *\nDisallow:\n"}))
    config = write_crawl_config(tmp_path, [source_block("feeds", "feed", f"{site.url}/endless",
                                                        f'urls = ["{site.url}/feed.xml"]')],
                                crawler={"max_document_mb": 0.05})
    result = crawl(config, internet)

    assert result.returncode == 1, result.stdout + result.stderr
    run = last_run(tmp_path, "feeds")
    [refusal] = run["rejections"]
    assert refusal["url"] == f"{site.url}/endless"
    assert refusal["reason"].startswith("response exceeded the 0.05 MB limit while streaming"), refusal
    assert run["outcome"] == "ok", run  # refused on purpose, not a failed fetch
    with closing(Store.open(tmp_path / "store.db")) as store:
        assert [n["title"] for n in store.notices()] == ["Vinduespolering"]


def test_a_dripping_download_cannot_stretch_the_sources_timeout(tmp_path, servers, internet):
    site = servers(StreamingServer({"/robots.txt": b"User-agent: *\nDisallow:\n"}))
    config = write_crawl_config(tmp_path, [source_block("drip", "feed", f"{site.url}/drip", "timeout = 3")])
    began = time.monotonic()
    result = crawl(config, internet, timeout=180)
    took = time.monotonic() - began

    assert took < 3 + 12, f"the crawl took {took:.0f} s with a 3 s timeout"  # 12 s: process start on a busy CI
    run = last_run(tmp_path, "drip")
    assert run["outcome"] == "partial" and run["error"].startswith("stopped at the source's timeout (3 s)"), run
    assert run["rejections"] == [{"url": f"{site.url}/drip",
                                  "reason": "download stopped at the source's timeout (3 s)"}], run
    assert result.returncode == 1


def test_a_retry_after_longer_than_the_time_left_is_not_waited_for(tmp_path, servers, internet):
    site = servers(StreamingServer({"/robots.txt": b"User-agent: *\nDisallow:\n"}))
    config = write_crawl_config(tmp_path, [source_block("busy", "feed", f"{site.url}/busy", "timeout = 5")],
                                retry_times=2)
    began = time.monotonic()
    crawl(config, internet, timeout=180)
    took = time.monotonic() - began

    assert took < 5 + 12, f"the crawl took {took:.0f} s with a 5 s timeout"
    run = last_run(tmp_path, "busy")
    assert run["rejections"] == [{"url": f"{site.url}/busy", "reason": "HTTP 429"}], run
    assert run["outcome"] == "failed", run
