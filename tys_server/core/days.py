"""Distance per device per event day, in memory: an array of metres per day. Pure.

A million devices over five days are five million values. In a dict keyed by
(mac, ordinal) tuples each cost about 120 bytes (the tuple, its dict slot, a float
object) and every lookup hashed a tuple. Here a device has one column, numbered once
and shared by every day, and a day is an ``array('d')`` of metres by column, NaN where
the device has none that day: 8 bytes a value and about 70 a device (its column in a
dict keyed by the MAC string the tracks already hold). Callers still name a value by
its (mac, ordinal) key, as the flush's dirty keys do: ``DayTotals`` is a mapping of
those.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable, Iterable, Iterator, MutableMapping, Sequence
from typing import Any, overload

DayKey = tuple[str, int]  # (mac, ordinal of the event day)
NONE = math.nan  # a device's cell on a day it has no value
_EMPTY_CELL = array("d", [NONE])


class DayTotals(MutableMapping[DayKey, float]):
    """Metres credited per (mac, day ordinal), one array of columns per day.

    ``columns`` and ``by_day`` are the store itself: hot paths read them and add
    through ``add`` only when a cell is new (see State.ingest). Every day's array has
    a cell per column numbered so far; a day whose last value is removed is dropped;
    an erased device's column is reused.
    """

    __slots__ = ("_counts", "_free", "by_day", "columns", "macs")

    def __init__(self) -> None:
        self.columns: dict[str, int] = {}  # mac → its column in every day's array
        self.macs: list[str | None] = []   # column → mac (None: free, NaN on every day)
        self.by_day: dict[int, array[float]] = {}
        self._counts: dict[int, int] = {}  # ordinal → values held that day
        self._free: list[int] = []

    def column(self, mac: str) -> int:
        """mac's column, numbered on first use (a freed column first)."""
        column = self.columns.get(mac)
        if column is None:
            if self._free:
                column = self._free.pop()
                self.macs[column] = mac
            else:
                column = len(self.macs)
                self.macs.append(mac)
                for cells in self.by_day.values():
                    cells.append(NONE)
            self.columns[mac] = column
        return column

    def _day(self, ordinal: int) -> array[float]:
        """That day's array, created (a cell per column, none with a value) if need be."""
        cells = self.by_day.get(ordinal)
        if cells is None:
            cells = self.by_day[ordinal] = _EMPTY_CELL * len(self.macs)
            self._counts[ordinal] = 0
        return cells

    def add(self, mac: str, ordinal: int, metres: float) -> None:
        """Credit metres to mac on that day."""
        cells = self._day(ordinal)
        column = self.column(mac)
        held = cells[column]
        if held != held:  # NaN: the first value of this device that day
            cells[column] = metres
            self._counts[ordinal] += 1
        else:
            cells[column] = held + metres

    def add_rows(self, ordinal: int, macs: Sequence[str], metres: Sequence[float],
                 same: Callable[[str, str], str] | None = None) -> None:
        """Credit each of metres to the MAC at its index on that day (stored rows).

        same(mac, mac) gives the string a new column is keyed by (the track's, shared).
        A NaN (a damaged row) is no value, as in a fresh cell.
        """
        columns = self.columns
        numbered = list(map(columns.get, macs))
        if None in numbered:
            self._number([mac for mac, column in zip(macs, numbered, strict=True)
                          if column is None], same)
            numbered = list(map(columns.__getitem__, macs))
        cells = self._day(ordinal)
        new = 0
        for column, value in zip(numbered, metres, strict=True):
            held = cells[column]
            if held == held:
                cells[column] = held + value
            elif value == value:
                cells[column] = value
                new += 1
        self._counts[ordinal] += new
        self._drop_if_empty(ordinal)

    def _number(self, macs: list[str], same: Callable[[str, str], str] | None) -> None:
        """Columns for these new MACs: a freed column first, then in one go at the end."""
        if same is not None:
            macs = list(map(same, macs, macs))
        macs = list(dict.fromkeys(macs))  # a MAC twice among the rows: one column
        while macs and self._free:
            self.column(macs.pop())
        if macs:
            first = len(self.macs)
            self.columns.update(zip(macs, range(first, first + len(macs)), strict=True))
            self.macs += macs
            for cells in self.by_day.values():
                cells.extend(_EMPTY_CELL * len(macs))

    def total_of(self, ordinal: int, macs: Iterable[str]) -> float:
        """The sum of these devices' metres on that day."""
        cells = self.by_day.get(ordinal)
        total = 0.0
        if cells is None:
            return total
        columns = self.columns
        for mac in macs:
            column = columns.get(mac)
            if column is not None:
                held = cells[column]
                if held == held:
                    total += held
        return total

    def day_values(self, ordinal: int, macs: Iterable[str]) -> list[float]:
        """The metres of each of macs on that day; KeyError if one has none."""
        cells, columns = self.by_day.get(ordinal), self.columns
        try:
            values = [cells[columns[mac]] for mac in macs]  # type: ignore[index]
        except (KeyError, TypeError):
            raise KeyError(ordinal) from None
        if any(map(math.isnan, values)):
            raise KeyError(ordinal)
        return values

    def forget(self, macs: Iterable[str]) -> None:
        """Remove every day's value of these devices; their columns are freed."""
        for mac in macs:
            column = self.columns.pop(mac, None)
            if column is None:
                continue
            for ordinal, cells in self.by_day.items():
                if cells[column] == cells[column]:
                    cells[column] = NONE
                    self._counts[ordinal] -= 1
            self.macs[column] = None
            self._free.append(column)
        for ordinal in [o for o, count in self._counts.items() if not count]:
            self._drop_if_empty(ordinal)

    def _drop_if_empty(self, ordinal: int) -> None:
        if not self._counts.get(ordinal, 1):
            del self.by_day[ordinal], self._counts[ordinal]

    def __getitem__(self, key: DayKey) -> float:
        held = self.get(key, NONE)
        if held != held:
            raise KeyError(key)
        return held  # type: ignore[no-any-return]

    @overload
    def get(self, key: DayKey, /) -> float | None: ...
    @overload
    def get(self, key: DayKey, /, default: float) -> float: ...
    @overload
    def get(self, key: DayKey, /, default: Any) -> Any: ...

    def get(self, key: DayKey, /, default: Any = None) -> Any:
        """The value of key, or default (two lookups and an index, no exception)."""
        column = self.columns.get(key[0])
        cells = self.by_day.get(key[1])
        if column is None or cells is None:
            return default
        held = cells[column]
        return default if held != held else held

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, tuple) or len(key) != 2:
            return False
        return self.get(key, NONE) == self.get(key, NONE)  # type: ignore[arg-type]

    def __setitem__(self, key: DayKey, metres: float) -> None:
        mac, ordinal = key
        if metres != metres:
            raise ValueError(f"NaN metres for {key}")
        cells = self._day(ordinal)
        column = self.column(mac)
        if cells[column] != cells[column]:
            self._counts[ordinal] += 1
        cells[column] = metres

    def __delitem__(self, key: DayKey) -> None:
        if key not in self:
            raise KeyError(key)
        mac, ordinal = key
        self.by_day[ordinal][self.columns[mac]] = NONE
        self._counts[ordinal] -= 1
        self._drop_if_empty(ordinal)

    def __iter__(self) -> Iterator[DayKey]:
        macs = self.macs
        for ordinal, cells in list(self.by_day.items()):
            for column, held in enumerate(cells):
                if held == held:
                    yield (macs[column], ordinal)  # type: ignore[misc]

    def __len__(self) -> int:
        return sum(self._counts.values())

    def __repr__(self) -> str:
        return f"DayTotals({dict(self.items())!r})"


