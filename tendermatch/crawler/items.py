"""What spiders hand to the pipeline besides Documents."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class FetchFailure:
    """A request that failed for good (network error, HTTP error after retries)."""

    source: str
    url: str
    reason: str


@dataclass
class Refusal:
    """A document refused before or while fetching (larger than the limit): counted as rejected."""

    source: str
    url: str
    reason: str
