"""The staff login of `tendermatch serve`, from the outside (a real server, real HTTP).

Proves that with ``[serve] password_hash_env`` set an anonymous visitor is redirected to
/-/login from every page, JSON and CSV included, and never sees an e-mail address; that
a wrong password gives no login while the right one shows the addresses; that the
unsubscribe pages still work without login; that without a password the data is open
(loopback only) and no login link is offered; that `tendermatch hash-password` makes a
verifiable hash; and that serve refuses to start, or the config to load, with a one-line
error that never echoes a hash or secret when the password or secret is unusable.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request

import pytest

from tests import configs
from tests.conftest import ROOT, run_cli
from tests.notifier.smtp_server import free_port
from tests.web.served import SECRET, STAFF_PASSWORD, STAFF_PASSWORD_HASH, unsubscribe_url

pytestmark = pytest.mark.slow

ADDRESSES = ("kontakt@rentfokus.example", "kontakt@maaltidsvaerkstedet.example", "udbud@maaltidsvaerkstedet.example")
HASH_ENV = "TM_TEST_PROTECTION_HASH"

ANONYMOUS_URLS = ("/", "/store", "/store/deliveries", "/store/deliveries.json", "/store/deliveries.csv",
                  "/store/profiles.json", "/store/match_log?enterprise=", "/store/deliveries?state=&period=",
                  "/store.json?sql=select+email+from+deliveries", "/-/metadata.json", "/-/databases.json",
                  "/-/actor.json", "/store/notices?_search=" + urllib.parse.quote("rengøring"))


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # urllib then raises HTTPError with the 3xx answer


def browser() -> tuple[urllib.request.OpenerDirector, http.cookiejar.CookieJar]:
    jar = http.cookiejar.CookieJar()
    return urllib.request.build_opener(NoRedirect(), urllib.request.HTTPCookieProcessor(jar)), jar


def fetch(opener, url: str, data: dict | None = None) -> tuple[int, dict, str]:
    """(status, headers, body) without following redirects."""
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    try:
        with opener.open(url, data=body, timeout=30) as response:
            return response.status, dict(response.headers), response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode("utf-8", "replace")


def log_in(base: str, password: str):
    """GET the form, POST it with its csrftoken; (opener, jar, status of the POST)."""
    opener, jar = browser()
    status, _, form = fetch(opener, base + "/-/login")
    assert status == 200, form
    assert "ds_csrftoken" in {cookie.name for cookie in jar}
    token = re.search(r'name="csrftoken" value="([^"]+)"', form)
    assert token, form
    status, _, _ = fetch(opener, base + "/-/login",
                         {"username": "staff", "password": password, "csrftoken": token.group(1)})
    return opener, jar, status


def cookie_names(jar) -> set[str]:
    return {cookie.name for cookie in jar}


# -- protection on ------------------------------------------------------------------------


@pytest.mark.parametrize("path", ANONYMOUS_URLS)
def test_anonymous_visitor_is_sent_to_the_login_and_sees_no_address(protected, path):
    opener, _ = browser()
    status, headers, body = fetch(opener, protected.url + path)
    # "/" is the console's (its own login); the rest is Datasette's, behind its shared login.
    assert status == (303 if path == "/" else 302), body[:500]
    location = {name.lower(): value for name, value in headers.items()}["location"]
    assert urllib.parse.urlparse(location).path == ("/login" if path == "/" else "/-/login")
    for address in ADDRESSES:
        assert address not in body


def test_a_wrong_password_logs_nobody_in(protected):
    opener, jar, status = log_in(protected.url, "forkert hest batteri")
    assert status == 200  # the form again, with an error
    assert "ds_actor" not in cookie_names(jar)
    status, headers, body = fetch(opener, protected.url + "/store/deliveries.json")
    assert status == 302 and urllib.parse.urlparse(headers["Location"]).path == "/-/login"
    assert not any(address in body for address in ADDRESSES)


def test_staff_with_the_right_password_see_the_addresses(protected):
    opener, jar, status = log_in(protected.url, STAFF_PASSWORD)
    assert status == 302 and "ds_actor" in cookie_names(jar)

    status, _, body = fetch(opener, protected.url + "/store/deliveries?state=&period=")
    assert status == 200, body[:500]
    assert all(address in body for address in ADDRESSES), body[:2000]

    status, _, body = fetch(opener, protected.url + "/store/profiles.json?_shape=array")
    assert status == 200 and all(address in body for address in ADDRESSES)

    status, _, body = fetch(opener, protected.url + "/store/match_log.json?enterprise=&_shape=array")
    assert status == 200, body[:500]
    matches = json.loads(body)  # this week's matches: the fixture matched just now
    assert matches and all(row["enterprise_id"] and row["score"] is not None for row in matches)
    status, _, body = fetch(opener, protected.url + "/store/match_log?enterprise=")
    assert status == 200 and matches[0]["enterprise"] in body

    status, _, body = fetch(opener, protected.url + "/store/notices?_search=" + urllib.parse.quote("rengøring"))
    assert status == 200 and "Erhvervsrengøring" in body

    status, _, body = fetch(opener, protected.url + "/-/actor.json")
    assert status == 200 and '"staff"' in body
    assert protected.server.process.poll() is None  # still serving


def test_unsubscribe_pages_need_no_login(protected):
    assert protected.messages, "the fixture sent no digest"
    message = protected.messages[0]
    url = unsubscribe_url(message)
    address = message["To"].addresses[0].addr_spec
    opener, _ = browser()
    status, headers, body = fetch(opener, url)
    assert status == 200, body[:500]
    assert address in body  # the token holder sees their own address
    assert "no-store" in headers.get("Cache-Control", "")

    parts = urllib.parse.urlsplit(url)
    token = urllib.parse.parse_qs(parts.query)["token"][0]
    tampered = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    bad_url = urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode({"token": tampered})))
    status, _, body = fetch(opener, bad_url)
    assert status == 400 and not any(a in body for a in ADDRESSES)


# -- protection off -----------------------------------------------------------------------


def test_without_a_password_everything_is_open_and_no_login_is_offered(served):
    # Documented behaviour: [serve] datasette_without_login opens Datasette, for loopback only.
    opener, _ = browser()
    status, _, body = fetch(opener, served.url + "/store/deliveries.json?_shape=array")
    assert status == 200 and any(address in body for address in ADDRESSES)
    status, _, body = fetch(opener, served.url + "/datasette")  # Datasette's index ("/" is the console's)
    assert status == 200 and "/-/login" not in body
    status, _, _ = fetch(opener, served.url + "/-/login")
    assert status == 404  # the auth plugin is not loaded


# -- hash-password ------------------------------------------------------------------------


def test_hash_password_prints_a_verifiable_hash_and_not_the_password():
    from datasette_auth_passwords.utils import verify_password

    password = "something long enough"
    result = run_cli("hash-password", "--password", password, timeout=60)
    assert result.returncode == 0, result.stderr
    printed = result.stdout.strip()
    assert printed.startswith("pbkdf2_sha256$")
    assert verify_password(password, printed)
    assert not verify_password("something long enougH", printed)
    assert password not in result.stdout + result.stderr


def test_hash_password_refuses_a_short_password():
    result = run_cli("hash-password", "--password", "kort", timeout=60)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("Error:")


# -- refusing to start --------------------------------------------------------------------


def write_serve_config(folder, serve_lines: str):
    return configs.write_config(folder, serve={}, extra=serve_lines)


def run_clean(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """`tendermatch ARGS` with none of the variables under test inherited, only ``env``."""
    drop = {"TENDERMATCH_SECRET", "TENDERMATCH_CONFIG", HASH_ENV}
    full_env = {key: value for key, value in os.environ.items() if key not in drop} | env
    return subprocess.run([sys.executable, "-m", "tendermatch", *args], check=False, cwd=ROOT, env=full_env,
                          capture_output=True, text=True, timeout=60)  # it must exit by itself


def error_line(result: subprocess.CompletedProcess) -> str:
    """Exit 2 and the stderr line "Error: ..." (the last one)."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("Error:"), result.stderr
    assert sum(line.startswith("Error:") for line in lines) == 1, result.stderr
    return lines[-1]


