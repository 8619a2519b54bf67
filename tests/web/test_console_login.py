"""The console's door: an anonymous visitor reaches only the unsubscribe pages; a person logs
in with a personal account in Chromium; logging out needs the form's CSRF token; a
disabled account or an expired session is logged out."""

from __future__ import annotations

import sqlite3

import httpx
import pytest

from tests.conftest import run_cli
from tests.web.console_client import EMAIL, form_token, logged_in
from tests.web.served import STAFF_USER, USER_PASSWORD, VIEWER_USER, add_user, unsubscribe_url

pytestmark = pytest.mark.slow

CONSOLE_PAGES = ("/", "/udbud", "/udbud?q=rengøring", "/udbud.csv", "/udbud.xlsx", "/virksomheder",
                 "/virksomheder/maaltidsvaerkstedet", "/udsendelser", "/udsendelser.xlsx", "/koersler", "/ikke-naaet",
                 "/adgangslog")
DATASETTE_PAGES = ("/store", "/store/deliveries", "/store/deliveries.json", "/store/profiles.csv", "/datasette",
                   "/store.json?sql=select+email+from+deliveries", "/-/metadata.json", "/-/actor.json")


@pytest.mark.parametrize("path", CONSOLE_PAGES + DATASETTE_PAGES)
def test_an_anonymous_visitor_is_sent_to_the_login_and_sees_no_address(console, path):
    answer = httpx.get(console.url + path, follow_redirects=False, timeout=30)
    assert answer.status_code == 303, answer.text[:300]
    assert answer.headers["location"].startswith("/login?next=")
    assert not EMAIL.search(answer.text)


def test_an_anonymous_visitor_can_still_unsubscribe(console):
    page = httpx.get(unsubscribe_url(console.messages[0]), timeout=30)
    assert page.status_code == 200 and "<form" in page.text


def test_a_person_logs_in_with_the_user_name_field_in_chromium_and_out_again(console, browser):
    page = browser.open(console.url + "/udbud")
    assert browser.url().startswith(console.url + "/login")
    assert 'id="navn"' in page and 'type="password"' in page and "Brugernavn" in page
    browser.fill("#navn", STAFF_USER)
    browser.fill("#adgangskode", USER_PASSWORD)
    browser.submit("form.login")
    assert browser.url() == console.url + "/udbud"  # back where the visitor was going
    assert browser.text("h1") == "Udbud" and STAFF_USER in browser.text("header")
    browser.submit("header form")  # Log ud
    assert browser.url() == console.url + "/login"
    browser.open(console.url + "/")
    assert browser.url().startswith(console.url + "/login")


def test_a_wrong_password_or_unknown_user_logs_nobody_in(console, browser):
    for name, password in ((STAFF_USER, "forkert kodeord 123"), ("ingen.saadan", USER_PASSWORD)):
        browser.log_in(console.url, name, password)
        assert browser.url().startswith(console.url + "/login")
        assert "Forkert brugernavn eller adgangskode." in browser.text("main")
    assert browser.open(console.url + "/") and browser.url().startswith(console.url + "/login")


def test_the_session_cookie_is_http_only_and_same_site(console):
    client = httpx.Client(base_url=console.url, timeout=30)
    page = client.get("/login")
    answer = client.post("/login", data={"csrf": form_token(page.text), "navn": VIEWER_USER,
                                         "adgangskode": USER_PASSWORD})
    cookie = next(value for name, value in answer.headers.multi_items()
                  if name == "set-cookie" and value.startswith("tm_session="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Max-Age=" in cookie
    assert "Secure" not in cookie  # plain http on loopback; https (TLS or the trusted proxy) adds it


def test_forms_without_their_csrf_token_change_nothing(console):
    client = logged_in(console.url, STAFF_USER)
    assert client.post("/logout", data={}).status_code == 403
    assert client.post("/logout", data={"csrf": "0" * 64}).status_code == 403
    assert client.get("/").status_code == 200  # still logged in
    anonymous = httpx.Client(base_url=console.url, timeout=30)
    refused = anonymous.post("/login", data={"navn": STAFF_USER, "adgangskode": USER_PASSWORD})
    assert refused.status_code == 403 and "tm_session" not in refused.headers.get("set-cookie", "")
    assert client.post("/udbud", data={"q": "x"}).status_code == 405  # lists take no forms


def test_a_disabled_account_is_logged_out_at_once_and_cannot_log_in(console):
    added = add_user(console.config, "carl.vikar", "staff")
    assert added.returncode == 0, added.stderr
    client = logged_in(console.url, "carl.vikar")
    assert client.get("/").status_code == 200
    run_cli("--config", str(console.config), "users", "disable", "carl.vikar", check=True)
    assert client.get("/").status_code == 303
    page = httpx.get(console.url + "/login", timeout=30)
    again = httpx.post(console.url + "/login", cookies=page.cookies, timeout=30,
                       data={"csrf": form_token(page.text), "navn": "carl.vikar", "adgangskode": USER_PASSWORD})
    assert again.status_code == 401


def test_an_expired_session_sends_the_user_to_the_login(console):
    client = logged_in(console.url, VIEWER_USER)
    assert client.get("/").status_code == 200
    with sqlite3.connect(console.store) as db:  # as if [serve] session_hours had passed
        db.execute("UPDATE sessions SET expires_at = '2000-01-01T00:00:00+00:00' WHERE user_name = ?", [VIEWER_USER])
    assert client.get("/").status_code == 303


def test_five_wrong_passwords_for_a_name_hold_off_even_the_right_one(console):
    added = add_user(console.config, "erik.gaet", "viewer")
    assert added.returncode == 0, added.stderr
    client = httpx.Client(base_url=console.url, timeout=30)

    def attempt(password: str) -> httpx.Response:
        page = client.get("/login")
        return client.post("/login", data={"csrf": form_token(page.text), "navn": "erik.gaet", "adgangskode": password})

    assert [attempt(f"forkert gæt nummer {number}").status_code for number in range(5)] == [401] * 5
    refused = attempt(USER_PASSWORD)
    assert refused.status_code == 429 and "For mange forkerte forsøg" in refused.text
    assert logged_in(console.url, STAFF_USER).get("/").status_code == 200  # another name is not held off
