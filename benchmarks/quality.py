"""Match quality on hand-labelled real notices, against what saved-search alerts do.

The labels (benchmarks/eval/labels.json, see benchmarks/eval/README.md) say, for ten
enterprise profiles (benchmarks/eval/profiles, the sample profiles with regions cleared),
which of the corpus's 1,627 open competition and planning notices each would bid on; they
were made by reading the notices. This script ingests the corpus, then computes precision,
recall and F1 per profile for three matchers, in the same run:
  * tendermatch: the matcher (every match it would send; deadlines ignored);
  * CPV prefix: a notice whose CPV code (notice or lot) lies in a profile code's branch
    (what a CPV saved search does);
  * exact keyword: a notice whose title, description or lot texts contain a profile keyword
    as a whole word or phrase, case-insensitive (what a keyword saved search does).
Targets: tendermatch's F1 at least 0.15 above both baselines, precision >= 0.8 (micro-averaged
over all profiles; macro averages and per-profile figures are printed too).

Usage: python benchmarks/quality.py [--corpus ../shared/corpus] [--verbose]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.match import open_notices  # noqa: E402
from tendermatch.matcher import rules  # noqa: E402
from tendermatch.matcher.cpv import branch  # noqa: E402
from tendermatch.matcher.engine import match_notices  # noqa: E402
from tendermatch.matcher.profiles import Profile  # noqa: E402
from tendermatch.worker.profiles import load_profiles  # noqa: E402

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path,
                        default=Path(os.environ.get("TENDERMATCH_CORPUS", ROOT.parent / "shared" / "corpus")))
    parser.add_argument("--verbose", action="store_true", help="List false positives and misses.")
    parser.add_argument("--min-relevance", type=float, default=rules.MIN_RELEVANCE,
                        help="The matcher's [matcher] min_relevance (default: the shipped default).")
    args = parser.parse_args()

    labels = json.loads((EVAL / "labels.json").read_text(encoding="utf-8"))
    found = load_profiles(EVAL / "profiles")
    if found.errors:
        raise SystemExit("\n".join(found.errors))
    records = open_notices(args.corpus)
    titles = {r["id"]: r["title"] for r in records}
    ours: dict[str, set[str]] = {p.id: set() for p in found.profiles}
    for match in match_notices(found.profiles, records, as_of=None, min_relevance=args.min_relevance):
        ours[match.profile_id].add(match.notice_id)

    methods = ("tendermatch", "CPV prefix", "exact keyword")
    totals = {method: [0, 0, 0] for method in methods}  # hits, predicted, relevant
    macro = {method: [] for method in methods}
    print(f"{len(records)} open notices, {len(found.profiles)} profiles, labels from {EVAL / 'labels.json'}\n")
    print(f"{'profile':<22}{'relevant':>9}  " + "  ".join(f"{m:>20}" for m in methods))
    print(f"{'':<22}{'':>9}  " + "  ".join(f"{'P    R    F1':>20}" for _ in methods))
    for profile in found.profiles:
        relevant = {nid for nid, label in labels.get(profile.id, {}).items() if label["relevant"]}
        cells = []
        for method, predicted in (("tendermatch", ours[profile.id]),
                                  ("CPV prefix", cpv_prefix_matches(profile, records)),
                                  ("exact keyword", keyword_matches(profile, records))):
            precision, recall, f1, hits, n_predicted, n_relevant = scores(predicted, relevant)
            totals[method][0] += hits
            totals[method][1] += n_predicted
            totals[method][2] += n_relevant
            macro[method].append((precision, recall, f1))
            cells.append(f"{precision:4.2f} {recall:4.2f} {f1:4.2f} ({n_predicted:>3})")
            if args.verbose and method == "tendermatch":
                for nid in sorted(predicted - relevant):
                    print(f"    false positive {profile.id}: {nid} {titles[nid][:80]}")
                for nid in sorted(relevant - predicted):
                    print(f"    missed         {profile.id}: {nid} {titles[nid][:80]}")
        print(f"{profile.id:<22}{len(relevant):>9}  " + "  ".join(f"{cell:>20}" for cell in cells))

    print()
    summary = {}
    for method in methods:
        hits, predicted, relevant = totals[method]
        precision = hits / predicted if predicted else 1.0
        recall = hits / relevant if relevant else 1.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        macro_f1 = sum(item[2] for item in macro[method]) / len(macro[method])
        summary[method] = (precision, recall, f1, macro_f1)
        print(f"{method:<14} micro P {precision:.2f}  R {recall:.2f}  F1 {f1:.2f}   macro F1 {macro_f1:.2f}")
    ours_f1 = summary["tendermatch"][2]
    best_baseline = max(summary["CPV prefix"][2], summary["exact keyword"][2])
    print(f"\nF1 margin over the better baseline: {ours_f1 - best_baseline:+.2f} (target >= +0.15);"
          f" precision {summary['tendermatch'][0]:.2f} (target >= 0.80)")


if __name__ == "__main__":
    main()
