"""`tendermatch digest`, `deliveries` and `unsubscribe` as real processes, writing to the
outbox (no [smtp]): dry run by default, preview files, sending once, unsubscribing by token,
config and secret errors in one line. The SMTP path is in tests/notifier/test_smtp_delivery.py."""

from __future__ import annotations

import email
import email.policy
import json
import re
import shutil

import pytest

from tests import configs
from tests.conftest import ROOT, SAMPLE, run_cli

SECRET = {"TENDERMATCH_SECRET": "test-secret-0123456789"}
NOTICES = ("ted-dk/095237-2016.xml", "ted-dk/433955-2016.xml", "eforms/262891-2023.xml")
# The [digest] of every config here: digests are written to the outbox.
DIGEST = {"sender": configs.SENDER, "base_url": "https://udbud.kk.example", "outbox": "outbox"}


@pytest.fixture(scope="module")
def matched(tmp_path_factory):
    """A store with a few real notices matched for two sample profiles as of 2016-01-01."""
    folder = tmp_path_factory.mktemp("digest-cli")
    inbox = folder / "notices"
    inbox.mkdir()
    for name in NOTICES:
        shutil.copy(SAMPLE / name, inbox / name.replace("/", "-"))
    profiles = folder / "profiles"
    profiles.mkdir()
    shutil.copy(ROOT / "config" / "profiles" / "maaltidsvaerkstedet.toml", profiles)
    # RentFokus's tender here is Spanish: this copy takes work anywhere (regions = [])
    rent = (ROOT / "config" / "profiles" / "rent-fokus.toml").read_text(encoding="utf-8")
    (profiles / "rent-fokus.toml").write_text(re.sub(r"(?m)^regions = .*$", "regions = []", rent), encoding="utf-8")
    config = ["--config", str(configs.write_config(folder, digest=DIGEST)), "--profiles", str(profiles)]
    for args in (["ingest", str(inbox)], ["match", "--as-of", "2016-01-01"]):
        result = run_cli(*config, *args)
        assert result.returncode == 0, result.stdout + result.stderr
    return folder, config


@pytest.fixture
def workspace(matched, tmp_path, config_file):
    """A copy of the matched store for one test."""
    folder, config = matched
    shutil.copy(folder / "store.db", tmp_path / "store.db")
    return tmp_path, ["--config", str(config_file(digest=DIGEST)), config[-2], config[-1]]


def deliveries(config):
    result = run_cli(*config, "deliveries", "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_without_send_it_is_a_dry_run_that_changes_nothing(workspace):
    folder, config = workspace
    result = run_cli(*config, "digest", "--as-of", "2016-01-01")
    assert result.returncode == 0, result.stderr
    assert "dry run: 3 digests for 2015-W53 would be sent" in result.stdout
    assert re.search(r"maaltidsvaerkstedet\s+kontakt@maaltidsvaerkstedet\.example\s+da\s+2\s+0\s+Uge 53: 2 nye udbud",
                     result.stdout)
    assert "$TENDERMATCH_SECRET is not set" in result.stderr  # said, and not needed for a dry run
    assert deliveries(config) == [] and not (folder / "outbox").exists()


def test_a_period_needs_send_or_dry_run_and_must_be_a_week(workspace):
    _, config = workspace
    result = run_cli(*config, "digest", "--period", "2016-W01")
    assert result.returncode == 2 and "add --send, or --dry-run" in result.stderr
    result = run_cli(*config, "digest", "--dry-run", "--period", "2016-48")
    assert result.returncode == 2 and "'2016-48' is not an ISO week like 2026-W48" in result.stderr


def test_sending_needs_the_secret(workspace):
    _folder, config = workspace
    result = run_cli(*config, "digest", "--send", "--period", "2016-W01", "--as-of", "2016-01-01",
                     env={"TENDERMATCH_SECRET": ""})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        line for line in result.stderr.strip().splitlines() if line.startswith("Error: $TENDERMATCH_SECRET is not set")]
    assert deliveries(config) == []


