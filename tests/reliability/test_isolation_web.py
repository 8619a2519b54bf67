"""One request costs only itself: the web view's limits, against a real `tendermatch serve`.

A small store (the eForms samples ingested, the shipped profiles matched) is served on a
free loopback port with ``[digest] base_url = "https://udbud.kk.example"``. Then:

- SQL typed into the view that builds huge values (one function call of printf, zeroblob,
  instr...) or a huge result answers a 400 quickly, and serve's peak memory stays small;
- no request parameter on a table, row, query or canned-query page gives a 500, and the
  serve log gets no traceback;
- a huge request body or query string is refused (413, 405, 414) without being read, and
  a body that was refused unsubscribes nobody;
- a ``Host: evil.example`` header appears in no link, JSON field or redirect.
"""

from __future__ import annotations

import http.client
import json
import select
import socket
import sqlite3
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tendermatch.notifier.tokens import check_secret, make_token
from tests import configs
from tests.conftest import ROOT, SAMPLE, run_cli
from tests.notifier.smtp_server import free_port
from tests.web.served import SECRET, ServeProcess, secret_env

PUBLIC = "https://udbud.kk.example"
EVIL = "evil.example"
# serve's peak resident memory after every attack here (it starts at about 70 MB; before
# the limits one printf call took it to 2 GB).
MAX_PEAK_MB = 300


@dataclass
class Site:
    folder: Path
    server: ServeProcess
    notice_id: str  # a stored notice, for its row page

    @property
    def store(self) -> Path:
        return self.folder / "store.db"

    def peak_mb(self) -> float:
        status = Path(f"/proc/{self.server.process.pid}/status").read_text()
        line = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("web-limits")
    port = free_port()
    config = configs.write_config(folder, matcher={"profiles": ROOT / "config" / "profiles"},
                                  digest={"base_url": PUBLIC}, serve={"port": port, "datasette_without_login": True})
    run_cli("--config", str(config), "ingest", str(SAMPLE / "eforms"), check=True, env=secret_env())
    run_cli("--config", str(config), "match", check=True, env=secret_env())
    with sqlite3.connect(folder / "store.db") as db:
        (notice_id,) = db.execute("SELECT id FROM notices ORDER BY id LIMIT 1").fetchone()
    server = ServeProcess(config, port, fresh=True).start()  # its peak memory is measured
    try:
        yield Site(folder=folder, server=server, notice_id=notice_id)
    finally:
        server.stop()


def request(site: Site, path: str, *, method: str = "GET", headers: dict[str, str] | None = None,
            timeout: float = 30) -> tuple[int, dict[str, str], str]:
    """(status, headers with lower-case names, body) of one request, no redirect followed."""
    connection = http.client.HTTPConnection("127.0.0.1", site.server.port, timeout=timeout)
    try:
        connection.request(method, path, headers=headers or {})
        response = connection.getresponse()
        return (response.status, {name.lower(): value for name, value in response.getheaders()},
                response.read().decode("utf-8", "replace"))
    finally:
        connection.close()


def sql_path(sql: str, *, page: str = "/store.json") -> str:
    return f"{page}?{urllib.parse.urlencode({'sql': sql})}"


def no_traceback(site: Site) -> None:
    log = site.server.log()
    assert "Traceback" not in log, log[-3000:]


# -- 1. SQL that builds huge values or results ------------------------------------------------------

