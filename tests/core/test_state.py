"""The in-memory aggregate: event days, zone visits, dirty keys (no I/O)."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

import pytest

from tys_server.core.events import Batch, Movement, ZoneVisit
from tys_server.core.state import Dirty, State
from tys_server.core.tracking import FilterParams
from tys_server.store.flush_rows import flush_chunks

MAC = "00:11:22:33:44:55"
LA = zoneinfo.ZoneInfo("America/Los_Angeles")


def flushed(state: State, dirty: Dirty) -> dict[str, list[tuple[Any, ...]]]:
    """The rows a flush of dirty writes, table by table (columns zipped back into rows)."""
    rows: dict[str, list[tuple[Any, ...]]] = {"tracks": [], "days": [], "counts": [], "zones": []}
    for chunk in flush_chunks(state, dirty):
        rows["tracks"] += zip(*chunk.tracks, strict=True)
        rows["days"] += zip(*chunk.days, strict=True)
        rows["counts"] += chunk.counts
        rows["zones"] += chunk.zones
    return rows


def batch(*events: Movement | ZoneVisit) -> Batch:
    return Batch(list(events), len(events), 0, 0, {})


def walk(start_s: float, points: int) -> list[Movement]:
    """A straight line, 50 ft and 15 s between points."""
    return [Movement(MAC, 1, 50.0 * i, 0.0, 50.0, start_s + 15 * i) for i in range(points)]


def test_walk_across_midnight_splits_between_event_days() -> None:
    state = State(FilterParams(), "America/Los_Angeles")
    midnight = dt.datetime(2026, 11, 28, tzinfo=LA).timestamp()
    # Credits happen at points 2..9 (ts of the point that confirms a leg);
    # points 0-4 are before local midnight, 5-9 after.
    moves = walk(midnight - 5 * 15 + 1, 10)
    state.ingest(batch(*moves), midnight + 200)
    nov27 = dt.date(2026, 11, 27).toordinal()
    nov28 = dt.date(2026, 11, 28).toordinal()
    assert state.day_m(MAC, nov27) == pytest.approx(3 * 15.24)
    assert state.day_m(MAC, nov28) == pytest.approx(5 * 15.24)
    assert state.total_m(MAC) == pytest.approx(8 * 15.24)
    rows = flushed(state, state.take_dirty())
    starts = sorted(start for start, _, _ in rows["days"])
    assert starts == [dt.datetime(2026, 11, 27, tzinfo=LA).timestamp(), midnight]


def test_same_walk_in_utc_stays_on_one_day() -> None:
    state = State(FilterParams(), "UTC")
    noon = dt.datetime(2026, 11, 28, 12, tzinfo=dt.UTC).timestamp()
    state.ingest(batch(*walk(noon, 10)), noon + 200)
    assert state.day_m(MAC, dt.date(2026, 11, 28).toordinal()) == pytest.approx(8 * 15.24)


def test_zone_visit_counts_once_per_device_and_minute() -> None:
    state = State(FilterParams(), "UTC")
    minute = 1_795_000_020.0
    state.ingest(batch(ZoneVisit(MAC, "Hall A", minute), ZoneVisit(MAC, "Hall A", minute + 30),
                       ZoneVisit("00:11:22:33:44:66", "Hall A", minute + 10),
                       ZoneVisit(MAC, "Hall B", minute + 5),
                       ZoneVisit(MAC, "Hall A", minute + 60)), minute + 61)
    start = int(minute) // 60 * 60
    assert state.zones[(start, "Hall A")] == 2
    assert state.zones[(start, "Hall B")] == 1
    assert state.zones[(start + 60, "Hall A")] == 1


def test_failed_flush_puts_its_keys_back() -> None:
    state = State(FilterParams(), "UTC")
    now = 1_795_000_000.0
    state.ingest(batch(*walk(now - 200, 4)), now)
    dirty = state.take_dirty()
    assert not state.dirty
    state.ingest(batch(Movement("00:11:22:33:44:77", 1, 0.0, 0.0, None, now)), now)
    state.dirty.merge(dirty)
    assert state.dirty.tracks == {MAC, "00:11:22:33:44:77"}
    rows = flushed(state, state.dirty)
    (walker_total_m,) = [total_m for mac, total_m, *_ in rows["tracks"] if mac == MAC]
    assert walker_total_m == pytest.approx(2 * 15.24)
    assert sum(n for _, _, _, n in rows["counts"]) == 5


def test_stale_notification_changes_nothing() -> None:
    state = State(FilterParams(), "UTC")
    now = 1_795_000_000.0
    state.ingest(batch(*walk(now - 200, 3)), now)
    state.take_dirty()
    state.ingest(batch(Movement(MAC, 1, 500.0, 0.0, 50.0, now - 1000)), now)
    assert MAC not in state.dirty.tracks
