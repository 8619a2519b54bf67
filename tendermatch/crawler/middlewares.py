"""Crawler middlewares: honour Retry-After; never leave http(s) (or file:// for a files
source); never reach a non-public address the source was not allowed; keep every download
within the source's timeout; and count an exception in a callback instead of losing it."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlparse

from scrapy import Request
from scrapy.downloadermiddlewares.retry import RetryMiddleware, get_retry_request
from scrapy.exceptions import CannotResolveHostError, CloseSpider, IgnoreRequest
from scrapy.http import Response
from scrapy.resolver import CachingThreadedResolver
from scrapy.spidermiddlewares.httperror import HttpError
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.response import response_status_message
from twisted.internet.defer import CancelledError, Deferred, succeed
from twisted.internet.defer import TimeoutError as LookupTimeoutError
from twisted.internet.error import DNSLookupError
from twisted.internet.interfaces import IResolverSimple
from zope.interface import implementer

from ..errors import TendermatchError
from .items import FetchFailure

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
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class RetryAfterMiddleware(RetryMiddleware):
    """The stock retry middleware, but a 429 or 503 with Retry-After waits that long
    (up to RETRY_AFTER_MAX seconds; longer means give up) before the retry."""

    def __init__(self, settings: Any):
        super().__init__(settings)
        self.retry_after_max = settings.getfloat("RETRY_AFTER_MAX", 300)

    # Scrapy (2.13+) awaits a coroutine here; its type hints still describe the synchronous base.
    async def process_response(  # type: ignore[override]
            self, request: Request, response: Response, spider: Any = None) -> Request | Response:
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
            seconds_left = getattr(self.crawler.spider, "seconds_left", lambda: None)()
            if seconds_left is not None and delay >= seconds_left:  # the wait would outlast the source's timeout
                logger.warning("%s asks to retry after %.0f s, past the source's timeout: giving up",
                               request.url, delay)
                return response
            self.crawler.stats.inc_value("tendermatch/retry_after_waits")
            await asyncio.sleep(delay)
        # Scrapy's public retry helper (its middleware's own ``_retry`` is private).
        assert self.crawler.spider is not None  # a response means the spider is open
        retry = get_retry_request(request, spider=self.crawler.spider, reason=reason,
                                  max_retry_times=request.meta.get("max_retry_times", self.max_retry_times),
                                  priority_adjust=request.meta.get("priority_adjust", self.priority_adjust))
        return retry or response


class SafeSchemeMiddleware:
    """Drop any request (including a redirect target) whose scheme is not http(s), or
    file:// for a spider that reads local files (``allow_file_urls = True``)."""

    crawler: Any

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


# -- non-public addresses -------------------------------------------------------------------------

_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT: not global, not "private" either
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
INTRANET_HINT = "set allow_private_network = true for an intranet source"


def non_public_kind(address: str) -> str | None:
    """What kind of non-public address ``address`` is ("a private address", "a loopback
    address", ...), or None for a public one. An IPv6 address that carries an IPv4 one
    (IPv4-mapped, 6to4, NAT64) is judged by the IPv4 address it leads to."""
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        ip = embedded or ip
    for kind, hit in (("a loopback", ip.is_loopback), ("a link-local", ip.is_link_local),
                      ("an unspecified", ip.is_unspecified), ("a multicast", ip.is_multicast),
                      ("a shared (carrier-grade NAT)", ip in _SHARED), ("a private", ip.is_private),
                      ("a reserved", ip.is_reserved), ("a non-public", not ip.is_global)):
        if hit:
            return f"{kind} address"
    return None


class RefusedAddress(TendermatchError, IgnoreRequest):
    """A request refused before connecting: its host is (or resolves to) a non-public address."""


@implementer(IResolverSimple)
class PinningResolver(CachingThreadedResolver):
    """Scrapy's resolver, except that a host name is looked up once per crawl process and
    its answer kept: the address PublicAddressMiddleware checked is the address the
    download connects to, so a second lookup (DNS rebinding) cannot swap in another.
    (Scrapy's own cache is an LRU that may evict; a crawl process is short-lived.)"""

    def __init__(self, reactor: Any, cache_size: int, timeout: float):
        super().__init__(reactor, cache_size, timeout)
        self.pinned: dict[str, str] = {}

    def getHostByName(self, name: str, timeout: Any = ()) -> Deferred:
        if name in self.pinned:
            return succeed(self.pinned[name])
        return super().getHostByName(name, timeout).addCallback(self._pin, name)

    def _pin(self, address: str, name: str) -> str:
        return self.pinned.setdefault(name, address)  # two lookups racing: both get the first answer


def url_origin(url: str) -> tuple[str, int] | None:
    """(host, port) of an http(s) URL, the port filled in from the scheme; None otherwise."""
    try:
        parsed = urlparse(url)
        port = parsed.port
    except ValueError:
        return None
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        return None
    return parsed.hostname.lower(), port or (443 if parsed.scheme == "https" else 80)


