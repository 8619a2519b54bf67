"""Matching speed and memory at realistic scale, against the naive approach, in one run.

Builds (not timed) a store of 15,000 notices (~50,000 lots) by replicating the corpus's
open competition and planning notices under new ids, with one unique word added to every
title and description so that no replica is a free copy of another, and 10,000 profiles
generated from CPV codes used in the corpus: their Danish and English labels give the
keywords, the code's branch the CPV, a NUTS prefix of the notices (or anywhere) the region.

Then times, each in a fresh process (so peak memory is that run's own):
  * full: `match` as the CLI runs it (read the store, index, score every profile, write
    the match log) at 15,000 notices x 10,000 profiles;
  * half the notices (7,500 x 10,000) and half the profiles (15,000 x 5,000): the cost
    growth when one side doubles (linear = 2.0);
  * naive: rapidfuzz's token_set_ratio of each profile's keywords against the text of
    every lot, called in a Python loop over every pair; and the same scorer batched in
    rapidfuzz's C++ loop (process.cdist on both cores), the fastest way to run it. Each
    is timed for a sample of profiles over all lots and extrapolated to all profiles.
Targets: full <= 60 s, >= 100x faster than naive, growth about 2x per doubling, peak RSS <= 2 GB.

Usage: python benchmarks/match.py [--corpus ../shared/corpus] [--notices 15000] [--profiles 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.ingest import corpus_files
from benchmarks.peak import run_with_peak
from tendermatch.crawler.ingest import NoticeIngester
from tendermatch.crawler.prepare import prepare_file, prepare_in_parallel
from tendermatch.matcher.cpv import branch, cpv_labels
from tendermatch.matcher.profiles import Profile
from tendermatch.matcher.text import content_words, is_generic
from tendermatch.store import Store

SEED = 20261122


def open_notices(corpus: Path) -> list[dict]:
    """The corpus's notices that a matcher may send (open competition/planning), parsed once."""
    with tempfile.TemporaryDirectory() as folder:
        store = Store.open(Path(folder) / "corpus.db")
        ingester = NoticeIngester(store, source="corpus", run_id=None, max_bytes=20 * 1024 * 1024)
        tasks = ((str(file), "corpus", 20 * 1024 * 1024) for file in corpus_files(corpus))
        ingester.store_all(prepare_in_parallel(prepare_file, tasks, workers=2))
        records = [r for r in store.notices() if r["stage"] in ("competition", "planning") and r["status"] == "active"]
        store.close()
    return records


def replicate(records: list[dict], count: int) -> list[dict]:
    """``count`` notices cycling through ``records``, each with a new id and a unique word
    in its titles and descriptions."""
    out = []
    for number in range(count):
        base = records[number % len(records)]
        # Only the top level and the lots change: copying those is enough (a deep copy of
        # 50,000 records took 10 s of the load test's build).
        record = {**base, "lots": [dict(lot) for lot in base["lots"]]}
        tag = f"r{number}x"
        record["id"] = f"bench:{number}"
        record["title"] = f"{record['title']} {tag}"
        if record.get("description"):
            record["description"] = f"{record['description']} {tag}"
        for lot in record["lots"]:
            if lot.get("title"):
                lot["title"] = f"{lot['title']} {tag}"
            if lot.get("description"):
                lot["description"] = f"{lot['description']} {tag}"
        out.append(record)
    return out


def generate_profiles(records: list[dict], count: int) -> list[Profile]:
    """Profiles built from the CPV codes the notices use (so they can match) and their labels."""
    rng = random.Random(SEED)
    labels = cpv_labels()
    used = [code for record in records for lot in record["lots"] for code in lot["cpv"] if code in labels]
    regions = sorted({code[:length] for record in records for code in record.get("nuts", []) for length in (2, 3)
                      if len(code) >= length})
    profiles = []
    for number in range(count):
        codes = [rng.choice(used) for _ in range(rng.choice((1, 1, 2, 3)))]
        keywords: list[str] = []
        for code in codes:
            english, danish = labels[code]
            for label in (danish, english):
                specific = [word for word in content_words(label) if not is_generic(word) and len(word) > 3]
                if specific:
                    keywords.append(" ".join(rng.sample(specific, min(len(specific), rng.choice((1, 1, 2))))))
        cpv = tuple({(branch(code) + "0" * 8)[:8] if len(branch(code)) > 3 else code for code in codes})
        profiles.append(Profile(
            id=f"p{number}", name=f"Enterprise {number}", emails=(f"p{number}@bench.example",),
            description=" ".join(labels[codes[0]]),
            keywords=tuple(dict.fromkeys(keywords)) or ("rengøring",),
            exclude=("asbest",) if number % 7 == 0 else (),
            cpv=cpv,
            regions=() if rng.random() < 0.2 else (rng.choice(regions),),
            max_value=float(rng.choice((500_000, 1_000_000, 2_500_000, 5_000_000, 20_000_000))),
            reserved_eligible=("res-ws",) if rng.random() < 0.5 else (),
        ))
    return profiles


def build_store(path: Path, records: list[dict]) -> None:
    store = Store.open(path)
    with store.transaction():
        for record in records:
            store.put_notice(record, keys=[f"pub:{record['id']}"], source="bench", source_url=None, raw_id=None,
                             change="new", fields=[])
    store.close()


