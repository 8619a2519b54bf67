"""A year's store under load: 50,000 notices and 10,000 profiles through the real commands.

Builds (not timed) a store of 50,000 notices, as a store holds after a year of crawling:
15,000 open ones (the corpus's open competition and planning notices replicated under new
ids as in benchmarks/match.py, deadlines in the coming weeks) and 35,000 whose deadline
passed (the same replicas, deadlines in the past year); 10,000 profile files generated as in
benchmarks/match.py (TOML, in a profiles folder), and a config. Then times, each a real
`tendermatch` process on that store:

  * `match` (read the store, index, score, write the log);
    target: <= 60 s, issue 3's target at 15,000 open notices x 10,000 profiles;
  * `digest --dry-run` (plan and render every due digest, print them, record nothing);
    target: >= 200 digests/s, issue 4's;
  * `serve`: the match-log page (HTML, all enterprises, this week), the first request and
    the median of the next ones; target: < 1 s;
  * `serve`: each page of the staff console, logged in as a staff user (the median of
    ``--requests``), after `digest --send` wrote this week's digests to the outbox (so the
    delivery pages have rows); target: < 300 ms each (the Excel export is shown, not a target).

Baseline, in the same run: the same commands on a store of the 15,000 open notices alone.
The ratio (50,000 store / open-only store) shows what the closed history costs.

Usage: python benchmarks/load.py [--notices 50000] [--open 15000] [--profiles 10000]
                                 [--requests 5] [--no-baseline] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.match import SEED, generate_profiles, open_notices, replicate
from benchmarks.peak import Measured, run_with_peak
from tendermatch.matcher.profiles import Profile
from tendermatch.store import Store

SECRET = "load-benchmark-secret-0123456789"
NUTS = re.compile(r"[A-Z]{2}[0-9A-Z]{0,3}")
TARGETS = {"match_s": 60.0, "digests_per_s": 200.0, "page_s": 1.0, "console_page_s": 0.3}
STAFF_NAME, STAFF_PASSWORD = "benchmark", "benchmark password 42"


def _deadline(day: date) -> str:
    return f"{day.isoformat()}T12:00:00+01:00"


def notices_for(records: list[dict], *, total: int, open_count: int, today: date) -> list[dict]:
    """``total`` replicas of ``records``: the first ``open_count`` with deadlines 3-60 days
    ahead, the rest with deadlines 1-365 days ago (the matcher skips those)."""
    rng = random.Random(SEED)
    notices = replicate(records, total)
    for number, record in enumerate(notices):
        days = rng.randint(3, 60) if number < open_count else -rng.randint(1, 365)
        record["deadline"] = _deadline(today + timedelta(days=days))
        record["published"] = (today - timedelta(days=rng.randint(1, 30) - min(days, 0))).isoformat()
        record["status"] = "active"
    return notices


def profile_toml(profile: Profile, *, language: str) -> str:
    """One profile file in the format of config/profiles/*.toml (JSON strings are TOML strings)."""
    def value(item: object) -> str:
        if isinstance(item, (list, tuple)):
            return "[" + ", ".join(value(part) for part in item) + "]"
        return json.dumps(item, ensure_ascii=False)

    fields = {"id": profile.id, "name": profile.name, "emails": profile.emails, "language": language,
              "description": profile.description, "keywords": profile.keywords, "exclude": profile.exclude,
              "cpv": profile.cpv, "regions": profile.regions, "max_value": int(profile.max_value or 0),
              "reserved_eligible": profile.reserved_eligible}
    return "".join(f"{key} = {value(item)}\n" for key, item in fields.items())


def build(folder: Path, records: list[dict], *, total: int, open_count: int, profiles: int,
          today: date) -> Path:
    """Write the store, the profile files and the config into ``folder``; return the config."""
    folder.mkdir(parents=True, exist_ok=True)
    store = Store.open(folder / "store.db")
    notices = notices_for(records, total=total, open_count=open_count, today=today)
    for start in range(0, len(notices), 5000):
        with store.transaction():
            for record in notices[start:start + 5000]:
                store.put_notice(record, keys=[f"pub:{record['id']}"], source="load", source_url=None,
                                 raw_id=None, change="new", fields=[])
    from tendermatch.web.console.auth import hash_password

    store.add_user(STAFF_NAME, role="staff", password_hash=hash_password(STAFF_PASSWORD))
    store.close()
    profile_folder = folder / "profiles"
    profile_folder.mkdir(exist_ok=True)
    for number, profile in enumerate(generate_profiles(notices[:open_count], profiles)):
        # A few corpus notices carry codes that are not NUTS ('00', '1A'): a profile may not.
        profile = replace(profile, regions=tuple(code for code in profile.regions if NUTS.fullmatch(code)))
        (profile_folder / f"{profile.id}.toml").write_text(
            profile_toml(profile, language="en" if number % 10 == 0 else "da"), encoding="utf-8")
    config = folder / "tendermatch.toml"
    config.write_text(
        '[store]\npath = "store.db"\n\n[matcher]\nprofiles = "profiles"\n\n'
        '[digest]\noutbox = "outbox"\nsender = "Udbudsvagten <udbud@kk.example>"\n'
        'base_url = "https://udbud.kk.example"\n', encoding="utf-8")
    return config


def run_timed(config: Path, *args: str, timeout: float = 900) -> Measured:
    """Run `tendermatch --config CONFIG ARGS` and return its wall time and its own peak RSS
    (through benchmarks/peak.py: not the memory of this process, which holds the store's records)."""
    env = {**os.environ, "TENDERMATCH_SECRET": SECRET}
    env.pop("TENDERMATCH_CONFIG", None)
    return run_with_peak([sys.executable, "-m", "tendermatch", "--config", str(config), *args], cwd=config.parent,
                         env=env, timeout=timeout)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Serving:
    """`tendermatch serve` on a free loopback port, for as long as the block runs."""

    def __init__(self, config: Path):
        self.config = config
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.opener = urllib.request.build_opener()

    def __enter__(self) -> Serving:
        env = {**os.environ, "TENDERMATCH_SECRET": SECRET}
        env.pop("TENDERMATCH_CONFIG", None)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tendermatch", "--config", str(self.config), "serve", "--port", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=self.config.parent)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/login", timeout=5):
                    self.log_in()
                    return self
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError(f"serve exited {self.process.returncode}") from None
                time.sleep(0.1)
        raise TimeoutError("serve did not answer within 60 s")

    def __exit__(self, *exc: object) -> None:
        assert self.process is not None
        self.process.terminate()
        self.process.wait(timeout=30)

    def get(self, path: str) -> tuple[float, int, bytes]:
        """Seconds, status and body of one GET (as the logged-in staff user)."""
        started = time.perf_counter()
        with self.opener.open(self.url + path, timeout=60) as response:
            body = response.read()
            return time.perf_counter() - started, response.status, body

    def log_in(self) -> None:
        """Log in through the console's form, as a browser would; the session cookie is kept."""
        import http.cookiejar
        from urllib.parse import urlencode

        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        with self.opener.open(self.url + "/login", timeout=60) as response:
            token = re.search(r'name="csrf" value="([^"]+)"', response.read().decode()).group(1)
        form = urlencode({"csrf": token, "navn": STAFF_NAME, "adgangskode": STAFF_PASSWORD}).encode()
        with self.opener.open(self.url + "/login", data=form, timeout=60) as response:
            if response.url.rstrip("/") != self.url:
                raise RuntimeError(f"the console login failed: {response.url}")


MATCH_LOG_PAGE = "/store/match_log?enterprise="


def measure(config: Path, *, requests: int) -> dict[str, float]:
    """Time match, digest --dry-run and the match-log page on the store of ``config``."""
    figures: dict[str, float] = {}
    match = run_timed(config, "match")
    if match.returncode:
        raise RuntimeError(f"match exited {match.returncode}: {match.stderr.strip()[-500:]}")
    figures.update(match_s=match.seconds, match_mb=match.peak_mb)
    digest = run_timed(config, "digest", "--dry-run")
    if digest.returncode:
        raise RuntimeError(f"digest --dry-run exited {digest.returncode}: {digest.stderr.strip()[-500:]}")
    digests = int(re.search(r"dry run: (\d+) digests", digest.stdout).group(1))
    figures.update(digest_s=digest.seconds, digest_mb=digest.peak_mb, digests=digests,
                   digests_per_s=digests / digest.seconds)
    # The digests for real (to the outbox), so the console's delivery pages have rows to read.
    sent = run_timed(config, "digest", "--send")
    if sent.returncode:
        raise RuntimeError(f"digest --send exited {sent.returncode}: {sent.stderr.strip()[-500:]}")
    figures.update(send_s=sent.seconds)
    with Serving(config) as serving:
        first, status, body = serving.get(MATCH_LOG_PAGE)
        if status != 200 or b"<table" not in body:
            raise RuntimeError(f"the match-log page answered {status} without a table")
        times = [serving.get(MATCH_LOG_PAGE)[0] for _ in range(requests)]
        json_times = [serving.get("/store/match_log.json?enterprise=&_shape=objects")[0] for _ in range(requests)]
        figures["console"] = console_times(serving, config, requests=requests)  # type: ignore[assignment]
    figures.update(page_first_s=first, page_s=statistics.median(times), page_json_s=statistics.median(json_times))
    store = Store.open(config.parent / "store.db")
    figures.update(matches=store.db.execute("SELECT count(*) FROM matches").fetchone()[0],
                   notices=store.db.execute("SELECT count(*) FROM notices").fetchone()[0])
    store.close()
    return figures


def console_pages(config: Path) -> list[tuple[str, str]]:
    """The console's pages to time: every list (unfiltered, searched, filtered, a late page),
    a notice's page (the notice with the most matches) and an enterprise's (the one with the most)."""
    from urllib.parse import quote

    store = Store.open(config.parent / "store.db")
    notice = store.db.execute("SELECT notice_id FROM matches GROUP BY notice_id ORDER BY count(*) DESC"
                              " LIMIT 1").fetchone()
    profile = store.db.execute("SELECT profile_id FROM matches GROUP BY profile_id ORDER BY count(*) DESC"
                               " LIMIT 1").fetchone()
    store.close()
    pages = [("Oversigt", "/"), ("Udbud", "/udbud"), ("Udbud, side 500", "/udbud?side=500"),
             ("Udbud, søgning (11,000 hits)", "/udbud?q=service"), ("Udbud, søgning", "/udbud?q=levering"),
             ("Udbud, filtre", "/udbud?ordregiver=kommune&fase=competition&omraade=DK0&naaet=nej&sortering=frist"),
             ("Udbud, frist", "/udbud?frist_fra=" + date.today().isoformat() + "&sortering=frist"),
             ("Udbud, ikke nået ud", "/udbud?naaet=nej"), ("Udbud, nået ud", "/udbud?naaet=ja"),
             ("Virksomheder", "/virksomheder"), ("Virksomheder, søgning", "/virksomheder?q=a"),
             ("Udsendelser", "/udsendelser"), ("Udsendelser, side 50", "/udsendelser?side=50"),
             ("Kørsler", "/koersler"), ("Ikke nået", "/ikke-naaet")]
    if notice:
        pages.append(("Et udbud", "/udbud/" + quote(notice[0], safe="")))
    if profile:
        pages.append(("En virksomhed", "/virksomheder/" + quote(profile[0], safe="")))
    pages.append(("Excel: Udbud, filtre (not a target)",
                  "/udbud.xlsx?ordregiver=kommune&fase=competition&naaet=nej"))
    return pages


def console_times(serving: Serving, config: Path, *, requests: int) -> dict[str, float]:
    """The median seconds of each console page (each fetched once first, untimed)."""
    found: dict[str, float] = {}
    for name, path in console_pages(config):
        _, status, _ = serving.get(path)
        if status != 200:
            raise RuntimeError(f"the console page {path} answered {status}")
        found[name] = statistics.median(serving.get(path)[0] for _ in range(requests))
    return found


def report_console(name: str, times: dict[str, float]) -> None:
    target = TARGETS["console_page_s"]
    for page, seconds in times.items():
        verdict = "" if "not a target" in page else ("  met" if seconds < target else "  NOT MET")
        print(f"{name}: console {page}: {seconds * 1000:.0f} ms{verdict}", flush=True)


def report(name: str, figures: dict[str, float]) -> None:
    print(f"{name}: {figures['notices']:,.0f} notices, {figures['matches']:,.0f} matches kept;"
          f" match {figures['match_s']:.1f} s ({figures['match_mb']:,.0f} MB);"
          f" digest --dry-run {figures['digests']:,.0f} digests in {figures['digest_s']:.1f} s"
          f" = {figures['digests_per_s']:.0f}/s ({figures['digest_mb']:,.0f} MB);"
          f" digest --send {figures['send_s']:.1f} s;"
          f" match-log page first {figures['page_first_s']:.2f} s, median {figures['page_s']:.2f} s"
          f" (JSON {figures['page_json_s']:.2f} s)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path,
                        default=Path(os.environ.get("TENDERMATCH_CORPUS", ROOT.parent / "shared" / "corpus")))
    parser.add_argument("--notices", type=int, default=50_000, help="Notices in the store [50000].")
    parser.add_argument("--open", type=int, default=15_000, help="Of which open for bids [15000].")
    parser.add_argument("--profiles", type=int, default=10_000, help="Profile files [10000].")
    parser.add_argument("--requests", type=int, default=5, help="Timed requests of the match-log page [5].")
    parser.add_argument("--no-baseline", action="store_true", help="Skip the open-notices-only store.")
    parser.add_argument("--keep", type=Path, help="Build in this folder and keep it (default: a temporary one).")
    args = parser.parse_args()

    today = date.today()
    records = open_notices(args.corpus)
    folder = args.keep or Path(tempfile.mkdtemp(prefix="tendermatch-load-"))
    try:
        started = time.perf_counter()
        config = build(folder / "full", records, total=args.notices, open_count=args.open,
                       profiles=args.profiles, today=today)
        print(f"built {args.notices:,} notices ({args.open:,} open) and {args.profiles:,} profiles"
              f" in {time.perf_counter() - started:.0f} s", flush=True)
        full = measure(config, requests=args.requests)
        report("full store", full)
        report_console("full store", full["console"])  # type: ignore[arg-type]
        if not args.no_baseline:
            base_config = build(folder / "open-only", records, total=args.open, open_count=args.open,
                                profiles=args.profiles, today=today)
            base = measure(base_config, requests=args.requests)
            report("baseline (open notices only)", base)
            print("ratio full/baseline: match {:.2f}, digest {:.2f}, page {:.2f}".format(
                full["match_s"] / base["match_s"], full["digest_s"] / base["digest_s"],
                full["page_s"] / base["page_s"]))
        verdicts = [f"match {full['match_s']:.1f} s <= {TARGETS['match_s']:.0f} s:"
                    f" {'met' if full['match_s'] <= TARGETS['match_s'] else 'NOT MET'}",
                    f"digest {full['digests_per_s']:.0f}/s >= {TARGETS['digests_per_s']:.0f}/s:"
                    f" {'met' if full['digests_per_s'] >= TARGETS['digests_per_s'] else 'NOT MET'}",
                    f"page {full['page_s']:.2f} s < {TARGETS['page_s']:.0f} s:"
                    f" {'met' if full['page_s'] < TARGETS['page_s'] else 'NOT MET'}"]
        console = {page: seconds for page, seconds in full["console"].items()  # type: ignore[attr-defined]
                   if "not a target" not in page}
        slowest = max(console, key=console.get)
        verdicts.append(f"slowest console page ({slowest}) {console[slowest] * 1000:.0f} ms <"
                        f" {TARGETS['console_page_s'] * 1000:.0f} ms:"
                        f" {'met' if console[slowest] < TARGETS['console_page_s'] else 'NOT MET'}")
        print("targets: " + "; ".join(verdicts))
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
