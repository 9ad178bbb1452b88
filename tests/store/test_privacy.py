"""Erasure and retention against a real PostgreSQL, in turn with a real flusher.

A state, a store and a flusher on the test database, and the service's Privacy over
them; time is the test's (Clock). A flush is stopped half-way by a lock on the count
table (tests.support.flushhold): it has written the devices' rows, uncommitted, and
waits, while an erasure or a purge is asked for. Every table a flush writes and memory
are checked after the next flushes and after a restart (a new state loaded from the
database).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import TestDatabase, with_overrides
from tests.support.clock import Clock
from tests.support.flushhold import TableLock, WatchedGate
from tests.support.pgproxy import PgProxy
from tys_server.core.events import Batch, Movement
from tys_server.core.state import State
from tys_server.core.tracking import FilterParams
from tys_server.server import Runtime
from tys_server.service import StorageFailed, UserNotFound, privacy
from tys_server.service.privacy import DAY_S, Privacy
from tys_server.store import spill
from tys_server.store.database import Store
from tys_server.store.flusher import Flusher

NOW_S = 1_795_000_000.0  # 2026-11-18 11:06:40 UTC: no day edge within the walks below
ALICE, BOB, STRANGER = "02:00:0a:00:00:01", "02:00:0a:00:00:02", "02:00:0a:00:00:09"
LEG_M = 50 * 0.3048


def walk(mac: str, first: int, count: int, start_s: float) -> list[Movement]:
    """Points first..first+count-1 of a straight line east, 50 ft and 15 s apart."""
    return [Movement(mac, 1, 50.0 * i, 0.0, 50.0, start_s + 15 * i)
            for i in range(first, first + count)]


class Rig:
    """State, store, flusher and Privacy on the test database (or through a proxy)."""

    def __init__(self, store: Store, db: TestDatabase) -> None:
        self.db = db
        self.store = store
        self.clock = Clock(NOW_S)
        self.state = State(FilterParams(), "UTC")
        self.flusher = Flusher(self.state, store, 10.0, clock=self.clock)
        self.privacy = Privacy(self.state, store, self.flusher, self.clock)

    async def register(self, username: str, mac: str) -> None:
        """As Service.register does: the database first, then memory."""
        email = f"{username}@example.org"
        await self.store.add_user(email, username, mac)
        self.state.add_user(email, username, mac, self.clock())

    def ingest(self, *moves: Movement) -> None:
        self.state.ingest(Batch(list(moves), len(moves), 0, 0, {}), self.clock())

    def rows(self) -> dict[str, Any]:
        """Per MAC, what every table a flush or a registration writes holds."""
        q = self.db.query
        return {
            "users": [name for (name,) in q("SELECT nickname FROM users ORDER BY 1")],
            "devices": [mac for (mac,) in q("SELECT mac::text FROM devices ORDER BY 1")],
            "distance": dict(q("SELECT mac::text, mtrs FROM distance")),
            "days": {(mac, int(day)): metres for mac, day, metres in q(
                "SELECT mac::text, extract(epoch FROM time), mtrs FROM distance_history")},
        }

    def memory(self) -> dict[str, Any]:
        """The same, as memory holds it (day keys as day starts, like the rows)."""
        state = self.state
        return {
            "users": sorted(user.username for user in state.users.values()),
            "devices": sorted(state.owners),
            "distance": {mac: pytest.approx(track.total_m, rel=1e-6)
                         for mac, track in state.tracks.items()},
            "days": {(mac, int(state.calendar.day_start(ordinal))):
                     pytest.approx(metres, rel=1e-6)
                     for (mac, ordinal), metres in state.days.items()},
        }

    async def reloaded(self) -> State:
        """What a restart would hold: a new state loaded from the database."""
        state = State(FilterParams(), "UTC")
        await self.store.load(state, recent_since_s=NOW_S - 3600)
        return state


async def connected(dsn: str) -> Store:
    store = await Store.connect(dsn, pool_size=3, connect_timeout_s=1.0,
                                statement_timeout_s=5.0)
    await store.apply_schema(unlogged=False)
    return store


@pytest.fixture
def rig(io_loop: Any, db: TestDatabase) -> Iterator[Rig]:
    store = io_loop.run_sync(lambda: connected(db.dsn))
    try:
        yield Rig(store, db)
    finally:
        io_loop.run_sync(store.close)


async def two_walkers_and_a_stranger(rig: Rig) -> None:
    """alice walked yesterday and today, bob today, an unregistered phone today; flushed."""
    await rig.register("alice", ALICE)
    await rig.register("bob", BOB)
    rig.ingest(*walk(ALICE, 0, 6, NOW_S - DAY_S))
    rig.ingest(*walk(ALICE, 6, 4, NOW_S - 600), *walk(BOB, 0, 5, NOW_S - 600),
               *walk(STRANGER, 0, 4, NOW_S - 600))
    assert await rig.flusher.flush_once()


def no_distance_of(mac: str, rows: dict[str, Any]) -> bool:
    """True when neither distance nor distance_history has a row of mac."""
    return mac not in rows["distance"] and all(key[0] != mac for key in rows["days"])


def nothing_of(mac: str, rows: dict[str, Any]) -> bool:
    """True when no row of any table names mac."""
    return mac not in rows["devices"] and no_distance_of(mac, rows)


# -- erasure ------------------------------------------------------------------------------


@pytest.mark.gen_test(timeout=30)
async def test_erasure_deletes_the_user_and_every_row_of_its_devices(rig: Rig) -> None:
    await two_walkers_and_a_stranger(rig)
    before = rig.rows()
    assert len([key for key in before["days"] if key[0] == ALICE]) == 2

    assert await rig.privacy.erase(rig.state.user("alice")) == 1

    after = rig.rows()
    assert after["users"] == ["bob"] and nothing_of(ALICE, after)
    # Nobody else lost anything.
    assert after["distance"] == {mac: metres for mac, metres in before["distance"].items()
                                 if mac != ALICE}
    assert after["days"] == {key: metres for key, metres in before["days"].items()
                             if key[0] != ALICE}
    assert rig.memory() == after
    assert await rig.flusher.flush_once()
    assert rig.rows() == after


@pytest.mark.gen_test(timeout=60)
async def test_a_flush_held_half_way_cannot_write_an_erased_device_back(rig: Rig) -> None:
    await rig.register("alice", ALICE)
    await rig.register("bob", BOB)
    rig.ingest(*walk(BOB, 0, 5, NOW_S - 600))
    assert await rig.flusher.flush_once()
    # The next flush writes alice's first rows (two days) while bob walks on: rows an
    # erasure cannot see, let alone delete, until that flush commits.
    rig.ingest(*walk(ALICE, 0, 6, NOW_S - DAY_S), *walk(ALICE, 6, 4, NOW_S - 600),
               *walk(BOB, 5, 3, NOW_S - 300))
    assert no_distance_of(ALICE, rig.rows())
    rig.privacy.flush = gate = WatchedGate(rig.flusher)
    with TableLock(rig.db.dsn, "count") as lock:
        flush = asyncio.ensure_future(rig.flusher.flush_once())
        await lock.until_waited_for()  # alice's rows written, uncommitted; the flush waits
        erase = asyncio.ensure_future(rig.privacy.erase(rig.state.user("alice")))
        await gate.asked.wait()
        await asyncio.sleep(0)
        assert not erase.done()  # it waits for the flush before it touches the database
        assert rig.rows()["users"] == ["alice", "bob"]
        lock.release()
        assert await flush
        assert await erase == 1
    after = rig.rows()
    assert after["users"] == ["bob"] and nothing_of(ALICE, after)
    assert after["distance"][BOB] == pytest.approx(rig.state.tracks[BOB].total_m, rel=1e-6)
    assert rig.memory() == after
    # The held flush's keys are rewritten by the next flush (asynchronous commit): alice's
    # are not among them any more, and nothing brings her rows back.
    for _ in range(2):
        assert await rig.flusher.flush_once()
        assert rig.rows() == after
    restarted = await rig.reloaded()
    assert restarted.user("alice") is None
    assert ALICE not in restarted.tracks and all(mac != ALICE for mac, _ in restarted.days)
    assert restarted.user_total_m(restarted.user("bob")) == pytest.approx(
        rig.state.user_total_m(rig.state.user("bob")), rel=1e-6)


@pytest.mark.gen_test(timeout=30)
async def test_an_erased_device_seen_again_is_tracked_anew_unregistered(rig: Rig) -> None:
    await two_walkers_and_a_stranger(rig)
    await rig.privacy.erase(rig.state.user("alice"))
    rig.ingest(*walk(ALICE, 20, 4, NOW_S - 60))
    assert rig.state.owner(ALICE) is None
    assert rig.state.tracks[ALICE].total_m == pytest.approx(2 * LEG_M)  # from zero
    assert await rig.flusher.flush_once()
    assert rig.rows()["distance"][ALICE] == pytest.approx(2 * LEG_M)


@pytest.mark.gen_test(timeout=30)
async def test_a_new_device_in_an_erased_devices_day_column_starts_from_nothing(
        rig: Rig) -> None:
    # Memory holds a day as an array with a column per device (core/days.py); an erased
    # device's column is reused. The new device owns none of alice's two days of metres,
    # in memory, in the rows the next flushes write, and after a restart.
    await two_walkers_and_a_stranger(rig)
    alice_column = rig.state.days.columns[ALICE]
    await rig.privacy.erase(rig.state.user("alice"))
    newcomer = "02:00:0a:00:00:0c"
    rig.ingest(*walk(newcomer, 0, 3, NOW_S - 60))
    assert rig.state.days.columns[newcomer] == alice_column
    today = rig.state.calendar.day_of(NOW_S)
    assert (rig.state.day_m(newcomer, today), rig.state.day_m(newcomer, today - 1)) == \
        (pytest.approx(LEG_M), 0.0)
    for _ in range(2):
        assert await rig.flusher.flush_once()
    after = rig.rows()
    assert [key for key in after["days"] if key[0] == newcomer] == \
        [(newcomer, int(rig.state.calendar.day_start(today)))]
    assert nothing_of(ALICE, after) and rig.memory() == after
    restarted = await rig.reloaded()
    assert dict(restarted.days) == dict(rig.state.days)
    assert len(restarted.days) == 3  # bob's, the stranger's and the newcomer's today


@pytest.mark.gen_test(timeout=30)
async def test_a_spill_after_an_erasure_holds_nothing_of_the_erased_devices(
        rig: Rig) -> None:
    await two_walkers_and_a_stranger(rig)
    rig.ingest(*walk(ALICE, 10, 3, NOW_S - 300), *walk(BOB, 5, 3, NOW_S - 300))
    await rig.privacy.erase(rig.state.user("alice"))
    content = spill.unflushed(rig.state, rig.flusher.unflushed(), {})
    assert {row[0] for row in content.tracks} == {BOB, STRANGER}  # the last flush's, and new
    assert {row[0] for row in content.days} == {BOB, STRANGER}


@pytest.mark.gen_test(timeout=30)
async def test_an_erasure_the_database_refuses_changes_nothing(io_loop: Any, db: TestDatabase,
                                                               proxy: PgProxy) -> None:
    rig = Rig(await connected(proxy.proxied_dsn()), db)
    try:
        await two_walkers_and_a_stranger(rig)
        before, remembered = rig.rows(), rig.memory()
        await proxy.down()
        with pytest.raises(StorageFailed):
            await rig.privacy.erase(rig.state.user("alice"))
        assert rig.memory() == remembered
        await proxy.up()
        assert rig.rows() == before
        assert await rig.flusher.flush_once()
        assert rig.rows() == before
    finally:
        await rig.store.close()


@pytest.mark.gen_test(timeout=30)
async def test_erasing_a_user_deleted_meanwhile_is_user_not_found(rig: Rig) -> None:
    await two_walkers_and_a_stranger(rig)
    alice = rig.state.user("alice")
    async with rig.flusher.paused():
        erase = asyncio.ensure_future(rig.privacy.erase(alice))
        await asyncio.sleep(0)
        rig.state.remove_user(alice, NOW_S)  # as a delete_username would, meanwhile
    with pytest.raises(UserNotFound):
        await erase


# -- retention ----------------------------------------------------------------------------


async def devices_of_all_ages(rig: Rig) -> dict[str, str]:
    """Unregistered old and recent, registered old, a deleted user's old device; flushed."""
    macs = {"old": "02:00:00:00:01:01", "recent": "02:00:00:00:01:02",
            "owned": "02:00:00:00:01:03", "orphan": "02:00:00:00:01:04"}
    await rig.register("olga", macs["owned"])
    await rig.register("gone", macs["orphan"])
    for name, age_days in (("old", 40), ("recent", 29), ("owned", 40), ("orphan", 31)):
        rig.ingest(*walk(macs[name], 0, 4, NOW_S - age_days * DAY_S))
    await rig.store.delete_user("gone@example.org")  # as delete_username without erase
    rig.state.remove_user(rig.state.user("gone"), NOW_S)
    assert await rig.flusher.flush_once()
    return macs


