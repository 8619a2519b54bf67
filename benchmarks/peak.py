"""Run a command and measure its own peak memory.

On Linux a child's peak resident memory (``ru_maxrss``) counts the memory of the process
that started it, up to its exec (the new program starts in the parent's copy): a test or
benchmark process holding 500 MB would make every command it runs look 500 MB big. So the
command is started by a small Python launcher, whose own ~10 MB is all it inherits, and the
launcher reports the command's ``ru_maxrss``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

# Runs in the launcher: start the command, wait for it, write "<exit code> <peak KiB>".
_LAUNCHER = (
    "import os, subprocess, sys\n"
    "process = subprocess.Popen(sys.argv[2:])\n"
    "_, status, usage = os.wait4(process.pid, 0)\n"
    "open(sys.argv[1], 'w').write(f'{os.waitstatus_to_exitcode(status)} {usage.ru_maxrss}')\n"
)


@dataclass
class Measured:
    returncode: int
    peak_mb: float  # the command's own peak resident memory (the largest of its processes)
    seconds: float
    stdout: str
    stderr: str


def run_with_peak(command: list[str], *, cwd: Path, env: dict[str, str], timeout: float) -> Measured:
    """Run ``command`` to its end: its exit code, peak memory, wall time and output. A
    command still running after ``timeout`` seconds is killed with its launcher (TimeoutError)."""
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        report = folder / "peak"
        with (folder / "out").open("w+b") as out, (folder / "err").open("w+b") as err:
            started = time.perf_counter()
            launcher = subprocess.Popen([sys.executable, "-c", _LAUNCHER, str(report), *command], cwd=cwd, env=env,
                                        stdout=out, stderr=err, start_new_session=True)
            try:
                launcher.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(launcher.pid, signal.SIGKILL)
                launcher.wait()
                raise TimeoutError(f"{' '.join(command)} ran over {timeout} s") from None
            seconds = time.perf_counter() - started
            out.seek(0)
            err.seek(0)
            stdout, stderr = out.read().decode("utf-8", "replace"), err.read().decode("utf-8", "replace")
        code, peak_kib = report.read_text().split()
    return Measured(int(code), int(peak_kib) / 1024, seconds, stdout, stderr)
