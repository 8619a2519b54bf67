"""What one request may cost `tendermatch serve`, and how a request that asks for more is
answered: a 4xx naming the limit, never a 500, a hang or a traceback.

Time is capped by Datasette's ``sql_time_limit_ms``; this module caps the rest:

- SQLite: the longest string or blob a query may make or read (``SQLITE_LIMIT_LENGTH``,
  per connection) and SQLite's heap (``hard_heap_limit``, process-wide), so
  ``printf('%.*c', 900000000, 'x')`` or ``zeroblob(400000000)`` fails at once;
- Python: the text and blobs one query may hand to Datasette (the connection's row
  factory counts them), so a thousand rows of a megabyte each fail instead of filling RAM;
- CPU: SQLite checks the time limit between steps of a query and one function call is
  one step, so the built-ins that can run for minutes in one call on values the length
  cap allows (printf's ``%.*c`` loops once per character even past the cap, instr and
  replace are length times length) are called through a guard that refuses the call;
- HTTP: the query string and the request body (the only bodies read are an unsubscribe's
  and the login form's), refused before they are read;
- links: every absolute URL and redirect points at the configured public URL, never at
  the request's ``Host`` header.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import weakref
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

from ..errors import TendermatchError

logger = logging.getLogger("tendermatch.serve")

MiB = 1024 * 1024


@dataclass(frozen=True)
class WebLimits:
    """The caps of one served store; the defaults hold a served process under ~300 MB."""

    # The longest string or blob a query may build or read. A stored value longer than
    # this cannot be read at all (not even its length()), so serve.py raises it to fit
    # the largest document the crawler may store.
    max_value_bytes: int = 32 * MiB
    # Text and blobs one query may hand to Datasette, all rows together (characters for
    # text): a page of 100 notices is well under 1 MB.
    max_result_bytes: int = 32 * MiB
    # SQLite's own heap, for all connections of the process (it has one heap). Page
    # caches and sorts need a few MB; past the soft limit SQLite frees cache first, past
    # the hard one an allocation fails with "out of memory" (that query only).
    soft_heap_bytes: int = 48 * MiB
    hard_heap_bytes: int = 96 * MiB
    # A query string longer than this is refused with 414 (a typed SQL query fits easily);
    # uvicorn refuses a request head over max_request_head_bytes with 400 before reading more.
    max_query_string_bytes: int = 16 * 1024
    max_request_head_bytes: int = 64 * 1024
    # The bodies read at all: a login form or a one-click unsubscribe, a few hundred bytes.
    max_body_bytes: int = 64 * 1024
    # Characters compared by one call of instr, replace or trim (length times length):
    # SQLite compares about 10**10 a second, so this is a fraction of a second.
    max_scan_cost: int = 4 * 10**9


class ResultTooLarge(TendermatchError):
    """A query's rows hold more text and blobs than ``max_result_bytes``."""


def budgeted_rows(max_result_bytes: int) -> Callable[[sqlite3.Cursor, tuple[Any, ...]], sqlite3.Row]:
    """A row factory that makes ``sqlite3.Row``s (as Datasette's own does) and raises
    ResultTooLarge once one cursor's rows together pass ``max_result_bytes``.

    One connection runs one query at a time (Datasette keeps one per thread), so a
    new cursor starts a new count; the old one is held weakly, never kept alive.
    """
    counted: list[Any] = [lambda: None, 0]  # (weak reference to the cursor being counted, its total)

    def row_factory(cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> sqlite3.Row:
        if counted[0]() is not cursor:
            counted[0], counted[1] = weakref.ref(cursor), 0
        counted[1] += sum(len(value) for value in row if isinstance(value, (str, bytes)))
        if counted[1] > max_result_bytes:
            raise ResultTooLarge(f"the result is larger than {max_result_bytes // MiB} MB: ask for fewer rows"
                                 f" (_size=), fewer columns (_col=) or shorter values")
        return sqlite3.Row(cursor, row)

    return row_factory


def limit_connection(conn: sqlite3.Connection, limits: WebLimits) -> None:
    """Apply ``limits`` to a connection Datasette opened (its ``prepare_connection``)."""
    conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, limits.max_value_bytes)
    # Process-wide; the same values on every connection. hard_heap_limit can only be
    # lowered by a PRAGMA, and SQL typed into the view cannot run PRAGMA statements.
    conn.execute(f"PRAGMA soft_heap_limit = {int(limits.soft_heap_bytes)}")
    conn.execute(f"PRAGMA hard_heap_limit = {int(limits.hard_heap_bytes)}")
    conn.row_factory = budgeted_rows(limits.max_result_bytes)
    guard_slow_functions(conn, limits)