@pytest.mark.gen_test(timeout=30)
async def test_purge_takes_unowned_devices_idle_longer_than_the_retention(rig: Rig) -> None:
    macs = await devices_of_all_ages(rig)
    assert await rig.privacy.purge(30) == 2  # the unregistered one and the deleted user's
    rows = rig.rows()
    assert nothing_of(macs["old"], rows) and nothing_of(macs["orphan"], rows)
    assert set(rows["distance"]) == {macs["recent"], macs["owned"]}
    assert {mac for mac, _ in rows["days"]} == {macs["recent"], macs["owned"]}
    assert rig.memory() == rows
    assert await rig.flusher.flush_once()
    assert rig.rows() == rows
    assert await rig.privacy.purge(30) == 0  # nothing more to take
    rig.clock.now_s += 2 * DAY_S  # the recent one is 31 days idle now
    assert await rig.privacy.purge(30) == 1
    assert set(rig.rows()["distance"]) == {macs["owned"]}


@pytest.mark.gen_test(timeout=30)
async def test_a_purge_goes_batch_by_batch(rig: Rig, monkeypatch: Any) -> None:
    macs = await devices_of_all_ages(rig)
    monkeypatch.setattr(privacy, "PURGE_BATCH_DEVICES", 1)
    monkeypatch.setattr(privacy, "SCAN_SLICE_TRACKS", 1)
    assert await rig.privacy.purge(30) == 2
    rows = rig.rows()
    assert set(rows["distance"]) == {macs["recent"], macs["owned"]}
    assert rig.memory() == rows


