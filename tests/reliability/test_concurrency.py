"""Several `tendermatch` processes on one store file at the same time lose nothing and
never fail with "database is locked":

- a crawl (from a local TED API emulator), repeated `match` runs and `tendermatch serve`
  answering HTTP requests, all at once: every process exits 0, nothing mentions a locked
  or busy database, every page answers 200, staff never see a half-written match log, and
  the store ends up exactly as a quiet crawl and match leave it;
- two `ingest` runs started at the same moment on a new store with overlapping files: each
  notice and raw document stored once, with the same values as one ingest of all files;
- two `digest --send` runs at once against one SMTP server: each address gets one digest
  (both runs sent every pending digest until sending took a lock of its own);
- `status` answers while an ingest holds the write lock, reading what is committed (every
  command took the write lock to check the migrations when it opened the store).
"""

from __future__ import annotations

import json
import re
import signal
import sqlite3
import threading
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from tests import configs
from tests.conftest import CORPUS, ROOT, run_cli
from tests.crawler.servers import TedApi
from tests.notifier.smtp_server import RecordingHandler, SmtpServer, free_port
from tests.reliability.helpers import finish, kill, popen
from tests.web.served import ServeProcess, secret_env
from tests.worker.worker_process import wait_until

TED = CORPUS / "ted_r209" / "op-ted_ted-rdf-mapping"
AS_OF = "2016-01-01"  # the corpus notices are from 2016-2022: match them as if still open
TROUBLE = re.compile(r"locked|busy|OperationalError|Traceback", re.IGNORECASE)
ENV = secret_env()

pytestmark = [pytest.mark.slow, pytest.mark.corpus,
              pytest.mark.skipif(not TED.is_dir(), reason=f"corpus not found at {CORPUS} (set TENDERMATCH_CORPUS)")]


# -- helpers -----------------------------------------------------------------------------------


class GatedTedApi(TedApi):
    """The TED API emulator, able to hold the XML downloads past given counts until
    ``release()``: the crawl then stands still mid-way, with its store open, for as long
    as the test needs to run something beside it."""

    def __init__(self, files: dict[str, Path]):
        self.counter = threading.Lock()
        self.downloads = 0
        self.holds: list[tuple[int, threading.Event]] = []
        super().__init__(files)

    def hold(self, *after: int) -> None:
        """Hold every download past each of ``after`` until that point is released."""
        with self.counter:
            self.downloads = 0
            self.holds = [(point, threading.Event()) for point in sorted(after)]

    def release(self, *, every: bool = False) -> None:
        """Let the crawl go on to the next hold point (or to the end)."""
        for _, gate in self.holds:
            if not gate.is_set():
                gate.set()
                if not every:
                    return

    def handle(self, method: str, path: str, body: bytes):
        if method == "GET" and path.startswith("/notices/"):
            with self.counter:
                self.downloads += 1
                gates = [gate for point, gate in self.holds if self.downloads > point]
            for gate in gates:
                gate.wait(timeout=120)  # a hang guard: the test releases it long before
        return super().handle(method, path, body)


def query(store: Path, sql: str, params: tuple = ()) -> list[tuple] | None:
    """Rows read straight from the file (read-only), or None while it cannot be read yet
    (it is being created)."""
    if not store.exists():
        return None
    try:
        db = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=5)
        try:
            return db.execute(sql, params).fetchall()
        finally:
            db.close()
    except sqlite3.Error:
        return None


