"""Differential test of the engine: matching many notices against many profiles in one
``NoticeTable`` must give, for every (profile, notice), exactly what scoring that notice on
its own gives; ranks are 1..n per profile, best first."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import replace
from datetime import date

import pytest

from tendermatch.matcher import rules
from tendermatch.matcher.engine import Match, match_notices, match_profiles, score_notice
from tendermatch.matcher.table import NoticeTable
from tests.conftest import CORPUS, SAMPLE, SMALL_CORPUS
from tests.matcher.helpers import folder_records, sample_profiles

DANISH = "ted_r209/op-ted_ted-rdf-mapping/dk"  # Danish TED notices
CORPUS_FOLDERS = (
    DANISH,
    "eforms_sdk/examples/notices",  # eForms: reserved lots, social objectives, every stage
    "ted_r209/op-ted_ted-rdf-mapping/contract_notices_all_countries",  # many languages, lots, currencies
)


def unique(records: list[dict]) -> list[dict]:
    """One record per id (the store keeps one; the repo's notices are also in the corpus)."""
    seen: dict[str, dict] = {}
    for record in records:
        seen.setdefault(record["id"], record)
    return list(seen.values())


@pytest.fixture(scope="module")
def records() -> list[dict]:
    # the repo's real notices always (enough for every assertion below), the corpus's when it is there
    found = folder_records(SAMPLE) + folder_records(SMALL_CORPUS)
    for folder in CORPUS_FOLDERS:
        if (CORPUS / folder).is_dir():
            found += folder_records(CORPUS / folder)
    return unique(found)


@pytest.fixture(scope="module")
def profiles():
    # regions cleared: the corpus is European, and more matches test more
    return [replace(profile, regions=()) for profile in sample_profiles()]


def shown(reasons: list[str]) -> list[str]:
    """Reasons without the matched token shown in ' (as "...")': which of several equally
    good tokens is shown may depend on the other notices in the table."""
    return [re.sub(r' \(as "[^"]*"\)', "", reason) for reason in reasons]


def key(match: Match | None):
    if match is None:
        return None
    return (match.score, match.lot_id, match.kind, match.expires, match.deadline, shown(match.reasons))


def check_ranks(matches: list[Match]) -> None:
    by_profile: dict[str, list[Match]] = defaultdict(list)
    for match in matches:
        by_profile[match.profile_id].append(match)
    for profile_id, mine in by_profile.items():
        assert [match.rank for match in mine] == list(range(1, len(mine) + 1)), profile_id
        scores = [match.score for match in mine]
        assert scores == sorted(scores, reverse=True), profile_id
        assert len({match.notice_id for match in mine}) == len(mine), f"{profile_id}: a notice sent twice"
        assert all(1 <= score <= 100 for score in scores)


@pytest.mark.slow  # every notice of the sample matched alone: 10-30 s
def test_one_table_gives_the_same_as_each_notice_alone(records, profiles, monkeypatch):
    # How specific a term is depends on the whole store (a word in half of all notices counts
    # less): here every term counts fully, so that a notice alone must score as in the table.
    monkeypatch.setattr(rules, "MIN_SCOPE", 10**9)
    assert len(records) >= 150
    table = match_notices(profiles, records, as_of=None)
    assert len(table) >= 10  # the repo's notices alone give matches to several profiles
    assert len({match.profile_id for match in table}) >= 5
    check_ranks(table)
    in_table = {(match.profile_id, match.notice_id): match for match in table}

    # Every match of the table: score_notice on the notice alone agrees exactly.
    for (profile_id, notice_id), match in in_table.items():
        profile = next(p for p in profiles if p.id == profile_id)
        record = next(r for r in records if r["id"] == notice_id)
        alone = score_notice(profile, record)
        assert key(alone) == key(match), (profile_id, notice_id)
        assert alone.rank == 1

    # Every notice alone, against all profiles: nothing matched that the table did not match.
    # (The repo's and the Danish notices only: each alone costs a table of its own.)
    danish = {record["id"] for record in folder_records(CORPUS / DANISH)} if (CORPUS / DANISH).is_dir() else set()
    sample_ids = {record["id"] for record in folder_records(SAMPLE) + folder_records(SMALL_CORPUS)}
    for record in (record for record in records if record["id"] in sample_ids | danish):
        alone = match_notices(profiles, [record], as_of=None)
        check_ranks(alone)
        for match in alone:
            assert key(in_table.get((match.profile_id, match.notice_id))) == key(match), (
                match.profile_id, match.notice_id)
        assert ({profile_id for profile_id, notice_id in in_table if notice_id == record["id"]}
                == {match.profile_id for match in alone}), record["id"]


@pytest.mark.slow  # forks two scoring processes over the sample: about 10 s
def test_two_worker_processes_give_the_same_matches_in_the_same_order_as_one(records, profiles):
    # 240 profiles (forked workers score 200 or more): the samples, each also with its
    # keywords and codes cut down in turn, so the workers' slices (similar profiles
    # together) are not the profiles' own order.
    many = []
    for turn in range(24):
        for profile in profiles:
            keep = slice(turn % 3, None)
            many.append(replace(profile, id=f"{turn:02d}-{profile.id}", keywords=profile.keywords[keep],
                                cpv=profile.cpv[keep] if turn % 2 else profile.cpv))
    many.reverse()
    table = NoticeTable.build(records, as_of=None)
    one, found_one = match_profiles(table, many, keep=20, workers=1)
    two, found_two = match_profiles(NoticeTable.build(records, as_of=None), many, keep=20, workers=2)
    assert len({match.profile_id for match in one}) >= 100
    assert found_two == found_one
    assert [match.as_row() for match in two] == [match.as_row() for match in one]


def test_single_pairs_with_score_notice_on_the_sample(profiles):
    # the plain loop itself, on the bundled Danish TED sample: every pair, one notice at a time
    sample_records = unique(folder_records(SAMPLE / "ted-dk"))
    table = {(match.profile_id, match.notice_id): match
             for match in match_notices(profiles, sample_records, as_of=date(2016, 1, 1))}
    for record in sample_records:
        for profile in profiles:
            alone = score_notice(profile, record, as_of=date(2016, 1, 1))
            assert key(alone) == key(table.get((profile.id, record["id"]))), (profile.id, record["id"])


def test_the_table_skips_closed_notices_and_says_why(records):
    table = NoticeTable.build(records, as_of=date(2020, 1, 1))
    assert len(table.records) + len(table.skipped) == len(records)
    reasons = set(table.skipped.values())
    assert any(reason.startswith("stage result") for reason in reasons)
    assert any(reason.startswith("deadline passed") for reason in reasons)
    assert any(reason.startswith("status ") for reason in reasons)
    assert table.size == sum(len(record["lots"]) for record in table.records)


def test_an_empty_table_and_a_profile_that_matches_nothing():
    assert match_notices(sample_profiles(), [], as_of=None) == []
    assert NoticeTable.build([], as_of=None).size == 0
    nothing = [replace(sample_profiles()[0], keywords=("zzzqqxx",), cpv=("03111000",), description="")]
    assert match_notices(nothing, folder_records(SAMPLE / "ted-dk"), as_of=None) == []
