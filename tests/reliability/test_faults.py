"""Faults lose nothing, proven with real processes, servers and files: an SMTP server down
for a whole digest run, a digest run killed with SIGKILL mid-message, the store's disk
filling up mid-crawl (a real ENOSPC on a small tmpfs, and EFBIG from RLIMIT_FSIZE), a crawl
child killed by the OS, a corrupted config on SIGHUP, and the worker killed with SIGKILL in
the middle of a crawl and a digest batch at once."""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tendermatch.store import decompress
from tests import configs
from tests.conftest import CORPUS, ROOT, cli_env, run_cli
from tests.notifier.delivery import ENV as SMTP_ENV
from tests.notifier.delivery import assert_exactly_once, message_id, parse, workspace
from tests.notifier.smtp_server import RecordingHandler, SmtpServer, free_port
from tests.worker.worker_process import (
    FEED,
    ONCE,
    STOP_GRACE,
    WORKER_ENV,
    WORKER_SETTINGS,
    alive,
    crawl_child_of,
    feed_source,
    job_table,
    probe_config,
    remember,
    runs,
    status,
    wait_until,
    write_worker_config,
)

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux signals, /proc, namespaces")]


def lines_with(text: str, *needles: str) -> list[str]:
    return [line for line in text.splitlines() if all(needle in line for needle in needles)]


# -- 1. the SMTP server down for a whole digest run ---------------------------------------------


def test_a_digest_run_with_the_smtp_server_down_keeps_every_digest_pending_and_the_next_runs_send_each_once(
        base, tmp_path, servers):
    port = free_port()  # nothing listens here for the whole first run
    space = workspace(base, tmp_path, port)
    total = len(base["addresses"])

    down = space.send()
    output = down.stdout + down.stderr
    assert down.returncode != 0, output
    assert "Traceback" not in output, output
    # One summary line says why, naming the server: the operator knows what to fix.
    [summary] = lines_with(output, "left pending")
    assert summary.startswith(f"0 sent, 0 refused, {total} left pending"), summary
    assert "stopped: " in summary and f"127.0.0.1:{port}" in summary, summary
    assert re.search(r"connect|refused|unreachable", summary), summary
    rows = space.deliveries()
    assert len(rows) == total and {row["state"] for row in rows} == {"pending"}
    recorded_ids = {row["message_id"] for row in rows}
    [down_run] = space_runs(space, "digest")
    assert down_run["outcome"] == "failed" and f"127.0.0.1:{port}" in down_run["error"], down_run

    server = servers(port=port)  # the server is back, on the same port
    up = space.send()
    assert up.returncode == 0, up.stdout + up.stderr
    messages = server.messages
    assert len(messages) == total
    assert_exactly_once(messages, base["addresses"])
    # What went out is what the failed run recorded: the same Message-IDs, none new.
    assert {message_id(parse(m.raw)) for m in messages} == recorded_ids
    assert {row["state"] for row in space.deliveries()} == {"sent"}

    again = space.send()  # a third run: nothing is pending, nothing is new
    assert again.returncode == 0, again.stdout + again.stderr
    assert "0 new digests for 2016-W01 recorded" in again.stdout
    assert lines_with(again.stdout, "0 sent, 0 refused, 0 left pending"), again.stdout
    assert len(server.messages) == total
    outcomes = [(run["outcome"], run["stats"].get("sent")) for run in space_runs(space, "digest")]
    assert outcomes == [("failed", 0), ("ok", total), ("ok", 0)], outcomes


def space_runs(space, job: str) -> list[dict]:
    """The workspace's run history of ``job``, oldest first."""
    result = space.cli("runs", "--format", "json", "--job", job)
    assert result.returncode == 0, result.stderr
    return list(reversed(json.loads(result.stdout)))


# -- 2. a digest run killed with SIGKILL with a message in flight ----------------------------------


