"""Match many profiles against many notices at once.

``table.NoticeTable`` indexes the notices (see there); ``terms`` turns a profile into
the concepts it looks for. A profile word is looked up once in the vocabulary of the whole table (exact,
prefix, inside, stem and typo candidates found in bulk, each kept only if
``text.word_quality`` says so), giving for every word an array of the lots it hits; a
profile's score for every lot is then a few vector operations. Only the lots that pass
get a Python-level explanation. The result is the same as scoring each notice on its own
(``tests/matcher/test_engine.py`` checks this on real notices).
"""

from __future__ import annotations

import gc
import json
import multiprocessing
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from typing import Any

import numpy as np

from ..store.records import CpvFact, MatchFacts, NoticeRecord
from ..wording import reasons as wording
from . import places, rules
from .cpv import best_cpv_relation, cpv_label
from .profiles import Profile
from .table import (
    FIELD_NAMES,
    LOT_TITLE,
    NOTICE_TITLE,
    TITLE_QUALITY,
    NoticeTable,
    holds,
    label_words,
    lot_codes,
)
from .terms import Term, other_work_terms, own_words, profile_concepts, profile_terms, term_keywords
from .text import takes_place, word_quality, words


@dataclass(slots=True)
class Match:
    """One row of the match log: a notice sent to (matched for) a profile, through its best lot."""

    profile_id: str
    notice_id: str
    lot_id: str
    score: int
    rank: int
    reasons: list[str]  # why it fits (English; the digest words the facts in the reader's language)
    facts: MatchFacts = field(default_factory=lambda: MatchFacts())
    notes: list[str] = field(default_factory=list)  # what to know before bidding (too large, ...)
    kind: str = "tender"
    expires: str | None = None  # an agreement's end date
    deadline: str | None = None
    encoded: tuple[str, str] | None = field(default=None, repr=False, compare=False)  # reasons, facts as JSON

    def encode(self, *, slim: bool = False) -> Match:
        """Serialise reasons and facts now (in a worker process, not the one that writes);
        ``slim`` also drops the Python objects (``reason_texts`` decodes them again)."""
        self.encoded = (json.dumps(self.reasons, ensure_ascii=False), json.dumps(self.facts, ensure_ascii=False))
        if slim:
            self.reasons, self.facts, self.notes = [], {}, []
        return self

    def reason_texts(self) -> list[str]:
        """Why it fits, also of a slim match."""
        if not self.reasons and self.encoded:
            return json.loads(self.encoded[0])
        return self.reasons

    def note_texts(self) -> list[str]:
        """What to note, also of a slim match (rebuilt from its facts)."""
        if not self.notes and not self.facts and self.encoded:
            return wording.note_texts(json.loads(self.encoded[1]), language="en", standalone=True)
        return self.notes

    def as_row(self) -> dict[str, Any]:
        """The match as a row for ``Store.replace_matches`` (reasons and facts as JSON)."""
        if self.encoded is None:
            self.encode()
        reasons, facts = self.encoded  # type: ignore[misc]  # set just above
        return {"profile_id": self.profile_id, "notice_id": self.notice_id, "lot_id": self.lot_id,
                "score": self.score, "rank": self.rank, "reasons": reasons, "facts": facts,
                "kind": self.kind, "deadline": self.deadline, "expires": self.expires}


# -- scoring -----------------------------------------------------------------------------

