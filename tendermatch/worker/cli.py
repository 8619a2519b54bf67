"""The `tendermatch` command: the only place that reads config, wires the stages and turns
errors into messages."""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import click

from ..matcher.profiles import keyword_problems, shown
from ..notifier.tokens import SecretError
from ..store import Store, StoreError
from . import jobs
from .config import SECRET_ENV, Config, ConfigError, config_path, load_config, parse_config
from .profiles import ProfileSet, load_profiles

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEMO_CONFIG = PROJECT_ROOT / "config" / "demo.toml"


@dataclass
class Context:
    config_option: str | None
    db_option: str | None
    profiles_option: str | None = None
    _config: Config | None = None

    @property
    def config(self) -> Config:
        """The validated config. Without a config file, --db alone is enough for the
        commands that need no sources (ingest, tenders, reparse of non-HTML documents)."""
        if self._config is None:
            path = config_path(self.config_option)
            explicit = self.config_option is not None or "TENDERMATCH_CONFIG" in os.environ
            if not path.exists() and not explicit:
                if not self.db_option:
                    raise ConfigError(f"{path}: no config file here; give --config PATH (or set"
                                      f" TENDERMATCH_CONFIG), or --db PATH for a store without sources")
                self._config = parse_config({}, path=None, db=self.db_option)
            else:
                self._config = load_config(path, db=self.db_option)
        return self._config

    def open_store(self) -> Store:
        return Store.open(self.config.store_path)

    def profile_set(self) -> ProfileSet:
        """The profiles of --profiles, else of [matcher] profiles."""
        return load_profiles(self.profiles_option or self.config.matcher["profiles"])


pass_context = click.make_pass_decorator(Context)


