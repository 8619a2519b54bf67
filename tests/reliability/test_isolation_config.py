"""Paths an operator names that are not what they should be: a config, store, profile
folder, log file or outbox that is `/dev/zero`, a FIFO, a folder or a file; notice files
given to `ingest` that are devices or FIFOs; a store on a read-only file system. Each is
one line naming the file and what it is, at once (never read until memory runs out, never
a hang), and never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, SAMPLE, run_cli

FAST = 30  # seconds: each command answers at once; a read of /dev/zero or a FIFO never would


@pytest.fixture
def fifo(tmp_path) -> Path:
    path = tmp_path / "pipe.toml"
    os.mkfifo(path)
    return path


@pytest.mark.parametrize("kind", ["device", "fifo", "folder"])
def test_a_config_that_is_a_device_a_fifo_or_a_folder_is_one_line_at_once(tmp_path, fifo, kind):
    path = {"device": Path("/dev/zero"), "fifo": fifo, "folder": tmp_path}[kind]
    result = run_cli("--config", str(path), "sources", timeout=FAST)
    what = {"device": "a device", "fifo": "a FIFO (named pipe)", "folder": "a folder"}[kind]
    assert result.returncode == 2
    assert result.stderr.strip() == f"Error: cannot read config: {path}: is {what}, not a regular file"


@pytest.mark.parametrize(("section", "key", "value", "expected"), [
    ("store", "path", "/dev/zero", "[store] path: /dev/zero is a device, not a regular file"),
    ("store", "path", "{fifo}", "[store] path: {fifo} is a FIFO (named pipe), not a regular file"),
    ("matcher", "profiles", "/dev/zero", "[matcher] profiles: /dev/zero is a device, not a folder or a regular file"),
    ("matcher", "profiles", "{fifo}",
     "[matcher] profiles: {fifo} is a FIFO (named pipe), not a folder or a regular file"),
    ("worker", "log_file", "{fifo}", "[worker] log_file: {fifo} is a FIFO (named pipe), not a regular file"),
    ("digest", "outbox", "{config}", "[digest] outbox: {config} is a regular file, not a folder"),
])
def test_paths_in_the_config_that_are_devices_fifos_or_the_wrong_kind_are_one_line(tmp_path, fifo, section, key,
                                                                                   value, expected):
    config = tmp_path / "tendermatch.toml"
    values = {"fifo": str(fifo), "config": str(config)}
    # By hand: the bad config under test, one section with the one bad path.
    config.write_text(f'[{section}]\n{key} = "{value.format(**values)}"\n', encoding="utf-8")
    for command in (["sources"], ["tenders"], ["run"]):
        result = run_cli("--config", str(config), *command, timeout=FAST)
        assert result.returncode == 2, result.stdout + result.stderr
        assert result.stderr.strip() == f"Error: {config}: {expected.format(**values)}"


def test_ingest_rejects_devices_and_fifos_by_name_and_stores_the_rest(tmp_path, fifo):
    good = SAMPLE / "ted-dk" / "095237-2016.xml"
    db = tmp_path / "store.db"
    result = run_cli("--db", str(db), "ingest", "/dev/zero", str(fifo), str(good), timeout=FAST)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "ingest: fetched 1, new 1" in result.stdout
    assert "rejected /dev/zero: is a device, not a folder or a regular file" in result.stderr
    assert f"rejected {fifo}: is a FIFO (named pipe), not a folder or a regular file" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_store_on_a_read_only_file_system_is_one_line_naming_it(tmp_path):
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"`unshare -rm` is not permitted here ({probe.stderr.strip()}): no read-only mount")
    folder = tmp_path / "readonly"
    folder.mkdir()
    db = folder / "store.db"
    run_cli("--db", str(db), "ingest", str(SAMPLE / "ted-dk"), check=True)
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    expected = f"Error: {db}: the store cannot be written (a read-only file, folder or file system)"
    for command in ("ingest " + str(SAMPLE / "eforms"), "match --profiles-ignored", "tenders", "status"):
        args = command.replace(" --profiles-ignored", "")
        script = (f"mount --bind {folder} {folder} && mount -o remount,ro,bind {folder} || exit 97\n"
                  f"{sys.executable} -m tendermatch --db {db} --profiles {ROOT / 'config' / 'profiles'} {args}")
        result = subprocess.run(["unshare", "-rm", "sh", "-c", script], cwd=ROOT, capture_output=True, text=True,
                                timeout=FAST, check=False)
        if result.returncode == 97:
            pytest.skip(f"cannot remount read-only in a user namespace here: {result.stderr.strip()}")
        assert result.returncode == 2, (command, result.stdout, result.stderr)
        assert result.stderr.startswith(expected) and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_a_fifo_or_device_among_the_profile_files_is_named_and_the_others_load(tmp_path):
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    for path in (ROOT / "config" / "profiles").glob("*.toml"):
        (profiles / path.name).write_bytes(path.read_bytes())
    os.mkfifo(profiles / "pipe.toml")
    (profiles / "zero.toml").symlink_to("/dev/zero")
    result = run_cli("--profiles", str(profiles), "profiles", "validate", timeout=FAST)
    assert result.returncode == 1
    assert f"{profiles / 'pipe.toml'}: is a FIFO (named pipe), not a regular file" in result.stdout + result.stderr
    assert f"{profiles / 'zero.toml'}: is a device, not a regular file" in result.stdout + result.stderr
    assert "10 valid, 2 invalid" in result.stdout