class PublicAddressMiddleware:
    """Refuse, before connecting, any http(s) request (a detail link, a redirect target, a
    next page, a notice link, a robots.txt) whose host is or resolves to a non-public address
    (private, loopback, link-local, CGNAT, multicast, reserved, unspecified), unless the
    source opts in with ``allow_private_network = true``. The origins (host and port) of the
    source's own configured ``url``/``urls`` are always allowed: the operator chose them.

    Host names are resolved here, through the process's PinningResolver, so the address
    checked is the one connected to."""

    def __init__(self, crawler: Any):
        self.crawler = crawler
        self.trusted: set[tuple[str, int]] | None = None

    @classmethod
    def from_crawler(cls, crawler: Any) -> PublicAddressMiddleware:
        return cls(crawler)

    def _trusted_origins(self, source: dict[str, Any]) -> set[tuple[str, int]]:
        if self.trusted is None:
            configured = [source.get("url"), *(source.get("urls") or [])]
            self.trusted = {origin for origin in map(url_origin, filter(None, configured)) if origin}
        return self.trusted

    async def process_request(self, request: Request, spider: Any = None) -> None:
        spider = spider or self.crawler.spider
        source = getattr(spider, "source", None) or {}
        origin = url_origin(request.url)
        if origin is None or source.get("allow_private_network") or origin in self._trusted_origins(source):
            return None  # not http(s) (SafeSchemeMiddleware's business), opted in, or the operator's own URL
        host = origin[0]
        try:
            kind = non_public_kind(host)
            address = host
        except ValueError:  # a host name: resolve it (and pin the answer) to judge where it leads
            address = await self._resolve(host, request)
            kind = non_public_kind(address)
        if kind is None:
            return None
        where = f"{address} is" if address == host else f"{host} resolves to {address},"
        raise RefusedAddress(f"refused: {where} {kind}; {INTRANET_HINT}")

    async def _resolve(self, host: str, request: Request) -> str:
        from twisted.internet import reactor

        lookup = reactor.resolve(host)  # type: ignore[arg-type]  # Twisted's stub says bytes; it takes a str
        seconds_left = getattr(self.crawler.spider, "seconds_left", lambda: None)()
        if seconds_left is not None:  # the source's timeout bounds the lookup too
            lookup.addTimeout(max(seconds_left, 0.1), reactor)
        try:
            return await maybe_deferred_to_future(lookup)
        except (DNSLookupError, LookupTimeoutError, CancelledError) as error:
            # Raised, not ignored: the download must not make its own, unchecked lookup.
            raise CannotResolveHostError(f"cannot resolve {host}: {error}") from None


# -- the source's timeout bounds every download ---------------------------------------------------


class SourceDeadlineMiddleware:
    """Cap each download's timeout at what is left of the source's ``timeout``
    (CLOSESPIDER_TIMEOUT), and fetch nothing once it has passed. Scrapy's close at the
    timeout waits for downloads in flight; a server dripping one byte every few seconds
    would otherwise hold the crawl up to DOWNLOAD_TIMEOUT longer."""

    def __init__(self, crawler: Any):
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Any) -> SourceDeadlineMiddleware:
        return cls(crawler)

    def process_request(self, request: Request, spider: Any = None) -> None:
        spider = spider or self.crawler.spider
        seconds_left = spider.seconds_left() if hasattr(spider, "seconds_left") else None
        if seconds_left is None:
            return None
        limit = self.crawler.settings.getfloat("CLOSESPIDER_TIMEOUT")
        if seconds_left <= 0:
            raise IgnoreRequest(f"not fetched: stopped at the source's timeout ({limit:g} s)")
        own = request.meta.get("download_timeout", self.crawler.settings.getfloat("DOWNLOAD_TIMEOUT"))
        if seconds_left < own:
            request.meta["download_timeout"] = seconds_left
            request.meta["tendermatch_deadline"] = limit  # a timeout then means: the source's time ran out
        return None


# -- an exception in a callback costs that page, counted ------------------------------------------


class CallbackErrorMiddleware:
    """Spider middleware: an unexpected exception in a spider callback (a bug, or input no
    parser foresaw) becomes a counted error naming the page, so the run is not ``ok`` (and
    an incremental source does not move past what was lost); what the callback yielded
    before the exception is kept. One log line, no traceback (that goes to DEBUG)."""

    def __init__(self, crawler: Any):
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Any) -> CallbackErrorMiddleware:
        return cls(crawler)

    def process_spider_exception(self, response: Response, exception: Exception,
                                 spider: Any = None) -> list[Any] | None:
        if isinstance(exception, (HttpError, CloseSpider)):
            return None  # Scrapy's own: HttpErrorMiddleware and the engine handle these
        spider = spider or self.crawler.spider
        reason = unexpected_error(exception, "while reading this page; the rest of it was not read")
        logger.error("%s: %s", response.url, reason)
        logger.debug("%s: the callback's traceback", response.url, exc_info=exception)
        self.crawler.stats.set_value("tendermatch/incomplete", 1)
        return [FetchFailure(source=spider.source_name, url=response.url, reason=reason)]


def unexpected_error(error: BaseException, context: str) -> str:
    """One line for an exception nobody expected: its type, message and ``context``."""
    message = " ".join(str(error).split())[:300]
    return f"unexpected {type(error).__name__}{': ' + message if message else ''} {context}"
