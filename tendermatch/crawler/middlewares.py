"""Downloader middlewares: honour Retry-After, and never leave http(s) (or file:// for a files source)."""

from __future__ import annotations

import asyncio
import logging
from email.utils import parsedate_to_datetime
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlparse

from scrapy import Request
from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response
from scrapy.utils.response import response_status_message

logger = logging.getLogger(__name__)


def retry_after_seconds(value: bytes | str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return None
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    text = text.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


class RetryAfterMiddleware(RetryMiddleware):
    """The stock retry middleware, but a 429 or 503 with Retry-After waits that long
    (up to RETRY_AFTER_MAX seconds; longer means give up) before the retry."""

    def __init__(self, settings: Any):
        super().__init__(settings)
        self.retry_after_max = settings.getfloat("RETRY_AFTER_MAX", 300)

    async def process_response(self, request: Request, response: Response, spider: Any = None) -> Request | Response:
        if request.meta.get("dont_retry", False) or response.status not in self.retry_http_codes:
            return response
        reason = response_status_message(response.status)
        delay = retry_after_seconds(response.headers.get("Retry-After")) if response.status in (429, 503) else None
        retries_left = request.meta.get("retry_times", 0) < request.meta.get("max_retry_times", self.max_retry_times)
        if delay is not None and retries_left:
            if delay > self.retry_after_max:
                logger.warning("%s asks to retry after %.0f s, over the %.0f s limit: giving up",
                               request.url, delay, self.retry_after_max)
                return response
            self.crawler.stats.inc_value("tendermatch/retry_after_waits")
            await asyncio.sleep(delay)
        return self._retry(request, reason) or response


class SafeSchemeMiddleware:
    """Drop any request (including a redirect target) whose scheme is not http(s), or
    file:// for a spider that reads local files (``allow_file_urls = True``)."""

    @classmethod
    def from_crawler(cls, crawler: Any) -> SafeSchemeMiddleware:
        middleware = cls()
        middleware.crawler = crawler
        return middleware

    def process_request(self, request: Request, spider: Any = None) -> None:
        spider = spider or self.crawler.spider
        scheme = urlparse(request.url).scheme.lower()
        allowed = {"http", "https"} | ({"file"} if getattr(spider, "allow_file_urls", False) else set())
        if scheme not in allowed:
            self.crawler.stats.inc_value("tendermatch/refused_urls")
            raise IgnoreRequest(f"refused URL scheme {scheme!r}: {request.url[:200]}")
        return None