def score_profile(table: NoticeTable, profile: Profile, *, min_relevance: float = rules.MIN_RELEVANCE,
                  keep: int | None = None) -> tuple[list[Match], int]:
    """The profile's best ``keep`` matches (all when None), ranked 1..n, each through
    its best lot; and how many matches there were in all."""
    if table.size == 0:
        return [], 0
    table.resolve_words([word for term in profile_terms(profile) if term.language is None for word in term.words])
    hits = np.zeros(table.size, dtype=np.float32)
    specific = np.zeros(table.size, dtype=np.float32)
    in_title = np.zeros(table.size, dtype=np.float32)
    label = np.zeros(table.size, dtype=np.float32)
    for concept in profile_concepts(profile):
        found = table.concept_hits(concept)
        if found.lots.size:
            hits[found.lots] += found.score
            specific[found.lots] = np.maximum(specific[found.lots], found.specific)
            in_title[found.lots] = np.maximum(in_title[found.lots], found.title)
        if found.code_lots.size:
            label[found.code_lots] = np.maximum(label[found.code_lots], found.code_score)
    cpv = np.zeros(table.size, dtype=np.float32)
    cpv_inside = np.zeros(table.size, dtype=bool)
    for code in profile.cpv:
        index, points, inside = table.cpv_hits(code)
        if index.size:
            cpv[index] = np.maximum(cpv[index], points)
            cpv_inside[index] |= inside
    # Code evidence counts once: the closest code, or a keyword in a code's label.
    codes = np.maximum(cpv, rules.LABEL_POINTS * label)

    candidates = np.flatnonzero((hits > 0) | (codes > 0))
    if candidates.size == 0:
        return [], 0
    relevance = rules.text_points(hits[candidates]) + codes[candidates]
    if not profile.keywords:  # a CPV-only profile: its codes are all it has to go on
        min_relevance = min(min_relevance, rules.CPV_ONLY_MIN_RELEVANCE)
    ours, others = table.reserved_masks(profile.reserved_eligible)
    own = specific[candidates]
    passing = (
        (relevance + rules.RESERVED_RELEVANCE_BONUS * ours[candidates] >= min_relevance - 1e-6)
        & ((in_title[candidates] >= rules.TITLE_MIN)
           | ((own >= rules.SPECIFIC_WITH_CPV_MIN) & (codes[candidates] >= rules.CPV_SUPPORT_MIN)
              & (cpv[candidates] > 0))
           | ((own >= rules.SPECIFIC_MIN) & (not profile.cpv))
           | (cpv_inside[candidates] & (not profile.keywords)))
        & table.region_mask(profile.regions)[candidates]
        & ~others[candidates]
    )
    if profile.cpv:
        passing &= ~table.other_goods_mask(profile.cpv)[candidates]
    if profile.exclude:
        passing &= ~table.excluded_mask(profile.exclude)[candidates]
    other_work = other_work_terms(profile)
    if other_work:  # "street cleaning" is not a cleaning firm's work, whatever words it shares
        flagged = np.flatnonzero(passing & table.title_mask(other_work)[candidates])
        for position in flagged.tolist():
            passing[position] = _names_own_work_apart(table, profile, int(candidates[position]), other_work)
    candidates, relevance = candidates[passing], relevance[passing]
    if candidates.size == 0:
        return [], 0
    score = rules.final_score(
        relevance,
        rules.social_points(reserved_for_profile=ours[candidates], social=table.lot_social[candidates]),
        rules.size_points(table.lot_value[candidates], profile.max_value),
    )
    # The notice's best lot: highest score, then the first lot.
    notices = table.lot_notice[candidates]
    order = np.lexsort((candidates, -score, notices))
    first = np.ones(order.size, dtype=bool)
    first[1:] = notices[order][1:] != notices[order][:-1]
    best = order[first]

    notices = notices[best]
    ranked = best[np.lexsort((notices, table.notice_deadline[notices], -score[best]))]
    shown = ranked if keep is None else ranked[:keep]
    lots = candidates[shown]
    counted = _counted_terms(table, profile, lots)
    return [
        explain(table, profile, int(lot), score=int(score[position]), rank=rank,
                     relevance=float(relevance[position]), terms=terms)
        for rank, (lot, position, terms)
        in enumerate(zip(lots.tolist(), shown.tolist(), counted, strict=True), start=1)
    ], int(ranked.size)

