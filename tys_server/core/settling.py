"""The walks the adaptive filter may have to settle, oldest first. Pure: no I/O, no clock.

A device whose walk is under way (``Track.walk`` odd) or whose lone leg a stop would
credit (LONE: ``adaptive.settles``) is queued once, with the last_ts it had then.
``pop_due`` pops entries while the oldest is due; an entry whose device has had a fix
since is queued again at its new last_ts, one whose walk ended is dropped. So each pop
settles a device, drops one, or follows at least one fix of it: amortised O(1) per fix,
and a settle never scans all tracks. Entries are appended as fixes arrive, so the queue
is in event-time order up to how far the feeds' event times differ; an entry behind a
later one waits for it, which only delays when a credit shows.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from tys_server.core.adaptive import settles

if TYPE_CHECKING:
    from tys_server.core.tracking import Track


class SettleQueue:
    """(last_ts, mac) of walking devices, each device at most once."""

    __slots__ = ("_entries", "queued")

    def __init__(self) -> None:
        self._entries: deque[tuple[float, str]] = deque()
        self.queued: set[str] = set()  # read-only outside: the MACs with an entry

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, mac: str, last_ts: float) -> None:
        """Queue a walking device unless it is queued already."""
        if mac not in self.queued:
            self.queued.add(mac)
            self._entries.append((last_ts, mac))

    def add_walking(self, tracks: Mapping[str, Track]) -> None:
        """Queue every walking track of tracks (start-up: once, in last_ts order)."""
        walking = sorted((track.last_ts, mac) for mac, track in tracks.items()
                         if settles(track.walk) and mac not in self.queued)
        self.queued.update(mac for _, mac in walking)
        self._entries.extend(walking)

    def pop_due(self, tracks: Mapping[str, Track], now_s: float,
                settle_s: float) -> Iterator[tuple[str, Track]]:
        """Pop and yield each walking track with no fix since now_s − settle_s."""
        entries, queued = self._entries, self.queued
        # The same test as adaptive.settle's, so a device popped here is settled there.
        while entries and now_s - entries[0][0] >= settle_s:
            _, mac = entries.popleft()
            track = tracks.get(mac)
            if track is None or not settles(track.walk):
                queued.discard(mac)  # its walk ended (a slow fix, a turn, another floor)
            elif now_s - track.last_ts < settle_s:
                entries.append((track.last_ts, mac))  # it moved on: due later
            else:
                queued.discard(mac)
                yield mac, track
