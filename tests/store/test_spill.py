"""The spill file: written whole, read strictly, applied at the next start, then removed.

The shutdown test runs two Runtimes on the test database, the first through a proxy cut
before it stops, with the shutdown flush's pauses taken out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import TestDatabase, with_overrides
from tests.support.pgproxy import PgProxy
from tys_server import runtime as runtime_module
from tys_server.core.adaptive import JITTER_PRIOR_FT, ZIG_PRIOR
from tys_server.core.events import Batch, Movement, ZoneVisit
from tys_server.core.snapshot import Unflushed
from tys_server.core.tracking import NO_FLOOR
from tys_server.server import Runtime
from tys_server.store import spill
from tys_server.store.spill import FILE_NAME, SpillError

FLOOR = 723413320329068590
LEG_M = 50 * 0.3048


# What a track row of a spill file from before rule D (version 2) lacks, and one from
# before the adaptive filter (version 1).
V2_RUN = (None, None, 0.0, ZIG_PRIOR)
V1_ADAPTIVE = (0, None, None, None, None, None, JITTER_PRIOR_FT, *V2_RUN)


def content() -> Unflushed:
    return Unflushed(
        tracks=[("02:00:00:00:00:01", 30.48, FLOOR, 0.1, 2.5, 50.0, 2.5, 15.24, 7.62,
                 1_795_000_000.125, 3, -49.9, 2.5, 61.25, 2.75, 1_795_000_004.5,
                 17.123456789012345, -99.75, 2.25, 45.72000000000001, 0.0872),
                ("02:00:00:00:00:02", 0.0, None, 7.0, 8.0, None, None, 0.0, 0.0, 1.5,
                 *V1_ADAPTIVE),
                ("02:00:00:00:00:03", 99.5, NO_FLOOR, 0.0, 0.0, None, None, 0.0, 0.0, 2.0,
                 *V1_ADAPTIVE)],
        days=[("02:00:00:00:00:01", 1_794_960_000.0, 30.48)],
        counts=[(1_795_000_020.0, 3, 4, 250)],
        zones=[(1_795_000_020.0, "V>B>Hall A'); DROP TABLE zone; --", 12)],
        cursors={"spaces_firehose": 1_795_000_000_123})


def test_spill_round_trips_every_value_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    written = content()
    path = spill.write(tmp_path / "spill", written)
    assert path == tmp_path / "spill" / FILE_NAME
    assert list(path.parent.iterdir()) == [path]
    assert spill.read(tmp_path / "spill") == written
    spill.remove(tmp_path / "spill")
    assert spill.read(tmp_path / "spill") is None


@pytest.mark.parametrize(("version", "columns", "defaults"), [
    (1, 10, V1_ADAPTIVE),  # before the adaptive filter: its columns' defaults
    (2, 17, V2_RUN),       # before rule D: no run, and the prior zig
], ids=["version_1", "version_2"])
def test_an_older_spill_file_is_read_with_the_later_columns_defaults(
        tmp_path: Path, version: int, columns: int, defaults: tuple[Any, ...]) -> None:
    written = content()
    (tmp_path / FILE_NAME).write_bytes(orjson.dumps({
        "format": "tys-spill", "version": version,
        "tracks": [row[:columns] for row in written.tracks], "days": written.days,
        "counts": written.counts, "zones": written.zones, "cursors": written.cursors}))
    read = spill.read(tmp_path)
    assert read is not None
    assert read.tracks == [(*row[:columns], *defaults) for row in written.tracks]
    assert (read.days, read.cursors) == (written.days, written.cursors)


def document(**changes: Any) -> bytes:
    raw = orjson.loads(orjson.dumps({
        "format": "tys-spill", "version": 3, "tracks": content().tracks, "days": content().days,
        "counts": content().counts, "zones": content().zones, "cursors": content().cursors}))
    raw.update(changes)
    return orjson.dumps(raw)


@pytest.mark.parametrize("text", [
    b"", b'{"format": "tys-spill", "version": 1, "tra', b"[1, 2]", document(format="other"),
    document(version=4), document(tracks=[["02:00:00:00:00:01", 1.0]]),
    document(days=[["02:00:00:00:00:01", 1.0, "12"]]), document(counts=[[1.0, 1, 2, 3.5]]),
    document(zones=[[1.0, "Hall", True]]), document(cursors={"spaces_firehose": "x"}),
    document(counts=None),
], ids=["empty", "cut", "list", "format", "version", "short_track", "text_metres",
        "float_count", "bool_visits", "text_cursor", "no_counts"])
def test_an_unusable_spill_file_is_refused_in_one_line_and_kept(tmp_path: Path,
                                                               text: bytes) -> None:
    path = tmp_path / FILE_NAME
    path.write_bytes(text)
    with pytest.raises(SpillError) as refused:
        spill.read(tmp_path)
    message = str(refused.value)
    assert "\n" not in message and str(path) in message
    assert path.read_bytes() == text


def walk(runtime: Runtime, mac: str, first: int, count: int, start_s: float) -> None:
    moves = [Movement(mac, FLOOR, 50.0 * i, 0.0, 50.0, start_s + 15 * i)
             for i in range(first, first + count)]
    runtime.state.ingest(Batch(list(moves), len(moves), 0, 0), runtime.clock())


def stored(db: TestDatabase) -> dict[str, Any]:
    """Every table a flush writes."""
    return {
        "distance": db.query("SELECT mac::text, mtrs FROM distance ORDER BY 1"),
        "days": db.query("SELECT mac::text, time, mtrs FROM distance_history ORDER BY 1, 2"),
        "notifications": db.query("SELECT coalesce(sum(notification_count), 0) FROM count"),
        "zones": db.query("SELECT name, count FROM zone ORDER BY 1"),
        "cursors": db.query("SELECT feed, cursor_ms FROM feed_cursor"),
    }


@pytest.mark.clock
@pytest.mark.gen_test(timeout=60)
async def test_a_shutdown_with_the_database_down_spills_and_the_next_start_writes_it(
        settings: Any, db: TestDatabase, proxy: PgProxy, monkeypatch: Any) -> None:
    monkeypatch.setattr(runtime_module, "final_flush_pause_s", lambda attempt: 0.0)
    cut = with_overrides(settings, **{"database.dsn": proxy.proxied_dsn(),
                                      "database.connect_timeout_s": 1.0,
                                      "database.statement_timeout_s": 1.0})
    first = Runtime(cut)
    await first.start()
    assert first.service is not None and first.flusher is not None
    registration = await first.service.register("Alice", "10.0.0.1")
    alice = registration.mac
    now_s = first.clock()
    calendar = first.state.calendar
    today = calendar.today(now_s)
    # Two days ago reaches the database; yesterday (mid-morning, local) only the spill.
    walk(first, alice, 0, 4, calendar.day_start(today - 2) + 10 * 3600)
    first.loaded_cursors["spaces_firehose"] = 1_795_000_000_000  # as a feed would move it
    assert await first.flusher.flush_once()
    before = stored(db)
    await proxy.down()
    walk(first, alice, 4, 6, calendar.day_start(today - 1) + 10 * 3600)
    walk(first, "02:00:00:00:00:77", 0, 5, now_s - 600)
    first.state.ingest(Batch([ZoneVisit(alice, "Hall A", now_s)], 1, 0, 0), now_s)
    first.loaded_cursors["spaces_firehose"] = 1_795_000_060_000
    totals = {mac: first.state.total_m(mac) for mac in (alice, "02:00:00:00:00:77")}
    days = dict(first.state.days)
    assert first.state.day_m(alice, today - 1) > 0

    assert await first.stop()  # nothing lost: spilled
    assert stored(db) == before
    spill_file = Path(settings.database.spill_dir) / FILE_NAME
    assert spill_file.exists()

    await proxy.up()
    second = Runtime(settings)  # straight to the database, same spill directory
    await second.start()
    try:
        assert not spill_file.exists()
        assert {mac: second.state.total_m(mac) for mac in totals} == totals
        assert dict(second.state.days) == days
        assert second.loaded_cursors == {"spaces_firehose": 1_795_000_060_000}
        assert second.service is not None
        # A day only the spill file had reaches the day boards: through the calendar.
        board = orjson.loads(second.service.leaderboard(5, today - 1))
        assert [leader["username"] for leader in board["leaders"]] == ["Alice"]
    finally:
        assert await second.stop()
    after = stored(db)
    assert dict(after["distance"]) == pytest.approx(totals, rel=1e-6)
    assert sum(m for _, _, m in after["days"]) == pytest.approx(sum(totals.values()), rel=1e-6)
    assert after["zones"] == [("Hall A", 1)]
    assert after["cursors"] == [("spaces_firehose", 1_795_000_060_000)]
    assert after["notifications"][0][0] == sum(first.state.notifications.values())


@pytest.mark.gen_test(timeout=30)
async def test_a_corrupt_spill_file_stops_start_up_and_stays(settings: Any) -> None:
    spill_file = Path(settings.database.spill_dir) / FILE_NAME
    spill_file.parent.mkdir(parents=True)
    spill_file.write_bytes(b'{"format": "tys-spill", "version": 1, "tracks": [[')
    runtime = Runtime(settings)
    with pytest.raises(SpillError, match="unusable"):
        await runtime.start()
    await runtime.stop()
    assert spill_file.read_bytes().startswith(b'{"format"')
