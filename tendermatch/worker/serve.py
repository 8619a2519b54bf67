"""`tendermatch serve`: Datasette over the store, with the project's metadata and the
unsubscribe plugin, behind uvicorn. The wiring only; what is shown lives in ``web``."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import os
import re
import sqlite3
import warnings
from typing import TYPE_CHECKING, Any

from .config import Config, ConfigError
from .jobs import secret_from_env

if TYPE_CHECKING:
    from ..web.limits import WebLimits

logger = logging.getLogger("tendermatch.serve")

# datasette-auth-passwords' format: pbkdf2_sha256$<iterations>$<salt>$<base64 hash>
PASSWORD_HASH = re.compile(r"pbkdf2_sha256\$\d+\$[^$]+\$[A-Za-z0-9+/=]+")


def staff_password_hash(config: Config) -> str | None:
    """The staff password's hash from the variable ``[serve] password_hash_env`` names,
    None when protection is off; a ConfigError (never echoing the value) if unusable."""
    name = config.serve["password_hash_env"]
    if not name:
        return None
    value = os.environ.get(name, "").strip()
    if not value:
        raise ConfigError(f"{config.path}: [serve] password_hash_env names ${name}, which is not set"
                          f" (make a hash with `tendermatch hash-password`)")
    if not PASSWORD_HASH.fullmatch(value):
        raise ConfigError(f"{config.path}: [serve] password_hash_env names ${name}, which does not hold a"
                          f" password hash (pbkdf2_sha256$...): make one with `tendermatch hash-password`")
    return value


def hash_password(password: str) -> str:
    """A hash of ``password`` for ``[serve] password_hash_env``."""
    from datasette_auth_passwords.utils import hash_password as _hash

    return _hash(password)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def build_datasette(config: Config, *, secret: bytes) -> Any:
    """A Datasette for the config's store: read-only, the project's metadata, and the
    plugin that answers /unsubscribe with tokens signed by ``secret``."""
    from datasette.app import Datasette
    from datasette.plugins import pm

    from ..notifier.tokens import read_token
    from ..web.plugin import TendermatchPlugin
    from ..web.queries import metadata

    protected = bool(config.serve["password_hash_env"])  # its variable was checked by check_can_serve
    store_path = config.store_path
    # Absolute links and redirects point at the URL the digests' unsubscribe links use
    # ([digest] base_url), never at the Host a request names.
    plugin = TendermatchPlugin(store_path=store_path, read_token=lambda token: read_token(token, secret=secret),
                               protected=protected, timezone_name=config.timezone,
                               public_url=config.digest["base_url"], limits=web_limits(config))
    if pm.has_plugin(name=plugin.__name__):  # a second Datasette in one process (tests)
        pm.unregister(name=plugin.__name__)
    pm.register(plugin, name=plugin.__name__)
    # The plugin answers every error page; Datasette's default handler would also print
    # a traceback for each one, a bad parameter included.
    if pm.has_plugin(name="datasette.handle_exception"):
        pm.unregister(name="datasette.handle_exception")
    # Datasette turns sqlite3's callback tracebacks on; the view's guards refuse a costly
    # SQL function call by raising in it, which the page reports (a 400), not the log.
    sqlite3.enable_callback_tracebacks(False)
    # When one facet fails Datasette leaves the others' coroutines unawaited: a two-line
    # warning per request that says nothing the page's 400 does not.
    warnings.filterwarnings("ignore", message="coroutine .* was never awaited", category=RuntimeWarning)
    if not protected:
        # No accounts: no "Log in" menu entry or login page that could never succeed.
        for name, registered in pm.list_name_plugin():
            if getattr(registered, "__name__", "") == "datasette_auth_passwords":
                pm.unregister(name=name)
    serve = config.serve
    return Datasette(
        [str(store_path)],
        metadata=metadata(database=store_path.stem, title=serve["title"],
                          password_hash_env=serve["password_hash_env"]),
        settings={
            "sql_time_limit_ms": serve["sql_time_limit_ms"],
            "default_page_size": 100,
            "max_returned_rows": 1000,
            "allow_download": False,  # the file holds pending e-mails and addresses: not one click away
            "truncate_cells_html": 1000,  # reasons are read whole; a record JSON is cut
            "suggest_facets": False,  # facet suggestions query every column of big tables on each page
        },
        # Cookies (the staff login) are signed with a key derived from the unsubscribe
        # secret, so a login survives a restart and no second secret is needed.
        secret=hmac.new(secret, b"tendermatch-web-cookies", hashlib.sha256).hexdigest(),
    )


def web_limits(config: Config) -> WebLimits:
    """The web view's caps, the value cap raised to fit the largest document the crawler
    may store (a stored value over it could not even be read), and SQLite's heap with it."""
    from ..web.limits import MiB, WebLimits

    defaults = WebLimits()
    max_value = max(defaults.max_value_bytes, config.max_bytes + MiB)  # zstd adds a little to incompressible bytes
    hard_heap = max(defaults.hard_heap_bytes, 2 * max_value + 32 * MiB)
    return WebLimits(max_value_bytes=max_value, hard_heap_bytes=hard_heap,
                     soft_heap_bytes=max(defaults.soft_heap_bytes, hard_heap // 2))


def check_can_serve(config: Config) -> bytes:
    """The unsubscribe secret, after checking the staff password's hash if one is
    configured: a SecretError or ConfigError names what is missing, before anything starts."""
    secret = secret_from_env()
    staff_password_hash(config)
    return secret


def check_can_listen(config: Config, *, host: str, public_only: bool) -> None:
    """A ConfigError (one line) when the staff pages would be reachable from other machines
    without https: on a non-loopback address they need [serve] tls_certificate or
    trusted_proxy; the loopback-only developer mode may not leave loopback at all."""
    if is_loopback(host) or public_only:
        return
    serve = config.serve
    if serve["datasette_without_login"]:
        raise ConfigError(f"{config.path}: [serve] datasette_without_login is for loopback only: refusing to serve"
                          f" on {host}")
    if not (serve["tls_certificate"] or serve["trusted_proxy"]):
        raise ConfigError(f"refusing to serve the staff pages on {host} without https: set [serve] tls_certificate"
                          f" and tls_key, or trusted_proxy (the reverse proxy's address), or serve only the"
                          f" unsubscribe pages with --public-only")


def _config_relative(config: Config, value: str) -> str:
    from pathlib import Path

    path = Path(value)
    return str(path if path.is_absolute() or config.path is None else config.path.parent / path)


def build_app(config: Config, *, secret: bytes, public_only: bool = False) -> tuple[Any, Any]:
    """(the ASGI app to serve, the Datasette under it): the console in front of Datasette."""
    from ..web.console.app import ConsoleApp, ConsoleSettings

    datasette = build_datasette(config, secret=secret)
    serve = config.serve
    settings = ConsoleSettings(
        store_path=config.store_path, timezone=config.timezone, title=serve["title"],
        database=config.store_path.stem,
        cookie_key=hmac.new(secret, b"tendermatch-console-cookies", hashlib.sha256).digest(),
        session_hours=serve["session_hours"], access_log_days=serve["access_log_days"],
        own_buyers=list(serve["own_buyers"]), public_only=public_only,
        datasette_without_login=bool(serve["datasette_without_login"]),
        datasette_guards_itself=bool(serve["password_hash_env"]), limits=web_limits(config))
    return ConsoleApp(settings, datasette.app()), datasette


def serve(config: Config, *, host: str, port: int, secret: bytes, public_only: bool = False) -> None:
    """Serve until SIGTERM or SIGINT (``check_can_serve`` and ``check_can_listen`` first)."""
    import asyncio

    import uvicorn

    from ..store import Store

    Store.open(config.store_path).close()  # create or migrate it first: Datasette only reads
    app, datasette = build_app(config, secret=secret, public_only=public_only)
    asyncio.run(datasette.invoke_startup())
    serve_settings = config.serve
    tls: dict[str, Any] = {}
    certificate, key = serve_settings["tls_certificate"], serve_settings["tls_key"]
    if certificate and key:  # the config takes both or neither
        tls = {"ssl_certfile": _config_relative(config, certificate), "ssl_keyfile": _config_relative(config, key)}
    # Only the configured proxy's X-Forwarded-* headers are believed (the scheme makes the
    # login cookie Secure); without one, none are.
    proxy = serve_settings["trusted_proxy"]
    # No access log: unsubscribe URLs carry personal tokens. h11 by name, with its cap on a
    # request's line and headers: httptools, if it were installed, would read any length.
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, lifespan="on",
                http="h11", h11_max_incomplete_event_size=web_limits(config).max_request_head_bytes,
                proxy_headers=bool(proxy), forwarded_allow_ips=proxy or None, **tls)
