"""Shared test helpers: where the corpus is, the notice schema, running the CLI as a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.chromium import chromium  # noqa: F401 (a fixture for every test folder)

ROOT = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("TENDERMATCH_CORPUS", ROOT.parent / "shared" / "corpus"))
SCHEMA_PATH = Path(os.environ.get("TENDERMATCH_SCHEMA", ROOT.parent / "shared" / "spec" / "notice.schema.json"))
SAMPLE = ROOT / "sample" / "notices"


def notice_schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 300,
            check: bool = False) -> subprocess.CompletedProcess:
    """Run `tendermatch ARGS` in a fresh process (Scrapy's reactor runs once per process)."""
    full_env = {key: value for key, value in os.environ.items() if key != "TENDERMATCH_CONFIG"}
    full_env.update(env or {})  # the developer's own TENDERMATCH_CONFIG must not leak into tests
    result = subprocess.run([sys.executable, "-m", "tendermatch", *args], cwd=cwd or ROOT, env=full_env,
                            capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"tendermatch {' '.join(args)} exited {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture
def corpus() -> Path:
    if not CORPUS.is_dir():
        pytest.skip(f"corpus not found at {CORPUS} (set TENDERMATCH_CORPUS)")
    return CORPUS


@pytest.fixture(scope="session")
def validator():
    jsonschema = pytest.importorskip("jsonschema")
    if not SCHEMA_PATH.is_file():
        pytest.skip(f"notice schema not found at {SCHEMA_PATH} (set TENDERMATCH_SCHEMA)")
    return jsonschema.Draft202012Validator(notice_schema(), format_checker=jsonschema.FormatChecker())
