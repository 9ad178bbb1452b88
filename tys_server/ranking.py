"""Leaderboard and places over users' totals (DESIGN section 7). Pure: no I/O."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Entry:
    """One line of the leaderboard."""

    place: int
    username: str
    total_m: float


class Ranking:
    """Users ordered by total descending, ties by username; places 1..N, never shared."""

    __slots__ = ("_ordered", "_places", "_walked", "_total_m")

    def __init__(self, totals: Iterable[tuple[str, float]]) -> None:
        """Rank (username as displayed, total metres) pairs of every ranked user."""
        keyed = sorted(
            (-total_m, username.casefold(), username, total_m) for username, total_m in totals
        )
        self._ordered = [(username, total_m) for _, _, username, total_m in keyed]
        self._places: dict[str, int] = {}
        walked = 0
        for place, (_, folded, _, total_m) in enumerate(keyed, 1):
            # Usernames are unique case-insensitively; if not, the better place wins.
            self._places.setdefault(folded, place)
            if total_m > 0.0:
                walked = place
        self._walked = walked
        self._total_m = math.fsum(total_m for _, total_m in self._ordered)

    def top(self, n: int) -> list[Entry]:
        """The first n entries with a total above zero."""
        end = min(max(n, 0), self._walked)
        return [
            Entry(place, username, total_m)
            for place, (username, total_m) in enumerate(self._ordered[:end], 1)
        ]

    def place(self, username: str) -> int | None:
        """1-based place of username (any letter case), None if not ranked."""
        return self._places.get(username.casefold())

    @property
    def total_m(self) -> float:
        """Sum of every ranked user's total."""
        return self._total_m

    def __len__(self) -> int:
        return len(self._ordered)
