"""The start-up load: what memory is seeded from, read in one transaction."""

from __future__ import annotations

from typing import Any

from tys_server.core.snapshot import Loaded

# Rows per keyset page of `distance`: each round trip stays bounded for a million devices.
LOAD_PAGE_ROWS = 100_000

# Loaded.tracks' order, NULLs coalesced in SQL. "distance.mac", not "mac": that would name
# the mac::text output column, and sorting text instead of walking the primary key made
# every page sort the whole table.
_SELECT_TRACKS = """
SELECT mac::text, coalesce(mtrs, 0), floor_id, point_1[0], point_1[1], point_2[0], point_2[1],
       coalesce(distance_1to2, 0), coalesce(held_m, 0), extract(epoch FROM time)::float8
FROM distance WHERE %s::macaddr IS NULL OR mac > %s::macaddr ORDER BY distance.mac LIMIT %s
"""
_SELECT_DAYS = "SELECT mac::text, extract(epoch FROM time)::float8, mtrs FROM distance_history"
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


async def read_snapshot(cur: Any, *, recent_since_s: float) -> Loaded:
    """Users, devices, tracks, day totals, and the counters since recent_since_s."""
    await cur.execute("SELECT email, nickname FROM users")
    users = await cur.fetchall()
    await cur.execute("SELECT mac::text, owner FROM devices WHERE owner IS NOT NULL")
    devices = await cur.fetchall()
    tracks = await _read_tracks(cur)
    await cur.execute(_SELECT_DAYS)
    days = await cur.fetchall()
    await cur.execute(_SELECT_COUNTS, (recent_since_s,))
    counts = await cur.fetchall()
    await cur.execute(_SELECT_ZONES, (recent_since_s,))
    zones = await cur.fetchall()
    return Loaded(users, devices, tracks, days, counts, zones)


async def _read_tracks(cur: Any) -> list[tuple[Any, ...]]:
    # The rows as psycopg2 returns them: an object per row would cost seconds and a few
    # hundred MB for a million devices.
    tracks: list[tuple[Any, ...]] = []
    last: str | None = None
    while True:
        await cur.execute(_SELECT_TRACKS, (last, last, LOAD_PAGE_ROWS))
        page = await cur.fetchall()
        tracks += page
        if len(page) < LOAD_PAGE_ROWS:
            return tracks
        last = page[-1][0]
