"""The little HTTP the console needs on top of ASGI: a parsed request, a response, and
the errors a page raises for a 4xx (each shown as a Danish page, never a traceback)."""

from __future__ import annotations

from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import parse_qsl

from ...errors import TendermatchError


class PageError(TendermatchError):
    """A request the console answers with a 4xx page; ``message`` is shown to the user (Danish)."""

    status = 400
    title = "Ugyldig forespørgsel"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class BadRequest(PageError):
    """A parameter the page cannot use (a bad date, page number or choice)."""


class Forbidden(PageError):
    """A page or export the user's role may not see."""

    status = 403
    title = "Ingen adgang"


class MethodNotAllowed(PageError):
    """A method the page does not take (a form posted to a list page)."""

    status = 405
    title = "Ikke tilladt"


class TooManyAttempts(PageError):
    """Too many wrong passwords for one user name from one address: wait, then try again."""

    status = 429
    title = "For mange forsøg"


class UriTooLong(PageError):
    """A query string past the limit."""

    status = 414
    title = "For lang adresse"


class NotFound(PageError):
    """No such page, notice or enterprise."""

    status = 404
    title = "Findes ikke"


MAX_PARAMETERS = 50


@dataclass
class Request:
    """One request: method, path, query and form parameters, cookies and the user (if logged in)."""

    scope: dict[str, Any]
    method: str
    path: str
    query: dict[str, str]
    cookies: dict[str, str]
    form: dict[str, str] = field(default_factory=dict)
    user: dict[str, Any] | None = None
    language: str = "da"

    @property
    def secure(self) -> bool:
        """https: served with TLS, or through the trusted proxy saying so (uvicorn sets the scheme)."""
        return self.scope.get("scheme") == "https"

    def header(self, name: bytes) -> str:
        for key, value in self.scope.get("headers") or []:
            if key.lower() == name:
                return str(value.decode("latin-1"))
        return ""

    @property
    def staff(self) -> bool:
        return bool(self.user and self.user["role"] == "staff")


def parse_parameters(raw: bytes) -> dict[str, str]:
    """Query or form parameters: the last value of each name; a malformed one is a 400."""
    try:
        pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=False, errors="strict",
                          max_num_fields=MAX_PARAMETERS)
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("Forespørgslen kunne ikke læses (ugyldige tegn eller for mange parametre).") from None
    if any("\x00" in key or "\x00" in value for key, value in pairs):
        raise BadRequest("Forespørgslen indeholder ugyldige tegn.")
    return dict(pairs)


def parse_cookies(scope: dict[str, Any]) -> dict[str, str]:
    found: dict[str, str] = {}
    for key, value in scope.get("headers") or []:
        if key.lower() == b"cookie":
            cookie: SimpleCookie = SimpleCookie()
            try:
                cookie.load(value.decode("latin-1"))
            except CookieError:
                continue
            found.update({name: morsel.value for name, morsel in cookie.items()})
    return found


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str = "text/html; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)

    async def send(self, send: Any, *, head_only: bool = False) -> None:
        headers = [(b"content-type", self.content_type.encode()), (b"content-length", str(len(self.body)).encode()),
                   *((name.lower().encode(), value.encode("latin-1")) for name, value in self.headers)]
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if head_only else self.body})

    @classmethod
    def redirect(cls, location: str, *, status: int = 303) -> Response:
        return cls(status, b"", "text/plain; charset=utf-8", [("Location", location)])


def cookie_header(name: str, value: str, *, secure: bool, max_age: int | None = None) -> tuple[str, str]:
    """A Set-Cookie header: HttpOnly, SameSite=Lax, Path=/, Secure over https; max_age 0 deletes it."""
    parts = [f"{name}={value}", "Path=/", "HttpOnly", "SameSite=Lax"]
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    if secure:
        parts.append("Secure")
    return "Set-Cookie", "; ".join(parts)


def safe_next(target: str | None) -> str:
    """Where to go after logging in: a path on this site only (never //host or a scheme)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target
