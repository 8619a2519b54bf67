"""Danish-aware text normalisation and the one rule for "does this word match that token".

Everything is folded the same way on both sides: lower case, æ -> ae, ø -> oe, å -> aa
(so "køkken" and "koekken" meet), other accents dropped, punctuation to spaces. A profile
word matches a notice token exactly, as the start of a longer word (inflections and
compounds: "kantine" in "kantinedriften"; a four-letter word only with an inflection ending),
inside a compound ("pudsning" in
"vinduespudsning"), by its stem ("vinduer" -> "vindue" in "vinduespolering"), or with a
small typo ("rengørnig").
"""

from __future__ import annotations

import re
from functools import lru_cache

from anyascii import anyascii
from rapidfuzz.distance import Levenshtein

# How good a word-to-token match is; the scores multiply into the text relevance.
EXACT = 1.0
PREFIX = 0.9  # the word starts a longer token: an inflection or the first part of a compound
INSIDE = 0.85  # the word ends or sits inside a compound
STEM = 0.85  # the word's stem starts the token: "vinduer" -> "vindue..."
TYPO = 0.8  # one edit (two for long words)

MIN_PREFIX = 5  # a shorter word starts a token only as an inflection: "park" -> "parken", not "parkering"
MIN_INSIDE = 5
MIN_TYPO = 9  # shorter words have too many one-letter neighbours ("painting" is not "printing")
# Endings that make an inflection of a short word (4 letters) rather than a new word.
INFLECTIONS = ("e", "en", "er", "erne", "ene", "et", "s", "es")

_FOLD = str.maketrans({"æ": "ae", "ø": "oe", "å": "aa", "ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss"})

# Words that say nothing about the trade; they are dropped from phrases and a profile
# word among them counts only a little and never makes a match on its own.
STOPWORDS = frozenset(
    """af og i til for med paa en et de den det som fra ved om eller samt efter under over
    the of and to in for with on a an by or from at as its their our your
    le la les des du de et en pour un une der die das und fuer von zu im mit el los las y
    del para al
    where which that this these those have has had been being were will would shall should could
    also more most some such they them than then into only over under each many other about
    hvor hvis ogsaa andre vores deres vaere blive bliver bliv har havde kan skal vil ikke alle
    mange flere meget mere hele blandt samme egen eget egne""".split()
)
# Function words of the other EU languages (folded: Greek and Bulgarian in Latin letters).
# Only skipped where a phrase's words must stand together ("raccolta di rifiuti", "wassen
# van ramen", "sluzhebna stolova na"): as stopwords they would also leave the phrases.
CONNECTORS = frozenset(
    """aan agli ai ale alla apo ar av az bei bij con cu da degli dei della delle dello di din dla
    do door dos e ed een egy ehk em es foer fraan gia gli het il ili ir ja kai lo me met na naar
    nas negli nei nel nella ning no nos och od op oraz ot par pe pela pelo pentru per po pri prin
    pro przez przy se sekae si sti stin sto ston su tai te ter till tis ton toy uit um uma una
    vagy vai van vid voi voor za ze""".split()
)
GENERIC_WORDS = frozenset(
    """service services serviceydelser ydelse ydelser levering leverance leverancer indkoeb koeb
    drift udbud rammeaftale rammeaftaler aftale aftaler kontrakt kontrakter opgave opgaver arbejde
    arbejder loesning loesninger produkter produkt udstyr system systemer support diverse andre
    anden andet kommune kommunen region regionen offentlig virksomhed forskellige
    supply supplies provision provide procurement purchase contract contracts framework agreement
    agreements works work solution solutions product products equipment management general
    various other miscellaneous related public municipality council delivery""".split()
)


class _Characters(dict[int, str]):
    """str.translate table that transliterates each character the first time it is met and
    remembers it: Greek and Cyrillic become Latin letters ("καθαριότητα" -> "kathariotita",
    "почистване" -> "pochistvane"), accents go ("é" -> "e", "ł" -> "l"). Dropping what is
    not ASCII would delete whole Greek and Bulgarian notices."""

    def __missing__(self, code: int) -> str:
        value = self[code] = anyascii(chr(code)).lower()
        return value


