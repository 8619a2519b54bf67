"""How `tendermatch serve` exposes the console: `--public-only` answers the unsubscribe pages
alone; the staff pages refuse a non-loopback address without https; `tendermatch users`
manages the accounts with passwords from a prompt or stdin, never the command line."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import httpx
import pytest

from tests.conftest import ROOT, cli_env, run_cli
from tests.notifier.smtp_server import free_port
from tests.web.console_client import form_token, logged_in
from tests.web.served import STAFF_USER, USER_PASSWORD, ServeProcess, add_user, secret_env, unsubscribe_url

pytestmark = pytest.mark.slow


def test_public_only_serves_the_unsubscribe_pages_and_nothing_else(console):
    port = free_port()
    env = cli_env(secret_env())
    server = ServeProcess(console.config, port, env=secret_env())
    server.process = subprocess.Popen(
        [sys.executable, "-m", "tendermatch", "--config", str(console.config), "serve", "--port", str(port),
         "--public-only"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=server.log_path.open("wb"))
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                httpx.get(base + "/login", timeout=2)
                break
            except httpx.TransportError:
                if server.process.poll() is not None:
                    pytest.fail(server.log())
                time.sleep(0.1)
        link = unsubscribe_url(console.messages[0]).replace(console.url, base)
        assert httpx.get(link, timeout=30).status_code == 200
        for path in ("/", "/login", "/udbud", "/virksomheder/maaltidsvaerkstedet", "/store", "/store/deliveries.json",
                     "/datasette", "/-/metadata.json", "/adgangslog"):
            answer = httpx.get(base + path, timeout=30, follow_redirects=False)
            assert answer.status_code == 404, (path, answer.status_code)
            assert "@" not in answer.text
    finally:
        server.stop()


@pytest.mark.parametrize("extra", ["", 'datasette_without_login = true\n'])
def test_serve_refuses_a_non_loopback_address_without_https_in_one_line(config_file, extra):
    config = config_file(serve={}, extra=extra)  # extra: more [serve] lines
    result = run_cli("--config", str(config), "serve", "--host", "0.0.0.0", "--port", str(free_port()),
                     env=secret_env(), timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "refusing to serve" in lines[0] and "0.0.0.0" in lines[0], result.stderr


def test_tls_settings_go_together(tmp_path):
    config = tmp_path / "tendermatch.toml"
    # By hand: the config under test is a bad one (a certificate without its key).
    config.write_text('[store]\npath = "store.db"\n[serve]\ntls_certificate = "cert.pem"\n', encoding="utf-8")
    result = run_cli("--config", str(config), "serve", env=secret_env(), timeout=60)
    assert result.returncode == 2 and "tls_certificate and tls_key go together" in result.stderr


def test_users_are_listed_without_hashes_and_a_new_password_logs_the_user_out(console):
    listed = run_cli("--config", str(console.config), "users", "list", "--format", "json", check=True)
    users = {row["name"]: row for row in json.loads(listed.stdout)}
    assert users[STAFF_USER]["role"] == "staff" and "argon2" not in listed.stdout
    added = add_user(console.config, "dorte.skift", "viewer")
    assert added.returncode == 0, added.stderr
    client = logged_in(console.url, "dorte.skift")
    changed = subprocess.run([sys.executable, "-m", "tendermatch", "--config", str(console.config), "users",
                              "set-password", "dorte.skift", "--password-stdin"], input="et helt nyt kodeord\n",
                             cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert changed.returncode == 0, changed.stderr
    assert client.get("/").status_code == 303  # logged out
    assert logged_in(console.url, "dorte.skift", "et helt nyt kodeord").get("/").status_code == 200


def test_a_password_is_never_taken_from_the_command_line_or_too_short(console):
    refused = run_cli("--config", str(console.config), "users", "add", "eve", "--password", "hemmeligt kodeord")
    assert refused.returncode == 2 and "No such option" in refused.stderr
    short = add_user(console.config, "eve", "staff", password="kort")
    assert short.returncode == 2 and "at least 10 characters" in short.stderr
    again = add_user(console.config, STAFF_USER.upper(), "staff")
    assert again.returncode == 2 and "already exists" in again.stderr


def _serve_process(config, port: int, *extra: str) -> ServeProcess:
    env = cli_env(secret_env())
    server = ServeProcess(config, port, env=secret_env())
    server.process = subprocess.Popen(
        [sys.executable, "-m", "tendermatch", "--config", str(config), "serve", "--port", str(port), *extra],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=server.log_path.open("wb"))
    for _ in range(300):
        try:
            httpx.get(server.url + "/login", timeout=2)
            return server
        except httpx.TransportError:
            if server.process.poll() is not None:
                pytest.fail(server.log())
            time.sleep(0.1)
    pytest.fail("serve did not answer")


def _login_cookie(base: str, headers: dict[str, str]) -> str:
    client = httpx.Client(base_url=base, timeout=30, headers=headers)
    page = client.get("/login")
    # Over "https" the pre-login cookie is Secure too, which httpx keeps from plain http: sent by hand.
    pre_login = page.headers["set-cookie"].split(";")[0]
    answer = client.post("/login", headers={"Cookie": pre_login}, data={
        "csrf": form_token(page.text), "navn": STAFF_USER, "adgangskode": USER_PASSWORD})
    assert answer.status_code == 303
    return next(value for name, value in answer.headers.multi_items()
                if name == "set-cookie" and value.startswith("tm_session="))


def test_the_login_cookie_is_secure_behind_the_trusted_proxy_only(console, config_file):
    config = config_file(store=str(console.store), serve={"trusted_proxy": "127.0.0.1"}, name="proxied.toml")
    https = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    server = _serve_process(config, free_port())
    try:
        assert "Secure" in _login_cookie(server.url, https)
        assert "Secure" not in _login_cookie(server.url, {})
    finally:
        server.stop()
    assert "Secure" not in _login_cookie(console.url, https)  # no trusted proxy: the header is not believed
