"""The notices of a match, indexed: ``NoticeTable.build`` reads the notices that can still be
sent (``rules.skip_reason``), splits every lot into fields (titles, CPV labels,
descriptions) and indexes their folded words; the table then answers where a word, a
translated term, a concept or a CPV code hits, as arrays of lots, and which lots a region,
a reservation or an exclude word rules out.

Over 500 lines on purpose: one class whose look-ups share its private arrays and caches;
scoring and reasons are in ``engine``, the profile side in ``terms``.
"""

from __future__ import annotations

import bisect
from array import array
from collections import defaultdict
from collections.abc import Iterable
from datetime import date
from functools import lru_cache
from itertools import repeat
from typing import Any, NamedTuple

import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from ..store.records import Lot, NoticeRecord
from . import places, rules
from .bridge import COMPOUNDING, MIN_COMPOUND_HEAD, same_word, stem_key, stem_keys
from .cpv import branch, cpv_label, cpv_relation
from .terms import KEYWORD_LANGUAGES, Term
from .text import STEM, content_words, max_typos, placed_words, stem, takes_place, word_quality, words

# Fields of a lot; a notice-level field is shared by all the notice's lots. The labels of
# broad CPV codes (a division or group, like 90000000 "Sewage, refuse, cleaning and
# environmental services") name many trades at once, so they count as little as a description.
# Translated titles are weighed apart: TED's are machine-made from the main CPV code's label
# ("Danmark-København: Rengøring"), so they are no stronger than a CPV label.
LOT_TITLE, NOTICE_TITLE, LOT_CPV, LOT_CPV_BROAD, LOT_DESCRIPTION, NOTICE_DESCRIPTION, NOTICE_TRANSLATION = range(7)
FIELD_KINDS = ("title", "title", "cpv", "cpv-broad", "description", "description", "translation")
NOTICE_LEVEL = (False, True, False, False, False, True, True)
FIELD_NAMES = ("lot title", "title", "CPV label", "CPV label", "lot description", "description",
               "translated title")
TITLE_FIELDS = (LOT_TITLE, NOTICE_TITLE)
# The notice's own words are text evidence. CPV labels and the translated titles (made from
# the main code's label) are code evidence: counting them as text too would count a broad
# code twice, once as a code and once as "text".
OWN_FIELDS = (LOT_TITLE, NOTICE_TITLE, LOT_DESCRIPTION, NOTICE_DESCRIPTION)
CODE_FIELDS = (LOT_CPV, LOT_CPV_BROAD, NOTICE_TRANSLATION)
TITLE_QUALITY = 0.8  # a keyword counts as named by a code's label from this match quality
# Match quality of a translated term by how it was found in the notice.
TRANSLATED_EXACT, TRANSLATED_STEM, TRANSLATED_COMPOUND = 1.0, 0.95, 0.85
LOT_FIELDS = (LOT_TITLE, LOT_CPV, LOT_CPV_BROAD, LOT_DESCRIPTION)
# Each CPV code's label is indexed once, by code (the field's units are codes, mapped to
# their lots on a hit), so a phrase cannot be made of words from two labels ("executive
# search" from "Executive services" + "Job search"), and a label shared by thousands of lots
# costs one posting per word, not thousands.
CODE_LEVEL = (False, False, True, True, False, False, False)
BROAD_CPV_DIGITS = 3  # a code whose branch has this many digits or fewer is broad


@lru_cache(maxsize=65536)
def label_text(code: str) -> tuple[str, bool]:
    """A code's English and Danish labels as one text, and whether the code is broad."""
    return f"{cpv_label(code, 'en')} {cpv_label(code, 'da')}", len(branch(code)) <= BROAD_CPV_DIGITS


@lru_cache(maxsize=65536)
def label_words(code: str) -> frozenset[str]:
    return frozenset(words(f"{cpv_label(code, 'en')} {cpv_label(code, 'da')}"))


@lru_cache(maxsize=65536)
def folded_phrase(text: str) -> str:
    return " ".join(content_words(text))


def lot_reserved_codes(record: NoticeRecord, lot: Lot, *, lots_say: bool | None = None) -> set[str]:
    """The reserved-participation codes of a lot; a reservation stated only on the notice
    (no lot carries one) applies to every lot. ``lots_say``: whether any lot carries one,
    when the caller already knows."""
    if lot.get("reserved"):
        return set(lot["reserved"])
    if lots_say if lots_say is not None else any(other.get("reserved") for other in record["lots"]):
        return set()
    return set(record.get("reserved") or ())


def lot_codes(record: NoticeRecord, lot: Lot) -> list[str]:
    """A lot's CPV codes, its own first (the first is its main code), then the notice's."""
    return list(dict.fromkeys([*(lot.get("cpv") or ()), *(record.get("cpv") or ())]))


