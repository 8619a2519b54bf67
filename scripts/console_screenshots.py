"""Screenshots of the staff console for the README: `python scripts/console_screenshots.py`.

Builds the demo store (`tendermatch demo`, no network) in a temporary folder, adds a staff
account, serves it on a free loopback port, logs in with headless Chromium (driven over
DevTools, as the tests do) and writes docs/console/*.png.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.web.browser import Browser  # noqa: E402

OUT = ROOT / "docs" / "console"
PASSWORD = "skærmbilleder til README"
PAGES = (
    ("oversigt", "/"),
    ("udbud", "/udbud?q=kantine"),
    ("udbud-hvem-fik-besked", "/udbud/ted:095237-2016"),
    ("virksomhed", "/virksomheder/maaltidsvaerkstedet?maaneder=3"),
    ("udsendelser", "/udsendelser"),
    ("koersler", "/koersler"),
    ("ikke-naaet", "/ikke-naaet"),
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def main() -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("chromium not installed: apt-get install chromium")
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tm-screens-") as temporary:
        folder = Path(temporary)
        env = {key: value for key, value in os.environ.items() if key != "TENDERMATCH_CONFIG"}
        env["TENDERMATCH_SECRET"] = "screenshots-secret-0123456789"
        command = [sys.executable, "-m", "tendermatch"]
        subprocess.run([*command, "demo", "--state-dir", str(folder / "demo")], cwd=ROOT, env=env, check=True,
                       capture_output=True)
        store = next((folder / "demo").glob("*.db"))
        subprocess.run([*command, "--db", str(store), "users", "add", "anna", "--role", "staff", "--password-stdin"],
                       input=PASSWORD + "\n", text=True, cwd=ROOT, env=env, check=True, capture_output=True)
        port = _free_port()
        server = subprocess.Popen([*command, "--config", str(ROOT / "config" / "demo.toml"), "--db", str(store),
                                   "serve", "--port", str(port)], cwd=ROOT, env=env, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    urllib.request.urlopen(base + "/login", timeout=2).close()
                    break
                except (urllib.error.URLError, OSError):
                    time.sleep(0.1)
            with Browser(chromium, folder / "chromium", window=(1280, 900)) as browser:
                browser.open(base + "/login")
                browser.screenshot(OUT / "login.png", full_page=False)
                browser.log_in(base, "anna", PASSWORD)
                for name, path in PAGES:
                    browser.open(base + path)
                    browser.screenshot(OUT / f"{name}.png")
                    print(OUT / f"{name}.png")
        finally:
            server.terminate()
            server.wait(timeout=15)


if __name__ == "__main__":
    main()
