"""Reading and validating the operator's TOML config. The only module that reads config files.

Relative paths in a config file are resolved against the folder the file is in, so the
worker behaves the same whatever directory it is started from.

Every key is declared once below with its help text; an unknown key, a missing one or a
bad value fails fast with the file, the source and what is wrong.

Over 500 lines on purpose: the settings registry (every key, its type, default and help,
from which the README's reference is made) and the checks on it belong together: one place
to add a key.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast
from urllib.parse import unquote, urlparse

from ..errors import TendermatchError
from ..localfiles import LocalFileError, check_kind, read_regular_file
from ..matcher.rules import DEFAULT_RATES, MIN_RELEVANCE
from .sections import CrawlerSection, DigestSection, MatcherSection, ServeSection, SmtpSection, WorkerSection

DEFAULT_CONFIG = Path("config/tendermatch.toml")
CONFIG_ENV = "TENDERMATCH_CONFIG"
SOURCE_KINDS = ("ted", "files", "html", "feed", "ocds")


class ConfigError(TendermatchError, ValueError):
    """Raised when a config file cannot be read or is invalid; the message is one line
    naming the file, the source or section, the key and what is wrong."""


@dataclass(frozen=True)
class Setting:
    """One config key: its type, default and help text (the README's reference is built from these)."""

    name: str
    type: type | tuple[type, ...]
    default: Any
    help: str
    kinds: tuple[str, ...] = SOURCE_KINDS  # for source keys: the kinds that take it
    required: bool = False
    minimum: float | None = None  # numbers: the smallest allowed value
    maximum: float | None = None  # numbers: the largest allowed value


SOURCE_SETTINGS: tuple[Setting, ...] = (
    Setting("name", str, None, "Unique name of the source; notices remember which sources delivered them.",
            required=True),
    Setting("kind", str, None, "One of: ted, files, html, feed, ocds.", required=True),
    Setting("url", str, None, "ted: API base (https://api.ted.europa.eu); html/feed/ocds: the page, feed or"
            " package URL; files: a file:// URL (or use path).", kinds=("ted", "html", "feed", "ocds", "files")),
    Setting("path", str, None, "files: a folder, file or glob of notice files (relative to this config file).",
            kinds=("files",)),
    Setting("urls", list, [], "html/feed/ocds: more pages of the same layout, fetched like url.",
            kinds=("html", "feed", "ocds")),
    Setting("query", str, None, "ted: an expert-search query, e.g. \"buyer-country IN (DNK)\".", kinds=("ted",)),
    Setting("fields", list, ["publication-number", "notice-title", "buyer-name", "publication-date", "links"],
            "ted: fields asked for in each search result.", kinds=("ted",)),
    Setting("limit", int, 100, "ted: notices per search page (1-250).", kinds=("ted",)),
    Setting("overlap_days", int, 1, "ted: days of overlap when asking only for notices since the last good run.",
            kinds=("ted",), minimum=0),
    Setting("schedule", str, "0 6 * * *", "When to crawl: a cron expression (minute hour day month weekday),"
            " in [worker] timezone."),
    Setting("timeout", int, 1800, "Seconds a crawl of this source may take before it is stopped.", minimum=1),
    Setting("enabled", bool, True, "false: keep the source in the config but never crawl it."),
    Setting("notice_kind", str, "tender", "html/feed: 'tender' for a tender page, 'agreement' for a page of"
            " supplier agreements.", kinds=("html", "feed")),
    Setting("selectors", dict, {}, "html: CSS selectors: row and title (required), link, deadline, buyer, supplier,"
            " valid_until, reference, value, cpv, description, published; detail_* for the detail page.",
            kinds=("html",)),
    Setting("detail", bool, False, "html: also fetch each row's linked detail page.", kinds=("html",)),
    Setting("max_pages", int, 50, "ocds: the most links.next pages to follow; ted: the most search pages.",
            kinds=("ocds", "ted"), minimum=1),
    Setting("obey_robots", bool, True, "Obey robots.txt (the TED API is an API endpoint and ignores this)."),
    Setting("allow_private_network", bool, False, "true: this source may also reach private, loopback and"
            " link-local addresses (an intranet source whose pages link to other intranet hosts). false: a link,"
            " redirect, next page or notice link whose host is, or resolves to, a non-public address is refused"
            " unfetched and recorded; the hosts and ports of url/urls themselves are always fetched.",
            kinds=("ted", "html", "feed", "ocds")),
)

CRAWLER_SETTINGS: tuple[Setting, ...] = (
    Setting("user_agent", str, "tendermatch/0.1 (public tender alerts for social-economy enterprises)",
            "User-Agent of every request: say who you are and how to reach you."),
    Setting("download_delay", float, 1.0, "Seconds between requests to one site (AutoThrottle adapts from here).",
            minimum=0),
    Setting("concurrent_requests_per_domain", int, 2, "Parallel requests to one site.", minimum=1),
    Setting("retry_times", int, 3, "Retries of a request that failed with 5xx, 408, 429 or a network error.",
            minimum=0),
    Setting("max_document_mb", (int, float), 20, "Documents larger than this are rejected unread.", minimum=0.001),
    Setting("retry_after_max", (int, float), 300, "The longest Retry-After (seconds) honoured before giving up.",
            minimum=0),
)

MATCHER_SETTINGS: tuple[Setting, ...] = (
    Setting("profiles", str, "profiles", "Folder of enterprise profiles (one <id>.toml each), relative to this"
            " config file; `tendermatch --profiles PATH` overrides it."),
    Setting("min_relevance", (int, float), MIN_RELEVANCE, "The text + CPV relevance (0-75) a lot needs to be sent;"
            " raise it for fewer, surer matches, lower it for more.", minimum=0),
    Setting("keep", int, 100, "The match log keeps each profile's best this many current matches (a weekly digest"
            " sends at most max_items of them); the rest are counted in the run, not stored.", minimum=1),
    Setting("rates", dict, DEFAULT_RATES,
            "DKK per unit of other currencies, to compare lot values with max_value (`[matcher.rates]`,"
            " merged over the defaults); a lot in a currency without a rate counts as value unknown."),
)

DIGEST_SETTINGS: tuple[Setting, ...] = (
    Setting("schedule", str, "0 7 * * 1", "When the worker sends the weekly digests: a cron expression in [worker]"
            " timezone (default Monday 07:00)."),
    Setting("sender", str, "Udbudsvagten <udbud@localhost>", "From address of the digests, with a display name;"
            " its mailbox also receives mailto unsubscribes."),
    Setting("base_url", str, "http://127.0.0.1:8001", "Public base URL of `tendermatch serve` (behind the"
            " reverse proxy): the one-click unsubscribe links point at <base_url>/unsubscribe. Use https."),
    Setting("outbox", str, "../var/outbox", "Without an [smtp] section, digests are written here as .eml files"
            " (relative to this config file)."),
    Setting("send_empty", bool, False, "true: a profile with no new matches gets a short \"nothing this week\""
            " note; false: no e-mail."),
    Setting("max_message_kb", int, 1024, "The largest digest e-mail, in KiB (a relay refuses a message over its"
            " own limit): a digest that would be bigger lists its best notices and says how many more come next"
            " week.", minimum=16),
)

SMTP_SETTINGS: tuple[Setting, ...] = (
    Setting("host", str, None, "SMTP server (relay) host name.", required=True),
    Setting("port", int, 25, "SMTP port (587 for starttls, 465 for ssl are usual).", minimum=1, maximum=65535),
    Setting("security", str, "none", "\"starttls\", \"ssl\" or \"none\" (none only on a trusted network or"
            " loopback)."),
    Setting("username_env", str, None, "Name of the environment variable holding the SMTP user name (never the"
            " value itself); unset means no login."),
    Setting("password_env", str, None, "Name of the environment variable holding the SMTP password."),
    Setting("timeout", (int, float), 30, "Seconds to wait for the server on each step.", minimum=1),
    Setting("retries", int, 3, "Retries of a message after a temporary failure (4xx, connection refused), waiting"
            " retry_delay seconds and doubling; then it waits for the next run.", minimum=0),
    Setting("retry_delay", (int, float), 2, "Seconds before the first retry.", minimum=0),
)

SERVE_SETTINGS: tuple[Setting, ...] = (
    Setting("host", str, "127.0.0.1", "Address `tendermatch serve` listens on. Keep the loopback address and let"
            " the municipality's reverse proxy (https) reach it; `--host` overrides it."),
    Setting("port", int, 8001, "Port of `tendermatch serve`; `--port` overrides it.", minimum=1, maximum=65535),
    Setting("title", str, "tendermatch: udbud og match", "Title at the top of every page of the web view."),
    Setting("password_hash_env", str, None, "The old shared login, for Datasette only: the name of the environment"
            " variable holding the staff password's hash (`tendermatch hash-password`); set, Datasette's pages also"
            " take that login (user name `staff`). The console always needs a personal account"
            " (`tendermatch users add`), which also opens Datasette to the staff role."),
    Setting("sql_time_limit_ms", int, 3000, "The longest a page's query may run before it is stopped.", minimum=100),
    Setting("session_hours", (int, float), 8, "Hours a console login lasts; then the user logs in again.",
            minimum=0.01),
    Setting("access_log_days", int, 180, "Days the access log keeps who opened which enterprise's page or exported"
            " personal data.", minimum=1),
    Setting("own_buyers", list, [], "The municipality's own buyers, by name as the notices give it (case-blind):"
            " the console's \"Ikke nået\" page lists their open tenders that reached no enterprise (empty: every"
            " buyer's)."),
    Setting("tls_certificate", str, None, "A PEM certificate file (relative to this config file): serve https"
            " itself, with tls_key. With it (or trusted_proxy) `serve` may listen on a non-loopback address."),
    Setting("tls_key", str, None, "The PEM private key of tls_certificate."),
    Setting("trusted_proxy", str, None, "Address of the reverse proxy that terminates https in front of `serve`"
            " (its X-Forwarded-For and X-Forwarded-Proto are believed, and login cookies are Secure). With it"
            " (or TLS) `serve` may listen on a non-loopback address."),
    Setting("datasette_without_login", bool, False, "Let anyone who reaches the port use the Datasette SQL view"
            " (e-mail addresses included) without a login: for a developer on loopback only; `serve` refuses"
            " it on any other address. The console pages always need a login."),
)

WORKER_SETTINGS: tuple[Setting, ...] = (
    Setting("timezone", str, "Europe/Copenhagen", "Time zone of every schedule (the sources' and [digest]'s)."),
    Setting("misfire_grace", int, 3600, "Seconds a job may start late (the machine was busy or asleep) and still"
            " run. A run missed while the worker was stopped runs once when it starts (not once per missed time).",
            minimum=1),
    Setting("stop_grace", (int, float), 30, "Seconds a crawl gets to close cleanly after SIGTERM (at its timeout, or"
            " when the worker stops) before it is killed; a stopping worker waits this long for running jobs.",
            minimum=0),
    Setting("watch", (int, float), 5, "Seconds between checks of this file and the profile files for changes, which"
            " are then reloaded as on SIGHUP (0: reload only on SIGHUP).", minimum=0),
    Setting("log_level", str, "INFO", "DEBUG, INFO, WARNING or ERROR; `tendermatch run --log-level` overrides it."),
    Setting("log_file", str, None, "Also log to this file (relative to this config file), rotated at log_max_mb;"
            " unset: stderr only (journald keeps it)."),
    Setting("log_max_mb", (int, float), 10, "Size at which the log file is rotated.", minimum=0.01),
    Setting("log_backups", int, 5, "Rotated log files kept (tendermatch.log.1, .2, ...).", minimum=0),
)
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")

SMTP_SECURITY = ("none", "starttls", "ssl")
SECRET_ENV = "TENDERMATCH_SECRET"  # signs the unsubscribe links

# What an html source's selectors may name: listing-row fields, and detail_* fields read
# from a row's detail page.
SELECTOR_KEYS = ("row", "title", "link", "deadline", "buyer", "supplier", "valid_until", "reference", "value",
                 "cpv", "description", "published", "detail_description", "detail_cpv", "detail_value",
                 "detail_deadline", "detail_reference", "detail_nuts", "detail_buyer", "detail_supplier",
                 "detail_valid_until", "detail_published")

ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
TOP_LEVEL = {"store", "crawler", "worker", "sources", "matcher", "digest", "smtp", "serve"}


@dataclass
class SourceConfig:
    """One configured source (see SOURCE_SETTINGS for each field's meaning)."""

    name: str
    kind: str
    url: str | None = None
    path: str | None = None
    urls: list[str] = field(default_factory=list)
    query: str | None = None
    fields: list[str] = field(default_factory=list)
    limit: int = 100
    overlap_days: int = 1
    schedule: str = "0 6 * * *"
    timeout: int = 1800
    enabled: bool = True
    notice_kind: str = "tender"
    selectors: dict[str, str] = field(default_factory=dict)
    detail: bool = False
    max_pages: int = 50
    obey_robots: bool = True
    allow_private_network: bool = False

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Config:
    """A validated config."""

    path: Path | None
    store_path: Path
    timezone: str = "Europe/Copenhagen"
    worker: WorkerSection = field(default_factory=lambda: cast(WorkerSection, {}))  # WORKER_SETTINGS
    crawler: CrawlerSection = field(default_factory=lambda: cast(CrawlerSection, {}))  # CRAWLER_SETTINGS
    sources: list[SourceConfig] = field(default_factory=list)
    matcher: MatcherSection = field(default_factory=lambda: cast(MatcherSection, {}))  # MATCHER_SETTINGS
    digest: DigestSection = field(default_factory=lambda: cast(DigestSection, {}))  # DIGEST_SETTINGS
    smtp: SmtpSection | None = None  # SMTP_SETTINGS, or None: write to the outbox
    serve: ServeSection = field(default_factory=lambda: cast(ServeSection, {}))  # SERVE_SETTINGS

    @property
    def max_bytes(self) -> int:
        """[crawler] max_document_mb in bytes."""
        return int(self.crawler["max_document_mb"] * 1024 * 1024)

    def source(self, name: str) -> SourceConfig:
        for source in self.sources:
            if source.name == name:
                return source
        known = ", ".join(s.name for s in self.sources) or "none"
        raise ConfigError(f"{self.path}: no source named {name!r} (configured: {known})")


def config_path(option: str | None) -> Path:
    """The config file to read: --config, else $TENDERMATCH_CONFIG, else config/tendermatch.toml."""
    return Path(option or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG)


def load_config(path: str | Path, *, db: str | None = None) -> Config:
    """Read and validate ``path``; ``db`` overrides the store path. Raises ConfigError."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: config file not found (give --config PATH or set {CONFIG_ENV})")
    try:
        text = read_regular_file(path).decode("utf-8")
    except LocalFileError as error:
        raise ConfigError(f"cannot read config: {error}") from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: cannot read config: {error}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: TOML syntax error: {error}") from None
    return parse_config(data, path=path, db=db)


def store_path_only(path: str | Path) -> Path | None:
    """The store a config file names, read leniently (for `status` when the file no longer
    validates); None if even that cannot be read."""
    path = Path(path)
    try:
        store = tomllib.loads(read_regular_file(path).decode("utf-8")).get("store", {})
        value = store.get("path", "../var/tendermatch.db") if isinstance(store, dict) else None
    except (LocalFileError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    return _resolve(path.parent, value) if isinstance(value, str) and value else None


def parse_config(data: dict[str, Any], *, path: Path | None, db: str | None = None) -> Config:
    """Validate already-parsed TOML."""
    where = str(path) if path else "<config>"
    base = path.parent if path else Path.cwd()
    unknown = sorted(set(data) - TOP_LEVEL)
    if unknown:
        raise ConfigError(f"{where}: unknown section or key {unknown[0]!r} (known: {', '.join(sorted(TOP_LEVEL))})")

    store = _table(data, "store", where)
    _check_keys(store, {"path"}, f"{where}: [store]")
    store_file = store.get("path", "../var/tendermatch.db")
    if not isinstance(store_file, str) or not store_file:
        raise ConfigError(f"{where}: [store] path must be a file path (a string), not {store_file!r}")
    store_path = Path(db) if db else _resolve(base, store_file)
    _check_kind(store_path, f"{where}: [store] path" if not db else "--db", file=True)

    worker = _parse_worker(_table(data, "worker", where), where=where, base=base)
    timezone = worker["timezone"]

    crawler_table = _table(data, "crawler", where)
    crawler = _apply_settings(crawler_table, CRAWLER_SETTINGS, f"{where}: [crawler]")

    raw_sources = data.get("sources", [])
    if not isinstance(raw_sources, list):
        raise ConfigError(f"{where}: 'sources' must be an array of tables ([[sources]])")
    sources: list[SourceConfig] = []
    for index, raw in enumerate(raw_sources, 1):
        sources.append(_parse_source(raw, index=index, where=where, base=base, timezone=timezone))
    names = [s.name for s in sources]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"{where}: source {duplicates[0]!r}: name is used by more than one source")
    matcher = _parse_matcher(_table(data, "matcher", where), where=where, base=base)
    digest = _parse_digest(_table(data, "digest", where), where=where, base=base, timezone=timezone)
    smtp = _parse_smtp(_table(data, "smtp", where), where=where) if "smtp" in data else None
    serve = _parse_serve(_table(data, "serve", where), where=where)
    # Each section has every key of its registry (defaults applied), so it is its typed dict.
    return Config(path=path, store_path=store_path, timezone=timezone, worker=cast(WorkerSection, worker),
                  crawler=cast(CrawlerSection, crawler), sources=sources, matcher=cast(MatcherSection, matcher),
                  digest=cast(DigestSection, digest), smtp=cast(SmtpSection | None, smtp),
                  serve=cast(ServeSection, serve))


def _parse_worker(table: dict[str, Any], *, where: str, base: Path) -> dict[str, Any]:
    label = f"{where}: [worker]"
    worker = _apply_settings(table, WORKER_SETTINGS, label)
    _check_timezone(worker["timezone"], f"{label} timezone")
    if worker["log_level"].upper() not in LOG_LEVELS:
        raise ConfigError(f"{label} log_level must be one of {', '.join(LOG_LEVELS)}, not {worker['log_level']!r}")
    worker["log_level"] = worker["log_level"].upper()
    if worker["log_file"] is not None:
        worker["log_file"] = _resolve(base, worker["log_file"])
        _check_kind(worker["log_file"], f"{label} log_file", file=True)
    return worker


def _parse_digest(table: dict[str, Any], *, where: str, base: Path, timezone: str) -> dict[str, Any]:
    from email.utils import getaddresses

    label = f"{where}: [digest]"
    digest = _apply_settings(table, DIGEST_SETTINGS, label)
    check_cron(digest["schedule"], f"{label} schedule", timezone=timezone)
    sender = digest["sender"]
    addresses = getaddresses([sender])
    if len(addresses) != 1 or "@" not in addresses[0][1] or any(ch in sender for ch in "\r\n"):
        raise ConfigError(f"{label} sender must be one address like \"Udbudsvagten <udbud@kk.example>\","
                          f" not {sender!r}")
    parsed = urlparse(digest["base_url"])
    if parsed.scheme not in ("http", "https") or not parsed.hostname or parsed.query or parsed.fragment:
        raise ConfigError(f"{label} base_url must be an http(s) URL like \"https://udbud.kk.example\","
                          f" not {digest['base_url']!r}")
    digest["outbox"] = _resolve(base, digest["outbox"])
    _check_kind(digest["outbox"], f"{label} outbox", folder=True)
    return digest


def _parse_serve(table: dict[str, Any], *, where: str) -> dict[str, Any]:
    label = f"{where}: [serve]"
    serve = _apply_settings(table, SERVE_SETTINGS, label)
    serve["own_buyers"] = list(serve["own_buyers"])
    if not all(isinstance(name, str) and name.strip() for name in serve["own_buyers"]):
        raise ConfigError(f"{label} own_buyers must be a list of buyer names (strings)")
    if bool(serve["tls_certificate"]) != bool(serve["tls_key"]):
        raise ConfigError(f"{label} tls_certificate and tls_key go together: give both or neither")
    name = serve["password_hash_env"]
    if name is not None and not ENV_NAME.fullmatch(name):
        raise ConfigError(f"{label} password_hash_env must name an environment variable (like"
                          f" TENDERMATCH_STAFF_PASSWORD_HASH), not hold the hash itself")
    return serve


def _parse_smtp(table: dict[str, Any], *, where: str) -> dict[str, Any]:
    label = f"{where}: [smtp]"
    for setting in SMTP_SETTINGS:
        if setting.required and setting.name not in table:
            raise ConfigError(f"{label}: missing key {setting.name!r} ({setting.help})")
    smtp = _apply_settings(table, SMTP_SETTINGS, label)
    if smtp["security"] not in SMTP_SECURITY:
        raise ConfigError(f"{label}: security must be one of {', '.join(SMTP_SECURITY)}, not {smtp['security']!r}")
    for key in ("username_env", "password_env"):
        name = smtp[key]
        if name is not None and not ENV_NAME.fullmatch(name):
            # The commonest mistake: the password itself in the config. Do not echo it.
            raise ConfigError(f"{label}: {key} must name an environment variable (like TENDERMATCH_SMTP_PASSWORD),"
                              f" not hold the secret itself")
    if smtp["password_env"] and not smtp["username_env"]:
        raise ConfigError(f"{label}: password_env is set but username_env is not")
    return smtp


def _parse_matcher(table: dict[str, Any], *, where: str, base: Path) -> dict[str, Any]:
    matcher = _apply_settings(table, MATCHER_SETTINGS, f"{where}: [matcher]")
    rates = dict(DEFAULT_RATES)
    for currency, rate in matcher["rates"].items():
        if not re.fullmatch(r"[A-Z]{3}", currency):
            raise ConfigError(f"{where}: [matcher.rates] {currency!r} is not a currency code like EUR")
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not rate > 0:
            raise ConfigError(f"{where}: [matcher.rates] {currency} must be a positive number of DKK, not {rate!r}")
        rates[currency] = float(rate)
    matcher["rates"] = rates
    matcher["profiles"] = _resolve(base, matcher["profiles"])
    _check_kind(matcher["profiles"], f"{where}: [matcher] profiles", folder=True, file=True)
    return matcher


def _table(data: dict[str, Any], name: str, where: str) -> dict[str, Any]:
    value = data.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: [{name}] must be a table")
    return value


def _check_keys(table: dict[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(known))})")


def _check_kind(path: Path, where: str, *, folder: bool = False, file: bool = False) -> None:
    """A ConfigError naming ``where`` when ``path`` exists and is not a folder or regular
    file as asked (``/dev/zero`` or a FIFO would be read for ever, or block)."""
    problem = check_kind(path, folder=folder, file=file)
    if problem:
        raise ConfigError(f"{where}: {path} {problem}")


def _resolve(base: Path, value: str) -> Path:
    path = Path(os.path.expanduser(value))
    return (path if path.is_absolute() else base / path).resolve()


def _type_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false", list: "an array",
             dict: "a table"}
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _check_type(value: Any, setting: Setting, where: str) -> Any:
    expected = setting.type if isinstance(setting.type, tuple) else (setting.type,)
    if isinstance(value, bool) and bool not in expected:
        ok = False
    elif float in expected and isinstance(value, int) and not isinstance(value, bool):
        ok = True
    else:
        ok = isinstance(value, expected)
    if not ok:
        raise ConfigError(f"{where}: {setting.name} must be {_type_name(setting.type)}, not {value!r}")
    if setting.minimum is not None and value < setting.minimum:
        raise ConfigError(f"{where}: {setting.name} must be at least {setting.minimum:g}, not {value!r}")
    if setting.maximum is not None and value > setting.maximum:
        raise ConfigError(f"{where}: {setting.name} must be at most {setting.maximum:g}, not {value!r}")
    if isinstance(value, list) and not all(isinstance(item, str) and item for item in value):
        raise ConfigError(f"{where}: {setting.name} must be an array of strings, not {value!r}")
    return value


def _apply_settings(table: dict[str, Any], settings: tuple[Setting, ...], where: str) -> dict[str, Any]:
    _check_keys(table, {s.name for s in settings}, where)
    return {s.name: _check_type(table[s.name], s, where) if s.name in table else s.default for s in settings}


def _parse_source(raw: Any, *, index: int, where: str, base: Path, timezone: str) -> SourceConfig:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: sources[{index}] must be a table")
    name = raw.get("name")
    label = f"{where}: source {name!r}" if isinstance(name, str) and name else f"{where}: sources[{index}]"
    known = {s.name: s for s in SOURCE_SETTINGS}
    for key in raw:
        if key not in known:
            raise ConfigError(f"{label}: unknown key {key!r} (known: {', '.join(known)})")
    for setting in SOURCE_SETTINGS:
        if setting.required and setting.name not in raw:
            raise ConfigError(f"{label}: missing key {setting.name!r} ({setting.help})")
    kind = raw["kind"]
    if kind not in SOURCE_KINDS:
        raise ConfigError(f"{label}: unknown kind {kind!r} (one of: {', '.join(SOURCE_KINDS)})")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.\-]*", str(name)):
        raise ConfigError(f"{label}: name must be letters, digits, '-', '_' or '.'")
    values: dict[str, Any] = {}
    for setting in SOURCE_SETTINGS:
        if setting.name in raw:
            if kind not in setting.kinds:
                raise ConfigError(f"{label}: key {setting.name!r} does not apply to kind {kind!r}")
            values[setting.name] = _check_type(raw[setting.name], setting, label)
        else:
            values[setting.name] = list(setting.default) if isinstance(setting.default, list) else setting.default
    source = SourceConfig(**values)
    if source.kind == "files":
        if not source.path and not source.url:
            raise ConfigError(f"{label}: missing key 'path' (a folder, file or glob of notice files)")
        if source.url:
            parsed = urlparse(source.url)
            if parsed.scheme != "file" or parsed.netloc not in ("", "localhost") or not parsed.path.startswith("/"):
                raise ConfigError(f"{label}: url of a files source must be an absolute file:/// URL,"
                                  f" not {source.url!r}")
            source.path, source.url = unquote(parsed.path), None
        source.path = str(_resolve(base, source.path or ""))
        if not any(ch in source.path for ch in "*?[") and not Path(source.path).exists():
            raise ConfigError(f"{label}: path {source.path} does not exist")
        _check_kind(Path(source.path), f"{label}: path", folder=True, file=True)
    else:
        if not source.url:
            raise ConfigError(f"{label}: missing key 'url'")
        for key, url in [("url", source.url), *((f"urls[{n}]", url) for n, url in enumerate(source.urls))]:
            parsed = urlparse(url)
            if parsed.scheme not in ("http", "https") or not parsed.hostname:
                raise ConfigError(f"{label}: {key} must be an http(s) URL with a host, not {url!r}")
    if source.kind == "ted":
        if not source.query:
            raise ConfigError(f"{label}: missing key 'query' (a TED expert-search query)")
        if not 1 <= source.limit <= 250:
            raise ConfigError(f"{label}: limit must be between 1 and 250 (the TED API's page limit)")
    if source.kind == "html":
        for needed in ("row", "title"):
            if not source.selectors.get(needed):
                raise ConfigError(f"{label}: selectors.{needed} is missing (a CSS selector)")
        for key, value in source.selectors.items():
            if key not in SELECTOR_KEYS:
                raise ConfigError(f"{label}: unknown selector {key!r} (known: {', '.join(SELECTOR_KEYS)})")
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(f"{label}: selectors.{key} must be a CSS selector (a string)")
    if source.notice_kind not in ("tender", "agreement"):
        raise ConfigError(f"{label}: notice_kind must be 'tender' or 'agreement', not {source.notice_kind!r}")
    if source.timeout <= 0:
        raise ConfigError(f"{label}: timeout must be a positive number of seconds")
    check_cron(source.schedule, f"{label}: schedule", timezone=timezone)
    return source


CRON_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def _cron_weekdays(field_text: str) -> str:
    """A crontab weekday field (0 or 7 = Sunday, names allowed) as APScheduler 3 names.

    APScheduler 3 reads weekday *numbers* with 0 = Monday (its from_crontab keeps that
    mistake: "0 7 * * 1" would fire on Tuesdays), so the field is expanded to names here."""
    def day(token: str) -> int:
        token = token.lower()
        if token[:3] in CRON_WEEKDAYS and not token.isdigit():
            return CRON_WEEKDAYS.index(token[:3])
        if token.isdigit() and 0 <= int(token) <= 7:
            return int(token) % 7 if int(token) != 7 else 7
        raise ValueError(f"{token!r} is not a weekday (0-7 or sun-sat)")

    days: set[int] = set()
    for part in field_text.split(","):
        span, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if step < 1:
            raise ValueError(f"step {step_text!r} must be at least 1")
        if span == "*":
            first, last = 0, 6
        elif "-" in span:
            first_text, _, last_text = span.partition("-")
            first, last = day(first_text), day(last_text)
        else:
            first = last = day(span)
            if step_text:  # "1/2": from 1 to the end of the week (7, as cronie reads it)
                last = 7
        if first > last:
            raise ValueError(f"range {span!r} runs backwards")
        days.update(number % 7 for number in range(first, last + 1, step))
    if len(days) == 7:
        return "*"
    return ",".join(CRON_WEEKDAYS[number] for number in sorted(days))


def cron_trigger(expression: str, *, timezone: str) -> Any:
    """An APScheduler CronTrigger from a crontab expression: 5 fields (minute hour day
    month weekday), or 6 with seconds first (for short test schedules). Weekdays count as
    in crontab: 0 or 7 is Sunday, 1 is Monday. Raises ValueError, also when both the day
    of the month and the weekday are restricted."""
    from apscheduler.triggers.cron import CronTrigger

    fields = expression.split()
    if len(fields) not in (5, 6):
        raise ValueError("a cron expression has 5 fields (minute hour day month weekday), or 6 with seconds first")
    second = fields.pop(0) if len(fields) == 6 else "0"
    minute, hour, day, month, weekday = fields
    if day != "*" and weekday != "*":
        # crontab fires when either matches, APScheduler only when both do: ask for one.
        raise ValueError("restrict the day of the month or the weekday, not both (cron programs disagree on"
                         " what both means)")
    return CronTrigger(second=second, minute=minute, hour=hour, day=day, month=month,
                       day_of_week=_cron_weekdays(weekday), timezone=timezone)


def check_cron(expression: str, where: str, *, timezone: str = "Europe/Copenhagen") -> None:
    """Raise ConfigError unless ``expression`` is a valid cron expression (see cron_trigger)."""
    if len(expression.split()) not in (5, 6):
        raise ConfigError(f"{where}: {expression!r} is not a cron expression (5 fields: minute hour day month"
                          f" weekday; or 6 with seconds first)")
    try:
        cron_trigger(expression, timezone=timezone)
    except ValueError as error:
        raise ConfigError(f"{where}: {expression!r} is not a valid cron expression: {error}") from None


def _check_timezone(name: str, where: str) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{where}: unknown time zone {name!r}") from None


def _toml_value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    if isinstance(value, (list, dict, str)):
        return f"`{json.dumps(value, ensure_ascii=False)}`"
    return f"`{value}`"


def settings_reference() -> str:
    """The [[sources]], [worker], [crawler], [matcher], [digest], [smtp] and [serve] keys as
    Markdown tables (the README embeds them; a test keeps the two the same)."""
    lines = ["`[[sources]]` (one table per source):", "", "| key | kinds | default | meaning |", "|---|---|---|---|"]
    for setting in SOURCE_SETTINGS:
        kinds = "all" if setting.kinds == SOURCE_KINDS else ", ".join(setting.kinds)
        default = "required" if setting.required else _toml_value(setting.default)
        lines.append(f"| `{setting.name}` | {kinds} | {default} | {setting.help} |")
    for title, settings in (("`[worker]` (`tendermatch run`: schedules, reloads, stopping, logging):",
                             WORKER_SETTINGS),
                            ("`[crawler]` (every source):", CRAWLER_SETTINGS),
                            ("`[matcher]` (matching notices to profiles):", MATCHER_SETTINGS),
                            ("`[digest]` (the weekly e-mails):", DIGEST_SETTINGS),
                            ("`[smtp]` (optional; without it digests go to the outbox folder):", SMTP_SETTINGS),
                            ("`[serve]` (`tendermatch serve`: the web view and the unsubscribe pages):",
                             SERVE_SETTINGS)):
        lines += ["", title, "", "| key | default | meaning |", "|---|---|---|"]
        for setting in settings:
            default = "required" if setting.required else _toml_value(setting.default)
            lines.append(f"| `{setting.name}` | {default} | {setting.help} |")
    return "\n".join(lines)