def run_child(store_path: Path, profiles_path: Path, profiles: int) -> dict:
    """Time `match` in a fresh process; returns its wall time, peak RSS and counts. The peak
    is measured by benchmarks/peak.py's launcher: the child's own ru_maxrss would count this
    process's memory (the replicated notices) up to the child's exec. It is the largest of
    the match's processes (the main one and its pool workers), not their sum."""
    ran = run_with_peak([sys.executable, __file__, "--child", str(store_path), str(profiles_path), str(profiles)],
                        cwd=ROOT, env=dict(os.environ), timeout=3600)
    if ran.returncode != 0:
        raise RuntimeError(f"match child exited {ran.returncode}:\n{ran.stderr[-2000:]}")
    return {**json.loads(ran.stdout.strip().splitlines()[-1]), "peak_mb": ran.peak_mb}


def child(store_path: str, profiles_path: str, count: int) -> None:
    from tendermatch.matcher.run import match_store

    profiles = [Profile(**{**item, **{k: tuple(v) for k, v in item.items() if isinstance(v, list)}})
                for item in json.loads(Path(profiles_path).read_text())[:count]]
    store = Store.open(store_path)
    started = time.perf_counter()
    result = match_store(store, profiles, as_of=None)
    seconds = time.perf_counter() - started
    store.close()
    print(json.dumps({"seconds": seconds,
                      "matches": result.stats["matches"], "lots": result.stats["lots"],
                      "notices": result.stats["matched_notices"], "profiles": len(profiles)}))


def lot_texts(records: list[dict]) -> list[str]:
    """What the naive approach compares a profile with: each lot's title, description and
    CPV labels, with the notice's title."""
    labels = cpv_labels()
    texts = []
    for record in records:
        for lot in record["lots"]:
            parts = [record["title"], lot.get("title") or "", lot.get("description") or record.get("description") or ""]
            parts += [" ".join(labels.get(code, ("", ""))) for code in lot["cpv"]]
            texts.append(" ".join(parts).lower())
    return texts


def naive_seconds(texts: list[str], profiles: list[Profile], *, sample: int, batched: bool) -> float:
    """Seconds for rapidfuzz's token_set_ratio over every profile x lot pair, extrapolated
    from ``sample`` profiles: a Python loop calling the scorer per pair, or (``batched``)
    rapidfuzz's own C++ loop, process.cdist, on every core."""
    from rapidfuzz import fuzz, process

    queries = [" ".join(p.keywords).lower() for p in profiles[:sample]]
    started = time.perf_counter()
    if batched:
        process.cdist(queries, texts, scorer=fuzz.token_set_ratio, workers=-1)
    else:
        for query in queries:
            for text in texts:
                fuzz.token_set_ratio(query, text)
    return (time.perf_counter() - started) / sample * len(profiles)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path,
                        default=Path(os.environ.get("TENDERMATCH_CORPUS", ROOT.parent / "shared" / "corpus")))
    parser.add_argument("--notices", type=int, default=15_000)
    parser.add_argument("--profiles", type=int, default=10_000)
    parser.add_argument("--naive-sample", type=int, default=5, help="Profiles timed in the naive loop (x10 batched).")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], int(args.child[2]))
        return

    print(f"corpus: {args.corpus}")
    base = open_notices(args.corpus)
    records = replicate(base, args.notices)
    profiles = generate_profiles(base, args.profiles)
    lots = sum(len(r["lots"]) for r in records)
    print(f"{len(base)} open corpus notices replicated to {len(records):,} notices ({lots:,} lots);"
          f" {len(profiles):,} generated profiles")
    with tempfile.TemporaryDirectory() as folder:
        folder_path = Path(folder)
        full_store, half_store = folder_path / "full.db", folder_path / "half.db"
        build_store(full_store, records)
        build_store(half_store, records[: args.notices // 2])
        profiles_path = folder_path / "profiles.json"
        profiles_path.write_text(json.dumps([{k: v for k, v in p.__dict__.items() if k != "source"} for p in profiles]))

        full = run_child(full_store, profiles_path, args.profiles)
        half_notices = run_child(half_store, profiles_path, args.profiles)
        half_profiles = run_child(full_store, profiles_path, args.profiles // 2)
    texts = lot_texts(records)
    naive = naive_seconds(texts, profiles, sample=args.naive_sample, batched=False)
    batched = naive_seconds(texts, profiles, sample=args.naive_sample * 10, batched=True)

    def line(name: str, run: dict) -> str:
        return (f"{name:<28} {run['seconds']:7.1f} s  peak {run['peak_mb']:6.0f} MB  {run['notices']:>6,} notices"
                f" {run['lots']:>7,} lots x {run['profiles']:>6,} profiles -> {run['matches']:>9,} matches")

    print(line("full", full))
    print(line("half the notices", half_notices))
    print(line("half the profiles", half_profiles))
    print(f"{'naive (extrapolated)':<28} {naive:7.0f} s  (a Python loop calling token_set_ratio for every pair;"
          f" timed on {args.naive_sample} profiles x {len(texts):,} lots)")
    print(f"{'naive batched (extrapolated)':<28} {batched:7.0f} s  (rapidfuzz process.cdist, C++ loop on both cores;"
          f" timed on {args.naive_sample * 10} profiles)")
    print(f"speed-up over naive: {naive / full['seconds']:.0f}x (target >= 100x);"
          f" over naive batched: {batched / full['seconds']:.0f}x")
    print(f"growth when the notices double: {full['seconds'] / half_notices['seconds']:.2f}x;"
          f" when the profiles double: {full['seconds'] / half_profiles['seconds']:.2f}x (linear = 2)")
    print(f"full scale: {full['seconds']:.1f} s (target <= 60 s), peak {full['peak_mb']:.0f} MB (target <= 2048 MB)")


if __name__ == "__main__":
    main()
