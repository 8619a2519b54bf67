"""Ingest speed and memory against bare parsing, measured in the same run.

Reads every notice file of the corpus into memory, then times (median of --repeat runs):
  * bare: lxml parsing alone (json.loads for JSON files) of the same bytes;
  * ingest: detect + parse + normalise + de-duplicate + store (raw kept compressed) into a
    fresh SQLite store on disk, through the same NoticeIngester a crawl uses.
Prints documents/s for both, notices/s for ingest, and their ratio (target >= 0.25 and
>= 1,000 notices/s). Memory: the peak RSS of a fresh process ingesting a quarter, half and
all of the corpus (flat = it does not grow with the batch).

Usage: python benchmarks/ingest.py [--corpus ../shared/corpus] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lxml import etree  # noqa: E402

from tendermatch.crawler.parsers.xmlsafe import make_parser  # noqa: E402
from tendermatch.crawler.pipelines import Document, NoticeIngester  # noqa: E402
from tendermatch.crawler.spiders.files import notice_files  # noqa: E402
from tendermatch.store import Store  # noqa: E402

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


def ingest(documents: Iterable[tuple[str, bytes]], store_path: Path) -> tuple[float, int]:
    store = Store.open(store_path)
    ingester = NoticeIngester(store, source="bench")
    start = time.perf_counter()
    for name, content in documents:
        ingester.process(Document(source="bench", url=Path(name).as_uri(), content=content))
    elapsed = time.perf_counter() - start
    store.close()
    return elapsed, ingester.stats.notices


def peak_rss_child(corpus: Path, fraction: float) -> float:
    """Peak RSS (MB) of a fresh process ingesting ``fraction`` of the corpus, reading one
    file at a time as a crawl does."""
    code = (
        "import sys, resource, tempfile; from pathlib import Path; sys.path.insert(0, sys.argv[1]);"
        "from benchmarks.ingest import corpus_files, ingest;"
        "files = corpus_files(Path(sys.argv[2])); files = files[: int(len(files) * float(sys.argv[3]))];"
        "d = tempfile.mkdtemp();"
        "ingest(((str(f), f.read_bytes()) for f in files), Path(d) / 's.db');"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"
    )
    out = subprocess.run([sys.executable, "-c", code, str(ROOT), str(corpus), str(fraction)],
                         capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=Path(os.environ.get("TENDERMATCH_CORPUS", ROOT.parent / "shared" / "corpus")))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    files = corpus_files(args.corpus)
    documents = [(str(f), f.read_bytes()) for f in files]
    megabytes = sum(len(c) for _, c in documents) / 1e6
    print(f"corpus: {len(documents)} documents, {megabytes:.1f} MB ({args.corpus})")

    bare_times, ingest_times, notices = [], [], 0
    for _ in range(args.repeat):
        bare_times.append(bare_parse(documents))
        with tempfile.TemporaryDirectory() as folder:
            elapsed, notices = ingest(documents, Path(folder) / "bench.db")
        ingest_times.append(elapsed)
    bare, full = statistics.median(bare_times), statistics.median(ingest_times)
    print(f"bare lxml/json parse: {len(documents) / bare:8.0f} documents/s  (median {bare:.2f} s of {args.repeat})")
    print(f"full ingest:          {len(documents) / full:8.0f} documents/s  {notices / full:8.0f} notices/s"
          f"  (median {full:.2f} s; {notices} notices)")
    print(f"ratio ingest/bare:    {bare / full:.2f}  (target >= 0.25)")
    rss = {fraction: peak_rss_child(args.corpus, fraction) for fraction in (0.25, 0.5, 1.0)}
    print("peak RSS by batch size: " + ", ".join(f"{int(f * 100)}% {mb:.0f} MB" for f, mb in rss.items())
          + f"  (growth 25%->100%: x{rss[1.0] / rss[0.25]:.2f})")


if __name__ == "__main__":
    main()
