"""Headless Chromium driven over its DevTools protocol (websockets), for the console tests:
open a page, fill and submit a form as a person would, read the rendered DOM, take a
screenshot. One browser per ``Browser``, with its own profile (so its own cookies)."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

from websockets.sync.client import connect


class Browser:
    """A Chromium process and one tab in it."""

    def __init__(self, binary: str, folder: Path, *, window: tuple[int, int] = (1280, 900)):
        folder.mkdir(parents=True, exist_ok=True)
        self.profile = folder
        self.process = subprocess.Popen(
            [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", "--remote-debugging-port=0",
             "--remote-allow-origins=*", f"--user-data-dir={folder}", f"--window-size={window[0]},{window[1]}",
             "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        port_file = folder / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.close()
                raise AssertionError("chromium did not open its DevTools port")
            time.sleep(0.05)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as response:
            pages = [target for target in json.load(response) if target["type"] == "page"]
        # Entered by hand: the connection lives as long as this object, not one block.
        self._connection = connect(pages[0]["webSocketDebuggerUrl"], max_size=64 * 1024 * 1024, open_timeout=10)
        self.socket = self._connection.__enter__()
        self._next_id = 0
        self.events: list[dict[str, Any]] = []
        self.send("Page.enable")
        self.send("Runtime.enable")

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        message_id = self._next_id
        self.socket.send(json.dumps({"id": message_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv(timeout=60))
            if message.get("id") == message_id:
                if "error" in message:
                    raise AssertionError(f"{method}: {message['error']}")
                return dict(message.get("result") or {})
            self.events.append(message)

    def _wait_for_load(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(event.get("method") == "Page.loadEventFired" for event in self.events):
                self.events.clear()
                return
            try:
                message = json.loads(self.socket.recv(timeout=max(0.1, deadline - time.monotonic())))
            except TimeoutError:
                break
            self.events.append(message)
        raise AssertionError("the page did not finish loading")

    def open(self, url: str) -> str:
        """Go to ``url`` and wait for it to load; the page's HTML as rendered."""
        self.events.clear()
        self.send("Page.navigate", url=url)
        self._wait_for_load()
        return self.html()

    def evaluate(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def html(self) -> str:
        return str(self.evaluate("document.documentElement.outerHTML"))

    def text(self, selector: str = "body") -> str:
        return str(self.evaluate(f"(document.querySelector({json.dumps(selector)}) || {{innerText: ''}}).innerText"))

    def url(self) -> str:
        return str(self.evaluate("location.href"))

    def fill(self, selector: str, value: str) -> None:
        found = self.evaluate(f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
                              f" if (!e) return false; e.value = {json.dumps(value)}; return true; }})()")
        assert found, f"no {selector} on {self.url()}"

    def submit(self, selector: str) -> str:
        """Click the submit button of the form ``selector`` and wait for the next page."""
        self.events.clear()
        clicked = self.evaluate(f"(() => {{ const f = document.querySelector({json.dumps(selector)}); if (!f) return"
                                " false; (f.querySelector('button[type=submit]') || f).click(); return true; })()")
        assert clicked, f"no form {selector} on {self.url()}"
        self._wait_for_load()
        return self.html()

    def log_in(self, base_url: str, name: str, password: str) -> str:
        self.open(base_url + "/login")
        self.fill("#navn", name)
        self.fill("#adgangskode", password)
        return self.submit("form.login")

    def screenshot(self, path: Path, *, full_page: bool = True) -> None:
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            metrics = self.send("Page.getLayoutMetrics")
            size = metrics.get("cssContentSize") or metrics["contentSize"]
            params["clip"] = {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], 4000), "scale": 1}
            params["captureBeyondViewport"] = True
        path.write_bytes(base64.b64decode(self.send("Page.captureScreenshot", **params)["data"]))

    def close(self) -> None:
        try:
            if getattr(self, "_connection", None) is not None:
                self._connection.__exit__(None, None, None)
        finally:
            if self.process.poll() is None:
                os.killpg(self.process.pid, signal.SIGTERM)
                try:
                    self.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(self.process.pid, signal.SIGKILL)
                    self.process.wait()

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
