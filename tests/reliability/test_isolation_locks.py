"""One store, however it is spelled, has one lock: two `digest --send` runs on one store
named through two spellings (``./store.db`` from its folder, and a symlink elsewhere) send
each address one digest; a second `tendermatch run` on the store through a symlink to it
(``--db`` as typed) is refused while the first runs."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

from tests.conftest import ROOT, cli_env
from tests.notifier.delivery import ENV, cli_json, workspace
from tests.notifier.smtp_server import RecordingHandler
from tests.reliability.helpers import finish
from tests.worker.worker_process import RunningWorker, write_worker_config


def started(*args: str, cwd: Path, log: Path) -> subprocess.Popen:
    env = cli_env(ENV)
    with open(log, "wb") as out:
        return subprocess.Popen([sys.executable, "-m", "tendermatch", *args], cwd=cwd, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


def test_two_digest_senders_through_a_relative_path_and_a_symlink_send_each_address_once(base, servers, tmp_path):
    handler = RecordingHandler(delay=0.3)  # slow: both runs are mid-batch at the same time
    smtp = servers(handler)
    space = workspace(base, tmp_path, smtp.port)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "link.db").symlink_to(space.db)
    common = ("--config", str(space.config), "--profiles", str(space.profiles))
    send = ("digest", "--send", "--period", "2016-W01", "--as-of", "2016-01-01")
    runs = [started(*common, "--db", "./store.db", *send, cwd=tmp_path, log=tmp_path / "relative.log"),
            started(*common, "--db", str(elsewhere / "link.db"), *send, cwd=ROOT, log=tmp_path / "symlink.log")]
    results = [finish(run, tmp_path / name) for run, name in zip(runs, ("relative.log", "symlink.log"), strict=True)]

    for code, output in results:
        assert code == 0 and "Traceback" not in output, output
    deliveries = space.deliveries()
    assert deliveries and {row["state"] for row in deliveries} == {"sent"}, deliveries
    received = Counter(address for message in handler.messages for address in message.rcpt_tos)
    assert received == Counter({row["email"]: 1 for row in deliveries}), received  # nobody twice
    assert len(cli_json(*common, "runs", "--job", "digest", "--format", "json", env=ENV)) == 2


def test_a_second_worker_on_the_same_store_through_a_symlink_is_refused(tmp_path):
    first_folder, second_folder = tmp_path / "first", tmp_path / "second"
    first_folder.mkdir()
    second_folder.mkdir()
    (second_folder / "link.db").symlink_to(first_folder / "store.db")
    first = write_worker_config(first_folder, [])
    second = write_worker_config(second_folder, [])
    worker = RunningWorker(first)
    try:
        worker.wait_for(r"worker started", timeout=60)
        through_link = str(second_folder / "link.db")  # --db is taken as typed
        refused = subprocess.run([sys.executable, "-m", "tendermatch", "--config", str(second), "--db", through_link,
                                  "run"], cwd=ROOT,
                                 env=cli_env(ENV),
                                 capture_output=True, text=True, timeout=60)
        assert worker.process.poll() is None  # the first worker runs on
    finally:
        worker.stop()
    assert refused.returncode != 0
    assert f"another worker (pid {worker.pid}) is already running on this store" in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr
