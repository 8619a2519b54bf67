"""Collect the notices of the evaluation set (benchmarks/eval/notices.json) and write the
reading sheets the two independent readers label. No scoring algorithm is used: the set is
drawn from broad pools (CPV branches, loose multilingual word lists, earlier single-reader
labels) and random notices, with a fixed seed.

Usage: python benchmarks/eval/collect.py OPEN_NOTICES.json OUT_FOLDER
(OPEN_NOTICES.json: the open competition/planning notices of the ingested corpus, as
``benchmarks.match.open_notices`` returns them.)
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import sys
from pathlib import Path

SEED = 16
# Loose pools for the two trades the earlier labels did not cover (painting and small
# building repairs; reuse and recycling): deliberately broad, most hits are unrelated.
NEW_POOLS = {
    "painting": (("4544", "4545", "4542", "4543", "50700"),
                 r"paint|maler|maling|peintur|pintur|malow|malar|tinteggi|verniciat|schilder|maalau|värv|vopsi|"
                 r"боядис|βαφ|festés|malíř|malirsk|lakier|decorat|tapet"),
    "recycling": (("905", "9051", "90514", "3791"),
                  r"recycl|genbrug|genanv|réemploi|reemploi|recyclag|ressourcerie|déchetter|decheter|wertstoff|"
                  r"wiederverw|reciclaj|reutiliz|riciclo|riuso|recykl|kierrät|taaskasut|rециклир|рецикл|ανακύκλ|"
                  r"hergebruik|kringloop|återbruk|återvinn|újrahasznos|reuse|re-use|second.hand|upcycl"),
}


def text_of(record: dict) -> str:
    parts = [record.get("title") or "", record.get("description") or ""]
    for lot in record["lots"]:
        parts += [lot.get("title") or "", lot.get("description") or ""]
    return " ".join(parts)


def codes_of(record: dict) -> list[str]:
    return list(record.get("cpv") or []) + [code for lot in record["lots"] for code in lot.get("cpv") or []]


def cpv_labels() -> dict[str, str]:
    import csv
    path = Path(__file__).resolve().parents[2] / "tendermatch" / "matcher" / "data" / "cpv2008_en_da.csv"
    with path.open(encoding="utf-8") as handle:
        return {row["code"]: row["label_en"] for row in csv.DictReader(handle)}


def _cut(text: str | None, size: int) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= size else text[:size] + " [...]"


def reading_text(number: str, record: dict, labels: dict[str, str]) -> str:
    """A notice as a reader sees it: everything that says what the work is."""
    buyer = record.get("buyer") or {}
    lines = [f"=== {number} | country {buyer.get('country')} | language {record.get('language')} | "
             f"buyer {buyer.get('name')}, {buyer.get('city')}",
             f"Title: {_cut(record.get('title'), 400)}"]
    codes = record.get("cpv") or []
    if codes:
        lines.append("CPV: " + "; ".join(f"{code} {labels.get(code, '?')}" for code in codes[:12]))
    if record.get("reserved"):
        lines.append("Reserved (whole notice): " + ", ".join(record["reserved"]))
    if record.get("description"):
        lines.append("Description: " + _cut(record["description"], 2500))
    lots = record["lots"]
    if len(lots) > 1 or any(lot.get("reserved") for lot in lots) or \
            (lots and (lots[0].get("description") or "") != (record.get("description") or "")):
        lines.append(f"Lots ({len(lots)}):")
        for lot in lots[:40]:
            lot_codes = [code for code in lot.get("cpv") or [] if code not in codes]
            extra = f" | CPV {'; '.join(f'{c} {labels.get(c, chr(63))}' for c in lot_codes[:4])}" if lot_codes else ""
            reserved = f" | RESERVED {', '.join(lot['reserved'])}" if lot.get("reserved") else ""
            description = lot.get("description") or ""
            shown = "" if description == (record.get("description") or "") else " | " + _cut(description, 350)
            lines.append(f"  - Lot {lot['lot_id']}: {_cut(lot.get('title'), 200)}{extra}{reserved}{shown}")
        if len(lots) > 40:
            lines.append(f"  ... and {len(lots) - 40} more lots")
    return "\n".join(lines) + "\n"


def split_of(notice_id: str) -> str:
    """'tune' or 'holdout', fixed by the notice id (about half each)."""
    return "holdout" if hashlib.sha256(notice_id.encode()).digest()[0] % 2 else "tune"


def main() -> None:
    records = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    out = Path(sys.argv[2])
    by_id = {r["id"]: r for r in records}
    old = json.loads((Path(__file__).parent / "earlier_labels.json").read_text(encoding="utf-8"))
    rng = random.Random(SEED)
    chosen: dict[str, str] = {}
    for labels in old.values():  # every notice an earlier reader found relevant for someone
        for notice_id, label in labels.items():
            if label["relevant"] and notice_id in by_id:
                chosen.setdefault(notice_id, "earlier relevant")
    for name, (prefixes, pattern) in NEW_POOLS.items():
        expression = re.compile(pattern, re.IGNORECASE)
        pool = sorted(r["id"] for r in records if r["id"] not in chosen and (
            any(code.startswith(prefixes) for code in codes_of(r)) or expression.search(text_of(r))))
        for notice_id in rng.sample(pool, min(70, len(pool))):
            chosen.setdefault(notice_id, f"{name} pool")
    near = sorted({notice_id for labels in old.values() for notice_id in labels
                   if notice_id in by_id and notice_id not in chosen})
    for notice_id in rng.sample(near, min(280, len(near))):
        chosen[notice_id] = "earlier pool"
    rest = sorted(set(by_id) - set(chosen))
    for notice_id in rng.sample(rest, 150):
        chosen[notice_id] = "random"
    ids = sorted(chosen, key=lambda notice_id: hashlib.sha256(f"{SEED}{notice_id}".encode()).hexdigest())
    notices = [{"n": f"N{number:03d}", "id": notice_id, "why_collected": chosen[notice_id],
                "split": split_of(notice_id), "country": (by_id[notice_id].get("buyer") or {}).get("country"),
                "language": by_id[notice_id].get("language")} for number, notice_id in enumerate(ids, start=1)]
    out.mkdir(parents=True, exist_ok=True)
    (out / "notices.json").write_text(json.dumps(notices, ensure_ascii=False, indent=1), encoding="utf-8")
    labels = cpv_labels()
    sheets = 3
    for sheet in range(sheets):
        part = notices[sheet::sheets]
        text = "\n".join(reading_text(item["n"], by_id[item["id"]], labels) for item in part)
        (out / f"sheet{sheet + 1}.txt").write_text(text, encoding="utf-8")
    print(len(notices), "notices")


if __name__ == "__main__":
    main()