def test_send_writes_each_digest_once_to_the_outbox(workspace):
    folder, config = workspace
    send = ["digest", "--send", "--period", "2016-W01", "--as-of", "2016-01-01"]
    result = run_cli(*config, *send, env=SECRET)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 sent, 0 refused, 0 left pending" in result.stdout
    files = sorted((folder / "outbox").glob("*.eml"))
    assert len(files) == 3
    sent = deliveries(config)
    assert {(d["profile_id"], d["email"], d["state"]) for d in sent} == {
        ("maaltidsvaerkstedet", "kontakt@maaltidsvaerkstedet.example", "sent"),
        ("maaltidsvaerkstedet", "udbud@maaltidsvaerkstedet.example", "sent"),
        ("rent-fokus", "kontakt@rentfokus.example", "sent")}
    kitchen = next(d for d in sent if d["email"] == "kontakt@maaltidsvaerkstedet.example")
    assert kitchen["notices"] == ["ted:095237-2016", "ted:433955-2016"] and kitchen["items"] == 2
    assert kitchen["period"] == "2016-W01" and kitchen["sent_at"] and kitchen["message_id"].startswith("<")
    rerun = run_cli(*config, *send, env=SECRET)
    assert rerun.returncode == 0 and "0 new digests for 2016-W01" in rerun.stdout and "0 sent" in rerun.stdout
    assert len(list((folder / "outbox").glob("*.eml"))) == 3 and len(deliveries(config)) == 3


def test_unsubscribe_with_the_token_from_the_email(workspace):
    folder, config = workspace
    assert run_cli(*config, "digest", "--send", "--profile", "maaltidsvaerkstedet", "--period", "2016-W01",
                   "--as-of", "2016-01-01", env=SECRET).returncode == 0
    message = next(email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
                   for path in (folder / "outbox").glob("*.eml"))
    token = re.search(r"token=([^>]+)>", message["List-Unsubscribe"])[1]
    tampered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    refused = run_cli(*config, "unsubscribe", tampered, env=SECRET)
    assert refused.returncode == 1 and "invalid unsubscribe token" in refused.stderr
    done = run_cli(*config, "unsubscribe", token, env=SECRET)
    assert done.returncode == 0, done.stderr
    assert f"{message['To']} unsubscribed from maaltidsvaerkstedet's digests" in done.stdout
    again = run_cli(*config, "unsubscribe", token, env=SECRET)
    assert "was already unsubscribed" in again.stdout
    # Next week the kantinedrift deadline moves: only the other address is told.
    moved = folder / "moved-095237-2016.xml"
    moved.write_text((SAMPLE / "ted-dk" / "095237-2016.xml").read_text(encoding="utf-8").replace(
        "<DATE_RECEIPT_TENDERS>2016-04-06<", "<DATE_RECEIPT_TENDERS>2016-04-20<"), encoding="utf-8")
    run_cli(*config, "ingest", str(moved), check=True)
    plan = run_cli(*config, "digest", "--dry-run", "--profile", "maaltidsvaerkstedet", "--as-of", "2016-01-11",
                   env=SECRET)
    other = ({"kontakt@maaltidsvaerkstedet.example", "udbud@maaltidsvaerkstedet.example"} - {message["To"]}).pop()
    assert "dry run: 1 digests for 2016-W02" in plan.stdout
    assert re.search(rf"{re.escape(other)}\s+da\s+0\s+1\s+Uge 2: ændringer", plan.stdout), plan.stdout
    assert message["To"] not in plan.stdout


