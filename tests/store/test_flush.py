"""The Flusher against a real PostgreSQL: absolute values, failures, rewrite, backlog, health.

Time is the test's: the state ingests at NOW_S and the flusher reads an injected clock,
so nothing here depends on the wall clock. The database is cut through tests.support.pgproxy.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import TestDatabase
from tests.support.clock import Clock
from tests.support.pgproxy import PgProxy
from tys_server.core.events import Batch, Movement, ZoneVisit
from tys_server.core.state import State
from tys_server.core.tracking import FilterParams
from tys_server.core.zones import OPEN_MINUTES
from tys_server.store.database import Store
from tys_server.store.flusher import MAX_BACKOFF_S, UNHEALTHY_AFTER_INTERVALS, Flusher

NOW_S = 1_795_000_000.0
INTERVAL_S = 10.0
LEG_M = 50 * 0.3048  # one 50 ft leg
MAC = "00:aa:bb:cc:dd:10"
OTHER = "00:aa:bb:cc:dd:11"


def walk(mac: str, first: int, count: int) -> list[Movement]:
    """Points first..first+count-1 of a straight line east, 50 ft and 15 s apart."""
    return [Movement(mac, 1, 50.0 * i, 0.0, 50.0, NOW_S - 600 + 15 * i)
            for i in range(first, first + count)]


def ingest(state: State, *events: Movement | ZoneVisit) -> None:
    state.ingest(Batch(list(events), len(events), 0, 0, {}), NOW_S)


class Rig:
    """A state, a store on the proxied test database, and a flusher on the test's clock."""

    def __init__(self, store: Store, proxy: PgProxy, db: TestDatabase) -> None:
        self.state = State(FilterParams(), "UTC")
        self.store = store
        self.proxy = proxy
        self.db = db
        self.clock = Clock(NOW_S)
        self.flusher = Flusher(self.state, store, INTERVAL_S, clock=self.clock)

    def stored(self) -> dict[str, Any]:
        """What PostgreSQL holds in every table a flush writes."""
        return {
            "distance": dict(self.db.query("SELECT mac::text, mtrs FROM distance")),
            "days": dict(self.db.query("SELECT mac::text, sum(mtrs) FROM distance_history "
                                       "GROUP BY mac")),
            "notifications": self.db.query("SELECT coalesce(sum(notification_count), 0) "
                                           "FROM count")[0][0],
            "zones": self.db.query("SELECT name, count FROM zone ORDER BY name"),
        }


@pytest.fixture
def rig(io_loop: Any, proxy: PgProxy, db: TestDatabase) -> Iterator[Rig]:
    async def connect() -> Store:
        store = await Store.connect(proxy.proxied_dsn(), pool_size=2, connect_timeout_s=1.0,
                                    statement_timeout_s=1.0)
        await store.apply_schema(unlogged=False)
        return store

    store = io_loop.run_sync(connect)
    try:
        yield Rig(store, proxy, db)
    finally:
        io_loop.run_sync(store.close)


def legs(count: int) -> Any:
    """count legs of 50 ft, as a `real` column holds them."""
    return pytest.approx(count * LEG_M, rel=1e-6)


@pytest.mark.gen_test(timeout=30)
async def test_flush_writes_absolute_values_over_whatever_is_stored(rig: Rig) -> None:
    ingest(rig.state, *walk(MAC, 0, 4), ZoneVisit(MAC, "V>B>Hall A", NOW_S - 30))
    assert await rig.flusher.flush_once()
    assert rig.stored() == {"distance": {MAC: legs(2)}, "days": {MAC: legs(2)},
                            "notifications": 5, "zones": [("V>B>Hall A", 1)]}

    # Another writer (or a restore) changed the rows: the next flush does not add to them.
    rig.db.query("UPDATE distance SET mtrs = 1000")
    rig.db.query("UPDATE distance_history SET mtrs = 1000")
    ingest(rig.state, *walk(MAC, 4, 2))
    assert await rig.flusher.flush_once()
    assert rig.stored() == {"distance": {MAC: legs(4)}, "days": {MAC: legs(4)},
                            "notifications": 7, "zones": [("V>B>Hall A", 1)]}


