"""``ted``: the TED Search API v3 (expert query, iteration mode), then each notice's XML."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import date
from typing import Any
from urllib.parse import urlparse

import scrapy
from scrapy.http import Response

from ..items import FetchFailure, Refusal
from ..middlewares import unexpected_error
from ..parsers import ParseError
from ..parsers.ted_api import read_search_page
from .base import NoticeSpider, contained

MAX_PAGE_SIZE = 250  # the API's limit


class TedSpider(NoticeSpider):
    """POSTs ``{url}/v3/notices/search`` with the source's query, follows
    ``iterationNextToken`` page by page, and fetches every notice's XML from
    ``links.xml.MUL`` unless the store already keeps that URL.

    Incremental: with ``since`` (the last good run's date less ``overlap_days``) it adds
    ``publication-date>=YYYYMMDD`` to the query. A shortfall against ``totalNoticeCount``
    is recorded as a warning in the run's stats.
    """

    kind = "ted"
    # An API endpoint, not pages: robots.txt is for crawlers of pages.
    custom_settings = {"ROBOTSTXT_OBEY": False}  # noqa: RUF012 -- Scrapy reads it from the class, never mutates it

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.total: int | None = None
        self.received = 0
        self.pages = 0

    @property
    def search_url(self) -> str:
        return self.source["url"].rstrip("/") + "/v3/notices/search"

    def query(self) -> str:
        query = self.source["query"]
        if self.since:
            query = f"({query}) AND publication-date>={date.fromisoformat(self.since[:10]):%Y%m%d}"
        return query

    def search_request(self, token: str | None) -> scrapy.Request:
        body: dict[str, Any] = {
            "query": self.query(),
            "fields": self.source.get("fields") or ["publication-number", "links"],
            "limit": min(self.source.get("limit", 100), MAX_PAGE_SIZE),
            "paginationMode": "ITERATION",
        }
        if token:
            body["iterationNextToken"] = token
        return scrapy.Request(self.search_url, method="POST", body=json.dumps(body),
                              headers={"Content-Type": "application/json", "Accept": "application/json"},
                              callback=self.parse_search, errback=self.search_failed, dont_filter=True)

    async def start(self) -> AsyncIterator[Any]:
        yield self.search_request(None)

    def parse_search(self, response: Response) -> Any:
        self.pages += 1
        page = self.pages
        try:
            notices, total, token = read_search_page(response.body)
        except ParseError as error:
            yield FetchFailure(self.source_name, response.url, f"search page {page}: {error}")
            self.warn_shortfall(incomplete=True)
            return
        if total is not None:
            self.total = total
        self.received += len(notices)
        for index, notice in enumerate(notices, 1):
            item = f"search page {page}, result {index}{_numbered(notice)}"
            request_or_refusal: scrapy.Request | Refusal | FetchFailure | None
            try:
                request_or_refusal = self.notice_request(response, notice, item)
            except Exception as error:  # untrusted JSON: one result costs only itself, counted
                request_or_refusal = FetchFailure(self.source_name, response.url,
                                                  f"{item}: {unexpected_error(error, 'reading the result')}")
            if request_or_refusal is not None:
                yield request_or_refusal
        if token and notices and self.pages < self.source.get("max_pages", 50):
            yield self.search_request(token)
        else:
            self.warn_shortfall(incomplete=bool(token and notices))

    def notice_request(self, response: Response, notice: dict[str, Any],
                       item: str) -> scrapy.Request | Refusal | None:
        """The request for one search result's XML; a Refusal for a link that is not a
        usable http(s) URL (named with ``item``: the page and result); None for a result
        without a link or whose XML the store keeps already."""
        xml_url = notice_xml_url(notice)
        if not xml_url:
            self.crawler.stats.inc_value("tendermatch/no_xml_link")
            return None
        try:
            xml_url = response.urljoin(xml_url)
            parsed = urlparse(xml_url)
            parsed.port  # noqa: B018 (raises ValueError for a port that is not a number in range)
        except ValueError as error:  # e.g. "http://[::1": the link cannot even be parsed
            return Refusal(self.source_name, xml_url[:200], f"{item}: the notice's XML link is not a valid URL"
                                                             f" ({error})")
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            return Refusal(self.source_name, xml_url[:200], f"{item}: the notice's XML link is not an http(s) URL")
        if xml_url in self.known_urls:
            self.crawler.stats.inc_value("tendermatch/known_skipped")
            return None
        try:
            request = scrapy.Request(xml_url, callback=self.parse_notice, errback=self.failed,
                                     headers={"Accept": "application/xml"})
        except ValueError as error:  # a URL Scrapy will not request
            return Refusal(self.source_name, xml_url[:200], f"{item}: the notice's XML link is not usable ({error})")
        self.known_urls.add(xml_url)
        return request

    @contained
    def search_failed(self, failure: Any) -> Any:
        """Errback of a search page: the page is lost, so the run is incomplete (the next
        run does not ask only for what is newer) and the reason names the page."""
        self.pages += 1
        problem = self.failure_item(failure)
        problem.reason = f"search page {self.pages}: {problem.reason}"
        self.warn_shortfall(incomplete=True)
        return problem

    def warn_shortfall(self, *, incomplete: bool) -> None:
        """Record a shortfall against totalNoticeCount. Stopping early (max_pages, a broken
        page) makes the run incomplete, so the next run does not skip what was missed."""
        if incomplete:
            self.crawler.stats.set_value("tendermatch/incomplete", 1)
        if self.total is not None and self.received < self.total:
            why = " (stopped early)" if incomplete else ""
            self.warn(f"TED reported {self.total} notices, received {self.received}{why}")

    def parse_notice(self, response: Response) -> Any:
        yield self.document(response)


def _numbered(notice: Any) -> str:
    """' (publication number)' of a search result, when it has a readable one."""
    number = notice.get("publication-number") if isinstance(notice, dict) else None
    return f" ({' '.join(number.split())[:40]})" if isinstance(number, str) and number.strip() else ""


def notice_xml_url(notice: Any) -> str | None:
    """The notice's XML link from a search result (``links.xml.MUL``, else built from its
    publication number), or None. The result is untrusted JSON: any field may be of the
    wrong type, and such a field counts as missing."""
    if not isinstance(notice, dict):
        return None
    links = notice.get("links")
    xml = links.get("xml") if isinstance(links, dict) else None
    url = xml.get("MUL") if isinstance(xml, dict) else None
    if isinstance(url, str) and url.strip():
        return url.strip()
    number = notice.get("publication-number")
    if isinstance(number, str) and re.fullmatch(r"[0-9]{1,8}-[0-9]{4}", number.strip()):
        return f"https://ted.europa.eu/en/notice/{number.strip()}/xml"
    return None
