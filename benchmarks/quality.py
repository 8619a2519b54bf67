"""Match quality on real notices labelled by two independent readers, against what
saved-search alerts do.

The evaluation set (benchmarks/eval, see its README) is 691 open notices from 30+
countries and twelve enterprise profiles (benchmarks/eval/profiles, regions cleared). Two
readers read every notice and named the profiles that would bid on it
(benchmarks/eval/readers/A.json and B.json); a (profile, notice) pair they disagree on is
left out. The notices are split by id into a tuning half and a held-out half
(benchmarks/eval/notices.json, "split"): tune the matcher on `--split tune` only, report
`--split holdout`. This script ingests the corpus, then computes precision, recall and F1
per profile for three matchers, in the same run:
  * tendermatch: the matcher (every match it would send; deadlines ignored). It matches
    all 1,627 open notices of the corpus, as `tendermatch match` matches the whole store
    (how specific a term is, is its share of the store's notices), and only the split's
    notices are scored: a store of the 369 or 322 labelled notices alone, drawn mostly
    near the trades, made the trades' own words look common;
  * CPV prefix: a notice whose CPV code (notice or lot) lies in a profile code's branch
    (what a CPV saved search does);
  * exact keyword: a notice whose title, description or lot texts contain a profile keyword
    as a whole word or phrase, case-insensitive (what a keyword saved search does).
Targets on the held-out split: F1 >= 0.80, precision >= 0.85, F1 at least 0.15 above the
CPV-prefix baseline (micro-averaged over the profiles; macro averages and per-profile
figures are printed too). The micro figures come with a 95% bootstrap interval
(the notices resampled with replacement, ``--resamples`` times, seed fixed): with 79
relevant pairs in a half, one notice more or less moves F1 by about 0.01.

Usage: python benchmarks/quality.py [--split tune|holdout|all] [--corpus ../shared/corpus] [--verbose]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.match import open_notices
from tendermatch.matcher import rules
from tendermatch.matcher.cpv import branch
from tendermatch.matcher.engine import match_notices
from tendermatch.matcher.profiles import Profile
from tendermatch.worker.profiles import load_profiles

EVAL = ROOT / "benchmarks" / "eval"


def cpv_prefix_matches(profile: Profile, records: list[dict]) -> set[str]:
    prefixes = [branch(code) for code in profile.cpv]
    return {r["id"] for r in records
            if any(code.startswith(prefix) for code in r["cpv"] + [c for lot in r["lots"] for c in lot["cpv"]]
                   for prefix in prefixes)}


def keyword_matches(profile: Profile, records: list[dict]) -> set[str]:
    patterns = [re.compile(r"(?<!\w)" + re.escape(keyword.lower()) + r"(?!\w)") for keyword in profile.keywords]
    found = set()
    for r in records:
        text = " ".join([r["title"], r.get("description") or ""]
                        + [f"{lot.get('title') or ''} {lot.get('description') or ''}" for lot in r["lots"]]).lower()
        if any(pattern.search(text) for pattern in patterns):
            found.add(r["id"])
    return found


def scores(predicted: set[str], relevant: set[str]) -> tuple[float, float, float, int, int, int]:
    hits = len(predicted & relevant)
    precision = hits / len(predicted) if predicted else 1.0
    recall = hits / len(relevant) if relevant else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1, hits, len(predicted), len(relevant)


def gold_labels(split: str) -> tuple[set[str], dict[str, set[str]], dict[str, set[str]]]:
    """(the split's notice ids, profile -> relevant ids, profile -> ids the readers disagree on)."""
    notices = json.loads((EVAL / "notices.json").read_text(encoding="utf-8"))
    ids = {item["id"] for item in notices if split == "all" or item["split"] == split}
    readers = [json.loads((EVAL / "readers" / f"{name}.json").read_text(encoding="utf-8")) for name in ("A", "B")]
    relevant: dict[str, set[str]] = {}
    disputed: dict[str, set[str]] = {}
    for notice_id in ids:
        first, second = (set(reader[notice_id]["relevant"]) for reader in readers)
        for profile_id in first & second:
            relevant.setdefault(profile_id, set()).add(notice_id)
        for profile_id in first ^ second:
            disputed.setdefault(profile_id, set()).add(notice_id)
    return ids, relevant, disputed


def bootstrap_interval(per_notice: list[tuple[int, int, int]], *, resamples: int,
                       seed: int = 16) -> tuple[tuple[float, float], tuple[float, float], tuple[float, float]]:
    """95% intervals of micro precision, recall and F1 when the notices are drawn again
    with replacement: ``per_notice`` holds each notice's (hits, predicted, relevant)
    summed over the profiles."""
    draw = random.Random(seed)
    samples: list[tuple[float, float, float]] = []
    for _ in range(resamples):
        hits = predicted = relevant = 0
        for item in draw.choices(per_notice, k=len(per_notice)):
            hits, predicted, relevant = hits + item[0], predicted + item[1], relevant + item[2]
        precision = hits / predicted if predicted else 1.0
        recall = hits / relevant if relevant else 1.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        samples.append((precision, recall, f1))
    low, high = int(0.025 * resamples), max(0, int(0.975 * resamples) - 1)
    columns = [sorted(sample[k] for sample in samples) for k in range(3)]
    return (columns[0][low], columns[0][high]), (columns[1][low], columns[1][high]), (columns[2][low], columns[2][high])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path,
                        default=Path(os.environ.get("TENDERMATCH_CORPUS", ROOT.parent / "shared" / "corpus")))
    parser.add_argument("--split", choices=("tune", "holdout", "all"), default="tune",
                        help="Which half of the labelled notices to score (default: tune).")
    parser.add_argument("--verbose", action="store_true", help="List false positives and misses.")
    parser.add_argument("--min-relevance", type=float, default=rules.MIN_RELEVANCE,
                        help="The matcher's [matcher] min_relevance (default: the shipped default).")
    parser.add_argument("--resamples", type=int, default=2000,
                        help="Bootstrap resamples of the notices for the 95%% intervals (default: 2000; 0: none).")
    args = parser.parse_args()

    ids, gold, disputed = gold_labels(args.split)
    found = load_profiles(EVAL / "profiles")
    if found.errors:
        raise SystemExit("\n".join(found.errors))
    store = open_notices(args.corpus)
    records = [record for record in store if record["id"] in ids]
    missing = ids - {record["id"] for record in records}
    if missing:
        raise SystemExit(f"{len(missing)} labelled notices are not in the corpus at {args.corpus}")
    titles = {r["id"]: f'[{r.get("language")}] {r["title"]}' for r in records}
    ours: dict[str, set[str]] = {p.id: set() for p in found.profiles}
    for match in match_notices(found.profiles, store, as_of=None, min_relevance=args.min_relevance):
        if match.notice_id in ids:
            ours[match.profile_id].add(match.notice_id)

    methods = ("tendermatch", "CPV prefix", "exact keyword")
    totals = {method: [0, 0, 0] for method in methods}  # hits, predicted, relevant
    macro: dict[str, list[tuple[float, float, float]]] = {method: [] for method in methods}
    per_notice = {notice_id: [0, 0, 0] for notice_id in sorted(ids)}  # tendermatch's hits, predicted, relevant;
    # in a fixed order, so that the seeded resamples are the same in every run
    countries = {str((r.get("buyer") or {}).get("country")) for r in records}
    print(f"{len(records)} notices ({args.split} split) from {len(countries)} countries,"
          f" {len(found.profiles)} profiles,"
          f" {sum(len(v) for v in gold.values())} relevant pairs agreed by both readers,"
          f" {sum(len(v) for v in disputed.values())} disputed pairs left out\n")
    print(f"{'profile':<22}{'relevant':>9}  " + "  ".join(f"{m:>20}" for m in methods))
    print(f"{'':<22}{'':>9}  " + "  ".join(f"{'P    R    F1':>20}" for _ in methods))
    for profile in found.profiles:
        relevant = gold.get(profile.id, set())
        left_out = disputed.get(profile.id, set())
        cells = []
        for method, predicted in (("tendermatch", ours[profile.id]),
                                  ("CPV prefix", cpv_prefix_matches(profile, records)),
                                  ("exact keyword", keyword_matches(profile, records))):
            precision, recall, f1, hits, n_predicted, n_relevant = scores(predicted - left_out, relevant)
            totals[method][0] += hits
            totals[method][1] += n_predicted
            totals[method][2] += n_relevant
            macro[method].append((precision, recall, f1))
            if method == "tendermatch":
                for notice_id in (predicted - left_out) & relevant:
                    per_notice[notice_id][0] += 1
                for notice_id in predicted - left_out:
                    per_notice[notice_id][1] += 1
                for notice_id in relevant:
                    per_notice[notice_id][2] += 1
            cells.append(f"{precision:4.2f} {recall:4.2f} {f1:4.2f} ({n_predicted:>3})")
            if args.verbose and method == "tendermatch":
                for nid in sorted(left_out):
                    print(f"    left out       {profile.id}: {nid} (the readers disagree)")
                for nid in sorted(predicted - relevant - left_out):
                    print(f"    false positive {profile.id}: {nid} {titles[nid][:90]}")
                for nid in sorted(relevant - predicted):
                    print(f"    missed         {profile.id}: {nid} {titles[nid][:90]}")
        print(f"{profile.id:<22}{len(relevant):>9}  " + "  ".join(f"{cell:>20}" for cell in cells))

    print()
    summary = {}
    for method in methods:
        hits, predicted, relevant_count = totals[method]
        precision = hits / predicted if predicted else 1.0
        recall = hits / relevant_count if relevant_count else 1.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        macro_p, macro_r, macro_f1 = (sum(item[k] for item in macro[method]) / len(macro[method]) for k in range(3))
        summary[method] = (precision, recall, f1)
        print(f"{method:<14} micro P {precision:.2f}  R {recall:.2f}  F1 {f1:.2f}   "
              f"macro P {macro_p:.2f}  R {macro_r:.2f}  F1 {macro_f1:.2f}")
    if args.resamples > 0:
        (p_low, p_high), (r_low, r_high), (f_low, f_high) = bootstrap_interval(
            [tuple(counts) for counts in per_notice.values()], resamples=args.resamples)
        print(f"tendermatch 95% interval ({args.resamples} resamples of the {len(ids)} notices): "
              f"P {p_low:.2f}-{p_high:.2f}  R {r_low:.2f}-{r_high:.2f}  F1 {f_low:.2f}-{f_high:.2f}")
    ours_p, _, ours_f1 = summary["tendermatch"]
    print(f"\nF1 {ours_f1:.2f} (target >= 0.80); precision {ours_p:.2f} (target >= 0.85); margin over the CPV-prefix"
          f" baseline {ours_f1 - summary['CPV prefix'][2]:+.2f} (target >= +0.15), over exact keywords"
          f" {ours_f1 - summary['exact keyword'][2]:+.2f}")


if __name__ == "__main__":
    main()
