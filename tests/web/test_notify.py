"""POST /notification through Tornado's test server, flushed into a real PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import API_AUTH, CMX_AUTH, json_of
from tests.support.clock import Clock

FLOOR = 723413320329068590
MAC = "00:11:22:33:44:55"


@pytest.fixture
def runtime_clock(day_clock: Clock) -> Clock:
    """Walks of the last ten minutes stay on one event day at any hour (day rows below)."""
    return day_clock


def movement(mac: str, x: float, y: float, ts_ms: int, move_ft: float = 50.0,
             floor: Any = FLOOR, unit: str = "FEET") -> dict[str, Any]:
    """A CMX movement notification as CMX sends it (the fields we read)."""
    return {"notificationType": "movement", "deviceId": mac, "floorId": floor,
            "locationCoordinate": {"x": x, "y": y, "unit": unit},
            "moveDistanceInFt": move_ft, "timestamp": ts_ms}


def straight_walk(mac: str, start_ms: int, points: int = 10) -> list[dict[str, Any]]:
    """points notifications 50 ft apart on a line, 15 s apart."""
    return [movement(mac, 10.0 + 50.0 * i, 20.0, start_ms + 15_000 * i,
                     move_ft=10000.0 if i == 0 else 50.0) for i in range(points)]


@pytest.mark.gen_test
async def test_notification_needs_the_cmx_pair(post: Any) -> None:
    body = {"notifications": []}
    missing = await post("/notification", body, auth=None)
    assert missing.code == 401
    assert missing.headers["WWW-Authenticate"] == 'Basic realm="TYS"'
    assert json_of(missing) == {"error": "Unauthorized"}
    wrong = await post("/notification", body, auth=("cmx", "wrong"))
    assert wrong.code == 401
    api_pair = await post("/notification", body, auth=API_AUTH)
    assert api_pair.code == 401
    ok = await post("/notification", body, auth=CMX_AUTH)
    assert ok.code == 200
    assert json_of(ok) == {"accepted": 0, "ignored": 0, "rejected": 0}


@pytest.mark.gen_test
async def test_area_path_is_the_same_handler(post: Any, runtime_clock: Clock) -> None:
    now_ms = int(runtime_clock() * 1000)
    reply = await post("/notification/area", {"notifications": [movement(MAC, 1, 2, now_ms)]},
                       auth=CMX_AUTH)
    assert reply.code == 200
    assert json_of(reply)["accepted"] == 1


@pytest.mark.gen_test
@pytest.mark.parametrize("raw", [b"", b"not json", b"[]", b'{"notifications": 5}', b'"x"',
                                 b'{"other": []}'])
async def test_body_that_is_no_envelope_is_400(post: Any, runtime: Any, raw: bytes) -> None:
    reply = await post("/notification", raw=raw, auth=CMX_AUTH)
    assert reply.code == 400
    assert json_of(reply) == {"error": "Expecting a JSON object with a notifications list"}
    assert not runtime.state.tracks


@pytest.mark.gen_test
async def test_batch_mixing_good_and_malformed_entries_keeps_the_good(post: Any,
                                                                        runtime: Any) -> None:
    now_ms = int(runtime.clock() * 1000)
    entries = [
        movement(MAC, 1.0, 2.0, now_ms),
        movement("not-a-mac", 1.0, 2.0, now_ms),
        {"notificationType": "association", "deviceId": MAC},
        movement("00:11:22:33:44:66", float("nan"), 2.0, now_ms) | {
            "locationCoordinate": {"x": "NaN", "y": 1, "unit": "FEET"}},
        movement("00:11:22:33:44:77", 5.0, 6.0, now_ms),
        "just a string",
    ]
    reply = await post("/notification", {"notifications": entries}, auth=CMX_AUTH)
    assert reply.code == 200
    assert json_of(reply) == {"accepted": 2, "ignored": 1, "rejected": 3}
    assert set(runtime.state.tracks) == {MAC, "00:11:22:33:44:77"}


@pytest.mark.clock
@pytest.mark.gen_test
async def test_flush_writes_exact_rows(post: Any, runtime: Any, db: Any) -> None:
    # Both zone visits at seconds 5 and 6 of one minute, ten minutes ago: one zone row.
    minute_s = (int(runtime.clock()) - 600) // 60 * 60
    start_ms = (minute_s + 5) * 1000
    batch = straight_walk(MAC.upper(), start_ms) + [
        {"notificationType": "inout", "deviceId": MAC, "locationMapHierarchy": "V>B>Hall A",
         "timestamp": start_ms},
        {"notificationType": "inout", "deviceId": MAC, "locationMapHierarchy": "V>B>Hall A",
         "timestamp": start_ms + 1000},
    ]
    reply = await post("/notification", {"notifications": batch}, auth=CMX_AUTH)
    assert json_of(reply) == {"accepted": 12, "ignored": 0, "rejected": 0}
    assert await runtime.flusher.flush_once()

    (track,) = db.query("SELECT mac::text, mtrs, floor_id, point_1[0], point_1[1], point_2[0], "
                        "distance_1to2, held_m, extract(epoch FROM time) FROM distance")
    assert track[0] == MAC
    assert track[1] == pytest.approx(121.92, abs=1e-3)
    assert track[2] == FLOOR
    assert (track[3], track[4], track[5]) == (410.0, 20.0, 460.0)
    assert track[6] == pytest.approx(15.24, abs=1e-4)
    assert track[7] == 0.0
    assert track[8] == pytest.approx(start_ms / 1000 + 135)
    (day,) = db.query("SELECT mac::text, mtrs FROM distance_history")
    assert day == (MAC, pytest.approx(121.92, abs=1e-3))
    counts = db.query("SELECT sum(notification_count) FROM count")
    assert counts == [(12,)]
    zones = db.query("SELECT name, count, extract(epoch FROM time AT TIME ZONE 'UTC')::float8 "
                     "FROM zone")
    assert zones == [("V>B>Hall A", 1, minute_s)]  # the zone is the whole hierarchy path


@pytest.mark.gen_test
async def test_second_flush_rewrites_absolute_values(post: Any, runtime: Any, db: Any) -> None:
    start_ms = (int(runtime.clock()) - 600) * 1000
    walk = straight_walk(MAC, start_ms, points=12)
    await post("/notification", {"notifications": walk[:6]}, auth=CMX_AUTH)
    assert await runtime.flusher.flush_once()
    assert await runtime.flusher.flush_once()  # nothing dirty: no change, no double count
    first = db.query("SELECT mtrs FROM distance")[0][0]
    assert first == pytest.approx(4 * 15.24, abs=1e-3)
    await post("/notification", {"notifications": walk[6:]}, auth=CMX_AUTH)
    assert await runtime.flusher.flush_once()
    assert db.query("SELECT mtrs FROM distance")[0][0] == pytest.approx(10 * 15.24, abs=1e-3)
    assert db.query("SELECT sum(mtrs) FROM distance_history")[0][0] == \
        pytest.approx(10 * 15.24, abs=1e-3)


@pytest.mark.clock
@pytest.mark.gen_test
async def test_next_flush_rewrites_a_commit_the_database_may_have_lost(post: Any, runtime: Any,
                                                                      db: Any) -> None:
    start_ms = (int(runtime.clock()) - 600) * 1000
    await post("/notification", {"notifications": straight_walk(MAC, start_ms)}, auth=CMX_AUTH)
    assert await runtime.flusher.flush_once()
    # As if PostgreSQL crashed right after the asynchronous commit and lost it.
    db.query("UPDATE distance SET mtrs = 0")
    db.query("UPDATE distance_history SET mtrs = 0")
    assert await runtime.flusher.flush_once()
    assert db.query("SELECT mtrs FROM distance")[0][0] == pytest.approx(121.92, abs=1e-3)
    assert db.query("SELECT mtrs FROM distance_history")[0][0] == pytest.approx(121.92, abs=1e-3)
    # Rewritten once, not forever: a flush with nothing new only pings.
    db.query("UPDATE distance SET mtrs = 0")
    assert await runtime.flusher.flush_once()
    assert db.query("SELECT mtrs FROM distance")[0][0] == 0
