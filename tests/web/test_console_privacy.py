"""Personal data closed by default: a viewer never sees an e-mail address (pages, exports,
Datasette), a staff user does, and the access log records a staff user's look at an
enterprise and every export of addresses."""

from __future__ import annotations

import io

import openpyxl
import pytest

from tests.web.console_client import EMAIL, logged_in
from tests.web.served import STAFF_USER, USER_PASSWORD, VIEWER_USER

pytestmark = pytest.mark.slow

PAGES = ("/", "/udbud", "/virksomheder", "/virksomheder/maaltidsvaerkstedet", "/virksomheder/rent-fokus",
         "/udsendelser", "/udsendelser?tilstand=sent", "/koersler", "/ikke-naaet")
EXPORTS = ("/udbud.csv", "/virksomheder.csv", "/virksomheder.xlsx", "/udsendelser.csv", "/udsendelser.xlsx",
           "/koersler.xlsx", "/ikke-naaet.csv")


def _xlsx_text(content: bytes) -> str:
    sheet = openpyxl.load_workbook(io.BytesIO(content), read_only=True).active
    return "\n".join(" ".join(str(value) for value in row if value is not None)
                     for row in sheet.iter_rows(values_only=True))


def test_a_viewer_never_sees_an_e_mail_address_in_chromium(console, browser):
    browser.log_in(console.url, VIEWER_USER, USER_PASSWORD)
    notice_links: list[str] = []
    for path in PAGES:
        html = browser.open(console.url + path)
        assert not EMAIL.search(html), (path, EMAIL.search(html))
        if path == "/udbud":  # every notice's page: "who was told" lists the enterprises, not their addresses
            notice_links = browser.evaluate("[...document.querySelectorAll('#notices a')].map(a => a.href)")
    assert "skjult (rollen læser)" in browser.open(console.url + "/udsendelser")
    assert notice_links
    for link in notice_links:
        assert not EMAIL.search(browser.open(link)), link
    browser.open(console.url + "/store/deliveries")  # Datasette: its tables hold the addresses
    assert "Ingen adgang" in browser.text("h1") and not EMAIL.search(browser.html())


def test_a_viewers_exports_hold_no_e_mail_address_and_staffs_do(console):
    viewer, staff = logged_in(console.url, VIEWER_USER), logged_in(console.url, STAFF_USER)
    for path in EXPORTS:
        answer = viewer.get(path)
        assert answer.status_code == 200, path
        text = _xlsx_text(answer.content) if path.endswith(".xlsx") else answer.content.decode("utf-8-sig")
        assert not EMAIL.search(text), (path, EMAIL.search(text))
    staff_export = staff.get("/udsendelser.xlsx")
    assert EMAIL.search(_xlsx_text(staff_export.content))


def test_the_access_log_records_a_staff_users_look_at_an_enterprise_and_an_export(console, browser):
    browser.log_in(console.url, STAFF_USER, USER_PASSWORD)
    browser.open(console.url + "/virksomheder/rent-fokus")
    assert "@" in browser.text("main")  # staff see the addresses
    staff = logged_in(console.url, STAFF_USER)
    assert staff.get("/virksomheder.csv").status_code == 200
    browser.open(console.url + "/adgangslog")
    rows = browser.text("#access-log")
    first_lines = rows.splitlines()[1:4]
    assert any(STAFF_USER in line and "virksomhedsside" in line and "rent-fokus" in line for line in rows.splitlines())
    assert any(STAFF_USER in line and "eksport" in line and "virksomheder" in line for line in first_lines), rows
    assert logged_in(console.url, VIEWER_USER).get("/adgangslog").status_code == 403
