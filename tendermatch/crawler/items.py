"""What spiders hand to the pipeline: fetched documents, failed fetches and refusals."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from ..store import compress, utc_now


@dataclass
class Document:
    """One fetched document on its way to the store.

    ``details`` are the detail pages of an HTML listing page ({url: bytes}), kept with it.
    """

    source: str
    url: str
    content: bytes
    fetched_at: str = field(default_factory=utc_now)
    format: str | None = None
    notice_kind: str = "tender"
    selectors: dict[str, str] | None = None
    details: dict[str, bytes] = field(default_factory=dict)


@dataclass
class RawContent:
    """A document's bytes as the store keeps them: hash, size and compressed copy."""

    sha256: str
    size: int
    compressed: bytes

    @classmethod
    def of(cls, content: bytes) -> RawContent:
        return cls(hashlib.sha256(content).hexdigest(), len(content), compress(content))


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
