"""Shared helpers for the matcher tests: real notices parsed from their files, profiles.

Notices come from the repo's own real notices (``sample/notices`` and ``tests/data/corpus``,
always present). Every loader returns a deep copy, so a test may change a record ("the same
notice, but ...") without affecting other tests.
"""

from __future__ import annotations

import copy
import importlib.util
from dataclasses import replace
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from tendermatch.crawler.parsers import ParseError, parse_document
from tendermatch.crawler.parsers.html import parse_listing
from tendermatch.matcher.profiles import Profile, parse_profile
from tendermatch.worker.profiles import load_profiles
from tests.conftest import ROOT, SAMPLE, real_notice

PROFILES_DIR = ROOT / "config" / "profiles"
WEB = ROOT / "tests" / "fixtures" / "web"


@cache
def _parsed(path: Path) -> tuple[dict[str, Any], ...]:
    return tuple(notice.record for notice in parse_document(path.read_bytes(), url=path.as_uri()))


def records_of(path: Path) -> list[dict[str, Any]]:
    """Every record of one notice file (a copy)."""
    return copy.deepcopy(list(_parsed(path.resolve())))


def sample(relative: str, notice_id: str | None = None) -> dict[str, Any]:
    """One record of a file under sample/notices (the only one, or the one with ``notice_id``)."""
    found = records_of(SAMPLE / relative)
    if notice_id is None:
        assert len(found) == 1, relative
        return found[0]
    return next(record for record in found if record["id"] == notice_id)


def real_record(relative: str) -> dict[str, Any]:
    """The (first) record of a real notice by its path in the shared corpus, from the repo's copy."""
    return records_of(real_notice(relative))[0]


def folder_records(folder: Path, pattern: str = "*") -> list[dict[str, Any]]:
    """Every record of every parseable file in a folder (files that are not notices are skipped)."""
    found: list[dict[str, Any]] = []
    for path in sorted(folder.rglob(pattern)):
        if path.is_file() and path.suffix in (".xml", ".json", ".jsonl"):
            try:
                found.extend(records_of(path))
            except ParseError:
                continue
    return found


@lru_cache(maxsize=1)
def _web_selectors():
    spec = importlib.util.spec_from_file_location("web_fixture_selectors", WEB / "selectors.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def agreement(title: str) -> dict[str, Any]:
    """One supplier agreement of the (invented) Københavns Kommune agreements page fixture."""
    page = (WEB / "kk_leverandoraftaler.html").read_bytes()
    notices = parse_listing(page, url="https://www.kk.dk/aftaler/", selectors=_web_selectors().KK_AFTALER,
                            notice_kind="agreement")
    return copy.deepcopy(next(notice.record for notice in notices if notice.record["title"] == title))


# Real notices used throughout (ids as `tendermatch ingest` stores them).
KANTINE = "ted-dk/095237-2016.xml"  # ted:095237-2016, 2 lots (30 M / 7.5 M DKK), CPV 55512000, DK011
MADSERVICE_RODOVRE = "ted-dk/433955-2016.xml"  # ted:433955-2016, planning, 55521200, DK012, no value
MADSERVICE_SOLROD = "ted-dk/044742-2022.xml"  # ted:044742-2022, "Madservice", DK021, 7.2 M DKK
LUFTHAVN = "ted-dk/180710-2017.xml"  # ted:180710-2017, kantinedriften i Københavns Lufthavne: result, cancelled
FREDERICIA = "ted-dk/436913-2017.xml"  # ted:436913-2017, beskæftigelsesindsats, 3 lots reserved res-ws, DK032
LIMPIEZA = "eforms/262891-2023.xml"  # eforms:00262891-2023, building cleaning, lots 3+4 reserved res-ws, no NUTS
WALES = "ocds/wales_sell2wales_2025_first20.jsonl"
# The few the command tests ingest into a store of their own (tests/worker/test_match_cli.py,
# tests/reliability/test_isolation_profiles.py).
CLI_NOTICES = (KANTINE,  # kantinedrift, DK011, deadline 2016-04-06
               MADSERVICE_RODOVRE,  # madservice Rødovre, DK012, planning
               MADSERVICE_SOLROD,  # madservice Solrød, DK021: outside the profile's regions
               LUFTHAVN,  # kantinedrift Københavns Lufthavne: cancelled result
               LIMPIEZA)  # building cleaning, reserved lots


def make_profile(**fields: Any) -> Profile:
    """A valid profile with the given keys (id, name and emails filled in)."""
    data = {"id": "test", "name": "Test", "emails": ["udbud@test.example"], **fields}
    return parse_profile(data)


@lru_cache(maxsize=1)
def _sample_profiles() -> tuple[Profile, ...]:
    found = load_profiles(PROFILES_DIR)
    assert not found.errors, found.errors
    return tuple(found.profiles)


def sample_profiles() -> list[Profile]:
    return list(_sample_profiles())


def sample_profile(profile_id: str, **changes: Any) -> Profile:
    """A sample profile from config/profiles, optionally with fields replaced."""
    profile = next(profile for profile in _sample_profiles() if profile.id == profile_id)
    return replace(profile, **changes) if changes else profile


def reasons_text(match) -> str:
    return "\n".join(match.reasons)