class CliGroup(click.Group):
    """Turns the project's own errors into one-line messages and exit code 2, and any other
    exception (a bug) into one line and exit code 1: no traceback reaches an operator
    (``TENDERMATCH_DEBUG=1`` shows it to a developer)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (ConfigError, StoreError, SecretError) as error:
            click.echo(f"Error: {error}", err=True)
            sys.exit(2)
        except (click.exceptions.Exit, click.ClickException, click.Abort, KeyboardInterrupt, SystemExit):
            raise
        except Exception as error:
            if os.environ.get("TENDERMATCH_DEBUG"):
                raise
            command = ctx.invoked_subcommand or "tendermatch"
            detail = str(error).splitlines()[0][:300] if str(error) else ""
            click.echo(f"Error: {command} stopped on an unexpected {type(error).__name__}: {detail}"
                       " (a bug; run with TENDERMATCH_DEBUG=1 for the traceback)", err=True)
            sys.exit(1)


@click.group(cls=CliGroup)
@click.option("--config", "config_option", metavar="PATH", help="Config file [default: config/tendermatch.toml,"
              " or $TENDERMATCH_CONFIG].")
@click.option("--db", "db_option", metavar="PATH", help="Store (SQLite file); overrides [store] path.")
@click.option("--profiles", "profiles_option", metavar="PATH", help="Profile folder (or one profile file);"
              " overrides [matcher] profiles.")
@click.version_option(package_name="tendermatch")
@click.pass_context
def cli(ctx: click.Context, config_option: str | None, db_option: str | None, profiles_option: str | None) -> None:
    """Collect public tenders and supplier agreements, match them to social-economy
    enterprises, and send each a weekly digest.

    Example: tendermatch demo
    """
    ctx.obj = Context(config_option, db_option, profiles_option)


def _print_stats(name: str, stats: Any) -> None:
    click.echo(f"{name}: {stats.summary()}")
    suspicion = stats.suspicion()
    if suspicion:
        click.echo(f"  suspicious: {suspicion}", err=True)
    for warning in stats.warnings:
        click.echo(f"  warning: {warning}")
    for line in stats.rejections[:50]:
        click.echo(f"  rejected {line}", err=True)
    if len(stats.rejections) > 50:
        click.echo(f"  ... and {len(stats.rejections) - 50} more (see the store's rejections table)", err=True)


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--source", default="ingest", show_default=True, help="Source name recorded with the notices.")
@pass_context
def ingest(context: Context, paths: tuple[Path, ...], source: str) -> None:
    """Parse local notice files or folders (any supported format, detected from the
    content) into the store through the same pipeline as a crawl.

    Exits 1 if any file was rejected (after storing the rest).

    Example: tendermatch ingest ../shared/corpus/eforms_sdk/examples/notices
    """
    started = time.monotonic()
    stats = jobs.ingest_paths(context.config, context.open_store(), list(paths), source=source)
    _print_stats(source, stats)
    click.echo(f"{stats.fetched} files in {time.monotonic() - started:.1f} s into {context.config.store_path}")
    if stats.troubled():
        sys.exit(1)


@cli.command()
@click.argument("sources", nargs=-1)
@pass_context
def crawl(context: Context, sources: tuple[str, ...]) -> None:
    """Run the configured spiders (all enabled sources by default), with a progress line
    and a summary per source. Exits 1 if anything was rejected or failed.

    Example: tendermatch crawl ted-dk kk-udbud
    """
    results = jobs.crawl_here(context.config, sources)
    for name, stats in results.items():
        _print_stats(name, stats)
    if any(stats.troubled() for stats in results.values()):
        sys.exit(1)


TABLE_COLUMNS = ("id", "kind", "stage", "status", "deadline", "title", "buyer", "sources")


def _cell(record: dict[str, Any], column: str) -> str:
    if column == "buyer":
        value = (record.get("buyer") or {}).get("name") or ""
    elif column == "sources":
        value = ",".join(record.get("sources", []))
    elif column == "deadline":
        value = (record.get("deadline") or record.get("valid_until") or "")[:16]
    else:
        value = record.get(column) or ""
    value = " ".join(str(value).split())  # crawled text: no newlines or tabs into the table
    return value if len(value) <= 48 else value[:47] + "…"


def echo_table(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> None:
    cells = [[_cell(row, column) for column in columns] for row in rows]
    widths = [max([len(column)] + [len(line[i]) for line in cells]) for i, column in enumerate(columns)]
    click.echo("  ".join(column.ljust(width) for column, width in zip(columns, widths, strict=False)).rstrip())
    click.echo("  ".join("-" * width for width in widths))
    for line in cells:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=False)).rstrip())


@cli.command()
@click.option("--format", "output", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--since", metavar="DATE", help="Only notices published on or after DATE (YYYY-MM-DD).")
@click.option("--id", "notice_id", metavar="ID", help="Only this notice.")
@click.option("--kind", type=click.Choice(["tender", "agreement"]), help="Only tenders or only agreements.")
@pass_context
def tenders(context: Context, output: str, since: str | None, notice_id: str | None, kind: str | None) -> None:
    """List stored notices; --format json prints records of notice.schema.json.

    Example: tendermatch tenders --format json --since 2026-11-01
    """
    if since:
        _check_date(since, "--since")
    store = context.open_store()
    records = list(store.notices(since=since, notice_id=notice_id, kind=kind))
    store.close()
    if output == "json":
        click.echo(json.dumps(records, ensure_ascii=False, indent=2))
    else:
        echo_table(records, TABLE_COLUMNS)
        click.echo(f"{len(records)} notices")


def _check_date(value: str, option: str) -> None:
    try:
        date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)", param_hint=option) from None


@cli.command()
@pass_context
def sources(context: Context) -> None:
    """Each configured source with its schedule and its last run.

    Example: tendermatch sources
    """
    config = context.config
    store = context.open_store()
    counts = store.source_counts()
    rows = []
    for source in config.sources:
        last = store.last_run(source.name)
        stats = _with_stats(last)["stats"] if last else {}
        rows.append({
            "name": source.name, "kind": source.kind, "schedule": source.schedule,
            "enabled": "yes" if source.enabled else "no",
            "last_run": (last or {}).get("started") or "never",
            "outcome": (last or {}).get("outcome") or "",
            "new": str(stats.get("new", "")), "rejected": str(stats.get("rejected", "")),
            "notices": str(counts.get(source.name, 0)),
        })
    store.close()
    echo_table(rows, ("name", "kind", "schedule", "enabled", "last_run", "outcome", "new", "rejected", "notices"))


@cli.command()
@pass_context
def reparse(context: Context) -> None:
    """Rebuild every parsed notice from the kept raw documents (after a parser fix),
    without crawling again.

    Example: tendermatch reparse
    """
    config = context.config
    store = context.open_store()
    results = jobs.reparse_store(config, store)
    total_rejected = 0
    for name, stats in results.items():
        total_rejected += stats.rejected + stats.errors
        _print_stats(name, stats)
    click.echo(f"{store.counts()['notices']} notices rebuilt in {config.store_path}")
    store.close()
    if total_rejected:
        sys.exit(1)


# -- profiles and matching -----------------------------------------------------------------


def _warn_profile_errors(found: ProfileSet) -> None:
    for line in found.errors:
        click.echo(f"skipped profile {line}", err=True)


@cli.group(invoke_without_command=True)
@click.pass_context
def profiles(ctx: click.Context) -> None:
    """The enterprise profiles: `list` (the default) or `validate`.

    Example: tendermatch --profiles config/profiles profiles validate
    """
    if ctx.invoked_subcommand is None:
        ctx.invoke(profiles_list)


@profiles.command("list")
@pass_context
def profiles_list(context: Context) -> None:
    """Each valid profile: what it matches on, where, and how large a lot it takes.
    Invalid profiles are reported on stderr and skipped.

    Example: tendermatch profiles list
    """
    found = context.profile_set()
    rows = [{
        "id": p.id, "name": p.name, "language": p.language, "keywords": str(len(p.keywords)),
        "cpv": ",".join(p.cpv), "regions": ",".join(p.regions) or "anywhere",
        "max_value": f"{p.max_value:,.0f}" if p.max_value else "", "reserved": ",".join(p.reserved_eligible),
        "emails": str(len(p.emails)),
    } for p in found.profiles]
    echo_table(rows, ("id", "name", "language", "keywords", "cpv", "regions", "max_value", "reserved", "emails"))
    click.echo(f"{len(found.profiles)} profiles in {found.path}")
    _warn_profile_errors(found)
    for line in found.warnings:
        click.echo(f"warning: {line}", err=True)


@profiles.command("validate")
@pass_context
def profiles_validate(context: Context) -> None:
    """Check every profile file; print one line per problem (file, key, what is wrong):
    an invalid value (skipped by match and digest), or a keyword that can never match
    (the profile is used without it). Exits 1 if there is any problem.

    Example: tendermatch --profiles config/profiles/maaltidsvaerkstedet.toml profiles validate
    """
    found = context.profile_set()
    for line in found.errors + found.warnings:
        click.echo(line)
    flagged = sum(1 for profile in found.profiles if keyword_problems(profile))
    click.echo(f"{len(found.profiles)} valid, {len(found.errors)} invalid"
               + (f", {flagged} with keywords that can never match" if flagged else "") + f" ({found.path})")
    if found.errors or found.warnings:
        sys.exit(1)


def _as_of(value: str | None, option: str = "--as-of") -> date | None:
    if value is None:
        return None
    _check_date(value, option)
    return date.fromisoformat(value)


@cli.command()
@click.option("--as-of", "as_of", metavar="DATE", help="Skip notices whose deadline is before DATE"
              " [default: today].")
@click.option("--profile", "profile_id", metavar="ID", help="Only this profile.")
@pass_context
def match(context: Context, as_of: str | None, profile_id: str | None) -> None:
    """Score the active notices against the profiles and write the match log. Running it
    again replaces those profiles' rows for those notices (never duplicates).

    Example: tendermatch match --as-of 2026-11-23 --profile maaltidsvaerkstedet
    """
    found = context.profile_set()
    _warn_profile_errors(found)
    if not found.profiles:
        raise ConfigError(f"{found.path}: no valid profiles to match")
    keywordless = [p for p in found.without_usable_keyword() if not profile_id or p.id == profile_id]
    for p in keywordless:
        click.echo(f"profile {p.id} ({p.source}): keywords: no usable keyword"
                   f" ({', '.join(shown(k, 20) for k in p.keywords[:5])}): "
                   + ("matched on its CPV codes only" if p.cpv else "it can match nothing (no CPV codes either)"),
                   err=True)
    store = context.open_store()
    result = jobs.run_match(context.config, store, found, as_of=_as_of(as_of) or date.today(),
                            profile_id=profile_id)
    store.close()
    stats = result.stats
    skipped = ", ".join(f"{n} {why}" for why, n in sorted(stats["skipped"].items())) or "none"
    click.echo(f"{stats['matched_notices']} of {stats['notices']} notices open on {stats['as_of']}"
               f" (not open: {skipped})")
    rows = []
    for profile_id_ in sorted({m.profile_id for m in result.matches} | {p.id for p in found.profiles
                                                                        if not profile_id or p.id == profile_id}):
        mine = result.for_profile(profile_id_)
        rows.append({"profile": profile_id_, "matches": str(len(mine)),
                     "best": str(mine[0].score) if mine else "", "top notice": mine[0].notice_id if mine else ""})
    echo_table(rows, ("profile", "matches", "best", "top notice"))
    beyond = stats["matches_found"] - stats["matches"]
    click.echo(f"{stats['matches']} matches written to the match log in {stats['seconds']} s (run {result.run_id})"
               + (f"; {beyond} more beyond each profile's best {context.config.matcher['keep']} not kept" if beyond
                  else ""))
    if found.errors or keywordless:
        click.echo(f"profiles: {len(found.errors)} skipped as invalid, {len(keywordless)} without a usable keyword"
                   " (see the lines above on stderr; `tendermatch profiles validate` lists every problem)")
    for line in result.unusable:  # the run lost these notices: it is partial, and says so
        click.echo(f"  not matched {line}", err=True)
    if result.unusable:
        sys.exit(1)


LOG_FIELDS = ("profile_id", "notice_id", "lot_id", "score", "rank", "reasons", "matched_at")


@cli.command()
@click.option("--profile", "profile_id", metavar="ID", help="Only this profile's matches.")
@click.option("--notice", "notice_id", metavar="ID", help="Only this notice: who it was matched for, and why.")
@click.option("--since", metavar="DATE", help="Only matches made on or after DATE (YYYY-MM-DD).")
@click.option("--format", "output", type=click.Choice(["table", "csv", "json"]), default="table",
              show_default=True)
@pass_context
def log(context: Context, profile_id: str | None, notice_id: str | None, since: str | None, output: str) -> None:
    """The match log: which notice was matched for which enterprise, its score, rank and
    the reasons.

    Example: tendermatch log --notice ted:095237-2016 --format csv
    """
    if since:
        _check_date(since, "--since")
    store = context.open_store()
    rows = store.match_log(profile_id=profile_id, notice_id=notice_id, since=since)
    store.close()
    items = [{key: row[key] for key in LOG_FIELDS} for row in rows]
    if output == "json":
        click.echo(json.dumps(items, ensure_ascii=False, indent=2))
    elif output == "csv":
        import csv

        writer = csv.DictWriter(sys.stdout, fieldnames=LOG_FIELDS, lineterminator="\n")
        writer.writeheader()
        for item in items:
            writer.writerow({**item, "reasons": " | ".join(item["reasons"])})
    else:
        table = [{**item, "score": str(item["score"]), "rank": str(item["rank"]),
                  "reasons": "; ".join(item["reasons"])} for item in items]
        echo_table(table, ("profile_id", "rank", "score", "notice_id", "lot_id", "matched_at", "reasons"))
        click.echo(f"{len(items)} matches")


# -- digests ------------------------------------------------------------------------------


def _secret(*, required: bool) -> bytes:
    """The unsubscribe secret from the environment. A dry run or preview without one signs
    with a throwaway secret (its links will not work) and says so."""
    if required or os.environ.get(SECRET_ENV):
        return jobs.secret_from_env()
    click.echo(f"note: ${SECRET_ENV} is not set; the unsubscribe links shown are signed with a throwaway secret",
               err=True)
    return os.urandom(32)


def _period_and_day(period: str | None, as_of: str | None) -> tuple[str, date]:
    from ..notifier.digest import PeriodError, parse_period, period_of

    day = _as_of(as_of) or date.today()
    if period is None:
        return period_of(day), day
    try:
        parse_period(period)
    except PeriodError as error:
        raise click.BadParameter(str(error), param_hint="--period") from None
    return period, day


def send_digests(context: Context, *, period: str, as_of: date, profile_id: str | None,
                 check_deadlines: bool = True, echo: Any = click.echo) -> Any:
    """Record this period's digests, then send every pending one; returns the report."""
    found = context.profile_set()
    _warn_profile_errors(found)
    return jobs.send_digests(context.config, found, period=period, as_of=as_of, profile_id=profile_id,
                             check_deadlines=check_deadlines, echo=echo)


