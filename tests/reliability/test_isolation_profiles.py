"""One profile never costs another (the issue's points 4 and 13), in real `tendermatch`
processes on real sample notices: a profile with a bad address, a value out of bounds, a
file too large or too deep to read, or keywords that can never match is named (file, key,
reason) by `profiles validate`, and `match` and `digest` go on for every other profile,
as fast as without it; a profile left with no usable keyword is reported, never silent."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tendermatch.store import Store
from tests.conftest import ROOT, SAMPLE, run_cli
from tests.matcher.helpers import CLI_NOTICES

SAMPLE_PROFILES = ROOT / "config" / "profiles"
NINE = sorted(path.stem for path in SAMPLE_PROFILES.glob("*.toml"))[:9]
AS_OF = "2016-01-01"


def profile_toml(profile_id: str, *, emails: str = '["kontakt@vaskeriet.example"]',
                 keywords: str = '["kantinedrift", "frokostordning"]', extra: str = "") -> str:
    """A profile file; each argument is TOML text, so a test can put any value in any key."""
    return (f'id = "{profile_id}"\nname = "Prøve {profile_id}"\nemails = {emails}\nkeywords = {keywords}\n'
            f'cpv = ["55500000"]\n{extra}')


def folder_of(path: Path, sample_ids: list[str], files: dict[str, str | bytes]) -> Path:
    """A profile folder: copies of these sample profiles and these files."""
    path.mkdir(parents=True)
    for profile_id in sample_ids:
        shutil.copy(SAMPLE_PROFILES / f"{profile_id}.toml", path)
    for name, content in files.items():
        if isinstance(content, bytes):
            (path / name).write_bytes(content)
        else:
            (path / name).write_text(content, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def notices_db(tmp_path_factory) -> Path:
    """A store with a few real notices (canteens, meals, cleaning), never matched; tests copy it."""
    folder = tmp_path_factory.mktemp("profiles-isolation")
    inbox = folder / "notices"
    inbox.mkdir()
    for name in CLI_NOTICES:
        shutil.copy(SAMPLE / name, inbox / name.replace("/", "-"))
    db = folder / "store.db"
    run_cli("--db", str(db), "ingest", str(inbox), check=True)
    return db


def store_copy(notices_db: Path, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(notices_db, path)
    return path


def match_log(db: Path) -> dict[str, set[tuple]]:
    """profile -> its match-log rows (notice, lot, score, rank)."""
    log = run_cli("--db", str(db), "log", "--format", "json", check=True)
    rows: dict[str, set[tuple]] = {}
    for item in json.loads(log.stdout):
        rows.setdefault(item["profile_id"], set()).add((item["notice_id"], item["lot_id"], item["score"], item["rank"]))
    return rows


def lines_about(output: str, file: Path) -> list[str]:
    return [line for line in output.splitlines() if str(file) in line]


def no_traceback(result: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in result.stdout + result.stderr, result.stderr[-3000:]


# -- point 13: one profile cannot make matching slow for everyone ------------------------------


def test_a_profile_of_100000_long_keywords_is_refused_and_the_nine_others_match_as_fast_as_without_it(
        notices_db, tmp_path):
    good = folder_of(tmp_path / "good", NINE, {})
    # 100,000 keywords of 1,000 characters (100 MB): each a different word, repeated.
    keywords = ",\n".join('"' + (f"vare{number} " * 200)[:1000] + '"' for number in range(100_000))
    huge_text = profile_toml("enorm", keywords=f"[\n{keywords}\n]")
    bad = folder_of(tmp_path / "bad", NINE, {"enorm.toml": huge_text})
    huge = bad / "enorm.toml"
    assert huge.stat().st_size > 100_000_000

    validate = run_cli("--profiles", str(bad), "profiles", "validate", timeout=600)
    no_traceback(validate)
    assert validate.returncode == 1
    named = lines_about(validate.stdout, huge)
    assert len(named) == 1 and "at most" in named[0], validate.stdout
    assert "9 valid, 1 invalid" in validate.stdout

    alone_db = store_copy(notices_db, tmp_path / "alone" / "store.db")
    started = time.perf_counter()
    alone = run_cli("--db", str(alone_db), "--profiles", str(good), "match", "--as-of", AS_OF)
    alone_seconds = time.perf_counter() - started
    assert alone.returncode == 0, alone.stderr

    beside_db = store_copy(notices_db, tmp_path / "beside" / "store.db")
    # The bad file must cost next to nothing. Merely parsing it as TOML takes about 10 s on these
    # machines (and matching its keywords far longer), so 2 s over three times the run without it
    # still catches a loader that reads it, while a 0.1 s run slowed to 0.3 s by a busy machine
    # (CI, stop 24) does not fail.
    allowed = 3 * alone_seconds + 2
    started = time.perf_counter()
    try:
        beside = run_cli("--db", str(beside_db), "--profiles", str(bad), "match", "--as-of", AS_OF,
                         timeout=max(allowed, 60))
    except subprocess.TimeoutExpired:
        pytest.fail(f"match with the 100 MB profile beside the nine ran over {max(allowed, 60):.0f} s"
                    f" (without it: {alone_seconds:.1f} s)")
    beside_seconds = time.perf_counter() - started
    no_traceback(beside)
    assert beside.returncode == 0, beside.stderr
    assert lines_about(beside.stderr, huge), beside.stderr  # the skipped profile is named
    assert beside_seconds < allowed, (beside_seconds, alone_seconds)
    # The nine got exactly what they get without the bad one.
    alone_log, beside_log = match_log(alone_db), match_log(beside_db)
    assert alone_log and set(alone_log) <= set(NINE)
    assert beside_log == alone_log


BOUNDS = {  # file -> (TOML text, the key named, words of the reason)
    "many-keywords.toml": (profile_toml("many-keywords", keywords=json.dumps([f"ord{n}" for n in range(5000)])),
                           "keywords", "5,000 keywords, at most 200"),
    "long-keyword.toml": (profile_toml("long-keyword", keywords=json.dumps(["kantine" + "x" * 993])),
                          "keywords", "1,000 characters, at most 100"),
    "many-cpv.toml": (profile_toml("many-cpv").replace('cpv = ["55500000"]',
                                                       "cpv = " + json.dumps([f"55{n:06d}" for n in range(5000)])),
                      "cpv", "5,000 CPV codes, at most 200"),
    "many-regions.toml": (profile_toml("many-regions", extra="regions = " + json.dumps(["DK01"] * 1000)),
                          "regions", "1,000 regions"),
    "many-exclude.toml": (profile_toml("many-exclude",
                                       extra="exclude = " + json.dumps([f"ikke{n}" for n in range(800)])),
                          "exclude", "800 exclude words"),
    "many-emails.toml": (profile_toml("many-emails", emails=json.dumps([f"k{n}@vask.example" for n in range(1000)])),
                         "emails", "1,000 addresses"),
    "long-description.toml": (profile_toml("long-description", extra=f'description = "{"ord " * 60_000}"'),
                              "description", "characters, at most"),
    "long-id.toml": (profile_toml("x" * 10_000), "id", "10,000 characters"),
    "name-with-header.toml": (profile_toml("name-with-header").replace(
        'name = "Prøve name-with-header"', 'name = "Prøve\\r\\nBcc: x@evil.example"'), "name", "line break"),
    "max-items-huge.toml": (profile_toml("max-items-huge", extra="max_items = 1" + "0" * 30), "max_items", "at most"),
    "max-value-400-digits.toml": (profile_toml("max-value-400-digits", extra="max_value = 1" + "0" * 400),
                                  "max_value", "at most"),
    "max-value-inf.toml": (profile_toml("max-value-inf", extra="max_value = inf"), "max_value", "positive amount"),
    "nested.toml": (profile_toml("nested", extra="notes = " + "[" * 50_000 + "]" * 50_000), None, "nested"),
    "not-utf8.toml": (profile_toml("not-utf8").encode("utf-8").replace("Prøve".encode(), b"Pr\xf8ve"), None,
                      "UTF-8"),
}


def test_every_bound_and_unreadable_value_names_the_file_and_key_and_the_good_profile_still_matches_and_gets_its_digest(
        notices_db, tmp_path):
    folder = folder_of(tmp_path / "profiles", ["maaltidsvaerkstedet"],
                       {name: text for name, (text, _, _) in BOUNDS.items()})
    validate = run_cli("--profiles", str(folder), "profiles", "validate")
    no_traceback(validate)
    assert validate.returncode == 1
    for name, (_, key, reason) in BOUNDS.items():
        named = lines_about(validate.stdout, folder / name)
        assert len(named) == 1, (name, validate.stdout)
        line = named[0]
        assert len(line) < 400, line  # one readable line, not the value that was refused
        if key is not None:
            assert line.startswith(f"{folder / name}: {key}: "), line
        assert reason in line, line
    assert f"1 valid, {len(BOUNDS)} invalid" in validate.stdout

    db = store_copy(notices_db, tmp_path / "store.db")
    match = run_cli("--db", str(db), "--profiles", str(folder), "match", "--as-of", AS_OF)
    no_traceback(match)
    assert match.returncode == 0, match.stderr
    for name in BOUNDS:
        assert lines_about(match.stderr, folder / name), name
    assert f"profiles: {len(BOUNDS)} skipped as invalid" in match.stdout
    assert set(match_log(db)) == {"maaltidsvaerkstedet"}

    digest = run_cli("--db", str(db), "--profiles", str(folder), "digest", "--dry-run", "--as-of", AS_OF)
    no_traceback(digest)
    assert digest.returncode == 0, digest.stderr
    assert "kontakt@maaltidsvaerkstedet.example" in digest.stdout
    for name in BOUNDS:
        assert lines_about(digest.stderr, folder / name), name


# -- point 4: addresses -----------------------------------------------------------------------

BAD_ADDRESSES = {  # file -> (TOML list of addresses, words of the reason)
    "nul.toml": ('["kontakt\\u0000@vaskeriet.example"]', "invalid characters before the @-sign: U+0000"),
    "crlf.toml": ('["kontakt@vaskeriet.example\\r\\nBcc: spam@evil.example"]', "after the @-sign"),
    "line-separator.toml": ('["kontakt\\u2028@vaskeriet.example"]', "LINE SEPARATOR"),
    "display-name.toml": ('["Vaskeriet <kontakt@vaskeriet.example>"]', "display name"),
    "two-in-one.toml": ('["a@vaskeriet.example;b@vaskeriet.example"]', "invalid characters"),
    "no-domain.toml": ('["kontakt@localhost"]', "period"),
    "second-bad.toml": ('["ok@vaskeriet.example", "kontakt\\u200b@vaskeriet.example"]', "ZERO WIDTH SPACE"),
}
GOOD_ADDRESSES = {  # profile id -> (TOML list, what the store keeps)
    "dansk-lokal": ('["søren@kommune.example"]', ["søren@kommune.example"]),
    "dansk-domaene": ('["info@bøger.example", "INFO@BØGER.EXAMPLE"]', ["info@bøger.example"]),  # "info" is caseless
    "store-bogstaver": ('["Kontakt@Vaskeriet.EXAMPLE", "Kontakt@vaskeriet.example"]', ["Kontakt@vaskeriet.example"]),
}


def test_bad_addresses_are_named_with_the_reason_and_skipped_alone_and_good_ones_are_kept_normalised(
        notices_db, tmp_path):
    files = {name: profile_toml(Path(name).stem, emails=emails) for name, (emails, _) in BAD_ADDRESSES.items()}
    files |= {f"{profile_id}.toml": profile_toml(profile_id, emails=emails)
              for profile_id, (emails, _) in GOOD_ADDRESSES.items()}
    folder = folder_of(tmp_path / "profiles", ["maaltidsvaerkstedet"], files)

    validate = run_cli("--profiles", str(folder), "profiles", "validate")
    no_traceback(validate)
    assert validate.returncode == 1
    for name, (_, reason) in BAD_ADDRESSES.items():
        named = lines_about(validate.stdout, folder / name)
        assert len(named) == 1, (name, validate.stdout)
        assert named[0].startswith(f"{folder / name}: emails: "), named[0]
        assert reason in named[0], named[0]
    for profile_id in GOOD_ADDRESSES:
        assert not lines_about(validate.stdout, folder / f"{profile_id}.toml"), validate.stdout
    assert f"{1 + len(GOOD_ADDRESSES)} valid, {len(BAD_ADDRESSES)} invalid" in validate.stdout

    db = store_copy(notices_db, tmp_path / "store.db")
    match = run_cli("--db", str(db), "--profiles", str(folder), "match", "--as-of", AS_OF)
    no_traceback(match)
    assert match.returncode == 0, match.stderr
    for name in BAD_ADDRESSES:
        assert lines_about(match.stderr, folder / name), name
    store = Store.open(db)
    try:
        for profile_id, (_, kept) in GOOD_ADDRESSES.items():
            assert json.loads(store.profile(profile_id)["emails"]) == kept, profile_id
        for name in BAD_ADDRESSES:
            assert store.profile(Path(name).stem) is None, name
    finally:
        store.close()
    assert "ted:095237-2016" in {notice for notice, *_ in match_log(db)["maaltidsvaerkstedet"]}


# -- point 13: keywords that can never match --------------------------------------------------


def test_keywords_that_can_never_match_are_flagged_and_a_profile_left_without_one_is_reported_by_match(
        notices_db, tmp_path):
    patterns = '[".*", "(a+)+$", "!!!", "og i til", "service", "kantine(drift"]'
    files = {
        # Regular-expression-looking and empty keywords beside one real one (written oddly).
        "moenstre.toml": profile_toml("moenstre", keywords=patterns, extra='exclude = ["???"]'),
        # Only generic words and punctuation, but CPV codes: matched on those alone.
        "kun-generisk.toml": profile_toml("kun-generisk", keywords='["service", "levering og drift", "[.*]"]'),
        # Nothing that can match and no CPV code: it could never get a digest (still loaded:
        # the fix is in the file, and `match` says so).
        "intet.toml": profile_toml("intet", keywords='["!!!", ".*", "a"]').replace('cpv = ["55500000"]\n', ""),
    }
    folder = folder_of(tmp_path / "profiles", ["maaltidsvaerkstedet"], files)

    validate = run_cli("--profiles", str(folder), "profiles", "validate")
    no_traceback(validate)
    assert validate.returncode == 1
    flagged = lines_about(validate.stdout, folder / "moenstre.toml")
    for keyword in ("'.*'", "'(a+)+$'", "'!!!'", "'og i til'"):
        assert any(line.startswith(f"{folder / 'moenstre.toml'}: keywords: {keyword} can never match")
                   for line in flagged), (keyword, flagged)
    assert any(line.startswith(f"{folder / 'moenstre.toml'}: keywords: 'service' is only generic words")
               for line in flagged), flagged
    assert any(line.startswith(f"{folder / 'moenstre.toml'}: exclude: '???'") for line in flagged), flagged
    assert not any("kantine(drift" in line for line in flagged)  # read as the words "kantine drift"
    assert len(lines_about(validate.stdout, folder / "intet.toml")) == 3
    assert "4 valid, 0 invalid, 3 with keywords that can never match" in validate.stdout

    db = store_copy(notices_db, tmp_path / "store.db")
    match = run_cli("--db", str(db), "--profiles", str(folder), "match", "--as-of", AS_OF)
    no_traceback(match)
    assert match.returncode == 0, match.stderr
    reported = sorted(line for line in match.stderr.splitlines() if "no usable keyword" in line)
    assert len(reported) == 2, match.stderr
    assert reported[0].startswith(f"profile intet ({folder / 'intet.toml'}): keywords: no usable keyword")
    assert reported[0].endswith("it can match nothing (no CPV codes either)")
    assert reported[1].startswith(f"profile kun-generisk ({folder / 'kun-generisk.toml'}): keywords: no usable")
    assert reported[1].endswith("matched on its CPV codes only")
    assert "profiles: 0 skipped as invalid, 2 without a usable keyword" in match.stdout
    log = match_log(db)
    # "kantine(drift" is words, not a pattern: the canteen notice is found for it.
    assert "ted:095237-2016" in {notice for notice, *_ in log["moenstre"]}
    assert "ted:095237-2016" in {notice for notice, *_ in log["maaltidsvaerkstedet"]}
