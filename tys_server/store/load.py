"""The start-up load: memory seeded from the database, read in one snapshot.

The two big tables, `distance` and `distance_history`, are read in keyset pages, so
each statement stays within statement_timeout whatever their size, and their rows go
into memory page by page (the next page already asked for) instead of being held all
at once. Day rows come grouped per day start, their MACs and metres as arrays.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from tys_server.core import restore
from tys_server.core.snapshot import Loaded
from tys_server.core.state import State
from tys_server.store.pool import StoreError

# Rows per keyset page: each round trip stays bounded for a million devices.
LOAD_PAGE_ROWS = 100_000

# Loaded.tracks' order, NULLs coalesced in SQL. "distance.mac", not "mac": that would name
# the mac::text output column, and sorting text instead of walking the primary key made
# every page sort the whole table.
_SELECT_TRACKS = """
SELECT mac::text, coalesce(mtrs, 0), floor_id, point_1[0], point_1[1], point_2[0], point_2[1],
       coalesce(distance_1to2, 0), coalesce(held_m, 0), extract(epoch FROM time)::float8,
       walk, point_0[0], point_0[1], cand[0], cand[1], cand_time, jitter_ft,
       run_point[0], run_point[1], run_m, zig
FROM distance WHERE %s::macaddr IS NULL OR mac > %s::macaddr ORDER BY distance.mac LIMIT %s
"""
# Pages in primary key order (time, mac), each as one row per day start holding its MACs
# and metres as two arrays (in the same order): a few rows per page instead of one per
# device and day, and no epoch per row. The key of the next page is the last group's
# epoch, which to_timestamp turns back into the same microsecond, and its last MAC.
_SELECT_DAYS = """
SELECT extract(epoch FROM time)::float8, array_agg(mac::text ORDER BY mac),
       array_agg(coalesce(mtrs, 0) ORDER BY mac)
FROM (SELECT time, mac, mtrs FROM distance_history
      WHERE %s::float8 IS NULL
         OR (distance_history.time, distance_history.mac) > (to_timestamp(%s), %s::macaddr)
      ORDER BY distance_history.time, distance_history.mac LIMIT %s) AS page
GROUP BY time ORDER BY time
"""
# Loaded.users' order: email, nickname, then core.users.Profile's fields.
_SELECT_USERS = """
SELECT email, nickname, team, extract(epoch FROM team_since)::float8, alias, hidden,
       disqualified
FROM users
"""
# count.time and zone.time are UTC.
_SELECT_COUNTS = """
SELECT extract(epoch FROM time AT TIME ZONE 'UTC')::float8, coalesce(user_count, 0),
       coalesce(device_count, 0), coalesce(notification_count, 0)
FROM count WHERE time >= to_timestamp(%s) AT TIME ZONE 'UTC'
"""
_SELECT_ZONES = """
SELECT extract(epoch FROM time AT TIME ZONE 'UTC')::float8, name, coalesce(count, 0)
FROM zone WHERE time >= to_timestamp(%s) AT TIME ZONE 'UTC'
"""


async def read_into(cur: Any, state: State, *, recent_since_s: float) -> Loaded:
    """Seed state with users, devices, tracks, day totals and the counters since
    recent_since_s; returns what was read, less the tracks and days (now in state)."""
    if state.users or state.tracks or state.days:
        # A connection lost mid-load is retried on a new one: never seed twice.
        raise StoreError("the start-up load was interrupted (connection lost); start again")
    # One snapshot for every page of every table.
    await cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
    await cur.execute(_SELECT_USERS)
    users = await cur.fetchall()
    await cur.execute("SELECT mac::text, owner FROM devices WHERE owner IS NOT NULL")
    devices = await cur.fetchall()
    await cur.execute(_SELECT_COUNTS, (recent_since_s,))
    counts = await cur.fetchall()
    await cur.execute(_SELECT_ZONES, (recent_since_s,))
    zones = await cur.fetchall()
    await cur.execute("SELECT feed, cursor_ms FROM feed_cursor")
    cursors = {feed: int(cursor_ms) for feed, cursor_ms in await cur.fetchall()}
    loaded = Loaded(users, devices, [], [], counts, zones, cursors)
    state.seed(loaded)
    # Each page goes into memory, and is freed, before the next one is read: a million
    # track rows held at once would leave their freed memory resident (interleaved
    # with the floats the tracks keep).
    await _paged(cur, _SELECT_TRACKS, _after_mac, restore.track_seeder(state))
    restore.queue_walks(state)
    # After the tracks: day rows share their MAC strings.
    await _paged(cur, _SELECT_DAYS, _after_day, restore.day_seeder(state), _grouped_rows)
    return loaded


def _after_mac(last: tuple[Any, ...] | None) -> tuple[Any, ...]:
    mac = None if last is None else last[0]
    return (mac, mac, LOAD_PAGE_ROWS)


def _after_day(last: tuple[Any, ...] | None) -> tuple[Any, ...]:
    start, mac = (None, None) if last is None else (last[0], last[1][-1])
    return (start, start, mac, LOAD_PAGE_ROWS)


async def _paged(cur: Any, sql: str, after: Callable[[tuple[Any, ...] | None], tuple[Any, ...]],
                 seed: Callable[[list[tuple[Any, ...]]], None],
                 rows_of: Callable[[list[tuple[Any, ...]]], int] = len) -> None:
    """Every keyset page of sql into seed; the next page is asked for before seed runs.

    PostgreSQL reads (and sends) page k+1 while Python seeds page k, on their own
    cores, as the flush overlaps its statements. rows_of: the table rows in a page.
    """
    page = await _fetch(cur, sql, after(None))
    while True:
        ahead = None
        if rows_of(page) == LOAD_PAGE_ROWS:
            ahead = asyncio.ensure_future(_fetch(cur, sql, after(page[-1])))
            await asyncio.sleep(0)  # let it send the statement
        try:
            seed(page)
        finally:
            if ahead is not None:
                # Its page is next; and if seed failed, no statement is left running
                # behind our back (the rollback would meet a busy connection).
                await asyncio.wait([ahead])
        if ahead is None:
            return
        page = ahead.result()


def _grouped_rows(groups: list[tuple[Any, ...]]) -> int:
    return sum(len(macs) for _, macs, _ in groups)


async def _fetch(cur: Any, sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    await cur.execute(sql, args)
    rows: list[tuple[Any, ...]] = await cur.fetchall()
    return rows
