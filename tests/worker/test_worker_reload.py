"""Reloading the config of a running `tendermatch run` without a restart, in real processes
with real signals: SIGHUP, the file watch, refused configs and profiles, half-written files."""

from __future__ import annotations

import re
import shutil
import signal
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.crawler.servers import StaticSite
from tests.worker.worker_process import (
    WEB,
    RunningWorker,
    feed_source,
    job_table,
    probe_config,
    runs,
    status,
    write_worker_config,
)

pytestmark = pytest.mark.slow

WORKER_LOG = r"tendermatch\.worker: "
SIGHUP_ONLY = "watch = 0\nstop_grace = 2\n"
WATCHED = "watch = 0.5\nstop_grace = 2\n"
ZONE = "Europe/Copenhagen"  # the default [worker] timezone


@pytest.fixture
def start_worker():
    """Starts workers; every one is stopped (or killed) at the end of the test."""
    started: list[RunningWorker] = []

    def start(config: Path) -> RunningWorker:
        worker = RunningWorker(config)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        try:
            worker.stop(timeout=30)
        except Exception:
            worker.kill()


def feed(site: StaticSite) -> str:
    return site.url + "/udbud_feed.xml"


def atom(site: StaticSite) -> str:
    return site.url + "/udbud_atom.xml"


def worker_lines(worker: RunningWorker, pattern: str) -> list[str]:
    """The worker's own log lines (not its crawl children's) matching ``pattern``."""
    return [line for line in worker.log().splitlines() if re.search(WORKER_LOG + pattern, line)]


def wait_worker(worker: RunningWorker, pattern: str, *, count: int = 1, timeout: float = 45) -> list[str]:
    return worker.wait_for(WORKER_LOG + pattern, count=count, timeout=timeout)


def crawls_started(worker: RunningWorker, name: str) -> int:
    return len(worker_lines(worker, rf"crawl:{name} started"))


def wait_crawls_idle(worker: RunningWorker, *names: str, timeout: float = 60) -> None:
    """Wait until every crawl of ``names`` that started has also ended."""
    deadline = time.monotonic() + timeout
    while True:
        busy = [name for name in names
                if crawls_started(worker, name) != len(worker_lines(worker, rf"crawl:{name} \w+ in [\d.]+ s"))]
        if not busy:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"crawls of {busy} still running after {timeout} s:\n{worker.log()}")
        time.sleep(0.2)


def next_five_oclock() -> datetime:
    now = datetime.now(ZoneInfo(ZONE))
    today = now.replace(hour=5, minute=0, second=0, microsecond=0)
    if today > now:
        return today
    return (now + timedelta(days=1)).replace(hour=5, minute=0, second=0, microsecond=0)


# -- 1. SIGHUP ---------------------------------------------------------------------------


