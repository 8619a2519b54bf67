"""`tendermatch run` as a real process for the worker tests: a config with short schedules
(6-field cron, seconds first), a local HTTP source, and helpers to wait for log lines,
send signals and read `status` and `runs`."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tests.conftest import ROOT, run_cli
from tests.crawler.servers import StaticSite

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
    an outbox and the given sources. Returns its path."""
    profiles = folder / "profiles"
    if not profiles.exists():
        shutil.copytree(ROOT / "config" / "profiles", profiles)
    path = folder / "tendermatch.toml"
    path.write_text(
        '[store]\npath = "store.db"\n\n'
        f"[worker]\n{worker}\n"
        '[matcher]\nprofiles = "profiles"\n\n'
        f'[digest]\nschedule = "{digest_schedule}"\noutbox = "outbox"\nsender = "Udbudsvagten <udbud@kk.example>"\n'
        'base_url = "https://udbud.kk.example"\n\n'
        '[crawler]\ndownload_delay = 0\nretry_times = 0\n\n'
        + extra + "\n" + "\n".join(sources),
        encoding="utf-8")
    return path


def web_site() -> StaticSite:
    """The municipal fixture pages (an RSS feed at /udbud_feed.xml) on a loopback port."""
    return StaticSite(WEB)


class RunningWorker:
    """`tendermatch --config CONFIG run` in its own process, logging to ``worker.log``."""

    def __init__(self, config: Path, *args: str, env: dict[str, str] | None = None):
        self.config = config
        self.log_path = config.parent / f"worker-{time.monotonic_ns()}.log"
        full_env = {key: value for key, value in os.environ.items() if key != "TENDERMATCH_CONFIG"}
        full_env.update(WORKER_ENV)
        full_env.update(env or {})
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - stays open while the worker runs; stop()/kill() close it
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tendermatch", "--config", str(config), "run", "--log-level", "DEBUG", *args],
            cwd=ROOT, env=full_env, stdout=self._log, stderr=subprocess.STDOUT)

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


def runs(config: Path, job: str | None = None) -> list[dict]:
    """The run history, oldest first."""
    result = run_cli("--config", str(config), "runs", "--format", "json", "--limit", "1000",
                     *(["--job", job] if job else []), env=WORKER_ENV)
    assert result.returncode == 0, result.stderr
    return list(reversed(json.loads(result.stdout)))
