"""The base of every tendermatch spider."""

from __future__ import annotations

import functools
import inspect
import logging
import re
from collections.abc import Callable
from time import monotonic
from typing import Any
from weakref import WeakKeyDictionary

import scrapy
from scrapy import signals
from scrapy.exceptions import (
    DownloadCancelledError,
    DownloadTimeoutError,
    IgnoreRequest,
    ResponseDataLossError,
)
from scrapy.http import Request, Response
from twisted.internet.error import TimeoutError as ConnectTimeoutError
from twisted.python.failure import Failure

from ..items import Document, FetchFailure, Refusal
from ..middlewares import RefusedAddress, unexpected_error
from ..parsers.common import too_large

logger = logging.getLogger(__name__)


def contained(errback: Callable[..., Any]) -> Callable[..., list[Any]]:
    """Decorate a spider's errback: an exception inside it (a bug, input nobody foresaw)
    becomes a counted error for the request's URL, so the run is not ``ok``, instead of a
    traceback and a page silently lost. What the errback yielded before it is kept.
    (Scrapy passes an errback's exceptions to no spider middleware, unlike a callback's.)"""

    @functools.wraps(errback)
    def guarded(spider: NoticeSpider, failure: Failure) -> list[Any]:
        output: list[Any] = []
        try:
            result = errback(spider, failure)
            if inspect.isgenerator(result):
                for item in result:
                    output.append(item)
            elif result is not None:
                output.append(result)
        except Exception as error:
            url = _request_url(failure)
            reason = unexpected_error(error, f"while handling a failed download ({failure.type.__name__})")
            logger.error("%s: %s", url, reason)
            logger.debug("%s: the errback's traceback", url, exc_info=error)
            spider.crawler.stats.set_value("tendermatch/incomplete", 1)
            output.append(FetchFailure(source=spider.source_name, url=url, reason=reason))
        return output

    return guarded


def _request_url(failure: Failure) -> str:
    request = getattr(failure, "request", None)
    return request.url if request is not None else "?"


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

    A subclass's errbacks are decorated with :func:`contained`; its callbacks need nothing
    (CallbackErrorMiddleware counts what they raise).
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
        self.deadline: float | None = None  # monotonic time the source's timeout runs out
        self.body_bytes: WeakKeyDictionary[Request, int] = WeakKeyDictionary()  # body bytes per request

    @classmethod
    def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> NoticeSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        crawler.signals.connect(spider._opened, signal=signals.spider_opened)
        crawler.signals.connect(spider._count_bytes, signal=signals.bytes_received)
        crawler.signals.connect(spider._spider_error, signal=signals.spider_error)
        return spider

    def _opened(self) -> None:
        # The same moment Scrapy's CloseSpider extension starts counting CLOSESPIDER_TIMEOUT.
        limit = self.settings.getfloat("CLOSESPIDER_TIMEOUT")
        self.deadline = monotonic() + limit if limit else None

    def seconds_left(self) -> float | None:
        """Seconds until the source's timeout, or None without one (or before the crawl opened)."""
        return None if self.deadline is None else self.deadline - monotonic()

    def _count_bytes(self, data: bytes, request: Request) -> None:
        # Scrapy cancels a body over DOWNLOAD_MAXSIZE with an empty message; this says how much came.
        self.body_bytes[request] = self.body_bytes.get(request, 0) + len(data)

    def _spider_error(self, failure: Failure, response: Any) -> None:
        # The last net (CallbackErrorMiddleware and @contained catch what spiders raise): whatever
        # reaches Scrapy's own handler still makes the run incomplete, with a warning.
        self.crawler.stats.set_value("tendermatch/incomplete", 1)
        url = response.url if isinstance(response, Response) else _request_url(response)
        self.warn(f"{url}: {unexpected_error(failure.value, 'in the crawl (see the log)')}")

    def warn(self, text: str) -> None:
        """Add a warning to this run's stats (shown in the summary and kept in the store)."""
        warnings = self.crawler.stats.get_value("tendermatch/warnings", [])
        self.crawler.stats.set_value("tendermatch/warnings", [*warnings, text])

    def document(self, response: Response, **fields: Any) -> Document:
        """A Document for the pipeline from a response."""
        return Document(source=self.source_name, url=response.url, content=response.body,
                        notice_kind=self.source.get("notice_kind", "tender"), **fields)

    @contained
    def failed(self, failure: Failure) -> FetchFailure | Refusal:
        """Errback: a request that failed for good (after retries) becomes a counted error."""
        return self.failure_item(failure)

    def failure_item(self, failure: Failure) -> FetchFailure | Refusal:
        """What a failed request counts as. A document over the size limit, or a request to an
        address the source may not reach, is refused on purpose (a rejection: bad content, not
        a failed fetch, so the run stays ok and the next one does not fetch everything again);
        anything else is an error naming what happened."""
        request = getattr(failure, "request", None)
        url = request.url if request is not None else "?"
        if failure.check(RefusedAddress):
            return Refusal(source=self.source_name, url=url, reason=failure.getErrorMessage())
        if failure.check(DownloadCancelledError):
            message = failure.getErrorMessage()
            sizes = [int(number) for number in re.findall(r"(?:receive|Received|size) \(?(\d+)", message)]
            if len(sizes) == 2:
                return Refusal(source=self.source_name, url=url, reason=too_large(*sizes))
            limit = (request.meta.get("download_maxsize") if request is not None else None) \
                or self.settings.getint("DOWNLOAD_MAXSIZE")
            received = self.body_bytes.get(request, 0) if request is not None else 0
            if limit and received > limit:
                return Refusal(source=self.source_name, url=url,
                               reason=f"response exceeded the {limit / 2**20:.3g} MB limit while streaming"
                                      f" (stopped after {received} bytes)")
        return FetchFailure(source=self.source_name, url=url, reason=self.failure_reason(failure))

    def failure_reason(self, failure: Failure) -> str:
        """One line naming why a request failed: the HTTP status, the timeout, the cut-off,
        else the exception's type and message (never an empty message)."""
        request = getattr(failure, "request", None)
        meta = request.meta if request is not None else {}
        response = getattr(failure.value, "response", None)
        if response is not None:
            reason = f"HTTP {response.status}"
            location = response.headers.get("Location")
            if 300 <= response.status < 400 and location:
                reason += f" (redirect to {location.decode('latin-1')[:200]!r} not followed)"
            return reason
        if failure.check(DownloadTimeoutError, ConnectTimeoutError):
            if meta.get("tendermatch_deadline"):
                return f"download stopped at the source's timeout ({meta['tendermatch_deadline']:g} s)"
            timeout = meta.get("download_timeout") or self.settings.getfloat("DOWNLOAD_TIMEOUT")
            return f"download timed out after {timeout:g} s"
        if failure.check(ResponseDataLossError):
            return "cut off: the connection closed before the whole response arrived"
        if failure.check(DownloadCancelledError):
            return "download cancelled before the response was complete"
        message = " ".join(failure.getErrorMessage().split())[:300]
        if failure.check(IgnoreRequest) and message:
            return message
        if not message and failure.value.__cause__ is not None:
            cause = failure.value.__cause__
            message = f"{type(cause).__name__}: {' '.join(str(cause).split())[:300]}".rstrip(": ")
        return f"{failure.type.__name__}: {message}" if message else failure.type.__name__
