"""Local HTTP servers on 127.0.0.1 for crawl tests: a TED Search API v3 emulator and a
static site (a municipality's pages, a feed, OCDS pages). Each records what it was asked."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


@dataclass
class Hit:
    method: str
    path: str
    body: bytes
    at: float
    user_agent: str


@dataclass
class Behaviour:
    """Faults to inject: ``fail_first`` maps a path to a list of (status, headers) answered
    before the real content, one per request."""

    fail_first: dict[str, list[tuple[int, dict[str, str]]]] = field(default_factory=dict)


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that logs nothing and answers GET and POST with ``answer``."""

    def log_message(self, *args: Any) -> None:
        pass

    def read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def answer(self) -> None:
        raise NotImplementedError

    def do_GET(self) -> None:
        self.answer()

    def do_POST(self) -> None:
        self.answer()


def serve_on_loopback(handler: type[BaseHTTPRequestHandler], *, daemon_threads: bool = False) -> ThreadingHTTPServer:
    """A ThreadingHTTPServer on a free 127.0.0.1 port, serving from a daemon thread until
    its ``shutdown()``. ``daemon_threads``: a request still streaming does not hold up closing."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = daemon_threads
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


class LocalServer:
    """A ThreadingHTTPServer on a free loopback port, stopped by ``close()``."""

    def __init__(self, handler_factory: Any):
        self.hits: list[Hit] = []
        self.lock = threading.Lock()
        server = self

        class Handler(QuietHandler):
            def answer(self) -> None:
                body = self.read_body()
                with server.lock:
                    server.hits.append(Hit(self.command, self.path, body, time.monotonic(),
                                           self.headers.get("User-Agent", "")))
                status, headers, content = handler_factory(self.command, self.path, body)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

        self.httpd = serve_on_loopback(Handler)
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def hits_for(self, path: str, method: str | None = None) -> list[Hit]:
        with self.lock:
            return [h for h in self.hits if h.path.split("?")[0] == path and (method is None or h.method == method)]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class TedApi:
    """Emulates TED Search API v3: ``POST /v3/notices/search`` in ITERATION mode over a
    list of notice files, ``GET /notices/<number>.xml`` for each notice's XML."""

    def __init__(self, files: dict[str, Path], *, page_size_cap: int = 250, total_extra: int = 0,
                 behaviour: Behaviour | None = None, truncate_page: int | None = None):
        self.files = files  # publication number -> file
        self.page_size_cap = page_size_cap
        self.total_extra = total_extra  # claim more notices than exist (a shortfall)
        self.behaviour = behaviour or Behaviour()
        self.truncate_page = truncate_page
        self.search_bodies: list[dict[str, Any]] = []
        self.server = LocalServer(self.handle)
        self.url = self.server.url

    def _fault(self, path: str) -> tuple[int, dict[str, str], bytes] | None:
        queue = self.behaviour.fail_first.get(path)
        if queue:
            status, headers = queue.pop(0)
            return status, headers, b'{"error": "try again"}'
        return None

    def handle(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        fault = self._fault(path)
        if fault:
            return fault
        if path == "/robots.txt":
            return 200, {"Content-Type": "text/plain"}, b"User-agent: *\nDisallow: /\n"
        if method == "POST" and path == "/v3/notices/search":
            request = json.loads(body)
            self.search_bodies.append(request)
            numbers = sorted(self.files)
            start = int(request.get("iterationNextToken") or 0)
            limit = min(int(request.get("limit", 10)), self.page_size_cap)
            page = numbers[start:start + limit]
            next_token = str(start + limit) if start + limit < len(numbers) else None
            response = {
                "notices": [{"publication-number": number,
                             "notice-title": {"dan": f"Udbud {number}"},
                             "links": {"xml": {"MUL": f"{self.url}/notices/{number}.xml"},
                                       "html": {"DAN": f"{self.url}/da/notice/{number}"}}} for number in page],
                "totalNoticeCount": len(numbers) + self.total_extra,
                "iterationNextToken": next_token,
                "timedOut": False,
            }
            content = json.dumps(response).encode()
            page_number = len(self.search_bodies)
            if self.truncate_page == page_number:
                content = content[: len(content) // 2]  # cut off mid-stream
            return 200, {"Content-Type": "application/json"}, content
        if method == "GET" and path.startswith("/notices/") and path.endswith(".xml"):
            number = path[len("/notices/"):-len(".xml")]
            if number in self.files:
                return 200, {"Content-Type": "application/xml"}, self.files[number].read_bytes()
        return 404, {"Content-Type": "text/plain"}, b"not found"

    def xml_fetches(self) -> list[str]:
        return [h.path for h in self.server.hits if h.method == "GET" and h.path.startswith("/notices/")]

    def close(self) -> None:
        self.server.close()


class StaticSite:
    """Serves a folder; ``robots`` is the robots.txt text; ``behaviour`` injects faults."""

    def __init__(self, root: Path, *, robots: str = "User-agent: *\nDisallow: /intern/\n",
                 behaviour: Behaviour | None = None, routes: dict[str, bytes] | None = None,
                 redirects: dict[str, str] | None = None):
        self.root = root
        self.redirects = redirects or {}
        self.robots = robots
        self.routes = routes or {}
        self.behaviour = behaviour or Behaviour()
        self.server = LocalServer(self.handle)
        self.url = self.server.url

    def handle(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        clean = path.split("?")[0]
        queue = self.behaviour.fail_first.get(clean)
        if queue:
            status, headers = queue.pop(0)
            return status, headers, b"busy"
        if clean == "/robots.txt":
            return 200, {"Content-Type": "text/plain"}, self.robots.encode()
        if clean in self.redirects:
            return 302, {"Location": self.redirects[clean]}, b""
        if path in self.routes:
            return 200, {"Content-Type": "application/octet-stream"}, self.routes[path]
        file = (self.root / clean.lstrip("/")).resolve()
        if file.is_file() and self.root.resolve() in file.parents:
            kind = {".html": "text/html; charset=utf-8", ".xml": "application/xml", ".json": "application/json"}
            return 200, {"Content-Type": kind.get(file.suffix, "application/octet-stream")}, file.read_bytes()
        return 404, {"Content-Type": "text/plain"}, b"not found"

    def close(self) -> None:
        self.server.close()
