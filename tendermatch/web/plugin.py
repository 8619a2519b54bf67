"""The Datasette plugin inside tendermatch: one-click unsubscribe (RFC 8058), the staff
login redirect and the ``:_week_start`` magic parameter.

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
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from datasette import hookimpl
from datasette.utils.asgi import Response
from markupsafe import Markup

from ..store import Store

logger = logging.getLogger("tendermatch.serve")

UNSUBSCRIBE_PATH = "/unsubscribe"
WRITABLE_PATHS = frozenset({UNSUBSCRIBE_PATH, "/-/login", "/-/logout"})


def week_start(now: datetime, *, timezone_name: str) -> str:
    """Monday 00:00 of ``now``'s week in ``timezone_name``, as a UTC timestamp in the store's format."""
    local = now.astimezone(ZoneInfo(timezone_name))
    monday = (local - timedelta(days=local.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
    return monday.astimezone(timezone.utc).isoformat()


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
    anonymous visitor is sent to the login page instead of a bare 403).
    """

    # Datasette lists plugins by module name and looks for their templates/ beside it.
    __name__ = "tendermatch.web"

    def __init__(self, *, store_path: str | Path, read_token: Callable[[str], tuple[str, str]],
                 protected: bool, timezone_name: str):
        self.store_path = str(store_path)
        self.read_token = read_token
        self.protected = protected
        self.timezone_name = timezone_name

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
        # Read-only at the door: the only requests that may change something are an
        # unsubscribe and logging in or out. Datasette itself would answer other POSTs
        # with a 500 after refusing them.
        def wrap(app: Any) -> Any:
            async def read_only(scope: dict[str, Any], receive: Any, send: Any) -> None:
                if (scope["type"] == "http" and scope["method"] not in ("GET", "HEAD")
                        and scope["path"] not in WRITABLE_PATHS):
                    response = Response.text("Method not allowed: this view is read-only", status=405,
                                             headers={"Allow": "GET, HEAD"})
                    await response.asgi_send(send)
                    return
                await app(scope, receive, send)

            return read_only

        return wrap

    @hookimpl
    def prepare_connection(self, conn: Any) -> None:
        # SQLite's LIKE and lower() fold ASCII only: "holbæk" must find "HOLBÆK KOMMUNE".
        conn.create_function("tm_fold", 1, lambda text: text.casefold() if isinstance(text, str) else text,
                             deterministic=True)
        conn.set_authorizer(_deny_native_functions)

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
            return week_start(datetime.now(timezone.utc), timezone_name=self.timezone_name)

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
