"""``html``: a municipality's tender page or supplier-agreement page, read with the CSS
selectors in the source's config, optionally with each row's detail page."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlparse

import scrapy
from scrapy.http import Response

from ..items import Refusal
from ..middlewares import RefusedAddress
from ..parsers import ParseError
from ..parsers.html import detail_url, parse_listing
from .base import NoticeSpider, contained


class HtmlListingSpider(NoticeSpider):
    """Fetches each listing page; with ``detail = true`` it then fetches the rows' detail
    pages one after another and hands the listing and its details to the pipeline together
    (so ``reparse`` can rebuild the notices from the kept pages)."""

    kind = "html"

    async def start(self) -> AsyncIterator[Any]:
        for url in [self.source["url"], *self.source.get("urls", [])]:
            yield scrapy.Request(url, callback=self.parse, errback=self.failed, dont_filter=True)

    def parse(self, response: Response) -> Any:
        listing = self.document(response, format="html", selectors=self.source["selectors"])
        if not self.source.get("detail"):
            yield listing
            return
        try:
            rows = parse_listing(response.body, url=response.url, selectors=self.source["selectors"],
                                 notice_kind=self.source.get("notice_kind", "tender"))
        except ParseError:
            yield listing  # the pipeline records why the page was rejected
            return
        pending = [link for link in dict.fromkeys(detail_url(row) for row in rows) if link]
        yield from self._next_detail(listing, pending)

    def _next_detail(self, listing: Any, pending: list[str]) -> Any:
        while pending:
            url, pending = pending[0], pending[1:]
            try:
                urlparse(url).port  # noqa: B018 (raises ValueError for a port that is not a number in range)
                request = scrapy.Request(url, callback=self.parse_detail, errback=self.detail_failed,
                                         dont_filter=True, cb_kwargs={"listing": listing, "pending": pending,
                                                                      "link": url})
            except ValueError as error:  # one row's unusable link costs its detail page, not the listing
                self.warn(f"{url[:200]}: detail page not fetched (not a usable URL: {error}); stored from the listing")
                continue
            yield request
            return
        yield listing

    def parse_detail(self, response: Response, listing: Any, pending: list[str], link: str) -> Any:
        listing.details[link] = response.body  # by the listing's link, even after a redirect
        yield from self._next_detail(listing, pending)

    @contained
    def detail_failed(self, failure: Any) -> Any:
        # A missing detail page costs its extra fields, not the listing's notices: a warning.
        # A detail link refused on purpose (a non-public address) is recorded as a rejection.
        problem = self.failure_item(failure)
        if isinstance(problem, Refusal) and failure.check(RefusedAddress):
            yield problem
        else:
            self.warn(f"{problem.url}: detail page not fetched ({problem.reason}); stored from the listing")
        kwargs = failure.request.cb_kwargs
        yield from self._next_detail(kwargs["listing"], kwargs["pending"])
