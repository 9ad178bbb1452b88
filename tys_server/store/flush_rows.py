"""What a flush writes: the state's dirty keys as absolute rows, built chunk by chunk.

Pure: reads a State, no I/O. The flusher hands flush_chunks() to Store.flush, which
builds each chunk only when the previous statement has been sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from tys_server.core.state import Dirty, State
from tys_server.store.flush_sql import FlushChunk

# Rows per statement of a flush: building one chunk holds the loop for a few ms.
FLUSH_CHUNK_ROWS = 1000


def flush_chunks(state: State, dirty: Dirty,
                 chunk_rows: int = FLUSH_CHUNK_ROWS) -> Iterator[FlushChunk]:
    """The dirty keys' absolute values in pieces of at most chunk_rows rows, built lazily.

    Values are read when their chunk is built: a key changed meanwhile is also in the
    new dirty set, so the next flush writes it again (absolute values, DESIGN 8).
    """
    macs = list(dirty.tracks)
    for i in range(0, len(macs), chunk_rows):
        yield FlushChunk(tracks=_track_columns(state, macs[i:i + chunk_rows]))
    days = list(dirty.days)
    for i in range(0, len(days), chunk_rows):
        yield FlushChunk(days=_day_columns(state, days[i:i + chunk_rows]))
    yield FlushChunk(counts=_count_rows(state, dirty.minutes),
                     zones=_zone_rows(state, dirty.zones))


def _track_columns(state: State, macs: list[str]) -> tuple[list[Any], ...]:
    # Columns straight from the tracks: no object per row for the GC to promote.
    tracks = [state.tracks[mac] for mac in macs]
    return (macs, [t.total_m for t in tracks], [t.floor for t in tracks],
            [t.x1_ft for t in tracks], [t.y1_ft for t in tracks],
            [t.x2_ft for t in tracks], [t.y2_ft for t in tracks],
            [t.pending_m for t in tracks], [t.held_m for t in tracks],
            [t.last_ts for t in tracks])


def _day_columns(state: State, keys: list[tuple[str, int]]) -> tuple[list[Any], ...]:
    rows = _day_rows(state, keys)
    return [start for _, start, _ in rows], [mac for mac, _, _ in rows], \
        [metres for _, _, metres in rows]


def _day_rows(state: State, keys: Iterable[tuple[str, int]]) -> list[tuple[str, float, float]]:
    starts: dict[int, float] = {}
    rows = []
    for mac, ordinal in keys:
        start = starts.get(ordinal)
        if start is None:
            start = starts[ordinal] = state.calendar.day_start(ordinal)
        rows.append((mac, start, state.days[(mac, ordinal)]))
    return rows


def _count_rows(state: State, minutes: Iterable[int]) -> list[tuple[float, int, int, int]]:
    rows = []
    for minute in minutes:
        users, devices = state.registered.get(minute) or _registered_at(state, minute)
        rows.append((float(minute), users, devices, state.notifications.get(minute, 0)))
    return rows


def _zone_rows(state: State, keys: Iterable[tuple[int, str]]) -> list[tuple[float, str, int]]:
    return [(float(minute), name, state.zones[(minute, name)]) for minute, name in keys]


def _registered_at(state: State, minute: int) -> tuple[int, int]:
    earlier = [m for m in state.registered if m <= minute]
    if earlier:
        return state.registered[max(earlier)]
    return (len(state.users), len(state.owners))

