"""A profile keyword in the notice's own language.

A Danish enterprise writes "rengøring" and "maling"; a French buyer writes "nettoyage" and
"peinture". Each keyword is bridged to the words other languages use for it, from two
reviewable sources:

* ``data/terms.toml``: concepts of the trades social enterprises work in, each with its
  words in every EU language (and Norwegian). A keyword links to a concept when it is one
  of the concept's Danish or English terms (compared by stem).
* ``data/cpv2008_all_languages.csv``: the CPV 2008 labels in the 24 EU languages (CC BY
  4.0, see ``data/SOURCES.md``). A keyword that is the distinctive part of a code's Danish
  or English label ("rengøring" = 90910000 "Rengøring") gives that label's distinctive
  words in every language ("nettoyage", "Reinigung...", "sprzątanie").

A translated term is looked up only in notices of its language, exactly or by stem (a
maintained Snowball stemmer per language, PyStemmer), or, in languages that build
compounds, as the last part of a compound; never with typos or inside a word, which in
foreign text makes false friends (furniture/fourniture, reuse/creuse).
"""

from __future__ import annotations

import csv
import io
import re
import tomllib
from collections import Counter
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from os.path import commonprefix
from typing import Any

import Stemmer

from .text import content_words

# Notice language (ISO 639-1) -> Snowball algorithm. Greek and Bulgarian notices are folded
# to Latin letters before matching, where the Greek and Russian stemmers do not apply; they
# and the languages Snowball lacks use the first TRUNCATE letters as the stem, the usual
# fallback for inflecting languages without a stemmer (checked by ``same_word``).
ALGORITHMS = {
    "cs": "czech", "da": "danish", "de": "german", "en": "english", "es": "spanish", "et": "estonian",
    "fi": "finnish", "fr": "french", "ga": "irish", "hu": "hungarian", "it": "italian", "lt": "lithuanian",
    "nl": "dutch", "no": "norwegian", "nb": "norwegian", "pl": "polish", "pt": "portuguese", "ro": "romanian",
    "sk": "czech", "sv": "swedish",
}
TRUNCATE = 6
MAX_ENDING = 3  # letters of an inflection ending, where TRUNCATE stands in for a stemmer
STEM_ENDING = 4  # letters a stem match may differ in at the end ...
LONG_ENDINGS = {"fi": 6, "et": 6, "hu": 6}  # ... in languages that stack case endings ("työnhakijoille")
# Languages that write compounds as one word: a term also matches as a compound's first or
# last part ("reinigungsdienste", "unterhaltsreinigung" for "reinigung"), when the term has
# at least MIN_COMPOUND_HEAD letters.
COMPOUNDING = frozenset({"da", "de", "nl", "sv", "no", "nb", "fi", "et", "hu"})
MIN_COMPOUND_HEAD = 6
CPV_LANGUAGES = ("bg", "cs", "da", "de", "el", "en", "es", "et", "fi", "fr", "ga", "hr", "hu", "it", "lt", "lv",
                 "mt", "nl", "pl", "pt", "ro", "sk", "sl", "sv")
# A word in more than this share of a language's CPV labels ("services", "Dienste",
# "usługi", "travaux") names no trade: it is left out of the label's distinctive words.
LABEL_GENERIC_SHARE = 0.012


@dataclass(frozen=True, slots=True)
class Translation:
    """A keyword's equivalent in one language: its folded content words (all needed, in
    one field), where it comes from ("terms:canteen", "cpv:90910000"), and whether it is
    the keyword's own concept or another concept of the same trade (``related``: a
    catering enterprise that writes "catering" also does school meals)."""

    language: str
    text: str
    words: tuple[str, ...]
    source: str
    related: bool = False


@lru_cache(maxsize=64)
def _stemmer(language: str) -> Stemmer.Stemmer | None:
    algorithm = ALGORITHMS.get(language)
    return Stemmer.Stemmer(algorithm) if algorithm else None


@lru_cache(maxsize=262144)
def stem_key(word: str, language: str) -> str:
    """The stem a folded word is compared by in ``language``."""
    stemmer = _stemmer(language)
    if stemmer is None:
        return word[:TRUNCATE]
    return stemmer.stemWord(word)


def same_word(word: str, token: str, language: str) -> bool:
    """Whether a notice's token with the word's stem key is the word in another form, not
    another word. A stemmer also cuts derivations to one stem (English "employability",
    "employment" and "employer" are all "employ"): the two may then differ only in their
    last STEM_ENDING letters. Without a stemmer the key is only the first TRUNCATE letters,
    which a long word shares with unrelated words (Latvian "ģenerāltīrīšana", general
    cleaning, and "ģeneratoru", of generators): the two must agree up to an ending of at
    most MAX_ENDING letters."""
    if _stemmer(language) is not None:
        # Folding writes "ä" as "ae": "Krankenhäusern" is "krankenhaeusern", an umlaut plural.
        word, token = (_UMLAUTS.sub(lambda pair: pair.group()[0], text) for text in (word, token))
        return max(len(word), len(token)) - _shared_start(word, token) <= LONG_ENDINGS.get(language, STEM_ENDING)
    return _shared_start(word, token) >= min(len(word), len(token)) - MAX_ENDING


