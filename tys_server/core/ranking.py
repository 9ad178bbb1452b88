"""Leaderboard and places over users' totals (DESIGN section 7). Pure: no I/O."""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections.abc import Iterable
from dataclasses import dataclass

# A user's sort key: more distance first, then the username ignoring case, then as typed.
_Key = tuple[float, str, str]
_FIRST_WITHOUT_DISTANCE = (0.0,)  # sorts before every key whose total is 0


@dataclass(frozen=True, slots=True)
class Entry:
    """One line of the leaderboard."""

    place: int
    username: str
    total_m: float


class Ranking:
    """Users ordered by total descending, ties by username; places 1..N, never shared.

    Kept as one sorted list of keys, so a changed total moves one key (two bisections
    and a memmove) instead of sorting everybody again; top(n) slices, place() bisects.
    """

    __slots__ = ("_keys", "_by_name", "_by_fold")

    def __init__(self, totals: Iterable[tuple[str, float]] = ()) -> None:
        """Rank (username as displayed, total metres) pairs of every ranked user."""
        self._by_name: dict[str, _Key] = {}
        self._by_fold: dict[str, list[str]] = {}
        for username, total_m in totals:
            self._forget(username)
            self._remember(username, (-total_m, username.casefold(), username))
        self._keys = sorted(self._by_name.values())

    def _remember(self, username: str, key: _Key) -> None:
        self._by_name[username] = key
        self._by_fold.setdefault(key[1], []).append(username)

    def _forget(self, username: str) -> _Key | None:
        key = self._by_name.pop(username, None)
        if key is not None:
            names = self._by_fold[key[1]]
            names.remove(username)
            if not names:
                del self._by_fold[key[1]]
        return key

    def set(self, username: str, total_m: float) -> None:
        """Rank username with this total (added, or moved to its new place)."""
        key = (-total_m, username.casefold(), username)
        old = self._by_name.get(username)
        if old == key:
            return
        if old is not None:
            self._forget(username)
            del self._keys[bisect_left(self._keys, old)]
        self._remember(username, key)
        insort(self._keys, key)

    def remove(self, username: str) -> None:
        """Take username off the ranking (no-op when it is not ranked)."""
        old = self._forget(username)
        if old is not None:
            del self._keys[bisect_left(self._keys, old)]

    def top(self, n: int) -> list[Entry]:
        """The first n entries with a total above zero."""
        walked = bisect_left(self._keys, _FIRST_WITHOUT_DISTANCE)
        end = min(max(n, 0), walked)
        return [Entry(place, username, -negative_m)
                for place, (negative_m, _, username) in enumerate(self._keys[:end], 1)]

    def place(self, username: str) -> int | None:
        """1-based place of username (any letter case), None if not ranked."""
        names = self._by_fold.get(username.casefold())
        if not names:
            return None
        if len(names) == 1:
            return bisect_left(self._keys, self._by_name[names[0]]) + 1
        # Usernames are unique case-insensitively; if not, the better place wins.
        return min(bisect_left(self._keys, self._by_name[name]) for name in names) + 1

    def exact_place(self, name: str) -> int | None:
        """1-based place of the name exactly as ranked, None if not ranked."""
        key = self._by_name.get(name)
        return None if key is None else bisect_left(self._keys, key) + 1

    @property
    def total_m(self) -> float:
        """Sum of every ranked user's total."""
        return math.fsum(-negative_m for negative_m, _, _ in self._keys)

    def __len__(self) -> int:
        return len(self._keys)
