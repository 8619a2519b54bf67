"""A run's counts, its outcome, and the progress line on stderr."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class RunStats:
    """Counts of one crawl, ingest or reparse run."""

    fetched: int = 0
    skipped: int = 0  # documents already kept with the same bytes
    notices: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    errors: int = 0
    warnings: list[str] = field(default_factory=list)
    rejections: list[str] = field(default_factory=list)
    extra: dict[str, int] = field(default_factory=dict)  # spider counters (known_skipped, ...)

    def as_dict(self) -> dict[str, Any]:
        return {"fetched": self.fetched, "skipped": self.skipped, "notices": self.notices, "new": self.new,
                "updated": self.updated, "unchanged": self.unchanged, "rejected": self.rejected,
                "errors": self.errors, "warnings": self.warnings, **self.extra}

    def counts(self) -> dict[str, int]:
        """The counters, to put back with ``restore`` when a document is rolled back."""
        return {name: value for name, value in self.__dict__.items() if isinstance(value, int)}

    def restore(self, counts: dict[str, int]) -> None:
        self.__dict__.update(counts)

    def suspicion(self) -> str | None:
        """Why this run looks wrong although nothing failed, or None: it fetched new or
        changed documents and found no notice in any. A listing whose layout changed (the
        selectors find nothing) or a feed that suddenly serves no items looks like this, and
        must not pass for a quiet day. Documents kept already with the same bytes do not count."""
        fresh = self.fetched - self.skipped
        if fresh <= 0 or self.notices:
            return None
        return (f"no notices in {fresh} new or changed document(s): the source's page layout or format"
                " may have changed")

    def troubled(self) -> bool:
        """Anything rejected, failed or suspicious: a command reporting this run exits 1."""
        return bool(self.rejected or self.errors or self.suspicion())

    def summary(self) -> str:
        return (f"fetched {self.fetched}, new {self.new}, updated {self.updated}, unchanged {self.unchanged},"
                f" rejected {self.rejected}, errors {self.errors}")


def run_outcome(stats: RunStats) -> str:
    """ok: every fetch worked (bad documents may have been rejected); partial: some fetches
    failed or the crawl stopped before the end; failed: nothing could be fetched;
    suspicious: documents were fetched but held no notice (see ``RunStats.suspicion``)."""
    if stats.errors and stats.fetched == 0:
        return "failed"
    if stats.suspicion():
        return "suspicious"
    return "partial" if stats.errors or stats.extra.get("incomplete") else "ok"


class _Progress:
    """A progress line on stderr every 2 seconds of a long crawl. The first comes 2 seconds
    after the first document, not with it: a crawl that ends sooner prints only the summary
    its command prints at the end ("fetched 1, new 1" before "fetched 28" said nothing)."""

    def __init__(self) -> None:
        self.last: float | None = None
        self.enabled = False

    def start(self, *, enabled: bool) -> None:
        """A crawl run begins: its first line 2 seconds after its first document."""
        self.enabled, self.last = enabled, None

    def report(self, source: str, stats: RunStats) -> None:
        import sys
        import time

        if not self.enabled:
            return
        now = time.monotonic()
        if self.last is None:
            self.last = now
        elif now - self.last >= 2:
            self.last = now
            print(f"  {source}: {stats.summary()}", file=sys.stderr, flush=True)


progress = _Progress()