_UMLAUTS = re.compile(r"[aou]e")


def _shared_start(word: str, token: str) -> int:
    # Character by character is what is meant here: two words, not two paths.
    return len(commonprefix((word, token)))  # noqa: RUF071


def stem_keys(words: list[str], language: str) -> list[str]:
    """``stem_key`` of many words at once (one call into the stemmer's C loop)."""
    stemmer = _stemmer(language)
    if stemmer is None:
        return [word[:TRUNCATE] for word in words]
    return stemmer.stemWords(words)


def stems_key(words: tuple[str, ...] | list[str], language: str) -> tuple[str, ...]:
    """A term's words compared by stem, in any order: how two terms are known as the same."""
    return tuple(sorted(stem_key(word, language) for word in words))


def _data_tables(file_name: str, key: str) -> dict[str, dict[str, Any]]:
    """The tables under ``key`` of a TOML file in ``data/`` (none when the file is missing)."""
    path = resources.files(__package__).joinpath(f"data/{file_name}")
    if not path.is_file():
        return {}
    return dict(tomllib.loads(path.read_text(encoding="utf-8")).get(key, {}))


def _by_language(table: dict[str, Any]) -> dict[str, list[str]]:
    """A table's lists: language -> phrases."""
    return {language: list(phrases) for language, phrases in table.items() if isinstance(phrases, list)}


def _as_translations(by_language: dict[str, list[str]], source: str, *,
                     related: bool = False) -> tuple[Translation, ...]:
    """Phrases per language as translations, their content words folded once."""
    return tuple(Translation(language, phrase, words, source, related)
                 for language, phrases in by_language.items() for phrase in phrases
                 if (words := tuple(content_words(phrase))))


@lru_cache(maxsize=1)
def _term_file() -> dict[str, dict[str, Any]]:
    """concept id -> its table in ``data/terms.toml`` (read once: two indexes need it)."""
    return _data_tables("terms.toml", "concepts")


@lru_cache(maxsize=1)
def _concepts() -> dict[str, dict[str, list[str]]]:
    """concept id -> language -> terms, from ``data/terms.toml``."""
    return {name: _by_language(table) for name, table in _term_file().items()}


@lru_cache(maxsize=1)
def _concept_index() -> dict[tuple[str, tuple[str, ...]], tuple[str, ...]]:
    """(language, stemmed Danish or English term) -> the concepts it names."""
    index: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    for name, languages in _concepts().items():
        for language in ("da", "en"):
            for term in languages.get(language, ()):
                found = content_words(term)
                if found:
                    index.setdefault((language, stems_key(found, language)), []).append(name)
    return {key: tuple(dict.fromkeys(names)) for key, names in index.items()}


@lru_cache(maxsize=1)
def _cpv_labels() -> dict[str, dict[str, str]]:
    """code -> language -> label."""
    text = resources.files(__package__).joinpath("data/cpv2008_all_languages.csv").read_text(encoding="utf-8")
    labels: dict[str, dict[str, str]] = {}
    for row in csv.DictReader(io.StringIO(text)):
        code = row.pop("code")
        labels[code] = {language: label for language, label in row.items() if label}
    return labels


def count_generic_words(labels: dict[str, dict[str, str]]) -> dict[str, list[str]]:
    """Per language, the folded words in more than LABEL_GENERIC_SHARE of the labels. Slow
    (every label of 24 languages): ``data/cpv_generic_words.txt`` ships the result, and a
    test checks it against the labels."""
    counts: dict[str, Counter[str]] = {language: Counter() for language in CPV_LANGUAGES}
    for by_language in labels.values():
        for language, label in by_language.items():
            counts[language].update(set(content_words(label)))
    return {language: sorted(word for word, count in counted.items() if count > LABEL_GENERIC_SHARE * len(labels))
            for language, counted in counts.items()}


@lru_cache(maxsize=1)
def _generic_words() -> dict[str, frozenset[str]]:
    text = resources.files(__package__).joinpath("data/cpv_generic_words.txt").read_text(encoding="utf-8")
    generic: dict[str, frozenset[str]] = {}
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            language, _, words = line.partition(":")
            generic[language.strip()] = frozenset(words.split())
    return generic


def distinctive_words(label: str, language: str) -> tuple[str, ...]:
    """The words of a CPV label that name its trade (common label words left out)."""
    generic = _generic_words().get(language, frozenset())
    return tuple(word for word in content_words(label) if word not in generic and len(word) > 2)


@lru_cache(maxsize=1)
def _cpv_index() -> dict[tuple[str, tuple[str, ...]], tuple[str, ...]]:
    """(language, stemmed distinctive words of a Danish or English label) -> the codes so labelled."""
    index: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    for code, by_language in _cpv_labels().items():
        for language in ("da", "en"):
            words = distinctive_words(by_language.get(language, ""), language)
            if words:
                index.setdefault((language, stems_key(words, language)), []).append(code)
    return {key: tuple(codes) for key, codes in index.items()}