# 1000 rows in one query, without any table (generate_series is not in every SQLite).
ROWS = "with recursive r(n) as (select 1 union all select n + 1 from r where n < 1000)"
HUGE_SQL = {
    "printf precision": "select printf('%.*c', 900000000, 'x')",
    "printf literal precision": "select printf('%.900000000c', 'x') as v",
    "format width": "select format('%*c', 900000000, 'x')",
    "zeroblob": "select zeroblob(400000000)",
    "randomblob": "select length(randomblob(400000000))",
    "hex of a big blob": "select hex(zeroblob(30000000))",
    "three 30 MB columns": ("select printf('%*c', 30000000, 'a') as a, printf('%*c', 30000000, 'b') as b,"
                            " printf('%*c', 30000000, 'c') as c"),
    "1000 rows of 1 MB": f"{ROWS} select n, printf('%*c', 1000000, 'x') as v from r",
    "group_concat": f"{ROWS} select length(group_concat(printf('%*c', 100000, 'x'))) from r",
    # length times length: minutes in one call before the guard
    "instr": "select instr(printf('%*c', 20000000, ' '), printf('%*c', 100000, ' ') || 'x')",
    "replace": "select length(replace(printf('%*c', 20000000, ' '), printf('%*c', 100000, ' '), ''))",
    "trim": "select length(trim(printf('%*c', 20000000, ' '), printf('%*c', 100000, 'y') || ' '))",
}


@pytest.mark.parametrize("name", HUGE_SQL)
def test_sql_that_builds_a_huge_value_or_result_answers_400_quickly(site, name):
    for page in ("/store.json", "/store"):
        started = time.monotonic()
        status, _, body = request(site, sql_path(HUGE_SQL[name], page=page), timeout=60)
        seconds = time.monotonic() - started
        assert status == 400, (page, status, body[:500])
        assert seconds < 10, (page, seconds)  # not a hang: the time limit is 3 s
        if page.endswith(".json"):
            answer = json.loads(body)
            assert answer["ok"] is False and answer["error"], answer
    assert site.peak_mb() < MAX_PEAK_MB


def test_after_every_huge_query_serve_is_small_and_answers_ordinary_sql(site):
    for sql in HUGE_SQL.values():  # again, in one run, whatever order the tests ran in
        assert request(site, sql_path(sql), timeout=60)[0] == 400
    status, _, body = request(site, sql_path("select count(*) as n, printf('%5.1f|%-3s|', 2.5, 'a') as f,"
                                             " instr('udbud', 'b') as i, replace('a-b', '-', '+') as r,"
                                             " trim('..x..', '.') as t from notices"))
    assert status == 200, body[:500]
    answer = json.loads(body)
    row = dict(zip(answer["columns"], answer["rows"][0], strict=True))
    assert row["n"] > 0 and row == {"n": row["n"], "f": "  2.5|a  |", "i": 3, "r": "a+b", "t": "x"}
    # A page of a table's biggest values still shows.
    assert request(site, "/store/raw_documents?_size=100")[0] == 200
    assert request(site, "/store/notices.json?_size=max&_shape=array")[0] == 200
    assert site.peak_mb() < MAX_PEAK_MB
    no_traceback(site)


# -- 2. no request parameter gives a 500 ------------------------------------------------------------

BAD_PARAMETERS = [
    {"_sort": "nope"}, {"_sort_desc": "nope"}, {"_sort": "id", "_sort_desc": "title"}, {"_sort": "id; drop"},
    {"_facet": "nope"}, {"_facet": "{}"}, {"_facet_array": "nope"}, {"_facet_date": "[]"}, {"_facet_size": "abc"},
    {"_through": "{}"}, {"_through": "[]"}, {"_through": '{"table": "lots", "column": "x", "value": "1"}'},
    {"_timelimit": "abc"}, {"_timelimit": "-1"}, {"_json_infinity": "maybe"}, {"_col": "nope"}, {"_nocol": "id"},
    {"_size": "abc"}, {"_size": "-5"}, {"_next": "zzz"}, {"_shape": "nope"}, {"_nl": "x"}, {"_labels": "x"},
    {"title__gt": "99999999999999999999"}, {"title__in": "[1,2"}, {"title__arraycontains": "x"},
    {"nope__exact": "1"}, {"_where": "\x00"}, {"_where": "nope = 1"}, {"_search": "\x00"}, {"_fts_table": "nope"},
    {"_filter_column": "nope", "_filter_op": "exact", "_filter_value": "1"}, {"_trace": "1"}, {"_stream": "x"},
]