def test_sighup_applies_added_removed_and_rescheduled_sources(tmp_path, site, start_worker):
    config = write_worker_config(tmp_path, [feed_source("A", feed(site), schedule="*/2 * * * * *"),
                                            feed_source("B", atom(site), schedule="*/3 * * * * *")],
                                 worker=SIGHUP_ONLY)
    worker = start_worker(config)
    wait_worker(worker, r"crawl:A ok in")
    wait_worker(worker, r"crawl:B ok in")
    before = status(config)
    assert job_table(before) == {"crawl:A": "*/2 * * * * *", "crawl:B": "*/3 * * * * *", "digest": "0 0 7 * * 1",
                                 "match": "after each crawl that stored something new"}

    write_worker_config(tmp_path, [feed_source("A", feed(site), schedule="0 0 5 * * *"),
                                   feed_source("C", atom(site), schedule="*/3 * * * * *")], worker=SIGHUP_ONLY)
    # watch = 0: the edit alone changes nothing.
    time.sleep(2.5)
    assert not worker_lines(worker, "reload"), worker.log()
    unchanged = status(config)
    assert job_table(unchanged) == job_table(before)
    assert unchanged["worker"]["config_loaded"] == before["worker"]["config_loaded"]
    assert unchanged["worker"]["reload_error"] is None

    worker.send(signal.SIGHUP)
    [line] = wait_worker(worker, r"reloaded ")
    assert f"reloaded {config.resolve()} (SIGHUP): 3 jobs; added crawl:C, removed crawl:B, rescheduled crawl:A" \
        in line, line
    assert "profiles changed" not in line
    expected_next = next_five_oclock()
    # The new schedule is logged just after the "reloaded" line: wait for it, don't read once.
    schedule_lines = wait_worker(worker, r"crawl:A: schedule '0 0 5 \* \* \*', next ")
    assert schedule_lines[0].endswith(expected_next.isoformat(timespec="seconds")), schedule_lines[0]

    # C was never crawled: it runs at once.
    wait_worker(worker, r"crawl:C ok in")
    assert [run["outcome"] for run in runs(config, "crawl:C")][:1] == ["ok"]

    # A crawl of A or B that was running at the reload may finish; none starts after it.
    wait_crawls_idle(worker, "A", "B")
    a_started, b_started = crawls_started(worker, "A"), crawls_started(worker, "B")
    b_runs = runs(config, "crawl:B")
    time.sleep(5)  # A was due every 2 s and B every 3 s
    assert crawls_started(worker, "A") == a_started, worker.log()
    assert crawls_started(worker, "B") == b_started, worker.log()
    assert runs(config, "crawl:B") == b_runs
    assert all(run["finished"] for run in b_runs)

    after = status(config)
    assert after["worker"]["running"] and after["worker"]["pid"] == worker.pid
    assert after["worker"]["reload_error"] is None
    assert after["worker"]["config_loaded"] > before["worker"]["config_loaded"]
    jobs = {job["id"]: job for job in after["jobs"]}
    assert set(jobs) == {"crawl:A", "crawl:C", "digest", "match"}
    assert jobs["crawl:A"]["schedule"] == "0 0 5 * * *"
    next_run = datetime.fromisoformat(jobs["crawl:A"]["next_run"])
    assert next_run.utcoffset() is not None
    assert next_run == expected_next, (jobs["crawl:A"]["next_run"], expected_next)
    assert jobs["crawl:A"]["timezone"] == ZONE
    assert jobs["crawl:C"]["schedule"] == "*/3 * * * * *" and jobs["crawl:C"]["source"] == "C"
    assert worker.process.poll() is None


# -- 2. Refused configs ------------------------------------------------------------------


def test_a_broken_config_is_refused_and_the_running_one_kept(tmp_path, site, start_worker):
    old = [feed_source("A", feed(site), schedule="*/2 * * * * *")]
    config = write_worker_config(tmp_path, old, worker=WATCHED)
    good_text = config.read_text(encoding="utf-8")
    probe = probe_config(tmp_path / "probe", tmp_path / "store.db", tmp_path / "profiles")
    worker = start_worker(config)
    wait_worker(worker, r"crawl:A ok in")
    running_jobs = job_table(status(config))
    assert set(running_jobs) == {"crawl:A", "digest", "match"}

    broken = [  # edits of the running config, broken on purpose (the first by hand: bad TOML)
        # (a) TOML syntax error: an unterminated string
        ("TOML syntax error", lambda: config.write_text(good_text + '\n[[sources]]\nname = "D\n', encoding="utf-8"),
         [r"TOML syntax error"]),
        # (b) a schedule that is no cron expression
        ("bad cron", lambda: write_worker_config(tmp_path, [feed_source("A", feed(site), schedule="61 * * * *")],
                                                 worker=WATCHED),
         [r"source 'A'", r"schedule", re.escape("'61 * * * *'")]),
        # (c) an unknown key (beside a new source, which must not be added)
        ("unknown key", lambda: write_worker_config(tmp_path, [*old, feed_source("D", atom(site), colour="red")],
                                                    worker=WATCHED),
         [r"source 'D'", r"unknown key 'colour'"]),
    ]
    for number, (what, write, problems) in enumerate(broken, 1):
        crawled = len(worker_lines(worker, r"crawl:A ok in"))
        write()
        pattern = r"reload refused \(a file changed\); the running config is kept: .*" + ".*".join(problems)
        [line] = wait_worker(worker, pattern)[-1:]
        assert " ERROR tendermatch.worker: " in line, line
        assert str(config.resolve()) in line, line
        assert len(worker_lines(worker, r"reload refused")) >= number
        # The old job goes on crawling.
        wait_worker(worker, r"crawl:A ok in", count=crawled + 1, timeout=30)
        report = status(probe)
        assert report["worker"]["running"] and report["worker"]["pid"] == worker.pid
        error = report["worker"]["reload_error"]
        assert error and all(re.search(problem, error) for problem in problems), (what, error)
        assert job_table(report) == running_jobs, what
        assert not worker_lines(worker, r"reloaded "), worker.log()
        assert not worker_lines(worker, r"crawl:D started")
    assert worker.process.poll() is None

    # A good config again: applied, and the error is cleared.
    write_worker_config(tmp_path, [*old, feed_source("C", atom(site), schedule="*/3 * * * * *")], worker=WATCHED)
    [line] = wait_worker(worker, r"reloaded .*\(a file changed\): 3 jobs; added crawl:C, removed none,"
                                 r" rescheduled none$")
    wait_worker(worker, r"crawl:C ok in")
    report = status(config)
    assert report["worker"]["reload_error"] is None
    assert job_table(report) == {**running_jobs, "crawl:C": "*/3 * * * * *"}
    assert worker.process.poll() is None


