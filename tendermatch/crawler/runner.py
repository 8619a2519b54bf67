"""Run configured spiders in this process (Scrapy's reactor runs once per process)."""

from __future__ import annotations

from datetime import date, timedelta
from importlib import import_module
from typing import Any

import scrapy
from scrapy.crawler import CrawlerProcess

from ..store import Store
from .settings import crawl_settings
from .stats import RunStats, progress

# One spider module per source kind, imported only when a source of that kind is crawled.
SPIDERS = {
    "ted": "tendermatch.crawler.spiders.ted.TedSpider",
    "files": "tendermatch.crawler.spiders.files.FilesSpider",
    "html": "tendermatch.crawler.spiders.html.HtmlListingSpider",
    "feed": "tendermatch.crawler.spiders.feed.FeedSpider",
    "ocds": "tendermatch.crawler.spiders.ocds.OcdsSpider",
}


def spider_class(kind: str) -> type[scrapy.Spider]:
    module, _, name = SPIDERS[kind].rpartition(".")
    return getattr(import_module(module), name)


def incremental_since(store: Store, source: dict[str, Any]) -> str | None:
    """For a TED source: the date to ask from (last good run less the overlap), else None."""
    if source["kind"] != "ted":
        return None
    last = store.last_successful_run(source["name"])
    if not last:
        return None
    started = date.fromisoformat(last["started"][:10])
    return (started - timedelta(days=source.get("overlap_days", 1))).isoformat()


def run_crawls(sources: list[dict[str, Any]], *, store_path: str, crawler: dict[str, Any],
               show_progress: bool = False, run_ids: dict[str, int] | None = None,
               log_settings: dict[str, str] | None = None) -> dict[str, RunStats]:
    """Crawl ``sources`` (config dicts) into the store at ``store_path``; return each
    source's stats. Every source gets a run row with its outcome: the one in ``run_ids``
    (recorded by the caller) or a new one. ``log_settings`` override Scrapy's LOG_*."""
    store = Store.open(store_path)
    process = CrawlerProcess(settings={**crawl_settings(crawler, store_path=store_path), **(log_settings or {})})
    run_ids = dict(run_ids or {})
    crawlers: dict[str, Any] = {}
    try:
        for source in sources:
            name = source["name"]
            # Per-source settings ride on a subclass: robots.txt and the crawl's time limit.
            base = spider_class(source["kind"])
            custom = {**(base.custom_settings or {}), "CLOSESPIDER_TIMEOUT": source.get("timeout", 1800)}
            if source["kind"] != "ted":
                custom["ROBOTSTXT_OBEY"] = source.get("obey_robots", True)
            configured = type(base.__name__, (base,), {"custom_settings": custom})
            if name not in run_ids:
                run_ids[name] = store.start_run("crawl", source=name)
            crawlers[name] = process.create_crawler(configured)
            process.crawl(crawlers[name], source=source, run_id=run_ids[name],
                          known_urls=store.known_urls(name), since=incremental_since(store, source))
    finally:
        store.close()
    progress.start(enabled=show_progress)
    process.start()
    results: dict[str, RunStats] = {}
    store = Store.open(store_path)
    try:
        for name, crawler_ in crawlers.items():
            stats = crawler_.stats.get_value("tendermatch/result") if crawler_.stats else None
            if stats is None:  # the spider never opened (a crash before its first request)
                stats = RunStats(errors=1, warnings=["the crawl did not start"])
                store.finish_run(run_ids[name], outcome="failed", stats=stats.as_dict(),
                                 error="the crawl did not start")
            reason = crawler_.stats.get_value("finish_reason") if crawler_.stats else None
            if reason == "closespider_timeout":
                stopped = f"stopped at the source's timeout ({crawler_.settings.getint('CLOSESPIDER_TIMEOUT')} s)"
                stats.warnings.append(stopped)
                store.finish_run(run_ids[name], outcome="partial", stats=stats.as_dict(), error=stopped)
            results[name] = stats
    finally:
        store.close()
    return results
