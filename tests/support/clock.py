"""The one "now" of a test: pass it wherever the code takes a clock, move it by hand.

The whole run's clock is time.time(), which TYS_TEST_NOW moves (tests/conftest.py). A test
that needs room in the event's day places its own Clock with ``room_in_day``; a test of a
server in a subprocess, whose clock nothing moves, dates its notifications by
``wall_clock_s``.
"""

from __future__ import annotations

import datetime as dt
import time
import zoneinfo

import time_machine

HOUR_S = 3600.0


class Clock:
    """A clock that reads now_s, which only the test moves."""

    def __init__(self, now_s: float) -> None:
        self.now_s = now_s

    def __call__(self) -> float:
        return self.now_s


def wall_clock_s() -> float:
    """The machine's own time: what a server in a subprocess reads, pinned run or not."""
    if time_machine.escape_hatch.is_travelling():
        return time_machine.escape_hatch.time.time()
    return time.time()


def room_in_day(now_s: float, timezone: str, before_s: float = 2 * HOUR_S) -> float:
    """now_s, or the earliest later time with before_s of the same event day behind it.

    A test that walks in [now - before_s, now] and asserts "today" then holds at any hour:
    at 23:59:50 it is now itself, at 00:00:30 the walks happen in the day's first hours.
    """
    zone = zoneinfo.ZoneInfo(timezone)
    local = dt.datetime.fromtimestamp(now_s, zone)
    midnight_s = dt.datetime.combine(local.date(), dt.time(), zone).timestamp()
    return max(now_s, midnight_s + before_s)


def event_date(ts_s: float, timezone: str) -> str:
    """The event day of ts_s as the API writes it (MM/DD/YYYY, the event's time zone)."""
    return dt.datetime.fromtimestamp(ts_s, zoneinfo.ZoneInfo(timezone)).strftime("%m/%d/%Y")
