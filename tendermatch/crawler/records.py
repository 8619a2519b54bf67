"""A parsed record made safe to store: text scrubbed, dates checked, the shape the schema
says; or ``UnusableRecord``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..errors import TendermatchError
from .parsers.common import (
    clean_identifier,
    country_code,
    plausible_moment,
    without_surrogates,
)

_DATE_FIELDS = ("deadline", "published", "valid_from", "valid_until")


class UnusableRecord(TendermatchError, ValueError):
    """A parsed record that cannot be stored (no usable id): rejected alone."""


def _scrubbed(value: Any, *, checked: bool = False) -> Any:
    """``value`` with every string in it free of lone surrogates and NUL (neither can be
    stored as UTF-8 nor shown safely)."""
    if not checked and isinstance(value, (dict, list)):
        # Nearly every record is clean: one C-speed look at the whole of it (a notice may
        # hold 50,000 lots) rather than a Python call per string.
        try:
            text = json.dumps(value, ensure_ascii=False)
            text.encode("utf-8")  # fails on a lone surrogate
            if "\\u0000" not in text:  # json writes NUL as \u0000
                return value
        except (TypeError, ValueError):
            pass
        return _scrubbed(value, checked=True)
    if isinstance(value, str):
        return without_surrogates(value)
    if isinstance(value, dict):
        return {_scrubbed(key, checked=True): _scrubbed(item, checked=True) for key, item in value.items()}
    if isinstance(value, list):
        return [_scrubbed(item, checked=True) for item in value]
    return value


def normalise_record(parsed: Mapping[str, Any], *, url: str | None,
                     warnings: list[str] | None = None) -> dict[str, Any]:
    """Make a parsed record ready to store: defaults, cleaned codes, a url, lot ids as text,
    ids without control or bidi characters, text without lone surrogates, and no date the
    store cannot hold (a dropped one is added to ``warnings``). Raises UnusableRecord when
    no id is left."""
    record: dict[str, Any] = _scrubbed(dict(parsed))
    record.pop("sources", None)
    record["id"] = clean_identifier(record.get("id"))
    if not record["id"]:
        raise UnusableRecord("no usable id")
    record["procedure_id"] = clean_identifier(record.get("procedure_id"))
    for name in _DATE_FIELDS:
        if record.get(name) is not None and not plausible_moment(record[name]):
            if warnings is not None:
                warnings.append(f"{url}: {record['id']}: {name} {str(record[name])[:40]!r} is not a usable date;"
                                " left out")
            record[name] = None
    record["url"] = record.get("url") or url
    record["title"] = (record.get("title") or "").strip()
    record["titles"] = {lang: text for lang, text in sorted((record.get("titles") or {}).items()) if text}
    if record.get("buyer"):
        record["buyer"] = {**record["buyer"], "country": country_code(record["buyer"].get("country"))}
    for lot in record["lots"]:
        lot["lot_id"] = clean_identifier(lot.get("lot_id")) or "1"
        lot.setdefault("nuts", [])
        lot.setdefault("value", None)
    return record