# -- built-ins one call of which can outlast the time limit ------------------------------------


# printf's conversions: flags, width, precision (digits or *), length, type.
_CONVERSION = re.compile(r"%[-+ #0!,]*(\*|\d+)?(?:\.(\*|\d+))?(?:ll|l)?(.)", re.DOTALL)


def _length(value: Any) -> int:
    return 0 if value is None else len(value) if isinstance(value, (str, bytes)) else len(str(value))


def guard_slow_functions(conn: sqlite3.Connection, limits: WebLimits) -> None:
    """Register guards over printf/format, instr, replace and trim/ltrim/rtrim on ``conn``.

    A guard refuses a call whose cost would pass the limits with OverflowError, which
    Python's sqlite3 reports as SQLite's "string or blob too big" (a 400), and otherwise
    hands the call to the real built-in on a private in-memory connection (a function
    defined on ``conn`` hides the built-in there): SQLite's own semantics, no copy of them.
    """
    builtins = sqlite3.connect(":memory:", check_same_thread=False)  # used by conn's thread only
    builtins.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, limits.max_value_bytes)
    statements: dict[tuple[str, int], str] = {}

    def builtin(name: str, args: tuple[Any, ...]) -> Any:
        sql = statements.get((name, len(args)))
        if sql is None:
            sql = statements[(name, len(args))] = f"SELECT {name}({', '.join('?' * len(args))})"
        return builtins.execute(sql, args).fetchone()[0]

    def as_integer(value: Any) -> int:  # as printf reads a * argument
        return builtins.execute("SELECT CAST(? AS INTEGER)", (value,)).fetchone()[0] or 0

    def format_sizes(args: tuple[Any, ...]) -> Iterator[int]:
        """Every width and precision printf would use, literal or taken from an argument."""
        if not args or not isinstance(args[0], str):
            return
        rest = iter(args[1:])
        for width, precision, kind in _CONVERSION.findall(args[0]):
            if kind == "%":
                continue
            for size in (width, precision):
                if size == "*":
                    yield abs(as_integer(next(rest, 0)))
                elif size:
                    yield int(size)
            next(rest, None)  # the converted value

    def printf(*args: Any) -> Any:
        if any(size > limits.max_value_bytes for size in format_sizes(args)):
            raise OverflowError("printf width or precision over the length cap")
        return builtin("printf", args)

    def scan(name: str) -> Callable[..., Any]:
        def call(*args: Any) -> Any:
            if _length(args[0]) * _length(args[1]) > limits.max_scan_cost:
                raise OverflowError(f"{name} would compare more than max_scan_cost characters")
            return builtin(name, args)

        return call

    conn.create_function("printf", -1, printf, deterministic=True)
    conn.create_function("format", -1, printf, deterministic=True)
    conn.create_function("instr", 2, scan("instr"), deterministic=True)
    conn.create_function("replace", 3, scan("replace"), deterministic=True)
    for name in ("trim", "ltrim", "rtrim"):  # with a second argument: the characters to strip
        conn.create_function(name, 2, scan(name), deterministic=True)


# -- errors: what a request did wrong is a 400 --------------------------------------------------


