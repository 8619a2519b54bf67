"""Enterprise capability profiles: what an enterprise does, where, and how large a lot it can take.

The format is ``config/profiles/<id>.toml`` (see ``profile.example.toml`` in the spec).
``parse_profile`` turns one parsed TOML table into a ``Profile`` or raises
``ProfileError`` naming the key; reading the files is the worker's job. ``LIMITS`` bounds
what one profile may hold, so that one profile cannot make matching slow for all the
others; ``keyword_problems`` names the keywords that can never match.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from email_validator import EmailNotValidError, validate_email

from ..errors import TendermatchError
from .places import municipality
from .text import content_words, is_generic

RESERVED_CODES = ("res-ws", "res-pub-ser")
LANGUAGES = ("da", "en")
DEFAULT_MAX_ITEMS = 20

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")
_CPV = re.compile(r"[0-9]{8}")
_NUTS = re.compile(r"[A-Z]{2}[0-9A-Z]{0,3}")
# Control characters (C0, DEL, C1) and Unicode line separators: never part of a name or a
# keyword, and a line break in a name would end up in a digest's header lines.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_CONTROL_IN_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")  # a description may have lines


@dataclass(frozen=True)
class ProfileLimits:
    """The most one profile may hold. Real profiles hold a few kilobytes (the samples:
    8-10 keywords, 2-4 CPV codes, 1-2 regions, a 250-character description); these bounds
    are ten to twenty times that, and keep the work one profile costs the matcher (every
    keyword word and description word is looked up in the whole vocabulary) to seconds."""

    file_bytes: int = 1_000_000  # checked before the TOML is parsed
    id_chars: int = 64
    name_chars: int = 200
    description_chars: int = 5_000
    emails: int = 20
    keywords: int = 200
    keyword_chars: int = 100
    exclude: int = 100
    exclude_chars: int = 100
    cpv: int = 200
    regions: int = 100
    max_items: int = 1_000
    max_value: float = 1e12  # DKK; beyond any public contract


LIMITS = ProfileLimits()


class ProfileError(TendermatchError, ValueError):
    """Raised by ``parse_profile`` when a profile has an unknown key or a bad value;
    ``key`` names the key (for the one-line message: file, key, what is wrong)."""

    def __init__(self, key: str, message: str):
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message


@dataclass(frozen=True)
class Profile:
    """One enterprise. Every field but ``id``, ``name`` and ``emails`` has a default."""

    id: str
    name: str
    emails: tuple[str, ...]
    language: str = "da"
    description: str = ""
    keywords: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    cpv: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()  # countries, NUTS prefixes or Danish municipalities; empty = anywhere
    max_value: float | None = None  # DKK
    reserved_eligible: tuple[str, ...] = ()
    max_items: int = DEFAULT_MAX_ITEMS
    source: str | None = field(default=None, compare=False)  # the file it came from


def shown(value: str, width: int = 40) -> str:
    """A value for a one-line message: quoted, escaped (a NUL or a line break shows as
    \\x00, \\n) and cut to ``width`` characters."""
    return repr(value if len(value) <= width else value[:width] + "…")


def _many(number: float) -> str:
    """A count or amount for a message; a TOML integer may have hundreds of digits."""
    return f"{number:,.0f}" if abs(number) < 1e15 else "far more"


def _strings(key: str, value: Any, *, pattern: re.Pattern[str] | None = None, what: str = "",
             most: int, many: str = "items", longest: int | None = None, control: bool = True) -> tuple[str, ...]:
    """A list of strings, each stripped; at most ``most`` of them, each at most ``longest``
    characters, none with a control character (``control=False``: the caller checks)."""
    if not isinstance(value, list):
        raise ProfileError(key, "expected a list of strings")
    if len(value) > most:  # before looking at the items: 100,000 of them is the problem itself
        raise ProfileError(key, f"{len(value):,} {many}, at most {most:,}")
    if not all(isinstance(item, str) for item in value):
        raise ProfileError(key, "expected a list of strings")
    items = tuple(item.strip() for item in value)
    for item in items:
        if not item:
            raise ProfileError(key, "empty string in the list")
        if longest is not None and len(item) > longest:
            raise ProfileError(key, f"{shown(item)} is {len(item):,} characters, at most {longest:,}")
        if control and _CONTROL.search(item):
            raise ProfileError(key, f"{shown(item)} contains a control character or line break")
        if pattern is not None and not pattern.fullmatch(item):
            raise ProfileError(key, f"{shown(item)} is not {what}")
    return items


def _string(key: str, value: Any, *, longest: int, lines: bool = False) -> str:
    if not isinstance(value, str):
        raise ProfileError(key, "expected a string")
    value = value.strip()
    if len(value) > longest:
        raise ProfileError(key, f"{len(value):,} characters, at most {longest:,}")
    if (_CONTROL_IN_TEXT if lines else _CONTROL).search(value):
        raise ProfileError(key, f"{shown(value)} contains a control character" + ("" if lines else " or line break"))
    return value


def _emails(value: Any) -> tuple[str, ...]:
    """Each address checked by ``email-validator`` (the maintained implementation of the
    RFC 5321/5322/6531 syntax, internationalised addresses included: søren@kommune.dk,
    info@bøger.dk), in its normalised form, each once. No DNS look-up: matching must not
    need the network, and a mail server that is down today is not a wrong address."""
    # The validator names what is wrong with an address (a NUL, a line break, no domain).
    addresses = _strings("emails", value, most=LIMITS.emails, many="addresses", control=False)
    normalised: dict[str, None] = {}
    for address in addresses:
        try:
            checked = validate_email(address, check_deliverability=False)
        except EmailNotValidError as error:
            raise ProfileError("emails", f"{shown(address)}: {error}") from None
        normalised.setdefault(checked.normalized, None)
    return tuple(normalised)


def usable_keyword(keyword: str) -> bool:
    """Whether a keyword can make a match on its own: it has a word once folded the way the
    matcher folds notices (``text.content_words``) and not only generic words."""
    return any(not is_generic(word) for word in content_words(keyword))


def keyword_problems(profile: Profile) -> list[tuple[str, str]]:
    """(key, what is wrong) for each keyword or exclude word that can never do what it says:
    it folds to nothing (punctuation, a regular expression, stop words) or, for a keyword,
    only to generic words ("service", "levering")."""
    problems = []
    for keyword in profile.keywords:
        found = content_words(keyword)
        if not found:
            problems.append(("keywords", (f"{shown(keyword)} can never match: no word is left once folded"
                                          " (punctuation, one-letter words and stop words are ignored;"
                                          " keywords are words, not patterns)")))
        elif all(is_generic(word) for word in found):
            problems.append(("keywords", (f"{shown(keyword)} is only generic words ({', '.join(found)}):"
                                          " it never matches on its own")))
    for phrase in profile.exclude:
        if not content_words(phrase):
            problems.append(("exclude", f"{shown(phrase)} excludes nothing: no word is left once folded"))
    return problems


def parse_profile(data: dict[str, Any], *, source: str | None = None) -> Profile:
    """Check one profile table and return it as a ``Profile``.

    >>> parse_profile({"id": "vask", "name": "Vask", "emails": ["a@vask.example"], "cpv": ["98310000"]}).cpv
    ('98310000',)
    """
    known = set(Profile.__dataclass_fields__) - {"source"}
    for key in data:
        if key not in known:
            raise ProfileError(shown(key, 60)[1:-1], f"unknown key (known: {', '.join(sorted(known))})")
    for key in ("id", "name", "emails"):
        if key not in data:
            raise ProfileError(key, "missing (id, name and emails are required)")

    profile_id = _string("id", data["id"], longest=LIMITS.id_chars)
    if not _ID.fullmatch(profile_id):
        raise ProfileError("id", f"{shown(profile_id)} must be letters, digits and '-'")
    name = _string("name", data["name"], longest=LIMITS.name_chars)
    if not name:
        raise ProfileError("name", "empty")
    emails = _emails(data["emails"])
    if not emails:
        raise ProfileError("emails", "at least one address is needed")
    language = _string("language", data.get("language", "da"), longest=LIMITS.name_chars)
    if language not in LANGUAGES:
        raise ProfileError("language", f"{shown(language)} is not one of {', '.join(LANGUAGES)}")
    cpv = _strings("cpv", data.get("cpv", []), pattern=_CPV, what="an 8-digit CPV code", most=LIMITS.cpv,
                   many="CPV codes")
    regions = _strings("regions", data.get("regions", []), most=LIMITS.regions, many="regions",
                       longest=LIMITS.name_chars)
    for region in regions:
        if not _NUTS.fullmatch(region) and municipality(region) is None:
            raise ProfileError("regions", f"{shown(region)} is not a country or NUTS code (like DK or DK01)"
                               " nor a Danish municipality (like Roskilde)")
    reserved = _strings("reserved_eligible", data.get("reserved_eligible", []), most=len(RESERVED_CODES),
                        many="codes")
    for code in reserved:
        if code not in RESERVED_CODES:
            raise ProfileError("reserved_eligible", f"{shown(code)} is not one of {', '.join(RESERVED_CODES)}")

    max_value = data.get("max_value")
    if max_value is not None:
        # Compared before float(): a TOML integer may have 400 digits (float() would overflow).
        if isinstance(max_value, bool) or not isinstance(max_value, (int, float)) or not max_value > 0 \
                or (isinstance(max_value, float) and not math.isfinite(max_value)):
            raise ProfileError("max_value", "expected a positive amount in DKK")
        if max_value > LIMITS.max_value:
            raise ProfileError("max_value", f"{_many(max_value)} DKK, at most {LIMITS.max_value:,.0f}")
        max_value = float(max_value)
    max_items = data.get("max_items", DEFAULT_MAX_ITEMS)
    if isinstance(max_items, bool) or not isinstance(max_items, int) or max_items < 1:
        raise ProfileError("max_items", "expected a whole number of at least 1")
    if max_items > LIMITS.max_items:
        raise ProfileError("max_items", f"{_many(max_items)} items, at most {LIMITS.max_items:,}")

    keywords = _strings("keywords", data.get("keywords", []), most=LIMITS.keywords, many="keywords",
                        longest=LIMITS.keyword_chars)
    exclude = _strings("exclude", data.get("exclude", []), most=LIMITS.exclude, many="exclude words",
                       longest=LIMITS.exclude_chars)
    description = _string("description", data.get("description", ""), longest=LIMITS.description_chars, lines=True)
    if not keywords and not cpv:
        raise ProfileError("keywords", "nothing to match on: give keywords or cpv codes")
    return Profile(
        id=profile_id,
        name=name,
        emails=emails,
        language=language,
        description=description,
        keywords=keywords,
        exclude=exclude,
        cpv=cpv,
        regions=regions,
        max_value=max_value,
        reserved_eligible=reserved,
        max_items=max_items,
        source=source,
    )
