"""`tendermatch run` as a real process for the worker tests: a config with short schedules
(6-field cron, seconds first), a local HTTP source, and helpers to wait for log lines,
send signals and read `status` and `runs`."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests import configs
from tests.conftest import ROOT, cli_env, run_cli
from tests.crawler.servers import LocalServer, StaticSite
from tests.forked import start_cli

WEB = ROOT / "tests" / "fixtures" / "web"
SECRET = "worker-test-secret-0123456789"
WORKER_ENV = {"TENDERMATCH_SECRET": SECRET}


def feed_source(name: str, url: str, *, schedule: str = "*/3 * * * * *", timeout: int = 60,
                **extra: object) -> str:
    """A [[sources]] block of kind feed (the RSS fixture served over HTTP)."""
    lines = ["[[sources]]", f'name = "{name}"', 'kind = "feed"', f'url = "{url}"', f'schedule = "{schedule}"',
             f"timeout = {timeout}"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in extra.items()]
    return "\n".join(lines) + "\n"


def write_worker_config(folder: Path, sources: list[str], *, digest_schedule: str = "0 0 7 * * 1",
                        worker: str = "watch = 0.5\nstop_grace = 2\n", extra: str = "") -> Path:
    """A config in ``folder`` with the shipped sample profiles copied beside it, a store,
    an outbox and the given sources. ``worker``: the [worker] lines; ``extra``: more
    sections, as TOML text. Returns its path."""
    profiles = folder / "profiles"
    if not profiles.exists():
        shutil.copytree(ROOT / "config" / "profiles", profiles)
    return configs.write_config(
        folder, matcher={"profiles": "profiles"},
        digest={"schedule": digest_schedule, "outbox": "outbox", "sender": configs.SENDER,
                "base_url": "https://udbud.kk.example"},
        extra=f"[worker]\n{worker}\n{extra}", sources=sources)


def web_site() -> StaticSite:
    """The municipal fixture pages (an RSS feed at /udbud_feed.xml) on a loopback port."""
    return StaticSite(WEB)


class RunningWorker:
    """`tendermatch --config CONFIG run` in its own process, logging to ``worker.log``."""

    def __init__(self, config: Path, *args: str, env: dict[str, str] | None = None):
        self.config = config
        self.log_path = config.parent / f"worker-{time.monotonic_ns()}.log"
        full_env = cli_env(WORKER_ENV, env)
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - stays open while the worker runs; stop()/kill() close it
        command = ["--config", str(config), "run", "--log-level", "DEBUG", *args]
        # Forked from this process when it can be (tests/forked.py): a second of CPU less per worker.
        self.process = start_cli(command, cwd=ROOT, env=full_env, stdout=self._log, stderr=self._log)

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_for(self, pattern: str, *, count: int = 1, timeout: float = 45) -> list[str]:
        """Wait until ``pattern`` (a regex) matches ``count`` log lines; return the lines."""
        deadline = time.monotonic() + timeout
        while True:
            lines = [line for line in self.log().splitlines() if re.search(pattern, line)]
            if len(lines) >= count:
                return lines
            if self.process.poll() is not None and not lines[count - 1:]:
                raise AssertionError(f"worker exited ({self.process.returncode}) before {pattern!r}:\n{self.log()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {count} x {pattern!r} within {timeout} s:\n{self.log()}")
            time.sleep(0.1)

    def send(self, sig: signal.Signals) -> None:
        os.kill(self.process.pid, sig)

    def stop(self, *, timeout: float = 30) -> int:
        """SIGTERM, then the exit code."""
        if self.process.poll() is None:
            self.send(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        finally:
            self._log.close()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self._log.close()

    def children(self) -> list[int]:
        """Pids of the worker's child processes (its crawls)."""
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # pid (comm) state ppid ...: comm may hold spaces, so split after the last ')'.
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == self.process.pid:
                found.append(int(entry.name))
        return found


def wait_until(condition: Callable[[], object], *, timeout: float, what: str, interval: float = 0.1) -> object:
    """Poll ``condition`` until it returns something true (returned), or fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(interval)


def status(config: Path) -> dict:
    result = run_cli("--config", str(config), "status", "--format", "json", env=WORKER_ENV)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def job_table(report: dict) -> dict[str, str]:
    """status jobs as {id: schedule}."""
    return {job["id"]: job["schedule"] for job in report["jobs"]}


def probe_config(folder: Path, store: Path, profiles: Path) -> Path:
    """A second, valid config on the same store: `status` through it shows the running
    worker even while the worker's own config file is broken."""
    folder.mkdir(exist_ok=True)
    return configs.write_config(folder, store=str(store), matcher={"profiles": profiles}, name="probe.toml")


