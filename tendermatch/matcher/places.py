"""Where a lot is performed, and whether that is inside a profile's regions.

A lot's place comes from the best evidence the notice gives, in this order:
1. its place of performance (NUTS codes of the lot, else of the notice);
2. the buyer's municipality, for Danish buyers, from the buyer's city or postal town
   (``data/dk_municipalities.csv``: the 98 municipalities with their NUTS 3 region and
   their other town names);
3. the buyer's country (as a NUTS country code: Greece is EL, the United Kingdom UK).
A notice with none of these (a municipality's own web page often names no buyer) has an
unknown place: it is not known to be elsewhere, so it is sent, with a note to check.

A profile's ``regions`` may name countries (``DK``), NUTS regions (``DK01``, ``DK011``) or
Danish municipalities (``Roskilde``). Pure functions over records.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from ..store.records import Lot, NoticeRecord
from .text import fold

# The evidence that placed a lot, best first (names used in the match log's facts).
PLACE_OF_PERFORMANCE = "place"
BUYER_MUNICIPALITY = "buyer-municipality"
BUYER_COUNTRY = "buyer-country"
UNKNOWN = "unknown"

# ISO 3166 alpha-2 -> NUTS country code where they differ.
_NUTS_COUNTRY = {"GR": "EL", "GB": "UK"}
# Country names as some sources (OCDS publishers) write them instead of a code.
_COUNTRY_NAMES = {
    "england": "UK", "scotland": "UK", "wales": "UK", "northern ireland": "UK", "united kingdom": "UK",
    "great britain": "UK", "eng": "UK", "sct": "UK", "wls": "UK", "nir": "UK", "gbr": "UK",
    "denmark": "DK", "danmark": "DK", "ireland": "IE", "france": "FR", "germany": "DE", "deutschland": "DE",
    "spain": "ES", "italy": "IT", "netherlands": "NL", "belgium": "BE", "poland": "PL", "sweden": "SE",
    "norway": "NO", "finland": "FI", "austria": "AT", "portugal": "PT", "greece": "EL",
}
# ISO 3166 alpha-3 codes as some OCDS publishers write them -> NUTS country codes.
_ALPHA3 = {
    "AUT": "AT", "BEL": "BE", "BGR": "BG", "HRV": "HR", "CYP": "CY", "CZE": "CZ", "DNK": "DK", "EST": "EE",
    "FIN": "FI", "FRA": "FR", "DEU": "DE", "GRC": "EL", "HUN": "HU", "IRL": "IE", "ITA": "IT", "LVA": "LV",
    "LTU": "LT", "LUX": "LU", "MLT": "MT", "NLD": "NL", "POL": "PL", "PRT": "PT", "ROU": "RO", "SVK": "SK",
    "SVN": "SI", "ESP": "ES", "SWE": "SE", "GBR": "UK", "NOR": "NO", "ISL": "IS", "LIE": "LI", "CHE": "CH",
    "MKD": "MK", "SRB": "RS", "ALB": "AL", "MNE": "ME", "TUR": "TR",
}
# Danish regions as buyers name themselves.
_DK_REGIONS = {"region hovedstaden": "DK01", "region sjaelland": "DK02", "region syddanmark": "DK03",
               "region midtjylland": "DK04", "region nordjylland": "DK05"}
_CODE = re.compile(r"[A-Z]{2}")
_POSTAL_DISTRICT = re.compile(r"^\d{4}\s+|\s+(?:c|k|v|oe|o|n|s|nv|sv|soe|m|j|f)$")


@dataclass(frozen=True, slots=True)
class Place:
    """Where a lot is performed as far as the notice says: NUTS-like codes (a country code,
    a region or a NUTS 3 code), the municipality when the buyer's names one, and which
    evidence said so."""

    codes: tuple[str, ...]
    evidence: str
    municipality: str | None = None


@lru_cache(maxsize=1)
def _municipalities() -> dict[str, tuple[str, str]]:
    """Folded municipality or town name -> (municipality, its NUTS 3 code)."""
    names: dict[str, tuple[str, str]] = {}
    text = resources.files(__package__).joinpath("data/dk_municipalities.csv").read_text(encoding="utf-8")
    for row in csv.DictReader(text.splitlines()):
        entry = (row["municipality"], row["nuts3"])
        names[fold(row["municipality"])] = entry
        names[fold(row["municipality"] + " kommune")] = entry
        names[fold(row["municipality"] + "s kommune")] = entry  # "Københavns Kommune"
        for town in filter(None, (row["towns"] or "").split(";")):
            names.setdefault(fold(town), entry)
    return names


def municipality(name: str | None) -> tuple[str, str] | None:
    """(municipality, NUTS 3) for a Danish municipality, town or postal district name
    ("2300 København S", "Kgs. Lyngby", "Roskilde Kommune"), or None."""
    if not name:
        return None
    folded = fold(name)
    found = _municipalities().get(folded)
    if found is None:
        found = _municipalities().get(_POSTAL_DISTRICT.sub("", folded).strip())
    return found


def nuts_country(country: str | None) -> str | None:
    """A buyer's country as a NUTS country code ('GR' -> 'EL', 'ENGLAND' -> 'UK'), or None."""
    if not country or not isinstance(country, str):
        return None
    text = country.strip()
    if _CODE.fullmatch(text.upper()) and len(text) == 2:
        return _NUTS_COUNTRY.get(text.upper(), text.upper())
    return _ALPHA3.get(text.upper()) or _COUNTRY_NAMES.get(fold(text))


