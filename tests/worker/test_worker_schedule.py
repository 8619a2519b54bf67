"""`tendermatch run` on short schedules, as real processes against a local HTTP server:
scheduled crawls and the match that follows a crawl with news, the digest job writing to
the outbox once per week, a run missed while the worker was down running once at start-up,
and a worker killed with SIGKILL in the middle of a crawl."""

from __future__ import annotations

import email
import email.policy
import json
import os
import re
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import run_cli
from tests.crawler.servers import LocalServer
from tests.worker.worker_process import (
    WEB,
    WORKER_ENV,
    RunningWorker,
    feed_source,
    runs,
    status,
    wait_until,
    write_worker_config,
)

pytestmark = pytest.mark.slow

ZONE = ZoneInfo("Europe/Copenhagen")
FEED = "/udbud_feed.xml"
NEVER = "0 0 3 1 1 *"  # 1 January 03:00:00: not during a test
NEW_ITEM = """    <item>
      <title>Daglig rengøring af skoler i Slagelse Kommune</title>
      <link>https://udbud.sjaelland.example/udbud/4799</link>
      <guid isPermaLink="true">https://udbud.sjaelland.example/udbud/4799</guid>
      <pubDate>Sun, 22 Nov 2026 09:00:00 +0100</pubDate>
      <dc:creator>Slagelse Kommune</dc:creator>
      <description>Rengøring af 9 skoler. Tilbudsfrist: 15. januar 2027 kl. 12:00. CPV: 90911200-8</description>
    </item>
  </channel>"""


def deliveries(config: Path) -> list[dict]:
    result = run_cli("--config", str(config), "deliveries", "--format", "json", env=WORKER_ENV)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def job_row(state: dict, job_id: str) -> dict:
    return next(job for job in state["jobs"] if job["id"] == job_id)


def stamp(value: str) -> datetime:
    return datetime.fromisoformat(value)