def test_status_with_the_refused_config_file_still_reports_the_running_worker(tmp_path, site, start_worker):
    config = write_worker_config(tmp_path, [feed_source("A", feed(site), schedule="0 0 5 * * *")], worker=WATCHED)
    worker = start_worker(config)
    wait_worker(worker, r"crawl:A: schedule ")
    write_worker_config(tmp_path, [feed_source("A", feed(site), schedule="61 * * * *")], worker=WATCHED)
    wait_worker(worker, r"reload refused .*'61 \* \* \* \*'")
    report = status(config)  # what an operator runs to see why the edit did not take
    assert report["worker"]["running"]
    assert "61 * * * *" in report["worker"]["reload_error"]
    assert "61 * * * *" in report["worker"]["config_error"]  # what is wrong with the file now
    assert [job["id"] for job in report["jobs"]] == ["crawl:A", "digest", "match"]  # the running jobs


# -- 3. Half-written config --------------------------------------------------------------


def test_a_half_written_config_is_refused_until_it_is_complete(tmp_path, site, start_worker):
    old = [feed_source("A", feed(site), schedule="*/2 * * * * *")]
    config = write_worker_config(tmp_path, old, worker=WATCHED)
    # The text the operator is about to save: A rescheduled, C added.
    draft = write_worker_config(tmp_path / "draft", [feed_source("A", feed(site), schedule="*/4 * * * * *"),
                                                     feed_source("C", atom(site), schedule="*/3 * * * * *")],
                                worker=WATCHED)
    full = draft.read_text(encoding="utf-8")
    assert full.count('name = "C"') == 1
    in_string = full.index('url = "', full.index('name = "C"')) + len('url = "') + 5  # inside C's url
    after_name = full.index('name = "C"') + len('name = "C"\n')  # C without its kind and url
    probe = probe_config(tmp_path / "probe", tmp_path / "store.db", tmp_path / "profiles")
    worker = start_worker(config)
    wait_worker(worker, r"crawl:A ok in")
    running_jobs = job_table(status(config))

    for cut, problem in ((in_string, r"TOML syntax error"), (after_name, r"source 'C': missing key 'kind'")):
        config.write_text(full[:cut], encoding="utf-8")
        wait_worker(worker, r"reload refused \(a file changed\); the running config is kept: .*" + problem)
        time.sleep(1)  # more than two watch intervals: nothing else happens with the half file
        assert worker.process.poll() is None, worker.log()
        report = status(probe)
        assert re.search(problem, report["worker"]["reload_error"])
        assert job_table(report) == running_jobs
        assert not worker_lines(worker, r"reloaded ")

    config.write_text(full, encoding="utf-8")
    [line] = wait_worker(worker, r"reloaded ")
    assert "(a file changed): 3 jobs; added crawl:C, removed none, rescheduled crawl:A" in line, line
    wait_worker(worker, r"crawl:C ok in")
    report = status(config)
    assert report["worker"]["reload_error"] is None
    assert job_table(report) == {**running_jobs, "crawl:A": "*/4 * * * * *", "crawl:C": "*/3 * * * * *"}
    assert worker.process.poll() is None
    assert worker.stop() == 0
    assert not worker_lines(worker, r"Traceback|CRITICAL"), worker.log()


