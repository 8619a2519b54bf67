"""``files``: notice files in a folder, a glob or a file:// URL (what the demo crawls)."""

from __future__ import annotations

import glob
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import scrapy
from scrapy.http import Response

from ..items import Refusal
from ..parsers.common import too_large
from .base import NoticeSpider

NOTICE_SUFFIXES = {".xml", ".json", ".jsonl", ".ndjson", ".rss", ".atom", ".html", ".htm"}


def notice_files(location: str) -> list[Path]:
    """The files a ``files`` source covers: a file, every notice file under a folder, or a glob."""
    if location.startswith("file://"):
        location = unquote(urlparse(location).path)
    if any(ch in location for ch in "*?["):
        paths = [Path(p) for p in glob.glob(location, recursive=True)]
    else:
        path = Path(location)
        paths = [path] if path.is_file() else [p for p in path.rglob("*") if p.suffix.lower() in NOTICE_SUFFIXES]
    return sorted(p.resolve() for p in paths if p.is_file() and not p.name.startswith("."))


class FilesSpider(NoticeSpider):
    """Reads local notice files through Scrapy's file:// handler, like any other source."""

    kind = "files"
    allow_file_urls = True

    async def start(self) -> AsyncIterator[Any]:
        location = self.source.get("path") or self.source.get("url")
        max_bytes = self.settings.getint("TENDERMATCH_MAX_BYTES")
        if not location:  # the config refuses such a source; a spider started by hand may not
            raise ValueError("a files source needs a path")
        for path in notice_files(str(location)):
            url = path.as_uri()
            size = path.stat().st_size
            if size > max_bytes:
                # Refused unread: a 100 MB "notice" is not worth the memory.
                yield Refusal(self.source_name, url, too_large(size, max_bytes))
                continue
            yield scrapy.Request(url, callback=self.parse, errback=self.failed, dont_filter=True)

    def parse(self, response: Response) -> Any:
        yield self.document(response)
