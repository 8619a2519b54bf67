"""The crawl's progress line on stderr: every 2 seconds of a long crawl, never a line per
quick crawl that its command's summary repeats a moment later."""

from __future__ import annotations

import time

from tendermatch.crawler.stats import RunStats, progress


def crawl_documents(monkeypatch, capsys, seconds: list[float], *, enabled: bool = True) -> list[str]:
    """The progress lines of a crawl whose documents arrive at ``seconds`` on the clock."""
    clock = iter(seconds)
    monkeypatch.setattr(time, "monotonic", lambda: next(clock))
    progress.start(enabled=enabled)
    stats = RunStats()
    for _ in seconds:
        stats.fetched += 1
        stats.new += 1
        progress.report("kk-udbud", stats)
    progress.start(enabled=False)
    return capsys.readouterr().err.splitlines()


def test_a_crawl_shorter_than_two_seconds_prints_no_progress_line(monkeypatch, capsys):
    assert crawl_documents(monkeypatch, capsys, [50.0, 50.4, 51.2, 51.9]) == []


def test_a_long_crawl_prints_a_line_every_two_seconds_from_its_first_document(monkeypatch, capsys):
    lines = crawl_documents(monkeypatch, capsys, [50.0, 51.0, 52.0, 53.5, 54.1])
    assert lines == ["  kk-udbud: fetched 3, new 3, updated 0, unchanged 0, rejected 0, errors 0",
                     "  kk-udbud: fetched 5, new 5, updated 0, unchanged 0, rejected 0, errors 0"]


def test_the_next_crawl_run_starts_its_own_clock(monkeypatch, capsys):
    assert len(crawl_documents(monkeypatch, capsys, [10.0, 13.0])) == 1
    assert crawl_documents(monkeypatch, capsys, [100.0, 101.0]) == []


def test_commands_that_do_not_ask_for_progress_print_none(monkeypatch, capsys):
    assert crawl_documents(monkeypatch, capsys, [0.0, 5.0, 10.0], enabled=False) == []