def _names_own_work_apart(table: NoticeTable, profile: Profile, lot_index: int, other_work: tuple[Term, ...]) -> bool:
    """Whether a lot whose titles hold other work of the profile's trades is still the
    profile's own work. A title that holds the other work must also name the own work in
    words the other work does not use: "Buurtwerk, Jongerenwerk en Sociaal Wijkteam" (youth
    work, and a social district team) and "Street cleaning and office cleaning" (a second
    "cleaning") yes; "Limpieza industrial de equipos e instalaciones" (industrial cleaning;
    "limpieza de instalaciones" has no cleaning word of its own) and "Gaderengøring" (street
    cleaning, whose compound holds "rengøring") no. The lot's own title decides when it holds
    the other work (a "Limpieza viaria" lot under "Limpieza viaria y limpieza de edificios" is
    street cleaning). When only the notice title holds it, the lot is part of that work (support
    persons in a child-welfare tender), unless the notice title names the own work apart too,
    or the notice splits its works between lots: this lot's title names the own work and a
    sibling lot's title the other work ("Lot 2 office cleaning" beside "Lot 1 street sweeping")."""
    present = table.title_terms(lot_index, other_work, cache=True)
    own: list[Term] = []
    for concept in profile_concepts(profile):  # only the concepts found in a title of this lot
        hits = table.concept_hits(concept)
        if holds(hits.lots, lot_index) and hits.title[np.searchsorted(hits.lots, lot_index)] > 0:
            own += table.title_terms(lot_index, tuple(term for term in concept if term.specific))
    lot_title, notice_title = table.title_sequences(lot_index)
    verdict = _own_work_apart(table, lot_title, present, own)
    if verdict is not None:
        return verdict
    if _own_work_apart(table, notice_title, present, own):
        return True
    if not _held(table, set(lot_title), own):
        return False
    notice = int(table.lot_notice[lot_index])
    siblings = range(int(table.notice_starts[notice]), int(table.notice_starts[notice + 1]))
    return any(_held(table, set(table.title_sequences(sibling)[0]), table.title_terms(sibling, other_work, cache=True))
               for sibling in siblings if sibling != lot_index)


def _title_words(table: NoticeTable, term: Term, tokens: set[int]) -> list[set[int]]:
    """For each word of the term that takes a place in a title (not a number or a connector
    such as "di", ``text.takes_place``), the title's tokens that are that word."""
    return [tokens.intersection(table.term_word_tokens(word, term.language)) for word in term.words
            if takes_place(word)]


def _title_holds(table: NoticeTable, tokens: set[int], term: Term) -> bool:
    """Whether a title's tokens hold every placed word of the term (``_title_words``), anywhere."""
    found = _title_words(table, term, tokens)
    return bool(found) and all(found)


def _held(table: NoticeTable, tokens: set[int], terms: list[Term]) -> list[Term]:
    """The terms a title's tokens hold (``_title_holds``)."""
    return [term for term in terms if _title_holds(table, tokens, term)]


def _own_work_apart(table: NoticeTable, title: Sequence[int], other_work: list[Term], own: list[Term]) -> bool | None:
    """None when the title (a token sequence) holds none of the other work; else whether it
    also names one of the ``own`` terms in occurrences of words the other work does not take."""
    tokens = set(title)
    holding = _held(table, tokens, other_work)
    if not holding:
        return None
    occurs = Counter(title)
    used: Counter[int] = Counter()  # how many of a token's occurrences the other work takes
    for term in holding:
        used.update({token for found in _title_words(table, term, tokens) for token in found})
    for term in own:
        found = _title_words(table, term, tokens)
        if found and all(found) and all(any(occurs[token] > used[token] for token in hits) for hits in found):
            return True
    return False


