"""Recipient addresses as they go on the wire: checked to be one plain address (a stored
profile may hold one that slipped past validation: a NUL, a line break, a second address),
with an internationalised domain as its ASCII (punycode) A-label, which every server accepts.
Only a non-ASCII local part (``søren@...``) needs a server that offers SMTPUTF8."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from email_validator import EmailNotValidError, validate_email

from ..errors import TendermatchError

# An everyday ASCII address (RFC 5322 dot-atom local part, a host name): nothing to check
# further or convert. Anything else goes through email-validator.
_PLAIN = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
                    r"@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+")


class AddressError(TendermatchError, ValueError):
    """Raised for text that is not one plain e-mail address; the message names it."""


@dataclass(frozen=True)
class WireAddress:
    """An address for the SMTP envelope and the To header."""

    text: str  # local part as written, domain as its A-label
    smtputf8: bool  # the local part is not ASCII: only a server offering SMTPUTF8 takes it


@lru_cache(maxsize=16_384)
def wire_address(address: str) -> WireAddress:
    """``address`` ready to send to, or an AddressError naming it and what is wrong.
    email-validator (the profile loader's check, IDNA 2008) does the syntax and the A-label."""
    if _PLAIN.fullmatch(address) and len(address) <= 254:
        return WireAddress(text=address, smtputf8=False)
    try:
        checked = validate_email(address, check_deliverability=False)
    except EmailNotValidError as error:
        raise AddressError(f"{address!r} is not an address a digest can be sent to: {error}") from None
    local = address.rpartition("@")[0]  # as written: a local part is the receiving server's business
    return WireAddress(text=f"{local}@{checked.ascii_domain}", smtputf8=not local.isascii())


def wire_mailbox(address: str) -> str:
    """A configured address (the sender), its domain as its A-label when it is not ASCII;
    an ASCII one as it is (``udbud@localhost`` is fine on a loopback relay)."""
    if address.isascii():
        return address
    return wire_address(address).text
