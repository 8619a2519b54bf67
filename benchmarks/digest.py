"""Digest speed: plan, render and send weekly digests to a local SMTP server, against raw
smtplib sending of the same messages to the same server, measured in the same run.

Builds (not timed) a store in a temporary file with the real notices of sample/notices and,
when it is there, the shared corpus (TENDERMATCH_CORPUS or ../shared/corpus), and a match
log for --digests synthetic enterprises (one address each): 10-20 rows per enterprise
against the open notices, shaped like the matcher's rows (score, rank, English reasons and
the facts a digest is written from: keywords, CPV with both labels, lot and value,
reservation, social criteria, NUTS). Then times:
  (a) planning: ``plan_digests(record=True)`` for every enterprise, as `digest --send` runs
      it (read untold matches and changes, fetch records, build, render, sign, record the
      pending delivery with what it tells); and the pure rendering of a sample of the same
      digests from rows already in memory, per stage: build_digest, render_digest (jinja2),
      build_message (headers and quoted-printable bodies);
  (b) sending: ``deliver_pending`` with ``SmtpSender`` to an aiosmtpd sink (250 to every
      message) on 127.0.0.1, run in its own process, from a fresh copy of the planned store
      each repeat;
  (c) the baseline: smtplib sending the same message bytes over one connection to the same
      server (the messages are read from the store in batches outside the timing).
The ratio (b)/(c) shows what the store adds to sending (1.0 = sending is limited only by the
server). Targets: (a) >= 200 digests/s, (b)/(c) close to 1.

Usage: python benchmarks/digest.py [--digests 10000] [--repeats 3] [--render-sample 1000]
                                   [--send-repeats 1] [--corpus ../shared/corpus]
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import random
import resource
import shutil
import smtplib
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.ingest import corpus_files
from tendermatch.crawler.ingest import NoticeIngester
from tendermatch.crawler.prepare import prepare_file, prepare_in_parallel
from tendermatch.crawler.spiders.files import notice_files
from tendermatch.matcher.cpv import cpv_labels
from tendermatch.matcher.rules import DEFAULT_RATES, to_dkk
from tendermatch.matcher.table import lot_reserved_codes
from tendermatch.matcher.text import content_words, is_generic
from tendermatch.notifier import run as notifier_run
from tendermatch.notifier.digest import Recipient, build_digest, period_of, section_of
from tendermatch.notifier.run import (
    DigestSettings,
    compose,
    deliver_pending,
    plan_digests,
)
from tendermatch.notifier.send import SmtpSender
from tendermatch.store import Store

SEED = 20261123
AS_OF = date(2026, 11, 23)
PERIOD = period_of(AS_OF)
SECRET = b"benchmark-secret-of-enough-length"
FROM = "udbud@kk.example"
# The demo's setting: the bundled and corpus notices are from 2016-2025, so deadlines are not
# checked (every active notice is news); everything else is as `digest --send` does it.
SETTINGS = DigestSettings(sender=f"Udbudsvagten <{FROM}>", base_url="https://udbud.kk.example",
                          check_deadlines=False)
MAX_BYTES = 20 * 1024 * 1024
BATCH = 500  # messages per batch for the per-batch sending rates
DANISH_KEYWORDS = ("rengøring", "kantinedrift", "madservice", "cykelbud", "vaskeri", "grønne områder",
                   "flytning", "tryk", "møbler", "beskæftigelse", "catering", "vinduespolering")


# -- the store -------------------------------------------------------------------------------


def ingest(store: Store, corpus: Path | None) -> int:
    """Sample notices, then the corpus when given, through the ingest pipeline."""
    files = notice_files(str(ROOT / "sample" / "notices")) + (corpus_files(corpus) if corpus else [])
    ingester = NoticeIngester(store, source="bench", run_id=None, max_bytes=MAX_BYTES)
    tasks = ((str(file), "bench", MAX_BYTES) for file in files)
    ingester.store_all(prepare_in_parallel(prepare_file, tasks, workers=min(os.cpu_count() or 1, 4)))
    ingester.finish()
    return len(files)


def candidates(store: Store) -> list[dict[str, Any]]:
    """The stored notices a digest of AS_OF would tell (open, planning, agreements ending
    within a year) that have lots, as the matcher sees them."""
    return [record for record in store.notices()
            if record.get("lots") and section_of(record, as_of=AS_OF, timezone=SETTINGS.timezone,
                                                 check_deadlines=SETTINGS.check_deadlines)]


def match_row(rng: random.Random, profile_id: str, record: dict[str, Any], *, max_value: float,
              eligible: tuple[str, ...]) -> dict[str, Any]:
    """A match-log row as ``Match.as_row`` writes it (rank and score set by the caller)."""
    labels = cpv_labels()
    lot = rng.choice(record["lots"])
    many = len(record["lots"]) > 1
    words = [word for word in content_words(" ".join(filter(None, (lot.get("title"), record.get("title")))))
             if not is_generic(word) and len(word) > 3] or ["service"]
    keywords = []
    for number, term in enumerate(rng.sample(words, min(len(words), rng.choice((1, 2, 3))))):
        origin = ("keyword", "synonym", "description")[min(number, 2)] if rng.random() < 0.5 else "keyword"
        keywords.append({"term": term, "origin": origin, "field": rng.choice(("lot title", "title", "CPV label",
                                                                               "lot description")),
                         "found": term, "keyword": rng.choice(DANISH_KEYWORDS) if origin == "synonym" else term})
    reasons = [f'"{item["term"]}" in the {item["field"]}' + (f' (for your keyword "{item["keyword"]}")'
                                                            if item["origin"] == "synonym" else "")
               for item in keywords if item["origin"] != "description"]
    facts: dict[str, Any] = {"relevance": round(rng.uniform(25, 90), 1), "keywords": keywords}
    code = next((code for code in lot.get("cpv") or record.get("cpv") or [] if code in labels), None)
    if code:
        relation = rng.choice(("exact", "within", "within", "broader"))
        mine = code if relation == "exact" else (code[:3] + "00000" if relation == "within" else code[:6] + "10")
        facts["cpv"] = {"relation": relation, "profile_code": mine, "code": code,
                        "labels": {"en": labels[code][0], "da": labels[code][1]}}
        reasons.append(f"CPV {code} ({labels[code][0]}) is {'one of yours' if relation == 'exact' else relation}"
                       f" your {mine}")
    money = lot.get("value") or (record.get("value") if not many else None) or {}
    converted = to_dkk(money.get("amount"), money.get("currency"), DEFAULT_RATES)
    value = None if math.isnan(converted) else round(converted)
    facts["lot"] = {"lot_id": lot["lot_id"], "lots": len(record["lots"]), "value_dkk": value, "max_value": max_value}
    lot_name = f'lot {lot["lot_id"]}' if many else "the contract"
    reasons.append(f"{lot_name}: value not given" if value is None else
                   f"{lot_name}: about {value:,.0f} DKK, within your maximum of {max_value:,.0f} DKK"
                   if value <= max_value else
                   f"{lot_name}: about {value:,.0f} DKK, {value / max_value:.1f} times your maximum of"
                   f" {max_value:,.0f} DKK")
    facts["reserved"] = sorted(lot_reserved_codes(record, lot) & set(eligible))
    if facts["reserved"]:
        reasons.append(f"reserved for enterprises like yours ({', '.join(facts['reserved'])})")
    facts["social"] = sorted(set(lot.get("social") or ()) | set(record.get("social") or ()))
    if facts["social"]:
        reasons.append("social objective: " + ", ".join(facts["social"]))
    facts["nuts"] = list(lot.get("nuts") or record.get("nuts") or [])
    reasons.append(f"place of performance {', '.join(facts['nuts'][:2])} is in your regions" if facts["nuts"]
                   else "no place of performance given")
    expires = record.get("valid_until") if record.get("kind") == "agreement" else None
    return {"profile_id": profile_id, "notice_id": record["id"], "lot_id": lot["lot_id"], "score": 0, "rank": 0,
            "reasons": reasons, "facts": facts, "kind": record.get("kind", "tender"),
            "deadline": record.get("deadline"), "expires": expires[:10] if expires else None}


def enterprises(store: Store, records: list[dict[str, Any]], count: int, *,
                chunk: int = 1000) -> tuple[list[Recipient], int]:
    """``count`` recipients (most Danish, some English) with 10-20 match-log rows each,
    written to the store a chunk of enterprises at a time; returns them and the rows written."""
    rng = random.Random(SEED)
    recipients: list[Recipient] = []
    written = 0
    for first in range(0, count, chunk):
        rows = []
        for number in range(first, min(first + chunk, count)):
            profile_id = f"bench-{number:05d}"
            recipients.append(Recipient(profile_id=profile_id, name=f"Socialøkonomisk Værksted {number}",
                                        emails=(f"kontakt+{number}@virksomhed{number % 97}.example",),
                                        language="en" if rng.random() < 0.15 else "da",
                                        max_items=rng.choice((10, 15, 20, 20, 20))))
            max_value = float(rng.choice((500_000, 1_000_000, 2_500_000, 5_000_000, 20_000_000)))
            eligible = ("res-ws",) if rng.random() < 0.5 else ()
            chosen = [match_row(rng, profile_id, record, max_value=max_value, eligible=eligible)
                      for record in rng.sample(records, min(len(records), rng.randint(10, 20)))]
            for rank, row in enumerate(sorted(chosen, key=lambda _: rng.random()), start=1):
                row["rank"], row["score"] = rank, max(20, 95 - 3 * rank - rng.randint(0, 5))
            rows += chosen
        written += store.replace_matches(profile_ids=[r.profile_id for r in recipients[first:]], rows=rows)
    return recipients, written


# -- the SMTP sink, in its own process ----------------------------------------------------------


def serve(port: int) -> None:
    """Child process: an aiosmtpd sink on 127.0.0.1:``port`` that answers 250 to every
    message; each line on stdin asks for "count bytes"; end of input stops it."""
    from aiosmtpd.controller import Controller

    class Sink:
        count = 0
        size = 0

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            Sink.count += 1
            Sink.size += len(envelope.original_content or b"")
            return "250 OK"

    controller = Controller(Sink(), hostname="127.0.0.1", port=port)
    controller.start()
    print("ready", flush=True)
    for _ in sys.stdin:
        print(f"{Sink.count} {Sink.size}", flush=True)
    controller.stop()


class SinkServer:
    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.process = subprocess.Popen([sys.executable, __file__, "--serve", str(self.port)], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None and self.process.stdin is not None
        if self.process.stdout.readline().strip() != "ready":
            raise RuntimeError("the SMTP sink did not start")

    def received(self) -> tuple[int, int]:
        assert self.process.stdout is not None and self.process.stdin is not None
        self.process.stdin.write("count\n")
        self.process.stdin.flush()
        count, size = self.process.stdout.readline().split()
        return int(count), int(size)

    def stop(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)


# -- the timed parts ---------------------------------------------------------------------------


@contextmanager
def timing(module: Any, names: tuple[str, ...], seconds: dict[str, float]) -> Iterator[None]:
    """Add the time spent in each of ``module``'s functions ``names`` to ``seconds``."""
    originals = {name: getattr(module, name) for name in names}

    def timed(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                seconds[name] += time.perf_counter() - started
        return call

    for name, function in originals.items():
        setattr(module, name, timed(name, function))
    try:
        yield
    finally:
        for name, function in originals.items():
            setattr(module, name, function)


def pure_render(store: Store, recipients: list[Recipient]) -> dict[str, float]:
    """Seconds spent in build_digest and in ``compose`` (render_digest and build_message,
    timed apart, with the token, links and Message-ID around them) for ``recipients``, from
    their match-log rows and notice records already in memory; and the message bytes made."""
    matches = {recipient.profile_id: store.match_log(profile_id=recipient.profile_id) for recipient in recipients}
    records = store.notice_records(sorted({row["notice_id"] for rows in matches.values() for row in rows}))
    seconds = {"build_digest": 0.0, "compose": 0.0, "render_digest": 0.0, "build_message": 0.0, "bytes": 0.0}
    with timing(notifier_run, ("render_digest", "build_message"), seconds):
        for recipient in recipients:
            started = time.perf_counter()
            digest = build_digest(recipient, matches=matches[recipient.profile_id], records=records, changes=[],
                                  period=PERIOD, as_of=AS_OF, timezone=SETTINGS.timezone,
                                  check_deadlines=SETTINGS.check_deadlines)
            built = time.perf_counter()
            _, _, message, _, _ = compose(digest, to=recipient.emails[0], settings=SETTINGS, secret=SECRET)
            seconds["compose"] += time.perf_counter() - built
            seconds["build_digest"] += built - started
            seconds["bytes"] += len(message)
    return seconds


def batch_rates(marks: list[float], batch: int) -> list[float]:
    """Messages/s of each whole batch, from the time after every ``batch``-th message."""
    return [batch / (later - earlier) for earlier, later in itertools.pairwise(marks)]


def deliver(store_path: Path, copy_path: Path, server: SinkServer, expected: int, *,
            batch: int = BATCH) -> tuple[float, list[float]]:
    """Seconds for ``deliver_pending`` of every planned digest from a fresh copy of the
    store, and the rate of each batch of ``batch`` messages."""
    shutil.copyfile(store_path, copy_path)
    store = Store.open(copy_path)
    before = server.received()[0]
    done = 0
    marks: list[float] = []

    def progress(delivery: dict[str, Any], outcome: str, error: str | None) -> None:
        nonlocal done
        done += 1
        if done % batch == 0:
            marks.append(time.perf_counter())

    started = time.perf_counter()
    marks.append(started)
    report = deliver_pending(store, SmtpSender(host="127.0.0.1", port=server.port), from_address=FROM,
                             progress=progress)
    seconds = time.perf_counter() - started
    store.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{copy_path}{suffix}").unlink(missing_ok=True)
    received = server.received()[0] - before
    if len(report.sent) != expected or report.failed or report.pending or received != expected:
        raise RuntimeError(f"deliver_pending: {len(report.sent)} sent, {len(report.failed)} failed,"
                           f" {len(report.pending)} pending, server got {received}, expected {expected}"
                           f" ({report.stopped})")
    return seconds, batch_rates(marks, batch)


def raw_smtplib(store_path: Path, server: SinkServer, expected: int, *,
                batch: int = BATCH) -> tuple[float, list[float]]:
    """Seconds for smtplib to send the planned messages over one connection, and the rate
    of each batch of ``batch``; each batch is read from the store before its timing starts."""
    store = Store.open(store_path)
    before = server.received()[0]
    connection = smtplib.SMTP("127.0.0.1", server.port)
    connection.ehlo_or_helo_if_needed()
    seconds, rates = 0.0, []
    pending = store.pending_deliveries()
    while messages := [(row["email"], row["message"]) for row in itertools.islice(pending, batch)]:
        started = time.perf_counter()
        for to, message in messages:
            connection.sendmail(FROM, [to], message)
        elapsed = time.perf_counter() - started
        seconds += elapsed
        if len(messages) == batch:
            rates.append(batch / elapsed)
    started = time.perf_counter()
    connection.quit()
    seconds += time.perf_counter() - started
    store.close()
    received = server.received()[0] - before
    if received != expected:
        raise RuntimeError(f"smtplib: server got {received}, expected {expected}")
    return seconds, rates


def reset_peak_rss() -> bool:
    """Start measuring the peak RSS from now (Linux: /proc/self/clear_refs), so that the
    figure is that of planning and sending, not of building the test data."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_mb() -> float:
    """This process's peak RSS in MB: since the last reset where Linux tells it, else ever."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--digests", type=int, default=10_000, help="Enterprises, one digest each [10000].")
    parser.add_argument("--repeats", type=int, default=3, help="Runs of the in-memory rendering, for medians [3].")
    parser.add_argument("--render-sample", type=int, default=1000, help="Digests rendered in memory per run [1000].")
    parser.add_argument("--send-repeats", type=int, default=1, help="Runs of each sending pair, (b) and (c)"
                        " interleaved [1]; each run also gives the median rate of its batches of 500.")
    parser.add_argument("--corpus", type=Path, default=Path(os.environ.get("TENDERMATCH_CORPUS",
                                                                           ROOT.parent / "shared" / "corpus")))
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return

    began = time.perf_counter()
    corpus = args.corpus if args.corpus.is_dir() else None
    with tempfile.TemporaryDirectory(prefix="tendermatch-digest-bench-") as folder:
        store_path = Path(folder) / "bench.db"
        store = Store.open(store_path)
        started = time.perf_counter()
        files = ingest(store, corpus)
        records = candidates(store)
        recipients, rows = enterprises(store, records, args.digests)
        print(f"store: {files} notice files from sample/notices"
              + (f" and {corpus}" if corpus else f" (no corpus at {args.corpus}: sample only)")
              + f" -> {store.counts()['notices']:,} notices, {len(records):,} of them news on {AS_OF};"
              f" {len(recipients):,} enterprises, {rows:,} match-log rows ({rows / len(recipients):.1f}"
              f" each); built in {time.perf_counter() - started:.1f} s", flush=True)

        # (a) in-memory rendering first (planning marks every match as told), then planning.
        sample = recipients[: min(args.render_sample, len(recipients))]
        renders = [pure_render(store, sample) for _ in range(args.repeats)]
        stages = {stage: statistics.median(r[stage] for r in renders)
                  for stage in ("build_digest", "render_digest", "build_message")}
        render_s = statistics.median(r["build_digest"] + r["compose"] for r in renders)
        setup_peak = peak_mb()
        measured_from_here = reset_peak_rss()
        started = time.perf_counter()
        planned = plan_digests(store, recipients, period=PERIOD, as_of=AS_OF, settings=SETTINGS, secret=SECRET,
                               record=True)
        plan_s = time.perf_counter() - started
        items = sum(plan.items for plan in planned)
        store.close()  # checkpoints the WAL: the file alone is the planned store
        store_mb = store_path.stat().st_size / 1e6
        print(f"planned {len(planned):,} digests in {plan_s:.1f} s; sending...", flush=True)

        batch = max(1, min(BATCH, len(planned) // 4))
        server = SinkServer()
        try:
            raw_runs, deliver_runs = [], []
            for _ in range(args.send_repeats):  # interleaved, so drift hits both alike
                raw_runs.append(raw_smtplib(store_path, server, len(planned), batch=batch))
                deliver_runs.append(deliver(store_path, Path(folder) / "copy.db", server, len(planned), batch=batch))
            total, size = server.received()
        finally:
            server.stop()

    count = len(planned)
    raw_rate = count / statistics.median(seconds for seconds, _ in raw_runs)
    deliver_rate = count / statistics.median(seconds for seconds, _ in deliver_runs)
    raw_batch = statistics.median(rate for _, rates in raw_runs for rate in rates)
    deliver_batch = statistics.median(rate for _, rates in deliver_runs for rate in rates)
    batches = sum(len(rates) for _, rates in raw_runs)
    plan_rate, render_rate = count / plan_s, len(sample) / render_s
    print(f"{count:,} digests ({items:,} notices told, {items / max(count, 1):.1f} each), messages"
          f" {size / max(total, 1) / 1024:.0f} KiB on average, planned store {store_mb:.0f} MB; the sink received"
          f" {total:,} messages ({size / 1e6:.0f} MB)")
    print()
    print(f"{'':<58} {'per s':>7} {'ms each':>8}  timed")
    sends = args.send_repeats
    table = [
        ("(a) plan_digests(record=True): read, render, record", plan_rate, f"{count:,} digests once"),
        ("    in memory: build_digest + compose", render_rate,
         f"{len(sample):,} digests, median of {args.repeats}"),
        ("      build_digest (items, texts, reasons)", len(sample) / stages["build_digest"], ""),
        ("      render_digest (jinja2: subject, HTML, text)", len(sample) / stages["render_digest"], ""),
        ("      build_message (headers, quoted-printable)", len(sample) / stages["build_message"], ""),
        ("(b) deliver_pending -> SmtpSender -> aiosmtpd", deliver_rate, f"{count:,} messages x {sends}"),
        (f"      median of batches of {batch}", deliver_batch, f"{batches} batches"),
        ("(c) baseline: smtplib.sendmail, same bytes and server", raw_rate, f"{count:,} messages x {sends}"),
        (f"      median of batches of {batch}", raw_batch, f"{batches} batches"),
    ]
    for name, rate, note in table:
        print(f"{name:<58} {rate:7.0f} {1000 / rate:8.2f}  {note}")
    print()
    print(f"planning + rendering: {plan_rate:.0f} digests/s (target >= 200); in-memory rendering alone"
          f" {render_rate:.0f} digests/s")
    print(f"sending: ratio (b)/(c) = {deliver_rate / raw_rate:.2f} over whole runs, {deliver_batch / raw_batch:.2f}"
          f" by batch medians (1.0 = limited only by the server)")
    print(f"peak RSS of this process: {peak_mb():.0f} MB while planning and sending" if measured_from_here else
          f"peak RSS of this process: {peak_mb():.0f} MB (building the data included)",
          f"(building the data and rendering in memory: {setup_peak:.0f} MB);"
          f" total {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
