"""A bad config fails fast with the file, the source and what is wrong."""

from __future__ import annotations

import pytest

from tendermatch.worker.config import ConfigError, load_config, settings_reference
from tests.conftest import ROOT, run_cli

GOOD_SOURCE = '''
[[sources]]
name = "ted-dk"
kind = "ted"
url = "https://api.ted.europa.eu"
query = "buyer-country IN (DNK)"
schedule = "0 6 * * *"
'''


def write(tmp_path, text: str):
    """A config of exactly ``text``, by hand: the bad configs under test here are TOML text."""
    path = tmp_path / "tendermatch.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_configs_are_valid():
    for name in ("tendermatch.toml", "demo.toml"):
        config = load_config(ROOT / "config" / name)
        assert config.sources, name
    demo = load_config(ROOT / "config" / "demo.toml")
    assert all(source.kind == "files" for source in demo.sources)  # the demo never needs the network


def test_relative_paths_are_resolved_against_the_config_folder(tmp_path, config_file):
    (tmp_path / "notices").mkdir()
    config = load_config(config_file(store="state/x.db", sources=[{"name": "f", "kind": "files", "path": "notices"}]))
    assert config.store_path == tmp_path / "state" / "x.db"
    assert config.sources[0].path == str(tmp_path / "notices")


@pytest.mark.parametrize("text, expected", [
    ('[[sources]\nname = "x"', "TOML syntax error"),
    ('[[sources]]\nname = "x"\nkind = "gopher"\nurl = "https://x"', "source 'x': unknown kind 'gopher'"),
    ('[[sources]]\nname = "x"\nkind = "feed"', "source 'x': missing key 'url'"),
    ('[[sources]]\nkind = "feed"\nurl = "https://x"', "sources[1]: missing key 'name'"),
    (GOOD_SOURCE.replace('"0 6 * * *"', '"0 6 * *"'), "source 'ted-dk': schedule: '0 6 * *' is not a cron expression"),
    (GOOD_SOURCE.replace('"0 6 * * *"', '"0 25 * * *"'), "source 'ted-dk': schedule: '0 25 * * *' is not a valid cron"),
    (GOOD_SOURCE + GOOD_SOURCE, "source 'ted-dk': name is used by more than one source"),
    (GOOD_SOURCE.replace('query = "buyer-country IN (DNK)"\n', ''), "source 'ted-dk': missing key 'query'"),
    (GOOD_SOURCE + 'limit = 1000\n', "limit must be between 1 and 250"),
    (GOOD_SOURCE + 'selectors = {row = "tr"}\n', "key 'selectors' does not apply to kind 'ted'"),
    (GOOD_SOURCE + 'colour = "blue"\n', "source 'ted-dk': unknown key 'colour'"),
    (GOOD_SOURCE + 'timeout = "long"\n', "source 'ted-dk': timeout must be an integer"),
    ('[[sources]]\nname = "kk"\nkind = "html"\nurl = "https://kk.example"\nselectors = {row = "tr"}',
     "source 'kk': selectors.title is missing"),
    ('[[sources]]\nname = "kk"\nkind = "feed"\nurl = "ftp://kk.example/feed"', "url must be an http(s) URL"),
    ('[[sources]]\nname = "kk"\nkind = "feed"\nurl = "https://"', "url must be an http(s) URL with a host"),
    ('[[sources]]\nname = "kk"\nkind = "feed"\nurl = "https://kk.example"\nurls = [1]',
     "urls must be an array of strings"),
    ('[[sources]]\nname = "kk"\nkind = "files"\nurl = "https://kk.example/feed"', "must be an absolute file:/// URL"),
    ('[[sources]]\nname = "kk"\nkind = "files"\nurl = "file://notices/ted"', "must be an absolute file:/// URL"),
    ('[[sources]]\nname = "kk"\nkind = "files"\npath = "no-such-folder"', "no-such-folder does not exist"),
    ('[[sources]]\nname = "kk"\nkind = "html"\nurl = "https://kk.example"\n'
     'selectors = {row = "tr", title = "td", titel = "h2"}',
     "unknown selector 'titel'"),
    (GOOD_SOURCE + 'fields = [1, 2]\n', "fields must be an array of strings"),
    (GOOD_SOURCE + 'max_pages = -1\n', "max_pages must be at least 1"),
    ('[crawler]\nretry_times = -2', "[crawler]: retry_times must be at least 0"),
    ('[crawler]\nmax_document_mb = 0', "max_document_mb must be at least"),
    ('[store]\npath = 5', "[store] path must be a file path"),
    ('[worker]\ntimezone = 5', "[worker]: timezone must be a string"),
    ('[worker]\ntimezone = "Mars/Olympus"', "unknown time zone"),
    ('[surprise]\nx = 1', "unknown section or key 'surprise'"),
])
def test_bad_config_names_file_source_and_problem(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as error:
        load_config(path)
    message = str(error.value)
    assert str(path) in message and expected in message
    assert "\n" not in message


def test_cli_reports_a_bad_config_in_one_line_and_exits_2(tmp_path):
    path = write(tmp_path, GOOD_SOURCE.replace('"0 6 * * *"', '"every morning"'))
    result = run_cli("--config", str(path), "crawl")
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and str(path) in lines[0] and "ted-dk" in lines[0] and "cron" in lines[0]


def test_missing_explicit_config_is_an_error(tmp_path):
    result = run_cli("--config", str(tmp_path / "nope.toml"), "sources")
    assert result.returncode == 2 and "config file not found" in result.stderr


def test_settings_reference_lists_every_source_key():
    reference = settings_reference()
    for key in ("name", "kind", "url", "query", "schedule", "timeout", "selectors", "notice_kind"):
        assert f"`{key}`" in reference


def test_readme_config_reference_is_current():
    assert settings_reference() in (ROOT / "README.md").read_text(encoding="utf-8")


def test_config_from_the_environment_variable(tmp_path, config_file):
    path = config_file(store="from-env.db", sources=[GOOD_SOURCE])
    result = run_cli("sources", cwd=tmp_path, env={"TENDERMATCH_CONFIG": str(path)})
    assert result.returncode == 0, result.stderr
    assert "ted-dk" in result.stdout and (tmp_path / "from-env.db").exists()


@pytest.mark.parametrize(("registry", "section"), [
    ("WORKER_SETTINGS", "WorkerSection"), ("CRAWLER_SETTINGS", "CrawlerSection"),
    ("MATCHER_SETTINGS", "MatcherSection"), ("DIGEST_SETTINGS", "DigestSection"),
    ("SMTP_SETTINGS", "SmtpSection"), ("SERVE_SETTINGS", "ServeSection"),
])
def test_each_typed_section_has_exactly_the_keys_of_its_settings_registry(registry, section):
    from tendermatch.worker import config as config_module
    from tendermatch.worker import sections

    names = {setting.name for setting in getattr(config_module, registry)}
    assert set(getattr(sections, section).__annotations__) == names


def test_a_parsed_config_fills_every_key_of_each_typed_section(tmp_path):
    from tendermatch.worker import sections
    from tendermatch.worker.config import load_config

    path = tmp_path / "tendermatch.toml"
    # By hand: one section and one key, so that every other key and section is a default.
    path.write_text('[smtp]\nhost = "127.0.0.1"\n', encoding="utf-8")
    config = load_config(path)
    for name, section in (("worker", "WorkerSection"), ("crawler", "CrawlerSection"), ("matcher", "MatcherSection"),
                          ("digest", "DigestSection"), ("smtp", "SmtpSection"), ("serve", "ServeSection")):
        assert set(getattr(config, name)) == set(getattr(sections, section).__annotations__), name