def pages(site: Site) -> list[str]:
    notice = urllib.parse.quote(site.notice_id, safe="")
    return ["/store/notices", "/store/notices.json", "/store/notices.csv", "/store/lots.json",
            f"/store/notices/{notice}", f"/store/notices/{notice}.json",
            "/store/match_log", "/store/match_log.json", "/store/deliveries.csv",
            "/store", "/store.json"]


def test_no_request_parameter_on_any_page_gives_a_500_or_a_traceback(site):
    answers = {}
    for page in pages(site):
        for parameters in BAD_PARAMETERS:
            query = dict(parameters)
            if page in ("/store", "/store.json"):
                query["sql"] = "select id, title from notices"
            status, _, body = request(site, f"{page}?{urllib.parse.urlencode(query)}")
            answers[(page, json.dumps(parameters))] = (status, body[:200])
    server_errors = {key: answer for key, answer in answers.items() if answer[0] >= 500}
    assert not server_errors, server_errors
    # The example: a sort on a missing column is the request's fault.
    for page in ("/store/notices", "/store/notices.json", "/store/notices.csv"):
        for parameters in ({"_sort": "nope"}, {"_sort_desc": "nope"}):
            assert answers[(page, json.dumps(parameters))][0] == 400
    assert "Cannot sort table by nope" in answers[("/store/notices.json", json.dumps({"_sort": "nope"}))][1]
    no_traceback(site)


# -- 3. huge bodies and query strings are refused unread ------------------------------------------------


def raw_exchange(site: Site, *parts: bytes, timeout: float = 15) -> tuple[int | None, float]:
    """Send ``parts`` (a request head, body chunks) until the server answers; (status, seconds).

    Between parts it looks for an answer, and stops sending once there is one: more bytes
    to a server that has answered and closed would reset the connection, losing the answer.
    """
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", site.server.port), timeout=timeout) as sock:
        for part in parts:
            if select.select([sock], [], [], 0)[0]:
                break
            try:
                sock.sendall(part)
            except OSError:
                break  # refused mid-way: the answer is waiting
        answer = b""
        try:
            while b"\r\n" not in answer:
                data = sock.recv(65536)
                if not data:
                    break
                answer += data
        except OSError:  # a timeout: no answer
            pass
    status = int(answer.split()[1]) if answer.startswith(b"HTTP/1.1 ") else None
    return status, time.monotonic() - started


def pieces(data: bytes, size: int = 65536) -> list[bytes]:
    return [data[start:start + size] for start in range(0, len(data), size)]


def unsubscribes(site: Site) -> int:
    with sqlite3.connect(f"file:{site.store}?mode=ro", uri=True) as db:
        return db.execute("SELECT count(*) FROM unsubscribes").fetchone()[0]


