"""The match log: ``match_store`` writes one row per (profile, notice), re-runs replace rather
than duplicate, a run for some profiles leaves the others' rows alone, ``match_log`` filters."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from tendermatch.matcher.run import match_store
from tendermatch.store import Store
from tests.conftest import SAMPLE
from tests.matcher.helpers import (
    LIMPIEZA,
    agreement,
    folder_records,
    sample,
    sample_profile,
)

AS_OF = date(2016, 1, 1)
FIELDS = ("profile_id", "notice_id", "lot_id", "score", "rank", "reasons", "facts", "kind", "deadline", "expires")


def fill(store: Store, records: list[dict]) -> None:
    for record in records:
        store.put_notice(record, keys=[], source="test", source_url=None, raw_id=None, change="new", fields=[])


@pytest.fixture
def store():
    store = Store.memory()
    records = [*folder_records(SAMPLE / "ted-dk"), sample(LIMPIEZA), agreement("Mødeforplejning og catering")]
    fill(store, records)
    yield store
    store.close()


@pytest.fixture
def profiles():
    return [sample_profile("maaltidsvaerkstedet"), sample_profile("rent-fokus", regions=()),
            sample_profile("broen-til-job", regions=())]


def rows(store: Store, **filters) -> list[tuple]:
    return [tuple(row[field] for field in FIELDS) for row in store.match_log(**filters)]


def test_match_store_writes_one_row_per_match_and_records_the_run(store, profiles):
    run = match_store(store, profiles, as_of=AS_OF)
    assert run.matches
    log = store.match_log()
    assert len(log) == len(run.matches) == run.stats["matches"]
    assert {(row["profile_id"], row["notice_id"]) for row in log} == {(m.profile_id, m.notice_id) for m in run.matches}
    for row in log:
        assert isinstance(row["reasons"], list) and row["reasons"] and all(isinstance(r, str) for r in row["reasons"])
        assert isinstance(row["facts"], dict) and "lot" in row["facts"]
        assert 1 <= row["score"] <= 100 and row["rank"] >= 1
        assert row["run_id"] == run.run_id
        assert row["matched_at"]
    ids = {row["notice_id"] for row in store.match_log(profile_id="maaltidsvaerkstedet")}
    assert {"ted:095237-2016", "ted:433955-2016"} <= ids  # canteen (DK011) and madservice (DK012)
    assert "ted:044742-2022" not in ids  # Solrød, DK021: outside the profile's regions
    assert "ted:180710-2017" not in ids  # cancelled result
    agreement_row = next(row for row in store.match_log(profile_id="maaltidsvaerkstedet") if row["kind"] == "agreement")
    assert agreement_row["expires"] == "2028-03-01"
    assert run.stats["as_of"] == "2016-01-01" and run.stats["notices"] == len(list(store.notices()))
    assert run.stats["skipped"]  # results, cancelled notices ...
    finished = next(r for r in store.runs() if r["id"] == run.run_id)
    assert finished["job"] == "match" and finished["outcome"] == "ok"


def test_each_profile_is_ranked_one_to_n_best_first(store, profiles):
    match_store(store, profiles, as_of=AS_OF)
    for profile in profiles:
        mine = store.match_log(profile_id=profile.id)
        assert [row["rank"] for row in mine] == list(range(1, len(mine) + 1))
        assert [row["score"] for row in mine] == sorted((row["score"] for row in mine), reverse=True)


def test_running_twice_gives_the_same_rows_and_no_duplicates(store, profiles):
    first = match_store(store, profiles, as_of=AS_OF)
    before = rows(store)
    second = match_store(store, profiles, as_of=AS_OF)
    after = rows(store)
    assert after == before
    assert len(after) == len({(row[0], row[1]) for row in after})
    assert {row["run_id"] for row in store.match_log()} == {second.run_id} != {first.run_id}


def test_a_run_for_one_profile_replaces_only_that_profiles_rows(store, profiles):
    first = match_store(store, profiles, as_of=AS_OF)
    others_before = [row for row in store.match_log() if row["profile_id"] != "maaltidsvaerkstedet"]
    assert others_before  # rent-fokus and broen-til-job have matches too
    # the enterprise narrows its profile to canteens only (its trade's other concepts, such
    # as meals on wheels, still count for "kantinedrift" unless it excludes them)
    narrowed = replace(profiles[0], keywords=("kantinedrift",), exclude=("madservice",), cpv=("55512000",),
                       description="")
    second = match_store(store, [narrowed], as_of=AS_OF)
    mine = store.match_log(profile_id="maaltidsvaerkstedet")
    assert {row["notice_id"] for row in mine} == {m.notice_id for m in second.matches}
    assert "ted:433955-2016" not in {row["notice_id"] for row in mine}  # madservice: no longer wanted
    assert "ted:095237-2016" in {row["notice_id"] for row in mine}
    assert all(row["run_id"] == second.run_id for row in mine)
    others_after = [row for row in store.match_log() if row["profile_id"] != "maaltidsvaerkstedet"]
    assert others_after == others_before
    assert all(row["run_id"] == first.run_id for row in others_after)


def test_a_profile_that_no_longer_matches_anything_loses_its_rows(store, profiles):
    match_store(store, profiles, as_of=AS_OF)
    assert store.match_log(profile_id="rent-fokus")
    gone = replace(profiles[1], keywords=("snerydning",), cpv=("90620000",), description="")
    match_store(store, [gone], as_of=AS_OF)
    assert store.match_log(profile_id="rent-fokus") == []
    assert store.match_log(profile_id="maaltidsvaerkstedet")


def test_match_log_filters_by_profile_notice_and_since(store, profiles):
    match_store(store, profiles, as_of=AS_OF)
    everything = store.match_log()
    assert {row["profile_id"] for row in everything} >= {"maaltidsvaerkstedet", "rent-fokus"}
    mine = store.match_log(profile_id="rent-fokus")
    assert mine and all(row["profile_id"] == "rent-fokus" for row in mine)
    canteen = store.match_log(notice_id="ted:095237-2016")
    assert [row["profile_id"] for row in canteen] == ["maaltidsvaerkstedet"]
    assert canteen[0]["lot_id"] == "2"
    assert store.match_log(profile_id="rent-fokus", notice_id="ted:095237-2016") == []
    assert store.match_log(notice_id="ted:000000-2016") == []
    today = datetime.now(UTC).date()
    assert len(store.match_log(since=(today - timedelta(days=1)).isoformat())) == len(everything)
    assert store.match_log(since=(today + timedelta(days=2)).isoformat()) == []
    assert len(store.match_log(limit=2)) == 2


def test_since_compares_the_day_a_row_was_matched(store):
    store.replace_matches(profile_ids=["p"], rows=[
        {"profile_id": "p", "notice_id": "a", "lot_id": "1", "score": 50, "rank": 1, "reasons": ["x"],
         "matched_at": "2026-01-10T08:00:00+00:00"},
        {"profile_id": "p", "notice_id": "b", "lot_id": "1", "score": 40, "rank": 2, "reasons": ["y"],
         "matched_at": "2026-01-12T23:59:00+00:00"},
    ])
    assert [row["notice_id"] for row in store.match_log(since="2026-01-10")] == ["a", "b"]
    assert [row["notice_id"] for row in store.match_log(since="2026-01-11")] == ["b"]
    assert [row["notice_id"] for row in store.match_log(since="2026-01-12")] == ["b"]
    assert store.match_log(since="2026-01-13") == []


@pytest.mark.parametrize("day", [date(2015, 6, 1), AS_OF, date(2017, 3, 1), date(2030, 1, 1)])
def test_the_stores_open_on_filter_drops_only_notices_the_rules_would_skip_for_their_date_or_status(store, day):
    # The matcher reads `notices(open_on=day)`; a notice the filter drops must be one the
    # rules skip anyway (closed status, deadline or end date before the day), and no other.
    from tendermatch.matcher.rules import skip_reason

    every = list(store.notices())
    read = {record["id"] for record in store.notices(open_on=day.isoformat())}
    expected = {record["id"] for record in every
                if not (skip_reason(record, as_of=day) or "").startswith(("status", "deadline", "agreement"))}
    assert read == expected
    assert len(every) > len(read) > 0 or day == date(2030, 1, 1)


def test_a_match_run_counts_the_closed_notices_it_left_unread(store, profiles):
    run = match_store(store, profiles, as_of=date(2017, 3, 1))
    every = list(store.notices())
    assert run.stats["notices"] == len(every)
    assert run.stats["skipped"]["closed"] == len(every) - len(list(store.notices(open_on="2017-03-01")))
