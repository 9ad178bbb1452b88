"""The start-up load on a real PostgreSQL: every table read in bounded pages, one snapshot."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import TestDatabase
from tys_server.core import restore
from tys_server.core.state import State
from tys_server.core.tracking import FilterParams
from tys_server.store import database, load
from tys_server.store.database import Store, StoreError

FIRST_DAY = dt.date(2026, 6, 7)
DEVICES = 7
DAYS = 5
PAGE_ROWS = 4


class CountingCursor:
    """The load's cursor, recording how many table rows each statement handed back."""

    def __init__(self, cursor: Any, fetched: list[tuple[str, int]]) -> None:
        self._cursor = cursor
        self._fetched = fetched
        self._table = ""

    async def execute(self, sql: str, args: Any = None) -> None:
        self._table = next((t for t in ("distance_history", "distance") if t in sql), "other")
        await self._cursor.execute(sql, args)

    async def fetchall(self) -> list[Any]:
        rows = await self._cursor.fetchall()
        if self._table == "distance_history":  # a row per day start, its MACs in an array
            self._fetched.append((self._table, sum(len(macs) for _, macs, _ in rows)))
        else:
            self._fetched.append((self._table, len(rows)))
        return rows


@pytest.fixture
def store(io_loop: Any, db: TestDatabase) -> Iterator[Store]:
    async def connect() -> Store:
        opened = await Store.connect(db.dsn, pool_size=1, connect_timeout_s=5.0,
                                     statement_timeout_s=5.0)
        await opened.apply_schema(unlogged=False)
        return opened

    opened = io_loop.run_sync(connect)
    yield opened
    io_loop.run_sync(opened.close)


def mac(i: int) -> str:
    return f"02:0d:00:00:00:{i:02x}"


def day_start_s(day: int) -> float:
    return dt.datetime.combine(FIRST_DAY + dt.timedelta(day), dt.time(), dt.UTC).timestamp()


@pytest.mark.gen_test(timeout=30)
async def test_tracks_and_day_rows_come_in_pages_and_all_arrive(
        store: Store, db: TestDatabase, monkeypatch: Any) -> None:
    for i in range(DEVICES):
        db.query("INSERT INTO distance (mac, mtrs, floor_id, point_1, point_2, distance_1to2,"
                 " time) VALUES (%s, %s, 1, point(0, 0), point(50, 0), 15.24, now())",
                 (mac(i), 10.0 * DAYS * (i + 1)))
        for day in range(DAYS):
            db.query("INSERT INTO distance_history (time, mac, mtrs) VALUES "
                     "(to_timestamp(%s), %s, %s)", (day_start_s(day), mac(i), 10.0 * (i + 1)))
    fetched: list[tuple[str, int]] = []
    monkeypatch.setattr(load, "LOAD_PAGE_ROWS", PAGE_ROWS)
    monkeypatch.setattr(database, "read_into",
                        lambda cur, **kw: load.read_into(CountingCursor(cur, fetched), **kw))
    state = State(FilterParams(), "UTC")
    await store.load(state, recent_since_s=0.0)

    pages = {table: [rows for name, rows in fetched if name == table]
             for table in ("distance", "distance_history")}
    assert pages == {"distance": [4, 3], "distance_history": [4] * 8 + [3]}
    assert len(state.tracks) == DEVICES
    assert state.days == {(mac(i), (FIRST_DAY + dt.timedelta(day)).toordinal()): 10.0 * (i + 1)
                          for i in range(DEVICES) for day in range(DAYS)}
    # Through the calendar: the day boards know every loaded day.
    assert {(FIRST_DAY + dt.timedelta(d)).toordinal() for d in range(DAYS)} <= \
        state.calendar.days_named


@pytest.mark.gen_test(timeout=30)
async def test_a_load_is_never_applied_twice_to_the_same_memory(store: Store,
                                                                db: TestDatabase) -> None:
    db.query("INSERT INTO distance_history (time, mac, mtrs) VALUES (now(), %s, 5)", (mac(1),))
    state = State(FilterParams(), "UTC")
    await store.load(state, recent_since_s=0.0)
    # A retried load (a connection lost half-way) would add the day rows again.
    with pytest.raises(StoreError, match="interrupted"):
        await store.load(state, recent_since_s=0.0)
    assert sum(state.days.values()) == 5.0


@pytest.mark.gen_test(timeout=30)
async def test_a_day_row_without_metres_loads_as_zero_on_its_day(store: Store,
                                                                 db: TestDatabase) -> None:
    for i, metres in enumerate((None, 2.5)):
        db.query("INSERT INTO distance_history (time, mac, mtrs) VALUES "
                 "(to_timestamp(%s), %s, %s)", (day_start_s(0), mac(i), metres))
    state = State(FilterParams(), "UTC")
    await store.load(state, recent_since_s=0.0)
    assert state.days == {(mac(0), FIRST_DAY.toordinal()): 0.0,
                          (mac(1), FIRST_DAY.toordinal()): 2.5}


@pytest.mark.gen_test(timeout=30)
async def test_a_load_failing_while_a_page_is_in_flight_leaves_the_connection_usable(
        store: Store, db: TestDatabase, monkeypatch: Any) -> None:
    for day in range(DAYS):
        for i in range(DEVICES):
            db.query("INSERT INTO distance_history (time, mac, mtrs) VALUES "
                     "(to_timestamp(%s), %s, 1)", (day_start_s(day), mac(i)))
    monkeypatch.setattr(load, "LOAD_PAGE_ROWS", PAGE_ROWS)
    seeded_pages: list[int] = []

    def failing_seeder(state: State) -> Any:
        def add(groups: Any) -> None:
            seeded_pages.append(len(groups))
            raise RuntimeError("seeding failed")
        return add

    with monkeypatch.context() as patched:
        patched.setattr(restore, "day_seeder", failing_seeder)
        with pytest.raises(RuntimeError, match="seeding failed"):
            await store.load(State(FilterParams(), "UTC"), recent_since_s=0.0)
    assert len(seeded_pages) == 1  # the second page was in flight when the first failed
    # The one pooled connection is idle again: the next load reads every row.
    state = State(FilterParams(), "UTC")
    await store.load(state, recent_since_s=0.0)
    assert (len(state.days), sum(state.days.values())) == (DEVICES * DAYS, DEVICES * DAYS)