def test_huge_bodies_and_query_strings_are_refused_unread(site):
    before = site.peak_mb()
    token = make_token("rent-fokus", "kontakt@rentfokus.example", secret=check_secret(SECRET))
    unsubscribe = f"/unsubscribe?token={token}"
    headers = "Host: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"

    # A valid unsubscribe announcing 2 GB: refused at once, before any of it is read.
    status, seconds = raw_exchange(
        site, f"POST {unsubscribe} HTTP/1.1\r\n{headers}Content-Length: 2000000000\r\n\r\n".encode())
    assert status == 413 and seconds < 5
    # The same without a length (chunked): refused once past the cap, the rest unread.
    chunk = b"10000\r\n" + b"List-Unsubscribe=One-Click&" * 2427 + b"x" * (0x10000 - 27 * 2427) + b"\r\n"
    status, seconds = raw_exchange(
        site, f"POST {unsubscribe} HTTP/1.1\r\n{headers}Transfer-Encoding: chunked\r\n\r\n".encode(),
        *[chunk] * 320)  # 20 MB if all of it were read
    assert status == 413 and seconds < 10
    assert unsubscribes(site) == 0  # a refused body unsubscribes nobody
    # Anywhere else a body is not even looked at: the view is read-only.
    status, seconds = raw_exchange(
        site, f"POST /store/notices HTTP/1.1\r\n{headers}Content-Length: 2000000000\r\n\r\n".encode())
    assert status == 405 and seconds < 5

    # A long query string: 414 from the view; a huge one is cut off by the HTTP server.
    long_sql = "select 1 where '" + "x" * 40_000 + "' != ''"
    assert request(site, sql_path(long_sql))[0] == 414
    status, seconds = raw_exchange(
        site, *pieces(b"GET /store.json?sql=" + b"x" * 5_000_000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"))
    assert status in (400, 414, 431) and seconds < 10

    assert site.peak_mb() < before + 30  # none of it was held in memory
    # Still serving, and an ordinary one-click unsubscribe still works.
    connection = http.client.HTTPConnection("127.0.0.1", site.server.port, timeout=30)
    connection.request("POST", unsubscribe, body="List-Unsubscribe=One-Click",
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert connection.getresponse().status == 200
    connection.close()
    assert unsubscribes(site) == 1
    no_traceback(site)


# -- 4. the Host header is never echoed -----------------------------------------------------------------


def host_probes(site: Site) -> list[str]:
    notice = urllib.parse.quote(site.notice_id, safe="")
    token = make_token("rent-fokus", "kontakt@rentfokus.example", secret=check_secret(SECRET))
    return ["/", "/store", "/store/notices", "/store/notices?_facet=kind", "/store/notices.json",
            "/store/notices.json?_size=1", "/store/notices?_size=1", "/store/notices.json?_facet=kind&_size=1",
            f"/store/notices/{notice}", f"/store/notices/{notice}.json", "/store/match_log?enterprise=",
            "/store/match_log.json?enterprise=", sql_path("select id from notices limit 2", page="/store"),
            sql_path("select id from notices limit 2"), "/store/notices/", "/store/",
            "/store/notices?_filter_column=kind&_filter_op=exact&_filter_value=tender",
            "/store/notices?_sort=nope", "/nope", "/-/versions.json", "/-/metadata.json",
            f"/unsubscribe?token={token}", "/unsubscribe?token=forged", "/%2Fevil.example/", "//evil.example/"]


@pytest.mark.parametrize("forged", [
    {"Host": EVIL}, {"Host": f"{EVIL}:443"}, {"Host": "127.0.0.1", "X-Forwarded-Host": EVIL},
    {"Host": EVIL, "X-Forwarded-Proto": "https"},
], ids=["host", "host-port", "x-forwarded-host", "host-https"])
def test_a_forged_host_appears_in_no_link_json_or_redirect(site, forged):
    answers = {}
    for path in host_probes(site):
        status, headers, body = request(site, path, headers=forged)
        answers[path] = (status, headers, body)
        assert status < 500, (path, status, body[:300])
        assert EVIL not in body or path.startswith(("/%2F", "//")), (path, body[:2000])
        leaked = {name: value for name, value in headers.items() if EVIL in value}
        assert not leaked or path.startswith(("/%2F", "//")), (path, leaked)
        location = headers.get("location")
        if location:  # every redirect stays on the public origin
            target = urllib.parse.urlsplit(urllib.parse.urljoin(PUBLIC + "/", location.replace("\\", "/")))
            assert (target.scheme, target.netloc) == ("https", "udbud.kk.example"), (path, location)
    # Absolute links are made, and they name the configured public URL.
    page = json.loads(answers["/store/notices.json?_size=1"][2])
    assert page["next_url"].startswith(f"{PUBLIC}/store/notices.json?")
    assert answers["/store/notices"][1]["link"].startswith(f"{PUBLIC}/store/notices.json")
