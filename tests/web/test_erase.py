"""delete_username with "erase": true, over HTTP: the right to erasure (DESIGN 15).

The runtime's clock is the test's (noon of a fixed day); walks go straight into the
runtime's state. The race test stops a flush half-way with a lock on the count table
(tests.support.flushhold) and asks for the erasure meanwhile; every table and memory
are checked after the next flushes and after a restart.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.conftest import json_of, with_overrides
from tests.support import event
from tests.support.clock import Clock
from tests.support.event import NOW_S, km, mac_of, walk
from tests.support.flushhold import TableLock, WatchedGate
from tests.web.test_live import register
from tys_server.server import Runtime

DELETE = "/live/delete_username"
DATA = "/live/username_data"
BOARD = "/live/leaderboard"
BAD_DELETE = "Expecting keyname username to delete."
DELETED = "Username and associated devices deleted"
ALICE_IP, BOB_IP, STRANGER_IP = "10.0.0.1", "10.0.0.2", "10.0.0.9"
ALICE, BOB, STRANGER = mac_of(ALICE_IP), mac_of(BOB_IP), mac_of(STRANGER_IP)
OVERRIDES = {"leaderboard.refresh_interval_s": 0.0}


runtime_clock = event.noon_clock


@pytest.fixture
def overrides() -> dict[str, Any]:
    return dict(OVERRIDES)


def stored(db: Any) -> dict[str, Any]:
    """Every table a registration or a flush writes, by who or which MAC it names."""
    q = db.query
    return {
        "users": [name for (name,) in q("SELECT nickname FROM users ORDER BY 1")],
        "devices": [mac for (mac,) in q("SELECT mac::text FROM devices ORDER BY 1")],
        "distance": sorted(mac for (mac,) in q("SELECT mac::text FROM distance")),
        "history": sorted(q("SELECT mac::text, count(*) FROM distance_history GROUP BY 1")),
    }


async def walkers(post: Any, runtime: Runtime) -> None:
    """alice (40 legs today, 10 yesterday) and bob (10 legs), and a phone nobody registered."""
    assert (await register(post, "alice", ALICE_IP)).code == 201
    assert (await register(post, "bob", BOB_IP)).code == 201
    walk(runtime, ALICE_IP, 10, NOW_S - 86_400)
    walk(runtime, ALICE_IP, 40)
    walk(runtime, BOB_IP, 10)
    walk(runtime, STRANGER_IP, 5)


async def board_totals(post: Any) -> tuple[float, list[str]]:
    reply = json_of(await post(BOARD, {}))
    return reply["total_kilometres"], [leader["username"] for leader in reply["leaders"]]


async def restarted(settings: Any) -> Runtime:
    """A second runtime over the same database: what a restart would hold."""
    runtime = Runtime(with_overrides(settings, **OVERRIDES), clock=Clock(NOW_S))
    await runtime.start()
    return runtime


def erased_everywhere(db: Any, runtime: Runtime) -> None:
    rows = stored(db)
    assert rows == {"users": ["bob"], "devices": [BOB], "distance": sorted([BOB, STRANGER]),
                    "history": [(BOB, 1), (STRANGER, 1)]}
    state = runtime.state
    assert state.user("alice") is None and state.owner(ALICE) is None
    assert ALICE not in state.tracks and all(mac != ALICE for mac, _ in state.days)


@pytest.mark.gen_test(timeout=60)
async def test_erase_deletes_the_user_and_every_trace_of_their_devices(
        post: Any, runtime: Runtime, db: Any, settings: Any) -> None:
    await walkers(post, runtime)
    assert runtime.flusher is not None and await runtime.flusher.flush_once()
    assert await board_totals(post) == (km(60), ["alice", "bob"])
    assert stored(db)["history"] == [(ALICE, 2), (BOB, 1), (STRANGER, 1)]

    reply = await post(DELETE, {"username": "ALICE", "erase": True})
    assert reply.code == 200
    assert json_of(reply) == {"success": DELETED, "username": "alice",
                              "email": "alice@cmxtrackyoursteps.com"}  # the seed's reply
    assert (await post(DATA, {"username": "alice"})).code == 404
    assert await board_totals(post) == (km(10), ["bob"])
    erased_everywhere(db, runtime)
    assert await runtime.flusher.flush_once()
    erased_everywhere(db, runtime)
    again = await restarted(settings)
    try:
        erased_everywhere(db, again)
    finally:
        await again.stop()


@pytest.mark.gen_test(timeout=60)
async def test_an_erasure_during_a_flush_held_half_way_stays_erased(
        post: Any, runtime: Runtime, db: Any, settings: Any) -> None:
    assert runtime.flusher is not None and runtime.service is not None
    assert (await register(post, "alice", ALICE_IP)).code == 201
    assert (await register(post, "bob", BOB_IP)).code == 201
    assert await runtime.flusher.flush_once()
    # alice's first rows (two days) are in the flush that is held: an erasure that did not
    # wait for it could not even see them.
    walk(runtime, ALICE_IP, 10, NOW_S - 86_400)
    walk(runtime, ALICE_IP, 40)
    walk(runtime, BOB_IP, 10)
    walk(runtime, STRANGER_IP, 5)
    runtime.service.privacy.flush = gate = WatchedGate(runtime.flusher)
    with TableLock(db.dsn, "count") as lock:
        flush = asyncio.ensure_future(runtime.flusher.flush_once())
        await lock.until_waited_for()
        erase = asyncio.ensure_future(post(DELETE, {"username": "alice", "erase": True}))
        await gate.asked.wait()
        await asyncio.sleep(0)
        assert not erase.done()
        assert stored(db)["users"] == ["alice", "bob"]
        lock.release()
        assert await flush
        reply = await erase
    assert (reply.code, json_of(reply)["success"]) == (200, DELETED)
    erased_everywhere(db, runtime)
    assert (await post(DATA, {"username": "alice"})).code == 404
    assert await board_totals(post) == (km(10), ["bob"])
    for _ in range(2):
        assert await runtime.flusher.flush_once()
        erased_everywhere(db, runtime)
    again = await restarted(settings)
    try:
        erased_everywhere(db, again)
        assert again.state.total_m(BOB) == pytest.approx(runtime.state.total_m(BOB))
    finally:
        await again.stop()


@pytest.mark.gen_test
async def test_without_erase_the_distance_stays_with_the_mac(post: Any, runtime: Runtime,
                                                             db: Any) -> None:
    await walkers(post, runtime)
    assert runtime.flusher is not None and await runtime.flusher.flush_once()
    for body in ({"username": "alice"}, {"username": "bob", "erase": False}):
        reply = await post(DELETE, body)
        assert reply.code == 200
        assert json_of(reply)["success"] == DELETED
    assert stored(db)["distance"] == sorted([ALICE, BOB, STRANGER])
    assert (await register(post, "alice", ALICE_IP)).code == 201  # brings it back
    assert await board_totals(post) == (km(50), ["alice"])


@pytest.mark.gen_test
@pytest.mark.parametrize("erase", ["true", 1, 0, None, [], {}])
async def test_erase_that_is_not_a_json_boolean_is_the_endpoints_400(
        post: Any, runtime: Runtime, db: Any, erase: Any) -> None:
    await walkers(post, runtime)
    assert runtime.flusher is not None and await runtime.flusher.flush_once()
    before = stored(db)
    reply = await post(DELETE, {"username": "alice", "erase": erase})
    assert (reply.code, json_of(reply)) == (400, {"error": BAD_DELETE})
    assert stored(db) == before
    assert runtime.state.user("alice") is not None and ALICE in runtime.state.tracks


@pytest.mark.gen_test
async def test_erasing_an_unknown_user_is_404(post: Any) -> None:
    reply = await post(DELETE, {"username": "ghost", "erase": True})
    assert (reply.code, json_of(reply)) == (404, {"error": "Username not found"})
