"""The jobs the CLI commands and the scheduler run: each wires one stage to a validated
config. No click here: the caller turns errors into messages and chooses what to print."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..localfiles import check_kind
from ..store import Store, StoreError
from .config import SECRET_ENV, SMTP_SETTINGS, Config, ConfigError, SourceConfig
from .profiles import ProfileSet

if TYPE_CHECKING:  # the stages are imported where a job runs: a command loads only what it uses
    from ..matcher.run import MatchRun
    from ..notifier.run import DeliveryReport
    from ..store.records import NoticeRecord

logger = logging.getLogger("tendermatch.worker")


def chosen_profiles(found: ProfileSet, profile_id: str | None) -> list[Any]:
    """Every valid profile, or only ``profile_id`` (a ConfigError naming the valid ones if
    there is no such valid profile)."""
    if not profile_id:
        return list(found.profiles)
    profile = found.get(profile_id)
    if profile is None:
        known = ", ".join(p.id for p in found.profiles) or "none"
        raise ConfigError(f"{found.path}: no valid profile with id {profile_id!r} (valid: {known})")
    return [profile]


# -- crawling --------------------------------------------------------------------------------


def sources_to_crawl(config: Config, names: tuple[str, ...] = ()) -> list[SourceConfig]:
    """The named sources, else every enabled one (a ConfigError if there are none)."""
    sources = [config.source(name) for name in names] if names else [s for s in config.sources if s.enabled]
    if not sources:
        raise ConfigError(f"{config.path or 'no config file'}: no enabled sources to crawl")
    return sources


def crawl_here(config: Config, names: tuple[str, ...] = (), *, show_progress: bool = True) -> dict[str, Any]:
    """Crawl in this process (Scrapy's reactor runs once per process: for one-off commands)."""
    from ..crawler.runner import run_crawls

    return run_crawls([s.as_dict() for s in sources_to_crawl(config, names)], store_path=str(config.store_path),
                      crawler=dict(config.crawler), show_progress=show_progress)


@dataclass
class ChildCrawl:
    """How a crawl in a child process ended: its run (as recorded) and what happened to the process."""

    run_id: int
    run: dict[str, Any] = field(default_factory=dict)
    exit_code: int | None = None
    timed_out: bool = False
    stopped: bool = False  # asked to stop (the worker is stopping)

    @property
    def news(self) -> int:
        """Notices this crawl stored that are new or changed."""
        stats = self.run.get("stats") or {}
        return int(stats.get("new", 0)) + int(stats.get("updated", 0))


def crawl_in_child(config: Config, source: SourceConfig, *, stop: threading.Event, stop_grace: float,
                   log_level: str = "INFO") -> ChildCrawl:
    """Crawl ``source`` in a child process (``python -m tendermatch.worker.crawl_child``).

    The child gets SIGTERM (Scrapy then closes cleanly and keeps what it has) at the
    source's ``timeout`` or when ``stop`` is set, and SIGKILL ``stop_grace`` seconds later.
    The run is recorded here first, so a child that crashes, hangs or is killed by the
    OS still leaves a finished run with the reason. Its log lines go to this process's log."""
    store = Store.open(config.store_path)
    try:
        run_id = store.start_run("crawl", source=source.name)
    finally:
        store.close()
    job = {"source": source.as_dict(), "store_path": str(config.store_path), "crawler": config.crawler,
           "run_id": run_id, "log_level": log_level, "parent_pid": os.getpid()}
    process = subprocess.Popen([sys.executable, "-m", "tendermatch.worker.crawl_child"], stdin=subprocess.PIPE,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    forward = threading.Thread(target=_forward_log, args=(process, source.name), daemon=True)
    forward.start()
    assert process.stdin is not None
    try:
        process.stdin.write(json.dumps(job).encode())
        process.stdin.close()
    except BrokenPipeError:  # it died at once; its exit code says so below
        pass
    result = ChildCrawl(run_id=run_id)
    deadline = time.monotonic() + source.timeout
    while process.poll() is None:
        if stop.is_set() or time.monotonic() >= deadline:
            result.stopped, result.timed_out = stop.is_set(), not stop.is_set()
            _stop_child(process, grace=stop_grace)
            break
        stop.wait(0.2)
    result.exit_code = process.wait()
    forward.join(timeout=5)
    store = Store.open(config.store_path)
    try:
        _finish_child_run(store, result, timeout=source.timeout)
        result.run = store.get_run(run_id) or {}
    finally:
        store.close()
    return result


def _stop_child(process: subprocess.Popen[bytes], *, grace: float) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()


def _finish_child_run(store: Store, result: ChildCrawl, *, timeout: int) -> None:
    """Make sure the run says how the child ended, whatever the child managed to record."""
    run = store.get_run(result.run_id) or {}
    if result.timed_out:
        why = f"stopped at the source's timeout ({timeout} s)"
    elif result.stopped:
        why = "stopped: the worker is stopping"
    elif result.exit_code and result.exit_code < 0:
        why = f"the crawl process was killed by {signal.Signals(-result.exit_code).name}"
    elif result.exit_code:
        why = f"the crawl process failed (exit code {result.exit_code}); see the worker's log"
    else:
        why = None
    if run.get("outcome") == "running":  # the child never got to record its end
        outcome = "interrupted" if result.stopped else "failed"
        store.finish_run(result.run_id, outcome=outcome, stats=run.get("stats") or {},
                         error=why or "the crawl ended without recording its outcome")
    elif why:  # it closed cleanly after the signal: keep its counts, say why it stopped
        outcome = "interrupted" if result.stopped else "partial" if run.get("outcome") == "ok" else run["outcome"]
        error = "; ".join(part for part in (why, run.get("error")) if part)
        store.finish_run(result.run_id, outcome=outcome, stats=run.get("stats") or {}, error=error)


def _forward_log(process: subprocess.Popen[bytes], source: str) -> None:
    """Re-log the child's stderr lines ("LEVEL logger: message") in this process."""
    child_logger = logging.getLogger(f"tendermatch.crawl.{source}")
    assert process.stderr is not None
    level = logging.WARNING
    for raw in process.stderr:
        line = raw.decode("utf-8", "replace").rstrip()
        if not line:
            continue
        level_name, _, message = line.partition(" ")
        named = logging.getLevelName(level_name)
        if isinstance(named, int):
            level = named
            child_logger.log(level, "%s", message)
        else:  # the next line of a multi-line message (a dump, a traceback): its level
            child_logger.log(level, "%s", line)


# -- ingest and reparse -----------------------------------------------------------------------


def ingest_paths(config: Config, store: Store, paths: list[Path], *, source: str) -> Any:
    """``ingest``: parse local notice files or folders into the store through the crawl's
    pipeline, as one run of ``source``; returns its RunStats. The store is closed after."""
    from ..crawler.ingest import NoticeIngester
    from ..crawler.prepare import prepare_file, prepare_in_parallel
    from ..crawler.spiders.files import notice_files

    max_bytes = config.max_bytes
    # /dev/zero or a FIFO given by name is never read: one rejection line each
    unreadable = {path: problem for path in paths if (problem := check_kind(path, folder=True, file=True))}
    files = [file for path in paths if path not in unreadable for file in notice_files(str(path))]
    run_id = store.start_run("ingest", source=source)
    ingester = NoticeIngester(store, source=source, run_id=run_id, max_bytes=max_bytes)
    for path, problem in unreadable.items():
        ingester.reject(str(path), problem)
    # Parsing is CPU-bound: worker processes parse while this one stores, in file order.
    workers = min(os.cpu_count() or 1, 4) if len(files) >= 50 else 1
    tasks = ((str(file), source, max_bytes) for file in files)
    try:
        ingester.store_all(prepare_in_parallel(prepare_file, tasks, workers=workers))
    except KeyboardInterrupt:
        ingester.record_run(outcome="interrupted")
        raise
    except Exception as error:  # a StoreError, or a bug: the run ends failed, never left running
        with contextlib.suppress(StoreError):  # on a full disk the run's end may not fit either
            ingester.record_run(outcome="failed", error=str(error) if isinstance(error, StoreError)
                                else f"stopped on an unexpected {type(error).__name__}: {error}"[:500])
        raise
    stats = ingester.finish()
    ingester.record_run()
    store.close()
    return stats


def reparse_store(config: Config, store: Store) -> dict[str, Any]:
    """``reparse``: rebuild every notice from the kept raw documents, in one transaction (a
    failed reparse leaves the old notices); returns each source's RunStats. The store stays
    open: the caller reports from it."""
    from ..crawler.ingest import NoticeIngester
    from ..crawler.items import Document

    sources = {s.name: s for s in config.sources}
    run_id = store.start_run("reparse")
    ingesters: dict[str, NoticeIngester] = {}
    with store.transaction():
        store.clear_notices()
        for raw in store.iter_raw():
            ingester = ingesters.setdefault(raw.source, NoticeIngester(
                store, source=raw.source, run_id=run_id, max_bytes=config.max_bytes))
            source = sources.get(raw.source)
            document = Document(source=raw.source, url=raw.url, content=raw.content, fetched_at=raw.fetched_at,
                                format=raw.format or None,
                                notice_kind=source.notice_kind if source else "tender")
            if raw.format == "html":
                if source is None or source.kind != "html":
                    ingester.stats.fetched += 1
                    ingester.reject(raw.url, f"HTML page from source {raw.source!r}, which is no longer configured")
                    continue
                document.selectors = source.selectors
                document.details = store.raw_children(raw.id)
            ingester.process(document, raw_id=raw.id)
    results = {name: ingester.finish() for name, ingester in ingesters.items()}
    troubled = sum(stats.rejected + stats.errors for stats in results.values())
    store.finish_run(run_id, outcome="ok" if not troubled else "partial",
                     stats={name: stats.as_dict() for name, stats in results.items()})
    return results


# -- matching --------------------------------------------------------------------------------


def run_match(config: Config, store: Store, found: ProfileSet, *, as_of: date | None,
              profile_id: str | None = None) -> Any:
    """Match the store's notices against the valid profiles (or one) into the match log."""
    from ..matcher.run import match_store

    matcher = config.matcher
    profiles = chosen_profiles(found, profile_id)
    # The web view names enterprises from this copy (and shows their addresses to staff).
    store.save_profiles([dataclasses.asdict(profile) for profile in profiles], only=profile_id is not None)
    return match_store(store, profiles, as_of=as_of, rates=matcher["rates"],
                       min_relevance=matcher["min_relevance"], keep=matcher["keep"])


# -- digests ---------------------------------------------------------------------------------


def recipients(found: ProfileSet, profile_id: str | None) -> list[Any]:
    from ..notifier.digest import Recipient

    return [Recipient(profile_id=p.id, name=p.name, emails=p.emails, language=p.language, max_items=p.max_items)
            for p in chosen_profiles(found, profile_id)]


def digest_settings(config: Config, *, check_deadlines: bool = True) -> Any:
    from ..notifier.run import DigestSettings

    digest = config.digest
    return DigestSettings(sender=digest["sender"], base_url=digest["base_url"], send_empty=digest["send_empty"],
                          timezone=config.timezone, check_deadlines=check_deadlines,
                          max_message_bytes=digest["max_message_kb"] * 1024)


def secret_from_env() -> bytes:
    """The unsubscribe secret ($TENDERMATCH_SECRET); a SecretError if unset or too short."""
    from ..notifier.tokens import check_secret

    return check_secret(os.environ.get(SECRET_ENV), name=SECRET_ENV)


def digest_sender(config: Config) -> Any:
    """An SMTP sender from [smtp] (credentials from the environment variables it names),
    else the outbox folder."""
    from ..notifier.send import OutboxSender, SmtpSender

    smtp = config.smtp
    if smtp is None:
        return OutboxSender(config.digest["outbox"])
    credentials = []
    for key in ("username_env", "password_env"):
        name = smtp[key]
        if name and name not in os.environ:
            raise ConfigError(f"{config.path}: [smtp] {key} names ${name}, which is not set")
        credentials.append(os.environ.get(name) if name else None)
    return SmtpSender(host=smtp["host"], port=smtp["port"], security=smtp["security"], username=credentials[0],
                      password=credentials[1], timeout=smtp["timeout"])


def check_can_send(config: Config) -> None:
    """Raise (SecretError, ConfigError) unless the digest job will find what it needs in
    the environment: the unsubscribe secret and the [smtp] credentials' variables."""
    secret_from_env()
    digest_sender(config)


def send_digests(config: Config, found: ProfileSet, *, period: str, as_of: date, profile_id: str | None = None,
                 check_deadlines: bool = True, echo: Callable[[str], None] = logger.info,
                 stop: threading.Event | None = None) -> Any:
    """Record this period's digests, then send every pending one; returns the report.
    When ``stop`` is set the rest stay pending (the next run sends them, exactly once)."""
    from ..notifier.render import mailbox
    from ..notifier.run import deliver_pending, outbox_name, plan_digests

    chosen = recipients(found, profile_id)
    secret = secret_from_env()
    sender = digest_sender(config)
    store = Store.open(config.store_path)
    run_id = store.start_run("digest")
    try:
        planned = plan_digests(store, chosen, period=period, as_of=as_of, secret=secret, record=True,
                               run_id=run_id, settings=digest_settings(config, check_deadlines=check_deadlines))
        unmade = [plan for plan in planned if plan.error]
        echo(f"{len(planned) - len(unmade)} new digests for {period} recorded; sending every pending digest"
             f" {'to ' + sender.where if config.smtp else 'to the outbox ' + str(sender.folder)}")
        for plan in unmade:  # recorded failed: each costs only itself
            echo(f"  {'failed':7} {plan.period} {plan.profile_id} <{plan.email}>: {plan.error}")

        def progress(delivery: dict[str, Any], outcome: str, error: str | None) -> None:
            where = f" {sender.path_of(outbox_name(delivery))}" if config.smtp is None and outcome == "sent" else ""
            echo(f"  {outcome:7} {delivery['period']} {delivery['profile_id']} <{delivery['email']}>{where}"
                 + (f": {error}" if error else ""))

        smtp = config.smtp or {setting.name: setting.default for setting in SMTP_SETTINGS}  # outbox: same retries
        report = deliver_pending(store, sender, from_address=mailbox(config.digest["sender"]),
                                 retries=smtp["retries"], retry_delay=smtp["retry_delay"], progress=progress,
                                 stop=stop, sleep=_pause(stop))
    except BaseException as error:
        store.finish_run(run_id, outcome="interrupted" if isinstance(error, KeyboardInterrupt) else "failed",
                         stats={}, error=str(error) or type(error).__name__)
        store.close()
        raise
    report.failed += [{"profile_id": plan.profile_id, "email": plan.email, "period": plan.period, "error": plan.error}
                      for plan in unmade]
    stats = {"period": period, "planned": len(planned), "sent": len(report.sent), "failed": len(report.failed),
             "pending": len(report.pending), "retries": report.retries}
    if report.stopped and stop is not None and stop.is_set():
        outcome = "interrupted"
    else:
        outcome = "ok" if not report.failed and not report.pending else "partial" if report.sent else "failed"
    store.finish_run(run_id, outcome=outcome, stats=stats, error=report.stopped)
    store.close()
    echo(f"{len(report.sent)} sent, {len(report.failed)} refused, {len(report.pending)} left pending"
         f" ({report.retries} retries)" + (f"; stopped: {report.stopped}" if report.stopped else ""))
    return report


# -- demo ------------------------------------------------------------------------------------


def reset_demo(config: Config) -> None:
    """Delete the store and the outbox messages of ``config``: ``demo`` starting fresh. Only
    ``demo`` calls it, on its own config, whose store is in the demo's state folder (never
    the operator's --db)."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{config.store_path}{suffix}").unlink(missing_ok=True)
    for old_message in Path(config.digest["outbox"]).glob("*.eml"):
        old_message.unlink()


def ready_demo(config: Config, *, secret_file: Path) -> bool:
    """Make sure the demo's digests can be written before it deletes or crawls anything: the
    unsubscribe links are signed with $TENDERMATCH_SECRET when it is set, else with a secret
    the demo keeps in ``secret_file`` (then True); a bad secret or [smtp] raises here."""
    made = not os.environ.get(SECRET_ENV)
    if made:
        os.environ[SECRET_ENV] = demo_secret(secret_file)
    check_can_send(config)
    return made


@dataclass
class DemoRun:
    """What ``demo`` has done so far: each source's crawl, the store's counts, the notices by
    id, the match and the digests written."""

    period: str
    crawled: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    notices: dict[str, NoticeRecord] = field(default_factory=dict)
    match: MatchRun | None = None
    digests: DeliveryReport | None = None


def run_demo(config: Config, found: ProfileSet, *, as_of: date | None, period: str,
             show: Callable[[str, DemoRun], None]) -> DemoRun:
    """The main job on the demo's config (after ``ready_demo``): every source crawled, the
    store matched against ``found`` (deadlines checked only with ``as_of``), this period's
    digests written. ``show`` is called after each step ("crawled", "matched", "digests")
    with what is done so far."""
    run = DemoRun(period=period)
    run.crawled = crawl_here(config)
    store = Store.open(config.store_path)
    try:
        run.counts = store.counts()
        run.notices = {record["id"]: record for record in store.notices()}
        show("crawled", run)
        run.match = run_match(config, store, found, as_of=as_of)
    finally:
        store.close()
    show("matched", run)
    run.digests = send_digests(config, found, period=period, as_of=as_of or date.today(),
                               check_deadlines=as_of is not None, echo=lambda line: None)
    show("digests", run)
    return run


def demo_secret(path: Path) -> str:
    """The demo's own unsubscribe secret: made once, readable only by its owner."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(handle, "w") as file:
            file.write(os.urandom(32).hex())
    return path.read_text().strip()


def _pause(stop: threading.Event | None) -> Callable[[float], None]:
    """How a retry waits: on the stop event when there is one (a stop ends the wait)."""
    if stop is None:
        return time.sleep
    event = stop

    def wait(seconds: float) -> None:
        event.wait(seconds)

    return wait
