"""What a profile looks for, as terms: each keyword with its synonyms and its translations
(``bridge``), grouped into concepts a lot counts once, and the description's words."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from . import rules
from .bridge import COMPOUNDING, keyword_trades, other_work, stems_key, translations
from .profiles import Profile
from .text import content_words, fold, is_generic

# The languages of profile keywords (Danish and English). In notices of other languages a
# keyword counts only as the very same word: inflection, compound and typo matches there
# make false friends (furniture/fourniture, reuse/creuse, linen/digitaalinen).
KEYWORD_LANGUAGES = frozenset({"da", "en", ""})


@dataclass(frozen=True)
class Term:
    """Something a profile looks for: one word or a phrase whose content words must all
    appear in the same field."""

    text: str
    words: tuple[str, ...]
    weight: float
    specific: bool  # can open the gate on its own (a real keyword, not a generic word)
    origin: str  # keyword | synonym | description | translation | related (another concept of its trade) | other-work
    language: str | None = None  # a translation or related term: looked up only in notices of this language
    source: str = ""  # where a translation comes from ("terms:canteen", "cpv:90910000")


@lru_cache(maxsize=1)
def synonym_groups() -> dict[str, tuple[str, ...]]:
    """Folded phrase -> the other phrases of its group, from ``data/synonyms.txt``."""
    text = resources.files(__package__).joinpath("data/synonyms.txt").read_text(encoding="utf-8")
    groups: dict[str, tuple[str, ...]] = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        members = [member.strip() for member in line.split("|") if member.strip()]
        for member in members:
            groups[fold(member)] = tuple(other for other in members if fold(other) != fold(member))
    return groups


@lru_cache(maxsize=262144)
def _term_keys(words: tuple[str, ...], language: str | None) -> tuple[tuple[str | None, tuple[str, ...]], ...]:
    """What makes two terms the same: a word counts once however many keywords lead to it.
    A translation is known by its stems ("peinture" from the term file and "peintures" from
    a CPV label are one); a Danish or English one that is also a keyword is that keyword."""
    if language is None:
        return ((None, words),)
    found: tuple[tuple[str | None, tuple[str, ...]], ...] = (
        (language, stems_key(words, language)),)
    return found + (((None, words),) if language in KEYWORD_LANGUAGES else ())


def _term(text: str, weight: float, origin: str) -> Term | None:
    """A keyword as a term: all its content words are needed (a generic word inside a
    phrase still narrows it: "work assessment" is not "assessment"); a keyword made only
    of generic words counts a little and never opens the gate."""
    found = content_words(text)
    if not found:
        return None
    if any(not is_generic(word) for word in found):
        return Term(text, tuple(found), weight, True, origin)
    return Term(text, tuple(found), rules.GENERIC_WEIGHT, False, origin)


_CONCEPTS: dict[tuple[Term, ...], tuple[Term, ...]] = {}  # every distinct concept, once


@lru_cache(maxsize=65536)
def _keyword_extension(keyword: str) -> tuple[_Extension, _Extension]:
    """A keyword's synonyms and translations as terms (each once), with their keys; then the
    other concepts of its trade, with theirs. The same for every profile that has the
    keyword, so worked out once."""
    seen: set[tuple[str | None, tuple[str, ...]]] = set()
    candidates = [_term(synonym, rules.SYNONYM_WEIGHT, "synonym")
                  for synonym in synonym_groups().get(fold(keyword), ())]
    found = translations(keyword)
    candidates += [Term(item.text, item.words, rules.TRANSLATION_WEIGHT, True, "translation", item.language,
                        item.source) for item in found if not item.related]
    own = _unseen(candidates, seen)
    own_keys = frozenset(seen)
    related = _unseen((Term(item.text, item.words, rules.RELATED_WEIGHT, True, "related", item.language,
                            item.source) for item in found if item.related), seen)
    return (own, own_keys), (related, frozenset(seen - own_keys))


_Extension = tuple[tuple[Term, ...], frozenset[tuple[str | None, tuple[str, ...]]]]


def _unseen(candidates: Iterable[Term | None], seen: set[tuple[str | None, tuple[str, ...]]]) -> tuple[Term, ...]:
    """The candidates whose words are not yet in ``seen`` (which they are added to), in order;
    and, in a language that builds compounds, another form of a word kept by this same call."""
    kept = []
    added: set[tuple[str | None, tuple[str, ...]]] = set()  # the keys first seen in this call
    for term in candidates:
        if term is None:
            continue
        keys = _term_keys(term.words, term.language)
        clashes = [key for key in keys if key in seen]
        if not clashes or _another_form(term, clashes, added):
            seen.update(keys)
            added.update(keys)
            kept.append(term)
    return tuple(kept)


def _another_form(term: Term, clashes: list[tuple[str | None, tuple[str, ...]]],
                  added: set[tuple[str | None, tuple[str, ...]]]) -> bool:
    """A one-word translation that shares only its stem with an earlier form kept in the same
    concept ("työnetsijä" after "työnetsijät"): stems compare the two the same, but as part
    of a compound only the form itself is found ("työnetsijäpalvelu",
    "Drucksachenherstellung"), so both are looked up. The concept still counts once, by its
    best form. The same word again (a synonym that is also a translation) is not another form."""
    return (term.language in COMPOUNDING and len(term.words) == 1
            and all(key[0] == term.language and key in added for key in clashes))


@lru_cache(maxsize=65536)
def profile_concepts(profile: Profile) -> tuple[tuple[Term, ...], ...]:
    """What a profile looks for, as concepts: each keyword with its synonyms and its
    translations, then the other concepts of its trade (a lot counts a concept once, by its
    best member, however many it holds), then each content word of the description (weak,
    never enough on its own). Each word set once: a word two keywords lead to belongs to the
    first, and every keyword's own words come before any keyword's relatives."""
    seen: set[tuple[str | None, tuple[str, ...]]] = set()
    concepts: list[tuple[Term, ...]] = []

    def members(*candidates: Term | None) -> tuple[Term, ...]:
        return _unseen(candidates, seen)

    keyword_terms = [_term(keyword, rules.KEYWORD_WEIGHT, "keyword") for keyword in profile.keywords]
    keyword_concepts = [members(term) for term in keyword_terms]  # the profile's own words first
    extensions = [_keyword_extension(keyword) if concept else None
                  for keyword, concept in zip(profile.keywords, keyword_concepts, strict=True)]
    # Then each keyword's synonyms and translations, and only after all of them the other
    # concepts of the keywords' trades: a word that is one keyword's synonym ("grass
    # cutting" for "græsslåning") counts as that, not as a weaker relative of another.
    for stage in (0, 1):
        for index, extension in enumerate(extensions):
            if extension is None:
                continue
            terms, keys = extension[stage]
            if seen.isdisjoint(keys):  # the common case: nothing shared with an earlier keyword
                seen.update(keys)
                keyword_concepts[index] += terms
            else:
                keyword_concepts[index] += members(*terms)
    concepts = [concept for concept in keyword_concepts if concept]
    # One object per distinct concept, so that tables can key their caches by identity
    # (hashing a concept of a hundred translated terms on every look-up is slow).
    concepts = [_CONCEPTS.setdefault(concept, concept) for concept in concepts]
    keyword_words = {word for concept in concepts for term in concept if term.language is None
                     for word in term.words}
    for surface in re.findall(r"\w+", profile.description):
        word = fold(surface)
        if len(word) >= 5 and not is_generic(word) and word not in keyword_words:
            concept = members(Term(surface.lower(), (word,), rules.DESCRIPTION_WEIGHT, False, "description"))
            if concept:
                concepts.append(_CONCEPTS.setdefault(concept, concept))
    return tuple(concepts)


@lru_cache(maxsize=65536)
def other_work_terms(profile: Profile) -> tuple[Term, ...]:
    """Other work of the trades of a profile's keywords (``bridge.other_work``), as terms
    looked up in the notices of their language: a lot whose title holds one is not sent.
    Left out: a phrase that is one of the profile's own terms (a laundry's "dry cleaning" is
    a cleaning firm's other work; a profile with both trades keeps it), and a phrase whose
    words a keyword holds all of (a cleaning firm that writes "industrial cleaning")."""
    trades = tuple(dict.fromkeys(trade for keyword in profile.keywords for trade in keyword_trades(keyword)))
    if not trades:
        return ()
    by_key, by_words = _other_work_index(trades)
    left_out: set[int] = set()
    for keyword in profile.keywords:
        left_out.update(number for key in _keyword_term_keys(keyword) & by_key.keys() for number in by_key[key])
        found = tuple(dict.fromkeys(content_words(keyword)))
        if len(found) <= 5:  # every part of the keyword's words (a phrase has a few words)
            for size in range(1, len(found) + 1):
                for part in itertools.combinations(found, size):
                    left_out.update(by_words.get(frozenset(part), ()))
    return _other_work_kept(trades, frozenset(left_out))


@lru_cache(maxsize=65536)
def _keyword_term_keys(keyword: str) -> frozenset[tuple[str | None, tuple[str, ...]]]:
    """The keys of a keyword and of every term it brings (synonyms, translations, its trade's
    other concepts); a Danish or English one by its stems in both languages."""
    (own, own_keys), (_, related_keys) = _keyword_extension(keyword)
    words = tuple(content_words(keyword))
    plain = [words] + [term.words for term in own if term.language is None]
    return own_keys | related_keys | {(language, stems_key(found, language))
                                      for found in plain if found for language in ("da", "en")}


@lru_cache(maxsize=4096)
def _other_work_index(trades: tuple[str, ...]) -> tuple[dict[tuple[str | None, tuple[str, ...]], list[int]],
                                                         dict[frozenset[str], list[int]]]:
    """The trades' other-work phrases by their stem key in their language, and by their words."""
    by_key: dict[tuple[str | None, tuple[str, ...]], list[int]] = {}
    by_words: dict[frozenset[str], list[int]] = {}
    for number, term in enumerate(_trade_other_work(trades)):
        language = term.language or ""
        by_key.setdefault((language, stems_key(term.words, language)), []).append(number)
        by_words.setdefault(frozenset(term.words), []).append(number)
    return by_key, by_words


