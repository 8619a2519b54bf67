"""`tendermatch run` as a real process under real signals: the store lock, a crawl child
stopped at its source's timeout (even one that cannot handle SIGTERM), a graceful stop
on SIGTERM/SIGINT with a crawl in flight, and the refusal to start without
$TENDERMATCH_SECRET (a crawl child killed by the OS: tests/reliability/test_faults.py).
No mocks: real workers, real crawl children, local HTTP servers."""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT, run_cli
from tests.worker.worker_process import (
    FEED,
    ONCE,
    STOP_GRACE,
    WORKER_ENV,
    WORKER_SETTINGS,
    SlowSite,
    alive,
    crawl_child_of,
    feed_source,
    finished_runs,
    log_lines,
    remember,
    runs,
    status,
    wait_until,
    write_worker_config,
)

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; Linux signals")]

SLACK = 10  # seconds of slack for a loaded 2-core machine


# -- 1. one worker per store ----------------------------------------------------------------------


def test_a_second_worker_on_the_same_store_is_refused_and_the_first_goes_on(tmp_path, site, spawn):
    folder_a, folder_b = tmp_path / "a", tmp_path / "b"
    folder_a.mkdir()
    folder_b.mkdir()
    url = site.url + FEED
    config_a = write_worker_config(folder_a, [feed_source("feed", url, schedule="*/2 * * * * *")],
                                   worker=WORKER_SETTINGS)
    config_b = write_worker_config(folder_b, [feed_source("feed", url, schedule="*/2 * * * * *")],
                                   worker=WORKER_SETTINGS)
    first = spawn(config_a)
    first.wait_for(r"crawl:feed ok in", timeout=60)

    second = run_cli("--config", str(config_a), "run", env=WORKER_ENV, timeout=60)
    assert second.returncode == 2, second.stdout + second.stderr
    message = second.stderr.strip()
    assert len(message.splitlines()) == 1, message
    assert f"another worker (pid {first.pid}) is already running on this store; stop it first" in message
    assert message.startswith("Error: ") and "store.db" in message

    # The first worker is untouched: still running, still holding the store, still crawling.
    assert first.process.poll() is None
    worker_state = status(config_a)["worker"]
    assert worker_state["running"] is True and worker_state["pid"] == first.pid
    oks = len(log_lines(first, r"crawl:feed ok in"))
    first.wait_for(r"crawl:feed ok in", count=oks + 1, timeout=30)
    assert {run["pid"] for run in runs(config_a)} == {first.pid}  # the refused one recorded nothing

    # A worker on another store runs beside it.
    other = spawn(config_b)
    other.wait_for(r"crawl:feed ok in", timeout=60)
    assert first.process.poll() is None and other.process.poll() is None
    assert status(config_b)["worker"]["pid"] == other.pid

    # Once the first stops, the store is free for a new worker.
    assert first.stop(timeout=30) == 0
    assert status(config_a)["worker"]["running"] is False
    third = spawn(config_a)
    third.wait_for(rf"worker started \(pid {third.pid}\)", timeout=30)
    done = len(finished_runs(config_a, "crawl:feed"))
    wait_until(lambda: len(finished_runs(config_a, "crawl:feed")) > done, timeout=30,
               what="the new worker's first crawl")
    newest = finished_runs(config_a, "crawl:feed")[-1]
    assert newest["pid"] == third.pid and newest["outcome"] == "ok"
    assert status(config_a)["worker"]["pid"] == third.pid
    assert third.stop(timeout=30) == 0
    assert other.stop(timeout=30) == 0


# -- 2. a hanging crawl is stopped at its timeout -------------------------------------------------


# Long enough for a crawl child to start and ask the slow server on a loaded machine (four test
# processes share two cores): at 3 s a child still importing Scrapy was stopped before it asked
# anything, and at 8 s the healthy source's first crawl, which must end during the hang, once
# had not (a crawl child took 7 s beside the load test). The wait costs no CPU.
STUCK_TIMEOUT = 15


