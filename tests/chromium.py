"""Headless Chromium (Debian's `chromium`) for the tests that look at pages as a person
would: the ``chromium`` fixture skips with the install command where it is absent, and
``run_chromium`` runs it once, with ``read_png`` to read its screenshots."""

from __future__ import annotations

import os
import shutil
import signal
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def chromium() -> str:
    if CHROMIUM is None:
        pytest.skip("chromium not installed: apt-get install chromium")
    return CHROMIUM


def run_chromium(binary: str, url: str, folder: Path, *action: str, window: tuple[int, int] = (800, 1600),
                 timeout: float = 60, hint: str = "") -> tuple[bytes, str]:
    """Chromium's standard output and log (console messages included) for ``url``, with a
    fresh profile in ``folder``. In its own process group, so a page that hangs it (a
    script's alert() waits forever headless) ends with all its helpers."""
    profile = folder / f"chromium-profile-{len(list(folder.glob('chromium-profile-*')))}"
    command = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", "--enable-logging=stderr",
               "--v=0", f"--user-data-dir={profile}", f"--window-size={window[0]},{window[1]}", *action, url]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        output, errors = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        pytest.fail(f"chromium did not finish {url} in {timeout:.0f} s{hint}")
    log = errors.decode(errors="replace")
    assert process.returncode == 0, f"chromium exited {process.returncode}:\n{log[-3000:]}"
    return output, log


def read_png(path: Path) -> np.ndarray:
    """An 8-bit RGB or RGBA, non-interlaced PNG (as Chromium writes screenshots) as a
    (height, width, channels) array."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    position, header, compressed = 8, None, []
    while position < len(data):
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        body = data[position + 8:position + 8 + length]
        position += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            compressed.append(body)
        elif kind == b"IEND":
            break
    assert header is not None, "no IHDR"
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, f"unexpected PNG format {header}"
    channels = 3 if colour == 2 else 4
    stride = width * channels
    raw = np.frombuffer(zlib.decompress(b"".join(compressed)), dtype=np.uint8).reshape(height, stride + 1)
    image = np.empty((height, stride), dtype=np.uint8)
    previous = np.zeros(stride, dtype=np.uint8)
    for y in range(height):
        method, row = raw[y, 0], raw[y, 1:]
        if method == 0:  # None
            line = row.copy()
        elif method == 1:  # Sub: a running sum along each channel (uint8 wraps like the spec)
            line = row.reshape(width, channels).cumsum(axis=0, dtype=np.uint8).reshape(stride)
        elif method == 2:  # Up
            line = row + previous
        elif method in (3, 4):  # Average, Paeth: each byte depends on the one before it
            out, up, filtered = bytearray(stride), previous.tobytes(), row.tobytes()
            for i in range(stride):
                left = out[i - channels] if i >= channels else 0
                above = up[i]
                if method == 3:
                    predicted = (left + above) >> 1
                else:
                    corner = up[i - channels] if i >= channels else 0
                    estimate = left + above - corner
                    to_left, to_above, to_corner = abs(estimate - left), abs(estimate - above), abs(estimate - corner)
                    predicted = (left if to_left <= to_above and to_left <= to_corner
                                 else above if to_above <= to_corner else corner)
                out[i] = (filtered[i] + predicted) & 0xFF
            line = np.frombuffer(bytes(out), dtype=np.uint8)
        else:
            raise AssertionError(f"row {y}: unknown PNG filter {method}")
        image[y] = line
        previous = line
    return image.reshape(height, width, channels)