@lru_cache(maxsize=4096)
def _trade_other_work(trades: tuple[str, ...]) -> tuple[Term, ...]:
    return tuple(Term(item.text, item.words, 0.0, False, "other-work", item.language, item.source)
                 for trade in trades for item in other_work(trade))


@lru_cache(maxsize=4096)
def _other_work_kept(trades: tuple[str, ...], left_out: frozenset[int]) -> tuple[Term, ...]:
    """One tuple object for every profile of the same trades and exceptions (tables cache
    their masks by its identity)."""
    return tuple(term for number, term in enumerate(_trade_other_work(trades)) if number not in left_out)


def own_words(profile: Profile) -> set[str]:
    """The folded words of a profile's keywords, their synonyms and its description: the
    words matched with the Danish and English rules (prefix, compound, typo)."""
    found = set()
    for keyword in profile.keywords:
        for text in (keyword, *synonym_groups().get(fold(keyword), ())):
            found.update(content_words(text))
    found.update(word for word in (fold(surface) for surface in re.findall(r"\w+", profile.description))
                 if len(word) >= 5 and not is_generic(word))
    return found


def profile_terms(profile: Profile) -> tuple[Term, ...]:
    """Every term of every concept of a profile, keywords first."""
    return tuple(term for concept in profile_concepts(profile) for term in concept)


@lru_cache(maxsize=4096)
def term_keywords(profile: Profile) -> dict[Term, str]:
    """Each term of a profile -> the keyword (or description word) it stands for."""
    return {term: concept[0].text for concept in profile_concepts(profile) for term in concept}
