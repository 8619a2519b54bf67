"""The Scrapy item pipeline: a thin adapter that hands each crawled item to a
``NoticeIngester`` (see ``ingest``) and records the run when the spider closes."""

from __future__ import annotations

import logging
from typing import Any

from ..store import Store, StoreError, StoreFullError
from .ingest import NoticeIngester
from .items import Document, FetchFailure, Refusal
from .parsers.common import (
    MAX_DOCUMENT_BYTES,
)
from .stats import progress

logger = logging.getLogger(__name__)


class StorePipeline:
    """Scrapy item pipeline: stores ``Document`` items, counts ``FetchFailure`` and
    ``Refusal`` items, and on close records the run's outcome and stats in the store.

    Settings: ``TENDERMATCH_STORE`` (path), ``TENDERMATCH_MAX_BYTES``. The spider supplies
    ``source_name`` and ``run_id``.
    """

    def __init__(self, crawler: Any):
        self.crawler = crawler
        settings = crawler.settings
        self.store_path = settings.get("TENDERMATCH_STORE")
        self.max_bytes = settings.getint("TENDERMATCH_MAX_BYTES", MAX_DOCUMENT_BYTES)
        self.store: Store | None = None
        self.ingester: NoticeIngester | None = None
        self.store_full: StoreFullError | None = None  # set when the disk refused a write

    @classmethod
    def from_crawler(cls, crawler: Any) -> StorePipeline:
        return cls(crawler)

    def open_spider(self, spider: Any = None) -> None:
        spider = spider or self.crawler.spider
        self.store = Store.open(self.store_path)
        self.ingester = NoticeIngester(self.store, source=spider.source_name, run_id=spider.run_id,
                                       max_bytes=self.max_bytes)

    def process_item(self, item: Any, spider: Any = None) -> Any:
        assert self.ingester is not None
        ingester = self.ingester
        if self.store_full is not None:
            return item  # the crawl is closing: what is still in flight is fetched again next run
        counts = ingester.stats.counts()
        try:
            if isinstance(item, Document):
                ingester.process(item)
            elif isinstance(item, Refusal):
                ingester.stats.fetched += 1
                ingester.reject(item.url, item.reason)
            elif isinstance(item, FetchFailure):
                ingester.reject(item.url, item.reason, error=True)
        except StoreFullError as error:
            # Every later write would fail too: stop the crawl rather than fetch for nothing.
            ingester.stats.restore(counts)  # that document was rolled back
            ingester.stats.errors += 1
            self.store_full = error
            logger.error("%s; the crawl stops (what it stored so far is kept)", error)
            from scrapy.utils.defer import deferred_from_coro  # Scrapy only here: ingest runs without it

            deferred_from_coro(self.crawler.engine.close_spider_async(reason="store_full"))
        except Exception as error:  # the store failed otherwise: count it, keep crawling
            ingester.stats.restore(counts)
            ingester.stats.errors += 1
            ingester.stats.rejections.append(f"{getattr(item, 'url', '?')}: store error: {error}")
            logger.error("store error on %s: %s", getattr(item, "url", "?"), error)
        progress.report(ingester.source, ingester.stats)
        return item

    def close_spider(self, spider: Any = None) -> None:
        if self.ingester is None or self.store is None:
            return
        stats = self.ingester.finish(extra_warnings=self.crawler.stats.get_value("tendermatch/warnings", []))
        for name in ("known_skipped", "no_xml_link", "retry_after_waits", "refused_urls", "incomplete"):
            value = self.crawler.stats.get_value(f"tendermatch/{name}")
            if value:
                stats.extra[name] = value
        self.crawler.stats.set_value("tendermatch/result", stats)
        try:
            if self.store_full is not None:
                self.ingester.record_run(outcome="failed", error=f"stopped: {self.store_full}")
            else:
                self.ingester.record_run()
        except StoreError as error:  # still no room: the next worker to start marks it interrupted
            logger.error("%s: the run's outcome could not be recorded", error)
        finally:
            self.store.close()