def _keyword_keys(keyword: str) -> set[tuple[str, tuple[str, ...]]]:
    """The keyword read as Danish and as English: (language, its stemmed words)."""
    found = content_words(keyword)
    return {(language, stems_key(found, language)) for language in ("da", "en")} if found else set()


@lru_cache(maxsize=65536)
def keyword_concepts(keyword: str) -> tuple[str, ...]:
    """The term-file concepts a profile keyword names."""
    index = _concept_index()
    return tuple(dict.fromkeys(name for key in _keyword_keys(keyword) for name in index.get(key, ())))


def _same_words(keyword_words: list[str], label_words: tuple[str, ...]) -> bool:
    """Stems can join unrelated words ("ledige" and "ledere" are both "led" in Danish): a
    keyword names a label only when each word pair is the same word up to an ending."""
    return len(keyword_words) == len(label_words) and all(
        any(a.startswith(b) or b.startswith(a) for b in label_words) for a in keyword_words)


def _branch(code: str) -> str:
    stripped = code.rstrip("0")
    return stripped if len(stripped) >= 2 else code[:2]


@lru_cache(maxsize=65536)
def related_concepts(keyword: str) -> tuple[str, ...]:
    """The other concepts of the trades of the keyword's concepts."""
    own = keyword_concepts(keyword)
    trades = keyword_trades(keyword)
    return tuple(name for name, trade in _trades().items() if trade in trades and name not in own)


@lru_cache(maxsize=65536)
def keyword_trades(keyword: str) -> tuple[str, ...]:
    """The trades of the term-file concepts a keyword names."""
    return tuple(dict.fromkeys(_trades()[name] for name in keyword_concepts(keyword)))


@lru_cache(maxsize=1)
def _other_work_file() -> dict[str, dict[str, list[str]]]:
    """trade -> language -> phrases, from ``data/other_work.toml``."""
    return {trade: _by_language(table) for trade, table in _data_tables("other_work.toml", "trades").items()}


@cache
def other_work(trade: str) -> tuple[Translation, ...]:
    """Work a tender may describe in the trade's own words that its enterprises do not do
    ("street cleaning" for cleaning, "road marking" for painting), per language, from
    ``data/other_work.toml``."""
    return _as_translations(_other_work_file().get(trade, {}), f"other-work:{trade}")


@lru_cache(maxsize=1)
def _trades() -> dict[str, str]:
    return {name: str(table.get("trade", name)) for name, table in _term_file().items()}


@lru_cache(maxsize=65536)
def keyword_codes(keyword: str) -> tuple[str, ...]:
    """The CPV codes whose Danish or English label is the keyword ("rengøring" ->
    90910000): the broadest of them (a code inside another's branch is left out), services
    and works before goods ("painting" is painting work, not paints, when both exist)."""
    words = content_words(keyword)
    labels = _cpv_labels()
    codes = [code for key in _keyword_keys(keyword) for code in _cpv_index().get(key, ())
             if _same_words(words, distinctive_words(labels[code].get(key[0], ""), key[0]))]
    codes = list(dict.fromkeys(codes))
    work = [code for code in codes if code[:2] == "45" or code[:2] >= "50"]
    codes = work or codes
    broadest = [code for code in codes if not any(other != code and code.startswith(_branch(other))
                                                     for other in codes)]
    return tuple(broadest) if len(broadest) <= 3 else ()


@cache
def _concept_translations(name: str, *, related: bool) -> tuple[Translation, ...]:
    """A concept's terms as translations, folded once (``related``: another concept of the
    keyword's trade, see ``translations``)."""
    return _as_translations(_concepts()[name], f"terms:{name}", related=related)


@cache
def _code_translations(code: str) -> tuple[Translation, ...]:
    """A CPV code's labels in every language as translations (their distinctive words)."""
    found = []
    for language, label in _cpv_labels()[code].items():
        words = distinctive_words(label, language)
        if words:
            found.append(Translation(language, label, words, f"cpv:{code}"))
    return tuple(found)


@lru_cache(maxsize=65536)
def translations(keyword: str) -> tuple[Translation, ...]:
    """A keyword's equivalents in every other language, from the term file and from the
    CPV labels (each phrase once per language); then the trade's other concepts, in every
    language, Danish and English too: a printer that writes "tryksager" and "printing" also
    sets publications ("graphic design", "typesetting"), a tester who writes "software
    testing" also tests security ("penetration testing"). ``terms.profile_concepts`` lets
    them count only where no keyword, synonym or translation claimed the words first, and
    ``rules.RELATED_WEIGHT`` counts them less."""
    found: dict[tuple[str, tuple[str, ...]], Translation] = {}
    groups = [_concept_translations(name, related=False) for name in keyword_concepts(keyword)]
    groups += [_code_translations(code) for code in keyword_codes(keyword)]
    groups += [_concept_translations(name, related=True) for name in related_concepts(keyword)]
    for group in groups:
        for item in group:
            found.setdefault((item.language, item.words), item)
    return tuple(found.values())