def _counted_terms(table: NoticeTable, profile: Profile, lots: np.ndarray) -> list[list[tuple[Term, int]]]:
    """For each lot, the term that counted for each concept that hit it (its best
    member) and the field where that term scored best."""
    counted: list[list[tuple[Term, int]]] = [[] for _ in range(lots.size)]
    for concept in profile_concepts(profile):
        found = table.concept_hits(concept)
        if found.lots.size == 0:
            continue
        position = np.minimum(np.searchsorted(found.lots, lots), found.lots.size - 1)
        for column in np.flatnonzero(found.lots[position] == lots).tolist():
            at = position[column]
            counted[column].append((concept[int(found.member[at])], int(found.field[at])))
    return counted

# -- reasons -----------------------------------------------------------------------------

def _as_written(text: str, tokens: list[str]) -> list[str]:
    """Folded words of ``text`` as the text writes them (lower case): a reason quotes
    "työnetsijäpalvelu" and "σίτιση", not their folded spellings. A word that cannot be
    placed is left folded."""
    if text.isascii():  # folding only lowered its letters
        return tokens
    written, folded = _written_and_folded(text)
    shown = []
    for token in tokens:
        # Folding keeps one word one word almost always: the word in the same place first,
        # then (where it split or joined words) word by word.
        aligned = [written[folded.index(token)]] if len(written) == len(folded) and token in folded else []
        shown.append(next((word.lower() for word in (*aligned, *written) if words(word) == [token]), token))
    return shown


@lru_cache(maxsize=4096)
def _written_and_folded(text: str) -> tuple[list[str], list[str]]:
    # Cached: a notice's title is quoted for every profile it matches, a term in every notice.
    return re.findall(r"\w+", text), words(text)


def _found(table: NoticeTable, term: Term, lot_index: int, field_id: int) -> str:
    """The words of a field that stood for the term's words ("kantinedriften"), as written:
    a title's words as the title writes them; in a description (too long to look words up
    in for every match: one full-scale match took 46.0 s with that, the next 39.2 s
    without) a word that is the term's own as the term writes it, another form folded."""
    tokens = table.field_tokens(lot_index, field_id)
    found = []
    for word in term.words:
        matches = table.term_word_tokens(word, term.language)
        if len(tokens) < len(matches):
            hits = [token_id for token_id in tokens if token_id in matches]
        else:
            hits = list(tokens.intersection(matches))
        # The best match, then the shortest word: the same whatever else the store holds.
        hit = min(hits, default=None,
                  key=lambda token_id: (-matches[token_id], len(table.tokens[token_id]), table.tokens[token_id]))
        found.append(table.tokens[hit] if hit is not None else word)
    if field_id in (LOT_TITLE, NOTICE_TITLE):
        owner: Any = table.records[table.lot_notice[lot_index]] if field_id == NOTICE_TITLE \
            else table.lot_refs[lot_index]
        return " ".join(_as_written(owner.get("title") or "", found))
    own_spelling = dict(zip(term.words, _as_written(term.text, list(term.words)), strict=True))
    return " ".join(own_spelling.get(token, token) for token in found)


@lru_cache(maxsize=65536)
def _label_holds(keyword_words: tuple[str, ...], code: str) -> bool:
    """Whether every word of a keyword is in the code's label (cached: the same keywords
    and codes come back for profile after profile)."""
    words_of_label = label_words(code)
    return all(any(word_quality(word, token) >= TITLE_QUALITY for token in words_of_label) for word in keyword_words)


def _label_fact(table: NoticeTable, profile: Profile, lot_index: int, codes: list[str]) -> CpvFact | None:
    """The first of the lot's codes whose label holds one of the profile's keywords (a
    concept whose code evidence reached the lot)."""
    for concept in profile_concepts(profile):
        keyword = concept[0]
        if not keyword.specific or keyword.language is not None:
            continue
        found = table.concept_hits(concept)
        if not holds(found.code_lots, lot_index):
            continue
        for code in codes:
            if _label_holds(keyword.words, code):
                return {"relation": "label", "profile_code": "", "code": code, "keyword": keyword.text,
                        "labels": {"en": cpv_label(code, "en"), "da": cpv_label(code, "da")}}
    return None

