"""Enterprise profiles: the spec example and the sample files parse; every error names its key;
the worker reads a folder, reporting bad files (file, key) and keeping the good ones."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from tendermatch.matcher.profiles import (
    DEFAULT_MAX_ITEMS,
    Profile,
    ProfileError,
    parse_profile,
)
from tendermatch.worker.profiles import load_profiles
from tests.conftest import SCHEMA_PATH
from tests.matcher.helpers import PROFILES_DIR

SPEC_EXAMPLE = SCHEMA_PATH.parent / "profile.example.toml"

GOOD = {"id": "vask", "name": "Vaskeriet", "emails": ["kontakt@vaskeriet.example"], "keywords": ["vaskeri"]}


def error_key(data: dict) -> str:
    with pytest.raises(ProfileError) as caught:
        parse_profile(data)
    assert str(caught.value).startswith(caught.value.key + ":")
    return caught.value.key


# -- valid profiles --------------------------------------------------------------------------


def test_the_spec_example_parses():
    if not SPEC_EXAMPLE.is_file():
        pytest.skip(f"spec example not found at {SPEC_EXAMPLE}")
    profile = parse_profile(tomllib.loads(SPEC_EXAMPLE.read_text(encoding="utf-8")), source=str(SPEC_EXAMPLE))
    assert profile.id == "koekkenfaellesskabet"
    assert profile.name == "Køkkenfællesskabet"
    assert profile.emails == ("kontakt@koekkenfaellesskabet.example",)
    assert profile.language == "da"
    assert "kantine" in profile.keywords and profile.exclude == ("dyrefoder",)
    assert profile.cpv == ("55500000", "55300000")
    assert profile.regions == ("DK01", "DK02")
    assert profile.max_value == 3_000_000 and isinstance(profile.max_value, float)
    assert profile.reserved_eligible == ("res-ws",)
    assert profile.max_items == 20
    assert profile.source == str(SPEC_EXAMPLE)


def test_only_id_name_and_emails_are_required_with_something_to_match_on():
    profile = parse_profile({"id": "k", "name": "K", "emails": ["a@k.example"], "cpv": ["55500000"]})
    assert profile == Profile(id="k", name="K", emails=("a@k.example",), cpv=("55500000",))
    assert profile.language == "da" and profile.regions == () and profile.max_value is None
    assert profile.max_items == DEFAULT_MAX_ITEMS and profile.reserved_eligible == ()


def test_every_sample_profile_parses_and_is_clearly_invented():
    files = sorted(PROFILES_DIR.glob("*.toml"))
    assert 8 <= len(files) <= 12
    found = load_profiles(PROFILES_DIR)
    assert found.errors == []
    assert len(found.profiles) == len(files)
    assert len({profile.id for profile in found.profiles}) == len(files)
    for profile in found.profiles:
        assert Path(profile.source).stem == profile.id  # config/profiles/<id>.toml
        assert profile.emails, profile.id
        for address in profile.emails:
            assert address.rsplit("@", 1)[1].endswith(".example"), address  # never a real mailbox
        assert profile.keywords and profile.cpv, profile.id
        assert profile.language in ("da", "en")


# -- errors name the key ---------------------------------------------------------------------


def test_unknown_key_is_named():
    assert error_key({**GOOD, "keyword": ["vask"]}) == "keyword"  # a typo of "keywords"
    assert error_key({**GOOD, "max_valeu": 100}) == "max_valeu"


@pytest.mark.parametrize("key", ["id", "name", "emails"])
def test_missing_required_key_is_named(key):
    data = dict(GOOD)
    del data[key]
    assert error_key(data) == key


@pytest.mark.parametrize("address", [
    "kontakt", "kontakt@vaskeriet", "@vaskeriet.example", "kontakt@@vaskeriet.example",
    "a@vaskeriet.example, b@vaskeriet.example",  # two addresses in one string
    "Vaskeriet <kontakt@vaskeriet.example>", "kontakt@vaskeriet.example\nBcc: x@evil.example",
    "kontakt @vaskeriet.example",
])
def test_bad_email_is_named(address):
    assert error_key({**GOOD, "emails": [address]}) == "emails"


def test_emails_must_be_a_non_empty_list():
    assert error_key({**GOOD, "emails": "kontakt@vaskeriet.example"}) == "emails"
    assert error_key({**GOOD, "emails": []}) == "emails"


@pytest.mark.parametrize("code", ["9831000", "983100000", "98310000-3", "9831OOOO", "", 98310000])
def test_cpv_must_be_eight_digits(code):
    assert error_key({**GOOD, "cpv": [code]}) == "cpv"


def test_unknown_reserved_code_is_named():
    assert error_key({**GOOD, "reserved_eligible": ["sheltered"]}) == "reserved_eligible"
    assert error_key({**GOOD, "reserved_eligible": ["res-ws", "RES-WS"]}) == "reserved_eligible"


def test_other_bad_values_are_named():
    assert error_key({**GOOD, "id": "Vask og rens"}) == "id"
    assert error_key({**GOOD, "language": "de"}) == "language"
    assert error_key({**GOOD, "regions": ["Hovedstaden"]}) == "regions"
    assert error_key({**GOOD, "max_value": -5}) == "max_value"
    assert error_key({**GOOD, "max_value": "3 mio"}) == "max_value"
    assert error_key({**GOOD, "max_items": 0}) == "max_items"
    assert error_key({**GOOD, "keywords": "vaskeri"}) == "keywords"
    assert error_key({"id": "x", "name": "X", "emails": ["a@x.example"]}) == "keywords"  # nothing to match on


# -- reading a folder ------------------------------------------------------------------------

VALID_TOML = """id = "{id}"
name = "{name}"
emails = ["kontakt@{id}.example"]
keywords = ["vaskeri", "linned"]
cpv = ["98310000"]
"""


def test_a_folder_with_one_bad_file_gives_the_good_profiles_and_one_error_line(tmp_path):
    (tmp_path / "a-vask.toml").write_text(VALID_TOML.format(id="a-vask", name="A"), encoding="utf-8")
    (tmp_path / "c-vask.toml").write_text(VALID_TOML.format(id="c-vask", name="C"), encoding="utf-8")
    bad = tmp_path / "b-bad.toml"
    bad.write_text(VALID_TOML.format(id="b-bad", name="B").replace('["98310000"]', '["9831"]'), encoding="utf-8")
    (tmp_path / "notes.txt").write_text("not a profile")

    found = load_profiles(tmp_path)
    assert [profile.id for profile in found.profiles] == ["a-vask", "c-vask"]
    assert len(found.errors) == 1
    line = found.errors[0]
    assert "\n" not in line
    assert line.startswith(f"{bad}: cpv: ")
    assert "8-digit" in line
    assert found.get("c-vask").source == str(tmp_path / "c-vask.toml")
    assert found.get("b-bad") is None


def test_toml_syntax_errors_and_a_missing_folder_are_error_lines_not_exceptions(tmp_path):
    (tmp_path / "broken.toml").write_text('id = "x\nname = ', encoding="utf-8")
    found = load_profiles(tmp_path)
    assert found.profiles == [] and len(found.errors) == 1 and str(tmp_path / "broken.toml") in found.errors[0]
    missing = load_profiles(tmp_path / "nowhere")
    assert missing.profiles == [] and len(missing.errors) == 1


def test_one_file_can_be_given_instead_of_a_folder(tmp_path):
    path = tmp_path / "one.toml"
    path.write_text(VALID_TOML.format(id="one", name="One"), encoding="utf-8")
    assert [profile.id for profile in load_profiles(path).profiles] == ["one"]


def test_a_duplicate_id_keeps_the_first_file_and_reports_the_second(tmp_path):
    (tmp_path / "a.toml").write_text(VALID_TOML.format(id="vask", name="First"), encoding="utf-8")
    (tmp_path / "b.toml").write_text(VALID_TOML.format(id="vask", name="Second"), encoding="utf-8")
    found = load_profiles(tmp_path)
    assert [(profile.id, profile.name) for profile in found.profiles] == [("vask", "First")]
    assert len(found.errors) == 1
    assert found.errors[0].startswith(f"{tmp_path / 'b.toml'}: id: ")
    assert str(tmp_path / "a.toml") in found.errors[0]
