"""The `tendermatch` command: the only place that reads config, wires the stages and turns
errors into messages."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import click

from ..notifier.tokens import SecretError
from ..store import Store, StoreError
from .config import Config, ConfigError, config_path, load_config, parse_config
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


def print_stats(name: str, stats: Any) -> None:
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


TABLE_COLUMNS = ("id", "kind", "stage", "status", "deadline", "title", "buyer", "sources")


def _cell(record: Mapping[str, Any], column: str) -> str:
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


def echo_table(rows: Sequence[Mapping[str, Any]], columns: tuple[str, ...]) -> None:
    cells = [[_cell(row, column) for column in columns] for row in rows]
    widths = [max([len(column)] + [len(line[i]) for line in cells]) for i, column in enumerate(columns)]
    click.echo("  ".join(column.ljust(width) for column, width in zip(columns, widths, strict=False)).rstrip())
    click.echo("  ".join("-" * width for width in widths))
    for line in cells:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=False)).rstrip())


def check_date(value: str, option: str) -> None:
    try:
        date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)", param_hint=option) from None


def warn_profile_errors(found: ProfileSet) -> None:
    for line in found.errors:
        click.echo(f"skipped profile {line}", err=True)


def as_of_date(value: str | None, option: str = "--as-of") -> date | None:
    if value is None:
        return None
    check_date(value, option)
    return date.fromisoformat(value)


def period_and_day(period: str | None, as_of: str | None) -> tuple[str, date]:
    """The ISO week of --period (checked) or of --as-of/today, and the day the digests count from."""
    from ..notifier.digest import PeriodError, parse_period, period_of

    day = as_of_date(as_of) or date.today()
    if period is None:
        return period_of(day), day
    try:
        parse_period(period)
    except PeriodError as error:
        raise click.BadParameter(str(error), param_hint="--period") from None
    return period, day


def main() -> None:
    cli(prog_name="tendermatch")


# Each command module registers its commands on ``cli`` when imported: imported here, after
# everything they take from this module is defined, so ``cli`` is whole wherever it is used.
from .commands import demo, digests, matching, notices, service  # noqa: E402, F401

if __name__ == "__main__":
    main()
