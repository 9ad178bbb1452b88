"""Distance per device per event day, in memory: one dict of MAC → metres per day. Pure.

A million devices over five days are five million values. In one dict keyed by
(mac, ordinal) tuples each cost about 120 bytes (the tuple, its slot, the float) and
every lookup hashed a tuple; in a dict per day keyed by the MAC string the tracks
already hold (its hash cached), about 55. Callers still name a value by its
(mac, ordinal) key, as the flush's dirty keys do: ``DayTotals`` is a mapping of those.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, MutableMapping
from typing import Any, overload

DayKey = tuple[str, int]  # (mac, ordinal of the event day)


class DayTotals(MutableMapping[DayKey, float]):
    """Metres credited per (mac, day ordinal), held as one {mac: metres} dict per day.

    ``by_day`` is the store itself (ordinal → {mac: metres}); hot paths read and write
    it directly. A day's dict is dropped when its last device is removed.
    """

    __slots__ = ("by_day",)

    def __init__(self) -> None:
        self.by_day: dict[int, dict[str, float]] = {}

    def day(self, ordinal: int) -> dict[str, float]:
        """The {mac: metres} dict of that day, created empty if there is none."""
        day = self.by_day.get(ordinal)
        if day is None:
            day = self.by_day[ordinal] = {}
        return day

    def add(self, mac: str, ordinal: int, metres: float) -> None:
        """Credit metres to mac on that day."""
        day = self.by_day.get(ordinal)
        if day is None:
            day = self.by_day[ordinal] = {}
        day[mac] = day.get(mac, 0.0) + metres

    def forget(self, macs: Iterable[str]) -> None:
        """Remove every day's value of these devices."""
        by_day = self.by_day
        for mac in macs:
            for day in by_day.values():
                day.pop(mac, None)
        for ordinal in [o for o, day in by_day.items() if not day]:
            del by_day[ordinal]

    def __getitem__(self, key: DayKey) -> float:
        day = self.by_day.get(key[1])
        if day is None or key[0] not in day:
            raise KeyError(key)
        return day[key[0]]

    @overload
    def get(self, key: DayKey, /) -> float | None: ...
    @overload
    def get(self, key: DayKey, /, default: float) -> float: ...
    @overload
    def get(self, key: DayKey, /, default: Any) -> Any: ...

    def get(self, key: DayKey, /, default: Any = None) -> Any:
        """The value of key, or default (one lookup per level, no exception)."""
        day = self.by_day.get(key[1])
        return default if day is None else day.get(key[0], default)

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, tuple) or len(key) != 2:
            return False
        day = self.by_day.get(key[1])
        return day is not None and key[0] in day

    def __setitem__(self, key: DayKey, metres: float) -> None:
        self.day(key[1])[key[0]] = metres

    def __delitem__(self, key: DayKey) -> None:
        mac, ordinal = key
        day = self.by_day.get(ordinal)
        if day is None or mac not in day:
            raise KeyError(key)
        del day[mac]
        if not day:
            del self.by_day[ordinal]

    def __iter__(self) -> Iterator[DayKey]:
        for ordinal, day in self.by_day.items():
            for mac in day:
                yield (mac, ordinal)

    def __len__(self) -> int:
        return sum(map(len, self.by_day.values()))

    def __repr__(self) -> str:
        return f"DayTotals({dict(self.items())!r})"