def cli_json(*args: str) -> list | dict:
    result = run_cli(*args, "--format", "json", env=ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def log_rows(config: Path) -> list[tuple]:
    """The match log without the time it was written."""
    return sorted((row["profile_id"], row["notice_id"], row["lot_id"], row["score"], row["rank"],
                   tuple(row["reasons"])) for row in cli_json("--config", str(config), "log"))


def write_full_config(folder: Path, *, api_url: str, smtp_port: int = 2525, serve_port: int = 8001) -> Path:
    """A config with one `ted` source, the shipped profiles without their regions (the
    corpus is from all over Europe), [smtp] and [serve]."""
    profiles = folder / "profiles"
    profiles.mkdir(parents=True, exist_ok=True)
    for path in (ROOT / "config" / "profiles").glob("*.toml"):
        text = re.sub(r"(?m)^regions\s*=.*$", "", path.read_text(encoding="utf-8"))
        (profiles / path.name).write_text(text, encoding="utf-8")
    return configs.write_config(
        folder, matcher={"profiles": "profiles"},
        # Retries as a real config has them: the emulator's plain HTTP/1.0 server sometimes
        # closes a kept-alive connection under the client's feet.
        crawler={"retry_times": 3},
        digest={"sender": configs.SENDER, "base_url": f"http://127.0.0.1:{serve_port}"},
        smtp=configs.smtp_section(smtp_port), serve={"port": serve_port, "datasette_without_login": True},
        sources=[{"name": "ted-eu", "kind": "ted", "url": api_url, "query": "notice-type IN (cn-standard)",
                  "limit": 50}])


# -- shared set-up: the API over corpus notices, and a store filled quietly ----------------------


@pytest.fixture(scope="module")
def ted_api():
    files = sorted((TED / "dk").glob("*.xml")) + sorted((TED / "contract_notices_all_countries").glob("*.xml"))[:120]
    api = GatedTedApi({path.stem: path for path in files})
    yield api
    api.release()
    api.close()


@pytest.fixture(scope="module")
def quiet(ted_api, tmp_path_factory):
    """The reference: the same crawl and match with nothing else running. Returns the
    config, the notices (`tenders --format json`) and the match log."""
    folder = tmp_path_factory.mktemp("quiet")
    config = write_full_config(folder, api_url=ted_api.url)
    crawl = run_cli("--config", str(config), "crawl", env=ENV)
    assert crawl.returncode == 0, crawl.stdout + crawl.stderr
    match = run_cli("--config", str(config), "match", "--as-of", AS_OF, env=ENV)
    assert match.returncode == 0, match.stdout + match.stderr
    notices = sorted(cli_json("--config", str(config), "tenders"), key=lambda record: record["id"])
    log = log_rows(config)
    assert len(notices) > 150 and len(log) >= 10  # enough to compare: the corpus and profiles did their part
    return {"config": config, "notices": notices, "log": log}


# -- 1. crawl + match + serve at once ---------------------------------------------------------------

PAGES = ("/", "/store", "/store/notices", "/store/notices.json?_search=services&_shape=array",
         "/store/match_log?enterprise=", "/store/run_history?job=&outcome=")
MATCH_LOG_JSON = "/store/match_log.json?enterprise=&_shape=array"


class Reader(threading.Thread):
    """A member of staff reloading the web view's pages as fast as it answers."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url = url
        self.stop = threading.Event()
        self.answers: list[tuple[str, int, str]] = []  # (path, status, body if not 200)
        self.logs: list[list[dict]] = []  # every match log read

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=60) as response:
                return response.status, response.read().decode("utf-8", errors="replace")
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode("utf-8", errors="replace")

    def run(self) -> None:
        while not self.stop.is_set():
            for path in (*PAGES, MATCH_LOG_JSON):
                status, body = self.get(path)
                self.answers.append((path, status, "" if status == 200 else body[:500]))
                if path == MATCH_LOG_JSON and status == 200:
                    self.logs.append(json.loads(body))


def test_a_crawl_repeated_matches_and_the_web_view_share_the_store_without_locking_or_losing_anything(
        ted_api, quiet, tmp_path):
    port = free_port()
    config = write_full_config(tmp_path, api_url=ted_api.url, serve_port=port)
    store = tmp_path / "store.db"
    serve = ServeProcess(config, port, env=ENV).start()
    try:
        reader = Reader(serve.url)
        total, documents = len(quiet["notices"]), len(ted_api.files)
        stop = documents // 3
        ted_api.hold(stop)  # the crawl stands still a third of the way until a match has run beside it
        crawl = popen("--config", str(config), "crawl", log=tmp_path / "crawl.log")
        matches: list[tuple[int, str, bool]] = []  # (exit code, output, the crawl was still running when it ended)

        def match() -> None:
            result = run_cli("--config", str(config), "match", "--as-of", AS_OF, env=ENV)
            matches.append((result.returncode, result.stdout + result.stderr, crawl.poll() is None))

        try:
            reader.start()
            wait_until(lambda: (query(store, "SELECT count(*) FROM raw_documents") or [(0,)])[0][0] >= stop,
                       timeout=90, what=f"the crawl kept its first {stop} documents")
            match()
            ted_api.release()
            while crawl.poll() is None:  # and again and again while it writes the rest
                match()
            crawl_code, crawl_output = finish(crawl, tmp_path / "crawl.log")
        finally:
            ted_api.release(every=True)
            reader.stop.set()
            reader.join(timeout=120)
            if crawl.poll() is None:
                kill(crawl)
        final = run_cli("--config", str(config), "match", "--as-of", AS_OF, env=ENV)
        status, body = reader.get(MATCH_LOG_JSON)
        served_log = json.loads(body) if status == 200 else body
    finally:
        serve.stop()

    # Every process did its job, and nothing was ever locked or busy.
    assert crawl_code == 0, crawl_output
    assert not TROUBLE.search(crawl_output), crawl_output
    assert f"fetched {documents}" in crawl_output and f"new {total}" in crawl_output, crawl_output
    assert all(code == 0 for code, _, _ in matches), [output for code, output, _ in matches if code]
    assert not [output for _, output, _ in matches if TROUBLE.search(output)]
    assert final.returncode == 0 and not TROUBLE.search(final.stdout + final.stderr), final.stdout + final.stderr
    assert not TROUBLE.search(serve.log()), serve.log()
    # The overlap was real: matches ran in the middle of the crawl, on a partly filled store.
    assert matches[0][2], matches
    seen = [json.loads(stats)["notices"] for (stats,) in query(store, "SELECT stats FROM runs WHERE job = 'match'"
                                                                      " ORDER BY id")]
    assert 0 < seen[0] < total, seen

    # Every page answered, every time; the log was never seen half replaced.
    assert reader.answers and len(reader.logs) >= 2
    assert [answer for answer in reader.answers if answer[1] != 200] == []
    for log in reader.logs:
        ranks: dict[str, list[int]] = {}
        for row in log:
            ranks.setdefault(row["enterprise_id"], []).append(row["rank"])
        assert all(sorted(found) == list(range(1, len(found) + 1)) for found in ranks.values()), ranks

    # The store is exactly what the crawl and match leave with nothing else running.
    notices = sorted(cli_json("--config", str(config), "tenders"), key=lambda record: record["id"])
    assert len({record["id"] for record in notices}) == len(notices) == total
    assert notices == quiet["notices"]
    assert query(store, "SELECT count(*), count(DISTINCT sha256) FROM raw_documents") == [(documents, documents)]
    assert log_rows(config) == quiet["log"]
    assert sorted((row["enterprise_id"], row["notice_id"], row["rank"]) for row in served_log) \
        == sorted((profile, notice, rank) for profile, notice, _, _, rank, _ in quiet["log"])
    runs = {(run["job"], run["outcome"]) for run in cli_json("--config", str(config), "runs", "--limit", "1000")}
    assert runs == {("crawl:ted-eu", "ok"), ("match", "ok")}


# -- 2. two ingests at the same moment -------------------------------------------------------------

# Real TED notices (XML and API records), enough that each ingest commits several batches,
# so the two have to take turns at the store; only files whose stored result does not
# depend on the order they are read in (checked by ingesting shuffled copies): no two files
# of one notice, no change notice with its original. And eForms examples that are refused.
def ingest_files() -> tuple[list[Path], list[Path]]:
    """(good files, bad files)"""
    good = [path for where in ("dk", "contract_notices_all_countries") for path in (TED / where).glob("*.xml")
            if "__" not in path.name]  # 350966-2022__2.xml: a second file of one notice
    good += (CORPUS / "ted_r209" / "op-ted_ted-rdf-conversion-pipeline").rglob("*.xml")
    good += (CORPUS / "ted_api_json").glob("*.json")
    examples = CORPUS / "eforms_sdk" / "examples" / "notices"
    # (INVALID_change-cn_24_FRA_comments and INVALID_cn_24_multiple are stored, not refused.)
    bad = [path for path in examples.glob("INVALID_*.xml") if "change" not in path.name and "multiple" not in path.name]
    return sorted(good), sorted(bad + list(examples.glob("X0*.xml")))  # X01, X02: not procurement notices


def rejections(store: Path, run_id: int) -> list[tuple[str, str]]:
    return sorted(query(store, "SELECT url, reason FROM rejections WHERE run_id = ?", (run_id,)))


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    """One ingest of every file into a fresh store (the reference), then two ingests started
    at the same moment on another new store, the first with the first two thirds of the
    good files and the second with the last two thirds, both with the bad ones; once the
    first batch is in, staff run `status` beside them."""
    good, bad = ingest_files()
    files = good + bad
    third = len(good) // 3
    parts = (good[:2 * third] + bad, bad + good[third:])  # the middle third and the bad files are in both
    folder = tmp_path_factory.mktemp("ingest")
    config = write_full_config(folder, api_url="http://127.0.0.1:9")  # its ted source is never crawled here
    args = ("--config", str(config))
    reference = folder / "reference.db"
    alone = run_cli(*args, "--db", str(reference), "ingest", *map(str, files), env=ENV)
    assert alone.returncode == 1 and "rejected" in alone.stderr, alone.stdout + alone.stderr  # the invalid examples

    store = folder / "store.db"  # new: both create it at the same moment
    ingests = [popen(*args, "ingest", *map(str, part), log=folder / f"ingest-{n}.log") for n, part in enumerate(parts)]
    try:
        wait_until(lambda: (query(store, "SELECT count(*) FROM raw_documents") or [(0,)])[0][0] > 0,
                   timeout=120, what="the first batch of an ingest stored")
        alive = [ingest.poll() is None for ingest in ingests]
        checking = popen(*args, "status", "--format", "json", log=folder / "status.log")
        ingests.append(checking)
        results = [finish(ingest, folder / f"ingest-{n}.log") for n, ingest in enumerate(ingests[:2])]
        status = finish(checking, folder / "status.log")
    finally:
        for process in ingests:
            if process.poll() is None:
                kill(process)
    return {"config": config, "files": files, "bad": bad, "parts": parts, "reference": reference, "store": store,
            "alive": alive, "results": results, "pids": [ingest.pid for ingest in ingests[:2]], "status": status}


def test_two_ingests_started_at_once_with_overlapping_files_store_each_notice_once(ingested):
    store, reference = ingested["store"], ingested["reference"]
    assert ingested["alive"] == [True, True]  # both were under way when the first batch landed
    code, output = ingested["status"]  # and staff asking for the status meanwhile got it
    assert code == 0 and json.loads(output)["store"]["notices"] > 0, output
    runs = {pid: (run_id, outcome, fetched) for run_id, pid, outcome, fetched in query(
        store, "SELECT id, pid, outcome, json_extract(stats, '$.fetched') FROM runs WHERE job = 'ingest'")}
    assert [runs.get(pid, (None, None, None))[1:] for pid in ingested["pids"]] \
        == [("ok", len(part)) for part in ingested["parts"]], runs  # two finished runs, each of its own files
    (reference_run,) = query(reference, "SELECT id FROM runs WHERE job = 'ingest'")
    bad = rejections(reference, reference_run[0])
    # by the resolved path, as ingest names a file (the corpus may sit behind a symlink)
    assert [url for url, _ in bad] == sorted(file.resolve().as_uri() for file in ingested["bad"])
    for (code, output), pid, part in zip(ingested["results"], ingested["pids"], ingested["parts"], strict=True):
        # Both name the same bad files for the same reasons as one ingest did, and only them.
        assert code == 1 and not TROUBLE.search(output), output
        assert f"{len(part)} files in" in output, output
        assert rejections(store, runs[pid][0]) == bad
        assert sorted(line.split(": ", 1)[0] for line in output.splitlines() if "rejected file://" in line) \
            == [f"  rejected {url}" for url, _ in bad]

    # Each notice once, with the same values as one ingest of all the files.
    alone = sorted(cli_json("--db", str(reference), "tenders"), key=lambda record: record["id"])
    together = sorted(cli_json("--db", str(store), "tenders"), key=lambda record: record["id"])
    assert len({record["id"] for record in together}) == len(together) == len(alone)
    assert together == alone
    raw = "SELECT count(*), count(DISTINCT source || ' ' || sha256) FROM raw_documents"
    kept = query(store, raw)
    assert kept == query(reference, raw) and kept[0][0] == kept[0][1]  # no document kept twice


# -- 3. two digest runs at once -----------------------------------------------------------------------


def test_two_digest_runs_at_once_send_each_address_one_digest(quiet, tmp_path):
    handler = RecordingHandler(delay=0.3)  # a slow server: both runs are mid-batch together
    smtp = SmtpServer(handler)
    try:
        config = write_full_config(tmp_path, api_url="http://127.0.0.1:9", smtp_port=smtp.port)
        source = sqlite3.connect(quiet["config"].parent / "store.db")
        with sqlite3.connect(tmp_path / "store.db") as copy:  # the quietly crawled and matched store
            source.backup(copy)
        source.close()
        args = ("--config", str(config), "digest", "--as-of", AS_OF)
        due = run_cli(*args, "--dry-run", env=ENV)
        planned = int(re.search(r"dry run: (\d+) digests", due.stdout)[1])
        assert planned >= 3, due.stdout + due.stderr
        runs = [popen(*args, "--send", log=tmp_path / f"digest-{n}.log") for n in range(2)]
        results = [finish(run, tmp_path / f"digest-{n}.log") for n, run in enumerate(runs)]
    finally:
        smtp.stop()

    for code, output in results:
        assert code == 0 and not TROUBLE.search(output), output
    deliveries = cli_json("--config", str(config), "deliveries")
    assert len(deliveries) == planned and {row["state"] for row in deliveries} == {"sent"}, deliveries
    digests = cli_json("--config", str(config), "runs", "--job", "digest")
    assert [run["outcome"] for run in digests] == ["ok", "ok"], digests
    received = Counter(address for message in handler.messages for address in message.rcpt_tos)
    assert received == Counter({row["email"]: 1 for row in deliveries}), received  # one each, nobody twice


# -- 4. reading the store while an ingest writes ---------------------------------------------------


def write_lock_free(store: Path) -> bool:
    """Whether a writer could take the store's write lock right now (it is given back at once)."""
    db = sqlite3.connect(store, timeout=0, isolation_level=None)
    try:
        db.execute("BEGIN IMMEDIATE")
        db.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        db.close()


def test_status_answers_while_an_ingest_holds_the_write_lock(tmp_path):
    files = sorted(TED.rglob("*.xml"))  # 1,264 notices: the ingest is still busy when it is stopped
    config = write_full_config(tmp_path, api_url="http://127.0.0.1:9")
    store = tmp_path / "store.db"
    ingest = popen("--config", str(config), "ingest", *map(str, files), log=tmp_path / "ingest.log")
    try:
        wait_until(lambda: (query(store, "SELECT count(*) FROM raw_documents") or [(0,)])[0][0] > 0,
                   timeout=120, what="the ingest's first batch stored")
        # Freeze the ingest inside a batch, holding the write lock, as a slow batch would
        # (a stop between two batches does not count: let it go on and try again).
        def frozen_holding_the_lock():
            assert ingest.poll() is None, "the ingest ended before it could be stopped inside a batch"
            ingest.send_signal(signal.SIGSTOP)
            if not write_lock_free(store):
                return True
            ingest.send_signal(signal.SIGCONT)
            return False
        wait_until(frozen_holding_the_lock, timeout=60, what="the ingest stopped inside a batch", interval=0.05)
        assert ingest.poll() is None
        (stored,) = query(store, "SELECT count(*) FROM notices")[0]
        # Staff ask for the status meanwhile: reading needs no write lock (WAL), so it answers
        # with what is committed. The timeout is a hang guard: it takes a second or two.
        status = popen("--config", str(config), "status", "--format", "json", log=tmp_path / "status.log")
        code, output = finish(status, tmp_path / "status.log", timeout=15)
    finally:
        kill(ingest)  # its store is thrown away
    assert code == 0, output
    assert json.loads(output)["store"]["notices"] == stored
