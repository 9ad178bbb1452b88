"""What memory is restored from: the database at start-up, a spill file. Pure data."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Loaded:
    """The database's content, read at start-up to seed memory."""

    users: list[tuple[Any, ...]]                 # email, nickname[, Profile's fields]
    devices: list[tuple[str, str]]               # mac, owner e-mail
    tracks: list[tuple[Any, ...]]                # mac, total_m, floor, x1, y1, x2, y2,
                                                 # pending_m, held_m, last_ts, walk, x0,
                                                 # y0, cand_x, cand_y, cand_ts, jitter_ft,
                                                 # run_x, run_y, run_m, zig
    days: list[tuple[str, float, float]]         # mac, day start (epoch s), metres
    counts: list[tuple[float, int, int, int]]    # recent minutes only
    zones: list[tuple[float, str, int]]          # recent minutes only
    cursors: dict[str, int] = field(default_factory=dict)  # feed → cursor_ms


@dataclass
class Unflushed:
    """State a flush has not written, as absolute values (a spill file holds it).

    Rows in Loaded's orders; counts are (minute, users, devices, notifications).
    """

    tracks: list[tuple[Any, ...]]
    days: list[tuple[str, float, float]]
    counts: list[tuple[float, int, int, int]]
    zones: list[tuple[float, str, int]]
    cursors: dict[str, int]

    def __len__(self) -> int:
        return len(self.tracks) + len(self.days) + len(self.counts) + len(self.zones)
