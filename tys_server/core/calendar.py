"""Event days: a timestamp's local date in the event's time zone. Pure: no clock reads."""

from __future__ import annotations

import datetime as dt
import zoneinfo


class EventCalendar:
    """Maps a timestamp to its event day in the event time zone (cached per day)."""

    def __init__(self, timezone: str) -> None:
        self.zone = zoneinfo.ZoneInfo(timezone)
        self._start = 0.0
        self._end = -1.0
        self._ordinal = 0
        # Every ordinal day_of or ordinal_of_start handed out: the days stored distance can
        # be on (a superset: "today" asked by a dashboard is here too). The leaderboard
        # answers any other date with the empty board, without building one.
        self.days_named: set[int] = set()

    def day_of(self, ts: float) -> int:
        """Ordinal of the local date of ts (fast path: same day as last time)."""
        if self._start <= ts < self._end:
            return self._ordinal
        local = dt.datetime.fromtimestamp(ts, self.zone).date()
        self._ordinal = local.toordinal()
        self._start = self.day_start(self._ordinal)
        self._end = self.day_start(self._ordinal + 1)
        self.days_named.add(self._ordinal)
        return self._ordinal

    def day_start(self, ordinal: int) -> float:
        """Epoch seconds of local midnight starting that day."""
        day = dt.date.fromordinal(ordinal)
        return dt.datetime.combine(day, dt.time(), self.zone).timestamp()

    def today(self, now_s: float) -> int:
        """Ordinal of the local date at now_s."""
        return dt.datetime.fromtimestamp(now_s, self.zone).date().toordinal()

    def ordinal_of_start(self, start_s: float) -> int:
        """Inverse of day_start (for rows read back from distance_history)."""
        ordinal = dt.datetime.fromtimestamp(start_s + 1, self.zone).date().toordinal()
        self.days_named.add(ordinal)
        return ordinal