@pytest.mark.gen_test(timeout=30)
async def test_metres_too_small_for_a_real_column_are_written_as_zero(rig: Rig) -> None:
    # A feed's moveDistanceInFt of 1e-173 ft makes a leg that PostgreSQL's `real` cannot
    # hold ("value out of range: underflow"): it must not stop this flush and every later
    # one (nor the spill written at shutdown, applied through a flush at the next start).
    first, second, third = walk(MAC, 0, 3)
    ingest(rig.state, first, Movement(MAC, 1, second.x_ft, 0.0, 1e-173, second.ts))
    assert rig.state.tracks[MAC].pending_m == pytest.approx(3.048e-174, rel=1e-9, abs=0)
    assert await rig.flusher.flush_once()
    assert rig.db.query("SELECT mtrs, distance_1to2 FROM distance") == [(0.0, 0.0)]
    ingest(rig.state, third)  # walks on: the tiny leg is credited, to the total and the day
    assert 0 < rig.state.tracks[MAC].total_m < 1e-170
    assert await rig.flusher.flush_once()
    assert rig.stored()["distance"] == {MAC: 0.0}
    assert rig.stored()["days"] == {MAC: 0.0}
    assert rig.db.query("SELECT distance_1to2 FROM distance") == [(pytest.approx(LEG_M),)]


@pytest.mark.gen_test(timeout=30)
async def test_failed_flush_keeps_every_dirty_key_and_the_next_writes_them(rig: Rig) -> None:
    ingest(rig.state, *walk(MAC, 0, 4), ZoneVisit(MAC, "Hall A", NOW_S))
    dirty = (set(rig.state.dirty.tracks), set(rig.state.dirty.days),
             set(rig.state.dirty.minutes), set(rig.state.dirty.zones))
    await rig.proxy.down()

    assert not await rig.flusher.flush_once()
    kept = rig.state.dirty
    assert (kept.tracks, kept.days, kept.minutes, kept.zones) == dirty
    assert rig.flusher.failures == 1
    ingest(rig.state, *walk(OTHER, 0, 3))  # accepted meanwhile
    assert not await rig.flusher.flush_once()
    assert rig.stored()["distance"] == {}  # nothing reached the database

    await rig.proxy.up()
    assert await rig.flusher.flush_once()
    assert rig.stored() == {"distance": {MAC: legs(2), OTHER: legs(1)},
                            "days": {MAC: legs(2), OTHER: legs(1)},
                            "notifications": 8, "zones": [("Hall A", 1)]}
    assert not rig.state.dirty
    assert rig.flusher.failures == 0


@pytest.mark.gen_test(timeout=30)
async def test_keys_of_the_last_flush_are_written_once_more(rig: Rig) -> None:
    ingest(rig.state, *walk(MAC, 0, 4))
    assert await rig.flusher.flush_once()
    # As if PostgreSQL crashed right after the asynchronous commit and lost it.
    rig.db.query("UPDATE distance SET mtrs = 0")
    rig.db.query("UPDATE distance_history SET mtrs = 0")

    assert await rig.flusher.flush_once()  # nothing new: the unconfirmed keys only
    assert rig.stored()["distance"] == {MAC: legs(2)}
    assert rig.stored()["days"] == {MAC: legs(2)}

    rig.db.query("UPDATE distance SET mtrs = 0")
    assert await rig.flusher.flush_once()  # confirmed by the flush before: not again
    assert rig.stored()["distance"] == {MAC: 0}


@pytest.mark.gen_test(timeout=30)
async def test_backlog_counts_the_keys_a_running_flush_holds(rig: Rig) -> None:
    assert await rig.flusher.flush_once()  # the pool's connection is open before the stall
    ingest(rig.state, *walk(MAC, 0, 4))
    taken = len(rig.state.dirty)  # the track, its day and the minute
    assert taken == 3
    rig.proxy.stall()
    flush = asyncio.ensure_future(rig.flusher.flush_once())
    try:
        await asyncio.sleep(0)  # one loop turn: the flush has taken the keys and waits
        left_in_state, while_held = len(rig.state.dirty), rig.flusher.backlog()
        ingest(rig.state, *walk(OTHER, 0, 2))  # meanwhile: OTHER's track and the minute
        with_new_keys = rig.flusher.backlog()
    finally:
        await rig.proxy.up()  # let the flush finish whatever the assertions say
        flushed = await flush
    assert (left_in_state, while_held, with_new_keys) == (0, taken, taken + 2)
    assert flushed
    assert rig.flusher.backlog() == 2  # the new keys, for the next flush
    assert rig.flusher.health()[1]["backlog"] == 2


