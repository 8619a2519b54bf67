"""De-duplication and lot handling at scale: N and 2N items in the same run, and the ratio.

Times, in this process, what `tendermatch ingest` does (parse, de-duplicate, store into a
fresh SQLite store on disk):

  * feeds: feed A (source feed-a) with N items, then feed B (source feed-b) with N items
    of which 90% are the same tenders as A's, written differently (another link, the
    title in other case and punctuation, the buyer's name longer): cross-source fuzzy
    de-duplication must merge those and only those (at 4,000 a few made-up place names
    are close enough, like "Lindtoft" and "Lindtofte", to merge two tenders: the title
    threshold's doing, not the candidate search's);
  * ocds: one OCDS release with L/2 and with L lots (each with its own item), parsed and
    stored (2L lots would be over the 20 MB document limit).

For each: the time at N and at 2N (L/2 and L), their ratio (about 2 when the work grows linearly,
about 4 when it is quadratic), and the result checked (notices, lots). Also the longest
time the store's write lock was held during the 2N run, measured from a second
connection trying to take it every few milliseconds (another writer waits that long).

Usage: python benchmarks/dedupe.py [--items 2000] [--lots 50000] [--repeat 1]
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from datetime import date, timedelta
from pathlib import Path
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tendermatch.crawler.ingest import NoticeIngester
from tendermatch.crawler.parsers.common import MAX_DOCUMENT_BYTES
from tendermatch.crawler.prepare import prepare_file
from tendermatch.store import Store

SEED = 20261124
FIRST_DEADLINE = date(2027, 3, 1)
DEADLINE_DAYS = 5  # every deadline within a few days: many candidates per notice

_ACTIVITIES = ("Rengøring", "Levering", "Drift", "Vedligeholdelse", "Indkøb", "Rådgivning", "Transport",
               "Vinduespudsning", "Snerydning", "Catering", "Vask", "Istandsættelse", "Pasning", "Tilsyn",
               "Reparation", "Flytning", "Maling", "Beskæring", "Kørsel", "Servicering")
_OBJECTS = ("skoler", "daginstitutioner", "plejecentre", "rådhuset", "biblioteker", "idrætsanlæg", "parker",
            "svømmehaller", "kulturhuse", "boligsociale projekter", "fritidsklubber", "sportshaller",
            "legepladser", "kirkegårde", "administrationsbygninger", "botilbud", "værksteder", "museer",
            "genbrugsstationer", "sundhedshuse", "ungdomsboliger", "bådehavne", "badestrande", "stadion",
            "musikskoler", "arkiver", "brandstationer", "torve", "cykelstier", "vandværker")
_PLACE_STARTS = ("Lind", "Ege", "Rosen", "Birke", "Elme", "Hassel", "Bøge", "Aske", "Pile", "Gran", "Løn",
                 "Kastanje", "Hyld", "Ene", "Tjørne", "Hede", "Sø", "Mose", "Strand", "Bakke", "Skov", "Eng",
                 "Kilde", "Lunde", "Vester", "Øster", "Nør", "Sønder", "Store", "Lille")
_PLACE_ENDS = ("holm", "bjerg", "vang", "gård", "lund", "høj", "dal", "bro", "by", "rup", "sted", "toft",
               "hus", "vej", "mark", "løkke", "næs", "strup", "skov", "have", "dam", "kær", "hule", "hage",
               "minde", "borg", "tofte", "vænge", "lyst", "ager")
_BUYERS = ("Københavns Kommune", "Roskilde Kommune", "Aarhus Kommune", "Odense Kommune", "Region Hovedstaden")


def tender_items(count: int, *, seed: int = SEED) -> list[dict[str, str]]:
    """``count`` distinct tenders as a municipal feed would list them: title, buyer, deadline."""
    rng = random.Random(seed)
    places = [start + end for start in _PLACE_STARTS for end in _PLACE_ENDS]
    seen: set[str] = set()
    items = []
    while len(items) < count:
        title = f"{rng.choice(_ACTIVITIES)} af {rng.choice(_OBJECTS)} i {rng.choice(places)}"
        if len(seen) < len(_ACTIVITIES) * len(_OBJECTS) * len(places) // 2:
            if title in seen:
                continue
        else:  # more items than names: a serial number keeps them apart
            title = f"{title} {len(items)}"
        seen.add(title)
        deadline = FIRST_DEADLINE + timedelta(days=rng.randrange(DEADLINE_DAYS))
        items.append({"title": title, "buyer": rng.choice(_BUYERS), "deadline": deadline.isoformat()})
    return items


def rss(items: list[dict[str, str]], *, site: str) -> bytes:
    """An RSS 2.0 feed of ``items`` ({title, link, buyer, deadline}) as a municipality publishes it."""
    entries = []
    for item in items:
        day = date.fromisoformat(item["deadline"])
        entries.append(
            f"<item><title>{escape(item['title'])}</title><link>{escape(item['link'])}</link>"
            f"<author>udbud@{site} ({escape(item['buyer'])})</author>"
            f"<description>{escape(item.get('description') or item['title'])}. "
            f"Tilbudsfrist: {day.day}. marts {day.year} kl. 12:00</description></item>")
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Udbud</title>'
            f"<link>https://{site}/udbud</link><language>da</language>{''.join(entries)}</channel></rss>").encode()


def overlapping_feeds(count: int, *, shared: float = 0.9, seed: int = SEED) -> tuple[bytes, bytes, int]:
    """Feed A and feed B of ``count`` items each; ``shared`` of B's items are A's tenders
    written as another site writes them. Returns (A, B, how many notices the two make)."""
    tenders = tender_items(count + count - int(count * shared), seed=seed)
    in_a = tenders[:count]
    same = int(count * shared)
    in_b = tenders[:same] + tenders[count:]
    feed_a = [{**t, "link": f"https://a.example/udbud/{n}"} for n, t in enumerate(in_a)]
    feed_b = [{**t, "title": t["title"].upper() + ".", "link": f"https://b.example/u?id={n}",
               "buyer": f"{t['buyer']}, Indkøb og Udbud"} for n, t in enumerate(in_b)]
    return rss(feed_a, site="a.example"), rss(feed_b, site="b.example"), len(tenders)


def ocds_release(lots: int, *, ocid: str = "ocds-bench-lots-1") -> bytes:
    """One OCDS release package: a tender with ``lots`` lots, each with one item (CPV, place)."""
    release = {
        "ocid": ocid, "id": f"{ocid}-01", "date": "2026-11-24T10:00:00Z", "tag": ["tender"],
        "language": "da",
        "buyer": {"id": "DK-1", "name": "Københavns Kommune"},
        "parties": [{"id": "DK-1", "name": "Københavns Kommune", "roles": ["buyer"],
                     "address": {"countryName": "Denmark", "locality": "København"}}],
        "tender": {
            "id": "T-1", "title": "Rammeaftale om småindkøb i mange delaftaler",
            "tenderPeriod": {"endDate": "2027-03-01T12:00:00+01:00"},
            "lots": [{"id": f"LOT-{n}", "title": f"Delaftale {n}: rengøring af afdeling {n}",
                      "value": {"amount": 10_000 + n, "currency": "DKK"}} for n in range(1, lots + 1)],
            "items": [{"id": f"I-{n}", "relatedLot": f"LOT-{n}",
                       "classification": {"scheme": "CPV", "id": "90910000"},
                       "deliveryAddresses": [{"region": "DK011"}]} for n in range(1, lots + 1)],
        },
    }
    return json.dumps({"uri": "https://bench.example/ocds", "version": "1.1", "releases": [release]}).encode()


class LockWatch:
    """The longest time the store's write lock was held, seen from another connection
    that tries to take it (BEGIN IMMEDIATE without waiting) every ``every`` seconds.
    ``probe``: a query run each time the lock is taken; its distinct rows are kept in
    ``seen`` (what the store held while another writer could write)."""

    def __init__(self, path: Path, *, every: float = 0.005, probe: str | None = None):
        self.path, self.every, self.probe = path, every, probe
        self.longest = 0.0
        self.tries = 0
        self.seen: set[tuple] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> LockWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self.path.exists() and not self._stop.is_set():
            time.sleep(self.every)
        db = sqlite3.connect(str(self.path), timeout=0, isolation_level=None)
        locked_since = None
        while not self._stop.is_set():
            self.tries += 1
            try:
                db.execute("BEGIN IMMEDIATE")
                if self.probe:
                    self.seen.update(db.execute(self.probe).fetchall())
                db.execute("ROLLBACK")
                locked_since = None
            except sqlite3.OperationalError:
                now = time.monotonic()
                locked_since = locked_since or now
                self.longest = max(self.longest, now - locked_since)
            time.sleep(self.every)
        db.close()


def ingest_files(store_path: Path, files: list[tuple[Path, str]]) -> NoticeIngester:
    """Each (file, source) ingested in turn, in this process, as `tendermatch ingest` stores."""
    store = Store.open(store_path)
    try:
        for file, source in files:
            ingester = NoticeIngester(store, source=source)
            ingester.store_all([prepare_file(str(file), source, MAX_DOCUMENT_BYTES)])
        return ingester
    finally:
        store.close()


def time_feeds(count: int, folder: Path) -> tuple[float, float, dict[str, int]]:
    feed_a, feed_b, expected = overlapping_feeds(count)
    (folder / "a.xml").write_bytes(feed_a)
    (folder / "b.xml").write_bytes(feed_b)
    store_path = folder / "feeds.db"
    with LockWatch(store_path) as watch:
        start = time.perf_counter()
        ingest_files(store_path, [(folder / "a.xml", "feed-a"), (folder / "b.xml", "feed-b")])
        elapsed = time.perf_counter() - start
    db = sqlite3.connect(str(store_path))
    notices = db.execute("SELECT count(*) FROM notices").fetchone()[0]
    both = db.execute("SELECT count(*) FROM (SELECT notice_id FROM notice_sources GROUP BY notice_id"
                      " HAVING count(*) = 2)").fetchone()[0]
    db.close()
    return elapsed, watch.longest, {"notices": notices, "expected": expected, "in_both": both,
                                    "expected_in_both": int(count * 0.9)}


def time_lots(lots: int, folder: Path) -> tuple[float, float, dict[str, int]]:
    (folder / "lots.json").write_bytes(ocds_release(lots))
    store_path = folder / "lots.db"
    with LockWatch(store_path) as watch:
        start = time.perf_counter()
        ingest_files(store_path, [(folder / "lots.json", "ocds")])
        elapsed = time.perf_counter() - start
    db = sqlite3.connect(str(store_path))
    stored = db.execute("SELECT count(*) FROM lots").fetchone()[0]
    db.close()
    return elapsed, watch.longest, {"lots": stored, "expected": lots}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=2000, help="N items per feed (also run at 2N)")
    parser.add_argument("--lots", type=int, default=50000, help="L lots in one release (also run at 2L)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per size; the median is shown")
    parser.add_argument("--only", choices=("feeds", "ocds"), help="run one of the two")
    args = parser.parse_args()
    # A release of 2L lots would be over the 20 MB document limit: the lots run at L/2 and L.
    cases = [("feeds", args.items, time_feeds), ("ocds", args.lots // 2, time_lots)]
    for name, size, measure in cases:
        if args.only and name != args.only:
            continue
        times = {}
        for n in (size, 2 * size):
            samples, longest, result = [], 0.0, {}
            for _ in range(args.repeat):
                with tempfile.TemporaryDirectory() as folder:
                    elapsed, held, result = measure(n, Path(folder))
                samples.append(elapsed)
                longest = max(longest, held)
            times[n] = statistics.median(samples)
            print(f"{name} n={n}: {times[n]:.2f} s, write lock held at most {longest:.2f} s at a time; {result}",
                  flush=True)
        print(f"{name}: time(2N) / time(N) = {times[2 * size] / times[size]:.2f}  (2 = linear, 4 = quadratic)",
              flush=True)


if __name__ == "__main__":
    main()
