"""Real HTTP requests to the console (httpx), logged in through its login form as a browser
would: fetch the page, read the form's CSRF token, post the user name and password."""

from __future__ import annotations

import re

import httpx

from tests.web.served import USER_PASSWORD

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)*\.example")


def form_token(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]*)"', html)
    assert found, html[:1000]
    return found.group(1)


def logged_in(base_url: str, name: str, password: str = USER_PASSWORD) -> httpx.Client:
    client = httpx.Client(base_url=base_url, follow_redirects=False, timeout=30)
    page = client.get("/login")
    answer = client.post("/login", data={"csrf": form_token(page.text), "navn": name, "adgangskode": password,
                                         "next": "/"})
    assert answer.status_code == 303, (answer.status_code, answer.text[:500])
    return client
