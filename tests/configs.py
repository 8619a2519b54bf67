"""The one way tests write a tendermatch config: ``write_config`` with the sections as
Python values (the ``config_file`` fixture in tests/conftest.py binds it to a test's folder).
Each test module states only what its tests need; every config starts from the same base
(a store beside the config, no download delay, no retries)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

BASE_CRAWLER = {"download_delay": 0, "retry_times": 0}
SENDER = "Udbudsvagten <udbud@kk.example>"


class Raw(str):
    """TOML text written as it is (an inline table a test keeps as text, say)."""


def toml_value(value: Any) -> str:
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str | Path):
        return json.dumps(str(value), ensure_ascii=False)  # a JSON string is a TOML basic string
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{key} = {toml_value(item)}" for key, item in value.items()) + " }"
    if isinstance(value, Sequence):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    raise TypeError(f"no TOML for {value!r}")


def toml_table(header: str, values: Mapping[str, Any]) -> str:
    return "\n".join([header, *(f"{key} = {toml_value(value)}" for key, value in values.items() if value is not None)])


def smtp_section(port: int, **more: Any) -> dict[str, Any]:
    """[smtp] for the test SMTP server on loopback ``port``: no TLS, no retries."""
    return {"host": "127.0.0.1", "port": port, "security": "none", "retries": 0, **more}


def write_config(folder: Path, *, crawler: Mapping[str, Any] | None = None, matcher: Mapping[str, Any] | None = None,
                 worker: Mapping[str, Any] | None = None,
                 digest: Mapping[str, Any] | None = None, smtp: Mapping[str, Any] | None = None,
                 serve: Mapping[str, Any] | None = None, sources: Sequence[Mapping[str, Any] | str] = (),
                 store: str = "store.db", extra: str = "", name: str = "tendermatch.toml") -> Path:
    """Write ``folder/name`` and return its path. ``crawler`` adds to (or overrides) the base
    crawler settings; a section left None is left out; ``sources`` are tables or TOML text
    (``[[sources]]`` blocks a test builds itself); ``extra`` is TOML text put after [serve]."""
    parts = [toml_table("[store]", {"path": store}), toml_table("[crawler]", {**BASE_CRAWLER, **(crawler or {})})]
    sections = {"[worker]": worker, "[matcher]": matcher, "[digest]": digest, "[smtp]": smtp, "[serve]": serve}
    for header, values in sections.items():
        if values is not None:
            parts.append(toml_table(header, values))
    if extra:
        parts.append(extra)
    parts += [source if isinstance(source, str) else toml_table("[[sources]]", source) for source in sources]
    path = folder / name
    path.write_text("\n\n".join(parts) + "\n", encoding="utf-8")
    return path