@cli.command()
@click.option("--send", "mode", flag_value="send", help="Record and send the digests.")
@click.option("--dry-run", "mode", flag_value="dry-run", help="Print what would be sent; change nothing.")
@click.option("--period", metavar="YYYY-Www", help="The ISO week, e.g. 2026-W48 [default: the week of --as-of].")
@click.option("--profile", "profile_id", metavar="ID", help="Only this profile.")
@click.option("--as-of", "as_of", metavar="DATE", help="Leave out notices whose deadline is before DATE, and count"
              " days left from it [default: today].")
@click.option("--preview", "preview", metavar="PROFILE", help="Write PROFILE's next digest as HTML, text and .eml"
              " into --out, without recording or sending it.")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), help="Folder for --preview.")
@pass_context
def digest(context: Context, mode: str | None, period: str | None, profile_id: str | None, as_of: str | None,
           preview: str | None, out: Path | None) -> None:
    """The weekly digest e-mails: each profile's matches not sent before, best first.

    Without --send nothing is sent: a dry run prints each digest that is due. Naming a
    --period means you are about to send, so it needs --send or --dry-run. --send records
    each digest before sending it and sends every digest still pending from an earlier run,
    so a rerun (after a crash, or the same week again) never sends an address two digests.
    Without [smtp] in the config the messages are written to [digest] outbox.

    Example: tendermatch digest --send --period 2026-W48
    """
    from ..notifier.run import digest_for, fit, plan_digests

    config = context.config
    day_period, day = _period_and_day(period, as_of)
    if preview:
        if out is None:
            raise click.UsageError("--preview needs --out DIR")
        found = context.profile_set()
        recipient = jobs.recipients(found, preview)[0]
        store = context.open_store()
        try:  # what --send would make of it, cut to [digest] max_message_kb as sending cuts it
            built = digest_for(store, recipient, period=day_period, as_of=day, settings=jobs.digest_settings(config))
            built, (_, _, message, html, text) = fit(built, to=recipient.emails[0], secret=_secret(required=False),
                                                     settings=jobs.digest_settings(config))
        except (StoreError, SecretError):
            raise
        except Exception as error:
            click.echo(f"Error: {recipient.profile_id} <{recipient.emails[0]}>: the digest could not be made:"
                       f" {' '.join(str(error).split()) or type(error).__name__}", err=True)
            sys.exit(1)
        finally:
            store.close()
        out.mkdir(parents=True, exist_ok=True)
        for suffix, content in ((".html", html.encode()), (".txt", text.encode()), (".eml", message)):
            target = out / f"{recipient.profile_id}-{day_period}{suffix}"
            target.write_bytes(content)
            click.echo(str(target))
        click.echo(f"{built.new_count} new, {built.changed_count} changed ({built.more} more left for later)")
        return
    if mode is None and period is not None:
        raise click.UsageError("--period names a week to send: add --send, or --dry-run to see what would be sent")
    if mode == "send":
        report = send_digests(context, period=day_period, as_of=day, profile_id=profile_id)
        if report.failed or report.pending:
            sys.exit(1)
        return
    found = context.profile_set()
    _warn_profile_errors(found)
    store = context.open_store()
    planned = plan_digests(store, jobs.recipients(found, profile_id), period=day_period, as_of=day,
                           settings=jobs.digest_settings(config), secret=_secret(required=False), record=False)
    store.close()
    rows = [{"profile": plan.profile_id, "to": plan.email, "language": plan.language, "new": str(plan.items),
             "changed": str(plan.changed), "subject": plan.subject} for plan in planned if not plan.error]
    echo_table(rows, ("profile", "to", "language", "new", "changed", "subject"))
    unmade = [plan for plan in planned if plan.error]
    for plan in unmade:
        click.echo(f"  would fail: {plan.profile_id} <{plan.email}>: {plan.error}", err=True)
    click.echo(f"dry run: {len(rows)} digests for {day_period} would be sent (as of {day}); nothing recorded or"
               f" sent (add --send)")
    if unmade:
        sys.exit(1)


