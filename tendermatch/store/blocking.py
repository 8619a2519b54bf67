"""Blocking keys for cross-source de-duplication: which stored notices are worth comparing
with a new one at all.

Two records are the same real notice only when their deadlines fall within a day of each
other and their titles are alike (``crawler.dedupe.same_real_notice``). Comparing a new
notice with every stored notice of a three-day window is quadratic when sources list
thousands of notices with deadlines close together, so the store keeps, for each notice
with a deadline, one row per (kind, deadline day, title word) in ``fuzzy_blocks``; a
new notice is compared only with the notices that share a day of its window and one of
its rarest title words (see ``Store.fuzzy_candidates``). Titles alike enough to be one
notice (token-sort ratio >= 88) share nearly all their words, so a rare shared word is
always there to find them.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from datetime import date, timedelta

_PUNCT = re.compile(r"[^\w]+")

# Words that tell no title apart (Danish and English function words): never a block.
STOP_WORDS = frozenset(
    "af at de den der det du en er et for fra i med og om på som til ved vedr samt hos under over efter"
    " inden mellem mod uden eller the of and to in on for by with from at a an or".split()
)


def normalise_text(text: str | None) -> str:
    """Lower case (case folded), NFKC, punctuation to spaces: how de-duplication compares
    titles and buyers (``crawler.dedupe`` uses it too, so the blocks and the comparison agree).
    Not the matcher's ``fold``: the store depends on no stage, and two copies of one notice are
    told apart by their own letters (æ and ae, Greek and its transliteration, stay different)."""
    if not text:
        return ""
    return _PUNCT.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def title_words(titles: Iterable[str | None]) -> set[str]:
    """The words of ``titles`` as de-duplication compares them (NFKC, case folded,
    punctuation as spaces: ``normalise_text``) without stop words and one-letter words; all
    the words when nothing else is left."""
    words: set[str] = set()
    for title in titles:
        if title:
            words.update(normalise_text(title).split())
    telling = {word for word in words if len(word) > 1 and word not in STOP_WORDS}
    return telling or words


def deadline_day(deadline: str | None) -> str | None:
    """The day of a stored deadline ('2027-03-01T12:00:00+01:00' -> '2027-03-01'), or None."""
    if not deadline or len(deadline) < 10:
        return None
    try:
        return date.fromisoformat(deadline[:10]).isoformat()
    except ValueError:
        return None


def days_between(first: str, end: str) -> list[str]:
    """The ISO days from ``first`` up to, not including, ``end`` (at most a week)."""
    try:
        start, stop = date.fromisoformat(first[:10]), date.fromisoformat(end[:10])
    except ValueError:
        return []
    return [(start + timedelta(days=n)).isoformat() for n in range(min(max((stop - start).days, 0), 7))]


def block_rows(notice_id: str, kind: str | None, deadline: str | None,
               titles: Iterable[str | None]) -> list[tuple[str, str, str, str]]:
    """The ``fuzzy_blocks`` rows (kind, day, word, notice_id) of one notice; none without
    a deadline (such notices are never matched by title)."""
    day = deadline_day(deadline)
    if day is None or not kind:
        return []
    return [(kind, day, word, notice_id) for word in sorted(title_words(titles))]
