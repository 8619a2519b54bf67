"""The run history and the worker's state in the store: orphaned runs, the last completed
run of a job, crawls with news since the last match, and writers that read first."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from tendermatch.store import Store


def test_a_run_whose_process_is_gone_is_marked_interrupted_and_others_are_left():
    store = Store.memory()
    mine = store.start_run("crawl", source="a")
    gone = store.start_run("digest")
    store.db.execute("UPDATE runs SET pid = 999999999 WHERE id = ?", [gone])
    done = store.start_run("match")
    store.finish_run(done, outcome="ok", stats={})
    assert store.interrupt_orphaned_runs(alive=lambda pid: pid == os.getpid()) == [gone]
    assert store.get_run(gone)["outcome"] == "interrupted" and store.get_run(gone)["finished"]
    assert "ended before it finished" in store.get_run(gone)["error"]
    assert store.get_run(mine)["outcome"] == "running"
    assert store.get_run(done)["outcome"] == "ok"


def test_last_completed_run_skips_running_and_interrupted_runs():
    store = Store.memory()
    ok = store.start_run("crawl", source="a")
    store.finish_run(ok, outcome="failed", stats={"errors": 1})
    cut = store.start_run("crawl", source="a")
    store.finish_run(cut, outcome="interrupted", stats={})
    store.start_run("crawl", source="a")
    other = store.start_run("crawl", source="b")
    store.finish_run(other, outcome="ok", stats={})
    assert store.last_completed_run("crawl", source="a")["id"] == ok  # a failure is a run that ended
    assert store.last_completed_run("digest") is None
    assert [run["id"] for run in store.runs(job="crawl", source="a")] == [3, 2, 1]


def test_crawls_with_news_since_the_last_match():
    store = Store.memory()
    first = store.start_run("crawl", source="a")
    store.finish_run(first, outcome="ok", stats={"new": 2, "updated": 0})
    assert store.crawls_with_news_since_match() == 1
    match = store.start_run("match")
    store.finish_run(match, outcome="ok", stats={})
    assert store.crawls_with_news_since_match() == 0
    quiet = store.start_run("crawl", source="a")
    store.finish_run(quiet, outcome="ok", stats={"new": 0, "updated": 0})
    assert store.crawls_with_news_since_match() == 0
    changed = store.start_run("crawl", source="b")
    store.finish_run(changed, outcome="partial", stats={"new": 0, "updated": 1})
    assert store.crawls_with_news_since_match() == 1


def test_the_worker_table_is_replaced_whole():
    store = Store.memory()
    store.publish_jobs([{"id": "crawl:a", "kind": "crawl", "source": "a", "schedule": "0 6 * * *",
                         "timezone": "Europe/Copenhagen", "next_run": "2026-11-23T06:00:00+01:00"}])
    store.publish_jobs([{"id": "digest", "kind": "digest", "source": None, "schedule": "0 7 * * 1",
                         "timezone": "Europe/Copenhagen", "next_run": None}])
    assert [job["id"] for job in store.worker_jobs()] == ["digest"]
    store.publish_worker(pid=12, started="2026-11-22T10:00:00+00:00")
    store.publish_worker(reload_error="bad")
    assert store.worker_state()["pid"] == 12 and store.worker_state()["reload_error"] == "bad"


WRITER = textwrap.dedent("""
    import sys
    import time
    from tendermatch.store import Store
    store = Store.open(sys.argv[1])
    for number in range(200):
        with store.transaction():
            # Read first, then write: a deferred transaction would fail at once with
            # "database is locked" when the other process wrote in between.
            count = store.db.execute("SELECT count(*) FROM runs").fetchone()[0]
            time.sleep(0.002)  # let the other process write in between
            store.db.execute("INSERT INTO runs (job, source, started, outcome) VALUES ('crawl', ?, ?, 'ok')",
                             [sys.argv[2], str(count)])
""")


def test_two_processes_reading_then_writing_never_fail_with_database_is_locked(tmp_path):
    path = tmp_path / "store.db"
    Store.open(path).close()
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), name], stderr=subprocess.PIPE, text=True)
               for name in ("a", "b")]
    errors = [writer.communicate(timeout=120)[1] for writer in writers]
    assert [writer.returncode for writer in writers] == [0, 0], errors
    store = Store.open(path)
    assert len(store.runs(limit=1000, source="a")) == 200 and len(store.runs(limit=1000, source="b")) == 200
