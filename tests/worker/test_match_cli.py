"""`tendermatch profiles`, `match`, `log` and the matching part of `demo`, end to end in real
processes: real notices ingested into a temporary store, a temporary profile folder."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil

import pytest

from tests.conftest import ROOT, SAMPLE, run_cli
from tests.matcher.helpers import CLI_NOTICES

LOG_KEYS = {"profile_id", "notice_id", "lot_id", "score", "rank", "reasons", "matched_at"}
BROKEN = 'id = "broken"\nname = "Broken"\nemails = ["kontakt@broken.example"]\nkeywords = ["kantine"]\ncpv = ["5550"]\n'


def cli_json(*args: str):
    result = run_cli(*args)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A store with a few real notices, a profile folder with one valid and one invalid
    profile, matched once as of 2016-01-01."""
    folder = tmp_path_factory.mktemp("match-cli")
    inbox = folder / "notices"
    inbox.mkdir()
    for name in CLI_NOTICES:
        shutil.copy(SAMPLE / name, inbox / name.replace("/", "-"))
    profiles = folder / "profiles"
    profiles.mkdir()
    shutil.copy(ROOT / "config" / "profiles" / "maaltidsvaerkstedet.toml", profiles)
    (profiles / "broken.toml").write_text(BROKEN, encoding="utf-8")
    db = folder / "store.db"
    ingest = run_cli("--db", str(db), "ingest", str(inbox))
    assert ingest.returncode == 0, ingest.stdout + ingest.stderr
    match = run_cli("--db", str(db), "--profiles", str(profiles), "match", "--as-of", "2016-01-01")
    assert match.returncode == 0, match.stdout + match.stderr
    log = cli_json("--db", str(db), "log", "--format", "json")
    return {"folder": folder, "db": db, "profiles": profiles, "match": match, "log": log}


def test_profiles_validate_names_the_file_and_key_and_list_shows_the_valid_one(workspace):
    profiles = str(workspace["profiles"])
    validate = run_cli("--profiles", profiles, "profiles", "validate")
    assert validate.returncode == 1
    problems = [line for line in validate.stdout.splitlines() if "broken.toml" in line]
    assert len(problems) == 1
    assert problems[0].startswith(str(workspace["profiles"] / "broken.toml") + ": cpv: ")
    assert "1 valid, 1 invalid" in validate.stdout

    listing = run_cli("--profiles", profiles, "profiles", "list")
    assert listing.returncode == 0, listing.stderr
    assert "maaltidsvaerkstedet" in listing.stdout and "Måltidsværkstedet" in listing.stdout
    assert "broken" not in listing.stdout
    assert "broken.toml: cpv:" in listing.stderr  # reported, not listed


def test_match_writes_the_log_and_log_shows_it_as_json_csv_and_by_notice(workspace):
    match = workspace["match"]
    assert "broken.toml" in match.stderr  # the invalid profile is skipped, loudly
    assert "maaltidsvaerkstedet" in match.stdout
    items = workspace["log"]
    assert items
    for item in items:
        assert set(item) == LOG_KEYS
        assert isinstance(item["reasons"], list) and item["reasons"]
        assert item["profile_id"] == "maaltidsvaerkstedet"
    ids = {item["notice_id"] for item in items}
    assert {"ted:095237-2016", "ted:433955-2016"} <= ids
    assert not ids & {"ted:044742-2022", "ted:180710-2017"}  # outside DK01; cancelled
    assert sorted(item["rank"] for item in items) == list(range(1, len(items) + 1))

    only = cli_json("--db", str(workspace["db"]), "log", "--notice", "ted:095237-2016", "--format", "json")
    assert [item["notice_id"] for item in only] == ["ted:095237-2016"]
    assert only[0]["lot_id"] == "2"  # the Amagerværket lot: nearer the profile's max_value

    table = run_cli("--db", str(workspace["db"]), "log", "--format", "csv")
    assert table.returncode == 0, table.stderr
    rows = list(csv.reader(io.StringIO(table.stdout)))
    assert rows[0] == ["profile_id", "notice_id", "lot_id", "score", "rank", "reasons", "matched_at"]
    assert len(rows) == len(items) + 1
    assert all(row[5] for row in rows[1:])


def test_matching_again_gives_the_same_rows(workspace):
    again = run_cli("--db", str(workspace["db"]), "--profiles", str(workspace["profiles"]), "match",
                    "--as-of", "2016-01-01")
    assert again.returncode == 0, again.stderr
    items = cli_json("--db", str(workspace["db"]), "log", "--format", "json")
    assert len(items) == len(workspace["log"])

    def stable(item):
        return item["profile_id"], item["notice_id"], item["lot_id"], item["score"], item["rank"]

    assert sorted(map(stable, items)) == sorted(map(stable, workspace["log"]))


def test_match_with_an_unknown_profile_exits_2_with_one_line(workspace):
    valid_only = workspace["profiles"] / "maaltidsvaerkstedet.toml"
    result = run_cli("--db", str(workspace["db"]), "--profiles", str(valid_only), "match", "--profile", "unknown")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error:") and "'unknown'" in lines[0] and "maaltidsvaerkstedet" in lines[0]
    assert "Traceback" not in result.stderr


def test_demo_prints_each_sample_profile_with_its_matches_and_reasons(tmp_path):
    result = run_cli("demo", "--state-dir", str(tmp_path / "demo"), "--top", "10", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert re.search(r"against 10 sample profiles: \d+ matches", out)
    for name, profile_id in (("Måltidsværkstedet", "maaltidsvaerkstedet"), ("RentFokus", "rent-fokus"),
                             ("Broen til Job", "broen-til-job")):
        assert re.search(rf"^{re.escape(name)} \({profile_id}\): \d+ match(es)?$", out, re.MULTILINE), name
    # Måltidsværkstedet's block: numbered matches, each followed by its reasons
    block = out.split("Måltidsværkstedet (maaltidsvaerkstedet):", 1)[1].split("\n\n", 1)[0]
    assert "(ted:095237-2016)" in block
    assert re.search(r"^\s+1\. \[\d+\] .+\(\S+\)$", block, re.MULTILINE)
    assert re.search(r"^\s+\+ .*kantinedrift", block, re.MULTILINE)
    assert "Log:" in out
