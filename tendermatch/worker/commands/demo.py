"""The `demo` command: the main job on the embedded default, with no network and no setup."""

from __future__ import annotations

import functools
from pathlib import Path

import click

from .. import jobs
from ..cli import (
    DEMO_CONFIG,
    Context,
    as_of_date,
    cli,
    period_and_day,
    print_stats,
    warn_profile_errors,
)
from ..config import SECRET_ENV, load_config
from ..profiles import ProfileSet


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
    found = Context(str(DEMO_CONFIG), str(store_path), None, config).profile_set()
    warn_profile_errors(found)
    period = period_and_day(None, as_of)[0]
    secret_made = jobs.ready_demo(config, secret_file=store_path.parent / "secret")
    if not keep:
        jobs.reset_demo(config)
    click.echo(f"tendermatch demo: crawling {len(config.sources)} bundled sources ({DEMO_CONFIG})")
    shown = functools.partial(_show, found=found, as_of=as_of, top=top, outbox=Path(config.digest["outbox"]))
    jobs.run_demo(config, found, as_of=as_of_date(as_of), period=period, show=shown)
    secret_prefix = f'{SECRET_ENV}="$(cat {store_path.parent / "secret"})" ' if secret_made else ""
    click.echo("")
    click.echo(f"Store:  {store_path}")
    click.echo(f"Browse: tendermatch --db {store_path} tenders")
    first_profile = found.profiles[0].id if found.profiles else "ID"
    click.echo(f"Log:    tendermatch --db {store_path} log --profile {first_profile}")
    click.echo(f"Sent:   tendermatch --db {store_path} deliveries")
    click.echo(f"Web:    {secret_prefix}tendermatch --config {_shown_path(DEMO_CONFIG)} --db {store_path} serve")


def _show(step: str, run: jobs.DemoRun, *, found: ProfileSet, as_of: str | None, top: int, outbox: Path) -> None:
    """Print what the demo has just done (``jobs.run_demo`` calls it after each step)."""
    if step == "crawled":
        for name, stats in run.crawled.items():
            print_stats(name, stats)
        _print_store(run)
    elif step == "matched":
        _print_matches(run, found, as_of=as_of, top=top)
    elif step == "digests" and run.digests is not None:
        from ...notifier.run import outbox_name

        click.echo(f"\nWeekly digests for {run.period} (no [smtp] in {DEMO_CONFIG.name}: written to the outbox):")
        for delivery in run.digests.sent:
            click.echo(f"  {outbox / (outbox_name(delivery) + '.eml')}")
        if not run.digests.sent:
            click.echo("  none new (each address already has this week's digest; run with --fresh to start over)")


def _print_store(result: jobs.DemoRun) -> None:
    counts, records = result.counts, list(result.notices.values())
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


def _print_matches(result: jobs.DemoRun, found: ProfileSet, *, as_of: str | None, top: int) -> None:
    match = result.match
    if match is None:
        return
    when = f"open on {as_of}" if as_of else "deadlines not checked"
    click.echo(f"\nMatched {match.stats['matched_notices']} notices ({when}) against {len(found.profiles)} sample"
               f" profiles: {match.stats['matches']} matches")
    for profile in found.profiles:
        mine = match.for_profile(profile.id)
        click.echo(f"\n{profile.name} ({profile.id}): {len(mine)} match{'' if len(mine) == 1 else 'es'}")
        for item in mine[:top]:
            title = " ".join(result.notices[item.notice_id]["title"].split())
            click.echo(f"  {item.rank}. [{item.score}] {title[:90]} ({item.notice_id})")
            for reason in item.reason_texts():
                click.echo(f"       + {' '.join(reason.split())}")
            for note in item.note_texts():
                click.echo(f"       ! {' '.join(note.split())}")


def _shown_path(path: Path) -> Path:
    """``path`` relative to the working directory where it is inside it (shorter to copy)."""
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path
