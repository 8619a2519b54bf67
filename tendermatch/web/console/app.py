"""The console's ASGI app, in front of Datasette in the same process.

A plain ASGI router rather than Datasette's ``register_routes``: the console decides who
may reach Datasette at all (only logged-in staff; viewers must never see its tables of
e-mail addresses), owns ``/`` and the login, and can be served without Datasette
(``--public-only`` leaves only the unsubscribe pages). Datasette's own request guard
(``web/limits.py`` via the plugin) still applies to what is passed on to it.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, select_autoescape

from ...store import Store
from ..limits import WebLimits, describe, read_capped_body
from . import auth
from .formatting import code_text, field_names, format_amount, format_time
from .http import (
    BadRequest,
    Forbidden,
    MethodNotAllowed,
    NotFound,
    PageError,
    Request,
    Response,
    UriTooLong,
    cookie_header,
    parse_cookies,
    parse_parameters,
    safe_next,
)
from .texts import translate

logger = logging.getLogger("tendermatch.serve")

TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "console"
STATIC = Path(__file__).resolve().parent.parent / "static"
# Public: the digests' unsubscribe links and what their page loads. Everything else needs a login.
PUBLIC_PATHS = frozenset({"/unsubscribe"})
PUBLIC_PREFIXES = ("/-/static/", "/-/static-plugins/")
DATASETTE_INDEX = re.compile(r"/datasette(\.json)?")

Handler = Callable[["ConsoleApp", Request, re.Match[str]], Awaitable[Response]]


@dataclass
class ConsoleSettings:
    """What the worker hands the console (only the worker reads the config)."""

    store_path: Path
    cookie_key: bytes
    timezone: str = "Europe/Copenhagen"
    title: str = "tendermatch"
    database: str = "tendermatch"  # Datasette's name for the store: its pages are under /<database>
    session_hours: float = 8
    access_log_days: int = 180
    own_buyers: list[str] = field(default_factory=list)
    public_only: bool = False  # only the unsubscribe pages (and their static files)
    datasette_without_login: bool = False  # [serve] datasette_without_login: loopback development only
    datasette_guards_itself: bool = False  # [serve] password_hash_env: Datasette's own shared login
    limits: WebLimits = field(default_factory=WebLimits)


class ConsoleApp:
    """ASGI: the console's pages, the login, and the door to Datasette (``inner``)."""

    def __init__(self, settings: ConsoleSettings, inner: Any):
        from . import pages  # the routes table; pages imports this module's names

        self.settings = settings
        self.inner = inner
        self.routes: list[tuple[re.Pattern[str], Handler]] = pages.ROUTES
        self.templates = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True),
                                     trim_blocks=True, lstrip_blocks=True)
        self._local = threading.local()
        self.login_throttle = auth.LoginThrottle()
        # Two threads, each with its own store connection kept open: a page's SQL never
        # blocks the event loop, and no page pays for opening the store.
        self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="console-store")

    # -- the store: one connection per worker thread ---------------------------------------

    def store(self) -> Store:
        store = getattr(self._local, "store", None)
        if store is None:
            store = self._local.store = Store.open(self.settings.store_path)
        return store

    async def in_store(self, action: Callable[[Store], Any]) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, lambda: action(self.store()))

    # -- ASGI ------------------------------------------------------------------------------

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self.inner(scope, receive, send)  # Datasette's startup
            return
        if scope["type"] != "http":  # nothing here speaks websockets
            await send({"type": "websocket.close", "code": 1008})
            return
        path = scope["path"]
        if path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
            await self.inner(scope, receive, send)
            return
        # Cookies only, for now: a request passed on to Datasette keeps its query string
        # untouched (its own door caps and answers it).
        request = Request(scope=scope, method=scope["method"], path=path, query={}, cookies=parse_cookies(scope))
        try:
            request.language = "en" if request.cookies.get(auth.LANGUAGE_COOKIE) == "en" else "da"
            if self.settings.public_only:
                raise NotFound("Denne server viser kun afmeldingssiderne.")
            request.user = await self._session_user(request)
            route = next(((handler, found) for pattern, handler in self.routes
                          if (found := pattern.fullmatch(path))), None)
            if route is None:
                await self._to_datasette(request, receive, send)
                return
            if len(scope.get("query_string") or b"") > self.settings.limits.max_query_string_bytes:
                raise UriTooLong("Forespørgslen er for lang.")
            request.query = parse_parameters(scope.get("query_string") or b"")
            if request.method not in ("GET", "HEAD", "POST"):
                raise MethodNotAllowed("Metoden er ikke tilladt her.")
            handler, found = route
            if request.method == "POST":
                if not getattr(handler, "accepts_post", False):
                    raise MethodNotAllowed("Siden tager ikke imod formularer.")
                request.form = await self._read_form(receive)
            if request.user is None and not getattr(handler, "public", False):
                response = Response.redirect("/login?next=" + quote(path + _query_suffix(scope), safe=""))
            else:
                response = await handler(self, request, found)
        except PageError as error:
            response = self.error_page(request, error)
        except Exception as error:  # a bug: one log line and a Danish 500 page, never a traceback to the user
            logger.error("%s %s failed: %s", scope["method"], path, describe(error))
            response = self.render(request, "error.html", {"status": 500, "title": "Serverfejl",
                                                           "message": "Siden kunne ikke vises. Fejlen er logget."},
                                   status=500)
        await response.send(send, head_only=scope["method"] == "HEAD")

    async def _session_user(self, request: Request) -> dict[str, Any] | None:
        token = request.cookies.get(auth.SESSION_COOKIE)
        if not token or len(token) > 100:
            return None
        user: dict[str, Any] | None = await self.in_store(lambda store: store.session_user(auth.token_hash(token)))
        return user

    async def _read_form(self, receive: Any) -> dict[str, str]:
        limit = self.settings.limits.max_body_bytes
        body = await read_capped_body(receive, limit)
        if body is None:
            raise BadRequest(f"Formularen er for stor (højst {limit // 1024} KB).")
        return parse_parameters(body)

    async def _to_datasette(self, request: Request, receive: Any, send: Any) -> None:
        """Staff (or anyone, in the loopback developer mode) reach Datasette; others get the login or a 403."""
        settings = self.settings
        if request.staff or settings.datasette_without_login or settings.datasette_guards_itself:
            scope = dict(request.scope)
            if DATASETTE_INDEX.fullmatch(request.path):  # the console owns "/": Datasette's index moves here
                scope["path"] = "/" + request.path[len("/datasette"):]
                scope["raw_path"] = scope["path"].encode()
            if request.user:
                scope["tendermatch.user"] = request.user  # the plugin's actor_from_request reads it
            await self.inner(scope, receive, send)
            return
        if request.user is None:
            response = Response.redirect("/login?next=" + quote(request.path + _query_suffix(request.scope), safe=""))
        else:
            response = self.error_page(request, Forbidden("SQL-visningen (Datasette) viser personoplysninger og er"
                                                          " kun for medarbejdere med rollen staff."))
        await response.send(send)

    # -- pages -----------------------------------------------------------------------------

    def render(self, request: Request, template: str, context: dict[str, Any], *, status: int = 200,
               headers: list[tuple[str, str]] | None = None) -> Response:
        language = request.language
        token = request.cookies.get(auth.SESSION_COOKIE, "")
        values = {
            "request": request, "user": request.user, "language": language, "title_site": self.settings.title,
            "t": lambda text, **fill: translate(text, language, **fill),
            "when": lambda value, weekday=True: format_time(value, timezone=self.settings.timezone,
                                                            language=language, weekday=weekday),
            "amount": lambda value, currency="DKK": format_amount(value, currency, language=language),
            "code": lambda value: code_text(value, language=language),
            "fields": lambda names: field_names(names, language=language),
            "csrf": auth.csrf_token(self.settings.cookie_key, token) if request.user else "",
            "database": self.settings.database, "path_quoted": quote(request.path + _query_suffix(request.scope)),
            **context,
        }
        body = self.templates.get_template(template).render(values).encode("utf-8")
        # Every console page may hold personal data: never cached, never framed, never indexed.
        return Response(status, body, headers=[
            ("Cache-Control", "no-store"), ("X-Frame-Options", "DENY"), ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "same-origin"), ("X-Robots-Tag", "noindex"),
            ("Content-Security-Policy", "default-src 'self'; style-src 'self'; script-src 'none';"
                                        " frame-ancestors 'none'; form-action 'self'"),
            *(headers or [])])

    def error_page(self, request: Request, error: PageError) -> Response:
        if error.status >= 400 and not isinstance(error, NotFound):
            logger.info("%s %s answered %d: %s", request.method, request.path, error.status, error.message)
        return self.render(request, "error.html", {"status": error.status, "title": error.title,
                                                   "message": error.message}, status=error.status)

    def check_csrf(self, request: Request, cookie: str) -> None:
        if not auth.csrf_ok(self.settings.cookie_key, request.cookies.get(cookie), request.form.get("csrf")):
            raise Forbidden("Formularen er udløbet eller kom ikke fra denne side. Hent siden igen og prøv igen.")

    def session_cookie(self, request: Request, token: str) -> tuple[str, str]:
        return cookie_header(auth.SESSION_COOKIE, token, secure=request.secure,
                             max_age=int(self.settings.session_hours * 3600))

    @property
    def session_lifetime(self) -> timedelta:
        return timedelta(hours=self.settings.session_hours)

    async def log_access(self, request: Request, action: str, subject: str) -> None:
        if request.user:
            name, keep = request.user["name"], self.settings.access_log_days
            await self.in_store(lambda store: store.log_access(user_name=name, action=action, subject=subject,
                                                               keep_days=keep))


def _query_suffix(scope: dict[str, Any]) -> str:
    query = (scope.get("query_string") or b"").decode("latin-1")
    return "?" + query if query else ""


__all__ = ["ConsoleApp", "ConsoleSettings", "PageError", "Request", "Response", "safe_next"]
