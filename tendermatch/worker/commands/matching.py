"""Commands about profiles and matching: profiles, match, log."""

from __future__ import annotations

import json
import sys
from datetime import date

import click

from ...matcher.profiles import keyword_problems, shown
from .. import jobs
from ..cli import (
    Context,
    as_of_date,
    check_date,
    cli,
    echo_table,
    pass_context,
    warn_profile_errors,
)
from ..config import ConfigError


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
    warn_profile_errors(found)
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
    warn_profile_errors(found)
    if not found.profiles:
        raise ConfigError(f"{found.path}: no valid profiles to match")
    keywordless = [p for p in found.without_usable_keyword() if not profile_id or p.id == profile_id]
    for p in keywordless:
        click.echo(f"profile {p.id} ({p.source}): keywords: no usable keyword"
                   f" ({', '.join(shown(k, 20) for k in p.keywords[:5])}): "
                   + ("matched on its CPV codes only" if p.cpv else "it can match nothing (no CPV codes either)"),
                   err=True)
    store = context.open_store()
    result = jobs.run_match(context.config, store, found, as_of=as_of_date(as_of) or date.today(),
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
        check_date(since, "--since")
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
