"""Fixtures for the web view: a filled store served by `tendermatch serve` on loopback.

``served``: one filled store and server per test module, without a password (tests that
only read). ``fresh_served``: its own store and server for a test that changes
something (unsubscribing). ``protected``: served with the staff password on.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.crawler.servers import StaticSite
from tests.notifier.smtp_server import RecordingHandler, SmtpServer, free_port
from tests.web.served import (
    STAFF_PASSWORD_HASH,
    Served,
    ServeProcess,
    fill_store,
    parse_message,
    secret_env,
    write_config,
    write_site,
)


def _serve(folder: Path, *, extra: str = "", env: dict[str, str] | None = None) -> Iterator[Served]:
    write_site(folder / "site")
    site = StaticSite(folder / "site", robots="User-agent: *\nDisallow:\n")
    smtp = SmtpServer(RecordingHandler())
    smtp_port, serve_port = smtp.port, free_port()
    try:
        config = write_config(folder, site_url=site.url, smtp_port=smtp_port, serve_port=serve_port, extra=extra)
        fill_store(config)
        messages = [parse_message(received.raw) for received in smtp.messages]
        server = ServeProcess(config, serve_port, env=env or secret_env()).start()
        try:
            yield Served(folder=folder, config=config, server=server, messages=messages, smtp=smtp)
        finally:
            server.stop()
    finally:
        smtp.stop()
        site.server.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    yield from _serve(tmp_path_factory.mktemp("served"))


@pytest.fixture
def fresh_served(tmp_path: Path) -> Iterator[Served]:
    yield from _serve(tmp_path)


@pytest.fixture(scope="module")
def protected(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    yield from _serve(tmp_path_factory.mktemp("protected"),
                      extra='password_hash_env = "TM_TEST_STAFF_HASH"\n',
                      env=secret_env(TM_TEST_STAFF_HASH=STAFF_PASSWORD_HASH))
