"""What the start-up load reads from the database to seed memory. Pure data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Loaded:
    """The database's content, read at start-up to seed memory."""

    users: list[tuple[str, str | None]]          # email, nickname
    devices: list[tuple[str, str]]               # mac, owner e-mail
    tracks: list[tuple[Any, ...]]                # mac, total_m, floor, x1, y1, x2, y2,
                                                 # pending_m, held_m, last_ts
    days: list[tuple[str, float, float]]         # mac, day start (epoch s), metres
    counts: list[tuple[float, int, int, int]]    # recent minutes only
    zones: list[tuple[float, str, int]]          # recent minutes only
