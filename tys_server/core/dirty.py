"""The flush's bookkeeping in memory: the keys changed since the last flush. Pure.

Also which flushed per-minute counters memory drops: those older than the status page
shows.

``State`` keeps its dirty keys in a ``Dirty``; a flush takes them (``take_dirty``) and
puts them back if it fails (``Dirty.merge``). Values are flushed as absolute values, so
a key flushed twice writes the same row.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Counters older than this are dropped from memory after they are flushed (the status
# page shows them); zone visits are counted for a much shorter window (core/zones.py).
RECENT_S = 3 * 3600


@dataclass
class Dirty:
    """Keys changed since the last successful flush."""

    tracks: set[str] = field(default_factory=set)
    days: set[tuple[str, int]] = field(default_factory=set)
    minutes: set[int] = field(default_factory=set)
    zones: set[tuple[int, str]] = field(default_factory=set)

    def __len__(self) -> int:
        return len(self.tracks) + len(self.days) + len(self.minutes) + len(self.zones)

    def merge(self, other: Dirty) -> None:
        """Put back keys of a flush that failed."""
        self.tracks |= other.tracks
        self.days |= other.days
        self.minutes |= other.minutes
        self.zones |= other.zones


class FlushBook:
    """State's side of the flush (a mixin: State holds these attributes)."""

    dirty: Dirty
    notifications: dict[int, int]
    registered: dict[int, tuple[int, int]]
    zones: dict[tuple[int, str], int]

    def take_dirty(self) -> Dirty:
        """Hand the dirty keys to a flush; new changes collect in a fresh set."""
        dirty, self.dirty = self.dirty, Dirty()
        return dirty

    def forget_old(self, now_s: float) -> None:
        """Drop per-minute counters older than the status page shows (already flushed)."""
        horizon = int(now_s) - RECENT_S
        for minute in [m for m in self.notifications if m < horizon]:
            if minute not in self.dirty.minutes:
                del self.notifications[minute]
        for key in [k for k in self.zones if k[0] < horizon]:
            if key not in self.dirty.zones:
                del self.zones[key]
        if len(self.registered) > 1:
            latest = max(self.registered)
            for minute in [m for m in self.registered if m < horizon and m != latest]:
                if minute not in self.dirty.minutes:
                    del self.registered[minute]
