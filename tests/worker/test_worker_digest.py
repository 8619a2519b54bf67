"""The worker's digest job against a real SMTP server on 127.0.0.1: SIGTERM in the middle
of a batch leaves the rest pending, and the next worker sends them at start-up, each
address once; a run that left digests pending because the server was down is retried."""

from __future__ import annotations

import email
import json
import shutil
import signal
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import ROOT, run_cli
from tests.notifier.smtp_server import RecordingHandler, SmtpServer, free_port
from tests.worker.worker_process import WORKER_ENV, RunningWorker, feed_source, write_worker_config

pytestmark = pytest.mark.slow

ZONE = ZoneInfo("Europe/Copenhagen")


def smtp_config(folder, site, port: int, *, digest_schedule: str):
    # The feed is Region Sjælland's: here RentFokus takes work there too, so that the run
    # sends several digests (the sample profile is Hovedstaden's only)
    profiles = folder / "profiles"
    shutil.copytree(ROOT / "config" / "profiles", profiles)
    rent = profiles / "rent-fokus.toml"
    rent.write_text(rent.read_text(encoding="utf-8").replace('regions = ["DK01"]', 'regions = ["DK01", "DK02"]'),
                    encoding="utf-8")
    return write_worker_config(
        folder, [feed_source("feed", f"{site.url}/udbud_feed.xml", schedule="0 0 5 * * *")],
        digest_schedule=digest_schedule,
        extra=f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\nretries = 0\ntimeout = 5\n')


def deliveries(config) -> list[dict]:
    result = run_cli("--config", str(config), "deliveries", "--format", "json", env=WORKER_ENV)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_sigterm_mid_batch_then_restart_sends_every_digest_exactly_once(tmp_path, site):
    server = SmtpServer(RecordingHandler(delay=1.5))  # each message takes 1.5 s to be accepted
    config = smtp_config(tmp_path, site, server.port, digest_schedule="*/2 * * * * *")
    worker = RunningWorker(config)
    try:
        worker.wait_for(r"match ok")
        server.handler.wait_for(1, timeout=30)
        worker.send(signal.SIGTERM)
        assert worker.stop() == 0
    finally:
        worker.kill()
    assert "stopping (SIGTERM)" in worker.log() and "worker stopped" in worker.log()
    recorded = deliveries(config)
    assert len(recorded) >= 2, recorded  # the sample profiles and the feed give several digests
    states = [row["state"] for row in recorded]
    assert "pending" in states and "sent" in states, states
    digest_runs = json.loads(run_cli("--config", str(config), "runs", "--format", "json", "--job", "digest",
                                     env=WORKER_ENV).stdout)
    assert digest_runs[0]["outcome"] == "interrupted"

    again = RunningWorker(config)  # its digest schedule is past: pending ones go at start-up
    try:
        again.wait_for(r"digests recorded by an earlier run are still pending, so it runs now")
        again.wait_for(r"digest \S+: \d+ sent, 0 refused, 0 left pending", timeout=60)
    finally:
        again.stop()
        server.stop()
    recorded = deliveries(config)
    assert {row["state"] for row in recorded} == {"sent"}
    received = [email.message_from_bytes(message.raw) for message in server.messages]
    per_address = {}
    for message in received:
        per_address.setdefault(message["To"], set()).add(message["Message-ID"])
    # Each address got one digest: a message may arrive twice only if the stop came between
    # the server's 250 and the record of it, and then with the same Message-ID.
    assert len(per_address) == len(recorded)
    assert all(len(ids) == 1 for ids in per_address.values()), per_address


def test_digests_left_pending_by_a_server_outage_are_sent_when_it_is_back(tmp_path, site):
    port = free_port()  # nothing listens yet: the server is down
    # Once a day, 25 s from now: after the start-up crawl and match even on a loaded machine (at
    # 8 s, a match slowed by the load test beside it came after the digest, which found nothing).
    due = datetime.now(ZONE).replace(microsecond=0) + timedelta(seconds=25)
    config = smtp_config(tmp_path, site, port, digest_schedule=f"{due.second} {due.minute} {due.hour} * * *")
    worker = RunningWorker(config)
    try:
        worker.wait_for(r"match ok")
        worker.wait_for(rf"digest \S+: 0 sent, 0 refused, [1-9]\d* left pending; stopped: .*127\.0\.0\.1:{port}",
                        timeout=60)
        worker.wait_for(r"digest: \d+ pending, tried again at")
        # Not next week, nor tomorrow: in 15 minutes. The worker publishes its jobs within a tick;
        # until then the status still shows the run at `due` (or, once it fired, tomorrow's).
        deadline = time.monotonic() + 10
        while True:
            status = json.loads(run_cli("--config", str(config), "status", "--format", "json", env=WORKER_ENV).stdout)
            digest = next(job for job in status["jobs"] if job["id"] == "digest")
            retry = datetime.fromisoformat(digest["next_run"])
            if timedelta(0) < retry - due < timedelta(minutes=16) or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert timedelta(minutes=14) < retry - due < timedelta(minutes=16), digest
        assert digest["outcome"] == "failed"
    finally:
        assert worker.stop() == 0
    assert {row["state"] for row in deliveries(config)} == {"pending"}

    server = SmtpServer(RecordingHandler(), port=port)
    again = RunningWorker(config)
    try:
        again.wait_for(r"still pending, so it runs now")
        again.wait_for(r"digest \S+: [1-9]\d* sent, 0 refused, 0 left pending", timeout=60)
    finally:
        again.stop()
        server.stop()
    recorded = deliveries(config)
    assert {row["state"] for row in recorded} == {"sent"} and len(server.messages) == len(recorded)