def explain(table: NoticeTable, profile: Profile, lot_index: int, *, score: int, rank: int, relevance: float,
            terms: list[tuple[Term, int]] | None = None) -> Match:
    """The match row for a profile and a lot: what made it fit and what to note, as
    facts (the digest words them in the reader's language) and in English words.
    ``terms``: the term that counted for each concept that hit the lot (computed here
    when not given)."""
    record = table.records[table.lot_notice[lot_index]]
    lot = table.lot_refs[lot_index]
    facts: MatchFacts = {"relevance": round(relevance, 1), "language": record.get("language")}

    if terms is None:
        terms = _counted_terms(table, profile, np.asarray([lot_index], dtype=np.int32))[0]
    keyword_of = term_keywords(profile)
    facts["keywords"] = [
        {"term": term.text, "origin": term.origin, "field": FIELD_NAMES[field_id],
         "found": _found(table, term, lot_index, field_id), "keyword": keyword_of[term],
         **({"language": term.language, "source": term.source} if term.language else {})}
        for term, field_id in terms]

    codes = lot_codes(record, lot)
    points, relation, profile_code, code = best_cpv_relation(profile.cpv, tuple(codes))
    if points:
        facts["cpv"] = {"relation": relation, "profile_code": profile_code, "code": code,
                        "labels": {"en": cpv_label(code, "en"), "da": cpv_label(code, "da")}}
    elif (label := _label_fact(table, profile, lot_index, codes)) is not None:
        facts["cpv"] = label

    value = table.lot_value[lot_index]
    facts["lot"] = {"lot_id": lot["lot_id"], "lots": len(record["lots"]), "title": lot.get("title"),
                    "value_dkk": None if np.isnan(value) else round(float(value)), "max_value": profile.max_value}
    # The lot's reservation as the table worked it out (not again over all the notice's lots).
    reserved_codes = table.reserved_groups[table.lot_reserved_group[lot_index]]
    facts["reserved"] = sorted(set(reserved_codes) & set(profile.reserved_eligible))
    facts["social"] = sorted(set(lot.get("social") or ()) | set(record.get("social") or ()))
    place = table.places[table.lot_nuts_group[lot_index]]
    facts["nuts"] = list(place.codes) if place.evidence == places.PLACE_OF_PERFORMANCE else []
    if profile.regions:
        facts["place"] = {"evidence": place.evidence, "codes": list(place.codes),
                          "municipality": place.municipality, "inside": places.inside(place, profile.regions),
                          "regions": list(profile.regions)}
    expires = record.get("valid_until") if record.get("kind") == "agreement" else None
    if record.get("kind") == "agreement":
        facts["agreement"] = {"supplier": record.get("supplier"), "expires": expires[:10] if expires else None}
    # The match log's and the CLI's words: English, from the same facts the digest words.
    fits = wording.reason_texts(facts, language="en", standalone=True)
    notes = wording.note_texts(facts, language="en", standalone=True)
    return Match(profile_id=profile.id, notice_id=record["id"], lot_id=lot["lot_id"], score=score, rank=rank,
                 reasons=fits, notes=notes, facts=facts, kind=record.get("kind", "tender"),
                 expires=expires[:10] if expires else None, deadline=record.get("deadline"))


_FORKED_TABLE: NoticeTable | None = None  # the table a forked worker inherited


def _match_chunk(args: tuple[list[Profile], float, int | None, bool]) -> tuple[list[list[Match]], int]:
    """Each profile's matches (a list per profile) and how many were found in all."""
    profiles, min_relevance, keep, forked = args
    # In a forked worker the table is the parent's, shared copy-on-write.
    assert _FORKED_TABLE is not None
    matches: list[list[Match]] = []
    found = 0
    for profile in profiles:
        kept, total = score_profile(_FORKED_TABLE, profile, min_relevance=min_relevance, keep=keep)
        if forked:  # sent to the parent slim (JSON only): half the memory there
            kept = [match.encode(slim=True) for match in kept]
        matches.append(kept)
        found += total
    return matches, found