class _Runs(dict[str, str]):
    """Each run of non-ASCII characters, folded the first time it is met and remembered:
    runs (mostly whole words) repeat across notices. Dropped when it grows large."""

    def __missing__(self, run: str) -> str:
        if len(self) > 500_000:
            self.clear()
        value = self[run] = run.translate(_FOLD).translate(_CHARACTERS)
        return value


_CHARACTERS = _Characters()
_RUNS = _Runs()
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")
# bytes.translate: every byte that is not a folded letter or digit becomes a space. A byte
# table is a C array lookup; str.translate or a regular expression over the text took most
# of the time it takes to index a store.
_WORD_BYTES = bytes(byte if chr(byte) in "0123456789abcdefghijklmnopqrstuvwxyz" else 32 for byte in range(256))


def _folded_bytes(text: str) -> bytes:
    """The text lower-cased and transliterated, as ASCII bytes with every non-word byte a space."""
    text = text.lower()
    if not text.isascii():  # most text is plain ASCII: skip the slow step for it
        text = _NON_ASCII.sub(lambda run: _RUNS[run.group()], text)
    return text.encode("ascii").translate(_WORD_BYTES)


def fold(text: str) -> str:
    """Lower case, Danish letters spelled out, accents dropped, other scripts (Greek,
    Cyrillic) transliterated to Latin letters, punctuation to spaces."""
    return " ".join(_folded_bytes(text).decode("ascii").split())


def words(text: str | None) -> list[str]:
    """The folded words of a text, stopwords kept (phrases drop them, see ``content_words``)."""
    return _folded_bytes(text).decode("ascii").split() if text else []


def content_words(text: str | None) -> list[str]:
    """Folded words without stopwords and one-letter words, in order, each once."""
    seen: dict[str, None] = {}
    for word in words(text):
        if len(word) > 1 and word not in STOPWORDS:
            seen.setdefault(word, None)
    return list(seen)


def placed_words(text: str | None) -> list[str]:
    """A text's folded words that take a place between a phrase's words, in order, repeats
    kept: not stopwords, other languages' connectors, one-letter words or numbers (a count
    stands inside a phrase: "nettoyage de 60 bâtiments", "cleaning of 12 schools")."""
    return [word for word in words(text) if len(word) > 1 and word not in STOPWORDS and takes_place(word)]


def takes_place(word: str) -> bool:
    """Whether a content word takes a place between a phrase's words (see ``placed_words``)."""
    return word not in CONNECTORS and not word.isdigit()


def is_generic(word: str) -> bool:
    """A folded word that alone says nothing about the work ("service", "levering")."""
    return word in GENERIC_WORDS or word in STOPWORDS


_SUFFIXES = ("erne", "ene", "ers", "er", "en", "et", "es", "e", "s", "ing", "ning")


@lru_cache(maxsize=65536)
def stem(word: str) -> str | None:
    """A light Danish/English stem: the word without one common ending, when at least
    ``MIN_PREFIX`` letters remain and the stem differs from the word; else None."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= MIN_PREFIX:
            return word[: -len(suffix)]
    return None


def max_typos(word: str) -> int:
    """Edits tolerated for a word: none under ``MIN_TYPO`` letters, else one (two would
    let cognates in other languages through: "distribution" / "distribuzione")."""
    return 0 if len(word) < MIN_TYPO or not word.isalpha() else 1


def word_quality(word: str, token: str) -> float:
    """How well a folded profile word matches a folded notice token: 0 for no match.

    The single definition of a word match: the matcher's index only finds candidate
    tokens quickly and keeps those this function scores above 0.
    """
    if token == word:
        return EXACT
    if token.startswith(word) and (len(word) >= MIN_PREFIX or (len(word) == 4 and token[4:] in INFLECTIONS)):
        return PREFIX
    if len(word) >= MIN_INSIDE and word in token:
        return INSIDE
    word_stem = stem(word)
    if word_stem is not None and token.startswith(word_stem) and len(token) > len(word_stem) \
            and (len(word_stem) >= MIN_PREFIX or token[len(word_stem):] in INFLECTIONS):
        return STEM
    # A typo keeps the first letter (people rarely mistype it, and words in neighbouring
    # languages differ there: "messenger" / "passenger").
    allowed = max_typos(word)
    if (allowed and abs(len(token) - len(word)) <= allowed and token[:1] == word[:1]
            and Levenshtein.distance(word, token, score_cutoff=allowed) <= allowed):
        return TYPO
    return 0.0
