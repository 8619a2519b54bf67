"""OCDS 1.0 / 1.1: release packages, record packages, single releases and JSON lines.

Every contracting process (``ocid``) becomes one notice. When a document holds several
releases of one ocid they are merged in date order the way OCDS compiles a record (later
values win, arrays of objects with ``id`` merge by id), so the notice shows the latest state.

A release with the wrong shape (``tender`` not an object, ``awards`` not a list, ...) is
skipped; the document is refused only when nothing in it is usable.

Over 500 lines on purpose: one reading of one standard (releases, records, packages, JSON
lines, linked and compiled releases); its field readers share the defensive accessors above
them.
"""

from __future__ import annotations

import html
import math
import re
from datetime import UTC, datetime
from typing import Any

from .common import (
    MAX_DOCUMENT_BYTES,
    ItemProblem,
    ParsedNotice,
    ParseError,
    clean_identifier,
    clean_text,
    cpv_code,
    finish_record,
    iso_date,
    language_code,
    load_json,
    money,
    new_lot,
    new_record,
    parse_each,
    plausible_moment,
    publication_key,
    unique,
)
from .xmlsafe import check_size

__all__ = ["parse_ocds"]

_RESULT_TAGS = {
    "award", "awardUpdate", "awardCancellation", "contract", "contractUpdate", "contractAmendment",
    "implementation", "implementationUpdate", "contractTermination",
}
_CONTRACT_TAGS = {"contract", "contractUpdate", "contractAmendment", "implementation", "implementationUpdate"}
_CHANGE_TAGS = {"tenderAmendment", "tenderUpdate", "tenderCancellation"}
_PLANNING_TAGS = {"planning", "planningUpdate"}
_KNOWN_TAGS = _RESULT_TAGS | _CHANGE_TAGS | _PLANNING_TAGS | {"tender"}

_NOTICE_DOCUMENTS = ("tenderNotice", "contractNotice", "awardNotice", "plannedProcurementNotice")
_RESERVED = {"shelteredWorkshop": "res-ws", "publicServiceMissionOrganization": "res-pub-ser"}

# NUTS codes start with an EU/EFTA/candidate country code (Greece is EL, the UK keeps UK).
_NUTS_COUNTRIES = (
    "AT|BE|BG|CH|CY|CZ|DE|DK|EE|EL|ES|FI|FR|HR|HU|IE|IS|IT|LI|LT|LU|LV|ME|MK|MT|NL|NO|PL|PT|RO|RS|SE|SI|SK|TR|UK|AL"
)
_NUTS = re.compile(rf"(?:{_NUTS_COUNTRIES})[0-9A-Z]{{1,3}}")
_NUTS_ANY_LEVEL = re.compile(rf"(?:{_NUTS_COUNTRIES})[0-9A-Z]{{0,3}}")
_ISO_DATETIME = re.compile(
    r"\s*([0-9]{4}-[0-9]{2}-[0-9]{2})"
    r"(?:[T ]([0-9]{2}):([0-9]{2})(?::([0-9]{2}))?(?:\.[0-9]+)?)?"
    r"\s*(Z|[+-][0-9]{2}:?[0-9]{2})?\s*$"
)


class _Unusable(Exception):
    """One release (or record) cannot be used; the others still can."""


# ---------------------------------------------------------------- loading


def parse_ocds(content: bytes, *, url: str | None = None,
               problems: list[ItemProblem] | None = None) -> list[ParsedNotice]:
    """Parse an OCDS document into one notice per ocid. Raises ParseError when no release
    can be used; a release (or ocid) that cannot be used is added to ``problems`` and
    costs only itself."""
    try:
        return _parse(content, url, [] if problems is None else problems)
    except RecursionError:
        raise ParseError("OCDS JSON is nested too deeply") from None


