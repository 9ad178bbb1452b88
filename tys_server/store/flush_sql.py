"""A flush as PostgreSQL reads it: column chunks, upsert statements, array literals. Pure.

Arrays go through unnest() because aiopg has no executemany and no COPY (DESIGN
section 11); values are absolute, so a retried flush can neither lose nor double-count.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson


@dataclass
class FlushChunk:
    """Part of a flush as the statements send it: one list per column, no object per row.

    tracks: mac, total_m, floor, x1_ft, y1_ft, x2_ft, y2_ft, pending_m, held_m, last_ts;
    adaptive: the same tracks' walk, x0_ft, y0_ft, cand_x_ft, cand_y_ft, cand_ts,
    jitter_ft, run_x_ft, run_y_ft, run_m, zig (the adaptive filter's state, written with
    them); days: day start (epoch s), mac, metres; counts: (minute (epoch s), users,
    devices, notifications) rows; zones: (minute (epoch s), zone name, visits) rows;
    cursors: (feed, cursor_ms) rows.
    """

    tracks: tuple[list[Any], ...] = ()
    adaptive: tuple[list[Any], ...] = ()
    days: tuple[list[Any], ...] = ()
    counts: list[tuple[float, int, int, int]] = field(default_factory=list)
    zones: list[tuple[float, str, int]] = field(default_factory=list)
    cursors: list[tuple[str, int]] = field(default_factory=list)

    def __len__(self) -> int:
        return ((len(self.tracks[0]) if self.tracks else 0)
                + (len(self.days[0]) if self.days else 0) + len(self.counts) + len(self.zones)
                + len(self.cursors))


_UPSERT_TRACKS = """
INSERT INTO distance (mac, mtrs, floor_id, point_1, point_2, distance_1to2, held_m, time,
                      walk, point_0, cand, cand_time, jitter_ft, run_point, run_m, zig)
SELECT m, t, f, point(x1, y1), point(x2, y2), p, h, to_timestamp(ts),
       w, point(x0, y0), point(cx, cy), cts, j, point(rx, ry), rm, z
FROM unnest(%s::macaddr[], %s::float8[], %s::bigint[], %s::float8[], %s::float8[],
            %s::float8[], %s::float8[], %s::float8[], %s::float8[], %s::float8[],
            %s::smallint[], %s::float8[], %s::float8[], %s::float8[], %s::float8[],
            %s::float8[], %s::float8[], %s::float8[], %s::float8[], %s::float8[],
            %s::float8[])
     AS r(m, t, f, x1, y1, x2, y2, p, h, ts, w, x0, y0, cx, cy, cts, j, rx, ry, rm, z)
ON CONFLICT (mac) DO UPDATE SET
    mtrs = EXCLUDED.mtrs, floor_id = EXCLUDED.floor_id, point_1 = EXCLUDED.point_1,
    point_2 = EXCLUDED.point_2, distance_1to2 = EXCLUDED.distance_1to2,
    held_m = EXCLUDED.held_m, time = EXCLUDED.time, walk = EXCLUDED.walk,
    point_0 = EXCLUDED.point_0, cand = EXCLUDED.cand, cand_time = EXCLUDED.cand_time,
    jitter_ft = EXCLUDED.jitter_ft, run_point = EXCLUDED.run_point, run_m = EXCLUDED.run_m,
    zig = EXCLUDED.zig
"""
_UPSERT_DAYS = """
INSERT INTO distance_history (time, mac, mtrs)
SELECT to_timestamp(d), m, v FROM unnest(%s::float8[], %s::macaddr[], %s::float8[]) AS r(d, m, v)
ON CONFLICT (time, mac) DO UPDATE SET mtrs = EXCLUDED.mtrs
"""
_UPSERT_COUNTS = """
INSERT INTO count (time, user_count, device_count, notification_count)
SELECT to_timestamp(t) AT TIME ZONE 'UTC', u, d, n
FROM unnest(%s::float8[], %s::int[], %s::int[], %s::int[]) AS r(t, u, d, n)
ON CONFLICT (time) DO UPDATE SET user_count = EXCLUDED.user_count,
    device_count = EXCLUDED.device_count, notification_count = EXCLUDED.notification_count
"""
_UPSERT_ZONES = """
INSERT INTO zone (time, name, count)
SELECT to_timestamp(t) AT TIME ZONE 'UTC', n, c
FROM unnest(%s::float8[], %s::text[], %s::int[]) AS r(t, n, c)
ON CONFLICT (time, name) DO UPDATE SET count = EXCLUDED.count
"""

_UPSERT_CURSORS = """
INSERT INTO feed_cursor (feed, cursor_ms, updated)
SELECT f, c, now() FROM unnest(%s::text[], %s::bigint[]) AS r(f, c)
ON CONFLICT (feed) DO UPDATE SET cursor_ms = EXCLUDED.cursor_ms, updated = EXCLUDED.updated
"""


def statements(chunks: Iterable[FlushChunk]) -> Iterator[tuple[str, tuple[Any, ...], int]]:
    """(statement, arguments, rows) for each non-empty part of each chunk, built lazily."""
    for chunk in chunks:
        if chunk.tracks:
            yield (_UPSERT_TRACKS, tuple(map(_array_literal, chunk.tracks + chunk.adaptive)),
                   len(chunk.tracks[0]))
        if chunk.days:
            yield _UPSERT_DAYS, tuple(map(_array_literal, chunk.days)), len(chunk.days[0])
        if chunk.counts:
            yield (_UPSERT_COUNTS, tuple(map(list, zip(*chunk.counts, strict=True))),
                   len(chunk.counts))
        if chunk.zones:
            yield (_UPSERT_ZONES, tuple(map(list, zip(*chunk.zones, strict=True))),
                   len(chunk.zones))
        if chunk.cursors:
            yield (_UPSERT_CURSORS, tuple(map(list, zip(*chunk.cursors, strict=True))),
                   len(chunk.cursors))


def _array_literal(values: Sequence[float | int | str | None]) -> str:
    """'{1.5,null,...}': one string parameter instead of psycopg2's ARRAY[...] of constants.

    For numbers and MACs only (their text never needs escaping inside an array literal).
    psycopg2 adapts a list element by element and PostgreSQL then parses a constant per
    element; one literal is parsed by array_in, several times faster at both ends.
    orjson writes the shortest exact text of each float (like repr) about 18 times faster
    than str(); array_in reads its null as NULL and its quoted MACs as text.
    """
    text = orjson.dumps(values).decode("ascii")
    if text.count("null") != values.count(None):
        # orjson writes NaN and infinities as null too: spell them out for PostgreSQL.
        return "{" + ",".join("NULL" if v is None else str(v) for v in values) + "}"
    return "{" + text[1:-1] + "}"
