"""Shared test helpers: where the real notices are, the notice schema, running the CLI as a real process.

Two sets of real notices: the repo's own (``tests/data/corpus`` and ``sample/notices``, always
there: every test that needs only *some* real notices reads these) and the full shared corpus
(``../shared/corpus`` or ``$TENDERMATCH_CORPUS``). Tests that need the full corpus are marked
``corpus`` (or ask for the ``corpus`` fixture); without it they are left out with one summary line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import traceback
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest

from tests import configs
from tests.chromium import chromium  # noqa: F401 (a fixture for every test folder)
from tests.forked import can_fork, run_forked

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"  # in-repo test data, provenance in tests/data/SOURCES.md
SMALL_CORPUS = DATA / "corpus"  # real notices copied from the shared corpus, in its layout
CORPUS = Path(os.environ.get("TENDERMATCH_CORPUS", ROOT.parent / "shared" / "corpus"))
# The contract `tenders --format json` follows; an in-repo copy so schema checks always run.
SCHEMA_PATH = Path(os.environ.get("TENDERMATCH_SCHEMA", DATA / "notice.schema.json"))
SAMPLE = ROOT / "sample" / "notices"

# Corpus files that sample/notices already ships (sample/SOURCES.md), not copied twice:
# (corpus folder, sample folder, file name prefix in the sample), and two renamed files.
_SAMPLE_FOLDERS = (
    ("eforms_sdk/examples/notices/", "eforms", "sdk-"),
    ("ted_r209/op-ted_ted-rdf-mapping/dk/", "ted-dk", ""),
    ("ted_api_json/op-ted_ted-rdf-conversion-pipeline/", "ted-api", ""),
    ("ocds/apa999_CFServer1/", "ocds", ""),
)
_REAL_EFORMS = "eforms_real/op-ted_ted-rdf-conversion-pipeline/eforms_samples/"
_SAMPLE_FILES = {
    _REAL_EFORMS + "eforms_sdk_v1.7/eform_subtype_15/665431-2023.xml": "eforms/665431-2023-slagelse.xml",
    _REAL_EFORMS + "eforms_sdk_v1.6/eform_subtype_10/262891-2023.xml": "eforms/262891-2023.xml",
}


def real_notice(relative: str) -> Path:
    """The repo's own copy of the corpus file at ``relative`` (its path in the shared corpus):
    in tests/data/corpus or sample/notices. A test that reads it runs without the corpus."""
    path = SMALL_CORPUS / relative
    if path.is_file():
        return path
    if relative in _SAMPLE_FILES:
        return SAMPLE / _SAMPLE_FILES[relative]
    for corpus_folder, sample_folder, prefix in _SAMPLE_FOLDERS:
        if relative.startswith(corpus_folder) and "/" not in relative[len(corpus_folder):]:
            path = SAMPLE / sample_folder / (prefix + relative[len(corpus_folder):])
            if path.is_file():
                return path
    # A test author's slip, not a missing corpus: say what to do instead of skipping.
    raise FileNotFoundError(f"{relative}: not in tests/data/corpus or sample/notices; copy it there from "
                            f"the corpus and list it in tests/data/SOURCES.md, or mark the test 'corpus'")


def real_notices(corpus_folder: str, suffixes: tuple[str, ...] = (".xml", ".json", ".jsonl")) -> list[Path]:
    """Every in-repo copy of a file under ``corpus_folder`` (tests/data/corpus and the sample)."""
    found = [p for p in (SMALL_CORPUS / corpus_folder).rglob("*") if p.is_file()]
    for corpus_path, sample_path in _SAMPLE_FILES.items():
        if corpus_path.startswith(corpus_folder):
            found.append(SAMPLE / sample_path)
    for folder, sample_folder, prefix in _SAMPLE_FOLDERS:
        if folder.startswith(corpus_folder):
            found += (SAMPLE / sample_folder).glob(prefix + "*")
    return sorted(p for p in found if p.suffix in suffixes)


def notice_schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


# Commands that only read and write the store (and send mail): run in this process with
# click's CliRunner, ten times cheaper than a fresh interpreter. Those that start Scrapy's
# reactor (once per process), a server or the scheduler run in a process of their own.
IN_PROCESS_COMMANDS = frozenset({"ingest", "tenders", "sources", "reparse", "match", "log", "profiles", "digest",
                                 "deliveries", "unsubscribe", "runs", "status", "hash-password", "users"})
_GLOBAL_OPTIONS = frozenset({"--config", "--db", "--profiles"})


def _command_of(args: tuple[str, ...]) -> str | None:
    position = 0
    while position < len(args) and args[position] in _GLOBAL_OPTIONS:
        position += 2
    return args[position] if position < len(args) else None


def cli_env(*extra: dict[str, str] | None) -> dict[str, str]:
    """The environment of a `tendermatch` process a test starts: this one's, without the
    developer's own TENDERMATCH_CONFIG (it must not leak into tests), then ``extra`` in order."""
    env = {key: value for key, value in os.environ.items() if key != "TENDERMATCH_CONFIG"}
    for more in extra:
        env.update(more or {})
    return env


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 300,
            check: bool = False, input: str | None = None) -> subprocess.CompletedProcess:
    """Run `tendermatch ARGS` as an operator would: its exit code, standard output and
    standard error. Store-only commands run in this process, the others (crawl, demo) in a
    process forked from this one (tests/forked.py); a crash prints its traceback to standard error, as
    Python's would."""
    args = tuple(str(arg) for arg in args)
    full_env = cli_env(env)
    if _command_of(args) in IN_PROCESS_COMMANDS:
        result = _run_in_process(args, cwd=cwd or ROOT, env=env or {}, input=input)
    elif input is None and can_fork():
        result = run_forked(list(args), cwd=cwd or ROOT, env=full_env, timeout=timeout)
    else:
        result = subprocess.run([sys.executable, "-m", "tendermatch", *args], cwd=cwd or ROOT, env=full_env,
                                capture_output=True, text=True, timeout=timeout, input=input)
    if check and result.returncode != 0:
        raise AssertionError(
            f"tendermatch {' '.join(args)} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
        )
    return result


