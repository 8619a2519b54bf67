"""Reading enterprise profiles from their TOML files (one enterprise per file).

A bad file is reported (file, key, what is wrong) and skipped; the others are used.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from tendermatch.matcher.profiles import Profile, ProfileError, parse_profile


@dataclass
class ProfileSet:
    """The profiles read from a folder (or one file), and one line per file that was skipped."""

    path: Path
    profiles: list[Profile] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def get(self, profile_id: str) -> Profile | None:
        return next((profile for profile in self.profiles if profile.id == profile_id), None)


def profile_files(path: Path) -> list[Path]:
    """The .toml files of a folder (sorted), or the file itself."""
    if path.is_dir():
        return sorted(file for file in path.glob("*.toml") if file.is_file())
    return [path] if path.exists() else []


def load_profiles(path: str | Path) -> ProfileSet:
    """Every valid profile under ``path``; invalid or duplicate ones go to ``errors``.
    A missing folder is an error line too (with no profiles), not an exception."""
    path = Path(path)
    found = ProfileSet(path=path)
    if not path.exists():
        found.errors.append(f"{path}: no such profile folder or file")
        return found
    for file in profile_files(path):
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as error:
            found.errors.append(f"{file}: cannot read: {error}")
            continue
        except tomllib.TOMLDecodeError as error:
            found.errors.append(f"{file}: TOML syntax error: {error}")
            continue
        try:
            profile = parse_profile(data, source=str(file))
        except ProfileError as error:
            found.errors.append(f"{file}: {error.key}: {error.message}")
            continue
        first = found.get(profile.id)
        if first is not None:
            found.errors.append(f"{file}: id: {profile.id!r} is already used by {first.source}")
            continue
        found.profiles.append(profile)
    return found
