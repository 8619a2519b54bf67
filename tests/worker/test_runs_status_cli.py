"""`tendermatch runs` and `tendermatch status` with no worker running: the history of runs
made by commands, and the jobs as the config would schedule them."""

from __future__ import annotations

import json
import shutil
from datetime import datetime

import pytest

from tests import configs
from tests.conftest import ROOT, SAMPLE, run_cli

pytestmark = pytest.mark.slow


def workspace(tmp_path):
    shutil.copytree(SAMPLE / "eforms", tmp_path / "notices")
    shutil.copytree(ROOT / "config" / "profiles", tmp_path / "profiles")
    return str(configs.write_config(
        tmp_path, worker={"timezone": "Europe/Copenhagen"}, matcher={"profiles": "profiles"},
        digest={"schedule": "0 7 * * 1"},
        sources=[{"name": "local", "kind": "files", "path": "notices", "schedule": "30 6 * * 1-5"},
                 {"name": "paused", "kind": "files", "path": "notices", "enabled": False}]))


@pytest.fixture(scope="module")
def crawled(tmp_path_factory):
    """A store with one crawl and one match, made by the commands (no worker)."""
    config = workspace(tmp_path_factory.mktemp("runs"))
    assert run_cli("--config", config, "crawl", "local").returncode == 0
    assert run_cli("--config", config, "match", "--as-of", "2016-01-01").returncode == 0
    return config


def test_runs_lists_each_run_with_its_outcome_counts_and_filters_by_job(crawled):
    config = crawled
    runs = json.loads(run_cli("--config", config, "runs", "--format", "json", check=True).stdout)
    assert [run["job"] for run in runs] == ["match", "crawl:local"]  # newest first
    crawl = runs[1]
    assert crawl["outcome"] == "ok" and crawl["stats"]["new"] > 0 and crawl["seconds"] >= 0
    assert crawl["started"] <= crawl["finished"] and crawl["error"] is None and crawl["pid"] > 0
    only = json.loads(run_cli("--config", config, "runs", "--format", "json", "--job", "crawl:local",
                              check=True).stdout)
    assert [run["job"] for run in only] == ["crawl:local"]
    assert json.loads(run_cli("--config", config, "runs", "--format", "json", "--job", "digest",
                              check=True).stdout) == []
    table = run_cli("--config", config, "runs", check=True).stdout
    assert "crawl:local" in table and f"new {crawl['stats']['new']}" in table and "2 runs" in table


def test_status_without_a_worker_shows_the_jobs_the_config_would_schedule(crawled):
    config = crawled
    status = json.loads(run_cli("--config", config, "status", "--format", "json", check=True).stdout)
    assert status["worker"]["running"] is False
    jobs = {job["id"]: job for job in status["jobs"]}
    assert set(jobs) == {"crawl:local", "digest", "match"}  # the disabled source is not scheduled
    digest_next = datetime.fromisoformat(jobs["digest"]["next_run"])
    assert digest_next.strftime("%A %H:%M") == "Monday 07:00" and digest_next.utcoffset() is not None
    assert datetime.fromisoformat(jobs["crawl:local"]["next_run"]).weekday() < 5
    assert jobs["crawl:local"]["outcome"] == "ok" and jobs["crawl:local"]["last_run"]
    assert jobs["digest"]["last_run"] is None
    store = status["store"]
    assert store["notices"] > 0 and store["profiles"] == 10 and store["size_bytes"] > 0
    table = run_cli("--config", config, "status", check=True).stdout
    assert "worker: not running" in table and "30 6 * * 1-5" in table and "notices, 10 profiles" in table


def test_run_refuses_to_start_without_the_unsubscribe_secret(tmp_path):
    config = workspace(tmp_path)
    result = run_cli("--config", config, "run", env={"TENDERMATCH_SECRET": ""}, timeout=60)
    assert result.returncode == 2 and "TENDERMATCH_SECRET" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "store.db.worker.lock").exists()