@pytest.mark.gen_test(timeout=30)
async def test_health_turns_not_ok_after_three_intervals_of_failure(rig: Rig) -> None:
    assert await rig.flusher.flush_once()
    assert rig.flusher.health() == (True, {"database": "up", "last_flush_age_s": 0.0,
                                           "backlog": 0})
    ingest(rig.state, *walk(MAC, 0, 2))
    await rig.proxy.down()
    assert not await rig.flusher.flush_once()  # failing since NOW_S
    down_for_s = UNHEALTHY_AFTER_INTERVALS * INTERVAL_S

    rig.clock.now_s = NOW_S + down_for_s
    assert not await rig.flusher.flush_once()
    ok, details = rig.flusher.health()
    assert ok  # three intervals exactly: not yet
    # The track and the minute, kept for the next try.
    assert details == {"database": "down", "last_flush_age_s": down_for_s, "backlog": 2}

    rig.clock.now_s = NOW_S + down_for_s + 0.1
    assert rig.flusher.health()[0] is False

    await rig.proxy.up()
    assert await rig.flusher.flush_once()
    assert rig.flusher.health() == (True, {"database": "up", "last_flush_age_s": 0.0,
                                           "backlog": 0})


@pytest.mark.gen_test(timeout=30)
async def test_retries_back_off_doubling_up_to_the_cap(rig: Rig) -> None:
    await rig.proxy.down()
    delays_s = [rig.flusher.next_delay_s()]
    for _ in range(8):
        assert not await rig.flusher.flush_once()
        delays_s.append(rig.flusher.next_delay_s())
    assert delays_s == [INTERVAL_S, INTERVAL_S, 2 * INTERVAL_S, *[MAX_BACKOFF_S] * 6]
    await rig.proxy.up()
    assert await rig.flusher.flush_once()
    assert rig.flusher.next_delay_s() == INTERVAL_S


class Interleaving:
    """The rig's store, with `between()` run each time the flush asks for its next chunk:
    what requests answered while a statement runs do to the state."""

    def __init__(self, store: Store, between: Any) -> None:
        self.store = store
        self.between = between

    async def flush(self, chunks: Any) -> int:
        def interleaved() -> Iterator[Any]:
            for chunk in chunks():
                yield chunk
                self.between()

        return await self.store.flush(interleaved)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


@pytest.mark.gen_test(timeout=60)
async def test_each_device_is_written_from_one_moment_while_steps_arrive_between_chunks(
        rig: Rig) -> None:
    macs = [f"02:f1:00:00:{i >> 8:02x}:{i & 255:02x}" for i in range(2500)]  # 3 chunks
    step = [0]

    def everyone_steps() -> None:
        k = step[0]
        step[0] += 1
        ingest(rig.state, *(Movement(mac, 1, 50.0 * k, 0.0, 50.0, NOW_S - 900 + 15 * k)
                            for mac in macs))

    for _ in range(4):
        everyone_steps()  # two legs credited, one pending
    flusher = Flusher(rig.state, Interleaving(rig.store, everyone_steps), INTERVAL_S,
                      clock=rig.clock)
    assert await flusher.flush_once()
    # As after a kill -9 right after that commit: the database is all that is left.
    rows = rig.db.query("SELECT d.mac::text, d.mtrs, d.time, sum(h.mtrs) FROM distance d "
                        "JOIN distance_history h USING (mac) GROUP BY 1, 2, 3")
    assert len(rows) == len(macs)
    unequal = [(mac, total, days) for mac, total, _, days in rows
               if days != pytest.approx(total, rel=1e-6)]
    assert unequal == []
    # And each total is the filter's over the points up to the one its row names.
    for mac, total, newest, _ in rows[:50]:
        k = round((newest.timestamp() - (NOW_S - 900)) / 15)
        assert total == pytest.approx(max(k - 1, 0) * LEG_M, rel=1e-6), mac


