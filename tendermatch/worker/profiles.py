"""Reading enterprise profiles from their TOML files (one enterprise per file).

A bad file is reported (file, key, what is wrong) and skipped; the others are used. A
valid profile with a keyword that can never match is used and reported as a warning.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from tendermatch.localfiles import LocalFileError, read_regular_file
from tendermatch.matcher.profiles import (
    LIMITS,
    Profile,
    ProfileError,
    keyword_problems,
    parse_profile,
    usable_keyword,
)


@dataclass
class ProfileSet:
    """The profiles read from a folder (or one file), one line per file that was skipped
    (``errors``) and one line per problem of a profile that was kept (``warnings``)."""

    path: Path
    profiles: list[Profile] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def get(self, profile_id: str) -> Profile | None:
        return next((profile for profile in self.profiles if profile.id == profile_id), None)

    def without_usable_keyword(self) -> list[Profile]:
        """The profiles that have keywords but not one that can match: they are matched on
        their CPV codes only, or match nothing when they have none (a profile still loads
        with them: a stray keyword must not cost the enterprise its digest)."""
        return [profile for profile in self.profiles
                if profile.keywords and not any(usable_keyword(keyword) for keyword in profile.keywords)]


def profile_files(path: Path) -> list[Path]:
    """The .toml files of a folder (sorted), or the file itself."""
    if path.is_dir():
        return sorted(file for file in path.glob("*.toml") if not file.is_dir())  # a FIFO is named, not skipped
    return [path] if path.exists() else []


def read_profile(file: Path) -> Profile:
    """One profile file as a ``Profile``; any problem is a ``ProfileError`` whose key is
    "file" when the file itself cannot be read as TOML."""
    try:  # a regular file only (a FIFO named x.toml would block the load for ever), read up to the limit
        raw = read_regular_file(file, max_bytes=LIMITS.file_bytes)
    except LocalFileError as error:
        size = file.stat().st_size if file.is_file() else 0
        if size > LIMITS.file_bytes:  # a 100 MB file is refused unread
            raise ProfileError("file", f"{size:,} bytes, at most {LIMITS.file_bytes:,} (a profile is a few kilobytes)")\
                from None
        raise ProfileError("file", str(error).removeprefix(f"{file}: ")) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise ProfileError("file", f"not UTF-8 (byte {error.start})") from None
    except tomllib.TOMLDecodeError as error:
        raise ProfileError("file", f"TOML syntax error: {error}") from None
    except RecursionError:  # tomllib recurses once per nested array or inline table
        raise ProfileError("file", "TOML nested too deeply") from None
    except ValueError as error:  # an integer of thousands of digits (Python's int limit)
        raise ProfileError("file", f"TOML value out of range: {error}") from None
    return parse_profile(data, source=str(file))


def load_profiles(path: str | Path) -> ProfileSet:
    """Every valid profile under ``path``; invalid or duplicate ones go to ``errors``,
    keywords that can never match to ``warnings``. A missing folder is an error line too
    (with no profiles), not an exception."""
    path = Path(path)
    found = ProfileSet(path=path)
    if not path.exists():
        found.errors.append(f"{path}: no such profile folder or file")
        return found
    by_id: dict[str, Profile] = {}  # ten thousand profiles: a look-up each, not a scan each
    for file in profile_files(path):
        try:
            profile = read_profile(file)
        except ProfileError as error:
            line = f"{file}: {error.message}" if error.key == "file" else f"{file}: {error.key}: {error.message}"
            found.errors.append(line)
            continue
        except Exception as error:
            found.errors.append(f"{file}: cannot be read as a profile ({type(error).__name__}: {error})")
            continue
        first = by_id.setdefault(profile.id, profile)
        if first is not profile:
            found.errors.append(f"{file}: id: {profile.id!r} is already used by {first.source}")
            continue
        found.profiles.append(profile)
        found.warnings.extend(f"{file}: {key}: {message}" for key, message in keyword_problems(profile))
    return found