def _best_positions(index: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Positions of the largest score of each index, in index order."""
    if index.size < 2 or bool(np.all(index[1:] > index[:-1])):  # already one per index (most terms)
        return np.arange(index.size)
    order = np.lexsort((-score, index))
    first = np.ones(index.size, dtype=bool)
    first[1:] = index[order][1:] != index[order][:-1]
    return order[first]


def holds(sorted_values: np.ndarray, value: int) -> bool:
    """Whether a sorted array holds the value."""
    at = int(np.searchsorted(sorted_values, value))
    return at < sorted_values.size and bool(sorted_values[at] == value)


def _sparse_max(index: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique sorted indexes with the largest score of each."""
    if index.size == 0:
        return index.astype(np.int32), score.astype(np.float32)
    best = _best_positions(index, score)
    return index[best], score[best]


def _best_of(parts: list[np.ndarray], scores: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The hits of several tokens as unique units with the best score of each."""
    if not parts:
        return np.empty(0, dtype=np.int32), np.empty(0, dtype=np.float32)
    return _sparse_max(np.concatenate(parts), np.concatenate(scores))


def _intersect_min(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    common, ia, ib = np.intersect1d(a[0], b[0], assume_unique=True, return_indices=True)
    return common, np.minimum(a[1][ia], b[1][ib])


_GRAM = 4  # the shortest word looked for inside longer tokens


class TermHits(NamedTuple):
    """Where a term is found (see ``NoticeTable.term_hits``)."""

    lots: np.ndarray
    score: np.ndarray
    title: np.ndarray
    field: np.ndarray
    code_lots: np.ndarray
    code_score: np.ndarray


@lru_cache(maxsize=1)
def _no_hits() -> TermHits:
    """A term found nowhere (read-only arrays: one object for every such term)."""
    arrays = [np.empty(0, dtype=dtype) for dtype in (np.int32, np.float32, np.float32, np.int8, np.int32, np.float32)]
    for array_ in arrays:
        array_.flags.writeable = False
    return TermHits(*arrays)


class ConceptHits(NamedTuple):
    """A concept's evidence per lot (see ``NoticeTable.concept_hits``)."""

    lots: np.ndarray
    score: np.ndarray
    specific: np.ndarray
    title: np.ndarray
    code_lots: np.ndarray
    code_score: np.ndarray
    member: np.ndarray  # which of the concept's terms counted for the lot
    field: np.ndarray  # and in which field


@lru_cache(maxsize=65536)
def phrase_span(text: str, term_words: tuple[str, ...]) -> int:
    """How many of a field's content words a phrase's words may spread over: as many as the
    term itself writes, its connectors included ("raccolta di rifiuti", "wassen van ramen":
    the stopword list knows five languages only), and at least its words. So a phrase stands
    side by side, in any order ("cleaning of offices", "office cleaning"); one more word
    between ("Employment Law Services" for "employment services") named other work as often
    as not on the tuning half."""
    return max(len(_placed(term_words)), len(placed_words(text)))


def _placed(term_words: tuple[str, ...]) -> list[str]:
    """A term's words (content words already) that take a place in a field."""
    return [word for word in term_words if takes_place(word)]


GAP = -2  # between sequences (-1 is a word the vocabulary does not have)


def _words_together(sequences: list[np.ndarray], keys: list[np.ndarray], span: int, *, tokens: int) -> np.ndarray:
    """For each token sequence, whether some ``span`` consecutive tokens hold a token of
    every key array (one look at all sequences at once: a phrase is checked in every field
    that holds its words). ``tokens``: the vocabulary's size (token ids are below it)."""
    if not sequences:
        return np.zeros(0, dtype=bool)
    lengths = np.fromiter((sequence.size for sequence in sequences), dtype=np.int64, count=len(sequences))
    # One array with ``span`` empty places after each sequence: no window reaches the next.
    gap = np.full(span, GAP, dtype=np.int32)
    flat = np.concatenate([part for sequence in sequences for part in (sequence, gap)])
    starts = np.concatenate(([0], np.cumsum(lengths + span)[:-1]))
    together = flat != GAP  # a window starting at each place of a sequence holds every word
    for wanted in keys:
        # A table look-up per place (the gap and unknown words, negative, index the two
        # places after the vocabulary). np.isin sorts them: the full-scale match took 66.2 s
        # with it and 50.2 s with this, minutes apart.
        table = np.zeros(tokens + 2, dtype=bool)
        table[wanted] = True
        counts = np.concatenate(([0], np.cumsum(table[flat])))
        together[: flat.size - span + 1] &= counts[span:] > counts[:-span]
        together[flat.size - span + 1:] = False
    return np.logical_or.reduceat(together, starts) if flat.size else np.zeros(len(sequences), dtype=bool)


class NoticeTable:
    """The sendable lots of a set of notices, indexed for matching. Build with ``build``."""

    def __init__(self) -> None:
        self.records: list[NoticeRecord] = []
        self.skipped: dict[str, str] = {}  # notice id -> why it is not matched
        self.lot_ids: list[str] = []
        self.lot_refs: list[Lot] = []
        self.vocabulary: dict[str, int] = {}
        self.tokens: list[str] = []
        # Per field, the units (notices, lots or code units) holding each token: token t's
        # are _posting_units[field][_posting_starts[field][t]:_posting_starts[field][t + 1]].
        self._posting_units: list[np.ndarray] = [np.empty(0, dtype=np.int32) for _ in FIELD_KINDS]
        self._posting_starts: list[np.ndarray] = [np.zeros(1, dtype=np.int64) for _ in FIELD_KINDS]
        self._lot_fields: list[tuple[frozenset[int], ...]] = []
        self._notice_fields: list[tuple[frozenset[int], frozenset[int], frozenset[int]]] = []
        self._cpv_lots: dict[str, list[int]] = defaultdict(list)
        self._cpv_weight: dict[str, list[float]] = defaultdict(list)  # of each lot in _cpv_lots: main or secondary
        self._word_cache: dict[str, dict[int, float]] = {}
        self._term_cache: dict[tuple[tuple[str, ...], str | None, int], TermHits] = {}
        self._concept_cache: dict[int, tuple[tuple[Term, ...], ConceptHits]] = {}
        self._cpv_cache: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._mask_cache: dict[tuple[str, Any], np.ndarray] = {}
        self._title_cache: dict[tuple[tuple[str, ...], str | None, int], np.ndarray] = {}
        self._title_mask_cache: dict[int, tuple[tuple[Term, ...], np.ndarray]] = {}
        self._title_terms_cache: dict[tuple[int, int], tuple[tuple[Term, ...], list[Term]]] = {}
        self._grams: dict[str, list[int]] | None = None  # 4 letters -> the tokens holding them
        self.languages: dict[str, int] = {}  # notice language -> its id in notice_language
        self._language_tokens: dict[int, set[int]] = defaultdict(set)  # own-text tokens per language id
        self._stem_index: dict[int, dict[str, list[int]]] = {}
        self._reversed_tokens: dict[int, tuple[list[str], list[int]]] = {}
        self._forward_tokens: dict[int, tuple[list[str], list[int]]] = {}
        self._translated_cache: dict[tuple[str, int], dict[int, float]] = {}
        self._share_cache: dict[tuple[tuple[str, ...], str | None, int], float] = {}
        self._sequences: dict[str, array[int]] = {}  # an own field's text -> its content tokens in order
        self._keyword_notices: np.ndarray | None = None
        self._code_array_cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.unit_codes: list[str] = []  # the CPV code of each unit of the label fields
        self._codes_by_division: dict[str, list[str]] = defaultdict(list)
        # Per notice and per lot, filled by ``build``.
        empty_int, empty_float = np.empty(0, dtype=np.int32), np.empty(0, dtype=np.float64)
        self.notice_deadline: np.ndarray = empty_float  # ordinal of the deadline day, inf when none
        self.notice_language: np.ndarray = empty_int  # id in ``languages``
        self.notice_starts: np.ndarray = empty_int  # first lot of each notice, then the lot count
        self.lot_notice: np.ndarray = empty_int
        self.lot_value: np.ndarray = empty_float  # DKK, nan when unknown
        self.lot_social: np.ndarray = np.empty(0, dtype=bool)
        self.lot_goods_group: np.ndarray = empty_int  # index in ``goods_groups``
        self.goods_groups: list[tuple[str, ...]] = []  # CPV divisions of goods-only code lists
        self.lot_nuts_group: np.ndarray = empty_int  # index in ``places``
        self.places: list[places.Place] = []
        self.lot_reserved_group: np.ndarray = empty_int  # index in ``reserved_groups``
        self.reserved_groups: list[tuple[str, ...]] = []

    # -- building ------------------------------------------------------------------------

    @classmethod
    def build(cls, records: Iterable[NoticeRecord], *, as_of: date | None,
              rates: dict[str, float] | None = None) -> NoticeTable:
        """Index every sendable notice of ``records`` (schema records); ``as_of=None``
        matches regardless of deadlines."""
        table = cls()
        rates = rates or rules.DEFAULT_RATES
        token_sets: dict[str, frozenset[int]] = {}
        lot_notice: list[int] = []
        values: list[float] = []
        social: list[bool] = []
        nuts_groups: dict[places.Place, int] = {}
        reserved_groups: dict[tuple[str, ...], int] = {}
        lot_nuts: list[int] = []
        notice_language: list[int] = []
        goods: list[int] = []
        goods_groups: dict[tuple[str, ...], int] = {}
        lot_reserved: list[int] = []
        starts: list[int] = []
        code_units: dict[str, int] = {}  # code -> its unit in the label fields
        code_labels: list[tuple[bool, frozenset[int]]] = []  # unit -> (broad, the label's tokens)
        # A lot's code list -> (its specific and broad labels' tokens, its goods group, each code's weight)
        code_shapes: dict[tuple[str, ...], tuple[frozenset[int], frozenset[int], int, list[float]]] = {}

        vocabulary = table.vocabulary
        # (token, unit) pairs per field, as C arrays: a Python list per token was a third of the build.
        posted: list[tuple[array[int], array[int]]] = [(array("i"), array("i")) for _ in FIELD_KINDS]

        def post(field_id: int, tokens: frozenset[int], unit: int) -> None:
            field_tokens, units = posted[field_id]
            field_tokens.extend(tokens)
            units.extend(repeat(unit, len(tokens)))

        def tokens_of(text: str | None) -> frozenset[int]:
            if not text:
                return frozenset()
            found = token_sets.get(text)
            if found is None:
                unique = set(words(text))
                # Set operations instead of a lookup per word; new words numbered in sorted
                # order, so token ids do not depend on string hashing.
                for word in sorted(unique.difference(vocabulary)):
                    vocabulary[word] = len(table.tokens)
                    table.tokens.append(word)
                found = token_sets[text] = frozenset(map(vocabulary.__getitem__, unique))
            return found

        for record in records:
            problem = rules.record_problem(record)
            if problem is not None:
                table.skipped[str(record.get("id") if isinstance(record, dict) else "?")] = f"unusable: {problem}"
                continue
            reason = rules.skip_reason(record, as_of=as_of)
            if reason is not None:
                table.skipped[record["id"]] = reason
                continue
            notice_index = len(table.records)
            table.records.append(record)
            language = str(record["language"]) if isinstance(record.get("language"), str) else ""
            language_id = table.languages.setdefault(language, len(table.languages))
            notice_language.append(language_id)
            own_tokens = table._language_tokens[language_id]
            title = tokens_of(record.get("title"))
            translated: frozenset[int] = frozenset()
            for title_language, text in (record.get("titles") or {}).items():
                if title_language in ("da", "en") and isinstance(text, str):  # what profile keywords can read
                    translated = translated | tokens_of(text)
            translated = translated - title
            description = tokens_of(record.get("description"))
            own_tokens.update(title)
            own_tokens.update(description)
            table._notice_fields.append((title, description, translated))
            for field_id, tokens in ((NOTICE_TITLE, title), (NOTICE_DESCRIPTION, description),
                                     (NOTICE_TRANSLATION, translated)):
                post(field_id, tokens, notice_index)
            notice_social = bool(record.get("social"))
            lots_say = any(lot.get("reserved") for lot in record["lots"])
            starts.append(len(table.lot_ids))
            for lot in record["lots"]:
                lot_index = len(table.lot_ids)
                table.lot_ids.append(lot["lot_id"])
                table.lot_refs.append(lot)
                lot_notice.append(notice_index)
                # A lot inherits the notice's codes: eForms notices often give the main code
                # on the procedure only and the lots just their additional codes.
                codes = lot_codes(record, lot)
                code_list = tuple(codes)
                shape = code_shapes.get(code_list)
                if shape is None:  # replicas and lots of one notice share their code lists
                    labels: tuple[list[frozenset[int]], list[frozenset[int]]] = ([], [])
                    for code in codes:
                        unit = code_units.get(code)
                        if unit is None:
                            label, broad = label_text(code)
                            unit = code_units[code] = len(table.unit_codes)
                            table.unit_codes.append(code)
                            code_labels.append((broad, tokens_of(label)))
                            post(LOT_CPV_BROAD if broad else LOT_CPV, code_labels[unit][1], unit)
                        broad, tokens = code_labels[unit]
                        labels[broad].append(tokens)
                    divisions = tuple(sorted({code[:2] for code in codes})) \
                        if codes and all(rules.is_goods(code) for code in codes) else ()
                    shape = code_shapes[code_list] = (
                        frozenset().union(*labels[0]), frozenset().union(*labels[1]),
                        goods_groups.setdefault(divisions, len(goods_groups)),
                        [rules.code_weight(main=position == 0, codes=len(codes)) for position in range(len(codes))])
                specific_labels, broad_labels, goods_group, weights = shape
                fields = (tokens_of(lot.get("title")), specific_labels, broad_labels, tokens_of(lot.get("description")))
                own_tokens.update(fields[0])
                own_tokens.update(fields[3])
                table._lot_fields.append(fields)
                post(LOT_TITLE, fields[0], lot_index)
                post(LOT_DESCRIPTION, fields[3], lot_index)
                goods.append(goods_group)
                for code, weight in zip(codes, weights, strict=False):
                    table._cpv_lots[code].append(lot_index)
                    table._cpv_weight[code].append(weight)
                value = lot.get("value") or (record.get("value") if len(record["lots"]) == 1 else None)
                values.append(rules.to_dkk(value["amount"], value["currency"], rates) if value else np.nan)
                social.append(bool(lot.get("social")) or notice_social)
                lot_nuts.append(nuts_groups.setdefault(places.place_of(record, lot), len(nuts_groups)))
                reserved = tuple(sorted(lot_reserved_codes(record, lot, lots_say=lots_say)))
                lot_reserved.append(reserved_groups.setdefault(reserved, len(reserved_groups)))
        starts.append(len(table.lot_ids))

        # Ties in score go to the sooner deadline (no deadline last), then to store order.
        table.notice_deadline = np.asarray(
            [date.fromisoformat(deadline[:10]).toordinal() if (deadline := r.get("deadline")) else np.inf
             for r in table.records],
            dtype=np.float64)
        table.notice_language = np.asarray(notice_language, dtype=np.int32)
        table.lot_goods_group = np.asarray(goods, dtype=np.int32)
        table.goods_groups = list(goods_groups)
        table.lot_notice = np.asarray(lot_notice, dtype=np.int32)
        table.notice_starts = np.asarray(starts, dtype=np.int32)
        table.lot_value = np.asarray(values, dtype=np.float64)
        table.lot_social = np.asarray(social, dtype=bool)
        table.lot_nuts_group = np.asarray(lot_nuts, dtype=np.int32)
        table.places = list(nuts_groups)
        table.lot_reserved_group = np.asarray(lot_reserved, dtype=np.int32)
        table.reserved_groups = list(reserved_groups)
        for code in table._cpv_lots:
            table._codes_by_division[code[:2]].append(code)
        for field_id, (field_tokens, units) in enumerate(posted):
            token_column = np.frombuffer(field_tokens, dtype=np.int32) if field_tokens else np.empty(0, dtype=np.int32)
            # Stable: each token's units stay in the order they were posted (ascending).
            order = np.argsort(token_column, kind="stable")
            table._posting_units[field_id] = (np.frombuffer(units, dtype=np.int32) if units
                                              else np.empty(0, dtype=np.int32))[order]
            table._posting_starts[field_id] = np.searchsorted(token_column[order], np.arange(len(table.tokens) + 1))
        return table

    @property
    def size(self) -> int:
        return len(self.lot_ids)

    # -- words ---------------------------------------------------------------------------

    def _posting_array(self, field_id: int, token_id: int) -> np.ndarray:
        """The units of a field holding the token, ascending (a read-only view)."""
        starts = self._posting_starts[field_id]
        return self._posting_units[field_id][starts[token_id]:starts[token_id + 1]]

    def resolve_words(self, wanted: set[str] | list[str]) -> None:
        """Find the vocabulary tokens each word matches (``text.word_quality`` > 0), in bulk."""
        # Not ``set - dict.keys()``: that walks every cached word (called once per profile).
        todo = sorted({word for word in wanted if word not in self._word_cache})
        if not todo:
            return
        if self._grams is None:
            # Every 4-letter piece of every token: a word is then looked for inside the few
            # tokens that hold its rarest piece, not in the whole vocabulary (a scan of every
            # token per word took seconds for a store's worth of profiles).
            grams: dict[str, list[int]] = defaultdict(list)
            for token_id, token in enumerate(self.tokens):
                for gram in {token[at:at + _GRAM] for at in range(len(token) - _GRAM + 1)}:
                    grams[gram].append(token_id)
            self._grams = grams
        found: dict[str, dict[int, float]] = {word: {} for word in todo}
        for word in todo:
            matches = found[word]
            exact = self.vocabulary.get(word)
            if exact is not None:
                matches[exact] = 1.0
            needle = stem(word) or word
            if len(needle) < _GRAM:  # shorter words match whole tokens only
                continue
            holding = min((self._grams.get(needle[at:at + _GRAM], ()) for at in range(len(needle) - _GRAM + 1)),
                          key=len)
            for token_id in holding:  # ascending token ids, as a scan of the vocabulary finds them
                token = self.tokens[token_id]
                if token_id in matches or needle not in token:
                    continue
                quality = word_quality(word, token)
                if quality:
                    matches[token_id] = quality
        self._resolve_typos(todo, found)
        self._word_cache.update(found)

    def _resolve_typos(self, todo: list[str], found: dict[str, dict[int, float]]) -> None:
        by_length: dict[int, list[str]] = defaultdict(list)
        for word in todo:
            if max_typos(word):
                by_length[len(word)].append(word)
        if not by_length:
            return
        tokens_by_length: dict[int, list[int]] = defaultdict(list)
        for token_id, token in enumerate(self.tokens):
            tokens_by_length[len(token)].append(token_id)
        for length, queries in by_length.items():
            allowed = max_typos(queries[0])
            choice_ids = [token_id for size in range(length - allowed, length + allowed + 1)
                          for token_id in tokens_by_length.get(size, ())]
            if not choice_ids:
                continue
            choices = [self.tokens[token_id] for token_id in choice_ids]
            for start in range(0, len(queries), 256):
                chunk = queries[start:start + 256]
                distances = process.cdist(chunk, choices, scorer=Levenshtein.distance, score_cutoff=allowed,
                                          dtype=np.int32, workers=-1)
                for row, column in zip(*np.nonzero(distances <= allowed), strict=False):
                    word, token_id = chunk[row], choice_ids[column]
                    if token_id not in found[word]:
                        quality = word_quality(word, self.tokens[token_id])
                        if quality:
                            found[word][token_id] = quality

    def word_matches(self, word: str) -> dict[int, float]:
        """token id -> quality for every vocabulary token the folded word matches."""
        if word not in self._word_cache:
            self.resolve_words([word])
        return self._word_cache[word]

    def _keyword_language_units(self, field_id: int, units: np.ndarray) -> np.ndarray:
        """Which units (notices, lots or CPV codes) of a field are in a keyword language."""
        if self._keyword_notices is None:
            wanted = [language_id for language, language_id in self.languages.items() if language in KEYWORD_LANGUAGES]
            self._keyword_notices = np.isin(self.notice_language, wanted)
        if CODE_LEVEL[field_id] or field_id == NOTICE_TRANSLATION:
            return np.ones(units.size, dtype=bool)  # CPV labels and translated titles are Danish or English
        notices = units if NOTICE_LEVEL[field_id] else self.lot_notice[units]
        return self._keyword_notices[notices]

    def _word_in_field(self, word: str, field_id: int) -> tuple[np.ndarray, np.ndarray]:
        parts, scores = [], []
        for token_id, quality in self.word_matches(word).items():
            hits = self._posting_array(field_id, token_id)
            if hits.size and quality < 1.0:  # not the very same word: only in Danish and English text
                hits = hits[self._keyword_language_units(field_id, hits)]
            if hits.size:
                parts.append(hits)
                scores.append(np.full(hits.size, quality, dtype=np.float32))
        return _best_of(parts, scores)

    def field_tokens(self, lot_index: int, field_id: int) -> frozenset[int]:
        """The tokens of one field of a lot (a notice-level field: its notice's)."""
        if NOTICE_LEVEL[field_id]:
            notice_fields = self._notice_fields[self.lot_notice[lot_index]]
            return notice_fields[(NOTICE_TITLE, NOTICE_DESCRIPTION, NOTICE_TRANSLATION).index(field_id)]
        return self._lot_fields[lot_index][LOT_FIELDS.index(field_id)]

    # -- translated terms ----------------------------------------------------------------

    def translated_tokens(self, word: str, language: str) -> dict[int, float]:
        """token id -> quality for the tokens of ``language``'s notices that a translated
        word matches: the same word, the same stem, or (compounding languages) a compound
        ending with it. No typos, no inside-word matches."""
        language_id = self.languages.get(language)
        if language_id is None:
            return {}
        cached = self._translated_cache.get((word, language_id))
        if cached is not None:
            return cached
        tokens = self._language_tokens[language_id]
        if language_id not in self._stem_index:
            stems: dict[str, list[int]] = defaultdict(list)
            ordered = list(tokens)
            keys = stem_keys([self.tokens[token_id] for token_id in ordered], language)
            for token_id, key in zip(ordered, keys, strict=True):
                stems[key].append(token_id)
            self._stem_index[language_id] = stems
        found: dict[int, float] = {}
        if language in COMPOUNDING and len(word) >= MIN_COMPOUND_HEAD:
            if language_id not in self._reversed_tokens:
                pairs = sorted((self.tokens[token_id][::-1], token_id) for token_id in tokens)
                self._reversed_tokens[language_id] = ([text for text, _ in pairs], [token_id for _, token_id in pairs])
            reversed_texts, reversed_ids = self._reversed_tokens[language_id]
            needle = word[::-1]
            position = bisect.bisect_left(reversed_texts, needle)
            while position < len(reversed_texts) and reversed_texts[position].startswith(needle):
                found[reversed_ids[position]] = TRANSLATED_COMPOUND
                position += 1
            # ... or its first part ("reinigungsdienstleistungen" for "reinigung").
            start = bisect.bisect_left(self._sorted_tokens(language_id)[0], word)
            texts, ids = self._sorted_tokens(language_id)
            while start < len(texts) and texts[start].startswith(word):
                found.setdefault(ids[start], TRANSLATED_COMPOUND)
                start += 1
        for token_id in self._stem_index[language_id].get(stem_key(word, language), ()):
            if same_word(word, self.tokens[token_id], language):
                found[token_id] = TRANSLATED_STEM
        exact = self.vocabulary.get(word)
        if exact is not None and exact in tokens:
            found[exact] = TRANSLATED_EXACT
        self._translated_cache[(word, language_id)] = found
        return found

    def _sorted_tokens(self, language_id: int) -> tuple[list[str], list[int]]:
        found = self._forward_tokens.get(language_id)
        if found is None:
            pairs = sorted((self.tokens[token_id], token_id) for token_id in self._language_tokens[language_id])
            found = ([text for text, _ in pairs], [token_id for _, token_id in pairs])
            self._forward_tokens[language_id] = found
        return found

    def _translated_in_field(self, word: str, language: str, field_id: int) -> tuple[np.ndarray, np.ndarray]:
        parts, scores = [], []
        language_id = self.languages.get(language)
        for token_id, quality in self.translated_tokens(word, language).items():
            hits = self._posting_array(field_id, token_id)
            if hits.size:
                notices = hits if NOTICE_LEVEL[field_id] else self.lot_notice[hits]
                hits = hits[self.notice_language[notices] == language_id]
            if hits.size:
                parts.append(hits)
                scores.append(np.full(hits.size, quality, dtype=np.float32))
        return _best_of(parts, scores)

    def _field_to_lots(self, field_id: int, units: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Hits of a field (indexed by notice, CPV code or lot) as hits of lots."""
        if NOTICE_LEVEL[field_id]:
            return self._to_lots(units, scores)
        if CODE_LEVEL[field_id]:
            return self._codes_to_lots(units, scores)
        return units, scores

    def _codes_to_lots(self, units: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Hits of code units as hits of the lots with those codes (best score per lot)."""
        if units.size == 0:
            return units, scores
        arrays = [self._code_arrays(self.unit_codes[unit])[0] for unit in units.tolist()]
        counts = np.fromiter((array.size for array in arrays), dtype=np.int64, count=len(arrays))
        return _sparse_max(np.concatenate(arrays), np.repeat(scores, counts))

    def _to_lots(self, notices: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if notices.size == 0:
            return notices, scores
        counts = self.notice_starts[notices + 1] - self.notice_starts[notices]
        firsts = np.repeat(self.notice_starts[notices], counts)
        offsets = np.arange(counts.sum(), dtype=np.int32) - np.repeat(np.cumsum(counts) - counts, counts)
        return (firsts + offsets).astype(np.int32), np.repeat(scores, counts)

    def term_hits(self, term_words: tuple[str, ...], language: str | None = None, *, span: int = 0) -> TermHits:
        """Where a word or phrase is found: in the notice's own words (lot indexes, best
        quality x field weight, best in a title, the field of the best) and in its codes'
        labels (lot indexes, best quality x field weight). A phrase needs all its words in
        one field and counts as its weakest word. ``language``: a translated term, looked
        up only in the notices of that language and only in their own words. ``span``: in
        the notice's own words, a phrase's words must stand within that many content words
        (``phrase_span``; at least the phrase's words)."""
        span = max(span, sum(1 for word in term_words if not word.isdigit()))  # a count takes no place
        key = (term_words, language, span)
        cached = self._term_cache.get(key)
        if cached is not None:
            return cached
        # Most translated terms are in no notice at all (no notice in that language, or a
        # word without a token): the search ends here, with the one shared empty result.
        if language is not None and (language not in self.languages
                                     or not all(self.translated_tokens(word, language) for word in term_words)):
            self._term_cache[key] = _no_hits()
            return self._term_cache[key]
        own: list[list[np.ndarray]] = [[], [], [], []]
        code: list[list[np.ndarray]] = [[], []]
        for field_id, kind in enumerate(FIELD_KINDS):
            if language is not None and field_id not in OWN_FIELDS:
                continue
            hits = self._field_hits(term_words, language, field_id, span)
            if hits is None:
                continue
            index, score = self._field_to_lots(field_id, *hits)
            weighted = score * np.float32(rules.FIELD_WEIGHTS[kind])
            if field_id in OWN_FIELDS:
                own[0].append(index)
                own[1].append(weighted)
                own[2].append(score if field_id in TITLE_FIELDS else np.zeros_like(score))
                own[3].append(np.full(index.size, field_id, dtype=np.int8))
            else:
                code[0].append(index)
                code[1].append(weighted)
        empty_index, empty_score = np.empty(0, dtype=np.int32), np.empty(0, dtype=np.float32)
        if own[0]:
            index, score, field_ids = np.concatenate(own[0]), np.concatenate(own[1]), np.concatenate(own[3])
            best = _best_positions(index, score)
            _, best_title = _sparse_max(index, np.concatenate(own[2]))
            own_hits = (index[best], score[best], best_title, field_ids[best])
        else:
            own_hits = (empty_index, empty_score, empty_score, np.empty(0, dtype=np.int8))
        code_hits = _sparse_max(np.concatenate(code[0]), np.concatenate(code[1])) if code[0] \
            else (empty_index, empty_score)
        result = TermHits(*own_hits, *code_hits)
        self._term_cache[key] = result
        return result

    def _field_hits(self, term_words: tuple[str, ...], language: str | None, field_id: int,
                    span: int) -> tuple[np.ndarray, np.ndarray] | None:
        """The units of one field holding all of a term's words (in an own field, together),
        with the quality of its weakest word; None when there are none."""
        hits: tuple[np.ndarray, np.ndarray] | None = None
        for word in term_words:
            word_hits = self._word_in_field(word, field_id) if language is None \
                else self._translated_in_field(word, language, field_id)
            hits = word_hits if hits is None else _intersect_min(hits, word_hits)
            if hits[0].size == 0:
                return None
        if hits is not None and len(term_words) > 1 and field_id in OWN_FIELDS:
            hits = self._together(term_words, language, field_id, hits, span)
        return hits if hits is not None and hits[0].size else None

    def _together(self, term_words: tuple[str, ...], language: str | None, field_id: int,
                  hits: tuple[np.ndarray, np.ndarray], span: int) -> tuple[np.ndarray, np.ndarray]:
        """The units of an own field where a phrase's words stand together, within ``span``
        content words (see ``phrase_span``), not anywhere in the field ("Employment Law
        Services" is no "employment services"; a description may hold both words pages apart)."""
        placed = _placed(term_words)  # "na" in "khranene na uchenitsi" stands anywhere
        if len(placed) < 2:
            return hits
        keys = [np.fromiter(found, dtype=np.int32, count=len(found))
                for found in (self.term_word_tokens(word, language)
                              for word in placed)]
        sequences = [np.frombuffer(self._sequence(field_id, unit), dtype=np.int32) for unit in hits[0].tolist()]
        keep = _words_together(sequences, keys, span, tokens=len(self.tokens))
        return hits[0][keep], hits[1][keep]

    def _sequence(self, field_id: int, unit: int) -> array[int]:
        """The content words of one own field of a unit (a notice or a lot), as tokens in order."""
        owner: Any = self.records[unit] if NOTICE_LEVEL[field_id] else self.lot_refs[unit]
        text = owner.get("title" if field_id in TITLE_FIELDS else "description") or ""
        found = self._sequences.get(text)
        if found is None:  # worked out when first asked: most fields never hold a whole phrase
            vocabulary = self.vocabulary
            found = self._sequences[text] = array("i", [vocabulary.get(word, -1) for word in placed_words(text)])
        return found

    def specificity(self, term: Term) -> float:
        """How specific a term is in this store (``rules.specificity`` of the share of notices
        whose own words contain it, among the notices it can be looked up in)."""
        span = phrase_span(term.text, term.words)
        key = (term.words, term.language, span)
        cached = self._share_cache.get(key)
        if cached is None:
            hits = self.term_hits(term.words, term.language, span=span)
            found = np.unique(self.lot_notice[hits.lots]).size if hits.lots.size else 0
            if term.language is None:
                scope = len(self.records)
            else:
                language_id = self.languages.get(term.language)
                scope = int(np.count_nonzero(self.notice_language == language_id)) if language_id is not None else 0
            cached = self._share_cache[key] = float(rules.specificity(found, scope))
        return cached

    def concept_hits(self, concept: tuple[Term, ...]) -> ConceptHits:
        """A concept's evidence per lot, by its best member: in the notice's own words (best
        weighted score, best specific score anywhere, best specific score in a title) and
        in its codes' labels (best weighted score)."""
        key = id(concept)  # concepts are interned (profile_concepts): one object per distinct concept
        cached = self._concept_cache.get(key)
        if cached is not None and cached[0] is concept:
            return cached[1]
        parts, weighted, specific, specific_title, code_parts, code_scores = [], [], [], [], [], []
        members, fields = [], []
        languages = self.languages
        for number, term in enumerate(concept):
            if term.language is not None and term.language not in languages:
                continue  # no notice in that language (most, in a small table): no hits
            hits = self.term_hits(term.words, term.language, span=phrase_span(term.text, term.words))
            if hits.lots.size:
                factor = np.float32(self.specificity(term))
                parts.append(hits.lots)
                weighted.append(hits.score * np.float32(term.weight) * factor)
                specific.append(hits.score * factor if term.specific else np.zeros_like(hits.score))
                specific_title.append(hits.title * factor if term.specific else np.zeros_like(hits.title))
                members.append(np.full(hits.lots.size, number, dtype=np.int32))
                fields.append(hits.field)
            if hits.code_lots.size and term.specific:
                code_parts.append(hits.code_lots)
                code_scores.append(hits.code_score * np.float32(term.weight))
        empty_index, empty = np.empty(0, dtype=np.int32), np.empty(0, dtype=np.float32)
        if parts:
            index, scores = np.concatenate(parts), np.concatenate(weighted)
            best_positions = _best_positions(index, scores)
            lots, best = index[best_positions], scores[best_positions]
            best_member = np.concatenate(members)[best_positions]
            best_field = np.concatenate(fields)[best_positions]
            _, best_specific = _sparse_max(index, np.concatenate(specific))
            _, best_title = _sparse_max(index, np.concatenate(specific_title))
        else:
            lots, best, best_specific, best_title = empty_index, empty, empty, empty
            best_member, best_field = empty_index, np.empty(0, dtype=np.int8)
        code_lots, code_best = _sparse_max(np.concatenate(code_parts), np.concatenate(code_scores)) if code_parts \
            else (empty_index, empty)
        result = ConceptHits(lots, best, best_specific, best_title, code_lots, code_best, best_member, best_field)
        self._concept_cache[key] = (concept, result)
        return result

    # -- codes and masks -----------------------------------------------------------------

    def _code_arrays(self, code: str) -> tuple[np.ndarray, np.ndarray]:
        """(the lots with a code, the code's weight in each: main or secondary)."""
        found = self._code_array_cache.get(code)
        if found is None:
            found = self._code_array_cache[code] = (np.asarray(self._cpv_lots[code], dtype=np.int32),
                                                    np.asarray(self._cpv_weight[code], dtype=np.float32))
        return found

    def cpv_hits(self, profile_code: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(lot indexes, points, inside the profile's branch) for one profile CPV code."""
        cached = self._cpv_cache.get(profile_code)
        if cached is not None:
            return cached
        parts, points, within = [], [], []
        for code in self._codes_by_division.get(profile_code[:2], ()):
            code_points, relation = cpv_relation(profile_code, code)
            if code_points:
                lots, weights = self._code_arrays(code)
                parts.append(lots)
                # A secondary code in a long list says less than the main code.
                points.append(np.float32(code_points) * weights)
                within.append(np.full(lots.size, relation in ("exact", "within")))
        if parts:
            index, score = _sparse_max(np.concatenate(parts), np.concatenate(points))
            inside = np.zeros(self.size, dtype=bool)
            for lots, flags in zip(parts, within, strict=False):
                inside[lots[flags]] = True
            result = (index, score, inside[index])
        else:
            result = (np.empty(0, dtype=np.int32), np.empty(0, dtype=np.float32), np.empty(0, dtype=bool))
        self._cpv_cache[profile_code] = result
        return result

    def _group_mask(self, key: tuple[str, Any], groups: list[Any], lot_groups: np.ndarray,
                    test: Any) -> np.ndarray:
        mask = self._mask_cache.get(key)
        if mask is None:
            mask = self._mask_cache[key] = np.asarray([bool(test(group)) for group in groups], dtype=bool)[lot_groups] \
                if groups else np.zeros(0, dtype=bool)
        return mask

    def region_mask(self, regions: tuple[str, ...]) -> np.ndarray:
        """Lots that may be inside the regions (``places.in_regions``)."""
        if not regions:
            return np.ones(self.size, dtype=bool)
        resolved = places.resolve_regions(regions)
        return self._group_mask(("regions", regions), self.places, self.lot_nuts_group,
                                lambda place: places.in_resolved_regions(place, resolved))

    def other_goods_mask(self, profile_codes: tuple[str, ...]) -> np.ndarray:
        """Lots coded only as products of divisions none of the profile's codes is in: an
        enterprise that cleans or prints does not supply "Cleaning and Janitorial Supplies"
        or copier paper (a printer's own goods, printed matter, share its division 22)."""
        mine = {code[:2] for code in profile_codes}
        return self._group_mask(("other-goods", tuple(sorted(mine))), self.goods_groups, self.lot_goods_group,
                                lambda divisions: bool(divisions) and not mine.intersection(divisions))

    def reserved_masks(self, eligible: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
        """(reserved for enterprises like the profile's, reserved for others only)."""
        ours = self._group_mask(("reserved-ours", eligible), self.reserved_groups, self.lot_reserved_group,
                                lambda codes: bool(set(codes) & set(eligible)))
        others = self._group_mask(("reserved-others", eligible), self.reserved_groups, self.lot_reserved_group,
                                  lambda codes: bool(codes) and not set(codes) & set(eligible))
        return ours, others

    def title_mask(self, terms: tuple[Term, ...]) -> np.ndarray:
        """Lots whose title or whose notice's title holds one of the terms: the title names
        the main work (lot titles are often only places: "NORTE", "SUR")."""
        # Keyed by identity: profiles of the same trades share one tuple (``terms.other_work_terms``),
        # and hashing its hundreds of terms for every profile would cost more than the look-up.
        cached = self._title_mask_cache.get(id(terms))
        if cached is not None and cached[0] is terms:
            return cached[1]
        mask = np.zeros(self.size, dtype=bool)
        for term in terms:
            mask[self._title_lots(term)] = True
        self._title_mask_cache[id(terms)] = (terms, mask)
        return mask

    def title_sequences(self, lot_index: int) -> tuple[array[int], array[int]]:
        """The content words of the lot's title and of its notice's title, as tokens in order."""
        return self._sequence(LOT_TITLE, lot_index), self._sequence(NOTICE_TITLE, int(self.lot_notice[lot_index]))

    def term_word_tokens(self, word: str, language: str | None) -> dict[int, float]:
        """The tokens a term's word matches: a keyword's by the Danish and English rules, a
        translated one's in its language."""
        return self.word_matches(word) if language is None else self.translated_tokens(word, language)

    def title_terms(self, lot_index: int, terms: tuple[Term, ...], *, cache: bool = False) -> list[Term]:
        """The terms that the lot's title or its notice's title holds. ``cache``: remember the
        answer by the tuple's identity (a shared tuple, as ``terms.other_work_terms`` gives:
        the same lot comes back for every profile of the same trades)."""
        cached = self._title_terms_cache.get((id(terms), lot_index)) if cache else None
        if cached is not None and cached[0] is terms:
            return cached[1]
        language = self.records[self.lot_notice[lot_index]].get("language") or ""
        found = []
        for term in terms:
            if term.language not in (None, language):  # in none of this notice's titles
                continue
            if holds(self._title_lots(term), lot_index):
                found.append(term)
        if cache:
            self._title_terms_cache[(id(terms), lot_index)] = (terms, found)
        return found

    def _title_lots(self, term: Term) -> np.ndarray:
        """The lots (sorted) whose title or whose notice's title holds the term."""
        key = (term.words, term.language, phrase_span(term.text, term.words))
        lots = self._title_cache.get(key)
        if lots is None:
            parts = [np.empty(0, dtype=np.int32)]
            if term.language is None or term.language in self.languages:
                for field_id in TITLE_FIELDS:
                    hits = self._field_hits(term.words, term.language, field_id, key[2])
                    if hits is not None:
                        parts.append(self._field_to_lots(field_id, *hits)[0])
            lots = self._title_cache[key] = np.unique(np.concatenate(parts)).astype(np.int32)
        return lots

    def excluded_mask(self, exclude: tuple[str, ...]) -> np.ndarray:
        """Lots of notices whose text contains an exclude word (typos do not count)."""
        key = ("exclude", exclude)
        mask = self._mask_cache.get(key)
        if mask is None:
            notices = np.zeros(len(self.records), dtype=bool)
            for phrase in exclude:
                phrase_words = tuple(content_words(phrase))
                if not phrase_words:
                    continue
                for field_id in range(len(FIELD_KINDS)):
                    hits: np.ndarray | None = None
                    for word in phrase_words:
                        strong = [token_id for token_id, quality in self.word_matches(word).items() if quality >= STEM]
                        arrays = [self._posting_array(field_id, token_id) for token_id in strong]
                        found = np.unique(np.concatenate(arrays)) if arrays else np.empty(0, dtype=np.int32)
                        hits = found if hits is None else np.intersect1d(hits, found, assume_unique=True)
                    if hits is not None and hits.size:
                        if CODE_LEVEL[field_id]:
                            hits = self._codes_to_lots(hits, np.zeros(hits.size, dtype=np.float32))[0]
                        notices[hits if NOTICE_LEVEL[field_id] else self.lot_notice[hits]] = True
            mask = self._mask_cache[key] = notices[self.lot_notice]
        return mask
