"""The shapes the stages hand each other through the store: the notice record (what
``notice.schema.json`` describes and `tenders --format json` prints), its lots, money and
buyer, and a match's facts (what the match log keeps and every reason is worded from).

TypedDicts, not classes: the record travels as JSON (stored, printed, sent between
processes) and a dict is what the JSON reads back as; mypy checks the keys and types where
the record is built and read. ``total=False`` where a stored row from an older version may
lack a key (readers use ``.get``).
"""

from __future__ import annotations

from typing import Literal, TypedDict

NoticeKind = Literal["tender", "agreement"]
Stage = Literal["planning", "competition", "result", "dir-awa-pre", "cont-modif", "change"]


class Money(TypedDict):
    amount: float | None
    currency: str | None


class Buyer(TypedDict, total=False):
    name: str
    country: str | None
    city: str | None


class Lot(TypedDict, total=False):
    lot_id: str
    title: str | None
    description: str | None
    cpv: list[str]
    nuts: list[str]
    value: Money | None
    reserved: list[str]  # res-ws, res-pub-ser (BT-71)
    social: list[str]  # eForms social objectives, "clause", "reserved-execution"


class NoticeRecord(TypedDict, total=False):
    id: str
    kind: str  # NoticeKind
    stage: str  # Stage
    procedure_id: str | None
    notice_version: str | None
    title: str
    titles: dict[str, str]  # language code -> title
    description: str | None
    language: str | None
    buyer: Buyer | None
    supplier: str | None
    cpv: list[str]
    nuts: list[str]
    value: Money | None
    deadline: str | None
    published: str | None
    valid_from: str | None
    valid_until: str | None
    url: str | None
    reserved: list[str]
    social: list[str]
    framework_agreement: bool
    status: str
    sources: list[str]
    lots: list[Lot]


# -- a match's facts ---------------------------------------------------------------------------


class KeywordFact(TypedDict, total=False):
    term: str  # the term that counted
    origin: str  # keyword, synonym, translation, related (another concept of the keyword's trade), description
    field: str  # where it hit: title, lot title, description, CPV label...
    found: str  # the words as the notice writes them
    keyword: str  # the profile's keyword it stands for
    language: str  # of a translation
    source: str  # where a translation comes from


class CpvFact(TypedDict, total=False):
    relation: str  # exact, within, broader, label
    profile_code: str
    code: str
    labels: dict[str, str]  # language -> the code's label
    keyword: str  # relation "label": the keyword the label names


class LotFact(TypedDict, total=False):
    lot_id: str
    lots: int  # how many lots the notice has
    title: str | None
    value_dkk: int | None
    max_value: float | None  # the profile's


class PlaceFact(TypedDict, total=False):
    evidence: str  # place, buyer-municipality, buyer-country, none
    codes: list[str]
    municipality: str | None
    inside: list[str]  # the profile's regions it is inside
    regions: list[str]


class AgreementFact(TypedDict, total=False):
    supplier: str | None
    expires: str | None


class MatchFacts(TypedDict, total=False):
    relevance: float
    language: str | None
    keywords: list[KeywordFact]
    cpv: CpvFact
    lot: LotFact
    reserved: list[str]
    social: list[str]
    nuts: list[str]
    place: PlaceFact
    agreement: AgreementFact
