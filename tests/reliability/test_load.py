"""Load: a 50,000-notice store and 10,000 profile files, through the real `match`,
`digest --dry-run` and `serve` processes. A tenth of the notices are open, as in a store
that has crawled for a year (a notice is open for bids about five weeks); the benchmark
times the harder case of 15,000 open ones.

The store and profiles are built once by benchmarks/load.py's builder, the same one the
benchmark times. These tests check that every command completes on that scale with the right
result; the time and memory figures against the targets (match <= 60 s, >= 200 digests/s,
the match-log page < 1 s) are measured by `python benchmarks/load.py`, not asserted here (a
shared test machine is too noisy for that). Each command's time is printed (`pytest -s`).
"""

from __future__ import annotations

import json
import re
import sqlite3
from datetime import date

import pytest

from benchmarks.load import MATCH_LOG_PAGE, Serving, build, run_timed
from benchmarks.match import open_notices
from tests.conftest import CORPUS

NOTICES, OPEN, PROFILES = 50_000, 5_000, 10_000

# Built from the corpus's notices; minutes to build, so left out by `pytest -m 'not slow'`
# (`-m load` runs it alone).
pytestmark = [pytest.mark.corpus, pytest.mark.slow, pytest.mark.load]


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """The built store, then `match` run on it once: (config, the match process)."""
    if not CORPUS.is_dir():
        pytest.skip(f"corpus not found at {CORPUS} (set TENDERMATCH_CORPUS)")
    folder = tmp_path_factory.mktemp("load")
    config = build(folder, open_notices(CORPUS), total=NOTICES, open_count=OPEN, profiles=PROFILES,
                   today=date.today())
    # Hang guards only, several times the targets: timing is the benchmark's job.
    match = run_timed(config, "match", timeout=600)
    print(f"\nmatch: {match.seconds:.1f} s, {match.peak_mb:,.0f} MB")
    return config, match


def query(config, sql: str) -> list[tuple]:
    with sqlite3.connect(f"file:{config.parent / 'store.db'}?mode=ro", uri=True) as db:
        return db.execute(sql).fetchall()


def test_match_scores_every_profile_against_the_open_notices_only_and_logs_the_run(loaded):
    config, match = loaded
    assert match.returncode == 0, match.stderr[-2000:]
    assert f"{OPEN} of {NOTICES} notices open on" in match.stdout
    (stats,) = query(config, "SELECT stats FROM runs WHERE job = 'match' AND outcome = 'ok'")[0]
    stats = json.loads(stats)
    assert stats["profiles"] == PROFILES and stats["matched_notices"] == OPEN
    assert stats["skipped"] == {"closed": NOTICES - OPEN}
    # Every match is of an open notice, to a known profile, at most 100 per profile.
    assert query(config, "SELECT count(*) FROM matches AS m JOIN notices AS n ON n.id = m.notice_id"
                         " WHERE substr(n.deadline, 1, 10) < date('now')") == [(0,)]
    matched, biggest = query(config, "SELECT count(DISTINCT profile_id), max(c) FROM"
                                     " (SELECT profile_id, count(*) AS c FROM matches GROUP BY profile_id)")[0]
    # A third at least: a code alone no longer sends a notice to a profile with keywords,
    # and a foreign notice never reaches a region-limited one (issue 16), so fewer match
    assert PROFILES * 0.3 < matched <= PROFILES and biggest <= 100
    assert query(config, "SELECT count(*) FROM profiles") == [(PROFILES,)]


def test_digest_dry_run_plans_one_digest_per_matched_enterprise_and_records_nothing(loaded):
    config, _ = loaded
    digest = run_timed(config, "digest", "--dry-run", timeout=600)
    print(f"\ndigest --dry-run: {digest.seconds:.1f} s, {digest.peak_mb:,.0f} MB")
    assert digest.returncode == 0, digest.stderr[-2000:]
    planned = int(re.search(r"dry run: (\d+) digests", digest.stdout).group(1))
    # Each generated profile has one address: one digest per profile with a match.
    assert planned == query(config, "SELECT count(DISTINCT profile_id) FROM matches")[0][0]
    assert query(config, "SELECT count(*) FROM deliveries") == [(0,)]
    assert not (config.parent / "outbox").exists() or not any((config.parent / "outbox").iterdir())


def test_serve_answers_the_match_log_page_with_the_first_enterprises_in_order(loaded):
    config, _ = loaded
    with Serving(config) as serving:
        seconds, status, body = serving.get(MATCH_LOG_PAGE)
        print(f"\nmatch-log page: {seconds:.2f} s first request")
        assert status == 200 and b"Matches this week, by enterprise" in body
        _, status, raw = serving.get(MATCH_LOG_PAGE.replace("match_log?", "match_log.json?") + "&_shape=objects")
    page = json.loads(raw)
    rows = page["rows"]
    assert status == 200 and len(rows) == 1000 and page["truncated"]
    expected = query(config, "SELECT profile_id, rank FROM matches ORDER BY profile_id, rank LIMIT 1000")
    assert [(row["enterprise_id"], row["rank"]) for row in rows] == expected
    assert all(row["enterprise"] and row["title"] and row["reasons"] for row in rows)