def test_a_hanging_crawl_is_killed_at_its_timeout_and_the_other_source_goes_on(tmp_path, site, slow_site, spawn):
    config = write_worker_config(tmp_path, [
        feed_source("stuck", slow_site.url + FEED, schedule=ONCE, timeout=STUCK_TIMEOUT),
        feed_source("feed", site.url + FEED, schedule="*/2 * * * * *"),
    ], worker=WORKER_SETTINGS)
    worker = spawn(config)
    child = remember(spawn, crawl_child_of(worker, slow_site))
    ended = worker.wait_for(r"crawl:stuck (failed|partial) in", timeout=STUCK_TIMEOUT + STOP_GRACE + SLACK + 10)

    [run] = runs(config, "crawl:stuck")
    assert run["outcome"] in ("failed", "partial"), run
    assert f"stopped at the source's timeout ({STUCK_TIMEOUT} s)" in run["error"], run
    assert run["seconds"] <= STUCK_TIMEOUT + STOP_GRACE + SLACK, run
    assert f"stopped at the source's timeout ({STUCK_TIMEOUT} s)" in ended[0]
    wait_until(lambda: not alive(child), timeout=5, what=f"the stuck crawl child {child} to be gone")
    assert child not in worker.children()

    # The worker lived through it, and the healthy source was crawled during the hang and after.
    assert worker.process.poll() is None
    lines = worker.log().splitlines()
    end_at = next(i for i, line in enumerate(lines) if re.search(r"crawl:stuck (failed|partial) in", line))
    during = [line for line in lines[:end_at] if "crawl:feed ok in" in line]
    assert len(during) >= 1, "\n".join(lines)
    worker.wait_for(r"crawl:feed ok in", count=len(log_lines(worker, r"crawl:feed ok in")) + 1, timeout=30)
    feed_runs = finished_runs(config, "crawl:feed")
    assert feed_runs and all(r["outcome"] == "ok" for r in feed_runs), feed_runs
    assert worker.stop(timeout=STOP_GRACE + 30) == 0


def test_a_crawl_child_that_cannot_handle_sigterm_is_killed_after_the_grace(tmp_path, slow_site, spawn):
    config = write_worker_config(
        tmp_path, [feed_source("stuck", slow_site.url + FEED, schedule=ONCE, timeout=STUCK_TIMEOUT)],
        worker=WORKER_SETTINGS)
    worker = spawn(config)
    child = remember(spawn, crawl_child_of(worker, slow_site))
    os.kill(child, signal.SIGSTOP)
    worker.wait_for(r"crawl:stuck failed in", timeout=STUCK_TIMEOUT + STOP_GRACE + SLACK + 10)

    [run] = runs(config, "crawl:stuck")
    assert run["outcome"] == "failed", run
    assert run["error"].startswith(f"stopped at the source's timeout ({STUCK_TIMEOUT} s)"), run
    assert run["seconds"] <= STUCK_TIMEOUT + STOP_GRACE + SLACK, run
    wait_until(lambda: not alive(child), timeout=5, what=f"the stopped crawl child {child} to be killed")
    assert child not in worker.children()
    assert worker.process.poll() is None
    assert worker.stop(timeout=STOP_GRACE + 30) == 0


# -- 4. a graceful stop with a crawl in flight -----------------------------------------------------


@pytest.mark.parametrize("sig, frozen", [(signal.SIGTERM, False), (signal.SIGINT, False), (signal.SIGTERM, True)],
                         ids=["SIGTERM", "SIGINT", "SIGTERM-child-SIGSTOPped"])
