"""Parse speed per format on the corpus: notices per second for each parser alone (bytes
in, records out, no store), the median of --repeat runs, beside lxml's or json's bare
parse of the same bytes (the floor no parser can beat) measured in the same run.

Target (the TED XML brief): > 1,500 TED XML notices/s on the development machine. This was
a timed unit test; speed is measured here, where a noisy machine shows as a ratio, not as a
failed test.

Usage: python benchmarks/parse.py [--corpus ../shared/corpus] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lxml import etree

from benchmarks.ingest import corpus_files
from tendermatch.crawler.parsers import ParseError, detect_format, parse_document


def bare_seconds(documents: list[bytes], fmt: str) -> float:
    """lxml (XML) or json (JSON) parsing alone of the same bytes, without entities or network."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    started = time.perf_counter()
    for content in documents:
        try:
            if fmt in ("ted-api", "ocds"):
                for line in content.splitlines() if content.lstrip()[:1] != b"{" else [content]:
                    if line.strip():
                        json.loads(line)
            else:
                etree.fromstring(content, parser)
        except (ValueError, etree.XMLSyntaxError):
            pass
    return time.perf_counter() - started


def parse_seconds(documents: list[bytes], fmt: str) -> tuple[float, int]:
    started = time.perf_counter()
    notices = 0
    for content in documents:
        try:
            notices += len(parse_document(content, format=fmt))
        except ParseError:
            pass
    return time.perf_counter() - started, notices


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path,
                        default=Path(os.environ.get("TENDERMATCH_CORPUS", ROOT.parent / "shared" / "corpus")))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    by_format: dict[str, list[bytes]] = {}
    for path in corpus_files(args.corpus):
        content = path.read_bytes()
        try:
            by_format.setdefault(detect_format(content), []).append(content)
        except ParseError:
            continue
    print(f"{'format':<10}{'documents':>10}{'notices':>9}{'notices/s':>11}{'bare docs/s':>13}{'parse / bare':>14}")
    for fmt, documents in sorted(by_format.items()):
        runs = [parse_seconds(documents, fmt) for _ in range(args.repeat)]
        seconds = statistics.median(run[0] for run in runs)
        notices = runs[0][1]
        bare = statistics.median(bare_seconds(documents, fmt) for _ in range(args.repeat))
        print(f"{fmt:<10}{len(documents):>10,}{notices:>9,}{notices / seconds:>11,.0f}{len(documents) / bare:>13,.0f}"
              f"{seconds / bare:>13.1f}x")
    print("target: > 1,500 TED XML (ted-xml) notices/s")


if __name__ == "__main__":
    main()
