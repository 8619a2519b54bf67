"""Scrapy settings for tendermatch crawls: polite by default.

Each setting says which Scrapy default it changes and why. ``crawl_settings`` fills in the
values an operator may change in the config's [crawler] table.
"""

from __future__ import annotations

from typing import Any

BOT_NAME = "tendermatch"

# Default False: municipal sites ask crawlers to keep out of some paths; we listen.
# The TED spider turns it off for itself: it calls an API endpoint, not pages.
ROBOTSTXT_OBEY = True

# Default off: adapt the pace to how fast each site answers, never above 2 in flight.
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 1.0
AUTOTHROTTLE_TARGET_CONCURRENCY = 1.0
CONCURRENT_REQUESTS_PER_DOMAIN = 2
DOWNLOAD_DELAY = 1.0

# Default retries 2 and no Retry-After: one more try, and 429/503 wait as the server asks
# (RetryAfterMiddleware replaces the stock retry middleware at the same position).
RETRY_TIMES = 3
RETRY_HTTP_CODES = [500, 502, 503, 504, 522, 524, 408, 429]
DOWNLOADER_MIDDLEWARES = {
    "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
    "tendermatch.crawler.middlewares.RetryAfterMiddleware": 550,
    # Before robots.txt (100), so neither a refused page nor its robots.txt is fetched, and
    # every request (redirects and retries come back through here) is checked:
    "tendermatch.crawler.middlewares.SourceDeadlineMiddleware": 40,  # nothing outlives the source's timeout
    "tendermatch.crawler.middlewares.SafeSchemeMiddleware": 50,      # http(s) only
    "tendermatch.crawler.middlewares.PublicAddressMiddleware": 60,   # no private addresses (allow_private_network)
}
RETRY_AFTER_MAX = 300

# Default: a callback's exception is logged with a traceback and what it lost goes
# uncounted; here it becomes a counted error for that page (engine side: it also catches
# what other spider middlewares raise).
SPIDER_MIDDLEWARES = {"tendermatch.crawler.middlewares.CallbackErrorMiddleware": 60}

# Default CachingThreadedResolver: the same, but an answer is kept for the whole crawl, so the
# address PublicAddressMiddleware checked is the one connected to (no DNS rebinding).
TWISTED_DNS_RESOLVER = "tendermatch.crawler.middlewares.PinningResolver"

# Default 1 GB: a notice is small; anything larger is refused (and counted) unread.
DOWNLOAD_MAXSIZE = 20 * 1024 * 1024
DOWNLOAD_TIMEOUT = 60

ITEM_PIPELINES = {"tendermatch.crawler.pipelines.StorePipeline": 300}

# Default on: nobody should be able to attach to a worker's crawl.
TELNETCONSOLE_ENABLED = False
# Default DEBUG: one line per request is noise in an operator's log.
LOG_LEVEL = "WARNING"


def crawl_settings(crawler: dict[str, Any], *, store_path: str) -> dict[str, Any]:
    """Scrapy settings for one crawl, from this module plus the config's [crawler] values."""
    settings = {name: value for name, value in globals().items() if name.isupper()}
    max_bytes = int(crawler["max_document_mb"] * 1024 * 1024)
    settings.update(
        USER_AGENT=crawler["user_agent"],
        DOWNLOAD_DELAY=crawler["download_delay"],
        AUTOTHROTTLE_START_DELAY=crawler["download_delay"],
        CONCURRENT_REQUESTS_PER_DOMAIN=crawler["concurrent_requests_per_domain"],
        RETRY_TIMES=crawler["retry_times"],
        DOWNLOAD_MAXSIZE=max_bytes,
        RETRY_AFTER_MAX=crawler["retry_after_max"],
        TENDERMATCH_STORE=store_path,
        TENDERMATCH_MAX_BYTES=max_bytes,
    )
    return settings
