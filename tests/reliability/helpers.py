"""What the reliability tests share, each defined once here and imported by the test modules
that use it (a test module never imports another): tendermatch processes run beside each
other, a port that counts connections, and the loopback site of the hostile-input tests
with their config."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests import configs
from tests.conftest import ROOT, SAMPLE, cli_env, run_cli
from tests.crawler.servers import QuietHandler, serve_on_loopback
from tests.web.served import secret_env

MB = 2**20
# Real Sell2Wales OCDS releases, one per line.
OCDS_BASE = SAMPLE / "ocds" / "wales_sell2wales_2025_first20.jsonl"


# -- processes side by side (tests/reliability/test_concurrency.py and the isolation tests) ----------


def popen(*args: str, log: Path) -> subprocess.Popen:
    """`tendermatch ARGS` started now in a process group of its own (an ingest's parsing
    processes go with it when it is killed), stdout and stderr into ``log``."""
    env = cli_env(secret_env())
    with open(log, "wb") as out:
        return subprocess.Popen([sys.executable, "-m", "tendermatch", *args], cwd=ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def kill(process: subprocess.Popen) -> None:
    """SIGKILL to the process and the processes it started."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def finish(process: subprocess.Popen, log: Path, *, timeout: float = 180) -> tuple[int, str]:
    try:
        code = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill(process)
        raise AssertionError(f"{process.args} hung:\n{log.read_text(errors='replace')}") from None
    return code, log.read_text(encoding="utf-8", errors="replace")


# -- a TCP port that counts connections (tests/reliability/test_security.py, test_isolation_crawl.py) --


class Trap:
    """A TCP port that counts connections: ftp:// and gopher:// URLs point here."""

    def __init__(self):
        self.connections = 0
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(16)
        self.port = self.socket.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            self.connections += 1
            connection.close()

    def close(self):
        self.socket.close()


# -- a loopback site and its config (tests/reliability/test_hostile_input.py, test_isolation_records.py) --


@dataclass
class Reply:
    body: bytes | Path = b""
    content_type: str = "application/octet-stream"
    status: int = 200
    cut_after: int | None = None  # announce the whole length, send this many bytes, hang up


class Site:
    """A threaded HTTP server on 127.0.0.1 answering ``routes`` (path -> Reply, or a
    function of the request body -> Reply), which a test may change between crawls.
    It shares ``tests.crawler.servers.LocalServer``'s quiet handler and start-up, but
    streams a file from disk (a 100 MB body never sits in this process's memory) and can
    announce a Content-Length and hang up early (a response cut off mid-stream)."""

    def __init__(self) -> None:
        self.routes: dict[str, Reply | Callable[[bytes], Reply]] = {
            "/robots.txt": Reply(b"User-agent: *\nAllow: /\n", "text/plain")}
        self.requests: list[tuple[str, str, bytes]] = []
        self.lock = threading.Lock()
        site = self

        class Handler(QuietHandler):
            def answer(self) -> None:
                body = self.read_body()
                path = self.path.split("?")[0]
                with site.lock:
                    site.requests.append((self.command, path, body))
                    route = site.routes.get(path)
                reply = route(body) if callable(route) else route or Reply(b"not found", "text/plain", 404)
                size = reply.body.stat().st_size if isinstance(reply.body, Path) else len(reply.body)
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(size))
                self.send_header("Connection", "close")
                self.end_headers()
                try:
                    if isinstance(reply.body, Path):
                        with reply.body.open("rb") as source:
                            while piece := source.read(MB):
                                self.wfile.write(piece)
                    else:
                        self.wfile.write(reply.body[: reply.cut_after])
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client hung up (a download it refused)
                self.close_connection = True

        self.httpd = serve_on_loopback(Handler, daemon_threads=True)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def paths(self, method: str = "GET") -> list[str]:
        with self.lock:
            return [path for command, path, _ in self.requests if command == method]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


PROFILE = """id = "rent-og-mad"
name = "Rent & Mad"
emails = ["udbud@rent-og-mad.example"]
language = "da"
description = "Socialøkonomisk virksomhed: rengøring, vinduespudsning og kantinedrift."
keywords = ["kantinedrift", "rengøring", "vinduespudsning"]
max_items = 50
"""


def write_digest_config(folder: Path, *, sources: list[str], smtp_port: int = 25, retry_times: int = 0) -> Path:
    """A config over ``sources`` with the one profile, digests to the SMTP server on ``smtp_port``."""
    profiles = folder / "profiles"
    profiles.mkdir(exist_ok=True)
    (profiles / "rent-og-mad.toml").write_text(PROFILE, encoding="utf-8")
    return configs.write_config(
        folder, crawler={"retry_times": retry_times}, matcher={"profiles": "profiles", "min_relevance": 20},
        digest={"sender": configs.SENDER, "base_url": "https://udbud.kk.example"},
        smtp=configs.smtp_section(smtp_port), sources=sources)


def source(name: str, kind: str, **values: Any) -> str:
    lines = ["[[sources]]", f'name = "{name}"', f'kind = "{kind}"']
    for key, value in values.items():
        if isinstance(value, dict):
            value_text = "{" + ", ".join(f"{k} = {json.dumps(v)}" for k, v in value.items()) + "}"
        else:
            value_text = json.dumps(value, ensure_ascii=False)
        lines.append(f"{key} = {value_text}")
    return "\n".join(lines) + "\n"


def newest_runs(config: Path) -> dict[str, dict[str, Any]]:
    """The newest run of each job ("crawl:<source>", "ingest:<source>", "match", ...), as
    `tendermatch runs --format json` shows it."""
    result = run_cli("--config", str(config), "runs", "--format", "json", "--limit", "200", check=True)
    newest: dict[str, dict[str, Any]] = {}
    for run in json.loads(result.stdout):
        newest.setdefault(run["job"], run)
    return newest


def stored(config: Path) -> list[dict[str, Any]]:
    return json.loads(run_cli("--config", str(config), "tenders", "--format", "json", check=True).stdout)