DELIVERY_FIELDS = ("id", "period", "profile_id", "email", "state", "items", "changed", "subject", "message_id",
                   "created_at", "sent_at", "attempts", "error")


@cli.command()
@click.option("--period", metavar="YYYY-Www", help="Only this week.")
@click.option("--profile", "profile_id", metavar="ID", help="Only this profile.")
@click.option("--state", type=click.Choice(["pending", "sent", "failed"]), help="Only deliveries in this state.")
@click.option("--format", "output", type=click.Choice(["table", "json"]), default="table", show_default=True)
@pass_context
def deliveries(context: Context, period: str | None, profile_id: str | None, state: str | None, output: str) -> None:
    """The digests recorded: to whom, for which week, how many notices, when sent, and
    their state (pending, sent, failed with the server's answer).

    Example: tendermatch deliveries --period 2026-W48 --format json
    """
    store = context.open_store()
    rows = store.deliveries(period=period, profile_id=profile_id, state=state)
    if output == "json":
        for row in rows:
            row["notices"] = [item["notice_id"] for item in store.delivery_items(row["id"])]
        click.echo(json.dumps([{key: row[key] for key in (*DELIVERY_FIELDS, "notices")} for row in rows],
                              ensure_ascii=False, indent=2))
    else:
        table = [{**row, "id": str(row["id"]), "items": str(row["items"]), "changed": str(row["changed"]),
                  "sent_at": row["sent_at"] or "", "error": row["error"] or ""} for row in rows]
        echo_table(table, ("id", "period", "profile_id", "email", "state", "items", "changed", "sent_at", "error"))
        click.echo(f"{len(rows)} deliveries")
    store.close()