@pytest.mark.gen_test(timeout=30)
async def test_purge_with_zero_days_takes_every_unowned_device(rig: Rig) -> None:
    macs = await devices_of_all_ages(rig)
    assert await rig.privacy.purge(0) == 3
    assert set(rig.rows()["distance"]) == {macs["owned"]}


@pytest.mark.gen_test(timeout=30)
async def test_a_candidate_the_database_knows_as_registered_is_kept(rig: Rig) -> None:
    macs = await devices_of_all_ages(rig)
    # Registered in the database, memory not told yet (a registration under way).
    await rig.store.add_user("late@example.org", "late", macs["old"])
    assert await rig.privacy.purge(30) == 1
    rows = rig.rows()
    assert macs["old"] in rows["distance"] and macs["old"] in rig.state.tracks
    assert nothing_of(macs["orphan"], rows)


@pytest.mark.gen_test(timeout=30)
async def test_a_candidate_seen_again_before_its_batch_is_kept(rig: Rig) -> None:
    macs = await devices_of_all_ages(rig)
    async with rig.flusher.paused():  # picked, then held before its batch
        purge = asyncio.ensure_future(rig.privacy.purge(30))
        for _ in range(10):
            await asyncio.sleep(0)
        rig.ingest(*walk(macs["old"], 4, 2, NOW_S - 60))  # the phone is back
    assert await purge == 1
    assert macs["old"] in rig.state.tracks and macs["old"] in rig.rows()["distance"]