def place_of(record: NoticeRecord, lot: Lot) -> Place:
    """The best evidence of where a lot is performed (see the module docstring)."""
    nuts = tuple(lot.get("nuts") or record.get("nuts") or ())
    if nuts:
        return Place(nuts, PLACE_OF_PERFORMANCE)
    buyer = record.get("buyer")
    if not isinstance(buyer, dict):  # a store from an older version or a hand edit: no buyer to go by
        buyer = {}
    country = nuts_country(buyer.get("country"))
    if country in (None, "DK"):
        for name in (buyer.get("city"), buyer.get("name")):
            found = municipality(name) if isinstance(name, str) else None
            if found is not None:
                return Place((found[1],), BUYER_MUNICIPALITY, found[0])
        region = _DK_REGIONS.get(fold(buyer.get("name") or "")) if isinstance(buyer.get("name"), str) else None
        if region:
            return Place((region,), BUYER_MUNICIPALITY, str(buyer.get("name")))
    if country:
        return Place((country,), BUYER_COUNTRY)
    return Place((), UNKNOWN)


@lru_cache(maxsize=4096)
def region_code(region: str) -> str | None:
    """A profile region as a NUTS code or prefix: the code itself, or a Danish
    municipality's NUTS 3 code; None when it is neither."""
    if re.fullmatch(r"[A-Z]{2}[0-9A-Z]{0,3}", region):
        return region
    found = municipality(region)
    return found[1] if found else None


@lru_cache(maxsize=4096)
def resolve_regions(regions: tuple[str, ...]) -> tuple[tuple[str, str | None], ...]:
    """A profile's regions as (NUTS code or prefix, municipality name or None), the ones
    that are neither left out (profiles are checked when read)."""
    resolved = []
    for region in regions:
        code = region_code(region)
        if code is not None:
            found = municipality(region) if code != region else None
            resolved.append((code, found[0] if found else None))
    return tuple(resolved)


def in_regions(place: Place, regions: tuple[str, ...] | list[str]) -> bool:
    """Whether a lot placed at ``place`` may be inside one of ``regions`` (empty: anywhere).

    A code inside a region, or covering it (a lot placed in all of Denmark, "DK", may be
    performed in "DK01"), counts. A municipality region needs the lot's own municipality
    when the buyer's municipality is the evidence; a NUTS place covering the municipality
    counts. A lot whose place is unknown may be anywhere (the digest says to check it).
    """
    return not regions or in_resolved_regions(place, resolve_regions(tuple(regions)))


def in_resolved_regions(place: Place, resolved: tuple[tuple[str, str | None], ...]) -> bool:
    """``in_regions`` for a profile with regions, already resolved (``resolve_regions``)."""
    if place.evidence == UNKNOWN:
        return True
    for code, town in resolved:
        if town is not None and place.municipality is not None:
            if place.municipality == town:
                return True
            continue
        if any(found.startswith(code) or code.startswith(found) for found in place.codes):
            return True
    return False


def inside(place: Place, regions: tuple[str, ...] | list[str]) -> list[str]:
    """The lot's codes that lie inside one of the regions (for the reasons)."""
    return [code for code in place.codes if in_regions(Place((code,), place.evidence, place.municipality), regions)]
