"""Ingest speed and memory against bare parsing, measured in the same run.

Reads every notice file of the corpus into memory, then times (median of --repeat runs):
  * bare: lxml parsing alone (json.loads for JSON files) of the same bytes;
  * ingest: read + detect + parse + normalise + de-duplicate + store (raw kept compressed)
    into a fresh SQLite store on disk, exactly as `tendermatch ingest` does, with one
    process and with parser worker processes (one per core, at most 4).
Prints documents/s, notices/s and the ratio to the bare rate (target >= 0.25 and >= 1,000
notices/s). Memory: the peak RSS of a fresh process ingesting a quarter, half and all of
the corpus (flat = it does not grow with the batch).

Usage: python benchmarks/ingest.py [--corpus ../shared/corpus] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lxml import etree

from benchmarks.peak import run_with_peak
from tendermatch.crawler.ingest import NoticeIngester
from tendermatch.crawler.parsers.common import MAX_DOCUMENT_BYTES
from tendermatch.crawler.parsers.xmlsafe import make_parser
from tendermatch.crawler.prepare import prepare_file, prepare_in_parallel
from tendermatch.crawler.spiders.files import notice_files
from tendermatch.store import Store

FOLDERS = ("eforms_sdk/examples", "eforms_real", "eforms_national_tailoring", "ted_r209", "ted_api_json", "ocds")


def corpus_files(corpus: Path) -> list[Path]:
    files: list[Path] = []
    for folder in FOLDERS:
        files += [f for f in notice_files(str(corpus / folder)) if f.suffix in (".xml", ".json", ".jsonl")]
    return files


def bare_parse(documents: list[tuple[str, bytes]]) -> float:
    parser = make_parser()
    start = time.perf_counter()
    for name, content in documents:
        try:
            if name.endswith((".json", ".jsonl")):
                if name.endswith(".jsonl"):
                    for line in content.splitlines():
                        json.loads(line)
                else:
                    json.loads(content)
            else:
                etree.fromstring(content, parser)
        except (ValueError, etree.XMLSyntaxError):
            pass  # invalid on purpose (INVALID_* examples): parsing it still cost the time
    return time.perf_counter() - start


def ingest(files: list[Path], store_path: Path, *, workers: int) -> tuple[float, int]:
    """What `tendermatch ingest` does: worker processes read and parse, this one stores."""
    store = Store.open(store_path)
    ingester = NoticeIngester(store, source="bench")
    start = time.perf_counter()
    tasks = ((str(f), "bench", MAX_DOCUMENT_BYTES) for f in files)
    ingester.store_all(prepare_in_parallel(prepare_file, tasks, workers=workers))
    elapsed = time.perf_counter() - start
    store.close()
    return elapsed, ingester.stats.notices


def peak_rss_child(corpus: Path, fraction: float, workers: int) -> float:
    """Peak RSS (MB) of a fresh process ingesting ``fraction`` of the corpus, reading one
    file at a time as a crawl does."""
    code = (
        "import sys, resource, tempfile; from pathlib import Path; sys.path.insert(0, sys.argv[1]);"
        "from benchmarks.ingest import corpus_files, ingest;"
        "files = corpus_files(Path(sys.argv[2])); files = files[: int(len(files) * float(sys.argv[3]))];"
        "d = tempfile.mkdtemp();"
        "ingest(files, Path(d) / 's.db', workers=int(sys.argv[4]))"
    )
    # Through benchmarks/peak.py's launcher: the child's own ru_maxrss would count this
    # process's memory up to the child's exec.
    ran = run_with_peak([sys.executable, "-c", code, str(ROOT), str(corpus), str(fraction), str(workers)], cwd=ROOT,
                        env=dict(os.environ), timeout=3600)
    if ran.returncode != 0:
        raise RuntimeError(f"ingest child exited {ran.returncode}:\n{ran.stderr[-2000:]}")
    return ran.peak_mb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path,
                        default=Path(os.environ.get("TENDERMATCH_CORPUS", ROOT.parent / "shared" / "corpus")))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    files = corpus_files(args.corpus)
    documents = [(str(f), f.read_bytes()) for f in files]
    megabytes = sum(len(c) for _, c in documents) / 1e6
    print(f"corpus: {len(documents)} documents, {megabytes:.1f} MB ({args.corpus})")

    workers = min(os.cpu_count() or 1, 4)
    bare_times: list[float] = []
    times: dict[int, list[float]] = {1: [], workers: []}
    notices = 0
    for _ in range(args.repeat):
        bare_times.append(bare_parse(documents))
        for count in times:
            with tempfile.TemporaryDirectory() as folder:
                elapsed, notices = ingest(files, Path(folder) / "bench.db", workers=count)
            times[count].append(elapsed)
    bare = statistics.median(bare_times)
    print(f"bare lxml/json parse (1 process): {len(documents) / bare:7.0f} documents/s"
          f"  (median {bare:.2f} s of {args.repeat})")
    for count, samples in times.items():
        full = statistics.median(samples)
        print(f"full ingest, {count} parser process{'es' if count > 1 else ''}:"
              f" {len(documents) / full:7.0f} documents/s"
              f" {notices / full:7.0f} notices/s  ratio to bare {bare / full:.2f}"
              f"  (median {full:.2f} s; {notices} notices)")
    print("target: ratio >= 0.25 and >= 1,000 notices/s (`tendermatch ingest` uses the parallel path)")
    rss = {fraction: peak_rss_child(args.corpus, fraction, workers) for fraction in (0.25, 0.5, 1.0)}
    print("peak RSS of the storing process by batch size: "
          + ", ".join(f"{int(f * 100)}% {mb:.0f} MB" for f, mb in rss.items())
          + f"  (growth 25%->100%: x{rss[1.0] / rss[0.25]:.2f})")

if __name__ == "__main__":
    main()