def _affinity(profile: Profile) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Profiles of one trade sort together: their codes, then their keywords."""
    return tuple(sorted(profile.cpv)), tuple(sorted(keyword.casefold() for keyword in profile.keywords))


@contextmanager
def _out_of_the_collectors_sight() -> Iterator[None]:
    """The table and the profiles, built by now, live through the whole scoring. Frozen
    (``gc.freeze``), their millions of objects are no longer walked by every collection
    that scoring's many small arrays and tuples set off: scoring 5,000 notices for 10,000
    profiles took 7-10% less time, in one process and in two (the whole `match`, which also
    reads, indexes and writes, 2-6% less at the benchmark's scale). Before a fork the ``gc``
    documentation advises the same: the workers do not copy pages the collector would touch."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def match_profiles(table: NoticeTable, profiles: list[Profile], *, min_relevance: float = rules.MIN_RELEVANCE,
                   keep: int | None = None, workers: int = 1) -> tuple[list[Match], int]:
    """Every profile's matches (each profile's best ``keep``) and the number found in all.
    With ``workers`` > 1 and many profiles, forked processes share the built table and
    each scores a slice of the profiles (the result is the same, in the same order)."""
    with _out_of_the_collectors_sight():
        return _match_profiles(table, profiles, min_relevance=min_relevance, keep=keep, workers=workers)


def _match_profiles(table: NoticeTable, profiles: list[Profile], *, min_relevance: float,
                    keep: int | None, workers: int) -> tuple[list[Match], int]:
    global _FORKED_TABLE
    # The words of the profiles' own keywords and synonyms, resolved in bulk before any fork
    # (translations are looked up exactly or by stem, and are worked out in the workers).
    table.resolve_words({word for profile in profiles for word in own_words(profile)})
    if workers <= 1 or len(profiles) < 200 or "fork" not in multiprocessing.get_all_start_methods():
        _FORKED_TABLE = table
        try:
            per_profile, found = _match_chunk((profiles, min_relevance, keep, False))
        finally:
            _FORKED_TABLE = None
        return [match for kept in per_profile for match in kept], found
    # Slices of similar profiles: what a worker works out for one profile's codes and
    # keywords (hits, translations) it has cached for the next. Slices taken in profile
    # order made both workers work out nearly every code and keyword.
    order = sorted(range(len(profiles)), key=lambda position: _affinity(profiles[position]))
    size = max(1, len(profiles) // (workers * 8))
    slices = [order[start:start + size] for start in range(0, len(order), size)]
    chunks = [([profiles[position] for position in positions], min_relevance, keep, True) for positions in slices]
    _FORKED_TABLE = table
    try:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            results = pool.map(_match_chunk, chunks)
    finally:
        _FORKED_TABLE = None
    by_position: list[list[Match]] = [[] for _ in profiles]
    for positions, (per_profile, _) in zip(slices, results, strict=True):
        for position, kept in zip(positions, per_profile, strict=True):
            by_position[position] = kept
    return [match for kept in by_position for match in kept], sum(found for _, found in results)


def match_notices(profiles: list[Profile], records: list[NoticeRecord], *, as_of: date | None,
                  rates: dict[str, float] | None = None, min_relevance: float = rules.MIN_RELEVANCE) -> list[Match]:
    """Every profile's matches among the records, ranked within each profile."""
    table = NoticeTable.build(records, as_of=as_of, rates=rates)
    return match_profiles(table, profiles, min_relevance=min_relevance)[0]


def score_notice(profile: Profile, record: NoticeRecord, *, as_of: date | None = None,
                 rates: dict[str, float] | None = None, min_relevance: float = rules.MIN_RELEVANCE) -> Match | None:
    """One notice against one profile: its match (rank 1) or None when it would not be sent."""
    found = match_notices([profile], [record], as_of=as_of, rates=rates, min_relevance=min_relevance)
    return found[0] if found else None
