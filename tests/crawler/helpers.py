"""Config helpers of the web crawl tests (tests/crawler/test_crawl_web.py), shared with the
reliability suite: a ``[[sources]]`` block as TOML text and the config that crawls them."""

from __future__ import annotations

import json
from pathlib import Path

from tests import configs


def toml_table(values: dict) -> str:
    return "{" + ", ".join(f"{key} = {json.dumps(value, ensure_ascii=False)}" for key, value in values.items()) + "}"


def source_block(name: str, kind: str, url: str, **extra) -> str:
    lines = ["[[sources]]", f'name = "{name}"', f'kind = "{kind}"', f'url = "{url}"']
    for key, value in extra.items():
        rendered = toml_table(value) if isinstance(value, dict) else json.dumps(value, ensure_ascii=False)
        lines.append(f"{key} = {rendered}")
    return "\n".join(lines) + "\n"


def write_web_crawl_config(folder: Path, blocks: list[str]) -> str:
    """The config in ``folder`` that crawls ``blocks`` (source_block text), with two retries."""
    return str(configs.write_config(folder, crawler={"retry_times": 2}, sources=blocks))
