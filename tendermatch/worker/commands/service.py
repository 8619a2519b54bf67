"""Commands that run or watch the service: serve, hash-password, run, runs, status."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from ...store import Store
from ...store.runs import parsed_run
from .. import jobs
from ..cli import (
    Context,
    cli,
    echo_table,
    pass_context,
)
from ..config import Config, ConfigError, config_path


@cli.command()
@click.option("--host", help="Address to listen on [default: [serve] host, else 127.0.0.1].")
@click.option("--port", type=click.IntRange(1, 65535), help="Port [default: [serve] port, else 8001].")
@click.option("--public-only", is_flag=True, help="Serve only the public unsubscribe pages (no console, no"
              " Datasette): what to expose to the internet, beside a staff server on loopback.")
@pass_context
def serve(context: Context, host: str | None, port: int | None, public_only: bool) -> None:
    """Serve the store read-only in a browser for procurement staff (Datasette): the match
    log, who was told about each notice and why, deliveries, open tenders that reached no
    enterprise, agreements ending within 12 months, run history, and full-text search.
    The same server answers the digests' one-click unsubscribe links (/unsubscribe).

    The staff console (in Danish; English by a switch) is at / and needs a personal login
    (`tendermatch users add`); Datasette's SQL view, for staff only, is under /<store name>.
    $TENDERMATCH_SECRET must be the one the digests were signed with. On a non-loopback
    address the staff pages need [serve] tls_certificate or trusted_proxy; --public-only
    serves the unsubscribe pages alone.

    Example: tendermatch serve --port 8001
    """
    from ..serve import check_can_listen, check_can_serve
    from ..serve import serve as run_server

    config = context.config
    host = host or config.serve["host"]
    port = port or config.serve["port"]
    secret = check_can_serve(config)
    check_can_listen(config, host=host, public_only=public_only)
    _setup_logging(config.worker["log_level"], None, max_mb=0, backups=0)
    scheme = "https" if config.serve["tls_certificate"] else "http"
    what = "the unsubscribe pages only" if public_only else "staff console: log in with a `tendermatch users` account"
    click.echo(f"Serving {config.store_path} at {scheme}://{host}:{port}/ ({what}); Ctrl-C stops it", err=True)
    run_server(config, host=host, port=port, secret=secret, public_only=public_only)


@cli.command("hash-password")
@click.password_option(prompt="Staff password", help="Read from a prompt if not given.")
def hash_password(password: str) -> None:
    """Print a hash of the staff password for `tendermatch serve`: put it in the environment
    variable that [serve] password_hash_env names (never in the config file).

    Example: export TENDERMATCH_STAFF_PASSWORD_HASH="$(tendermatch hash-password)"
    """
    from ..serve import hash_password as make_hash

    if len(password) < 10:
        click.echo("Error: use at least 10 characters", err=True)
        sys.exit(2)
    click.echo(make_hash(password))


@cli.group()
def users() -> None:
    """The console's personal accounts: staff (everything, e-mail addresses included) and
    viewer (no personal data). Passwords are asked for at a prompt, or read from standard
    input with --password-stdin; never from the command line.

    Example: tendermatch users add anna --role staff
    """


def _read_password(from_stdin: bool) -> str:
    """A new password from one line of stdin, or from a prompt asked twice; exit 2 if too short."""
    from ...web.console.auth import MIN_PASSWORD_LENGTH

    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt="Repeat the password")
    if len(password) < MIN_PASSWORD_LENGTH:
        click.echo(f"Error: use at least {MIN_PASSWORD_LENGTH} characters", err=True)
        sys.exit(2)
    return password


_NAME = click.argument("name", metavar="NAME")
_STDIN = click.option("--password-stdin", is_flag=True, help="Read the password from the first line of standard"
                      " input (for scripts) instead of a prompt.")


@users.command("add")
@_NAME
@click.option("--role", type=click.Choice(["staff", "viewer"]), default="viewer", show_default=True,
              help="staff: every page and export, e-mail addresses and Datasette included; viewer: no personal data.")
@_STDIN
@pass_context
def users_add(context: Context, name: str, role: str, password_stdin: bool) -> None:
    """Create a console account NAME (letters, digits, '.', '-', '_', '@').

    Example: tendermatch users add anna@kk.dk --role staff
    """
    import re

    from ...web.console.auth import hash_password as make_hash

    if not re.fullmatch(r"[\w.@-]{1,64}", name):
        click.echo("Error: a user name is 1-64 letters, digits, '.', '-', '_' or '@'", err=True)
        sys.exit(2)
    password_hash = make_hash(_read_password(password_stdin))
    store = context.open_store()
    try:
        store.add_user(name, role=role, password_hash=password_hash)
    finally:
        store.close()
    click.echo(f"Added {role} {name}")


@users.command("list")
@click.option("--format", "output", type=click.Choice(["table", "json"]), default="table", show_default=True)
@pass_context
def users_list(context: Context, output: str) -> None:
    """Every console account: name, role, disabled or not, created, last login.

    Example: tendermatch users list --format json
    """
    store = context.open_store()
    rows = store.users()
    store.close()
    if output == "json":
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    echo_table([{**row, "disabled": "yes" if row["disabled"] else "", "last_login": row["last_login"] or ""}
                for row in rows], ("name", "role", "disabled", "created_at", "last_login"))
    click.echo(f"{len(rows)} users")


@users.command("disable")
@_NAME
@click.option("--enable", is_flag=True, help="Enable the account again instead.")
@pass_context
def users_disable(context: Context, name: str, enable: bool) -> None:
    """Disable a console account (its sessions end at once), or --enable it again.

    Example: tendermatch users disable anna
    """
    store = context.open_store()
    try:
        store.set_user_disabled(name, not enable)
    finally:
        store.close()
    click.echo(f"{'Enabled' if enable else 'Disabled'} {name}")


@users.command("set-password")
@_NAME
@_STDIN
@pass_context
def users_set_password(context: Context, name: str, password_stdin: bool) -> None:
    """Give a console account a new password (its sessions end: it logs in again).

    Example: tendermatch users set-password anna
    """
    from ...web.console.auth import hash_password as make_hash

    password_hash = make_hash(_read_password(password_stdin))
    store = context.open_store()
    try:
        store.set_user_password(name, password_hash)
    finally:
        store.close()
    click.echo(f"New password set for {name}")


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _setup_logging(level: str, log_file: Path | None, *, max_mb: float, backups: int) -> None:
    """One format to stderr and, if asked, to a rotating file. APScheduler's own INFO
    lines (job added, job running) are left out: the worker logs each job's start and end."""
    import logging
    from logging.handlers import RotatingFileHandler

    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file is not None:
        try:
            log_file.parent.mkdir(parents=True, exist_ok=True)
            handlers.append(RotatingFileHandler(log_file, maxBytes=int(max_mb * 1024 * 1024), backupCount=backups,
                                                encoding="utf-8"))
        except OSError as error:
            raise ConfigError(f"{log_file}: cannot write the log file: {error.strerror or error}") from None
    logging.basicConfig(level=level, format=LOG_FORMAT, handlers=handlers, force=True)
    logging.getLogger("apscheduler").setLevel(logging.WARNING if level != "DEBUG" else logging.DEBUG)


