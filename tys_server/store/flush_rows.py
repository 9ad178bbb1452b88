"""What a flush writes: the state's dirty keys as absolute rows, built chunk by chunk.

Pure: reads a State, no I/O. The flusher hands flush_chunks() to Store.flush, which
builds each chunk only when the previous statement has been sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from operator import itemgetter
from typing import Any

from tys_server.core.dirty import Dirty
from tys_server.core.state import State
from tys_server.core.tracking import Track
from tys_server.store.flush_sql import FlushChunk

# Devices per chunk: building one (their track rows and day rows) holds the loop for a
# few ms, and its statements stay small.
FLUSH_CHUNK_DEVICES = 1000
# Up to this many distinct days in a flush, a device's dirty days are found by probing
# each day; past it (a replay of old data), by grouping the day keys once.
PROBED_DAYS = 8
# Metres go to `real` columns, and PostgreSQL refuses a value that single precision
# rounds to zero ("value out of range: underflow"): one CMX moveDistanceInFt of 1e-173
# would fail this flush and every later one. Below this (under float4's smallest normal
# number, 1.2e-38) metres are written as 0.
REAL_TINY_M = 1e-37


def flush_chunks(state: State, dirty: Dirty, chunk_devices: int = FLUSH_CHUNK_DEVICES,
                 cursors: dict[str, int] | None = None) -> Iterator[FlushChunk]:
    """The dirty keys' absolute values, device set by device set, built lazily.

    A chunk holds a set of devices: each one's track row and all its dirty day rows,
    read in one synchronous step, so they describe the same point of its stream even
    though requests are answered between chunks (DESIGN 13). A key changed meanwhile
    is also in the new dirty set, so the next flush writes it again (DESIGN 8).
    """
    days = dirty.days
    ordinals = set(map(itemgetter(1), days))  # C speed: one pass over 100,000 keys is ~5 ms
    days_of = None if len(ordinals) <= PROBED_DAYS else _days_by_mac(days)
    starts = {ordinal: state.calendar.day_start(ordinal) for ordinal in sorted(ordinals)}
    macs = list(dirty.tracks)
    covered = 0
    for i in range(0, len(macs), chunk_devices):
        chunk = _device_chunk(state, macs[i:i + chunk_devices], starts, days, days_of)
        covered += len(chunk.days[0]) if chunk.days else 0
        yield chunk
    if covered < len(days):
        # Day keys of devices without a dirty track: none from ingest (a credit always
        # changes the track), but any caller may mark days alone. Their track rows (if
        # any) come along, read in the same step.
        alone = sorted(set(map(itemgetter(0), days)) - dirty.tracks)
        tracks = state.tracks
        for i in range(0, len(alone), chunk_devices):
            part = alone[i:i + chunk_devices]
            yield _device_chunk(state, part, starts, days, days_of,
                                with_tracks=[mac for mac in part if mac in tracks])
    yield FlushChunk(counts=count_rows(state, dirty.minutes),
                     zones=zone_rows(state, dirty.zones),
                     cursors=sorted((cursors or {}).items()))


def _device_chunk(state: State, macs: list[str], starts: dict[int, float],
                  dirty_days: set[tuple[str, int]], days_of: dict[str, list[int]] | None,
                  with_tracks: list[str] | None = None) -> FlushChunk:
    """The track rows of with_tracks (default: every one of macs) and the dirty day rows
    of macs, read together."""
    values = state.days
    if days_of is None:  # a few days: probe each, a comprehension per day
        day_macs: list[str] = []
        day_starts: list[float] = []
        metres: list[float] = []
        for ordinal, start in starts.items():
            dirty_macs = [mac for mac in macs if (mac, ordinal) in dirty_days]
            if dirty_macs:
                day_macs += dirty_macs
                day_starts += [start] * len(dirty_macs)
                metres += values.day_values(ordinal, dirty_macs)
    else:
        keys = [(mac, ordinal) for mac in macs for ordinal in days_of.get(mac, ())]
        day_macs = [mac for mac, _ in keys]
        day_starts = [starts[ordinal] for _, ordinal in keys]
        metres = [values[key] for key in keys]
    metres = _reals(metres)
    tracked = macs if with_tracks is None else with_tracks
    if not tracked:
        return FlushChunk(days=(day_starts, day_macs, metres) if metres else ())
    tracks = [state.tracks[mac] for mac in tracked]
    return FlushChunk(tracks=_track_columns(tracked, tracks),
                      adaptive=_adaptive_columns(tracks),
                      days=(day_starts, day_macs, metres) if metres else ())


def _days_by_mac(keys: Iterable[tuple[str, int]]) -> dict[str, list[int]]:
    days_of: dict[str, list[int]] = {}
    for mac, ordinal in keys:
        days_of.setdefault(mac, []).append(ordinal)
    return days_of


def _track_columns(macs: list[str], tracks: list[Track]) -> tuple[list[Any], ...]:
    # Columns straight from the tracks: no object per row for the GC to promote.
    return (macs, _reals([t.total_m for t in tracks]), [t.floor for t in tracks],
            [t.x1_ft for t in tracks], [t.y1_ft for t in tracks],
            [t.x2_ft for t in tracks], [t.y2_ft for t in tracks],
            _reals([t.pending_m for t in tracks]), _reals([t.held_m for t in tracks]),
            [t.last_ts for t in tracks])


def _reals(metres: list[float]) -> list[float]:
    """metres as a `real` column can hold them: the tiniest as 0 (REAL_TINY_M)."""
    tiny = REAL_TINY_M
    return [0.0 if -tiny < m < tiny else m for m in metres]


def _adaptive_columns(tracks: list[Track]) -> tuple[list[Any], ...]:
    return ([t.walk for t in tracks], [t.x0_ft for t in tracks], [t.y0_ft for t in tracks],
            [t.cand_x_ft for t in tracks], [t.cand_y_ft for t in tracks],
            [t.cand_ts for t in tracks], [t.jitter_ft for t in tracks],
            [t.run_x_ft for t in tracks], [t.run_y_ft for t in tracks],
            [t.run_m for t in tracks], [t.zig for t in tracks])


def day_rows(state: State, keys: Iterable[tuple[str, int]]) -> list[tuple[str, float, float]]:
    """(mac, day start (epoch s), metres) of each (mac, ordinal) key."""
    starts: dict[int, float] = {}
    rows = []
    for mac, ordinal in keys:
        start = starts.get(ordinal)
        if start is None:
            start = starts[ordinal] = state.calendar.day_start(ordinal)
        rows.append((mac, start, state.days[(mac, ordinal)]))
    return rows


def count_rows(state: State, minutes: Iterable[int]) -> list[tuple[float, int, int, int]]:
    """(minute, users, devices, notifications) of each minute."""
    rows = []
    for minute in minutes:
        users, devices = state.registered.get(minute) or _registered_at(state, minute)
        rows.append((float(minute), users, devices, state.notifications.get(minute, 0)))
    return rows


def zone_rows(state: State, keys: Iterable[tuple[int, str]]) -> list[tuple[float, str, int]]:
    """(minute, zone, visits) of each (minute, zone) key."""
    return [(float(minute), name, state.zones[(minute, name)]) for minute, name in keys]


def _registered_at(state: State, minute: int) -> tuple[int, int]:
    earlier = [m for m in state.registered if m <= minute]
    if earlier:
        return state.registered[max(earlier)]
    return (len(state.users), len(state.owners))