@cli.command()
@click.argument("token")
@pass_context
def unsubscribe(context: Context, token: str) -> None:
    """Unsubscribe the address a token names (the token from a digest's unsubscribe link
    or a mailto request) from its profile's digests. Exits 1 for an invalid token.

    Example: tendermatch unsubscribe u1.bWFhbHRpZHN2...
    """
    from ..notifier.tokens import TokenError, read_token

    try:
        profile_id, email = read_token(token, secret=_secret(required=True))
    except TokenError as error:
        click.echo(f"Error: invalid unsubscribe token: {error}", err=True)
        sys.exit(1)
    store = context.open_store()
    new = store.unsubscribe(profile_id, email, via="cli")
    store.close()
    click.echo(f"{email} {'unsubscribed from' if new else 'was already unsubscribed from'} {profile_id}'s digests")


# -- the web view ---------------------------------------------------------------------------


@cli.command()
@click.option("--host", help="Address to listen on [default: [serve] host, else 127.0.0.1].")
@click.option("--port", type=click.IntRange(1, 65535), help="Port [default: [serve] port, else 8001].")
@pass_context
def serve(context: Context, host: str | None, port: int | None) -> None:
    """Serve the store read-only in a browser for procurement staff (Datasette): the match
    log, who was told about each notice and why, deliveries, open tenders that reached no
    enterprise, agreements ending within 12 months, run history, and full-text search.
    The same server answers the digests' one-click unsubscribe links (/unsubscribe).

    $TENDERMATCH_SECRET must be the one the digests were signed with. With [serve]
    password_hash_env set, every page but /unsubscribe needs the staff login.

    Example: tendermatch serve --port 8001
    """
    from .serve import check_can_serve
    from .serve import serve as run_server

    config = context.config
    host = host or config.serve["host"]
    port = port or config.serve["port"]
    secret = check_can_serve(config)
    _setup_logging(config.worker["log_level"], None, max_mb=0, backups=0)
    protected = "staff login required" if config.serve["password_hash_env"] else "no login (loopback only!)"
    click.echo(f"Serving {config.store_path} at http://{host}:{port}/ ({protected}); Ctrl-C stops it", err=True)
    run_server(config, host=host, port=port, secret=secret)