@pytest.mark.gen_test(timeout=60)
async def test_a_flush_held_half_way_cannot_write_a_purged_device_back(rig: Rig) -> None:
    macs = await devices_of_all_ages(rig)
    # The old phone's track is rewritten by the next flush (its keys are unconfirmed).
    rig.ingest(*walk(macs["recent"], 4, 2, NOW_S - 60))
    rig.privacy.flush = gate = WatchedGate(rig.flusher)
    with TableLock(rig.db.dsn, "count") as lock:
        flush = asyncio.ensure_future(rig.flusher.flush_once())
        await lock.until_waited_for()
        purge = asyncio.ensure_future(rig.privacy.purge(30))
        await gate.asked.wait()
        await asyncio.sleep(0)
        assert not purge.done()
        assert macs["old"] in rig.rows()["distance"]
        lock.release()
        assert await flush
        assert await purge == 2
    for _ in range(2):
        assert await rig.flusher.flush_once()
        rows = rig.rows()
        assert nothing_of(macs["old"], rows) and nothing_of(macs["orphan"], rows)
    restarted = await rig.reloaded()
    assert set(restarted.tracks) == {macs["recent"], macs["owned"]}


# -- the retention task -------------------------------------------------------------------


@pytest.mark.gen_test(timeout=60)
async def test_the_server_purges_at_start_up_and_stops_its_task_at_shutdown(
        settings: Any, db: TestDatabase) -> None:
    store = await connected(db.dsn)
    try:
        rig = Rig(store, db)
        macs = await devices_of_all_ages(rig)
    finally:
        await store.close()
    runtime = Runtime(with_overrides(settings, **{"privacy.retain_unregistered_days": 30}),
                      clock=Clock(NOW_S))
    await runtime.start()
    try:
        await asyncio.wait_for(runtime.retained.wait(), 30)
        assert runtime.retention_runs == 1
        assert set(runtime.state.tracks) == {macs["recent"], macs["owned"]}
        assert {mac for (mac,) in db.query("SELECT mac::text FROM distance")} == {
            macs["recent"], macs["owned"]}
    finally:
        assert await runtime.stop()
    assert runtime.retention_runs == 1  # cancelled while it waited for the next hour
