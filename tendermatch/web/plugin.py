"""The Datasette plugin inside tendermatch: one-click unsubscribe (RFC 8058), the staff
login redirect, the ``:_week_start`` magic parameter, and the door every request passes
(``limits``: what a request may cost, links only to the public URL, errors as 4xx).

It is registered as an object, not found through an entry point, so the worker can hand
it what it needs (how to read a token, where the store is) without this package
importing another stage.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from datasette import hookimpl
from datasette.utils.asgi import Response
from markupsafe import Markup

from ..store import Store
from ..store.connection import add_fold_function
from .limits import (
    PublicUrl,
    WebLimits,
    declared_length,
    describe,
    error_answer,
    guard_locations,
    limit_connection,
    read_capped_body,
    replay,
    with_public_host,
)

logger = logging.getLogger("tendermatch.serve")

UNSUBSCRIBE_PATH = "/unsubscribe"
WRITABLE_PATHS = frozenset({UNSUBSCRIBE_PATH, "/-/login", "/-/logout"})


def week_start(now: datetime, *, timezone_name: str) -> str:
    """Monday 00:00 of ``now``'s week in ``timezone_name``, as a UTC timestamp in the store's format."""
    local = now.astimezone(ZoneInfo(timezone_name))
    monday = (local - timedelta(days=local.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
    return monday.astimezone(UTC).isoformat()


# SQL typed into the web view must not reach SQLite's native-pointer and code-loading
# functions: fts3_tokenizer() reads (and with two arguments installs) a C pointer.
_NATIVE_FUNCTIONS = frozenset({"fts3_tokenizer", "load_extension"})


def _deny_native_functions(action: int, first: str | None, second: str | None, *_: Any) -> int:
    if action == sqlite3.SQLITE_FUNCTION and (second or "").lower() in _NATIVE_FUNCTIONS:
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


class TendermatchPlugin:
    """Hooks for one served store.

    ``read_token`` returns (profile_id, email) for a valid unsubscribe token and raises
    ValueError for any other; ``protected`` says whether staff must log in (then an
    anonymous visitor is sent to the login page instead of a bare 403). ``public_url``
    is where staff and the digests' links reach the view: every absolute link and
    redirect points there, whatever Host a request names.
    """

    # Datasette lists plugins by module name and looks for their templates/ beside it.
    __name__ = "tendermatch.web"

    def __init__(self, *, store_path: str | Path, read_token: Callable[[str], tuple[str, str]],
                 protected: bool, timezone_name: str, public_url: str, limits: WebLimits | None = None):
        self.store_path = str(store_path)
        self.read_token = read_token
        self.protected = protected
        self.timezone_name = timezone_name
        self.public = PublicUrl.parse(public_url)
        self.limits = limits or WebLimits()

    # -- hooks ----------------------------------------------------------------------------

    @hookimpl
    def register_routes(self) -> list[tuple[str, Any]]:
        return [(rf"^{UNSUBSCRIBE_PATH}$", self.unsubscribe_page)]

    @hookimpl
    def skip_csrf(self, scope: dict[str, Any]) -> bool | None:
        # A mail client's one-click POST carries no CSRF cookie; the signed token is the proof.
        return True if scope.get("path") == UNSUBSCRIBE_PATH else None

    @hookimpl
    def asgi_wrapper(self) -> Callable[[Any], Any]:
        def wrap(app: Any) -> Any:
            async def door(scope: dict[str, Any], receive: Any, send: Any) -> None:
                if scope["type"] != "http":
                    await app(scope, receive, send)
                    return
                refusal, receive = await self._at_the_door(scope, receive)
                if refusal is not None:
                    await refusal.asgi_send(send)
                    return
                send = guard_locations(send, self.public)
                started = False

                async def tracked(message: dict[str, Any]) -> None:
                    nonlocal started
                    started = started or message["type"] == "http.response.start"
                    await send(message)

                try:
                    await app(with_public_host(scope, self.public), receive, tracked)
                except Exception as error:
                    logger.error("%s %s failed: %s", scope["method"], scope["path"], describe(error))
                    if not started:
                        await Response.text("Server error: the serve log names it", status=500).asgi_send(send)

            return door

        return wrap

    async def _at_the_door(self, scope: dict[str, Any], receive: Any) -> tuple[Response | None, Any]:
        """(a refusal, or None) and the ``receive`` to go on with: read-only, and nothing
        bigger than the limits is read at all."""
        limits = self.limits
        if len(scope.get("query_string") or b"") > limits.max_query_string_bytes:
            return Response.text(f"URI too long: the query string may be at most"
                                 f" {limits.max_query_string_bytes // 1024} KB", status=414), receive
        # Read-only at the door: the only requests that may change something are an
        # unsubscribe and logging in or out. Datasette itself would answer other POSTs
        # with a 500 after refusing them. Their bodies are never read.
        if scope["method"] in ("GET", "HEAD"):
            return None, receive
        if scope["path"] not in WRITABLE_PATHS:
            return Response.text("Method not allowed: this view is read-only", status=405,
                                 headers={"Allow": "GET, HEAD"}), receive
        too_large = Response.text(f"Request body too large: at most {limits.max_body_bytes // 1024} KB", status=413,
                                  headers={"Connection": "close"})
        length = declared_length(scope)
        if length is not None and length > limits.max_body_bytes:
            return too_large, receive
        body = await read_capped_body(receive, limits.max_body_bytes)
        if body is None:
            return too_large, receive
        return None, replay(body, receive)

    @hookimpl
    def prepare_connection(self, conn: Any) -> None:
        add_fold_function(conn)
        limit_connection(conn, self.limits)
        conn.set_authorizer(_deny_native_functions)

    @hookimpl(tryfirst=True)
    def handle_exception(self, datasette: Any, request: Any, exception: Exception) -> Any:
        """Every error page: a request's own fault is a 4xx, the server's a 500; one log
        line either way (serve.py removes Datasette's handler, which prints a traceback)."""
        from datasette.handle_exception import handle_exception as render_error
        from datasette.utils.asgi import Base400
        from datasette.views.base import DatasetteError

        status, title, message = error_answer(exception, self.limits)
        path = request.path  # without the query string: an unsubscribe's carries a token
        if status >= 500:
            logger.error("%s %s failed: %s", request.method, path, describe(exception))
        elif not isinstance(exception, Base400):
            logger.info("%s %s answered %d: %s", request.method, path, status, describe(exception))
        if isinstance(exception, Base400) or (isinstance(exception, DatasetteError) and exception.status == status):
            shown = exception  # Datasette's own answer, as it would give it
        else:
            shown = DatasetteError(message, title=title, status=status)
        return render_error(datasette=datasette, request=request, exception=shown)

    @hookimpl
    def actor_from_request(self, datasette: Any, request: Any) -> dict[str, Any] | None:
        # A console login with the staff role is Datasette's staff actor (console/app.py
        # lets no one else through to Datasette unless the config opens it).
        user = request.scope.get("tendermatch.user")
        if user and user.get("role") == "staff":
            return {"id": "staff", "name": user["name"]}
        return None

    @hookimpl
    def forbidden(self, datasette: Any, request: Any, message: str) -> Any:
        if self.protected and not request.actor:
            return Response.redirect(datasette.urls.path("/-/login"))
        return None

    @hookimpl
    def extra_css_urls(self, datasette: Any) -> list[str]:
        return [datasette.urls.static_plugins(self.__name__, "tendermatch.css")]

    @hookimpl
    def render_cell(self, value: Any, column: str, table: str | None, database: str, datasette: Any) -> Any:
        # In the canned queries' results, a notice id opens "who was told about it, and why".
        if table is None and column == "notice_id" and isinstance(value, str) and value:
            url = datasette.urls.database(database) + "/notice_recipients?" + urlencode({"notice": value})
            return Markup('<a href="{}">{}</a>').format(url, value)
        return None

    @hookimpl
    def register_magic_parameters(self) -> list[tuple[str, Callable[[str, Any], str]]]:
        def week(key: str, request: Any) -> str:
            if key != "start":
                raise KeyError(key)
            return week_start(datetime.now(UTC), timezone_name=self.timezone_name)

        return [("week", week)]

    # -- the unsubscribe page ---------------------------------------------------------------

    async def unsubscribe_page(self, request: Any, datasette: Any) -> Response:
        """GET: a confirmation page with a button. POST (the button, or a mail client's
        one-click ``List-Unsubscribe=One-Click``): unsubscribe. A bad token: 400, no change."""
        if request.method not in ("GET", "POST"):
            return Response.text("Method not allowed", status=405, headers={"Allow": "GET, POST"})
        token = request.args.get("token", "")
        try:
            profile_id, email = self.read_token(token)
        except ValueError as error:
            logger.warning("unsubscribe refused: %s", error)
            return await self._page(datasette, request, "unsubscribe_invalid.html", {}, status=400)
        if request.method == "GET":
            done, name = await asyncio.to_thread(
                self._in_store, profile_id, lambda store: store.is_unsubscribed(profile_id, email))
            return await self._page(datasette, request, "unsubscribe.html",
                                    {"email": email, "enterprise": name, "already": done, "token": token})
        form = await request.post_vars()
        # The page's button says so; a mail client posts only List-Unsubscribe=One-Click.
        via = "web page" if form.get("via") == "page" else "one-click"
        new, name = await asyncio.to_thread(
            self._in_store, profile_id, lambda store: store.unsubscribe(profile_id, email, via=via))
        logger.info("unsubscribed one address from %s's digests (%s)%s", profile_id, via,
                    "" if new else ", it had already unsubscribed")
        return await self._page(datasette, request, "unsubscribe_done.html", {"email": email, "enterprise": name})

    async def _page(self, datasette: Any, request: Any, template: str, context: dict[str, Any], *,
                    status: int = 200) -> Response:
        html = await datasette.render_template(template, context, request=request)
        # Never cached, never indexed: the URL carries a personal token.
        return Response.html(html, status=status, headers={"Cache-Control": "no-store",
                                                           "X-Robots-Tag": "noindex",
                                                           "Referrer-Policy": "no-referrer"})

    def _in_store(self, profile_id: str, action: Callable[[Store], bool]) -> tuple[bool, str]:
        """``action``'s answer and the enterprise's name (its id if the store has no profile)."""
        with closing(Store.open(self.store_path)) as store:
            profile = store.profile(profile_id)
            return action(store), profile["name"] if profile else profile_id