@cli.command()
@click.option("--log-level", type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
              help="[default: [worker] log_level, else INFO]")
@click.option("--log-file", type=click.Path(dir_okay=False, path_type=Path),
              help="Also log to this file, rotated [default: [worker] log_file].")
@pass_context
def run(context: Context, log_level: str | None, log_file: Path | None) -> None:
    """Run the worker until SIGTERM or Ctrl-C: crawl each enabled source on its schedule
    (each crawl in a child process, stopped at the source's timeout), match after every
    crawl that stored something new, and send the weekly digests on [digest] schedule.

    A run missed while the worker was stopped runs once when it starts. SIGHUP, or an edit
    of the config or a profile file, reloads them; a bad edit is refused (logged) and the
    running config is kept. One worker per store: a second one says so and exits 2.
    $TENDERMATCH_SECRET must be set (it signs the digests' unsubscribe links).

    Example: tendermatch --config /etc/tendermatch/tendermatch.toml run --log-level DEBUG
    """
    from ..scheduler import Worker, WorkerLocked

    config = context.config
    if config.path is None:
        raise ConfigError("tendermatch run needs a config file: give --config PATH (or set TENDERMATCH_CONFIG)")
    found = context.profile_set()
    jobs.check_can_send(config)
    level = (log_level or config.worker["log_level"]).upper()
    _setup_logging(level, log_file or config.worker["log_file"], max_mb=config.worker["log_max_mb"],
                   backups=config.worker["log_backups"])
    worker = Worker(config, found, db_override=context.db_option, profiles_override=context.profiles_option,
                    log_level=level)
    try:
        code = worker.run()
    except WorkerLocked as error:
        click.echo(f"Error: {error}", err=True)
        sys.exit(2)
    sys.exit(code)


