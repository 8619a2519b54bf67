"""The `demo` command: the main job on the embedded default, with no network and no setup."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import click

from ...store import Store
from .. import jobs
from ..cli import (
    DEMO_CONFIG,
    Context,
    as_of_date,
    cli,
    print_stats,
    warn_profile_errors,
)
from ..config import SECRET_ENV, load_config
from .digests import period_and_day, send_digests


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
        print_stats(name, stats)
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
    warn_profile_errors(found)
    store = Store.open(store_path)
    result = jobs.run_match(config, store, found, as_of=as_of_date(as_of))
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

    from ...notifier.run import outbox_name

    # The weekly digests, into the outbox: the demo signs its unsubscribe links with a
    # secret of its own, kept in its state folder, unless $TENDERMATCH_SECRET is set.
    secret_prefix = ""
    if not os.environ.get(SECRET_ENV):
        os.environ[SECRET_ENV] = _demo_secret(store_path.parent / "secret")
        secret_prefix = f'{SECRET_ENV}="$(cat {store_path.parent / "secret"})" '
    period = period_and_day(None, as_of)[0]
    click.echo(f"\nWeekly digests for {period} (no [smtp] in {DEMO_CONFIG.name}: written to the outbox):")
    report = send_digests(demo_context, period=period, as_of=as_of_date(as_of) or date.today(), profile_id=None,
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
