"""`tendermatch ARGS` in a process forked from the test process.

A fresh interpreter spends a second of CPU importing Scrapy, Twisted and sqlite-utils before
it does anything; the suite starts a few hundred of them. A child forked from a test process
that has imported them already is still a process of its own (its own pid, signals, reactor,
exit code and standard streams), so what the tests check of it is what an operator's
`tendermatch` does after start-up. `python -m tendermatch` itself stays covered by the tests
that start it with subprocess (the crawl children of the worker, the lock and fault tests).

Only while the test process has not started a Twisted reactor of its own: a child would
inherit it (``can_fork`` says). Not for a process whose memory a test measures: a forked
child's peak counts the pages it shares with the test process.
"""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import IO


def can_fork() -> bool:
    return hasattr(os, "fork") and "twisted.internet.reactor" not in sys.modules


class ForkedCli:
    """A running `tendermatch ARGS` in a forked child, with the part of subprocess.Popen
    the tests use: ``pid``, ``poll()``, ``wait()``, ``send_signal()``, ``kill()``, ``returncode``."""

    def __init__(self, args: list[str], *, cwd: Path, env: dict[str, str], stdout: IO[bytes],
                 stderr: IO[bytes]):
        from tendermatch.worker.cli import cli  # imported before the fork: what the child is spared

        self.args = ["tendermatch", *args]
        self.returncode: int | None = None
        sys.stdout.flush()
        sys.stderr.flush()
        self.pid = os.fork()
        if self.pid == 0:
            _child(cli, args, cwd=cwd, env=env, stdout=stdout.fileno(), stderr=stderr.fileno())

    def poll(self) -> int | None:
        if self.returncode is None:
            done, status = os.waitpid(self.pid, os.WNOHANG)
            if done:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(self.args, timeout or 0)
            time.sleep(0.02)
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def _child(cli, args: list[str], *, cwd: Path, env: dict[str, str], stdout: int, stderr: int) -> None:
    """Become `tendermatch ARGS`; never returns into pytest."""
    code = 70
    try:
        # Nothing of the test process is finalised here: its objects are frozen out of garbage
        # collection and the child ends by os._exit, so an inherited SQLite connection is
        # never closed here (closing a descriptor of a file releases this process's locks on
        # it). Its descriptors stay open for the same reason: SQLite shares one record of
        # each open database file between the connections of a process, the child's included.
        gc.freeze()
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(env)
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        os.dup2(stdout, 1)
        os.dup2(stderr, 2)
        signal.set_wakeup_fd(-1)  # a signal here must not wake the test process's event loop
        sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115 - the child's own streams
        sys.stdout = open(1, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
        # Python's own start-up handlers: pytest's (timeout, interrupt) are the parent's.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGALRM):
            signal.signal(sig, signal.SIG_DFL)
        import logging

        logging.root.handlers.clear()  # pytest's capture handlers are the parent's
        logging.root.setLevel(logging.WARNING)
        try:
            cli.main(args=args, prog_name="tendermatch", standalone_mode=True)
            code = 0
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
        except BaseException:  # printed as Python would, then exit 1
            traceback.print_exc()
            code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def run_forked(args: list[str], *, cwd: Path, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    """Run `tendermatch ARGS` forked, to the end: like subprocess.run(capture_output=True, text=True)."""
    import tempfile

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = ForkedCli(args, cwd=cwd, env=env, stdout=out, stderr=err)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise
        out.seek(0)
        err.seek(0)
        assert process.returncode is not None
        return subprocess.CompletedProcess(process.args, process.returncode, out.read().decode("utf-8", "replace"),
                                           err.read().decode("utf-8", "replace"))


def start_cli(args: list[str], *, cwd: Path, env: dict[str, str], stdout: IO[bytes], stderr: IO[bytes],
              fresh: bool = False) -> ForkedCli | subprocess.Popen[bytes]:
    """Start `tendermatch ARGS`: forked when it can be, else (or when ``fresh``: a test that
    measures the process's memory) as `python -m tendermatch` in a fresh interpreter."""
    if can_fork() and not fresh:
        return ForkedCli(args, cwd=cwd, env=env, stdout=stdout, stderr=stderr)
    return subprocess.Popen([sys.executable, "-m", "tendermatch", *args], cwd=cwd, env=env, stdout=stdout,
                            stderr=stderr)
