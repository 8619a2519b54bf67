"""The worker's log: a line when each job starts and ends, with counts; a rotating file
besides stderr; --log-level; and no secret in it."""

from __future__ import annotations

import re
import time

import pytest

from tests.worker.worker_process import SECRET, RunningWorker, feed_source, write_worker_config

pytestmark = pytest.mark.slow

PASSWORD = "smtp-password-never-logged-42"


def test_job_lines_go_to_stderr_and_a_rotating_file_without_secrets(tmp_path, site):
    config = write_worker_config(
        tmp_path, [feed_source("feed", f"{site.url}/udbud_feed.xml", schedule="* * * * * *")],
        worker='watch = 0.5\nstop_grace = 2\nlog_file = "logs/tendermatch.log"\nlog_max_mb = 0.01\nlog_backups = 2\n',
        extra='[smtp]\nhost = "127.0.0.1"\nport = 2525\n'
              'username_env = "TM_TEST_USER"\npassword_env = "TM_TEST_PASSWORD"\n')
    worker = RunningWorker(config, env={"TM_TEST_USER": "udbud", "TM_TEST_PASSWORD": PASSWORD})
    try:
        # DEBUG lines fill 10 KB quickly; a crawl takes 7 s with the load test beside it
        worker.wait_for(r"crawl:feed ok", count=8, timeout=150)
    finally:
        assert worker.stop() == 0
    stderr = worker.log()
    started = re.search(r"^\S+ \S+ INFO tendermatch.worker: crawl:feed started \(timeout 60 s\)$", stderr, re.M)
    ended = re.search(r"INFO tendermatch.worker: crawl:feed ok in [\d.]+ s: fetched 1, new \d+, updated 0,"
                      r" unchanged \d+, rejected 0, errors 0 \(run \d+\)", stderr)
    assert started and ended
    logs = tmp_path / "logs"
    current = (logs / "tendermatch.log").read_text(encoding="utf-8")
    assert (logs / "tendermatch.log.1").exists()  # rotated at 10 KB
    assert not (logs / "tendermatch.log.3").exists()  # two backups kept
    assert (logs / "tendermatch.log").stat().st_size <= 10 * 1024 + 2048
    assert "worker stopped" in current  # the file has the same lines as stderr
    for text in [stderr] + [file.read_text(encoding="utf-8") for file in logs.iterdir()]:
        assert SECRET not in text and PASSWORD not in text


def test_log_level_warning_leaves_out_the_job_lines(tmp_path, site):
    config = write_worker_config(tmp_path, [feed_source("feed", f"{site.url}/udbud_feed.xml", schedule="* * * * * *")])
    worker = RunningWorker(config, "--log-level", "WARNING")  # the later option wins over the helper's DEBUG
    try:
        deadline = time.monotonic() + 30
        while len(site.server.hits_for("/udbud_feed.xml")) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        assert worker.stop() == 0
    assert len(site.server.hits_for("/udbud_feed.xml")) >= 2  # it ran, quietly
    assert "crawl:feed started" not in worker.log() and "INFO" not in worker.log()