def _run_in_process(args: tuple[str, ...], *, cwd: Path, env: dict, input: str | None = None,
                    ) -> subprocess.CompletedProcess:
    from click.testing import CliRunner

    from tendermatch.worker.cli import cli

    runner = CliRunner(env={"TENDERMATCH_CONFIG": None, **env})
    previous = Path.cwd()
    os.chdir(cwd)  # relative paths in ARGS mean what they would to the process
    try:
        outcome = runner.invoke(cli, list(args), prog_name="tendermatch", catch_exceptions=True, input=input)
    finally:
        os.chdir(previous)
    stderr = outcome.stderr
    if outcome.exception is not None and not isinstance(outcome.exception, SystemExit):
        stderr += "Traceback (most recent call last):\n" + "".join(
            traceback.format_exception(outcome.exception))
    return subprocess.CompletedProcess(["tendermatch", *args], outcome.exit_code, outcome.stdout, stderr)


@pytest.fixture
def config_file(tmp_path: Path) -> Callable[..., Path]:
    """``config_file(crawler=..., sources=..., ...)`` writes a config into the test's tmp_path
    and returns its path: tests/configs.py's write_config with the folder bound, taking the
    same keyword arguments (``name`` for a file other than tendermatch.toml)."""
    return partial(configs.write_config, tmp_path)


@pytest.fixture
def corpus() -> Path:
    """The full shared corpus; a test asking for it is a corpus-wide test (see below)."""
    if not CORPUS.is_dir():
        pytest.skip(f"corpus not found at {CORPUS} (set TENDERMATCH_CORPUS)")
    return CORPUS


# -- corpus-wide tests: left out with one line when the corpus is not there -----------------------

_CORPUS_LEFT_OUT = pytest.StashKey[int]()


def needs_corpus(item: pytest.Item) -> bool:
    return item.get_closest_marker("corpus") is not None or "corpus" in getattr(item, "fixturenames", ())


def pytest_report_header(config: pytest.Config) -> str:
    found = "found" if CORPUS.is_dir() else "not found: corpus-wide tests are skipped"
    return f"tendermatch corpus: {CORPUS} ({found}); notice schema: {SCHEMA_PATH}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # pytest-xdist hands out whole files in this order. The load test first, so its minutes
    # run beside the rest of the suite instead of after it; then the other slow files (real
    # worker, crawl and serve processes, which mostly wait), so that the suite ends on short
    # in-process tests that keep both cores busy. In collection order the worker files came
    # last, and for the last 90 s of a 420 s run only they ran; in this order the next run took
    # 367 s, its four processes ending within 12 s of each other.
    items.sort(key=lambda item: (item.get_closest_marker("load") is None, item.get_closest_marker("slow") is None))
    if CORPUS.is_dir():
        return
    # Deselected rather than skipped one by one: -ra would list each of them (hundreds of lines
    # from the per-file tests); the terminal summary says once why they did not run.
    left_out = [item for item in items if needs_corpus(item)]
    if left_out:
        items[:] = [item for item in items if not needs_corpus(item)]
        config.hook.pytest_deselected(items=left_out)
    config.stash[_CORPUS_LEFT_OUT] = len(left_out)
    if hasattr(config, "workeroutput"):  # a pytest-xdist worker: the controller prints the line
        config.workeroutput["corpus_left_out"] = len(left_out)


def pytest_testnodedown(node, error) -> None:  # pytest-xdist's hook (in the [test] extra)
    """Every worker collects (and leaves out) the same tests: take the count from one."""
    count = getattr(node, "workeroutput", {}).get("corpus_left_out", 0)
    node.config.stash[_CORPUS_LEFT_OUT] = max(node.config.stash.get(_CORPUS_LEFT_OUT, 0), count)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if CORPUS.is_dir():
        return
    left_out = config.stash.get(_CORPUS_LEFT_OUT, 0)
    terminalreporter.write_line(f"{left_out} corpus-wide tests skipped: no corpus at {CORPUS} "
                                f"(set TENDERMATCH_CORPUS to the shared corpus folder)")


@pytest.fixture(scope="session")
def validator():
    # Neither is optional: the schema ships in tests/data and jsonschema in the [test] extra,
    # so a schema check that cannot run fails instead of silently vanishing.
    import jsonschema

    if not SCHEMA_PATH.is_file():
        pytest.fail(f"notice schema not found at {SCHEMA_PATH} (tests/data/notice.schema.json, or TENDERMATCH_SCHEMA)")
    return jsonschema.Draft202012Validator(notice_schema(), format_checker=jsonschema.FormatChecker())
