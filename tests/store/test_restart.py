"""A new runtime over the same database continues exactly where the old one stopped."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.conftest import json_of, with_overrides
from tys_server.server import Runtime

MAC = "00:aa:bb:cc:dd:02"
FLOOR = 723413320329068590


def notification(i: int, start_ms: int, x: float, y: float) -> dict[str, Any]:
    return {"notificationType": "movement", "deviceId": MAC, "floorId": FLOOR,
            "locationCoordinate": {"x": x, "y": y, "unit": "FEET"},
            "moveDistanceInFt": 50.0, "timestamp": start_ms + 15_000 * i}


async def started(settings: Any) -> Runtime:
    runtime = Runtime(settings)
    await runtime.start()
    return runtime


@pytest.mark.gen_test(timeout=30)
async def test_restart_continues_a_walk_with_its_held_leg(settings: Any, db: Any) -> None:
    from tys_server.feeds.cmx import parse_envelope

    start_ms = int((time.time() - 3600) * 1000)
    # Straight east, then a corner north: the leg into the corner is held at the stop.
    points = [(0, 0), (50, 0), (100, 0), (150, 0), (150, 50)]
    after = [(150, 100), (150, 150)]

    def batch(pts: list[tuple[int, int]], first: int) -> Any:
        body = {"notifications": [notification(first + i, start_ms, x, y)
                                  for i, (x, y) in enumerate(pts)]}
        return parse_envelope(body, time.time())

    first = await started(settings)
    first.state.ingest(batch(points, 0), time.time())
    held = first.state.tracks[MAC].held_m
    assert held == pytest.approx(15.24)
    assert await first.stop()

    second = await started(settings)
    restored = second.state.tracks[MAC]
    assert restored.held_m == pytest.approx(15.24, abs=1e-4)
    assert restored.total_m == pytest.approx(2 * 15.24, abs=1e-3)
    second.state.ingest(batch(after, len(points)), time.time())
    assert await second.stop()

    # An uninterrupted run of the same walk, for comparison.
    db.clear()
    straight = await started(settings)
    straight.state.ingest(batch(points + after, 0), time.time())
    expected = straight.state.tracks[MAC].total_m
    await straight.stop()
    assert expected == pytest.approx(5 * 15.24, abs=1e-3)
    rows = db.query("SELECT mtrs FROM distance")
    assert rows[0][0] == pytest.approx(expected, abs=1e-3)


@pytest.mark.gen_test(timeout=30)
async def test_restart_keeps_users_counts_and_days(settings: Any, db: Any, io_loop: Any) -> None:
    first = await started(settings)
    service = first.service
    assert service is not None
    registration = await service.register("Alice", "10.0.0.1")
    assert registration.added
    received = sum(first.state.notifications.values())
    assert await first.stop()
    second = await started(settings)
    assert second.state.user("alice") is not None
    assert second.state.owner("02:00:0a:00:00:01") is not None
    assert sum(second.state.notifications.values()) == received
    assert second.state.registered[max(second.state.registered)] == (1, 1)
    await second.stop()
    assert db.query("SELECT max(user_count), max(device_count) FROM count") == [(1, 1)]


@pytest.mark.gen_test(timeout=30)
async def test_user_without_device_in_legacy_data_is_500(settings: Any, db: Any) -> None:
    bootstrap = await started(settings)  # creates the schema
    await bootstrap.stop()
    db.query("INSERT INTO users (email, nickname, admin) VALUES "
             "('legacy@cmxtrackyoursteps.com', 'legacy', false)")
    runtime = await started(settings)
    service = runtime.service
    assert service is not None
    from tys_server.service import NoDevices

    # The service refuses; its 500 text is the web layer's (the HTTP test below).
    with pytest.raises(NoDevices):
        service.dashboard("Legacy", 5)
    await runtime.stop()


@pytest.fixture
def app_on_legacy_data(io_loop: Any, settings: Any, db: Any) -> Any:
    boot = Runtime(settings)
    io_loop.run_sync(boot.start)
    io_loop.run_sync(boot.stop)
    db.query("INSERT INTO users (email, nickname, admin) VALUES "
             "('legacy@cmxtrackyoursteps.com', 'legacy', false)")
    runtime = Runtime(with_overrides(settings))
    io_loop.run_sync(runtime.start)
    yield runtime
    io_loop.run_sync(runtime.stop)


@pytest.fixture
def app(app_on_legacy_data: Runtime) -> Any:
    return app_on_legacy_data.application()


@pytest.mark.gen_test
async def test_dashboard_of_user_without_device_answers_500_text(post: Any) -> None:
    reply = await post("/live/username_data", {"username": "legacy"})
    assert reply.code == 500
    assert json_of(reply) == {"error": "Could not get device for username"}


def settle_credit(runtime: Runtime, at_s: float) -> float:
    """The metres a settle at at_s credits MAC (the one device it must settle)."""
    before_m = runtime.state.total_m(MAC)
    assert runtime.state.settle(at_s) == 1
    return runtime.state.total_m(MAC) - before_m


@pytest.mark.gen_test(timeout=60)
async def test_restart_continues_an_adaptive_walk_its_gate_and_a_later_settle(
        settings: Any, db: Any) -> None:
    from tys_server.core.adaptive import ZIG_PRIOR
    from tys_server.core.events import Batch, Fix

    adaptive = with_overrides(settings, **{"tracking.filter": "adaptive"})
    start_s = time.time() - 3600
    # A Firehose walker: a fix every 4 s, ~1 m/s with a few feet of noise, so the gate's
    # candidate and jitter move on every fix and only some fixes reach the filter.
    fixes = [Fix(MAC, FLOOR, 13.0 * i + 2.5 * ((i * 7) % 3), 3.0 * ((i * 5) % 4), None,
                 start_s + 4 * i) for i in range(60)]

    def ingest(runtime: Runtime, part: list[Fix]) -> None:
        runtime.state.ingest(Batch(list(part), len(part), 0, 0), start_s + 600)

    first = await started(adaptive)
    ingest(first, fixes[:27])
    walking = first.state.tracks[MAC]
    assert walking.walk & 1 and walking.cand_ts == fixes[26].ts  # mid-walk, between fixes
    # ... and in the middle of a straight run (rule D), its zig moved off the prior.
    assert walking.run_x_ft is not None and 0.0 < walking.run_m <= walking.total_m
    assert walking.zig < ZIG_PRIOR
    adaptive_state = walking.adaptive_row()
    assert await first.stop()

    second = await started(adaptive)
    assert second.state.tracks[MAC].adaptive_row() == adaptive_state  # double precision
    ingest(second, fixes[27:])
    assert second.state.tracks[MAC].walk & 1
    total_before_settle = second.state.total_m(MAC)
    assert await second.stop()

    third = await started(adaptive)  # the walk under way is queued for the settle again
    stop_m = settle_credit(third, start_s + 3600)
    assert await third.stop()
    restarted = stored_metres(db)

    db.clear()  # an uninterrupted run of the same fixes, for comparison
    straight = await started(adaptive)
    ingest(straight, fixes)
    expected_before_settle = straight.state.total_m(MAC)
    expected = expected_before_settle + settle_credit(straight, start_s + 3600)
    await straight.stop()
    assert expected > 0.8 * 59 * 13 * 0.3048  # a walk, credited
    # mtrs is a real column: the totals agree to its precision, the credits exactly as far
    # as held_m (real) carries the stop extension.
    assert total_before_settle == pytest.approx(expected_before_settle, abs=1e-3)
    assert stop_m == pytest.approx(expected - expected_before_settle, abs=1e-5)
    assert stop_m > 0.0
    rows = db.query("SELECT mtrs FROM distance")
    assert rows[0][0] == pytest.approx(expected, abs=1e-3)
    # Both tables the restarts touch hold what the uninterrupted run wrote (0 m lost, 0 m
    # doubled, to a real column's precision), day by day.
    uninterrupted = stored_metres(db)
    assert restarted[0] == pytest.approx(uninterrupted[0], abs=1e-3)
    assert [day for day, _ in restarted[1]] == [day for day, _ in uninterrupted[1]]
    assert [m for _, m in restarted[1]] == pytest.approx([m for _, m in uninterrupted[1]],
                                                         abs=1e-3)
    assert sum(m for _, m in restarted[1]) == pytest.approx(restarted[0], abs=1e-3)


@pytest.mark.gen_test(timeout=60)
async def test_restart_keeps_a_lone_leg_that_a_later_settle_credits(settings: Any,
                                                                     db: Any) -> None:
    from tys_server.core.adaptive import LONE
    from tys_server.core.events import Batch, Fix

    adaptive = with_overrides(settings, **{"tracking.filter": "adaptive"})
    start_s = time.time() - 3600
    # A quiet Firehose phone (about 2 ft of jitter) still for 2 minutes, a 45 ft walk of
    # 12 s, then still again: the gate passes one point of it, 30 ft on, and that one
    # leg is a LONE leg (rule L: over 6 jitters) until a stop credits it.
    still = [Fix(MAC, FLOOR, 2.0 * (i % 2), 2.0 * (i % 3 == 0), None, start_s + 4 * i)
             for i in range(30)]
    walk = [Fix(MAC, FLOOR, 15.0 * i, 0.0, None, start_s + 120 + 4 * i) for i in range(1, 4)]
    there = [Fix(MAC, FLOOR, 45.0 + 2.0 * (i % 2), 2.0 * (i % 3 == 0), None,
                 start_s + 132 + 4 * i) for i in range(1, 9)]
    fixes = still + walk + there

    def ingest(runtime: Runtime) -> None:
        runtime.state.ingest(Batch(list(fixes), len(fixes), 0, 0), start_s + 600)

    first = await started(adaptive)
    ingest(first)
    assert first.state.tracks[MAC].walk == LONE
    row = first.state.tracks[MAC].adaptive_row()
    assert await first.stop()

    second = await started(adaptive)  # walk 4 is stored, read back and queued for the settle
    assert second.state.tracks[MAC].adaptive_row() == row
    settled_m = settle_credit(second, start_s + 3600)
    assert await second.stop()
    restarted = stored_metres(db)

    db.clear()  # an uninterrupted run of the same fixes, for comparison
    straight = await started(adaptive)
    ingest(straight)
    expected_m = settle_credit(straight, start_s + 3600)
    await straight.stop()
    assert expected_m > 30 * 0.3048  # the lone leg and its stop, credited
    assert settled_m == pytest.approx(expected_m, abs=1e-5)
    # Both tables the restart touches hold what the uninterrupted run wrote: the total and
    # each day's metres agree to a real column's precision (0 m lost, 0 m doubled).
    uninterrupted = stored_metres(db)
    assert uninterrupted[0] == pytest.approx(expected_m, abs=1e-3)
    assert sum(m for _, m in uninterrupted[1]) == pytest.approx(uninterrupted[0], abs=1e-3)
    assert restarted[0] == pytest.approx(uninterrupted[0], abs=1e-3)
    assert [day for day, _ in restarted[1]] == [day for day, _ in uninterrupted[1]]
    assert [m for _, m in restarted[1]] == pytest.approx([m for _, m in uninterrupted[1]],
                                                         abs=1e-3)


def stored_metres(db: Any) -> tuple[float, list[tuple[Any, float]]]:
    """MAC's total (distance.mtrs) and its day rows (distance_history), as stored."""
    [(total,)] = db.query("SELECT mtrs FROM distance")
    days = db.query("SELECT time, mtrs FROM distance_history ORDER BY time")
    return total, [(day, metres) for day, metres in days]
