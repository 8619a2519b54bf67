"""Fixtures shared by the worker tests (defined in tests/worker/worker_process.py, beside
the helpers they use; tests/reliability/conftest.py offers them there too)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.crawler.servers import StaticSite
from tests.worker.worker_process import slow_site, spawn, web_site

__all__ = ["site", "slow_site", "spawn"]


@pytest.fixture
def site() -> Iterator[StaticSite]:
    """The municipal fixture pages on a loopback port (an RSS feed at /udbud_feed.xml)."""
    served = web_site()
    try:
        yield served
    finally:
        served.close()