@cli.command("hash-password")
@click.password_option(prompt="Staff password", help="Read from a prompt if not given.")
def hash_password(password: str) -> None:
    """Print a hash of the staff password for `tendermatch serve`: put it in the environment
    variable that [serve] password_hash_env names (never in the config file).

    Example: export TENDERMATCH_STAFF_PASSWORD_HASH="$(tendermatch hash-password)"
    """
    from .serve import hash_password as make_hash

    if len(password) < 10:
        click.echo("Error: use at least 10 characters", err=True)
        sys.exit(2)
    click.echo(make_hash(password))


# -- the worker -----------------------------------------------------------------------------


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
    from .scheduler import Worker, WorkerLocked

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


def _with_stats(run: dict[str, Any]) -> dict[str, Any]:
    """A runs row with its stats JSON read."""
    return {**run, "stats": json.loads(run["stats"]) if run.get("stats") else {}}


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
    rows = [_with_stats(row) for row in store.runs(limit=limit, job=job or None, source=source or None)]
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
    from .config import store_path_only
    from .scheduler import StoreLock, planned_jobs

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
        job["counts"] = _run_counts(_with_stats(last)) if last else ""
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


@cli.command()
@click.option("--state-dir", type=click.Path(path_type=Path), help="Where the demo keeps its store"
              " [default: the store path in config/demo.toml].")
