"""Commands that collect and show notices: ingest, crawl, tenders, sources, reparse."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from ...store.runs import parsed_run
from .. import jobs
from ..cli import (
    TABLE_COLUMNS,
    Context,
    check_date,
    cli,
    echo_table,
    pass_context,
    print_stats,
)


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
    print_stats(source, stats)
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
        print_stats(name, stats)
    if any(stats.troubled() for stats in results.values()):
        sys.exit(1)


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
        check_date(since, "--since")
    store = context.open_store()
    records = list(store.notices(since=since, notice_id=notice_id, kind=kind))
    store.close()
    if output == "json":
        click.echo(json.dumps(records, ensure_ascii=False, indent=2))
    else:
        echo_table(records, TABLE_COLUMNS)
        click.echo(f"{len(records)} notices")


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
        stats = parsed_run(last)["stats"] if last else {}
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
        print_stats(name, stats)
    click.echo(f"{store.counts()['notices']} notices rebuilt in {config.store_path}")
    store.close()
    if total_rejected:
        sys.exit(1)