def _parse(content: bytes, url: str | None, problems: list[ItemProblem]) -> list[ParsedNotice]:
    check_size(content, max_bytes=MAX_DOCUMENT_BYTES)
    data = _load(content)
    releases: list[dict[str, Any]] = []
    unusable: list[str] = []
    candidates = 0
    documents = data if isinstance(data, list) else [data]
    for number, document in enumerate(documents, 1):
        where = f"item {number}: " if isinstance(data, list) else ""
        if not isinstance(document, dict):
            candidates += 1
            unusable.append(f"{where}not a JSON object")
            continue
        found, bad = _releases_of(document, where)
        candidates += len(found) + len(bad)
        releases.extend(found)
        unusable.extend(bad)
    if not releases:
        if candidates == 0:
            return []  # an empty package (e.g. the last page of an API search) is not an error
        raise ParseError(f"no usable OCDS release: {unusable[0]}" if unusable else "no usable OCDS release")

    def ocid_notices(ocid_and_group: tuple[str, list[dict[str, Any]]]) -> list[ParsedNotice]:
        ocid, group = ocid_and_group
        try:
            return [_notice(ocid, _merge_in_date_order(group), url)]
        except _Unusable as error:
            raise ParseError(str(error)) from None

    try:
        groups = ((f"ocid {_shown(ocid)}", (ocid, group)) for ocid, group in _group_by_ocid(releases).items())
        notices = parse_each(groups, ocid_notices, problems)
    except ParseError as error:
        raise ParseError(f"no usable OCDS release: {error}") from None
    for problem in unusable:  # 'item 2: release 3: no ocid' -> ('item 2: release 3', 'no ocid')
        item, _, reason = problem.rpartition(": ")
        problems.append(ItemProblem(item or "release", reason))
    return notices


def _shown(ocid: str) -> str:
    """An ocid as a problem line names it: printable, at most 100 characters."""
    return (clean_text(ocid) or "?")[:100]


def _load(content: bytes) -> Any:
    if content.startswith(b"\xef\xbb\xbf"):
        content = content[3:]
    if content.lstrip()[:1] not in (b"{", b"["):
        raise ParseError("not JSON (OCDS must be a JSON object, array or JSON lines)")
    return load_json(content)


def _releases_of(document: dict[str, Any], where: str) -> tuple[list[dict[str, Any]], list[str]]:
    """The releases in one package, record or release, and what was wrong with the others."""
    found: list[dict[str, Any]] = []
    bad: list[str] = []
    if "records" in document:
        records = document["records"]
        if not isinstance(records, list):
            raise ParseError(f"{where}'records' is not a list")
        for index, record in enumerate(records, 1):
            try:
                found.append(_release_of_record(record))
            except _Unusable as error:
                bad.append(f"{where}record {index}: {error}")
        return found, bad
    if "compiledRelease" in document or ("releases" in document and "ocid" in document):
        try:
            found.append(_release_of_record(document))
        except _Unusable as error:
            bad.append(f"{where}record: {error}")
        return found, bad
    if "releases" in document:
        items = document["releases"]
        if not isinstance(items, list):
            raise ParseError(f"{where}'releases' is not a list")
        for index, release in enumerate(items, 1):
            problem = _check_release(release)
            if problem:
                bad.append(f"{where}release {index}: {problem}")
            else:
                found.append(release)
        return found, bad
    if "ocid" in document:
        problem = _check_release(document)
        if problem:
            bad.append(f"{where}release: {problem}")
        else:
            found.append(document)
        return found, bad
    if where:
        bad.append(f"{where}no 'releases', 'records' or 'ocid'")
        return found, bad
    raise ParseError("JSON is not OCDS (no 'releases', 'records' or 'ocid')")