def test_preview_writes_html_text_and_eml_without_recording(workspace, tmp_path):
    _folder, config = workspace
    out = tmp_path / "preview"
    result = run_cli(*config, "digest", "--preview", "rent-fokus", "--out", str(out), "--as-of", "2023-05-01",
                     env=SECRET)
    assert result.returncode == 0, result.stderr
    written = sorted(path.name for path in out.iterdir())
    assert written == ["rent-fokus-2023-W18.eml", "rent-fokus-2023-W18.html", "rent-fokus-2023-W18.txt"]
    html = (out / "rent-fokus-2023-W18.html").read_text(encoding="utf-8")
    assert "CONTRATO DE SERVICIOS DE LIMPIEZA" in html and "Forbeholdt virksomheder som jeres" in html
    assert "1 new, 0 changed" in result.stdout
    assert deliveries(config) == []
    missing = run_cli(*config, "digest", "--preview", "nobody", "--out", str(out))
    assert missing.returncode == 2 and "no valid profile with id 'nobody'" in missing.stderr


@pytest.mark.parametrize(("section", "message"), [
    ('[smtp]\nhost = "127.0.0.1"\nsecurity = "tls"\n', "[smtp]: security must be one of none, starttls, ssl"),
    ('[smtp]\nport = 25\n', "[smtp]: missing key 'host'"),
    ('[smtp]\nhost = "h"\nport = 70000\n', "[smtp]: port must be at most 65535"),
    ('[smtp]\nhost = "h"\nusername_env = "U"\npassword_env = "hunter2!"\n',
     "[smtp]: password_env must name an environment variable"),
    ('[digest]\nsender = "nobody"\n', "[digest] sender must be one address"),
    ('[digest]\nbase_url = "ftp://x"\n', "[digest] base_url must be an http(s) URL"),
    ('[digest]\nschedule = "every monday"\n', "[digest] schedule: 'every monday' is not a cron expression"),
    ('[digest]\nsend_empty = "yes"\n', "[digest]: send_empty must be true or false"),
])
def test_bad_digest_and_smtp_config_is_one_line_naming_file_and_key(tmp_path, section, message):
    path = tmp_path / "bad.toml"
    # By hand: ``section`` is the bad config under test, as TOML text.
    path.write_text('[store]\npath = "x.db"\n' + section, encoding="utf-8")
    result = run_cli("--config", str(path), "digest")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"Error: {path}: " + result.stderr.split(f"{path}: ", 1)[1].strip()]
    assert message in result.stderr
    assert "hunter2" not in result.stderr


def test_smtp_credentials_come_from_the_environment_variables_named(workspace):
    folder, config = workspace
    # The workspace's config again, with an [smtp] whose login comes from variables that are not set.
    configs.write_config(folder, digest=DIGEST, smtp={"host": "127.0.0.1", "port": 9, "username_env": "TM_TEST_USER",
                                                      "password_env": "TM_TEST_PASSWORD"})
    result = run_cli(*config, "digest", "--send", "--period", "2016-W01", "--as-of", "2016-01-01", env=SECRET)
    assert result.returncode == 2
    assert "[smtp] username_env names $TM_TEST_USER, which is not set" in result.stderr


def test_the_demo_writes_the_sample_digests_to_its_outbox(tmp_path):
    state = tmp_path / "demo"
    result = run_cli("demo", "--state-dir", str(state), cwd=tmp_path, env={"TENDERMATCH_SECRET": ""})
    assert result.returncode == 0, result.stdout + result.stderr
    paths = re.findall(r"^  (/\S+\.eml)$", result.stdout, re.MULTILINE)
    # The bundled sample holds few notices from Copenhagen; the sample enterprises (all in
    # Hovedstaden) get only those: Måltidsværkstedet's two addresses
    assert len(paths) >= 2
    assert sorted(paths) == sorted(str(path) for path in (state / "outbox").glob("*.eml"))
    message = email.message_from_bytes((state / "outbox" / paths[0]).read_bytes(), policy=email.policy.default)
    assert message.get_content_type() == "multipart/alternative" and message["List-Unsubscribe"]
    assert (state / "secret").stat().st_mode & 0o077 == 0  # the demo's own secret, owner-only
    again = run_cli("demo", "--state-dir", str(state), "--keep", cwd=tmp_path)
    assert again.returncode == 0 and "none new" in again.stdout
