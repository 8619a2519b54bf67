"""Reading local files that an operator names (the config, profiles, notice files): only
regular files, and only up to a size. A path that is a device (``/dev/zero``), a FIFO or a
socket would otherwise be read until memory runs out, or block for ever.

Shared by the worker and the stages like the standard library is: it knows nothing of them.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from .errors import TendermatchError

# Far above any real config or profile (a few KB), far below what would hurt memory.
MAX_TEXT_FILE_BYTES = 4 * 1024 * 1024


class LocalFileError(TendermatchError, ValueError):
    """A local file that cannot be read as asked: missing, not a regular file, too large,
    or unreadable. The message is one line and names the path."""


def kind_of(mode: int) -> str:
    """What a file is, in words: 'a regular file', 'a folder', 'a FIFO', 'a device', ..."""
    if stat.S_ISREG(mode):
        return "a regular file"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a special file"


def read_regular_file(path: str | Path, *, max_bytes: int = MAX_TEXT_FILE_BYTES) -> bytes:
    """The bytes of the regular file at ``path``, at most ``max_bytes`` of them. Raises
    LocalFileError for anything else. Opened without blocking (a FIFO with no writer would
    block ``open``) and checked on the open file, so a swap after a check changes nothing."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except FileNotFoundError:
        raise LocalFileError(f"{path}: not found") from None
    except OSError as error:
        raise LocalFileError(f"{path}: cannot read: {error.strerror}") from None
    mode = os.fstat(descriptor).st_mode
    if not stat.S_ISREG(mode):
        os.close(descriptor)
        raise LocalFileError(f"{path}: is {kind_of(mode)}, not a regular file")
    with os.fdopen(descriptor, "rb") as handle:
        try:
            content = handle.read(max_bytes + 1)
        except OSError as error:
            raise LocalFileError(f"{path}: cannot read: {error.strerror}") from None
    if len(content) > max_bytes:
        raise LocalFileError(f"{path}: larger than {max_bytes / 2**20:.0f} MB")
    return content


def check_kind(path: Path, *, folder: bool = False, file: bool = False) -> str | None:
    """Why ``path``, where it exists, is not what is expected (a folder and/or a regular
    file), or None (also when it does not exist yet: it will be created)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return None
    except OSError as error:
        return f"cannot be read: {error.strerror}"
    if (folder and stat.S_ISDIR(mode)) or (file and stat.S_ISREG(mode)):
        return None
    wanted = " or ".join(word for word, wanted in (("a folder", folder), ("a regular file", file)) if wanted)
    return f"is {kind_of(mode)}, not {wanted}"