def gone(pid: int) -> bool:
    """True once ``pid`` has ended (a zombie waiting for its new parent to reap it counts)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


# -- scheduled crawls and the match after news ------------------------------------------------


def test_scheduled_crawls_run_every_few_seconds_and_a_match_follows_only_news(tmp_path, site):
    config = write_worker_config(tmp_path, [feed_source("feed", site.url + FEED, schedule="*/3 * * * * *")])
    worker = RunningWorker(config)
    try:
        worker.wait_for(r"worker started \(pid \d+\)")
        worker.wait_for(r"crawl:feed ok in", count=3, timeout=60)
        hits_before = len(site.server.hits_for(FEED, "GET"))
        every_crawl = runs(config, "crawl:feed")
        hits_after = len(site.server.hits_for(FEED, "GET"))
        crawls = [run for run in every_crawl if run["outcome"] != "running"]
        matches = runs(config, "match")

        assert len(crawls) >= 3
        for run in crawls:
            assert run["job"] == "crawl:feed" and run["outcome"] == "ok", run
            # The store keeps whole seconds: a crawl under a second starts and ends in the same one.
            assert stamp(run["started"]) <= stamp(run["finished"]) and run["seconds"] >= 0, run
            assert run["stats"]["fetched"] >= 1 and run["stats"]["errors"] == 0, run
        assert crawls[0]["stats"]["new"] == 6  # the six items of the feed
        assert all(run["stats"]["new"] == 0 and run["stats"]["updated"] == 0 for run in crawls[1:]), crawls
        # Each crawl asked the server for the feed once (a crawl is recorded before it fetches).
        assert len(crawls) <= hits_after and hits_before <= len(every_crawl)
        # One match, after the first crawl (it stored news); none after the crawls without news.
        assert len(matches) == 1, matches
        assert matches[0]["outcome"] == "ok" and matches[0]["id"] > crawls[0]["id"]
        assert stamp(matches[0]["started"]) >= stamp(crawls[0]["finished"])
        assert matches[0]["stats"]["matches"] >= 1
        assert len(worker.wait_for(r"match ok in")) == 1

        # The feed changes: one new item, one changed title. The next crawl stores them and a
        # second match follows.
        changed = (WEB / "udbud_feed.xml").read_text(encoding="utf-8")
        changed = changed.replace("<title>Tolkeydelser</title>", "<title>Tolkeydelser og oversættelse</title>")
        changed = changed.replace("  </channel>", NEW_ITEM, 1)
        site.routes[FEED] = changed.encode("utf-8")
        worker.wait_for(r"crawl:feed ok in [\d.]+ s: fetched 1, new 1, updated 1", timeout=30)
        worker.wait_for(r"match ok in", count=2, timeout=30)
    finally:
        code = worker.stop()
    assert code == 0, worker.log()
    log = worker.log()
    assert "stopping (SIGTERM): no new jobs" in log and log.rstrip().endswith("worker stopped")

    crawls = runs(config, "crawl:feed")
    matches = runs(config, "match")
    news = [run for run in crawls if run["stats"].get("new", 0) + run["stats"].get("updated", 0) > 0]
    assert [run["stats"]["new"] for run in news] == [6, 1] and news[1]["stats"]["updated"] == 1
    assert len(matches) == 2 and all(run["outcome"] == "ok" for run in matches), matches
    assert news[0]["id"] < matches[0]["id"] < news[1]["id"] < matches[1]["id"]
    assert not [run for run in crawls if run["outcome"] == "running"]

    state = status(config)
    assert state["worker"]["running"] is False and state["worker"]["pid"] is None
    assert state["worker"]["stopped"]
    assert state["store"]["notices"] == 7
    assert job_row(state, "crawl:feed")["outcome"] in ("ok", "interrupted")


# -- the digest job ---------------------------------------------------------------------------


def test_the_digest_job_writes_each_profiles_digest_to_the_outbox_once_a_week(tmp_path, site):
    config = write_worker_config(tmp_path, [feed_source("feed", site.url + FEED, schedule=NEVER)],
                                 digest_schedule="*/2 * * * * *")
    worker = RunningWorker(config)
    try:
        worker.wait_for(r"match ok in", timeout=45)
        sent_line = worker.wait_for(r"digest \d{4}-W\d\d: [1-9]\d* sent", timeout=30)[0]
        # Two more digest runs after the one that sent.
        count = len(worker.wait_for(r"digest \d{4}-W\d\d: \d+ sent"))
        worker.wait_for(r"digest \d{4}-W\d\d: \d+ sent", count=count + 2, timeout=30)
    finally:
        code = worker.stop()
    assert code == 0, worker.log()
    period = re.search(r"digest (\d{4}-W\d\d):", sent_line).group(1)

    rows = deliveries(config)
    assert rows and all(row["state"] == "sent" and row["period"] == period for row in rows), rows
    keys = [(row["profile_id"], row["email"], row["period"]) for row in rows]
    assert len(keys) == len(set(keys)), keys  # one digest per profile, address and week
    files = sorted((tmp_path / "outbox").glob("*.eml"))
    assert len(files) == len(rows)
    assert sorted(path.name for path in files) == sorted(f"{row['period']}-{row['profile_id']}-{row['id']}.eml"
                                                         for row in rows)
    for row in rows:
        message = email.message_from_bytes(
            (tmp_path / "outbox" / f"{row['period']}-{row['profile_id']}-{row['id']}.eml").read_bytes(),
            policy=email.policy.default)
        assert row["email"] in str(message["To"]) and "udbud@kk.example" in str(message["From"])
        assert str(message["Subject"]) == row["subject"] and row["items"] >= 1

    digest_runs = runs(config, "digest")
    assert all(run["outcome"] == "ok" for run in digest_runs), digest_runs
    sending = [run for run in digest_runs if run["stats"]["sent"] > 0]
    assert len(sending) == 1 and sending[0]["stats"]["sent"] == len(rows) == sending[0]["stats"]["planned"]
    after = [run for run in digest_runs if run["id"] > sending[0]["id"] and run["stats"]["period"] == period]
    assert len(after) >= 2
    assert all(run["stats"]["sent"] == 0 and run["stats"]["planned"] == 0 for run in after), after
    assert status(config)["store"]["deliveries"] == len(rows)


# -- a run missed while the worker was down ---------------------------------------------------


def past_window(last_started: datetime, *, seconds: int = 3) -> tuple[datetime, datetime]:
    """Whole seconds within one minute, after ``last_started`` (stored in whole seconds)
    and already past: the first and last of at least ``seconds`` of them."""
    while True:
        now = datetime.now(ZONE).replace(microsecond=0)
        first = last_started.astimezone(ZONE) + timedelta(seconds=2)
        last = now - timedelta(seconds=1)
        moments = []
        moment = first
        while moment <= last:
            moments.append(moment)
            moment += timedelta(seconds=1)
        by_minute: dict[datetime, list[datetime]] = {}
        for moment in moments:
            by_minute.setdefault(moment.replace(second=0), []).append(moment)
        best = max(by_minute.values(), key=len, default=[])
        if len(best) >= seconds:
            return best[0], best[-1]
        time.sleep(0.5)


def test_a_run_missed_while_the_worker_was_down_runs_once_at_start_up(tmp_path, site):
    hour_ago = datetime.now(ZONE) - timedelta(hours=1)
    daily = f"{hour_ago.minute} {hour_ago.hour} * * *"  # today's time passed before these crawls
    atom = feed_source("atom", site.url + "/udbud_atom.xml", schedule=daily)
    config = write_worker_config(tmp_path, [feed_source("feed", site.url + FEED, schedule=daily), atom])
    first = RunningWorker(config)
    try:
        first.wait_for(r"crawl:feed: never crawled to an end, so it runs now")
        first.wait_for(r"crawl:atom: never crawled to an end, so it runs now")
        first.wait_for(r"crawl:feed ok in", timeout=45)
        first.wait_for(r"crawl:atom \w+ in", timeout=45)
    finally:
        assert first.stop() == 0, first.log()
    [feed_run] = runs(config, "crawl:feed")
    [atom_run] = runs(config, "crawl:atom")
    assert feed_run["outcome"] == "ok"

    # crawl:feed: several slots passed since its run (whole seconds of one minute just gone),
    # the next is tomorrow. crawl:atom keeps its daily time, which passed before its run.
    start, end = past_window(stamp(feed_run["started"]))
    schedule = f"{start.second}-{end.second} {start.minute} {start.hour} * * *"
    write_worker_config(tmp_path, [feed_source("feed", site.url + FEED, schedule=schedule), atom])
    hits_before = len(site.server.hits_for(FEED))
    second = RunningWorker(config)
    try:
        second.wait_for(r"worker started")
        line = second.wait_for(r"crawl:feed: its scheduled time passed since it last ran")[0]
        assert f"({feed_run['started']})" in line
        second.wait_for(r"crawl:feed ok in", timeout=45)
        time.sleep(2.5)  # time for more catch-up runs, if there were to be any
        state = status(config)
    finally:
        assert second.stop() == 0, second.log()
    log = second.log()
    assert len(re.findall(r"crawl:feed started", log)) == 1, log
    assert "crawl:atom started" not in log and "crawl:atom: " not in log.replace("crawl:atom: schedule", "")
    crawls = runs(config, "crawl:feed")
    assert len(crawls) == 2 and crawls[1]["outcome"] == "ok" and crawls[1]["pid"] == second.pid
    assert len(site.server.hits_for(FEED)) == hits_before + 1
    assert runs(config, "crawl:atom") == [atom_run]

    assert state["worker"]["running"] is True and state["worker"]["pid"] == second.pid
    feed_job, atom_job = job_row(state, "crawl:feed"), job_row(state, "crawl:atom")
    assert feed_job["schedule"] == schedule and feed_job["timezone"] == "Europe/Copenhagen"
    tomorrow = datetime.combine(start.date() + timedelta(days=1), start.time().replace(tzinfo=None), ZONE)
    assert stamp(feed_job["next_run"]) == tomorrow
    assert stamp(feed_job["next_run"]) > datetime.now(UTC) + timedelta(hours=1)
    assert feed_job["last_run"] == crawls[1]["started"] and feed_job["outcome"] == "ok"
    next_atom = stamp(atom_job["next_run"])
    assert (next_atom.hour, next_atom.minute) == (hour_ago.hour, hour_ago.minute)
    assert next_atom > datetime.now(UTC) + timedelta(hours=1)


# -- a worker killed with SIGKILL mid-crawl ---------------------------------------------------


class SlowFeed:
    """A feed that takes ``delay`` seconds to answer."""

    def __init__(self, delay: float = 4):
        self.delay = delay
        self.content = (WEB / "udbud_feed.xml").read_bytes()
        self.server = LocalServer(self.handle)
        self.url = self.server.url + "/slow_feed.xml"

    def handle(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        if path == "/robots.txt":
            return 200, {"Content-Type": "text/plain"}, b"User-agent: *\nDisallow:\n"
        if path == "/slow_feed.xml":
            time.sleep(self.delay)
            return 200, {"Content-Type": "application/xml"}, self.content
        return 404, {"Content-Type": "text/plain"}, b"not found"

    def requests(self) -> int:
        return len(self.server.hits_for("/slow_feed.xml"))

    def close(self) -> None:
        self.server.close()


def start_crawl_in_flight(folder: Path, feed: SlowFeed) -> tuple[Path, RunningWorker, int]:
    """A worker whose first crawl is waiting for the slow feed; returns its crawl child."""
    config = write_worker_config(folder, [feed_source("feed", feed.url, schedule=NEVER)])
    worker = RunningWorker(config)
    worker.wait_for(r"crawl:feed started")
    wait_until(feed.requests, timeout=30, what="the crawl asks for the feed")
    [child] = worker.children()
    return config, worker, child


@pytest.fixture(scope="module")
def killed_mid_crawl(tmp_path_factory):
    """A worker killed with SIGKILL while its crawl waits for the slow feed; then, once its
    crawl child is gone, a new worker on the same config, stopped once its start-up jobs end."""
    folder = tmp_path_factory.mktemp("killed-mid-crawl")
    feed = SlowFeed()
    old = new = None
    try:
        config, old, child = start_crawl_in_flight(folder, feed)
        [before] = runs(config, "crawl:feed")
        old.kill()
        killed_at = time.monotonic()
        wait_until(lambda: gone(child), timeout=20, what=f"the crawl child {child} ends after its worker")
        child_seconds = time.monotonic() - killed_at
        new = RunningWorker(config)
        new.wait_for(r"digest: schedule")  # the last line of its start-up
        if re.search(r"crawl:feed: .* so it runs now", new.log()):
            new.wait_for(r"crawl:feed \w+ in", timeout=45)
            new.wait_for(r"match ok in", timeout=30)
        else:
            time.sleep(1)
        state = status(config)
        code = new.stop()
        yield {"config": config, "old": old, "new": new, "before": before, "child": child,
               "child_seconds": child_seconds, "status": state, "code": code, "feed_requests": feed.requests()}
    finally:
        for worker in (old, new):
            if worker is not None:
                worker.kill()
        feed.close()


def test_the_crawl_child_of_a_killed_worker_ends_and_a_new_worker_starts(killed_mid_crawl):
    result = killed_mid_crawl
    assert result["before"]["outcome"] == "running" and result["before"]["pid"] == result["old"].pid
    assert result["child_seconds"] < 20  # it got SIGTERM when its worker died
    assert gone(result["child"])
    # The kernel released the killed worker's store lock: the new worker runs and stops cleanly.
    assert result["code"] == 0, result["new"].log()
    assert "already running" not in result["new"].log()
    assert result["status"]["worker"]["running"] is True and result["status"]["worker"]["pid"] == result["new"].pid
    # Once the new worker's jobs have ended, no run is left "running".
    assert [run for run in runs(result["config"]) if run["outcome"] == "running"] == []


def test_a_crawl_cut_off_by_a_killed_worker_is_marked_interrupted_and_runs_again(killed_mid_crawl):
    result = killed_mid_crawl
    log = result["new"].log()
    crawls = runs(result["config"], "crawl:feed")
    assert crawls[0]["id"] == result["before"]["id"]
    assert crawls[0]["outcome"] == "interrupted", crawls[0]
    assert f"marked 1 run(s) interrupted that a stopped process left running (ids {crawls[0]['id']})" in log
    assert "crawl:feed started" in log  # it runs again at start-up
    assert len(crawls) == 2 and crawls[1]["outcome"] == "ok" and crawls[1]["pid"] == result["new"].pid


def test_runs_left_running_by_a_power_cut_are_marked_interrupted_and_run_again(tmp_path):
    """The worker and its crawl child both die at once (SIGKILL to both, the child frozen
    first so it cannot record anything): the next worker marks the run interrupted and
    crawls again at start-up."""
    feed = SlowFeed(delay=2)
    old = new = None
    try:
        config, old, child = start_crawl_in_flight(tmp_path, feed)
        os.kill(child, signal.SIGSTOP)
        old.kill()
        os.kill(child, signal.SIGKILL)
        wait_until(lambda: gone(child), timeout=20, what=f"the crawl child {child} ends")
        [cut] = runs(config, "crawl:feed")
        assert cut["outcome"] == "running" and cut["pid"] == old.pid

        new = RunningWorker(config)
        line = new.wait_for(r"marked \d+ run\(s\) interrupted")[0]
        assert f"marked 1 run(s) interrupted that a stopped process left running (ids {cut['id']})" in line
        new.wait_for(r"crawl:feed ok in", timeout=45)
        new.wait_for(r"match ok in", timeout=30)
        crawls = runs(config, "crawl:feed")
        assert [run["outcome"] for run in crawls] == ["interrupted", "ok"]
        assert crawls[0]["error"] == "the process running it ended before it finished (killed?)"
        assert crawls[0]["finished"] and crawls[1]["pid"] == new.pid and crawls[1]["stats"]["new"] == 6
        assert feed.requests() == 2
        assert new.stop() == 0, new.log()
        assert [run for run in runs(config) if run["outcome"] == "running"] == []
    finally:
        for worker in (old, new):
            if worker is not None:
                worker.kill()
        feed.close()
