"""The base of every tendermatch spider."""

from __future__ import annotations

import re
from typing import Any

import scrapy
from scrapy.exceptions import DownloadCancelledError
from scrapy.http import Response
from twisted.python.failure import Failure

from ..items import FetchFailure, Refusal
from ..parsers.common import too_large
from ..pipelines import Document


class NoticeSpider(scrapy.Spider):
    """Base spider: one instance crawls one configured source.

    Constructor arguments (the runner passes them):
      ``source``: the source's config as a dict (see worker.config.SOURCE_SETTINGS);
      ``run_id``: the store's run row for this crawl;
      ``known_urls``: URLs of documents the store already keeps for this source (never refetched);
      ``since``: ISO date; an incremental source asks only for notices published since then.

    Attributes a subclass may set:
      ``kind``: the source kind it crawls (``ted``, ``files``, ``html``, ``feed``, ``ocds``);
      ``allow_file_urls``: True if it may read file:// URLs (only ``files``);
      ``custom_settings``: Scrapy settings that differ for this kind (e.g. robots.txt off for an API).
    """

    kind: str = ""
    allow_file_urls = False

    def __init__(self, source: dict[str, Any], run_id: int | None = None, known_urls: set[str] | None = None,
                 since: str | None = None, **kwargs: Any):
        super().__init__(name=source["name"], **kwargs)
        self.source = source
        self.source_name = source["name"]
        self.run_id = run_id
        self.known_urls = known_urls or set()
        self.since = since

    def warn(self, text: str) -> None:
        """Add a warning to this run's stats (shown in the summary and kept in the store)."""
        warnings = self.crawler.stats.get_value("tendermatch/warnings", [])
        self.crawler.stats.set_value("tendermatch/warnings", [*warnings, text])

    def document(self, response: Response, **fields: Any) -> Document:
        """A Document for the pipeline from a response."""
        return Document(source=self.source_name, url=response.url, content=response.body,
                        notice_kind=self.source.get("notice_kind", "tender"), **fields)

    def failed(self, failure: Failure) -> FetchFailure | Refusal:
        """Errback: a request that failed for good (after retries) becomes a counted error;
        a document over the size limit is refused (bad content, not a failed fetch, so the
        run stays ok and the next one does not fetch everything again)."""
        request = getattr(failure, "request", None)
        url = request.url if request is not None else "?"
        if failure.check(DownloadCancelledError):
            message = failure.getErrorMessage()
            sizes = [int(number) for number in re.findall(r"(?:receive|Received|size) \(?(\d+)", message)]
            if len(sizes) == 2:
                return Refusal(source=self.source_name, url=url, reason=too_large(*sizes))
        response = getattr(failure.value, "response", None)
        if response is not None:
            reason = f"HTTP {response.status}"
            location = response.headers.get("Location")
            if 300 <= response.status < 400 and location:
                reason += f" (redirect to {location.decode('latin-1')[:200]!r} not followed)"
        else:
            reason = f"{failure.type.__name__}: {failure.getErrorMessage()}"
        return FetchFailure(source=self.source_name, url=url, reason=reason)
