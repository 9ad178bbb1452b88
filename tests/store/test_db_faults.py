"""PostgreSQL going away, hanging and coming back: nothing lost, nothing doubled."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.conftest import CMX_AUTH, json_of
from tests.support.clock import Clock
from tests.support.pgproxy import PgProxy

MAC = "00:aa:bb:cc:dd:01"


@pytest.fixture
def timeout_s() -> float:
    """database.statement_timeout_s and connect_timeout_s (a test may parametrize it)."""
    return 1.0


@pytest.fixture
def overrides(proxy: PgProxy, timeout_s: float) -> dict[str, Any]:
    return {"database.dsn": proxy.proxied_dsn(), "database.flush_interval_s": 1.0,
            "database.statement_timeout_s": timeout_s, "database.connect_timeout_s": timeout_s}


def walk(start_ms: int, first: int, count: int) -> dict[str, Any]:
    return {"notifications": [
        {"notificationType": "movement", "deviceId": MAC, "floorId": 3,
         "locationCoordinate": {"x": 50.0 * i, "y": 0.0, "unit": "FEET"},
         "moveDistanceInFt": 50.0, "timestamp": start_ms + 15_000 * i}
        for i in range(first, first + count)]}


@pytest.mark.gen_test(timeout=30)
async def test_outage_keeps_accepting_and_loses_nothing(post: Any, runtime: Any, db: Any,
                                                        proxy: PgProxy) -> None:
    clock = Clock(runtime.clock())
    runtime.flusher.clock = clock
    start_ms = int((clock() - 3600) * 1000)
    await post("/notification", walk(start_ms, 0, 4), auth=CMX_AUTH)
    assert await runtime.flusher.flush_once()
    assert db.query("SELECT mtrs FROM distance")[0][0] == pytest.approx(2 * 15.24, abs=1e-3)

    await proxy.down()
    for first in (4, 8):
        reply = await post("/notification", walk(start_ms, first, 4), auth=CMX_AUTH)
        assert reply.code == 200
    assert not await runtime.flusher.flush_once()
    assert MAC in runtime.state.dirty.tracks
    health = await post("/healthz", method="GET", auth=None)
    assert health.code == 200  # not yet three intervals
    clock.now_s += 3.5
    assert not await runtime.flusher.flush_once()
    health = await post("/healthz", method="GET", auth=None)
    assert health.code == 503
    assert json_of(health)["database"] == "down"
    assert json_of(health)["backlog"] >= 1
    assert db.query("SELECT mtrs FROM distance")[0][0] == pytest.approx(2 * 15.24, abs=1e-3)

    await proxy.up()
    assert await runtime.flusher.flush_once()
    health = await post("/healthz", method="GET", auth=None)
    assert health.code == 200
    assert json_of(health)["status"] == "ok"
    assert db.query("SELECT mtrs FROM distance")[0][0] == pytest.approx(10 * 15.24, abs=1e-3)
    assert db.query("SELECT sum(mtrs) FROM distance_history")[0][0] == \
        pytest.approx(10 * 15.24, abs=1e-3)
    assert db.query("SELECT sum(notification_count) FROM count") == [(12,)]


# Timeouts far beyond the test's hang guard: "fast" is answered on the refused
# connection itself, never after a timeout ran out (no duration is measured).
@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("timeout_s", [600.0])
async def test_registration_fails_fast_while_database_is_down(post: Any, runtime: Any,
                                                              db: Any, proxy: PgProxy) -> None:
    await post("/live/register_username", {"username": "Keep", "ip": "10.0.0.9"})
    await proxy.down()
    reply = await post("/live/register_username", {"username": "Alice", "ip": "10.0.0.1"})
    assert reply.code == 500
    assert json_of(reply) == {"error": "Database error adding user"}
    deleted = await post("/live/delete_username", {"username": "Keep"})
    assert deleted.code == 500
    assert json_of(deleted) == {"error": "Could not delete user from database"}
    assert runtime.state.user("Alice") is None
    assert runtime.state.user("Keep") is not None
    await proxy.up()
    again = await post("/live/register_username", {"username": "Alice", "ip": "10.0.0.1"})
    assert again.code == 201
    assert db.query("SELECT nickname FROM users ORDER BY nickname") == [("Alice",), ("Keep",)]


# A statement timeout long enough for the requests below on a busy runner: they are
# counted by order (each answered while the flush still hangs), not by duration.
@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("timeout_s", [4.0])
async def test_stalled_database_times_out_and_the_loop_keeps_serving(
        post: Any, runtime: Any, db: Any, proxy: PgProxy) -> None:
    start_ms = int((runtime.clock() - 3600) * 1000)
    await post("/notification", walk(start_ms, 0, 4), auth=CMX_AUTH)
    proxy.stall()
    flush = asyncio.ensure_future(runtime.flusher.flush_once())
    while runtime.state.dirty:  # no event for it: a loop turn until the flush took the keys
        await asyncio.sleep(0)
    # The hanging flush holds the changed keys: they still count as not written.
    health = json_of(await post("/healthz", method="GET", auth=None))
    assert health["backlog"] >= 2  # the track and its day, at least
    served = 0
    for _ in range(6):
        reply = await post("/notification", walk(start_ms, 4 + served, 1), auth=CMX_AUTH)
        assert reply.code == 200
        assert not flush.done()  # requests were answered while the flush hung
        served += 1
    assert await flush is False
    await proxy.up()
    assert await runtime.flusher.flush_once()
    expected = (4 + served - 2) * 15.24
    assert db.query("SELECT mtrs FROM distance")[0][0] == pytest.approx(expected, abs=1e-2)
