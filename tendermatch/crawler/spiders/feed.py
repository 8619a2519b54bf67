"""``feed``: an RSS 2.0 or Atom feed of notices (a municipality's or a portal's)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import scrapy
from scrapy.http import Response

from .base import NoticeSpider


class FeedSpider(NoticeSpider):
    """Fetches each configured feed URL; the feed parser turns items into notices."""

    kind = "feed"

    async def start(self) -> AsyncIterator[Any]:
        for url in [self.source["url"], *self.source.get("urls", [])]:
            yield scrapy.Request(url, callback=self.parse, errback=self.failed, dont_filter=True)

    def parse(self, response: Response) -> Any:
        yield self.document(response, format="feed")