def runs(config: Path, job: str | None = None) -> list[dict]:
    """The run history, oldest first."""
    result = run_cli("--config", str(config), "runs", "--format", "json", "--limit", "1000",
                     *(["--job", job] if job else []), env=WORKER_ENV)
    assert result.returncode == 0, result.stderr
    return list(reversed(json.loads(result.stdout)))


FEED = "/udbud_feed.xml"
STOP_GRACE = 2
WORKER_SETTINGS = f"watch = 0.5\nstop_grace = {STOP_GRACE}\n"
ONCE = "0 0 7 * * 1"  # weekly: a never-crawled source runs once at start, then not again during a test


# -- crawl children, a slow site, the worker fixtures (tests/worker/conftest.py) -------------


def alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def is_crawl_child(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"tendermatch.worker.crawl_child" in cmdline


def crawl_children(worker: RunningWorker) -> list[int]:
    return [pid for pid in worker.children() if is_crawl_child(pid)]


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return inodes
    for fd in fds:
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    return inodes


def connected_to(pid: int, port: int) -> bool:
    """Whether process ``pid`` holds a TCP connection to 127.0.0.1:``port``."""
    inodes = _socket_inodes(pid)
    try:
        table = Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return False
    for line in table:
        fields = line.split()
        remote_port = int(fields[2].split(":")[1], 16)
        if remote_port == port and fields[9] in inodes:
            return True
    return False


def crawl_child_of(worker: RunningWorker, server: SlowSite, *, timeout: float = 30) -> int:
    """The pid of the worker's crawl child that is talking to ``server`` (its request hangs there)."""
    wait_until(lambda: server.feed_requests() >= 1, timeout=timeout, what="the crawl to ask the slow server")

    def find() -> int | None:
        found = [pid for pid in crawl_children(worker) if connected_to(pid, server.port)]
        return found[0] if found else None

    return wait_until(find, timeout=10, what="a crawl child connected to the slow server")  # type: ignore[return-value]


def log_lines(worker: RunningWorker, pattern: str) -> list[str]:
    return [line for line in worker.log().splitlines() if re.search(pattern, line)]


class SlowSite:
    """Serves the RSS fixture, each feed request held ``delay`` seconds while ``slow`` (an
    event cuts the wait short at teardown); robots.txt is answered at once with 404."""

    def __init__(self, *, delay: float = 60):
        self.delay = delay
        self.slow = True
        self.release = threading.Event()
        self.server = LocalServer(self._handle)
        self.url = self.server.url
        self.port = self.server.port

    def _handle(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        if path.split("?")[0] == "/robots.txt":
            return 404, {"Content-Type": "text/plain"}, b"not found"
        if self.slow:
            self.release.wait(self.delay)
        return 200, {"Content-Type": "application/xml"}, (WEB / FEED.lstrip("/")).read_bytes()

    def feed_requests(self) -> int:
        return len(self.server.hits_for(FEED))

    def close(self) -> None:
        self.release.set()
        self.server.close()


@pytest.fixture
def spawn() -> Iterator[Callable[..., RunningWorker]]:
    """Start workers; at teardown kill every one still running and any crawl child left behind
    (a SIGSTOPped child ignores the SIGTERM its dying parent asks Linux to send)."""
    started: list[RunningWorker] = []
    seen_children: set[int] = set()

    def start(config: Path, **kwargs: object) -> RunningWorker:
        worker = RunningWorker(config, **kwargs)  # type: ignore[arg-type]
        started.append(worker)
        return worker

    start.seen_children = seen_children  # type: ignore[attr-defined]
    yield start
    for worker in started:
        if worker.process.poll() is None:
            seen_children.update(crawl_children(worker))
        worker.kill()
    for pid in seen_children:
        if alive(pid) and is_crawl_child(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture
def slow_site() -> Iterator[SlowSite]:
    server = SlowSite(delay=60)
    yield server
    server.close()


def remember(spawn: Callable[..., RunningWorker], pid: int) -> int:
    spawn.seen_children.add(pid)  # type: ignore[attr-defined]
    return pid


def finished_runs(config: Path, job: str) -> list[dict]:
    return [run for run in runs(config, job) if run["outcome"] != "running"]