def test_a_digest_run_killed_with_a_message_in_flight_resends_that_message_with_the_same_message_id(
        base, tmp_path, servers):
    # The server records a message on arrival and answers 250 only 30 s later: a kill right
    # after the first arrival lands between the server having the message and the client
    # learning it was accepted, the one case where README allows a second copy.
    handler = RecordingHandler(delay=30)
    server = servers(handler)
    space = workspace(base, tmp_path, server.port)
    total = len(base["addresses"])
    env = cli_env(SMTP_ENV)
    with open(tmp_path / "killed.out", "wb") as out:
        run = subprocess.Popen([sys.executable, "-m", "tendermatch",
                                *space.args("digest", "--send", "--period", "2016-W01", "--as-of", "2016-01-01")],
                               cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            [in_flight] = handler.wait_for(1, timeout=60, until=lambda: run.poll() is not None)
            still_sending = run.poll() is None
        finally:
            run.kill()
            run.wait(timeout=10)
    assert still_sending, (tmp_path / "killed.out").read_text()
    assert run.returncode == -9
    handler.delay = 0  # the server is quick again for the rerun

    [address] = in_flight.rcpt_tos
    killed = {row["email"]: row for row in space.deliveries()}
    assert len(killed) == total  # all recorded before the first was handed over
    assert {row["state"] for row in killed.values()} == {"pending"}  # no 250 came: none marked sent
    assert killed[address]["message_id"] == message_id(parse(in_flight.raw))

    rerun = space.send()
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "0 new digests for 2016-W01 recorded" in rerun.stdout
    messages = server.messages
    assert_exactly_once(messages, base["addresses"])  # one Message-ID per address
    copies = Counter(received.rcpt_tos[0] for received in messages)
    # The one in flight arrived twice, as the same message; every other address once.
    assert copies == Counter({**{email: 1 for email in base["addresses"]}, address: 2}), copies
    first, second = [received.raw for received in messages if received.rcpt_tos == (address,)]
    assert first == second  # the kept message, byte for byte: a mail program shows it once
    rows = space.deliveries()
    assert {row["state"] for row in rows} == {"sent"} and len(rows) == total


# -- 3. the store's disk full during a crawl ----------------------------------------------------

DISK_FULL_KB = 1536  # the store of the crawled folder takes about 2 MB: it fills mid-crawl
FULL_WORDS = re.compile(r"disk (is )?full|no space|cannot write|too large", re.IGNORECASE)


def crawl_folder() -> Path:
    folder = CORPUS / "ted_r209" / "op-ted_ted-rdf-mapping" / "dk"  # 86 real Danish TED notices
    if not folder.is_dir():
        pytest.skip(f"corpus not found at {CORPUS} (set TENDERMATCH_CORPUS)")
    return folder


def files_config(folder: Path, store: Path) -> Path:
    return configs.write_config(folder, store=str(store), sources=[{"name": "dk", "kind": "files",
                                                                     "path": crawl_folder()}])


def store_contents(db: Path) -> dict:
    """What a store holds, read with plain sqlite3: its integrity, each notice's record,
    lots, keys, sources and versions, and each kept document with the notices it gave."""
    connection = sqlite3.connect(db)
    try:
        integrity = [row[0] for row in connection.execute("PRAGMA integrity_check")]
        try:  # the full-text index agrees with the notices it indexes
            connection.execute("INSERT INTO notices_fts (notices_fts) VALUES ('integrity-check')")
            search = "ok"
        except sqlite3.DatabaseError as error:
            search = str(error)
        notices = {}

        def count(sql: str, notice_id: str) -> int:
            return connection.execute(sql, [notice_id]).fetchone()[0]

        for notice_id, record in connection.execute("SELECT id, record FROM notices").fetchall():
            notices[notice_id] = {
                "record": json.loads(record),
                "lots": count("SELECT count(*) FROM lots WHERE notice_id = ?", notice_id),
                "keys": count("SELECT count(*) FROM notice_keys WHERE notice_id = ?", notice_id),
                "sources": count("SELECT count(*) FROM notice_sources WHERE notice_id = ?", notice_id),
                "kept_raw": count("SELECT count(*) FROM notice_versions AS v JOIN raw_documents AS r"
                                  " ON r.id = v.raw_id WHERE v.notice_id = ?", notice_id),
            }
        documents = {}
        for raw_id, url, status, content in connection.execute(
                "SELECT id, url, status, content FROM raw_documents"):
            told = connection.execute("SELECT DISTINCT notice_id FROM notice_versions WHERE raw_id = ?", [raw_id])
            documents[url] = {"status": status, "notices": sorted(row[0] for row in told),
                              "bytes": len(decompress(content))}
        unindexed = connection.execute("SELECT count(*) FROM _search_queue").fetchone()[0]
    finally:
        connection.close()
    return {"integrity": integrity, "search": search, "notices": notices, "documents": documents,
            "unindexed": unindexed}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The same crawl with room to spare: what each document gives."""
    folder = tmp_path_factory.mktemp("disk-reference")
    config = files_config(folder, folder / "store.db")
    result = run_cli("--config", str(config), "crawl")
    assert result.returncode == 0, result.stdout + result.stderr
    contents = store_contents(folder / "store.db")
    assert len(contents["documents"]) == 86 and len(contents["notices"]) == 86
    return contents


def namespace_script(python: str, config: Path, disk: Path, out: Path) -> str:
    """Inside a user + mount namespace: a small tmpfs for the store, the crawl that fills
    it, `status`, `tenders` and `runs` on the full disk, copies of the store, more room, a
    new crawl, copies again. Every step's output and exit code go to ``out``."""
    cli = f'"{python}" -m tendermatch --config "{config}"'

    def step(name: str, command: str) -> str:
        return f'{command} > "{out}/{name}.out" 2> "{out}/{name}.err"; echo $? > "{out}/{name}.rc"\n'

    return (f'mount -t tmpfs -o size={DISK_FULL_KB}k tmpfs "{disk}" || exit 97\n'
            + step("crawl", f"{cli} crawl")
            + step("status", f"{cli} status --format json")
            + step("tenders", f"{cli} tenders --format json")
            + step("runs", f"{cli} runs --format json")
            + f'mkdir "{out}/full" && cp "{disk}/store.db" "{disk}/store.db-wal" "{out}/full/" 2>/dev/null\n'
            + f'mount -o remount,size=65536k "{disk}" || exit 98\n'
            + step("again", f"{cli} crawl")
            + step("again_runs", f"{cli} runs --format json")
            + f'mkdir "{out}/freed" && cp "{disk}/store.db" "{disk}/store.db-wal" "{out}/freed/" 2>/dev/null\n'
            + "exit 0\n")


def fill_with_enospc(folder: Path, out: Path) -> None:
    """A real full disk: the store on a 1.5 MB tmpfs in a user + mount namespace."""
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"`unshare -rm` is not permitted here ({probe.stderr.strip()}): no tmpfs to fill")
    disk = folder / "disk"
    disk.mkdir()
    config = files_config(folder, disk / "store.db")
    env = cli_env()
    done = subprocess.run(["unshare", "-rm", "sh", "-c", namespace_script(sys.executable, config, disk, out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    if done.returncode == 97:
        pytest.skip(f"cannot mount a tmpfs in a user namespace here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stdout + done.stderr


def fill_with_efbig(folder: Path, out: Path) -> None:
    """A file size limit (RLIMIT_FSIZE) on the crawl and the commands after it, with
    SIGXFSZ ignored: every write past the limit fails with EFBIG."""
    disk = folder / "disk"
    disk.mkdir()
    config = files_config(folder, disk / "store.db")
    env = cli_env()
    limit = DISK_FULL_KB * 1024

    def limited() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    def step(name: str, *args: str, limit_size: bool = True) -> None:
        result = subprocess.run([sys.executable, "-m", "tendermatch", "--config", str(config), *args], cwd=ROOT,
                                env=env, capture_output=True, text=True, timeout=300,
                                preexec_fn=limited if limit_size else None, check=False)
        (out / f"{name}.out").write_text(result.stdout, encoding="utf-8")
        (out / f"{name}.err").write_text(result.stderr, encoding="utf-8")
        (out / f"{name}.rc").write_text(str(result.returncode), encoding="utf-8")

    def copy(name: str) -> None:
        (out / name).mkdir()
        for suffix in ("", "-wal"):
            if (disk / f"store.db{suffix}").exists():
                shutil.copy(disk / f"store.db{suffix}", out / name)

    step("crawl", "crawl")
    for name in ("status", "tenders", "runs"):  # still under the limit: the disk is still full
        step(name, name, "--format", "json")
    copy("full")
    step("again", "crawl", limit_size=False)  # the limit lifted: room again
    step("again_runs", "runs", "--format", "json", limit_size=False)
    copy("freed")


@pytest.fixture(scope="module", params=["ENOSPC", "EFBIG"])
def disk_full(request, tmp_path_factory, reference):
    """A crawl whose store's disk fills up mid-crawl, then the commands an operator runs,
    then a crawl with room again; each step's output, exit code and the store after it."""
    folder = tmp_path_factory.mktemp(f"disk-{request.param}")
    out = folder / "out"
    out.mkdir()
    (fill_with_enospc if request.param == "ENOSPC" else fill_with_efbig)(folder, out)

    def step(name: str) -> dict:
        return {"stdout": (out / f"{name}.out").read_text(encoding="utf-8"),
                "stderr": (out / f"{name}.err").read_text(encoding="utf-8"),
                "rc": int((out / f"{name}.rc").read_text())}

    return {"how": request.param, "store": folder / "disk" / "store.db",
            **{name: step(name) for name in ("crawl", "status", "tenders", "runs", "again", "again_runs")},
            "full": store_contents(out / "full" / "store.db"), "freed": store_contents(out / "freed" / "store.db")}


@pytest.mark.corpus  # crawls the corpus's 86 Danish TED notices
def test_a_crawl_that_fills_the_disk_stops_with_one_clear_line_and_its_run_says_so(disk_full):
    crawl = disk_full["crawl"]
    output = crawl["stdout"] + crawl["stderr"]
    assert crawl["rc"] != 0, output
    assert "Traceback" not in output, output
    # One line names the store and says it cannot be written (not one line per document).
    full_lines = [line for line in output.splitlines() if FULL_WORDS.search(line)]
    assert len(full_lines) == 1, f"{len(full_lines)} lines about the full disk:\n" + "\n".join(full_lines[:5])
    assert str(disk_full["store"]) in full_lines[0], full_lines[0]
    # The run history says what happened and counts only what was stored.
    [run] = json.loads(disk_full["runs"]["stdout"])
    assert run["outcome"] in ("failed", "partial"), run
    assert FULL_WORDS.search(run["error"] or ""), run
    assert run["stats"]["new"] == len(disk_full["full"]["notices"]), run["stats"]


@pytest.mark.corpus  # crawls the corpus's 86 Danish TED notices
def test_a_store_whose_disk_filled_mid_crawl_opens_intact_with_nothing_stored_half(disk_full, reference):
    full = disk_full["full"]
    assert disk_full["crawl"]["rc"] != 0  # the crawl did not pass for a good one
    assert full["integrity"] == ["ok"] and full["search"] == "ok" and full["unindexed"] == 0, full["integrity"]
    stored = full["notices"]
    assert 0 < len(stored) < len(reference["notices"]), len(stored)  # it really filled mid-crawl
    # The operator's commands work on the full disk and show what is there.
    status, tenders = disk_full["status"], disk_full["tenders"]
    assert status["rc"] == 0, status["stderr"]
    assert json.loads(status["stdout"])["store"]["notices"] == len(stored)
    assert tenders["rc"] == 0, tenders["stderr"]
    assert sorted(record["id"] for record in json.loads(tenders["stdout"])) == sorted(stored)
    # Every stored notice is whole: the record the same as with room to spare, every lot,
    # its keys, its source and a kept raw document.
    for notice_id, notice in stored.items():
        expected = reference["notices"][notice_id]
        assert notice["record"] == expected["record"], notice_id
        assert notice["lots"] == expected["lots"] == len(notice["record"]["lots"]), notice_id
        assert notice["keys"] >= 1 and notice["sources"] == 1 and notice["kept_raw"] >= 1, (notice_id, notice)
    # Every kept document is whole and gave all its notices.
    assert full["documents"], "no document kept"
    for url, document in full["documents"].items():
        expected = reference["documents"][url]
        assert document["status"] == "parsed" and document["bytes"] == expected["bytes"], url
        assert document["notices"] == expected["notices"], url


@pytest.mark.corpus  # crawls the corpus's 86 Danish TED notices
def test_after_the_disk_has_room_again_a_new_crawl_stores_the_rest(disk_full, reference):
    again = disk_full["again"]
    assert again["rc"] == 0, again["stdout"] + again["stderr"]
    freed = disk_full["freed"]
    assert freed["integrity"] == ["ok"] and freed["search"] == "ok" and freed["unindexed"] == 0
    assert freed["notices"] == reference["notices"]  # every notice, each whole, none twice
    assert freed["documents"] == reference["documents"]
    newest = json.loads(disk_full["again_runs"]["stdout"])[0]
    assert newest["outcome"] == "ok", newest
    assert newest["stats"]["new"] == len(reference["notices"]) - len(disk_full["full"]["notices"]), newest["stats"]


@pytest.mark.corpus  # crawls the corpus's 86 Danish TED notices
def test_an_ingest_that_fills_the_disk_stops_with_one_line_and_a_second_ingest_stores_the_rest(tmp_path, reference):
    # `ingest` stores in batches, not through Scrapy: the same file-size limit on it.
    store = tmp_path / "store.db"
    command = [sys.executable, "-m", "tendermatch", "--db", str(store), "ingest", str(crawl_folder())]
    limit = DISK_FULL_KB * 1024

    def limited() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    full = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300, preexec_fn=limited)
    output = full.stdout + full.stderr
    assert full.returncode != 0 and "Traceback" not in output, output
    assert [line for line in output.splitlines() if FULL_WORDS.search(line)] == [
        f"Error: {store}: cannot write: the disk is full or the file may not grow (disk I/O error)"], output
    contents = store_contents(store)
    assert contents["integrity"] == ["ok"] and contents["search"] == "ok"
    for notice_id, notice in contents["notices"].items():  # whatever was stored is whole
        assert notice["record"] == reference["notices"][notice_id]["record"], notice_id
    assert len(contents["notices"]) < len(reference["notices"])

    again = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    assert store_contents(store)["notices"] == reference["notices"]


# -- 4. a crawl child killed by the OS (moved here from tests/worker/test_worker_process.py) -------


def test_a_crawl_child_killed_by_the_os_fails_its_run_and_the_next_crawl_succeeds(tmp_path, slow_site, spawn):
    config = write_worker_config(tmp_path, [
        feed_source("slow", slow_site.url + FEED, schedule="*/3 * * * * *", timeout=60)], worker=WORKER_SETTINGS)
    worker = spawn(config)
    child = remember(spawn, crawl_child_of(worker, slow_site))
    os.kill(child, signal.SIGKILL)
    slow_site.slow = False  # the site is fast again for the next crawl

    worker.wait_for(r"crawl:slow failed in", timeout=30)
    first = runs(config, "crawl:slow")[0]
    assert first["outcome"] == "failed", first
    assert first["error"] == "the crawl process was killed by SIGKILL", first
    assert first["pid"] == worker.pid

    worker.wait_for(r"crawl:slow ok in", timeout=30)
    assert worker.process.poll() is None
    later = [run for run in runs(config, "crawl:slow") if run["id"] > first["id"]]
    assert any(run["outcome"] == "ok" and run["stats"]["fetched"] >= 1 and run["stats"]["new"] >= 1
               for run in later), later
    assert worker.stop(timeout=STOP_GRACE + 30) == 0


# -- 5. a corrupted config on SIGHUP ----------------------------------------------------------------


def test_a_corrupted_config_on_sighup_is_refused_while_the_old_schedule_keeps_firing(tmp_path, site, spawn):
    url = site.url + FEED
    config = write_worker_config(tmp_path, [feed_source("A", url, schedule="*/2 * * * * *")],
                                 worker="watch = 0\nstop_grace = 2\n")  # SIGHUP only: each reload is ours
    good = config.read_bytes()
    cut = good.index(b'url = "') + len(b'url = "') + 8  # inside source A's url
    broken = [  # by hand: the running config's bytes, corrupted on purpose
        ("binary garbage", b"\x00\xff\xfe\x89PNG\r\n\x1a\n\x00" * 50 + good, [r"cannot read config", r"utf-8"]),
        ("truncated TOML", good[:cut], [r"TOML syntax error"]),
        ("an empty file", b"", [r"\[store\] path changed"]),  # all defaults: another store
        ("an invalid value", good.replace(b"[worker]\n", b'[worker]\ntimezone = "Mars/Olympus_Mons"\n'),
         [r"\[worker\] timezone", r"Mars/Olympus_Mons"]),
    ]
    # `status` through a second config on the same store: the worker's own file is broken.
    probe = probe_config(tmp_path / "probe", tmp_path / "store.db", tmp_path / "profiles")
    worker = spawn(config)
    worker.wait_for(r"crawl:A ok in")
    running_jobs = job_table(status(config))

    for number, (what, content, reasons) in enumerate(broken, 1):
        config.write_bytes(content)
        crawled = len(lines_with(worker.log(), "crawl:A ok in"))
        worker.send(signal.SIGHUP)
        line = worker.wait_for(r"reload refused \(SIGHUP\); the running config is kept: ", count=number)[-1]
        assert " ERROR tendermatch.worker: " in line and str(config.resolve()) in line, (what, line)
        assert all(re.search(reason, line) for reason in reasons), (what, line)
        # The old config still runs: its every-2-s crawl fires again after the refusal.
        worker.wait_for(r"crawl:A ok in", count=crawled + 1, timeout=30)
        report = status(probe)
        assert report["worker"]["running"] and report["worker"]["pid"] == worker.pid, what
        assert all(re.search(reason, report["worker"]["reload_error"]) for reason in reasons), what
        assert job_table(report) == running_jobs, what
    assert not lines_with(worker.log(), "reloaded "), worker.log()
    assert "Traceback" not in worker.log()

    # A good edit is applied: a new source, crawled at once.
    write_worker_config(tmp_path, [feed_source("A", url, schedule="*/2 * * * * *"),
                                   feed_source("C", site.url + "/udbud_atom.xml", schedule="*/3 * * * * *")],
                        worker="watch = 0\nstop_grace = 2\n")
    worker.send(signal.SIGHUP)
    [line] = worker.wait_for(r"reloaded ")
    assert "(SIGHUP): 3 jobs; added crawl:C, removed none, rescheduled none" in line, line
    worker.wait_for(r"crawl:C ok in")
    report = status(config)
    assert report["worker"]["reload_error"] is None
    assert job_table(report) == {**running_jobs, "crawl:C": "*/3 * * * * *"}
    assert worker.stop() == 0


# -- 6. the worker killed with SIGKILL mid-crawl and mid-digest, then restarted ---------------------


def test_a_worker_killed_mid_crawl_and_mid_digest_is_finished_by_the_next_with_nothing_twice(
        tmp_path, site, slow_site, spawn):
    # The first digest is held by the server (recorded on arrival, 250 after 30 s) and the
    # "slow" source's feed hangs: one SIGKILL cuts off both a crawl and a digest batch.
    handler = RecordingHandler(delay=30)
    server = SmtpServer(handler)
    try:
        config = write_worker_config(
            tmp_path, [feed_source("feed", site.url + FEED, schedule=ONCE),
                       feed_source("slow", slow_site.url + FEED, schedule=ONCE, timeout=120)],
            digest_schedule="*/2 * * * * *", worker=WORKER_SETTINGS,
            extra=f'[smtp]\nhost = "127.0.0.1"\nport = {server.port}\nretries = 0\ntimeout = 60\n')
        old = spawn(config)
        child = remember(spawn, crawl_child_of(old, slow_site))
        [in_flight] = handler.wait_for(1, timeout=90, until=lambda: old.process.poll() is not None)
        assert old.process.poll() is None, old.log()
        old.kill()  # SIGKILL: no cleanup, no chance to record anything
        wait_until(lambda: not alive(child), timeout=30, what=f"the crawl child {child} ends after its worker")
        cut = {run["job"]: run for run in runs(config) if run["outcome"] == "running"}
        assert set(cut) == {"crawl:slow", "digest"}, cut  # both were under way
        assert {run["pid"] for run in cut.values()} == {old.pid}
        pending = deliveries(config)
        assert pending and {row["state"] for row in pending} == {"pending"}, pending  # no 250 came

        handler.delay = 0
        slow_site.slow = False
        new = spawn(config)
        line = new.wait_for(r"marked \d+ run\(s\) interrupted")[0]
        ids = sorted(run["id"] for run in cut.values())
        assert f"marked 2 run(s) interrupted that a stopped process left running (ids {ids[0]}, {ids[1]})" in line
        new.wait_for(r"crawl:slow ok in", timeout=60)
        new.wait_for(rf"digest \S+: {len(pending)} sent, 0 refused, 0 left pending", timeout=60)
        assert new.stop() == 0, new.log()
    finally:
        server.stop()

    history = runs(config)
    for run in cut.values():
        [after] = [row for row in history if row["id"] == run["id"]]
        assert after["outcome"] == "interrupted", after
        assert after["error"] == "the process running it ended before it finished (killed?)", after
    assert [run for run in history if run["outcome"] == "running"] == []
    again = [run for run in history if run["job"] == "crawl:slow" and run["pid"] == new.pid]
    assert [run["outcome"] for run in again] == ["ok"], again

    # Each notice once: both sources serve the same six-item feed, each delivered its six
    # (the re-run crawl too), and the store holds their union, each written once per source.
    notices = json.loads(run_cli("--config", str(config), "tenders", "--format", "json", env=WORKER_ENV,
                                 check=True).stdout)
    delivered = {name: {record["id"] for record in notices if name in record["sources"]} for name in ("feed", "slow")}
    assert len(delivered["feed"]) == len(delivered["slow"]) == 6, delivered
    assert len(notices) == len(delivered["feed"] | delivered["slow"]), [record["id"] for record in notices]
    with sqlite3.connect(tmp_path / "store.db") as connection:
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        twice = connection.execute("SELECT notice_id, source, count(*) FROM notice_versions GROUP BY 1, 2"
                                   " HAVING count(*) > 1").fetchall()
    assert twice == [], twice
    # Each digest once: the one in flight at the kill arrived again, as the same message.
    rows = deliveries(config)
    assert {row["state"] for row in rows} == {"sent"}
    assert len({(row["profile_id"], row["email"], row["period"]) for row in rows}) == len(rows) == len(pending)
    messages = server.messages
    assert_exactly_once(messages, {row["email"] for row in rows})
    copies = Counter(received.rcpt_tos[0] for received in messages)
    assert copies == Counter({**{row["email"]: 1 for row in rows}, in_flight.rcpt_tos[0]: 2}), copies
    assert {message_id(parse(received.raw)) for received in messages} == {row["message_id"] for row in rows}


def deliveries(config: Path) -> list[dict]:
    result = run_cli("--config", str(config), "deliveries", "--format", "json", env=WORKER_ENV)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)