def test_a_stop_signal_with_a_crawl_in_flight_exits_0_and_records_it_interrupted(tmp_path, slow_site, spawn, sig,
                                                                                  frozen):
    slow_site.delay = 30
    config = write_worker_config(tmp_path, [
        feed_source("slow", slow_site.url + FEED, schedule="*/3 * * * * *", timeout=60)], worker=WORKER_SETTINGS)
    worker = spawn(config)
    child = remember(spawn, crawl_child_of(worker, slow_site))
    assert status(config)["worker"]["running"] is True
    if frozen:  # it cannot even handle the SIGTERM: the worker must SIGKILL it after stop_grace
        os.kill(child, signal.SIGSTOP)

    began = time.monotonic()
    worker.send(sig)
    try:
        code = worker.process.wait(timeout=STOP_GRACE + SLACK)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the worker did not exit within {STOP_GRACE + SLACK} s of {sig.name}:\n{worker.log()}")
    took = time.monotonic() - began
    assert code == 0, worker.log()
    assert took <= STOP_GRACE + SLACK

    log = worker.log()
    assert re.search(rf"stopping \({sig.name}\): no new jobs; waiting up to {STOP_GRACE} s for crawl:slow", log), log
    assert re.search(r"INFO tendermatch\.worker: worker stopped$", log, re.MULTILINE), log
    assert "abandoned" not in log  # the crawl ended within the grace: nothing was left behind
    wait_until(lambda: not alive(child), timeout=5, what=f"the crawl child {child} to be gone")
    [run] = runs(config, "crawl:slow")
    assert run["outcome"] == "interrupted", run
    assert run["finished"] is not None
    assert status(config)["worker"]["running"] is False
    assert status(config)["worker"]["pid"] is None


# -- 5. no secret, no worker -----------------------------------------------------------------------


@pytest.mark.parametrize("secret", [None, "", "fifteen-chars-x"], ids=["unset", "empty", "too-short"])
def test_run_without_a_usable_secret_refuses_to_start(tmp_path, site, secret):
    config = write_worker_config(tmp_path, [feed_source("feed", site.url + FEED, schedule="*/2 * * * * *")],
                                 worker=WORKER_SETTINGS)
    env = {key: value for key, value in os.environ.items() if key not in ("TENDERMATCH_CONFIG", "TENDERMATCH_SECRET")}
    if secret is not None:
        env["TENDERMATCH_SECRET"] = secret
    try:
        result = subprocess.run([sys.executable, "-m", "tendermatch", "--config", str(config), "run"], cwd=ROOT,
                                env=env, capture_output=True, text=True, timeout=60, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail("`tendermatch run` without a usable secret started instead of refusing")
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "TENDERMATCH_SECRET" in lines[0], result.stderr
    if secret:
        assert secret not in result.stderr
    assert "worker started" not in result.stdout + result.stderr

    # Nothing started: no lock holder, no runs, no request to the site.
    assert not (tmp_path / "store.db.worker.lock").exists()
    assert site.server.hits == []
    if (tmp_path / "store.db").exists():
        assert runs(config) == []
    listed = json.loads(run_cli("--config", str(config), "status", "--format", "json", env=WORKER_ENV,
                                check=True).stdout)
    assert listed["worker"]["running"] is False and listed["worker"]["pid"] is None


# -- a crawl slower than its schedule --------------------------------------------------------


def test_a_crawl_slower_than_its_schedule_never_runs_twice_at_once(tmp_path, spawn):
    slow = SlowSite(delay=3)  # each crawl takes over 3 s; it is due every second
    try:
        config = write_worker_config(tmp_path, [feed_source("slow", slow.url + FEED, schedule="* * * * * *")])
        worker = spawn(config)
        worker.wait_for(r"crawl:slow ok in", count=2, timeout=60)
        assert worker.stop() == 0
    finally:
        slow.close()
    crawls = [run for run in runs(config, "crawl:slow") if run["outcome"] == "ok"]
    assert len(crawls) >= 2
    for earlier, later in itertools.pairwise(crawls):
        assert later["started"] >= earlier["finished"], (earlier, later)  # one at a time (max_instances = 1)
    # Missed seconds are coalesced into the next run, not queued: no burst of catch-up crawls.
    assert slow.feed_requests() <= len(runs(config, "crawl:slow")) + 1
