"""Fixtures for the web view: a filled store served by `tendermatch serve` on loopback.

``served``: one filled store and server per test module, without a password (tests that
only read). ``fresh_served``: its own store and server for a test that changes
something (unsubscribing). ``protected``: served with the staff password on. ``console``: served with a staff and a
viewer account for the console, ``browser``: Chromium driven over DevTools.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.crawler.servers import StaticSite
from tests.notifier.smtp_server import RecordingHandler, SmtpServer, free_port
from tests.web.browser import Browser
from tests.web.served import (
    OWN_BUYERS,
    STAFF_PASSWORD_HASH,
    STAFF_USER,
    VIEWER_USER,
    Served,
    ServeProcess,
    add_user,
    fill_store,
    parse_message,
    secret_env,
    write_console_config,
    write_site,
)


def _serve(folder: Path, *, extra: str = "", env: dict[str, str] | None = None,
           users: tuple[tuple[str, str], ...] = ()) -> Iterator[Served]:
    write_site(folder / "site")
    site = StaticSite(folder / "site", robots="User-agent: *\nDisallow:\n")
    smtp = SmtpServer(RecordingHandler())
    smtp_port, serve_port = smtp.port, free_port()
    try:
        config = write_console_config(folder, site_url=site.url, smtp_port=smtp_port, serve_port=serve_port,
                                      extra=extra)
        fill_store(config)
        for name, role in users:
            added = add_user(config, name, role)
            assert added.returncode == 0, added.stderr
        messages = [parse_message(received.raw) for received in smtp.messages]
        server = ServeProcess(config, serve_port, env=env or secret_env()).start()
        try:
            yield Served(folder=folder, config=config, server=server, messages=messages, smtp=smtp)
        finally:
            server.stop()
    finally:
        smtp.stop()
        site.server.close()


# The Datasette tests read it without a login: the loopback developer mode.
OPEN_DATASETTE = "datasette_without_login = true\n"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    yield from _serve(tmp_path_factory.mktemp("served"), extra=OPEN_DATASETTE)


@pytest.fixture
def fresh_served(tmp_path: Path) -> Iterator[Served]:
    yield from _serve(tmp_path, extra=OPEN_DATASETTE)


@pytest.fixture(scope="module")
def protected(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    yield from _serve(tmp_path_factory.mktemp("protected"),
                      extra='password_hash_env = "TM_TEST_STAFF_HASH"\n',
                      env=secret_env(TM_TEST_STAFF_HASH=STAFF_PASSWORD_HASH))


# -- the staff console ------------------------------------------------------------------------------

CONSOLE_USERS = ((STAFF_USER, "staff"), (VIEWER_USER, "viewer"))
CONSOLE_CONFIG = "own_buyers = [" + ", ".join(f'"{name}"' for name in OWN_BUYERS) + "]\n"


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A filled store served with the console's two accounts: a staff user and a viewer."""
    yield from _serve(tmp_path_factory.mktemp("console"), extra=CONSOLE_CONFIG, users=CONSOLE_USERS)


@pytest.fixture
def browser(chromium: str, tmp_path: Path) -> Iterator[Browser]:
    """Headless Chromium with a fresh profile (no cookies), driven over DevTools."""
    with Browser(chromium, tmp_path / "chromium-profile") as opened:
        yield opened