def _release_of_record(record: Any) -> dict[str, Any]:
    """A record's compiledRelease, else its full (not linked) releases merged."""
    if not isinstance(record, dict):
        raise _Unusable("not a JSON object")
    compiled = record.get("compiledRelease")
    if compiled is not None:
        problem = _check_release(compiled, ocid=record.get("ocid"))
        if problem:
            raise _Unusable(f"compiledRelease: {problem}")
        if not compiled.get("ocid") and isinstance(record.get("ocid"), str):
            compiled = {**compiled, "ocid": record["ocid"]}
        return compiled
    releases = record.get("releases")
    if not isinstance(releases, list):
        raise _Unusable("no compiledRelease and 'releases' is not a list")
    full = []
    for release in releases:
        # linked releases ({url, date, tag}) carry no content
        if (isinstance(release, dict) and set(release) - {"url", "date", "tag", "id"}
                and not _check_release(release, ocid=record.get("ocid"))):
            full.append({"ocid": record.get("ocid"), **release})
    if not full:
        raise _Unusable("no compiledRelease and no embedded release")
    return _merge_in_date_order(full)


def _check_release(release: Any, *, ocid: Any = None) -> str | None:
    """Why a release cannot be used, or None."""
    if not isinstance(release, dict):
        return "not a JSON object"
    ocid = release.get("ocid", ocid)
    if not isinstance(ocid, str) or not clean_identifier(ocid):  # NUL or bidi controls alone are no id
        return "no ocid"
    for key in ("tender", "planning", "buyer"):
        if key in release and release[key] is not None and not isinstance(release[key], dict):
            return f"'{key}' is not an object"
    for key in ("awards", "contracts", "parties"):
        if key in release and release[key] is not None and not isinstance(release[key], list):
            return f"'{key}' is not a list"
    if "tag" in release and release["tag"] is not None and not isinstance(release["tag"], (list, str)):
        return "'tag' is not a list"
    if "date" in release and release["date"] is not None and not isinstance(release["date"], str):
        return "'date' is not a string"
    tender = release.get("tender") or {}
    for key in ("items", "lots", "documents"):
        if key in tender and tender[key] is not None and not isinstance(tender[key], list):
            return f"'tender.{key}' is not a list"
    for key in ("title", "description"):
        if key in tender and tender[key] is not None and not isinstance(tender[key], str):
            return f"'tender.{key}' is not a string"
    return None