@pytest.mark.gen_test(timeout=30)
async def test_feed_cursors_are_read_at_the_flush_start_and_written_in_its_transaction(
        rig: Rig) -> None:
    cursors = {"spaces_firehose": 1_000}

    def later_events() -> None:  # the feed moves on while the flush runs
        cursors["spaces_firehose"] += 500
        ingest(rig.state, *walk(MAC, 10 + cursors["spaces_firehose"] // 500, 1))

    flusher = Flusher(rig.state, Interleaving(rig.store, later_events), INTERVAL_S,
                      clock=rig.clock, cursors=lambda: dict(cursors))
    ingest(rig.state, *walk(MAC, 0, 3))
    assert await flusher.flush_once()
    # The cursor read before the first await, with the rows of that flush.
    assert rig.db.query("SELECT feed, cursor_ms FROM feed_cursor") == [("spaces_firehose", 1000)]
    [(written_at,)] = rig.db.query("SELECT updated FROM feed_cursor")

    await rig.proxy.down()
    assert not await flusher.flush_once()
    assert rig.db.query("SELECT cursor_ms FROM feed_cursor") == [(1000,)]
    await rig.proxy.up()
    flusher.store = rig.store  # no more interleaving: the cursor stays put from here
    assert await flusher.flush_once()
    moved = cursors["spaces_firehose"]
    assert moved > 1000
    assert rig.db.query("SELECT cursor_ms FROM feed_cursor") == [(moved,)]
    [(rewritten_at,)] = rig.db.query("SELECT updated FROM feed_cursor")
    assert await flusher.flush_once()  # unchanged: not written again
    assert rig.db.query("SELECT cursor_ms, updated FROM feed_cursor") == [(moved, rewritten_at)]
    assert rewritten_at > written_at

    loaded = await rig.store.load(State(FilterParams(), "UTC"), recent_since_s=NOW_S - 3600)
    assert loaded.cursors == {"spaces_firehose": moved}


@pytest.mark.gen_test(timeout=60)
async def test_memory_stays_bounded_through_a_long_outage(rig: Rig) -> None:
    """100 failed flush intervals (17 minutes) of new devices, steps and zone visits."""
    max_devices = 300
    rig.state.max_devices = max_devices
    await rig.proxy.down()
    zones = ("Hall A", "Hall B")
    sizes = []
    for interval in range(100):
        now_s = NOW_S + INTERVAL_S * interval
        rig.clock.now_s = now_s
        # Every interval 20 new devices arrive, and every tracked device steps and is
        # seen in both zones.
        macs = [f"02:0b:00:00:{(interval * 20 + i) >> 8:02x}:{(interval * 20 + i) & 255:02x}"
                for i in range(20)] + list(rig.state.tracks)
        events: list[Any] = [Movement(mac, 1, 50.0 * interval, 0.0, 50.0, now_s)
                             for mac in macs]
        events += [ZoneVisit(mac, zone, now_s) for mac in macs for zone in zones]
        rig.state.ingest(Batch(events, len(events), 0, 0, {}), now_s)
        assert not await rig.flusher.flush_once()
        dirty = rig.state.dirty
        sizes.append((len(rig.state.tracks), len(dirty.tracks), len(dirty.days),
                      len(dirty.minutes), len(dirty.zones), rig.state.visits.minutes(),
                      len(rig.state.visits)))
    minutes = len({int(NOW_S + INTERVAL_S * i) // 60 for i in range(100)})  # 17
    tracks, dirty_tracks, dirty_days, dirty_minutes, dirty_zones, open_minutes, seen = \
        map(max, zip(*sizes, strict=True))
    assert (tracks, dirty_tracks) == (max_devices, max_devices)
    assert dirty_days <= max_devices * 2  # the outage spans at most two event days
    # Per-minute counters grow by one row a minute of outage (zones: one per zone),
    # never with the traffic.
    assert (dirty_minutes, dirty_zones) == (minutes, minutes * len(zones))
    # Who was counted in a zone: only the open minutes (10 behind, 5 ahead), each at
    # most every device in every zone.
    assert open_minutes <= OPEN_MINUTES
    assert seen <= OPEN_MINUTES * (max_devices + 20) * len(zones)
    assert rig.state.refused_devices == 100 * 20 - max_devices
    assert rig.state.stale_visits == 0
    print(f"outage: {len(sizes)} failed flushes, at most {tracks} tracks, {dirty_days} dirty "
          f"days, {seen} zone de-duplication entries in {open_minutes} minutes")  # -rP

    await rig.proxy.up()
    assert await rig.flusher.flush_once()
    assert rig.db.query("SELECT count(*) FROM distance") == [(max_devices,)]
    assert rig.db.query("SELECT count(*) FROM zone") == [(minutes * len(zones),)]
