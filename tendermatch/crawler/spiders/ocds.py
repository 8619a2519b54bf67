"""``ocds``: an OCDS release or record package endpoint, following ``links.next``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import scrapy
from scrapy.http import Response

from ..parsers.common import ParseError, load_json
from .base import NoticeSpider, contained


class OcdsSpider(NoticeSpider):
    """Fetches the package at ``url`` and follows ``links.next`` up to ``max_pages`` pages."""

    kind = "ocds"

    async def start(self) -> AsyncIterator[Any]:
        for url in [self.source["url"], *self.source.get("urls", [])]:
            yield scrapy.Request(url, callback=self.parse, errback=self.failed, cb_kwargs={"page": 1})

    def parse(self, response: Response, page: int) -> Any:
        yield self.document(response, format="ocds")
        next_url = _next_link(response.body)
        if next_url and page < self.source.get("max_pages", 50):
            yield response.follow(next_url, callback=self.parse, errback=self.next_page_failed,
                                  cb_kwargs={"page": page + 1})
        elif next_url:
            self.warn(f"stopped after max_pages={page} pages; more remain at {next_url}")
            self.crawler.stats.set_value("tendermatch/incomplete", 1)

    @contained
    def next_page_failed(self, failure: Any) -> Any:
        """Errback of a links.next page: it and every page after it are lost (even when the
        link was refused on purpose), so the run is incomplete."""
        self.crawler.stats.set_value("tendermatch/incomplete", 1)
        return self.failure_item(failure)


def _next_link(body: bytes) -> str | None:
    try:
        data = load_json(body, lines=False)
    except ParseError:
        return None  # the pipeline rejects the page itself with the reason
    links = data.get("links") if isinstance(data, dict) else None
    next_url = links.get("next") if isinstance(links, dict) else None
    return next_url if isinstance(next_url, str) and next_url else None
