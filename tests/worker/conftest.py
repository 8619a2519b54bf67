"""Fixtures shared by the worker tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.crawler.servers import StaticSite
from tests.worker.worker_process import web_site


@pytest.fixture
def site() -> Iterator[StaticSite]:
    """The municipal fixture pages on a loopback port (an RSS feed at /udbud_feed.xml)."""
    served = web_site()
    try:
        yield served
    finally:
        served.close()
