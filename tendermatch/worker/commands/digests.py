"""Commands about digests: digest, deliveries, unsubscribe."""

from __future__ import annotations

import json
import os
import sys
from datetime import date
from pathlib import Path
from typing import Any

import click

from ...notifier.tokens import SecretError
from ...store import StoreError
from .. import jobs
from ..cli import (
    Context,
    cli,
    echo_table,
    pass_context,
    period_and_day,
    warn_profile_errors,
)
from ..config import SECRET_ENV


def _secret(*, required: bool) -> bytes:
    """The unsubscribe secret from the environment. A dry run or preview without one signs
    with a throwaway secret (its links will not work) and says so."""
    if required or os.environ.get(SECRET_ENV):
        return jobs.secret_from_env()
    click.echo(f"note: ${SECRET_ENV} is not set; the unsubscribe links shown are signed with a throwaway secret",
               err=True)
    return os.urandom(32)


def send_digests(context: Context, *, period: str, as_of: date, profile_id: str | None,
                 check_deadlines: bool = True, echo: Any = click.echo) -> Any:
    """Record this period's digests, then send every pending one; returns the report."""
    found = context.profile_set()
    warn_profile_errors(found)
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
    from ...notifier.run import digest_for, fit, plan_digests

    config = context.config
    day_period, day = period_and_day(period, as_of)
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
    warn_profile_errors(found)
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
    from ...notifier.tokens import TokenError, read_token

    try:
        profile_id, email = read_token(token, secret=_secret(required=True))
    except TokenError as error:
        click.echo(f"Error: invalid unsubscribe token: {error}", err=True)
        sys.exit(1)
    store = context.open_store()
    new = store.unsubscribe(profile_id, email, via="cli")
    store.close()
    click.echo(f"{email} {'unsubscribed from' if new else 'was already unsubscribed from'} {profile_id}'s digests")
