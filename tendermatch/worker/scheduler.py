"""`tendermatch run`: the long-running worker.

One APScheduler 3 job per enabled source (its cron ``schedule`` in ``[worker] timezone``),
a match after every crawl that stored something new, and the weekly digest from
``[digest] schedule``. Each crawl runs in a child process (Scrapy's reactor cannot be
restarted in one process) and is stopped at its source's ``timeout``.

The worker holds a lock beside the store (one worker per store), publishes its jobs and
state in the store for ``tendermatch status``, reloads its config on SIGHUP or when the
config or a profile file changes (refusing a bad one and keeping the old), and on SIGTERM
or SIGINT stops taking jobs, lets running ones finish or abandons them cleanly, and exits 0.

Over 500 lines on purpose: the worker's life (lock, schedules, reloads on SIGHUP and file
edits, child crawls, stopping) is one state machine; its parts share the running state.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from ..errors import TendermatchError
from ..notifier.tokens import SecretError
from ..store import Store, lock_path, utc_now
from . import jobs
from .config import Config, ConfigError, cron_trigger, load_config
from .profiles import ProfileSet, load_profiles, profile_files

logger = logging.getLogger("tendermatch.worker")

MATCH_JOB = "match"
DIGEST_JOB = "digest"
MATCH_SCHEDULE = "after each crawl that stored something new"
HEARTBEAT_SECONDS = 10
PENDING_RETRY_MINUTES = 15  # a digest run that left messages pending is tried again this soon
TICK_SECONDS = 0.25


class WorkerLocked(TendermatchError, RuntimeError):
    """Raised by ``StoreLock.acquire`` when another worker runs on the same store."""


def crawl_job_id(source: str) -> str:
    return f"crawl:{source}"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


class StoreLock:
    """An exclusive ``flock`` on ``<store>.worker.lock`` beside the store's real file (see
    ``lock_path``: every spelling of one store is one lock), holding the worker's pid. The
    kernel releases it when the process ends, however it ends (even SIGKILL)."""

    def __init__(self, store_path: Path):
        self.store_path = Path(store_path)
        self.path = lock_path(store_path, "worker")
        self._file: Any = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")  # noqa: SIM115 -- held open while the worker runs: the lock is the open file
        for attempt in range(5):  # `status` may be probing the lock for a moment
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as error:
                if error.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if attempt == 4:
                    handle.seek(0)
                    holder = handle.read().strip() or "?"
                    handle.close()
                    raise WorkerLocked(f"{self.store_path}: another worker (pid {holder}) is already"
                                       f" running on this store; stop it first") from None
                time.sleep(0.2)
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    @classmethod
    def holder(cls, store_path: Path) -> int | None:
        """The pid of the worker running on ``store_path``, or None if none is."""
        lock = cls(store_path)
        if not lock.path.exists():
            return None
        with open(lock.path) as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError:
                text = handle.read().strip()
                return int(text) if text.isdigit() else -1
            fcntl.flock(handle, fcntl.LOCK_UN)
        return None


@dataclass(frozen=True)
class JobSpec:
    """A scheduled job as the config asks for it."""

    id: str
    kind: str  # crawl | digest
    schedule: str
    source: str | None = None

    def trigger(self, timezone: str) -> CronTrigger:
        return cron_trigger(self.schedule, timezone=timezone)


def job_specs(config: Config) -> dict[str, JobSpec]:
    """The scheduled jobs of ``config``: one per enabled source, and the digest."""
    specs = {crawl_job_id(s.name): JobSpec(crawl_job_id(s.name), "crawl", s.schedule, s.name)
             for s in config.sources if s.enabled}
    specs[DIGEST_JOB] = JobSpec(DIGEST_JOB, "digest", config.digest["schedule"])
    return specs


# The match has no schedule of its own: it runs after crawls with news.
MATCH_SPEC = JobSpec(MATCH_JOB, "match", MATCH_SCHEDULE)


def job_row(spec: JobSpec, *, timezone: str, next_run: datetime | None) -> dict[str, Any]:
    """A job as `status` shows it (and the store's worker_jobs table holds it)."""
    return {"id": spec.id, "kind": spec.kind, "source": spec.source, "schedule": spec.schedule,
            "timezone": timezone, "next_run": next_run.isoformat() if next_run else None}


def planned_jobs(config: Config, *, now: datetime | None = None) -> list[dict[str, Any]]:
    """What a worker started with ``config`` would schedule, with each next time (for
    ``status`` when no worker is running)."""
    now = now or datetime.now(ZoneInfo(config.timezone))
    zone = config.timezone
    rows = [job_row(spec, timezone=zone, next_run=spec.trigger(zone).get_next_fire_time(None, now))
            for spec in job_specs(config).values()]
    rows.append(job_row(MATCH_SPEC, timezone=config.timezone, next_run=None))
    return sorted(rows, key=lambda row: row["id"])


def _files_signature(config_path: Path, profiles_path: Path) -> tuple[Any, ...]:
    """What changes when the config file or a profile file is edited, added or removed."""
    def stat(path: Path) -> tuple[Any, ...]:
        try:
            info = path.stat()
        except OSError:
            return (str(path), None)
        return (str(path), info.st_mtime_ns, info.st_size)

    return (stat(config_path), tuple(stat(file) for file in profile_files(profiles_path)))


class Worker:
    """The scheduler and its jobs. ``run()`` blocks until SIGTERM/SIGINT, then returns 0."""

    def __init__(self, config: Config, profiles: ProfileSet, *, db_override: str | None = None,
                 profiles_override: str | None = None, log_level: str = "INFO"):
        if config.path is None:
            raise ConfigError("tendermatch run needs a config file (give --config PATH)")
        self.config = config
        self.profiles = profiles
        self.db_override = db_override
        self.profiles_override = profiles_override
        self.log_level = log_level
        self.stop_event = threading.Event()
        self.reload_event = threading.Event()
        self.stop_signal: str | None = None
        self.lock = StoreLock(config.store_path)
        self._active: dict[str, str] = {}  # job id -> what it is doing, while it runs
        self._active_lock = threading.Lock()
        self._jobs_changed = threading.Event()
        self._match_lock = threading.Lock()
        self._match_wanted = False
        self._match_running = False
        # The files' state as close as possible to when they were read (by the caller, just
        # now): an edit made while the worker starts must count as a change.
        self._files_read = _files_signature(self.config_path, self._profiles_path(config))
        self.scheduler = BackgroundScheduler(
            timezone=config.timezone, executors={"default": ThreadPoolExecutor(8)},
            job_defaults={"coalesce": True, "max_instances": 1,
                          "misfire_grace_time": config.worker["misfire_grace"]})

    # -- paths ----------------------------------------------------------------------------

    @property
    def config_path(self) -> Path:
        assert self.config.path is not None
        return self.config.path.resolve()

    def _profiles_path(self, config: Config) -> Path:
        return Path(self.profiles_override) if self.profiles_override else config.matcher["profiles"]

    def _store(self) -> closing[Store]:
        """The store, for a ``with`` block (each thread opens its own connection)."""
        return closing(Store.open(self.config.store_path))

    # -- running --------------------------------------------------------------------------

    def run(self) -> int:
        self.lock.acquire()
        try:
            return self._run_locked()
        finally:
            self.lock.release()

    def _run_locked(self) -> int:
        self._install_signal_handlers()
        with self._store() as store:
            orphans = store.interrupt_orphaned_runs(alive=pid_alive)
            store.publish_worker(pid=os.getpid(), host=socket.gethostname(), started=utc_now(),
                                 config=str(self.config_path), config_loaded=utc_now(), reload_error=None,
                                 heartbeat=utc_now(), stopped=None)
        if orphans:
            logger.warning("marked %d run(s) interrupted that a stopped process left running (ids %s)",
                           len(orphans), ", ".join(map(str, orphans)))
        logger.info("worker started (pid %d) on %s with %s; schedules in %s", os.getpid(), self.config.store_path,
                    self.config_path, self.config.timezone)
        for line in self.profiles.errors:
            logger.warning("skipped profile %s", line)
        specs = job_specs(self.config)
        for spec in specs.values():
            self._add_job(spec, self.config, catch_up=True)
        self.scheduler.add_listener(lambda event: self._jobs_changed.set())
        self.scheduler.start()
        if self._crawl_news_since_last_match():
            self.request_match("a crawl stored news after the last match")
        self._publish_jobs()
        self._log_schedule()
        signature = self._files_read
        last_watch = last_beat = time.monotonic()
        watch = self.config.worker["watch"]
        while not self.stop_event.wait(TICK_SECONDS):
            now = time.monotonic()
            # The files' state is taken before reading them: an edit made while they are
            # read changes it again and is picked up at the next check.
            if self.reload_event.is_set():
                self.reload_event.clear()
                signature = _files_signature(self.config_path, self._profiles_path(self.config))
                self.reload("SIGHUP")
                watch = self.config.worker["watch"]
            elif watch and now - last_watch >= watch:
                last_watch = now
                current = _files_signature(self.config_path, self._profiles_path(self.config))
                if current != signature:
                    signature = current
                    self.reload("a file changed")
                    watch = self.config.worker["watch"]
            if self._jobs_changed.is_set():
                self._jobs_changed.clear()
                self._publish_jobs()
            if now - last_beat >= HEARTBEAT_SECONDS:
                last_beat = now
                self._publish_state(heartbeat=utc_now())
        return self._shutdown()

    def _install_signal_handlers(self) -> None:
        def stop(signum: int, frame: Any) -> None:
            if self.stop_event.is_set():
                return
            self.stop_signal = signal.Signals(signum).name
            self.stop_event.set()

        def hangup(signum: int, frame: Any) -> None:
            self.reload_event.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGHUP, hangup)

    def _shutdown(self) -> int:
        grace = self.config.worker["stop_grace"]
        with self._active_lock:
            running = dict(self._active)
        logger.info("stopping (%s): no new jobs%s", self.stop_signal or "asked",
                    f"; waiting up to {grace:g} s for {', '.join(running)}" if running else "")
        self.scheduler.shutdown(wait=False)
        # A crawl child gets SIGTERM at once (stop_event) and SIGKILL after the grace; a
        # digest stops between two messages; a match finishes or is abandoned.
        deadline = time.monotonic() + grace + 5
        while time.monotonic() < deadline:
            with self._active_lock:
                if not self._active:
                    break
            time.sleep(0.1)
        with self._active_lock:
            abandoned = dict(self._active)
        with self._store() as store:
            me = os.getpid()
            # This process's runs still open were abandoned: say so (nothing half-written is
            # kept: a match replaces its rows in one transaction, digests stay pending).
            store.interrupt_orphaned_runs(alive=lambda pid: pid != me and pid_alive(pid))
            store.publish_worker(stopped=utc_now(), heartbeat=utc_now())
        if abandoned:
            logger.warning("abandoned %s at stop; recorded as interrupted", ", ".join(abandoned))
            logger.info("worker stopped")
            logging.shutdown()
            os._exit(0)  # the abandoned job's thread cannot be joined
        logger.info("worker stopped")
        return 0

    # -- scheduling -----------------------------------------------------------------------

    def _job_function(self, spec: JobSpec) -> Callable[[], None]:
        if spec.kind == "crawl":
            assert spec.source is not None
            name = spec.source
            return lambda: self._guarded(crawl_job_id(name), lambda: self._crawl(name))
        return lambda: self._guarded(DIGEST_JOB, self._digest)

    def _add_job(self, spec: JobSpec, config: Config, *, catch_up: bool) -> None:
        trigger = spec.trigger(config.timezone)
        extra: dict[str, Any] = {}
        if catch_up:
            why = self._due_at_start(spec, trigger, config)
            if why is not None:
                extra["next_run_time"] = datetime.now(ZoneInfo(config.timezone))
                logger.info("%s: %s, so it runs now", spec.id, why)
        self.scheduler.add_job(self._job_function(spec), trigger=trigger, id=spec.id, name=spec.id,
                               replace_existing=True, **extra)

    def _due_at_start(self, spec: JobSpec, trigger: CronTrigger, config: Config) -> str | None:
        """Why the job runs now, or None. It does when a scheduled time passed since it last
        ran to completion (once, not once per missed time); when a source was never
        crawled; or when digests recorded by an earlier run are still pending. A digest
        that never ran waits for its time: starting the worker alone never sends e-mail."""
        with self._store() as store:
            pending = store.pending_count() if spec.kind == "digest" else 0
            last = store.last_completed_run(spec.kind, source=spec.source)
        if pending:
            return f"{pending} digests recorded by an earlier run are still pending"
        if last is None:
            return "never crawled to an end" if spec.kind == "crawl" else None
        # Stored times have whole seconds: step past the run's own start.
        due = trigger.get_next_fire_time(None, datetime.fromisoformat(last["started"]) + timedelta(seconds=1))
        if due is not None and due <= datetime.now(ZoneInfo(config.timezone)):
            return f"its scheduled time passed since it last ran ({last['started']})"
        return None

    def _crawl_news_since_last_match(self) -> bool:
        with self._store() as store:
            return store.crawls_with_news_since_match() > 0

    def _log_schedule(self) -> None:
        specs = job_specs(self.config)
        for job in sorted(self.scheduler.get_jobs(), key=lambda job: job.id):
            spec = specs.get(job.id)
            when = job.next_run_time.isoformat(timespec="seconds") if job.next_run_time else "not due"
            logger.info("%s: schedule %r, next %s", job.id, spec.schedule if spec else "once", when)

    def _publish_jobs(self) -> None:
        specs = {**job_specs(self.config), MATCH_JOB: MATCH_SPEC}
        next_runs = {job.id: job.next_run_time for job in self.scheduler.get_jobs()}
        rows = [job_row(spec, timezone=self.config.timezone, next_run=next_runs.get(job_id))
                for job_id, spec in specs.items() if job_id in next_runs or job_id == MATCH_JOB]
        with self._store() as store:
            store.publish_jobs(rows)

    def _publish_state(self, **state: Any) -> None:
        with self._store() as store:
            store.publish_worker(**state)

    # -- reloading ------------------------------------------------------------------------

    def reload(self, why: str) -> bool:
        """Re-read and validate the config and profiles; apply them, or refuse and keep
        the running ones. Returns whether the new config was applied."""
        try:
            config = load_config(self.config_path, db=self.db_override)
            if config.store_path != self.config.store_path:
                raise ConfigError(f"{self.config_path}: [store] path changed ({config.store_path}); restart the"
                                  f" worker to move to another store")
            jobs.check_can_send(config)
            profiles = load_profiles(self._profiles_path(config))
            new_errors = [line for line in profiles.errors if line not in self.profiles.errors]
            if new_errors:
                more = f" (and {len(new_errors) - 1} more)" if len(new_errors) > 1 else ""
                raise ConfigError(f"profile {new_errors[0]}{more}")
        except (ConfigError, SecretError) as error:
            # Stored before it is logged: whoever sees the line and runs `status` sees it too.
            try:
                self._publish_state(reload_error=f"{utc_now()} {error}")
            finally:
                logger.error("reload refused (%s); the running config is kept: %s", why, error)
            return False
        old_specs, new_specs = job_specs(self.config), job_specs(config)
        removed = sorted(set(old_specs) - set(new_specs))
        added = sorted(set(new_specs) - set(old_specs))
        changed = sorted(job_id for job_id in set(old_specs) & set(new_specs)
                         if old_specs[job_id].schedule != new_specs[job_id].schedule
                         or config.timezone != self.config.timezone)
        profiles_changed = _profile_state(profiles) != _profile_state(self.profiles)
        self.config, self.profiles = config, profiles
        for job_id in removed:
            if self.scheduler.get_job(job_id):
                self.scheduler.remove_job(job_id)
        for job_id in added:
            self._add_job(new_specs[job_id], config, catch_up=True)
        for job_id in changed:
            self.scheduler.reschedule_job(job_id, trigger=new_specs[job_id].trigger(config.timezone))
        try:  # stored before it is logged, as above
            self._publish_state(config_loaded=utc_now(), reload_error=None)
            self._publish_jobs()
        finally:
            logger.info("reloaded %s (%s): %d jobs; added %s, removed %s, rescheduled %s%s", self.config_path, why,
                        len(new_specs), ", ".join(added) or "none", ", ".join(removed) or "none",
                        ", ".join(changed) or "none", "; profiles changed" if profiles_changed else "")
        for line in profiles.errors:
            logger.warning("skipped profile %s", line)
        self._log_schedule()
        if profiles_changed:
            self.request_match("the profiles changed")
        return True

    # -- the jobs -------------------------------------------------------------------------

    def _guarded(self, job_id: str, work: Callable[[], None]) -> None:
        """Run one job: mark it active, and turn any error into one log line (the stage
        has recorded its run as failed); the worker and the other jobs go on."""
        if self.stop_event.is_set():
            return
        with self._active_lock:
            self._active[job_id] = "running"
        try:
            work()
        except Exception as error:
            logger.error("%s failed: %s", job_id, f"{type(error).__name__}: {error}" if not isinstance(
                error, ConfigError) else error)
        finally:
            with self._active_lock:
                self._active.pop(job_id, None)
            self._jobs_changed.set()

    def _crawl(self, name: str) -> None:
        config = self.config
        try:
            source = config.source(name)
        except ConfigError:
            return  # removed by a reload since it was due
        logger.info("%s started (timeout %d s)", crawl_job_id(name), source.timeout)
        started = time.monotonic()
        result = jobs.crawl_in_child(config, source, stop=self.stop_event, stop_grace=config.worker["stop_grace"],
                                     log_level=self.log_level)
        run = result.run
        stats = run.get("stats") or {}
        counts = ", ".join(f"{key} {stats.get(key, 0)}" for key in ("fetched", "new", "updated", "unchanged",
                                                                      "rejected", "errors"))
        level = logging.INFO if run.get("outcome") == "ok" else logging.WARNING
        logger.log(level, "%s %s in %.1f s: %s%s (run %d)", crawl_job_id(name), run.get("outcome"),
                   time.monotonic() - started, counts, f"; {run['error']}" if run.get("error") else "", result.run_id)
        if result.news and not self.stop_event.is_set():
            self.request_match(f"{crawl_job_id(name)} stored {result.news} new or changed notices")

    def request_match(self, why: str) -> None:
        """Run the match job now, or once more right after the one running (never two at once)."""
        with self._match_lock:
            self._match_wanted = True
            if self._match_running:
                logger.debug("match requested (%s); it runs again when the current one ends", why)
                return
            self._match_running = True
        logger.debug("match requested: %s", why)
        self.scheduler.add_job(self._match_loop, id=MATCH_JOB, name=MATCH_JOB, replace_existing=True,
                               misfire_grace_time=None)

    def _match_loop(self) -> None:
        try:
            while True:
                with self._match_lock:
                    if not self._match_wanted or self.stop_event.is_set():
                        self._match_running = False
                        return
                    self._match_wanted = False
                self._guarded(MATCH_JOB, self._match)
        except BaseException:
            with self._match_lock:
                self._match_running = False
            raise

    def _match(self) -> None:
        config, profiles = self.config, self.profiles
        today = datetime.now(ZoneInfo(config.timezone)).date()
        logger.info("match started: %d profiles, open on %s", len(profiles.profiles), today)
        with self._store() as store:
            result = jobs.run_match(config, store, profiles, as_of=today)
        stats = result.stats
        logger.info("match ok in %.1f s: %d matches for %d profiles over %d open notices (run %d)",
                    stats["seconds"], stats["matches"], stats["profiles"], stats["matched_notices"], result.run_id)

    def _digest(self) -> None:
        from ..notifier.digest import period_of

        config, profiles = self.config, self.profiles
        today = datetime.now(ZoneInfo(config.timezone)).date()
        period = period_of(today)
        logger.info("digest started: %s, %d profiles", period, len(profiles.profiles))
        report = jobs.send_digests(config, profiles, period=period, as_of=today, echo=logger.debug,
                                   stop=self.stop_event)
        level = logging.INFO if not report.failed and not report.pending else logging.WARNING
        logger.log(level, "digest %s: %d sent, %d refused, %d left pending%s", period, len(report.sent),
                   len(report.failed), len(report.pending), f"; stopped: {report.stopped}" if report.stopped else "")
        if report.pending and not self.stop_event.is_set():
            # The server was down or busy: try the pending ones again soon, not next week.
            job = self.scheduler.get_job(DIGEST_JOB)
            retry = datetime.now(ZoneInfo(config.timezone)) + timedelta(minutes=PENDING_RETRY_MINUTES)
            if job is not None and (job.next_run_time is None or job.next_run_time > retry):
                self.scheduler.modify_job(DIGEST_JOB, next_run_time=retry)
                logger.info("digest: %d pending, tried again at %s", len(report.pending),
                            retry.isoformat(timespec="seconds"))


def _profile_state(profiles: ProfileSet) -> tuple[Any, ...]:
    return tuple(sorted((p.id, repr(p)) for p in profiles.profiles))
