"""The matcher's edge with the store: read the notices, match, write the match log, record the run."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from tendermatch.store import Store

from . import rules
from .engine import Match, match_profiles
from .profiles import Profile, usable_keyword
from .table import NoticeTable

DEFAULT_KEEP = 100


@dataclass
class MatchRun:
    """What a match run did: its run id, the matches written and the counts."""

    run_id: int
    matches: list[Match] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    unusable: list[str] = field(default_factory=list)  # notices that could not be matched: why
    _by_profile: dict[str, list[Match]] | None = field(default=None, init=False, repr=False, compare=False)

    def for_profile(self, profile_id: str) -> list[Match]:
        """That profile's matches, in the run's order. Grouped once: the CLI asks for each of
        10,000 profiles, and a scan of every match per profile took minutes."""
        if self._by_profile is None:
            self._by_profile = {}
            for match in self.matches:
                self._by_profile.setdefault(match.profile_id, []).append(match)
        return list(self._by_profile.get(profile_id, ()))


def match_store(store: Store, profiles: list[Profile], *, as_of: date | None,
                rates: dict[str, float] | None = None, min_relevance: float = rules.MIN_RELEVANCE,
                keep: int | None = DEFAULT_KEEP, workers: int | None = None) -> MatchRun:
    """Match every sendable notice in the store against ``profiles`` and make their
    matches (each profile's best ``keep``) these profiles' rows in the match log.
    ``as_of=None`` ignores deadlines. ``workers`` (default: the CPU count) processes score
    the profiles. The run is recorded (job 'match'); an error marks it failed and is raised."""
    run_id = store.start_run("match")
    started = time.perf_counter()
    try:
        # Closed notices (most of a store that has run for a year) are left in the store;
        # the rules below would skip them anyway.
        records = list(store.notices(open_on=as_of.isoformat() if as_of else None))
        closed = store.counts()["notices"] - len(records)
        table = NoticeTable.build(records, as_of=as_of, rates=rates)
        matches, found = match_profiles(table, profiles, min_relevance=min_relevance, keep=keep,
                                        workers=workers or os.cpu_count() or 1)
        # The log holds each profile's current matches: its rows for notices that have
        # closed since go too (what was sent stays in the deliveries).
        store.replace_matches(profile_ids=[profile.id for profile in profiles],
                              rows=[match.as_row() for match in matches], run_id=run_id)
    except BaseException as error:
        store.finish_run(run_id, outcome="failed", stats={}, error=f"{type(error).__name__}: {error}")
        raise
    skipped: dict[str, int] = {"closed": closed} if closed else {}
    for reason in table.skipped.values():
        key = reason.split(" ")[0].rstrip(":") if not reason.startswith("stage") else reason
        skipped[key] = skipped.get(key, 0) + 1
    stats = {
        "as_of": as_of.isoformat() if as_of else None,
        "notices": len(records) + closed,
        "matched_notices": len(table.records),
        "lots": table.size,
        "skipped": skipped,
        "profiles": len(profiles),
        # Keywords given, none able to match: matched on CPV codes only (`profiles validate` names them).
        "profiles_without_usable_keyword": sum(1 for profile in profiles if profile.keywords
                                               and not any(usable_keyword(keyword) for keyword in profile.keywords)),
        "matches": len(matches),
        "matches_found": found,  # before keeping each profile's best ``keep``
        "seconds": round(time.perf_counter() - started, 2),
    }
    unusable = [f"{notice_id}: {reason}" for notice_id, reason in table.skipped.items()
                if reason.startswith("unusable")]
    # Notices that could not be matched were lost to this run: it is not ok.
    store.finish_run(run_id, outcome="partial" if unusable else "ok", stats=stats,
                     error="; ".join(unusable[:20]) or None)
    return MatchRun(run_id=run_id, matches=matches, stats=stats, unusable=unusable)