def _group_by_ocid(releases: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for release in releases:
        groups.setdefault(clean_identifier(release["ocid"]) or "", []).append(release)
    return groups


def _sort_time(text: Any) -> datetime:
    if plausible_moment(text):  # year 1 or 9999 with an offset would overflow the comparison
        try:
            moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return datetime.min.replace(tzinfo=UTC)


def _merge_in_date_order(releases: list[dict[str, Any]]) -> dict[str, Any]:
    if len(releases) == 1:
        return releases[0]
    ordered = sorted(releases, key=lambda release: _sort_time(release.get("date")))
    merged: dict[str, Any] = {}
    for release in ordered:
        merged = _merge(merged, release)
    merged["tag"] = ordered[-1].get("tag")  # the stage is the latest release's
    return merged


def _merge(old: Any, new: Any) -> Any:
    """OCDS merge: objects merge key by key, arrays of objects with ids merge by id,
    anything else is replaced; null removes the field."""
    if isinstance(old, dict) and isinstance(new, dict):
        result = dict(old)
        for key, value in new.items():
            if value is None:
                result.pop(key, None)
            elif key in result:
                result[key] = _merge(result[key], value)
            else:
                result[key] = value
        return result
    if (
        isinstance(old, list) and isinstance(new, list) and new
        and all(isinstance(item, dict) and "id" in item for item in old + new)
    ):
        by_id: dict[str, Any] = {str(item["id"]): item for item in old}
        for item in new:
            key = str(item["id"])
            by_id[key] = _merge(by_id[key], item) if key in by_id else item
        return list(by_id.values())
    return new


# ---------------------------------------------------------------- mapping


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        # some publishers (UK Contracts Finder) leave HTML entities in JSON: 'St Bede&apos;s'
        return clean_text(html.unescape(value) if "&" in value else value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return clean_text(str(value))
    return None


def _money(value: Any) -> dict[str, Any] | None:
    value = _obj(value)
    amount = value.get("amount")
    if isinstance(amount, bool) or not isinstance(amount, (int, float, str)):
        return None
    result = money(amount, value.get("currency") if isinstance(value.get("currency"), str) else None)
    if result is None or not math.isfinite(result["amount"]):
        return None
    return result


def _datetime(text: Any) -> str | None:
    """ISO 8601 date-time as OCDS writes it, offset kept ('Z' -> '+00:00'), fractions dropped."""
    if not isinstance(text, str):
        return None
    match = _ISO_DATETIME.match(text)
    if not match:
        return None
    day, hour, minute, second, offset = match.groups()
    offset = offset or ""
    if offset == "Z":
        offset = "+00:00"
    elif offset and ":" not in offset:
        offset = f"{offset[:3]}:{offset[3:]}"
    value = f"{day}T{hour or '00'}:{minute or '00'}:{second or '00'}{offset}"
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return None
    return plausible_moment(value)


def _cpv(classification: Any) -> str | None:
    classification = _obj(classification)
    scheme = classification.get("scheme")
    if not isinstance(scheme, str) or scheme.strip().upper() != "CPV":
        return None
    code = _text(classification.get("id"))
    if code and re.fullmatch(r"[0-9]{8}\.0+", code):  # spreadsheet artefact '45233130.0'
        code = code.split(".")[0]
    return cpv_code(code)


def _item_cpvs(item: dict[str, Any]) -> list[str]:
    codes = [_cpv(item.get("classification"))]
    codes += [_cpv(extra) for extra in _list(item.get("additionalClassifications"))]
    return [code for code in codes if code]


def _item_nuts(item: dict[str, Any]) -> list[str]:
    codes: list[str] = []
    addresses = [*_list(item.get("deliveryAddresses")), item.get("deliveryAddress")]
    for address in addresses:
        region = _text(_obj(address).get("region"))
        if region and _NUTS.fullmatch(region):
            codes.append(region)
    location = _obj(item.get("deliveryLocation"))
    for key in ("region", "NUTS", "nuts"):
        region = _text(location.get(key))
        if region and _NUTS.fullmatch(region):
            codes.append(region)
    places = [location] + [_obj(place) for place in _list(item.get("deliveryLocations"))]
    for gazetteer in (place.get("gazetteer") for place in places):
        gazetteer = _obj(gazetteer)
        scheme = gazetteer.get("scheme")
        if isinstance(scheme, str) and scheme.strip().upper().startswith("NUTS"):
            for identifier in _list(gazetteer.get("identifiers")):
                code = _text(identifier)
                if code and _NUTS_ANY_LEVEL.fullmatch(code):
                    codes.append(code)
    return codes


def _reserved(owner: dict[str, Any]) -> list[str]:
    requirements = _obj(owner.get("otherRequirements"))
    codes = _list(requirements.get("reservedParticipation"))
    return [_RESERVED[code] for code in codes if isinstance(code, str) and code in _RESERVED]


def _tags(release: dict[str, Any]) -> set[str]:
    tag = release.get("tag")
    if isinstance(tag, str):
        return {tag}
    return {item for item in _list(tag) if isinstance(item, str)}


def _stage(tags: set[str], release: dict[str, Any]) -> str:
    if tags & _RESULT_TAGS:
        return "result"
    if tags & _CHANGE_TAGS:
        return "change"
    if "tender" in tags:
        return "competition"
    if tags & _PLANNING_TAGS:
        return "planning"
    # compiled releases and unknown tags: judge by the content
    tender = _obj(release.get("tender"))
    if _list(release.get("contracts")) or _list(release.get("awards")):
        return "result"
    if tender.get("status") in ("planning", "planned") or (not tender and release.get("planning")):
        return "planning"
    return "competition"


def _buyer(release: dict[str, Any]) -> dict[str, Any] | None:
    buyer = _obj(release.get("buyer"))
    parties = [party for party in _list(release.get("parties")) if isinstance(party, dict)]
    party: dict[str, Any] = {}
    if buyer.get("id") is not None:
        party = next((p for p in parties if p.get("id") == buyer.get("id")), {})
    if not party:
        party = next((p for p in parties if "buyer" in _list(p.get("roles"))), {})
    name = _text(buyer.get("name")) or _text(party.get("name"))
    if not name:
        entity = _obj(_obj(release.get("tender")).get("procuringEntity"))
        party = party or next((p for p in parties if "procuringEntity" in _list(p.get("roles"))), {})
        name = _text(entity.get("name")) or _text(party.get("name"))
    if not name:
        return None
    address = _obj(party.get("address")) or _obj(buyer.get("address"))
    return {"name": name, "country": _text(address.get("countryName")), "city": _text(address.get("locality"))}


def _title(release: dict[str, Any], tender: dict[str, Any], description: str | None) -> str:
    planning_budget = _obj(_obj(release.get("planning")).get("budget"))
    candidates = [tender.get("title"), release.get("title")]
    candidates += [planning_budget.get("description"), planning_budget.get("project")]
    candidates += [_obj(award).get("title") for award in _list(release.get("awards"))]
    candidates += [_obj(contract).get("title") for contract in _list(release.get("contracts"))]
    for candidate in candidates:
        text = _text(candidate)
        if text:
            return text
    if description:  # e.g. Portuguese releases have only a description: use its start
        if len(description) <= 150:
            return description
        return description[:150].rsplit(" ", 1)[0] + " …"
    items = list(_list(tender.get("items")))
    for award in _list(release.get("awards")):
        items += _list(_obj(award).get("items"))
    candidates = [_obj(item).get("description") for item in items]
    candidates += [_obj(process).get("title") for process in _list(release.get("relatedProcesses"))]
    return next((text for text in map(_text, candidates) if text), "")


def _notice_url(release: dict[str, Any], tender: dict[str, Any], url: str | None) -> str | None:
    documents = list(_list(tender.get("documents")))
    for award in _list(release.get("awards")):
        documents += _list(_obj(award).get("documents"))
    documents += _list(_obj(release.get("planning")).get("documents"))
    for wanted in _NOTICE_DOCUMENTS:
        for document in documents:
            document = _obj(document)
            link = _text(document.get("url"))
            if document.get("documentType") == wanted and link and link.lower().startswith(("http://", "https://")):
                return link
    return url


def _awarded(release: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        award for award in (_obj(a) for a in _list(release.get("awards")))
        if award and award.get("status") not in ("cancelled", "unsuccessful", "pending")
    ]


def _supplier_names(parties: list[Any]) -> list[str]:
    return [name for name in (_text(_obj(party).get("name")) for party in parties) if name]


def _notice(ocid: str, release: dict[str, Any], url: str | None) -> ParsedNotice:
    tags = _tags(release)
    tender = _obj(release.get("tender"))
    description = _text(tender.get("description")) or _text(release.get("description"))
    record = new_record(
        id=f"ocds:{ocid}",
        procedure_id=ocid,
        title=_title(release, tender, description),
        description=description,
        language=language_code(_text(release.get("language"))),
        buyer=_buyer(release),
        published=iso_date(release.get("date") if isinstance(release.get("date"), str) else None),
        deadline=(
            _datetime(_obj(tender.get("tenderPeriod")).get("endDate"))
            or _datetime(tender.get("expressionOfInterestDeadline"))
        ),
        value=_money(tender.get("value")),
    )
    record["stage"] = _stage(tags, release)

    # status
    tender_status = tender.get("status") or tender.get("finalStatus")
    if "tenderCancellation" in tags or tender_status in ("cancelled", "withdrawn"):
        record["status"] = "cancelled"
    elif tender_status in ("unsuccessful", "complete"):
        record["status"] = "closed"

    # classification and place
    items = [item for item in (_obj(i) for i in _list(tender.get("items"))) if item]
    lots = [lot for lot in (_obj(entry) for entry in _list(tender.get("lots"))) if lot]
    lot_ids = {str(lot.get("id")) for lot in lots if lot.get("id") is not None}
    main_cpv = [code for code in [_cpv(tender.get("classification"))] if code]
    # UK Contracts Finder puts further CPVs on the tender itself
    extra_cpv = [code for code in map(_cpv, _list(tender.get("additionalClassifications"))) if code]
    record["cpv"] = main_cpv + extra_cpv
    for item in items:
        if str(item.get("relatedLot")) not in lot_ids:
            record["cpv"] += _item_cpvs(item)
            record["nuts"] += _item_nuts(item)
    record["cpv"] = unique(record["cpv"])
    record["nuts"] = unique(record["nuts"])
    record["reserved"] = _reserved(tender)

    # Items by the lot they belong to: one pass, not one scan of every item per lot (a
    # release may hold tens of thousands of lots).
    items_of_lot: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        items_of_lot.setdefault(str(item.get("relatedLot")), []).append(item)
    for index, lot in enumerate(lots, 1):
        lot_id = _text(lot.get("id")) or str(index)
        related = items_of_lot.get(str(lot.get("id")), [])
        cpv = unique([code for item in related for code in _item_cpvs(item)]) or list(main_cpv)
        record["lots"].append(new_lot(
            lot_id,
            title=_text(lot.get("title")),
            description=_text(lot.get("description")),
            cpv=cpv,
            nuts=unique([code for item in related for code in _item_nuts(item)]),
            value=_money(lot.get("value")),
            reserved=_reserved(lot),
        ))

    # framework agreements
    techniques = _obj(tender.get("techniques"))
    method = _text(tender.get("procurementMethodDetails")) or ""
    related_framework = any(
        "framework" in _list(_obj(process).get("relationship")) for process in _list(release.get("relatedProcesses"))
    )
    record["framework_agreement"] = bool(
        techniques.get("hasFrameworkAgreement") is True or "framework" in method.lower() or related_framework
    )

    # suppliers; agreements in force
    awards = _awarded(release)
    contracts = [c for c in map(_obj, _list(release.get("contracts"))) if c and c.get("status") != "cancelled"]
    dated = [c for c in contracts if _obj(c.get("period")).get("startDate") or _obj(c.get("period")).get("endDate")]
    suppliers = [name for award in awards for name in _supplier_names(_list(award.get("suppliers")))]
    is_agreement = bool(dated) and bool(tags & _CONTRACT_TAGS or not tags & _KNOWN_TAGS)
    if is_agreement:
        record["kind"] = "agreement"
        record["stage"] = "result"
        award_ids = {str(c.get("awardID")) for c in dated}
        contract_suppliers = [name for c in dated for name in _supplier_names(_list(c.get("suppliers")))]
        linked = [
            name for award in awards if str(award.get("id")) in award_ids
            for name in _supplier_names(_list(award.get("suppliers")))
        ]
        suppliers = contract_suppliers or linked or suppliers
        starts = [d for d in (iso_date(_text(_obj(c.get("period")).get("startDate"))) for c in dated) if d]
        ends = [d for d in (iso_date(_text(_obj(c.get("period")).get("endDate"))) for c in dated) if d]
        record["valid_from"] = min(starts) if starts else None
        record["valid_until"] = max(ends) if ends else None
        values = [v for v in (_money(c.get("value")) for c in dated) if v]
        if values and len({v["currency"] for v in values}) == 1:
            record["value"] = {"amount": sum(v["amount"] for v in values), "currency": values[0]["currency"]}
        if all(c.get("status") == "terminated" for c in dated):
            record["status"] = "closed"
        elif record["status"] != "cancelled":
            record["status"] = "active"
    if suppliers:
        record["supplier"] = "; ".join(unique(suppliers))
    if record["value"] is None:
        award_values = [v for v in (_money(award.get("value")) for award in awards) if v]
        if len(award_values) == 1:
            record["value"] = award_values[0]
        else:
            record["value"] = _money(_obj(_obj(release.get("planning")).get("budget")).get("amount"))

    record["url"] = _notice_url(release, tender, url)
    keys = [f"ocid:{ocid}"]
    release_id = _text(release.get("id"))
    publication = publication_key(release_id) if release_id else None
    if publication:
        keys.append(publication)
    return ParsedNotice(record=finish_record(record), keys=keys)
