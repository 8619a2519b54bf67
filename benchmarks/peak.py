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
import time
from pathlib import Path
from typing import IO

# Runs in the launcher: start the command, wait for it, write "<exit code> <peak KiB>".
_LAUNCHER = (
    "import os, subprocess, sys\n"
    "process = subprocess.Popen(sys.argv[2:])\n"
    "_, status, usage = os.wait4(process.pid, 0)\n"
    "open(sys.argv[1], 'w').write(f'{os.waitstatus_to_exitcode(status)} {usage.ru_maxrss}')\n"
)


def run_with_peak(command: list[str], *, cwd: Path, env: dict[str, str], stdout: IO[bytes], stderr: IO[bytes],
                  report: Path, timeout: float) -> tuple[int, float, float]:
    """(exit code, peak MB, seconds) of ``command``; ``report`` is a scratch file. A command
    still running after ``timeout`` seconds is killed with its launcher (TimeoutError)."""
    started = time.perf_counter()
    launcher = subprocess.Popen([sys.executable, "-c", _LAUNCHER, str(report), *command], cwd=cwd, env=env,
                                stdout=stdout, stderr=stderr, start_new_session=True)
    try:
        launcher.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(launcher.pid, signal.SIGKILL)
        launcher.wait()
        raise TimeoutError(f"{' '.join(command)} ran over {timeout} s") from None
    seconds = time.perf_counter() - started
    code, peak_kib = report.read_text().split()
    return int(code), int(peak_kib) / 1024, seconds
