"""A crawl in a child process of the worker: ``python -m tendermatch.worker.crawl_child``.

Scrapy's Twisted reactor cannot be restarted in one process, so the worker crawls each
source in a fresh child. The job comes as JSON on stdin (source, store_path, crawler,
run_id, log_level); log lines go to stderr as "LEVEL logger: message" for the worker to
re-log. The child records the run's end itself; the worker finishes the run if it cannot.
"""

from __future__ import annotations

import json
import os
import signal
import sys

LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"


def _die_with_parent() -> None:
    """Ask Linux to kill this process when the worker dies (even by SIGKILL), so no
    orphaned crawl goes on writing to a store another worker may by then hold. SIGKILL,
    not SIGTERM: the signal can come more than once (once per worker thread that ends),
    and Scrapy takes a second SIGTERM as "stop uncleanly", which records a wrong outcome.
    The run is left 'running', and the next worker marks it interrupted and runs it again."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the worker still kills it at its timeout
        pass


def _record_orphaned(job: dict) -> None:
    """The worker died while this crawl ran: say so in the run, whatever Scrapy recorded."""
    from tendermatch.store import Store

    store = Store.open(job["store_path"])
    try:
        run = store.get_run(job["run_id"]) or {}
        store.finish_run(job["run_id"], outcome="interrupted", stats=run.get("stats") or {},
                         error="the worker process ended while this crawl ran")
    finally:
        store.close()


def main() -> int:
    _die_with_parent()
    job = json.loads(sys.stdin.read())
    parent = job.get("parent_pid")
    if parent and os.getppid() != parent:  # the worker died before the death signal was set
        _record_orphaned(job)
        return 1
    from tendermatch.crawler.runner import run_crawls

    # Scrapy's INFO lines (a stats dump per crawl) are noise in the worker's log: the
    # worker logs each crawl's start and end itself. DEBUG shows everything.
    level = "DEBUG" if job.get("log_level") == "DEBUG" else "WARNING"
    try:
        run_crawls([job["source"]], store_path=job["store_path"], crawler=job["crawler"],
                   run_ids={job["source"]["name"]: job["run_id"]},
                   log_settings={"LOG_LEVEL": level, "LOG_FORMAT": LOG_FORMAT})
    except Exception as error:  # one line for the worker's log; the worker records the run failed
        print(f"ERROR tendermatch.crawl: {type(error).__name__}: {error}", file=sys.stderr, flush=True)
        return 1
    finally:
        if parent and os.getppid() != parent:
            _record_orphaned(job)
    return 0


if __name__ == "__main__":
    sys.exit(main())
