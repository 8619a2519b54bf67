""""Ikke nået": the enterprises closest to an open tender that reached no one, and why they
fell short, from what the store keeps of their profiles (CPV codes, regions, value limit)."""

from __future__ import annotations

import threading
from typing import Any

from .formatting import format_amount


class NearMissIndex:
    """The enterprises by every start (2 to 8 digits) of their CPV codes, so the closest to a
    notice are found by lookups, not by comparing every profile; rebuilt when the profiles change."""

    def __init__(self, profiles: list[dict[str, Any]]):
        self.profiles = profiles
        self.by_start: dict[str, set[int]] = {}
        for number, profile in enumerate(profiles):
            for code in profile["cpv"]:
                for size in range(2, min(len(code), 8) + 1):
                    self.by_start.setdefault(code[:size], set()).add(number)

    def closest(self, notice_row: dict[str, Any], *, limit: int = 3, per_level: int = 50) -> list[dict[str, Any]]:
        """The enterprises closest to a notice none was matched to: those whose CPV codes share
        the longest start with the notice's (at least the division, 2 digits), each with why it
        fell short (region, size) as far as the store shows; the matcher keeps no verdict for misses."""
        seen: set[int] = set()
        found: list[dict[str, Any]] = []
        for size in range(8, 1, -1):
            level = sorted({number for code in notice_row["cpv"] if len(code) >= size
                            for number in self.by_start.get(code[:size], ())} - seen)[:per_level]
            seen.update(level)
            found += [_shortfall(self.profiles[number], notice_row, shared=size) for number in level]
            if len(found) >= limit:
                break
        found.sort(key=lambda item: (-item["shared"], item["faults"], item["name"]))
        return found[:limit]


def _shortfall(profile: dict[str, Any], notice_row: dict[str, Any], *, shared: int) -> dict[str, Any]:
    short = []
    regions = profile["regions"]
    if regions and notice_row["nuts"] and not any(code.startswith(region) or region.startswith(code)
                                                  for code in notice_row["nuts"] for region in regions):
        short.append(f"uden for deres områder ({', '.join(regions)})")
    smallest = min(notice_row["lot_values"], default=None)
    if smallest is not None and profile.get("max_value") and smallest > profile["max_value"]:
        short.append(f"mindste delkontrakt er over deres grænse på {format_amount(profile['max_value'])}")
    if not short:
        short.append("ingen af deres søgeord i titel eller beskrivelse")
    return {"id": profile["id"], "name": profile["name"], "shared": shared, "why": "; ".join(short),
            "faults": len(short)}


_near_miss_cache: dict[str, tuple[tuple[int, str], NearMissIndex]] = {}
_near_miss_lock = threading.Lock()


def near_miss_index(store: Any) -> NearMissIndex:
    """The index of the store's profiles, kept until a match run saves them again."""
    version = store.console_profiles_version()
    with _near_miss_lock:
        cached = _near_miss_cache.get(store.path)
        if cached is None or cached[0] != version:
            cached = _near_miss_cache[store.path] = (version, NearMissIndex(store.console_profiles_for_near_misses()))
        return cached[1]
