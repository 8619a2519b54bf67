"""Unsubscribe tokens: signed, bound to one profile and one address, useless without the secret."""

from __future__ import annotations

import pytest

from tendermatch.notifier.tokens import SecretError, TokenError, check_secret, make_token, read_token

SECRET = b"0123456789abcdef-secret"


def test_a_token_names_its_profile_and_address():
    token = make_token("rent-fokus", "Udbud@RentFokus.example", secret=SECRET)
    assert read_token(token, secret=SECRET) == ("rent-fokus", "udbud@rentfokus.example")
    assert token.isascii() and not set(token) & set("+/=&?# ")  # safe in a URL and a mailto subject


def test_a_token_cannot_be_changed_to_another_address_or_profile():
    token = make_token("rent-fokus", "a@rentfokus.example", secret=SECRET)
    version, payload, signature = token.split(".")
    other = make_token("rent-fokus", "b@rentfokus.example", secret=SECRET).split(".")[1]
    for forged in (f"{version}.{other}.{signature}",  # another address with this signature
                   f"{version}.{payload}.{signature[:-2]}AA",  # a changed signature
                   f"{version}.{payload[:-1]}x.{signature}"):  # a changed payload
        with pytest.raises(TokenError):
            read_token(forged, secret=SECRET)


def test_a_token_from_another_secret_is_refused():
    token = make_token("rent-fokus", "a@rentfokus.example", secret=b"another-secret-of-some-length")
    with pytest.raises(TokenError, match="signature"):
        read_token(token, secret=SECRET)


@pytest.mark.parametrize("garbage", ["", "u1", "u1..", "u1.!!!.???", "v9.abc.def", "u1.abc.def.ghi"])
def test_garbage_is_refused(garbage):
    with pytest.raises(TokenError):
        read_token(garbage, secret=SECRET)


def test_the_secret_must_be_set_and_long_enough_and_is_never_echoed():
    with pytest.raises(SecretError, match=r"\$TENDERMATCH_SECRET is not set"):
        check_secret(None)
    with pytest.raises(SecretError, match="too short") as error:
        check_secret("hunter2")
    assert "hunter2" not in str(error.value)
    assert check_secret("x" * 16) == b"x" * 16
