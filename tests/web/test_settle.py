"""tracking.filter: adaptive through the app: a walk's last leg shows once the feeds' clock
says the walker has stopped (docs/accuracy.md), never on the wall clock."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import CMX_AUTH, json_of, with_overrides
from tests.support.clock import Clock
from tys_server.server import Runtime

pytestmark = pytest.mark.clock  # the settle's clock

FLOOR = 723413320329068590
DATA = "/live/username_data"
REGISTER = "/live/register_username"


@pytest.fixture
def monotonic() -> Clock:
    """The runtime's monotonic clock, which runs the feeds' event clocks on."""
    return Clock(5000.0)


@pytest.fixture
def runtime(io_loop: Any, settings: Any, monotonic: Clock) -> Iterator[Runtime]:
    """A started runtime with the shipped default filter, on a monotonic clock we move."""
    rt = Runtime(with_overrides(settings, **{"tracking.filter": "adaptive"}),
                 monotonic=monotonic)
    io_loop.run_sync(rt.start)
    try:
        yield rt
    finally:
        io_loop.run_sync(rt.stop)


def straight_walk(mac: str, start_ms: int, points: int) -> list[dict[str, Any]]:
    """points CMX notifications 50 ft apart on a line, 15 s apart."""
    return [{"notificationType": "movement", "deviceId": mac, "floorId": FLOOR,
             "locationCoordinate": {"x": 10.0 + 50.0 * i, "y": 20.0, "unit": "FEET"},
             "moveDistanceInFt": 10000.0 if i == 0 else 50.0,
             "timestamp": start_ms + 15_000 * i} for i in range(points)]


async def steps(post: Any) -> int:
    reply = await post(DATA, {"username": "alice"})
    assert reply.code == 200
    return int(json_of(reply)[0]["total_steps"])


@pytest.mark.gen_test
async def test_a_walk_through_notification_gets_its_last_leg_when_the_feeds_clock_settles_it(
        post: Any, runtime: Runtime, monotonic: Clock, db: Any) -> None:
    assert (await post(REGISTER, {"username": "Alice", "ip": "10.0.0.7"})).code == 201
    start_ms = int((time.time() - 600) * 1000)
    walk = await post("/notification", {"notifications": straight_walk(
        "02:00:0a:00:00:07", start_ms, 10)}, auth=CMX_AUTH)
    assert walk.code == 200
    # Nine 50 ft legs (the classic filter credits eight): 450 ft at 2.5 ft a step.
    assert await steps(post) == 180
    assert runtime.settle() == 0
    # The feed's clock runs from its newest event: the settle needs settle_s (60) past
    # the last fix plus the feeds' lateness (90), whatever the wall clock says.
    monotonic.now_s += 149.0
    assert runtime.settle() == 0
    assert await steps(post) == 180
    monotonic.now_s += 1.0
    assert runtime.settle() == 1
    assert await steps(post) == 188  # and the stop: 20 ft past the last fix (0.4 × 50 ft)
    assert runtime.flusher is not None and await runtime.flusher.flush_once()
    [(total_m, walk_state)] = db.query("SELECT mtrs, walk FROM distance")
    [(day_m,)] = db.query("SELECT sum(mtrs) FROM distance_history")
    assert (total_m, walk_state) == (pytest.approx(9 * 15.24 + 6.096, abs=1e-4), 2)
    assert day_m == pytest.approx(total_m, abs=1e-4)


@pytest.mark.gen_test
async def test_the_settle_waits_while_no_feed_has_delivered(runtime: Runtime,
                                                            monotonic: Clock) -> None:
    monotonic.now_s += 3600.0
    assert runtime.feeds.settle_time_s() is None
    assert runtime.settle() == 0