def _run_counts(run: dict[str, Any]) -> str:
    """A run's main counts in a few words."""
    stats = run.get("stats") or {}
    if run["job"] == "match":
        return f"{stats.get('matches', 0)} matches, {stats.get('matched_notices', 0)} open notices" if stats else ""
    # The first two always, the rest when not zero: a line that fits a table cell.
    keys = ("planned", "sent", "failed", "pending") if run["job"] == "digest" else (
        "fetched", "new", "updated", "rejected", "errors")
    return ", ".join(f"{key} {stats[key]}" for index, key in enumerate(keys)
                     if key in stats and (index < 2 or stats[key]))


def _seconds(run: dict[str, Any]) -> float | None:
    from datetime import datetime

    if not run.get("finished"):
        return None
    return (datetime.fromisoformat(run["finished"]) - datetime.fromisoformat(run["started"])).total_seconds()


def _job_id(run: dict[str, Any]) -> str:
    return f"{run['job']}:{run['source']}" if run.get("source") else run["job"]


@cli.command()
@click.option("--job", "job_id", metavar="ID", help="Only this job: crawl:<source>, crawl (every source), match,"
              " digest, ingest or reparse.")
@click.option("--limit", default=50, show_default=True, help="The newest this many runs.")
@click.option("--format", "output", type=click.Choice(["table", "json"]), default="table", show_default=True)
@pass_context
def runs(context: Context, job_id: str | None, limit: int, output: str) -> None:
    """The run history: every crawl, match and digest run (by the worker or a command),
    newest first, with start, end, outcome, counts and error.

    Example: tendermatch runs --job crawl:kk-udbud --format json
    """
    job, _, source = (job_id or "").partition(":")
    store = context.open_store()
    rows = [parsed_run(row) for row in store.runs(limit=limit, job=job or None, source=source or None)]
    store.close()
    if output == "json":
        click.echo(json.dumps([{"id": row["id"], "job": _job_id(row), "started": row["started"],
                                "finished": row["finished"], "seconds": _seconds(row), "outcome": row["outcome"],
                                "stats": row["stats"], "error": row["error"], "pid": row["pid"]} for row in rows],
                              ensure_ascii=False, indent=2))
        return
    seconds = [_seconds(row) for row in rows]
    table = [{"id": str(row["id"]), "job": _job_id(row), "started": row["started"],
              "seconds": f"{taken:.1f}" if taken is not None else "", "outcome": row["outcome"],
              "counts": _run_counts(row), "error": row["error"] or ""}
             for row, taken in zip(rows, seconds, strict=True)]
    echo_table(table, ("id", "job", "started", "seconds", "outcome", "counts", "error"))
    click.echo(f"{len(rows)} runs")


def _local_time(value: str | None, timezone: str) -> str:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    if not value:
        return ""
    return datetime.fromisoformat(value).astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M %Z")


