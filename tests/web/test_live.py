"""/live/* through Tornado's test server, CMX in test mode, against a real PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import CMX_AUTH, json_of
from tests.support.clock import Clock, event_date

REGISTER = "/live/register_username"
DELETE = "/live/delete_username"
DATA = "/live/username_data"
BOARD = "/live/leaderboard"
IP_USER = "/live/ip_username"
BAD_REGISTER = "Not a POST request or no application/json headers with username and ip"
DAY_S = 86400.0


def test_mac(ip: str) -> str:
    """CMX test mode: a.b.c.d → 02:00:aa:bb:cc:dd."""
    return "02:00:" + ":".join(f"{int(octet):02x}" for octet in ip.split("."))


test_mac.__test__ = False  # type: ignore[attr-defined]


@pytest.fixture
def runtime_clock(day_clock: Clock) -> Clock:
    """The walks of "today" below (at most an hour ago) stay today at any hour."""
    return day_clock


async def walk(post: Any, mac: str, legs: int, start_s: float, *, y: float = 0.0) -> float:
    """Send a straight walk crediting `legs` legs of 50 ft; returns the metres credited."""
    start_ms = int(start_s * 1000)
    entries = [{"notificationType": "movement", "deviceId": mac, "floorId": 1,
                "locationCoordinate": {"x": 50.0 * i, "y": y, "unit": "FEET"},
                "moveDistanceInFt": 50.0, "timestamp": start_ms + 15_000 * i}
               for i in range(legs + 2)]
    reply = await post("/notification", {"notifications": entries}, auth=CMX_AUTH)
    assert reply.code == 200
    return legs * 15.24


async def register(post: Any, username: str, ip: str, **extra: Any) -> Any:
    return await post(REGISTER, {"username": username, "ip": ip, **extra})


# -- auth and methods ----------------------------------------------------------------


@pytest.mark.gen_test
@pytest.mark.parametrize("path", [REGISTER, DELETE, DATA, BOARD, IP_USER])
async def test_live_needs_the_api_pair(post: Any, path: str) -> None:
    for auth in (None, CMX_AUTH, ("frontend", "nope")):
        reply = await post(path, {}, auth=auth)
        assert reply.code == 401
        assert reply.headers["WWW-Authenticate"] == 'Basic realm="TYS"'
        assert json_of(reply) == {"error": "Unauthorized"}


@pytest.mark.gen_test
@pytest.mark.parametrize("path", [REGISTER, DELETE, DATA, BOARD, IP_USER])
async def test_live_refuses_other_methods_with_json(post: Any, path: str) -> None:
    reply = await post(path, method="GET")
    assert reply.code == 405
    assert "error" in json_of(reply)


# -- register_username ---------------------------------------------------------------


@pytest.mark.gen_test
async def test_register_creates_user_with_device(post: Any, runtime: Any, db: Any) -> None:
    reply = await register(post, "Alice", "10.1.2.3")
    assert reply.code == 201
    assert json_of(reply) == {"success": "Username added with device", "username": "Alice",
                              "email": "Alice@cmxtrackyoursteps.com", "ip": "10.1.2.3",
                              "mac": "02:00:0a:01:02:03"}
    assert db.query("SELECT email, nickname FROM users") == \
        [("Alice@cmxtrackyoursteps.com", "Alice")]
    assert db.query("SELECT mac::text, owner FROM devices") == \
        [("02:00:0a:01:02:03", "Alice@cmxtrackyoursteps.com")]


@pytest.mark.gen_test
async def test_username_with_at_sign_is_its_own_email(post: Any) -> None:
    reply = await register(post, "bob@example.org", "10.0.0.2")
    assert reply.code == 201
    assert json_of(reply)["email"] == "bob@example.org"


@pytest.mark.gen_test
async def test_same_user_same_device_is_nothing_to_do(post: Any) -> None:
    await register(post, "Alice", "10.1.2.3")
    again = await register(post, "ALICE", "10.1.2.3")
    assert again.code == 200
    body = json_of(again)
    assert body["info"] == "Username already registered with that mac, nothing to do"
    assert body["username"] == "Alice"
    assert body["mac"] == "02:00:0a:01:02:03"


@pytest.mark.gen_test
async def test_username_is_unique_case_insensitively(post: Any) -> None:
    await register(post, "Alice", "10.1.2.3")
    other = await register(post, "aLiCe", "10.1.2.4")
    assert other.code == 409
    assert json_of(other) == {"error": "Username already registered"}


@pytest.mark.gen_test
async def test_device_of_another_user_is_409(post: Any) -> None:
    await register(post, "Alice", "10.1.2.3")
    other = await register(post, "Bob", "10.1.2.3")
    assert other.code == 409
    assert json_of(other) == {"error": "Device already registered with another username."}


@pytest.mark.gen_test
@pytest.mark.parametrize("overrides", [{"registration.max_devices_per_user": 2}])
async def test_add_device_up_to_the_limit(overrides: Any, post: Any, db: Any) -> None:
    await register(post, "Alice", "10.1.2.3")
    second = await register(post, "alice", "10.1.2.4", add_device=True)
    assert second.code == 201
    assert json_of(second)["mac"] == "02:00:0a:01:02:04"
    assert json_of(second)["username"] == "Alice"
    third = await register(post, "Alice", "10.1.2.5", add_device=True)
    assert third.code == 409
    assert json_of(third) == {"error": "Maximum number of devices registered"}
    assert db.query("SELECT count(*) FROM devices") == [(2,)]


@pytest.mark.gen_test
async def test_add_device_past_default_limit_of_one(post: Any) -> None:
    await register(post, "Alice", "10.1.2.3")
    reply = await register(post, "Alice", "10.1.2.4", add_device=True)
    assert reply.code == 409
    assert json_of(reply) == {"error": "Maximum number of devices registered"}


@pytest.mark.gen_test
@pytest.mark.parametrize("body", [
    {}, {"username": "Alice"}, {"ip": "10.0.0.1"}, {"username": "", "ip": "10.0.0.1"},
    {"username": "@alice", "ip": "10.0.0.1"}, {"username": "x" * 65, "ip": "10.0.0.1"},
    {"username": "tab\there", "ip": "10.0.0.1"}, {"username": 5, "ip": "10.0.0.1"},
    {"username": "Alice", "ip": "10.0.0"}, {"username": "Alice", "ip": 167772161},
    {"username": "Alice", "ip": "10.0.0.1", "add_device": "yes"}, [], "Alice",
])
async def test_register_bad_input_is_400(post: Any, runtime: Any, body: Any) -> None:
    reply = await post(REGISTER, body)
    assert reply.code == 400
    assert json_of(reply) == {"error": BAD_REGISTER}
    assert not runtime.state.users


@pytest.mark.gen_test
async def test_register_without_json_content_type_is_400(post: Any) -> None:
    reply = await post(REGISTER, {"username": "Alice", "ip": "10.0.0.1"},
                       content_type="text/plain")
    assert reply.code == 400
    assert json_of(reply) == {"error": BAD_REGISTER}


@pytest.mark.gen_test
async def test_public_ip_is_not_on_the_wifi(post: Any) -> None:
    reply = await register(post, "Alice", "8.8.8.8")
    assert reply.code == 404
    assert json_of(reply) == {"error": "Connect to #clus WiFi first"}


@pytest.mark.gen_test
@pytest.mark.parametrize("overrides", [{"registration.wifi_name": "#EventNet"}])
async def test_wifi_name_comes_from_config(overrides: Any, post: Any) -> None:
    reply = await register(post, "Alice", "8.8.8.8")
    assert json_of(reply) == {"error": "Connect to #EventNet WiFi first"}


# -- delete_username -----------------------------------------------------------------


@pytest.mark.gen_test
async def test_delete_user_and_register_again_keeps_distance(post: Any, runtime: Any,
                                                             db: Any, runtime_clock: Clock) -> None:
    await register(post, "Alice", "10.1.2.3")
    credited = await walk(post, test_mac("10.1.2.3"), 4, runtime_clock() - 3600)
    reply = await post(DELETE, {"username": "alice"})
    assert reply.code == 200
    assert json_of(reply) == {"success": "Username and associated devices deleted",
                              "username": "Alice", "email": "Alice@cmxtrackyoursteps.com"}
    assert db.query("SELECT count(*) FROM users") == [(0,)]
    assert db.query("SELECT count(*) FROM devices") == [(0,)]
    missing = await post(DATA, {"username": "Alice"})
    assert missing.code == 404
    again = await register(post, "Alice2", "10.1.2.3")
    assert again.code == 201
    data = json_of(await post(DATA, {"username": "Alice2"}))
    assert data[0]["total_kilometres"] == round(credited / 1000, 3)


@pytest.mark.gen_test
@pytest.mark.parametrize("body", [{}, {"username": ""}, {"username": 7}, []])
async def test_delete_bad_input_is_400(post: Any, body: Any) -> None:
    reply = await post(DELETE, body)
    assert reply.code == 400
    assert json_of(reply) == {"error": "Expecting keyname username to delete."}


@pytest.mark.gen_test
async def test_delete_unknown_user_is_404(post: Any) -> None:
    reply = await post(DELETE, {"username": "ghost"})
    assert reply.code == 404
    assert json_of(reply) == {"error": "Username not found"}


# -- username_data -------------------------------------------------------------------


@pytest.mark.clock
@pytest.mark.gen_test
async def test_dashboard_reports_days_totals_steps_and_place(post: Any, runtime_clock: Clock,
                                                             settings: Any) -> None:
    await register(post, "Alice", "10.0.0.1")
    await register(post, "Bob", "10.0.0.2")
    now_s = runtime_clock()
    yesterday = now_s - DAY_S
    await walk(post, test_mac("10.0.0.1"), 3, yesterday - 3600)
    await walk(post, test_mac("10.0.0.1"), 5, now_s - 1800, y=500)
    await walk(post, test_mac("10.0.0.2"), 10, now_s - 3600)
    reply = await post(DATA, {"username": "alice", "days": 5})
    assert reply.code == 200
    (device,) = json_of(reply)
    total_m = 8 * 15.24
    assert device["username"] == "Alice"
    assert device["mac"] == "02:00:0a:00:00:01"
    assert device["place"] == 2
    assert device["total_kilometres"] == round(total_m / 1000, 3)
    assert device["total_miles"] == round(total_m / 1609.344, 3)
    assert device["total_steps"] == round(total_m / 0.3048 / 2.5)
    days = device["distance_day"]
    zone = settings.tracking.timezone
    assert [d["date"] for d in days] == [event_date(yesterday - 3600, zone),
                                         event_date(now_s, zone)]
    assert days[0] == {"date": days[0]["date"], "km": 0.046,
                       "miles": round(3 * 15.24 / 1609.344, 3),
                       "steps": round(3 * 15.24 / 0.3048 / 2.5)}
    only_today = json_of(await post(DATA, {"username": "Alice", "days": 1}))
    assert len(only_today[0]["distance_day"]) == 1


@pytest.mark.clock
@pytest.mark.gen_test
@pytest.mark.parametrize("overrides", [{"registration.max_devices_per_user": 2,
                                        "leaderboard.refresh_interval_s": 0.0}])
async def test_dashboard_read_again_follows_distance_place_and_devices(
        overrides: Any, post: Any, runtime_clock: Clock) -> None:
    # A dashboard is kept per user between reads: each kind of change must show.
    await register(post, "Alice", "10.0.0.1")
    await register(post, "Bob", "10.0.0.2")
    now_s = runtime_clock()
    await walk(post, test_mac("10.0.0.1"), 4, now_s - 3600)
    first = json_of(await post(DATA, {"username": "Alice"}))
    assert first == json_of(await post(DATA, {"username": "Alice"}))
    assert (first[0]["place"], first[0]["total_steps"]) == (1, round(4 * 50 / 2.5))
    await walk(post, test_mac("10.0.0.1"), 3, now_s - 1800)
    (walked,) = json_of(await post(DATA, {"username": "Alice"}))
    assert walked["total_steps"] == round(7 * 50 / 2.5)
    assert walked["distance_day"][-1]["steps"] == round(7 * 50 / 2.5)
    await walk(post, test_mac("10.0.0.2"), 20, now_s - 3600)  # Bob overtakes; Alice did not move
    (overtaken,) = json_of(await post(DATA, {"username": "Alice"}))
    assert overtaken == {**walked, "place": 2}
    assert (await register(post, "Alice", "10.0.0.3", add_device=True)).code == 201
    devices = json_of(await post(DATA, {"username": "Alice"}))
    assert [d["mac"] for d in devices] == [test_mac("10.0.0.1"), test_mac("10.0.0.3")]
    assert len(json_of(await post(DATA, {"username": "Alice", "days": 1}))[0]["distance_day"]) == 1


@pytest.mark.gen_test
@pytest.mark.parametrize("days", ["5", 2.5, True, 0, 367, None])
async def test_dashboard_days_must_be_an_integer_in_range(post: Any, days: Any) -> None:
    await register(post, "Alice", "10.0.0.1")
    reply = await post(DATA, {"username": "Alice", "days": days})
    assert reply.code == 400
    assert json_of(reply) == {"error": "Expecting key name username to get data for."}


@pytest.mark.gen_test
async def test_dashboard_without_username_is_400(post: Any) -> None:
    reply = await post(DATA, {"days": 3})
    assert reply.code == 400
    assert json_of(reply) == {"error": "Expecting key name username to get data for."}


@pytest.mark.gen_test
@pytest.mark.parametrize("raw", [b"", b"{not json", b"[1,"])
async def test_dashboard_body_not_json_is_no_data(post: Any, raw: bytes) -> None:
    reply = await post(DATA, raw=raw)
    assert reply.code == 400
    assert json_of(reply) == {"error": "No data"}


@pytest.mark.gen_test
async def test_dashboard_unknown_user_is_404(post: Any) -> None:
    reply = await post(DATA, {"username": "ghost"})
    assert reply.code == 404
    assert json_of(reply) == {"error": "Username not found"}


# -- leaderboard ---------------------------------------------------------------------


@pytest.mark.gen_test
async def test_empty_leaderboard_says_so(post: Any) -> None:
    reply = await post(BOARD, {})
    assert reply.code == 200
    assert json_of(reply) == {"leaders": [], "total_kilometres": 0.0, "total_miles": 0.0,
                              "error": "No data to display for the leader board"}
    empty_body = await post(BOARD, raw=b"")
    assert empty_body.code == 200


@pytest.mark.gen_test
async def test_leaderboard_orders_by_total_over_devices_ties_by_username(
        post: Any, runtime_clock: Clock) -> None:
    await register(post, "carol", "10.0.0.3")
    await register(post, "Bob", "10.0.0.2")
    await register(post, "alice", "10.0.0.1")
    await register(post, "dave", "10.0.0.4")
    start_s = runtime_clock() - 3600
    await walk(post, test_mac("10.0.0.1"), 5, start_s)
    await walk(post, test_mac("10.0.0.2"), 5, start_s)
    await walk(post, test_mac("10.0.0.3"), 9, start_s)
    await walk(post, "66:77:88:99:aa:bb", 50, start_s)  # not registered: not on the board
    reply = await post(BOARD, {"number_leaders": 5})
    body = json_of(reply)
    assert [(e["place"], e["username"]) for e in body["leaders"]] == \
        [(1, "carol"), (2, "alice"), (3, "Bob")]
    assert body["leaders"][0] == {"place": 1, "username": "carol",
                                  "kilometres": round(9 * 15.24 / 1000, 1),
                                  "miles": round(9 * 15.24 / 1609.344, 1),
                                  "steps": round(9 * 15.24 / 0.3048 / 2.5)}
    assert body["total_kilometres"] == round(19 * 15.24 / 1000, 1)
    assert "error" not in body
    top1 = json_of(await post(BOARD, {"number_leaders": 1}))
    assert [e["username"] for e in top1["leaders"]] == ["carol"]


@pytest.mark.gen_test
@pytest.mark.parametrize("count", [0, 101, "5", 2.5, True, None, -1])
async def test_number_leaders_must_be_an_integer_1_to_100(post: Any, count: Any) -> None:
    reply = await post(BOARD, {"number_leaders": count})
    assert reply.code == 400
    assert "error" in json_of(reply)


@pytest.mark.clock
@pytest.mark.gen_test
async def test_leaderboard_of_one_day(post: Any, runtime_clock: Clock, settings: Any) -> None:
    await register(post, "alice", "10.0.0.1")
    await register(post, "bob", "10.0.0.2")
    now_s = runtime_clock()
    two_days_ago = now_s - 2 * DAY_S - 3600  # the walk ends an hour before that "now"
    await walk(post, test_mac("10.0.0.1"), 20, two_days_ago)
    await walk(post, test_mac("10.0.0.2"), 3, now_s - 3600)
    day = event_date(two_days_ago, settings.tracking.timezone)
    board = json_of(await post(BOARD, {"date": day}))
    assert [e["username"] for e in board["leaders"]] == ["alice"]
    today = event_date(now_s, settings.tracking.timezone)
    board = json_of(await post(BOARD, {"date": today}))
    assert [e["username"] for e in board["leaders"]] == ["bob"]
    overall = json_of(await post(BOARD, {}))
    assert [e["username"] for e in overall["leaders"]] == ["alice", "bob"]
    bad = await post(BOARD, {"date": "2026-11-27"})
    assert bad.code == 400


@pytest.mark.gen_test
@pytest.mark.parametrize("overrides", [{"leaderboard.exclude_email_domains": ("cisco.com",)}])
async def test_staff_stay_off_the_board_but_keep_their_dashboard(
        overrides: Any, post: Any, runtime_clock: Clock) -> None:
    await register(post, "boss@cisco.com", "10.0.0.1")
    await register(post, "alice", "10.0.0.2")
    await walk(post, test_mac("10.0.0.1"), 20, runtime_clock() - 3600)
    await walk(post, test_mac("10.0.0.2"), 2, runtime_clock() - 3600)
    board = json_of(await post(BOARD, {}))
    assert [(e["place"], e["username"]) for e in board["leaders"]] == [(1, "alice")]
    staff = json_of(await post(DATA, {"username": "boss@cisco.com"}))
    assert staff[0]["place"] is None
    assert staff[0]["total_kilometres"] == round(20 * 15.24 / 1000, 3)
    alice = json_of(await post(DATA, {"username": "alice"}))
    assert alice[0]["place"] == 1


# -- ip_username ---------------------------------------------------------------------


@pytest.mark.gen_test
async def test_ip_username(post: Any) -> None:
    await register(post, "Alice", "10.1.2.3")
    reply = await post(IP_USER, {"ip": "10.1.2.3"})
    assert reply.code == 200
    assert json_of(reply) == {"ip": "10.1.2.3", "username": "Alice"}
    unknown = await post(IP_USER, {"ip": "10.1.2.4"})
    assert unknown.code == 404
    assert json_of(unknown) == {"error": "Device not registered"}
    public = await post(IP_USER, {"ip": "1.1.1.1"})
    assert public.code == 404
    assert json_of(public) == {"error": "Connect to #clus WiFi first"}


@pytest.mark.gen_test
@pytest.mark.parametrize("body", [{}, {"ip": "nope"}, {"ip": 5}, []])
async def test_ip_username_bad_input_is_400(post: Any, body: Any) -> None:
    reply = await post(IP_USER, body)
    assert reply.code == 400
    assert json_of(reply) == {"error": "Expecting key name ip."}


class FaultyLookup:
    """A look-up with a bug: an exception the service does not promise."""

    async def lookup_mac(self, ip: str) -> str:
        raise ValueError(f"internal detail of {ip}")


@pytest.mark.gen_test
async def test_a_fault_is_a_500_without_its_text(post: Any, runtime: Any,
                                                 caplog: Any) -> None:
    runtime.service.cmx = FaultyLookup()
    for path, body in ((REGISTER, {"username": "Alice", "ip": "10.0.0.1"}),
                       (IP_USER, {"ip": "10.0.0.1"})):
        reply = await post(path, body)
        assert reply.code == 500
        assert json_of(reply) == {"error": "Internal server error"}
    assert not runtime.state.users
    faults = [r for r in caplog.records if r.exc_info and r.exc_info[0] is ValueError]
    assert len(faults) == 2  # logged with its stack, once per request


@pytest.mark.gen_test
async def test_unknown_path_is_json_404(post: Any) -> None:
    reply = await post("/live/nothing_here", {})
    assert reply.code == 404
    assert json_of(reply) == {"error": "Not found"}


@pytest.mark.gen_test
async def test_concurrent_duplicates_are_decided_by_the_database(post: Any, db: Any) -> None:
    import asyncio

    same_name = await asyncio.gather(register(post, "Alice", "10.0.0.1"),
                                     register(post, "alice", "10.0.0.2"))
    assert sorted(r.code for r in same_name) == [201, 409]
    loser = next(r for r in same_name if r.code == 409)
    assert json_of(loser) == {"error": "Username already registered"}
    same_device = await asyncio.gather(register(post, "Bob", "10.0.0.3"),
                                       register(post, "Carol", "10.0.0.3"))
    assert sorted(r.code for r in same_device) == [201, 409]
    loser = next(r for r in same_device if r.code == 409)
    assert json_of(loser) == {"error": "Device already registered with another username."}
    assert db.query("SELECT count(*) FROM users") == [(2,)]
    assert db.query("SELECT count(*) FROM devices") == [(2,)]
