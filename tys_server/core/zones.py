"""Which devices were already counted in each zone, for the minutes still open to visits.

Pure: no I/O, no clock (the state passes the minute a batch arrived in).

A zone's count for a minute is "devices seen in that zone in that minute", flushed as
an absolute value. Counting a visit needs the set of devices already counted for that
minute, so a minute is open to visits only while that set is in memory: from
``floor_s`` (which only rises) to ``AHEAD_S`` past the current minute. A visit outside
is stale: counted apart, never written, so it can neither restart a stored count at 1
nor count a device twice.

Memory: one set entry (~80 bytes) per (minute, zone, device) for at most OPEN_MINUTES
(16) minutes, whatever the state of the database: flushes do not trim it, the passing
minutes do. 30,000 devices in one zone each: at most 16 × 30,000 × 80 B ≈ 38 MB.
"""

from __future__ import annotations

import sys

from tys_server.core.units import MINUTE_S

# Feeds deliver late (Spaces up to ~20 s out of order, Meraki a POST a minute), so a
# minute stays open this long after it ended...
BEHIND_S = 10 * MINUTE_S
# ...and a visit may be this far ahead of the receive time (feeds replace timestamps
# more than 5 minutes ahead by the receive time).
AHEAD_S = 5 * MINUTE_S
OPEN_MINUTES = (BEHIND_S + AHEAD_S) // MINUTE_S + 1
# In place of the devices of a (minute, zone) whose count was stored by an earlier run:
# who made it up is not known, so it takes no more visits.
CLOSED: frozenset[str] = frozenset()


class VisitWindow:
    """Per open minute, per zone, the devices already counted."""

    __slots__ = ("floor_s", "now_minute_s", "_seen")

    def __init__(self) -> None:
        self.floor_s = 0  # minutes before this are closed (their sets are gone)
        self.now_minute_s = 0
        self._seen: dict[int, dict[str, set[str] | frozenset[str]]] = {}

    def move_to(self, now_minute_s: int) -> None:
        """The current minute is now_minute_s: close the minutes that fell behind."""
        self.now_minute_s = now_minute_s
        self.close_before(now_minute_s - BEHIND_S)

    def close_before(self, minute_s: int) -> None:
        """No more visits before minute_s (never reopens: the floor only rises)."""
        if minute_s <= self.floor_s:
            return
        self.floor_s = minute_s
        for old in [m for m in self._seen if m < minute_s]:
            del self._seen[old]

    def close(self, minute_s: int, zone: str) -> None:
        """No more visits to zone in that minute (its count came from the database)."""
        if minute_s >= self.floor_s:
            self._seen.setdefault(minute_s, {})[zone] = CLOSED

    def admit(self, minute_s: int, zone: str, mac: str) -> bool | None:
        """True: count this visit; False: the device is already counted; None: stale."""
        if minute_s < self.floor_s or minute_s > self.now_minute_s + AHEAD_S:
            return None
        zones = self._seen.get(minute_s)
        if zones is None:
            zones = self._seen[minute_s] = {}
        devices = zones.get(zone)
        if devices is None:
            devices = zones[zone] = set()
        elif devices is CLOSED:
            return None
        elif mac in devices:
            return False
        # One string per device for all the minutes that hold it: each event brings a
        # copy of its own (66 bytes), the set entry itself costs about as much.
        devices.add(sys.intern(mac))  # type: ignore[union-attr]
        return True

    def minutes(self) -> int:
        """Minutes holding a set (at most OPEN_MINUTES)."""
        return len(self._seen)

    def __len__(self) -> int:
        """(minute, zone, device) entries held."""
        return sum(len(devices) for zones in self._seen.values() for devices in zones.values())