def error_answer(exception: BaseException, limits: WebLimits) -> tuple[int, str, str]:
    """(status, title, message) for an exception a page raised.

    A request's own fault is a 400: a limit it hit, or a parameter Datasette could not
    use. Datasette 0.65 checks some parameters by hand (a 500 "Cannot sort table by x",
    "Invalid _through") and others not at all (``_timelimit=abc``, ``_through={}``,
    ``_json_infinity=x``, ``_facet={}`` raise ValueError, KeyError, TypeError or
    OverflowError on the way). Anything else, including any such error raised by
    tendermatch's own code, is the server's: a 500.
    """
    from datasette.database import QueryInterrupted
    from datasette.utils.asgi import Base400
    from datasette.views.base import DatasetteError

    if isinstance(exception, Base400):
        return exception.status, "", str(exception.args[0] if exception.args else exception)
    if isinstance(exception, DatasetteError):
        # Every DatasetteError Datasette 0.65 raises with its default status 500 is about a
        # request parameter (_sort, _sort_desc, _through); the others carry their status.
        return (exception.status if exception.status != 500 else 400), exception.title or "", exception.message
    if isinstance(exception, QueryInterrupted):  # a facet or export past sql_time_limit_ms (or _timelimit)
        return 400, "SQL Interrupted", "the query took longer than the time limit"
    if isinstance(exception, ResultTooLarge):
        return 400, "Result too large", str(exception)
    if isinstance(exception, sqlite3.DataError):  # "string or blob too big"
        return 400, "Value too large", (f"{exception}: a value may be at most {limits.max_value_bytes // MiB} MB"
                                        " in this view")
    if isinstance(exception, MemoryError):  # SQLite's hard heap limit (SQLITE_NOMEM)
        return 400, "Query too large", (f"the query needs more memory than this view allows"
                                        f" ({limits.hard_heap_bytes // MiB} MB)")
    if isinstance(exception, (sqlite3.OperationalError, sqlite3.ProgrammingError, sqlite3.Warning)):
        return 400, "Invalid SQL", str(exception)
    if (isinstance(exception, (ValueError, LookupError, TypeError, OverflowError))
            and not _raised_in_tendermatch(exception)):
        return 400, "Bad request", f"a parameter could not be used ({type(exception).__name__}: {exception})"
    return 500, "Server error", "the server could not answer this page; the serve log names the error"


def _raised_in_tendermatch(exception: BaseException) -> bool:
    """Whether tendermatch's own code is on the exception's traceback (then it is a bug)."""
    tb = exception.__traceback__
    while tb is not None:
        if tb.tb_frame.f_globals.get("__name__", "").startswith("tendermatch."):
            return True
        tb = tb.tb_next
    return False


def describe(exception: BaseException) -> str:
    """The exception on one line, for the serve log."""
    text = " ".join(str(exception).split())
    return f"{type(exception).__name__}: {text[:300]}" if text else type(exception).__name__


# -- the public URL -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PublicUrl:
    """Where staff and the digests' links reach the view (``[digest] base_url``): the only
    origin its absolute links and redirects may name."""

    scheme: str
    netloc: str  # host[:port]

    @classmethod
    def parse(cls, url: str) -> PublicUrl:
        parts = urlsplit(url)
        return cls(scheme=parts.scheme, netloc=parts.netloc.rpartition("@")[2])

    @property
    def origin(self) -> str:
        return f"{self.scheme}://{self.netloc}"

    def safe_location(self, location: str) -> str:
        """``location`` if it stays on the public origin, else the view's home page.

        Browsers read a backslash as a slash, so "/\\evil.example" is checked as "//evil.example".
        """
        target = urlsplit(urljoin(self.origin + "/", location.replace("\\", "/")))
        if target.scheme == self.scheme and target.netloc == self.netloc:
            return location
        return "/"


# -- the door: the request line, the body and the answer's headers --------------------------------


Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


async def read_capped_body(receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or None as soon as it passes ``limit`` bytes (not read further)."""
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away
            return bytes(body)
        body += message.get("body", b"")
        if len(body) > limit:
            return None
        if not message.get("more_body", False):
            return bytes(body)


def replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands ``body`` over once, then waits on the real one (for a disconnect)."""
    sent = False

    async def replayed() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


def declared_length(scope: dict[str, Any]) -> int | None:
    for name, value in scope.get("headers") or []:
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def with_public_host(scope: dict[str, Any], public: PublicUrl) -> dict[str, Any]:
    """``scope`` as if the request had come to the public URL: Datasette builds absolute
    links (next pages, facet toggles, the JSON alternate) from Host and the scheme."""
    headers = [(name, value) for name, value in scope.get("headers") or [] if name.lower() != b"host"]
    headers.append((b"host", public.netloc.encode("ascii", "replace")))
    return dict(scope, headers=headers, scheme=public.scheme)


def guard_locations(send: Send, public: PublicUrl) -> Send:
    """``send`` with every Location header kept on the public origin."""

    async def guarded(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            headers = []
            for name, value in message.get("headers") or []:
                if name.lower() == b"location":
                    value = public.safe_location(value.decode("latin-1")).encode("latin-1")
                headers.append((name, value))
            message = dict(message, headers=headers)
        await send(message)

    return guarded