def one_line_error(result: subprocess.CompletedProcess) -> str:
    line = error_line(result)
    assert result.stderr.strip() == line, result.stderr
    return line


REFUSALS = pytest.mark.parametrize("env, names", [
    ({"TENDERMATCH_SECRET": SECRET}, HASH_ENV),  # the hash variable is not set
    ({"TENDERMATCH_SECRET": SECRET, HASH_ENV: "hunter2"}, HASH_ENV),  # it holds no hash
    ({HASH_ENV: STAFF_PASSWORD_HASH}, "TENDERMATCH_SECRET"),  # the secret is not set
], ids=["hash-unset", "not-a-hash", "secret-unset"])


def refuse(tmp_path, env) -> subprocess.CompletedProcess:
    config = write_serve_config(tmp_path, f'password_hash_env = "{HASH_ENV}"')
    return run_clean("--config", str(config), "serve", "--port", str(free_port()), env=env)


@REFUSALS
def test_serve_refuses_to_start_without_a_usable_password_or_secret(tmp_path, env, names):
    result = refuse(tmp_path, env)
    assert names in one_line_error(result)  # and no "Serving ..." line before it
    for value in (SECRET, STAFF_PASSWORD_HASH, "hunter2"):
        assert value not in result.stderr + result.stdout
    assert not (tmp_path / "store.db").exists()  # refused before the store was touched


@pytest.mark.parametrize("serve_lines, key, hidden", [
    ("port = 70000", "port", None),
    ('password_hash_env = "pbkdf2_sha256$1$a$b"', "password_hash_env", "pbkdf2_sha256$1$a$b"),
    ("nonsense = 1", "nonsense", None),
], ids=["port", "hash-instead-of-name", "unknown-key"])
def test_a_bad_serve_section_is_a_one_line_config_error(tmp_path, serve_lines, key, hidden):
    config = write_serve_config(tmp_path, serve_lines)
    result = run_clean("--config", str(config), "serve", env={"TENDERMATCH_SECRET": SECRET})
    line = one_line_error(result)
    assert str(config) in line and "[serve]" in line and key in line
    if hidden:
        assert hidden not in result.stderr + result.stdout and "pbkdf2" not in result.stderr
    assert not (tmp_path / "store.db").exists()  # refused before anything was created