# -- 4. Profiles -------------------------------------------------------------------------

NEW_ITEM = """    <item>
      <title>Vinduespudsning på skoler i Roskilde Kommune</title>
      <link>https://udbud.sjaelland.example/udbud/4799</link>
      <guid isPermaLink="true">https://udbud.sjaelland.example/udbud/4799</guid>
      <pubDate>Fri, 20 Nov 2026 09:00:00 +0100</pubDate>
      <dc:creator>Roskilde Kommune</dc:creator>
      <description>Vinduespudsning og hovedrengøring på 14 skoler. Tilbudsfrist: 4. januar 2027 kl. 12:00</description>
    </item>
"""


def test_profile_edits_reload_and_rematch_and_an_invalid_profile_is_refused(tmp_path, start_worker):
    web = tmp_path / "web"
    shutil.copytree(WEB, web)
    own_site = StaticSite(web)
    try:
        config = write_worker_config(tmp_path, [feed_source("A", own_site.url + "/udbud_feed.xml",
                                                            schedule="*/2 * * * * *")], worker=WATCHED)
        profile = tmp_path / "profiles" / "rent-fokus.toml"
        original = profile.read_text(encoding="utf-8")
        worker = start_worker(config)
        # The first crawl stores the feed's notices: one match.
        wait_worker(worker, r"match ok in")
        wait_worker(worker, r"crawl:A ok in", count=2)  # later crawls find nothing new
        assert len(runs(config, "match")) == 1
        assert len(worker_lines(worker, r"match started: 10 profiles")) == 1

        # An edited profile: reloaded, and matched again.
        edited = original.replace('name = "RentFokus"', 'name = "RentFokus ApS"').replace(
            '"vinduespudsning",', '"vinduespudsning", "facaderens",')
        assert edited != original
        profile.write_text(edited, encoding="utf-8")
        [line] = wait_worker(worker, r"reloaded .*; profiles changed")[-1:]
        assert "(a file changed): 2 jobs; added none, removed none, rescheduled none; profiles changed" in line, line
        wait_worker(worker, r"match ok in", count=2)
        assert len(runs(config, "match")) == 2

        # An invalid profile (its required emails removed): refused, the running profiles kept.
        invalid = "\n".join(row for row in edited.splitlines() if not row.startswith("emails")) + "\n"
        profile.write_text(invalid, encoding="utf-8")
        [line] = wait_worker(worker, r"reload refused \(a file changed\); the running config is kept: profile "
                                     r".*rent-fokus\.toml.*emails")[-1:]
        assert " ERROR " in line
        time.sleep(3)  # crawls go on (nothing new) but nothing asks for a match
        assert len(runs(config, "match")) == 2
        assert len(worker_lines(worker, r"match started")) == 2
        report = status(config)
        assert "emails" in report["worker"]["reload_error"] and "rent-fokus.toml" in report["worker"]["reload_error"]
        assert report["worker"]["running"]

        # News from the source: the match still runs with the ten running profiles, rent-fokus among them.
        feed_file = web / "udbud_feed.xml"
        feed_file.write_text(feed_file.read_text(encoding="utf-8").replace("  </channel>", NEW_ITEM + "  </channel>"),
                             encoding="utf-8")
        wait_worker(worker, r"crawl:A ok in .*new 1", timeout=30)
        wait_worker(worker, r"match ok in", count=3)
        assert len(worker_lines(worker, r"match started: 10 profiles")) == 3, worker.log()
        assert len(runs(config, "match")) == 3

        # The profile repaired: reloaded with the profiles changed (the repaired one differs from the running one).
        profile.write_text(original, encoding="utf-8")
        wait_worker(worker, r"reloaded .*; profiles changed", count=2)
        wait_worker(worker, r"match ok in", count=4)
        assert status(config)["worker"]["reload_error"] is None
        assert worker.process.poll() is None
    finally:
        own_site.close()