@cli.command()
@click.option("--format", "output", type=click.Choice(["table", "json"]), default="table", show_default=True)
@pass_context
def status(context: Context, output: str) -> None:
    """The worker (running or not), each job with its schedule, next run, last run and
    outcome, and the store's size and counts. With no worker running the jobs are those
    the config would schedule. A config file the running worker refused (it keeps its last
    good one) is reported, and the rest still shown.

    Example: tendermatch status
    """
    from ..config import store_path_only
    from ..scheduler import StoreLock, planned_jobs

    config: Config | None
    try:
        config = context.config
        store_path, config_error = config.store_path, None
    except ConfigError as error:
        # A running worker keeps its last good config: show it, with what is wrong now.
        found_path = Path(context.db_option) if context.db_option else store_path_only(config_path(
            context.config_option))
        if found_path is None:
            raise
        config, store_path, config_error = None, found_path, str(error)
    holder = StoreLock.holder(store_path)
    store = Store.open(store_path)
    state = store.worker_state() or {}
    job_rows = store.worker_jobs() if holder else planned_jobs(config) if config else []
    for job in job_rows:
        kind, _, source = job["id"].partition(":")
        found_runs = store.runs(limit=1, job=kind, source=source or None)
        last = found_runs[0] if found_runs else {}
        job["last_run"] = last.get("started")
        job["outcome"] = last.get("outcome")
        job["counts"] = _run_counts(parsed_run(last)) if last else ""
    counts = store.counts()
    size = store.size_bytes()
    store.close()
    found = context.profile_set() if config else None
    worker = {"running": holder is not None, "pid": holder if holder else None,
              "host": state.get("host"), "started": state.get("started") if holder else None,
              "config": state.get("config") if holder else str(config_path(context.config_option)),
              "config_loaded": state.get("config_loaded") if holder else None,
              "reload_error": state.get("reload_error") if holder else None,
              "config_error": config_error, "heartbeat": state.get("heartbeat"), "stopped": state.get("stopped")}
    summary = {"store": str(store_path), "size_bytes": size, "notices": counts["notices"],
               "profiles": len(found.profiles) if found else None,
               "invalid_profiles": len(found.errors) if found else None, "matches": counts["matches"],
               "deliveries": counts["deliveries"]}
    if output == "json":
        click.echo(json.dumps({"worker": worker, "jobs": job_rows, "store": summary}, ensure_ascii=False, indent=2))
        return
    zone = config.timezone if config else next((job["timezone"] for job in job_rows), "UTC")
    if holder:
        click.echo(f"worker: running (pid {holder} on {state.get('host') or '?'}, since"
                   f" {_local_time(state.get('started'), zone)}; config {state.get('config')} loaded"
                   f" {_local_time(state.get('config_loaded'), zone)})")
        if state.get("reload_error"):
            click.echo(f"  last reload refused, the running config is kept: {state['reload_error']}")
    else:
        stopped = f" (last stopped {_local_time(state['stopped'], zone)})" if state.get("stopped") else ""
        click.echo(f"worker: not running{stopped}" + (f"; jobs as {config.path} would schedule them" if config else ""))
    if config_error:
        click.echo(f"config: {config_error}", err=True)
    table = [{"job": job["id"], "schedule": job["schedule"], "next run": _local_time(job.get("next_run"), zone),
              "last run": _local_time(job["last_run"], zone), "outcome": job["outcome"] or "",
              "counts": job["counts"]} for job in job_rows]
    echo_table(table, ("job", "schedule", "next run", "last run", "outcome", "counts"))
    profiles = (f", {len(found.profiles)} profiles" + (f" ({len(found.errors)} invalid)" if found.errors else "")
                if found else "")
    click.echo(f"store: {store_path} ({size / 1024 / 1024:.1f} MB): {counts['notices']:,} notices{profiles},"
               f" {counts['matches']:,} matches, {counts['deliveries']:,} deliveries")
