"""Signed unsubscribe tokens: who (profile and address) may be unsubscribed, signed with
HMAC-SHA256 so a token cannot be made or changed without the secret.

A token names its own profile and address, so it works without the store and cannot be
replayed for another address: changing either breaks the signature.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from ..errors import TendermatchError

VERSION = "u1"
MIN_SECRET_LENGTH = 16


class TokenError(TendermatchError, ValueError):
    """Raised by ``read_token`` for a token that is malformed, tampered with or signed
    with another secret."""


class SecretError(TendermatchError, ValueError):
    """Raised when the unsubscribe secret is missing or too short to be safe."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    """The bytes of ``text`` as ``_b64`` writes it, and only so: padding, the +/ alphabet
    or stray characters raise ValueError, so one token has one spelling."""
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64(data) != text:
        raise ValueError("not canonical unpadded URL-safe base64")
    return data


def check_secret(secret: str | None, *, name: str = "TENDERMATCH_SECRET") -> bytes:
    """The secret as bytes; SecretError (naming the variable, never the value) if unusable."""
    if not secret:
        raise SecretError(f"${name} is not set: the unsubscribe links are signed with it"
                          f" (set it to a long random string, e.g. `openssl rand -hex 32`)")
    if len(secret) < MIN_SECRET_LENGTH:
        raise SecretError(f"${name} is too short: use at least {MIN_SECRET_LENGTH} random characters")
    return secret.encode("utf-8")


def _signature(payload: bytes, secret: bytes) -> bytes:
    return hmac.new(secret, b"tendermatch-unsubscribe\n" + payload, hashlib.sha256).digest()[:18]


def make_token(profile_id: str, email: str, *, secret: bytes) -> str:
    """A URL-safe token that unsubscribes ``email`` from ``profile_id``'s digests."""
    payload = f"{profile_id}\n{email.lower()}".encode()
    return f"{VERSION}.{_b64(payload)}.{_b64(_signature(payload, secret))}"


def read_token(token: str, *, secret: bytes) -> tuple[str, str]:
    """(profile_id, email) of a valid token; TokenError otherwise."""
    parts = token.strip().split(".")
    if len(parts) != 3 or parts[0] != VERSION:
        raise TokenError("not an unsubscribe token")
    try:
        payload, signature = _unb64(parts[1]), _unb64(parts[2])
    except (binascii.Error, ValueError):
        raise TokenError("not an unsubscribe token (bad encoding)") from None
    if not hmac.compare_digest(signature, _signature(payload, secret)):
        raise TokenError("the token's signature does not match (tampered, or made with another secret)")
    try:
        profile_id, email = payload.decode("utf-8").split("\n")
    except (UnicodeDecodeError, ValueError):
        raise TokenError("not an unsubscribe token (bad payload)") from None
    return profile_id, email
