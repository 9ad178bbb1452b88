"""DayTotals: a (mac, day) mapping held as an array per day; the seeder that fills it."""

from __future__ import annotations

import datetime as dt
import math

import pytest

from tys_server.core import restore
from tys_server.core.days import DayTotals
from tys_server.core.state import State
from tys_server.core.tracking import FilterParams, Track

ALICE = "02:00:00:00:00:01"
BOB = "02:00:00:00:00:02"
DAY = dt.date(2026, 6, 7).toordinal()


def start_s(ordinal: int, zone: dt.tzinfo = dt.UTC) -> float:
    return dt.datetime.combine(dt.date.fromordinal(ordinal), dt.time(), zone).timestamp()


def test_day_totals_read_and_write_like_a_dict_of_mac_and_day() -> None:
    days = DayTotals()
    days[(ALICE, DAY)] = 1.5
    days.add(ALICE, DAY, 2.0)
    days.add(BOB, DAY + 1, 4.0)
    assert days == {(ALICE, DAY): 3.5, (BOB, DAY + 1): 4.0}
    assert {(ALICE, DAY): 3.5, (BOB, DAY + 1): 4.0} == days
    assert days != {(ALICE, DAY): 3.5}
    assert (days[(ALICE, DAY)], days.get((BOB, DAY)), days.get((BOB, DAY), 0.0)) == \
        (3.5, None, 0.0)
    assert ((ALICE, DAY) in days, (ALICE, DAY + 1) in days, ALICE in days) == \
        (True, False, False)
    assert (len(days), sorted(days), sum(days.values())) == \
        (2, [(ALICE, DAY), (BOB, DAY + 1)], 7.5)
    with pytest.raises(KeyError):
        days[(BOB, DAY)]


def test_a_day_emptied_of_its_last_device_is_dropped() -> None:
    days = DayTotals()
    days.add(ALICE, DAY, 1.0)
    days.add(BOB, DAY, 2.0)
    days.add(BOB, DAY + 1, 3.0)
    del days[(ALICE, DAY)]
    assert days.pop((BOB, DAY)) == 2.0
    assert (dict(days), sorted(days.by_day)) == ({(BOB, DAY + 1): 3.0}, [DAY + 1])
    with pytest.raises(KeyError):
        del days[(BOB, DAY)]


def test_forget_removes_every_day_of_those_devices_only() -> None:
    days = DayTotals()
    for offset in range(3):
        days.add(ALICE, DAY + offset, 1.0 + offset)
    days.add(BOB, DAY + 1, 5.0)
    days.forget([ALICE])
    assert (dict(days), list(days.by_day)) == ({(BOB, DAY + 1): 5.0}, [DAY + 1])


def test_a_freed_column_goes_to_the_next_device_without_the_old_values() -> None:
    days = DayTotals()
    days.add(ALICE, DAY, 1.0)
    days.add(ALICE, DAY + 1, 2.0)
    days.add(BOB, DAY + 1, 4.0)
    days.forget([ALICE])
    carol = "02:00:00:00:00:03"
    days.add(carol, DAY + 1, 8.0)
    assert days.columns[carol] == 0  # ALICE's
    assert days == {(BOB, DAY + 1): 4.0, (carol, DAY + 1): 8.0}
    assert (days.get((carol, DAY)), (carol, DAY) in days, len(days)) == (None, False, 2)


def test_a_device_numbered_after_a_day_was_made_has_no_value_on_it() -> None:
    days = DayTotals()
    days.add(ALICE, DAY, 1.0)
    days.add(BOB, DAY + 1, 2.0)  # numbered after DAY's array was made
    assert (days.get((BOB, DAY), 0.0), (BOB, DAY) in days, days.total_of(DAY, [ALICE, BOB])) \
        == (0.0, False, 1.0)
    with pytest.raises(KeyError):
        days.day_values(DAY, [ALICE, BOB])
    assert days.day_values(DAY + 1, [BOB]) == [2.0]
    assert sorted(days) == [(ALICE, DAY), (BOB, DAY + 1)]


def test_stored_rows_add_to_held_values_and_a_nan_row_is_no_value() -> None:
    days = DayTotals()
    days.add(ALICE, DAY, 1.0)
    days.add_rows(DAY, [ALICE, BOB, BOB, "02:00:00:00:00:03"], [2.0, 4.0, 8.0, math.nan])
    assert days == {(ALICE, DAY): 3.0, (BOB, DAY): 12.0}
    with pytest.raises(ValueError, match="NaN"):
        days[(ALICE, DAY)] = math.nan


def seeded(rows: list[tuple[str, float, float | None]], timezone: str = "UTC",
           pages: int = 1) -> State:
    state = State(FilterParams(), timezone)
    for mac in (ALICE, BOB):
        state.tracks[mac] = Track(1, 0.0, 0.0, 0.0, 10.0)
    add = restore.day_seeder(state)
    size = -(-len(rows) // pages)
    for i in range(0, len(rows), size):
        add(restore.day_groups(rows[i:i + size]))
    return state


def test_seeded_day_rows_share_the_tracks_mac_strings() -> None:
    # Strings equal to the tracks' keys but other objects, as the database hands them.
    alice, bob = "".join(ALICE), "".join(BOB)
    assert alice is not ALICE
    state = seeded([(alice, start_s(DAY), 1.0), (bob, start_s(DAY), 2.0),
                    (alice, start_s(DAY + 1), 3.0)])
    assert state.days == {(ALICE, DAY): 1.0, (BOB, DAY): 2.0, (ALICE, DAY + 1): 3.0}
    tracked = {id(mac) for mac in state.tracks}
    assert {id(mac) for mac, _ in state.days} == tracked
    assert {DAY, DAY + 1} <= state.calendar.days_named


def test_seeded_rows_of_one_device_and_day_add_up() -> None:
    # Two stored starts of one local date (a time zone changed between two runs), and a
    # row given twice in one page and across pages: each is added, none overwritten.
    berlin = "Europe/Berlin"
    zone = dt.timezone(dt.timedelta(hours=2))
    rows: list[tuple[str, float, float | None]] = [
        (ALICE, start_s(DAY, zone), 1.0), (BOB, start_s(DAY, zone), 2.0),
        (ALICE, start_s(DAY, zone) + 3600.0, 4.0),
        (BOB, start_s(DAY + 1, zone), 8.0), (BOB, start_s(DAY + 1, zone), 16.0),
        (ALICE, start_s(DAY + 1, zone), None)]
    expected = {(ALICE, DAY): 5.0, (BOB, DAY): 2.0, (BOB, DAY + 1): 24.0,
                (ALICE, DAY + 1): 0.0}
    assert seeded(rows, berlin).days == expected
    assert seeded(rows, berlin, pages=3).days == expected
    assert seeded(rows + rows[:2], berlin, pages=2).days == \
        {**expected, (ALICE, DAY): 6.0, (BOB, DAY): 4.0}
