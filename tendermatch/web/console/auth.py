"""Passwords (argon2id), session tokens and CSRF tokens for the console.

A session cookie holds a random token; the store keeps only its SHA-256, so a copy of the
store logs nobody in. A form's CSRF token is an HMAC of the session token (or, on the
login page, of a random pre-login cookie), so it needs no storage and dies with the session.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import deque

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from ...errors import TendermatchError

MIN_PASSWORD_LENGTH = 10
SESSION_COOKIE = "tm_session"
LOGIN_COOKIE = "tm_login"  # the pre-login CSRF cookie of the login form
LANGUAGE_COOKIE = "tm_lang"

# argon2-cffi's defaults (RFC 9106's low-memory profile: 64 MiB, 3 passes): about 50 ms a check.
_hasher = PasswordHasher()
# Checked when the user name is unknown, so an unknown name takes as long as a wrong password.
_DUMMY_HASH = "$argon2id$v=19$m=65536,t=3,p=4$7Tl7iV4Fag15FdhUbnGIzg$3/bZSCSdjy29Vmu+tbJJsG7xQ9+0wHuuVMYP+bqTHfg"


class PasswordError(TendermatchError, ValueError):
    """A password that is too short to be accepted."""


def hash_password(password: str) -> str:
    """The argon2id hash of ``password`` (PasswordError if shorter than MIN_PASSWORD_LENGTH)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise PasswordError(f"use at least {MIN_PASSWORD_LENGTH} characters")
    return _hasher.hash(password)


def check_password(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches ``password_hash`` (None: an unknown user, always False
    after the same work)."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_token(key: bytes, token: str) -> str:
    """The CSRF token of the session (or pre-login cookie) ``token``."""
    return hmac.new(key, b"csrf:" + token.encode(), hashlib.sha256).hexdigest()


def csrf_ok(key: bytes, token: str | None, given: str | None) -> bool:
    return bool(token and given) and hmac.compare_digest(csrf_token(key, token or ""), given or "")


class LoginThrottle:
    """Wrong passwords remembered per (address, user name) and per address: past ``per_name``
    (or ``per_address``) failures within ``window`` seconds, further tries are refused until
    the oldest failure is that old. In memory: a restart forgets, which only helps a person."""

    def __init__(self, *, per_name: int = 5, per_address: int = 30, window: float = 900):
        self.per_name, self.per_address, self.window = per_name, per_address, window
        self._failures: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        found = self._failures.get(key, deque())
        while found and found[0] <= now - self.window:
            found.popleft()
        return found

    def allowed(self, address: str, name: str) -> bool:
        now = time.monotonic()
        with self._lock:
            return (len(self._recent((address, name.casefold()), now)) < self.per_name
                    and len(self._recent((address, ""), now)) < self.per_address)

    def failed(self, address: str, name: str) -> None:
        now = time.monotonic()
        with self._lock:
            if len(self._failures) > 10_000:  # forget the stale ones rather than grow without end
                for key in [key for key in self._failures if not self._recent(key, now)]:
                    del self._failures[key]
            for key in ((address, name.casefold()), (address, "")):
                self._failures[key] = self._recent(key, now)
                self._failures[key].append(now)