@click.option("--keep/--fresh", default=False, help="Keep the previous demo store (default: start fresh).")
@click.option("--as-of", "as_of", metavar="DATE", help="Match only notices open on DATE [default: ignore"
              " deadlines: the bundled notices are from 2016-2025].")
@click.option("--top", default=3, show_default=True, help="Matches shown per profile.")
def demo(state_dir: Path | None, keep: bool, as_of: str | None, top: int) -> None:
    """Run the main job on the embedded default: crawl the bundled sample of real notices
    with Scrapy (files sources), no network and no setup, match them against the sample
    enterprise profiles (config/profiles) and print each one's best matches and why.
    It ignores --config, --db and --profiles: its store is in --state-dir (default var/demo).

    Example: tendermatch demo
    """
    # The demo keeps to its own state folder (never the operator's --db), so starting it
    # fresh can only ever delete a demo store.
    config = load_config(DEMO_CONFIG, db=str(state_dir / "tendermatch.db") if state_dir else None)
    store_path = config.store_path
    if state_dir:
        config.digest["outbox"] = state_dir.resolve() / "outbox"
    outbox = Path(config.digest["outbox"])
    if not keep:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{store_path}{suffix}").unlink(missing_ok=True)
        for old_message in outbox.glob("*.eml"):
            old_message.unlink()
    click.echo(f"tendermatch demo: crawling {len(config.sources)} bundled sources ({DEMO_CONFIG})")
    results = jobs.crawl_here(config)
    for name, stats in results.items():
        _print_stats(name, stats)
    store = Store.open(store_path)
    counts = store.counts()
    records = list(store.notices())
    store.close()
    by_stage: dict[str, int] = {}
    for record in records:
        by_stage[record["stage"]] = by_stage.get(record["stage"], 0) + 1
    click.echo("")
    click.echo(f"Stored {counts['notices']} notices ({counts['lots']} lots) from {counts['raw_documents']} documents:"
               f" " + ", ".join(f"{n} {stage}" for stage, n in sorted(by_stage.items())))
    reserved = sum(1 for r in records if r["reserved"])
    social = sum(1 for r in records if r["social"])
    click.echo(f"  {reserved} reserved for sheltered workshops / public-service missions,"
               f" {social} with social considerations")

    demo_context = Context(str(DEMO_CONFIG), str(store_path), None, config)
    found = demo_context.profile_set()
    _warn_profile_errors(found)
    store = Store.open(store_path)
    result = jobs.run_match(config, store, found, as_of=_as_of(as_of))
    store.close()
    when = f"open on {as_of}" if as_of else "deadlines not checked"
    click.echo(f"\nMatched {result.stats['matched_notices']} notices ({when}) against {len(found.profiles)} sample"
               f" profiles: {result.stats['matches']} matches")
    for profile in found.profiles:
        mine = result.for_profile(profile.id)
        click.echo(f"\n{profile.name} ({profile.id}): {len(mine)} match{'' if len(mine) == 1 else 'es'}")
        for item in mine[:top]:
            record = next(r for r in records if r["id"] == item.notice_id)
            title = " ".join(record["title"].split())
            click.echo(f"  {item.rank}. [{item.score}] {title[:90]} ({item.notice_id})")
            for reason in item.reason_texts():
                click.echo(f"       + {' '.join(reason.split())}")
            for note in item.note_texts():
                click.echo(f"       ! {' '.join(note.split())}")

    from ..notifier.run import outbox_name

    # The weekly digests, into the outbox: the demo signs its unsubscribe links with a
    # secret of its own, kept in its state folder, unless $TENDERMATCH_SECRET is set.
    secret_prefix = ""
    if not os.environ.get(SECRET_ENV):
        os.environ[SECRET_ENV] = _demo_secret(store_path.parent / "secret")
        secret_prefix = f'{SECRET_ENV}="$(cat {store_path.parent / "secret"})" '
    period = _period_and_day(None, as_of)[0]
    click.echo(f"\nWeekly digests for {period} (no [smtp] in {DEMO_CONFIG.name}: written to the outbox):")
    report = send_digests(demo_context, period=period, as_of=_as_of(as_of) or date.today(), profile_id=None,
                          check_deadlines=as_of is not None, echo=lambda line: None)
    for delivery in report.sent:
        click.echo(f"  {outbox / (outbox_name(delivery) + '.eml')}")
    if not report.sent:
        click.echo("  none new (each address already has this week's digest; run with --fresh to start over)")
    click.echo("")
    click.echo(f"Store:  {store_path}")
    click.echo(f"Browse: tendermatch --db {store_path} tenders")
    first_profile = found.profiles[0].id if found.profiles else "ID"
    click.echo(f"Log:    tendermatch --db {store_path} log --profile {first_profile}")
    click.echo(f"Sent:   tendermatch --db {store_path} deliveries")
    click.echo(f"Web:    {secret_prefix}tendermatch --config {_shown_path(DEMO_CONFIG)} --db {store_path} serve")


def _shown_path(path: Path) -> Path:
    """``path`` relative to the working directory where it is inside it (shorter to copy)."""
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path


def _demo_secret(path: Path) -> str:
    """The demo's own unsubscribe secret: made once, readable only by its owner."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(handle, "w") as file:
            file.write(os.urandom(32).hex())
    return path.read_text().strip()


def main() -> None:
    cli(prog_name="tendermatch")


if __name__ == "__main__":
    main()
