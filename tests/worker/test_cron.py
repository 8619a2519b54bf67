"""Schedules: a crontab expression fires when crontab says it does (APScheduler 3 counts
weekdays from Monday = 0; crontab from Sunday = 0), checked against a brute-force reading
of crontab's rules."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tendermatch.worker.config import ConfigError, check_cron, cron_trigger

ZONE = ZoneInfo("Europe/Copenhagen")
NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def crontab_values(field: str, low: int, high: int, *, weekday: bool = False) -> set[int]:
    """crontab(5)'s reading of one field, written independently of the product's."""
    values: set[int] = set()
    for part in field.split(","):
        span, _, step = part.partition("/")
        if span == "*":
            start, end = low, high
        elif "-" in span:
            start, end = (NAMES.index(x) if weekday and x.isalpha() else int(x) for x in span.split("-"))
        else:
            start = NAMES.index(span) if weekday and span.isalpha() else int(span)
            end = high if step else start
        values.update(range(start, end + 1, int(step or 1)))
    return {7 % 7 if weekday and v == 7 else v for v in values}


def brute_force_fires(expression: str, start: datetime, count: int) -> list[datetime]:
    minute, hour, day, month, weekday = expression.split()
    minutes, hours = crontab_values(minute, 0, 59), crontab_values(hour, 0, 23)
    days, months = crontab_values(day, 1, 31), crontab_values(month, 1, 12)
    weekdays = crontab_values(weekday, 0, 7, weekday=True)
    fires, moment = [], start.replace(second=0, microsecond=0) + timedelta(minutes=1)
    while len(fires) < count:
        if (moment.minute in minutes and moment.hour in hours and moment.day in days and moment.month in months
                and (moment.isoweekday() % 7) in weekdays):
            fires.append(moment)
        moment += timedelta(minutes=1)
    return fires


def trigger_fires(expression: str, start: datetime, count: int) -> list[datetime]:
    trigger = cron_trigger(expression, timezone="Europe/Copenhagen")
    fires, previous, now = [], None, start + timedelta(seconds=1)
    while len(fires) < count:
        fire = trigger.get_next_fire_time(previous, now)
        fires.append(fire.replace(tzinfo=None))
        previous, now = fire, fire + timedelta(seconds=1)
    return fires


@pytest.mark.parametrize("expression", [
    "0 7 * * 1",          # the digest default: Monday 07:00 (APScheduler's from_crontab says Tuesday)
    "30 6 * * 1-5",       # weekdays
    "0 6 * * 0",          # Sunday as 0
    "0 6 * * 7",          # Sunday as 7
    "0 6 * * 5-7",        # Friday to Sunday
    "15 8 * * */2",       # Sun, Tue, Thu, Sat
    "0 9 * * 1/2",        # Mon, Wed, Fri
    "0 12 * * sat,sun",   # names
    "0 12 * * mon-fri",
    "45 23 1,15 * *",     # days of the month
    "*/20 5-6 * 2 *",     # steps, ranges, a month
])
def test_schedule_fires_when_crontab_says(expression):
    start = datetime(2026, 11, 22, 12, 0)  # a Sunday
    assert trigger_fires(expression, start.replace(tzinfo=ZONE), 12) == brute_force_fires(expression, start, 12)


def test_the_default_digest_time_is_monday_seven_in_copenhagen():
    fire = cron_trigger("0 7 * * 1", timezone="Europe/Copenhagen").get_next_fire_time(
        None, datetime(2026, 11, 22, 12, tzinfo=ZONE))
    assert fire.isoformat() == "2026-11-23T07:00:00+01:00" and fire.strftime("%A") == "Monday"


def test_six_fields_put_seconds_first():
    trigger = cron_trigger("*/5 * * * * *", timezone="Europe/Copenhagen")
    start = datetime(2026, 11, 22, 12, 0, 1, tzinfo=ZONE)
    assert trigger.get_next_fire_time(None, start).second == 5


@pytest.mark.parametrize("expression, problem", [
    ("0 7 * *", "5 fields"),
    ("61 * * * *", "not a valid cron expression"),
    ("0 7 * * 8", "not a weekday"),
    ("0 7 * * fri-mon", "backwards"),
    ("0 7 1 * 1", "day of the month or the weekday"),
])
def test_bad_schedules_are_refused_with_the_reason(expression, problem):
    with pytest.raises(ConfigError, match=problem) as error:
        check_cron(expression, "tendermatch.toml: source 'x': schedule")
    assert str(error.value).startswith("tendermatch.toml: source 'x': schedule")
