"""What a flush writes: the state's dirty keys as absolute rows, built chunk by chunk.

Pure: reads a State, no I/O. The flusher hands flush_chunks() to Store.flush, which
builds each chunk only when the previous statement has been sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from tys_server.core.state import Dirty, State
from tys_server.store.flush_sql import FlushChunk

# Devices per chunk: building one (their track rows and day rows) holds the loop for a
# few ms, and its statements stay small.
FLUSH_CHUNK_DEVICES = 1000
# Up to this many distinct days in a flush, a device's dirty days are found by probing
# each day; past it (a replay of old data), by grouping the day keys once.
PROBED_DAYS = 8


def flush_chunks(state: State, dirty: Dirty, chunk_devices: int = FLUSH_CHUNK_DEVICES,
                 cursors: dict[str, int] | None = None) -> Iterator[FlushChunk]:
    """The dirty keys' absolute values, device set by device set, built lazily.

    A chunk holds a set of devices: each one's track row and all its dirty day rows,
    read in one synchronous step, so they describe the same point of its stream even
    though requests are answered between chunks (DESIGN 13). A key changed meanwhile
    is also in the new dirty set, so the next flush writes it again (DESIGN 8).
    """
    days = dirty.days
    ordinals = sorted({ordinal for _, ordinal in days})
    days_of = _days_by_mac(days) if len(ordinals) > PROBED_DAYS else None
    macs = list(dirty.tracks)
    for i in range(0, len(macs), chunk_devices):
        yield _device_chunk(state, macs[i:i + chunk_devices], ordinals, days, days_of)
    # Day keys of devices without a dirty track: none from ingest (a credit always
    # changes the track), but any caller may mark days alone.
    alone = sorted({mac for mac, _ in days if mac not in dirty.tracks})
    for i in range(0, len(alone), chunk_devices):
        yield _device_chunk(state, alone[i:i + chunk_devices], ordinals, days, days_of)
    yield FlushChunk(counts=count_rows(state, dirty.minutes),
                     zones=zone_rows(state, dirty.zones),
                     cursors=sorted((cursors or {}).items()))


def _device_chunk(state: State, macs: list[str], ordinals: list[int],
                  dirty_days: set[tuple[str, int]],
                  days_of: dict[str, list[int]] | None) -> FlushChunk:
    if days_of is None:
        keys = [key for mac in macs for ordinal in ordinals
                if (key := (mac, ordinal)) in dirty_days]
    else:
        keys = [(mac, ordinal) for mac in macs for ordinal in days_of.get(mac, ())]
    tracks = state.tracks
    with_track = [mac for mac in macs if mac in tracks]
    return FlushChunk(tracks=_track_columns(state, with_track) if with_track else (),
                      days=_day_columns(state, keys) if keys else ())


def _days_by_mac(keys: Iterable[tuple[str, int]]) -> dict[str, list[int]]:
    days_of: dict[str, list[int]] = {}
    for mac, ordinal in keys:
        days_of.setdefault(mac, []).append(ordinal)
    return days_of


def _track_columns(state: State, macs: list[str]) -> tuple[list[Any], ...]:
    # Columns straight from the tracks: no object per row for the GC to promote.
    tracks = [state.tracks[mac] for mac in macs]
    return (macs, [t.total_m for t in tracks], [t.floor for t in tracks],
            [t.x1_ft for t in tracks], [t.y1_ft for t in tracks],
            [t.x2_ft for t in tracks], [t.y2_ft for t in tracks],
            [t.pending_m for t in tracks], [t.held_m for t in tracks],
            [t.last_ts for t in tracks])


def _day_columns(state: State, keys: list[tuple[str, int]]) -> tuple[list[Any], ...]:
    rows = day_rows(state, keys)
    return [start for _, start, _ in rows], [mac for mac, _, _ in rows], \
        [metres for _, _, metres in rows]


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

