"""Broken and malicious clients against the real HTTP server (Runtime.listen()).

Every case gets a 4xx in the JSON error shape, or a closed connection for
transport abuse; a follow-up request succeeds; nothing reaches the database.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
import pytest

from tests.conftest import API_AUTH, CMX_AUTH, MONITOR_AUTH
from tests.support import rawhttp
from tests.support.procserver import free_port
from tys_server.web import limits
from tys_server.web.app import LIVE_MAX_BODY_BYTES
from tys_server.web.limits import TOO_LARGE

LIMIT = 1024 * 1024                  # server.max_body_bytes in these tests
SLOW_S = 0.5                         # body_timeout_s and idle_connection_timeout_s
BAD_ENVELOPE = {"error": "Expecting a JSON object with a notifications list"}
NOTIFY = "/notification"
REGISTER = "/live/register_username"
DELETE = "/live/delete_username"
DATA = "/live/username_data"
BOARD = "/live/leaderboard"
IP_USER = "/live/ip_username"
LIVE = (REGISTER, DELETE, DATA, BOARD, IP_USER)
# 30,000 levels: far past orjson's 1,024, and within /live/*'s 64 KiB.
DEEP = b"[" * 30_000 + b"]" * 30_000
MAC = "00:11:22:33:44:55"


@pytest.fixture
def overrides() -> dict[str, Any]:
    return {"server.port": free_port(), "server.max_body_bytes": LIMIT,
            "server.body_timeout_s": SLOW_S, "server.idle_connection_timeout_s": SLOW_S}


@pytest.fixture
def port(runtime: Any) -> int:
    """The runtime's own HTTP server, with its limits and timeouts."""
    runtime.listen()
    return int(runtime.settings.server.port)


def movement(**changes: Any) -> dict[str, Any]:
    entry = {"notificationType": "movement", "deviceId": MAC, "floorId": 3,
             "locationCoordinate": {"x": 10.0, "y": 20.0, "unit": "FEET"},
             "moveDistanceInFt": 50.0, "timestamp": int(time.time() * 1000) - 1000}
    entry.update(changes)
    return entry


async def assert_nothing_stored_and_still_serving(port: int, runtime: Any, db: Any) -> None:
    """The server answers a good request, and no user, track or zone came of the abuse."""
    health = await rawhttp.exchange(port, rawhttp.request_bytes("GET", "/healthz"))
    assert health.status == 200
    board = await rawhttp.post(port, BOARD, {}, auth=API_AUTH)
    assert board.status == 200
    assert not runtime.state.tracks and not runtime.state.users and not runtime.state.zones
    assert await runtime.flusher.flush_once()
    for table in ("users", "devices", "distance", "distance_history", "zone"):
        assert db.query(f"SELECT count(*) FROM {table}") == [(0,)], table


# -- bodies that are not JSON, or JSON no parser should take -----------------------------

NOT_JSON = {
    "empty": b"",
    "invalid_utf8": b'{"notifications": [{"deviceId": "\xff\xfe"}], "username": "\xc3("}',
    "nested_30000_deep": DEEP,
    "nested_object_in_envelope": b'{"notifications": ' + DEEP + b"}",
    "integer_10e400": b'{"notifications": [], "days": 1' + b"0" * 400 + b"}",
    "nan_literal": b'{"notifications": [], "days": NaN}',
    "infinity_literal": b'{"notifications": [], "number_leaders": Infinity}',
    "truncated": b'{"notifications": [',
    "nul_bytes": b"\x00" * 64,
}


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("case", sorted(NOT_JSON))
async def test_body_that_is_not_json_is_400_everywhere(port: int, runtime: Any, db: Any,
                                                       case: str) -> None:
    raw = NOT_JSON[case]
    reply = await rawhttp.post(port, NOTIFY, None, raw=raw, auth=CMX_AUTH)
    assert (reply.status, reply.json()) == (400, BAD_ENVELOPE)
    for path in LIVE:
        reply = await rawhttp.post(port, path, None, raw=raw, auth=API_AUTH)
        if path == BOARD and raw == b"":
            assert reply.status == 200  # an empty POST asks for the default board
            continue
        assert reply.status == 400, (path, reply)
        assert set(reply.json()) == {"error"}
    await assert_nothing_stored_and_still_serving(port, runtime, db)


# -- JSON with values of the wrong kind ------------------------------------------------------

BAD_VALUES = [
    (DATA, {"username": "alice", "days": 2**64}),              # parses as a float
    (DATA, {"username": "alice", "days": "5"}),
    (DATA, {"username": "alice", "days": -(2**63)}),
    (DATA, {"username": ["alice"]}),
    (BOARD, {"number_leaders": 2**64}),
    (BOARD, {"number_leaders": "5"}),
    (BOARD, {"number_leaders": 10**18}),
    (BOARD, {"date": 20240101}),
    (REGISTER, {"username": 12345, "ip": "10.0.0.1"}),
    (REGISTER, {"username": "alice", "ip": 167772161}),
    (REGISTER, {"username": "alice", "ip": "10.0.0.1", "add_device": "yes"}),
    (REGISTER, {"username": "a" * 60_000, "ip": "10.0.0.1"}),
    (REGISTER, {"username": "alice\x00", "ip": "10.0.0.1"}),
    (DELETE, {"username": {"$ne": ""}}),
    (IP_USER, {"ip": ["10.0.0.1"]}),
    (IP_USER, {"ip": "10.0.0.1%eth0"}),
]


@pytest.mark.gen_test(timeout=30)
async def test_strings_and_huge_numbers_where_they_do_not_belong_are_400(
        port: int, runtime: Any, db: Any) -> None:
    for path, body in BAD_VALUES:
        reply = await rawhttp.post(port, path, body, auth=API_AUTH)
        assert reply.status == 400, (path, body, reply)
        assert set(reply.json()) == {"error"}
    await assert_nothing_stored_and_still_serving(port, runtime, db)


BAD_ENTRIES = [
    movement(locationCoordinate={"x": "ten", "y": 20.0}),
    movement(locationCoordinate={"x": 2**64, "y": 20.0}),
    movement(locationCoordinate={"x": "1e400", "y": 20.0}),
    movement(locationCoordinate={"x": "NaN", "y": 20.0}),
    movement(locationCoordinate={"x": 10.0, "y": "-Infinity"}),
    movement(moveDistanceInFt="far"),
    movement(moveDistanceInFt=-50),
    movement(timestamp="soon"),
    movement(timestamp=[1]),
    movement(deviceId=12345),
    movement(deviceId="00:11:22:33:44:5g"),
    movement(floorId={"id": 1}),
    {"notificationType": "inout", "deviceId": MAC, "locationMapHierarchy": 7},
    {"notificationType": ["movement"]},
    None, 17, "movement", [],
]


@pytest.mark.gen_test(timeout=30)
async def test_malformed_entries_are_all_rejected_and_nothing_is_kept(
        port: int, runtime: Any, db: Any) -> None:
    reply = await rawhttp.post(port, NOTIFY, {"notifications": BAD_ENTRIES}, auth=CMX_AUTH)
    assert (reply.status, reply.json()) == (
        200, {"accepted": 0, "ignored": 0, "rejected": len(BAD_ENTRIES)})
    await assert_nothing_stored_and_still_serving(port, runtime, db)


@pytest.mark.gen_test(timeout=30)
async def test_5000_malformed_entries_in_one_batch(port: int, runtime: Any, db: Any) -> None:
    entries = [BAD_ENTRIES[i % len(BAD_ENTRIES)] for i in range(5000)]
    # How fast is tools/bench.py's to measure; here: every one of them is refused.
    reply = await rawhttp.post(port, NOTIFY, {"notifications": entries}, auth=CMX_AUTH)
    assert (reply.status, reply.json()) == (200, {"accepted": 0, "ignored": 0, "rejected": 5000})
    await assert_nothing_stored_and_still_serving(port, runtime, db)
    # Received notifications are counted (operations), even when all were refused.
    assert db.query("SELECT sum(notification_count) FROM count") == [(5000,)]


# -- bodies over server.max_body_bytes -------------------------------------------------------


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("path", [NOTIFY, REGISTER, BOARD])
async def test_body_over_the_limit_is_413_json_even_when_sent_whole(
        port: int, runtime: Any, db: Any, path: str, monkeypatch: Any) -> None:
    # A linger longer than the test's hang guard: the reply's end can only come from the
    # server ending its side after the reply, never from the linger running out.
    monkeypatch.setattr(limits, "LINGER_S", 3600.0)
    entry = orjson.dumps(movement())
    count = LIMIT // len(entry) + 1
    body = b'{"notifications": [' + b",".join([entry] * count) + b"]}"
    assert len(body) > LIMIT
    data = rawhttp.request_bytes("POST", path, body,
                                 auth=CMX_AUTH if path == NOTIFY else API_AUTH)
    reply = await rawhttp.exchange(port, data, until_close=True)
    assert (reply.status, reply.json()) == (413, {"error": TOO_LARGE})
    assert reply.headers["connection"] == "close"
    await assert_nothing_stored_and_still_serving(port, runtime, db)


@pytest.mark.gen_test(timeout=30)
async def test_413_comes_before_the_body_for_a_client_that_expects_100_continue(
        port: int, runtime: Any, db: Any) -> None:
    head = rawhttp.request_bytes("POST", NOTIFY, auth=CMX_AUTH, length=10 * LIMIT,
                                 headers={"Expect": "100-continue"})
    reply = await rawhttp.exchange(port, head)  # no body is ever sent
    assert (reply.status, reply.json()) == (413, {"error": TOO_LARGE})
    await assert_nothing_stored_and_still_serving(port, runtime, db)


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("length", [str(LIMIT + 1), "9" * 5000])
async def test_declared_length_over_the_limit_is_413_whatever_follows(
        port: int, runtime: Any, db: Any, length: str) -> None:
    head = rawhttp.request_bytes("POST", NOTIFY, auth=CMX_AUTH).replace(
        b"Content-Length: 0", b"Content-Length: " + length.encode())
    reply = await rawhttp.exchange(port, head + b'{"notifications": []}')
    assert (reply.status, reply.json()) == (413, {"error": TOO_LARGE})
    await assert_nothing_stored_and_still_serving(port, runtime, db)


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("piece_bytes", [4096, 4 * LIMIT], ids=["small_chunks", "one_chunk"])
@pytest.mark.parametrize(("path", "pair", "cap"), [
    pytest.param(NOTIFY, CMX_AUTH, LIMIT, id="notification"),
    pytest.param(REGISTER, API_AUTH, LIVE_MAX_BODY_BYTES, id="register_username")])
async def test_chunked_body_over_the_cap_is_413_json_and_closed(
        port: int, runtime: Any, db: Any, path: str, pair: tuple[str, str], cap: int,
        piece_bytes: int) -> None:
    body = b'{"notifications": []}' + b" " * cap  # valid JSON, one byte per space over
    reply = await rawhttp.exchange(port, rawhttp.request_bytes(
        "POST", path, body, auth=pair, chunk_bytes=piece_bytes))
    assert (reply.status, reply.json()) == (413, {"error": TOO_LARGE})
    assert reply.headers["connection"] == "close"
    await assert_nothing_stored_and_still_serving(port, runtime, db)


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("length", ["-1", "ten", "1, 2"])
async def test_unreadable_content_length_is_400_and_closed(
        port: int, runtime: Any, db: Any, length: str) -> None:
    head = rawhttp.request_bytes("POST", NOTIFY, auth=CMX_AUTH).replace(
        b"Content-Length: 0", b"Content-Length: " + length.encode())
    reply = await rawhttp.exchange(port, head + b"{}")
    assert reply.closed or reply.status == 400
    await assert_nothing_stored_and_still_serving(port, runtime, db)


# -- slow and oversized transport -------------------------------------------------------------


async def closed_after(port: int, data: bytes) -> float:
    """Send data, then nothing; seconds until the server closes the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.perf_counter()
    try:
        writer.write(data)
        await writer.drain()
        rest = await asyncio.wait_for(reader.read(), 10 * SLOW_S)
    finally:
        writer.close()
    assert rest == b""  # closed without an answer: nothing was processed
    return time.perf_counter() - started


@pytest.mark.gen_test(timeout=30)
async def test_slow_clients_are_cut_off(port: int, runtime: Any, db: Any) -> None:
    body = orjson.dumps({"notifications": [movement()]})
    partial_body = rawhttp.request_bytes("POST", NOTIFY, body, auth=CMX_AUTH)[:-10]
    partial_head = rawhttp.request_bytes("POST", NOTIFY, body, auth=CMX_AUTH)[:40]
    waits = await asyncio.gather(
        closed_after(port, partial_body),   # body_timeout_s
        closed_after(port, partial_head),   # headers never finish: idle_connection_timeout_s
        closed_after(port, b""),            # connects and says nothing
    )
    for waited_s in waits:  # cut by the server's timeout (closed_after's wait is 10x it)
        assert waited_s >= SLOW_S * 0.8  # ...and not before it
    await assert_nothing_stored_and_still_serving(port, runtime, db)


@pytest.mark.gen_test(timeout=30)
async def test_oversized_headers_close_the_connection(port: int, runtime: Any, db: Any) -> None:
    body = orjson.dumps({"notifications": [movement()]})
    data = rawhttp.request_bytes("POST", NOTIFY, body, auth=CMX_AUTH,
                                 headers={"X-Padding": "p" * 20_000})
    reply = await rawhttp.exchange(port, data)
    assert reply.closed or reply.status in (400, 431)
    many = rawhttp.request_bytes("POST", NOTIFY, body, auth=CMX_AUTH,
                                 headers={f"X-H{i}": "v" * 20 for i in range(2000)})
    reply = await rawhttp.exchange(port, many)
    assert reply.closed or reply.status in (400, 431)
    await assert_nothing_stored_and_still_serving(port, runtime, db)


@pytest.mark.gen_test(timeout=30)
async def test_garbage_request_line_is_400_and_closed(port: int, runtime: Any, db: Any) -> None:
    for garbage in (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",  # TLS to HTTP
                    b"GET\r\n\r\n", b"POST /notification HTTP/9.9\r\n\r\n"):
        reply = await rawhttp.exchange(port, garbage)
        assert reply.closed or reply.status == 400
    await assert_nothing_stored_and_still_serving(port, runtime, db)


# -- credentials on the headers: 401 before any of the body (web.limits) ----------------------

ANNOUNCED = 4 * 1024 * 1024  # over every cap here: checked first, the size would answer 413
WRONG_PAIRS = [
    pytest.param(NOTIFY, None, id="notification-no-pair"),
    pytest.param(NOTIFY, API_AUTH, id="notification-api-pair"),
    pytest.param(NOTIFY + "/area/", MONITOR_AUTH, id="area-monitor-pair"),
    pytest.param(NOTIFY, (CMX_AUTH[0], API_AUTH[1]), id="notification-mixed-pair"),
    pytest.param(REGISTER, None, id="register-no-pair"),
    pytest.param(BOARD, CMX_AUTH, id="leaderboard-cmx-pair"),
    pytest.param(DELETE, MONITOR_AUTH, id="delete-monitor-pair"),
    pytest.param(DATA + "/", (API_AUTH[0], ""), id="username_data-no-password"),
    pytest.param(IP_USER + "?ip=1", (API_AUTH[0].upper(), API_AUTH[1]), id="ip_username-case"),
    pytest.param("/live/nothing_here", None, id="unknown-live-path"),
]


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize(("path", "pair"), WRONG_PAIRS)
async def test_wrong_credentials_are_401_on_the_headers_without_the_body(
        port: int, runtime: Any, db: Any, path: str, pair: tuple[str, str] | None) -> None:
    head = rawhttp.request_bytes("POST", path, auth=pair, length=ANNOUNCED)
    reply = await rawhttp.exchange(port, head)  # the 4 MiB never follow: the client waits
    assert (reply.status, reply.json()) == (401, {"error": "Unauthorized"})
    assert reply.headers["www-authenticate"] == 'Basic realm="TYS"'
    assert reply.headers["connection"] == "close"
    await assert_nothing_stored_and_still_serving(port, runtime, db)


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("scheme", ["Bearer abc", "Basic", "Basic !!!", "basic " + "A" * 5000],
                         ids=["bearer", "empty_basic", "not_base64", "5000_chars"])
async def test_authorization_that_is_no_basic_pair_is_401_on_the_headers(
        port: int, runtime: Any, db: Any, scheme: str) -> None:
    head = rawhttp.request_bytes("POST", REGISTER, length=ANNOUNCED,
                                 headers={"Authorization": scheme})
    reply = await rawhttp.exchange(port, head)
    assert (reply.status, reply.json()) == (401, {"error": "Unauthorized"})
    await assert_nothing_stored_and_still_serving(port, runtime, db)


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize(("path", "pair"), [
    pytest.param(NOTIFY, MONITOR_AUTH, id="notification"),
    pytest.param(BOARD, CMX_AUTH, id="leaderboard")])
async def test_a_client_expecting_100_continue_with_a_wrong_pair_never_sends_its_body(
        port: int, runtime: Any, db: Any, path: str, pair: tuple[str, str]) -> None:
    continued, reply = await rawhttp.post_after_continue(port, path, b"{}" * 1000, auth=pair)
    assert not continued
    assert (reply.status, reply.json()) == (401, {"error": "Unauthorized"})
    await assert_nothing_stored_and_still_serving(port, runtime, db)


@pytest.mark.gen_test(timeout=30)
async def test_the_right_pair_is_asked_for_its_body_and_served_as_usual(
        port: int, runtime: Any) -> None:
    body = orjson.dumps({"notifications": [movement()]})
    continued, reply = await rawhttp.post_after_continue(port, NOTIFY, body, auth=CMX_AUTH)
    assert continued  # the server said 100 on the headers and waited for the body
    assert (reply.status, reply.json()) == (200, {"accepted": 1, "ignored": 0, "rejected": 0})
    assert MAC in runtime.state.tracks
    continued, reply = await rawhttp.post_after_continue(
        port, BOARD, b'{"number_leaders": 3}', auth=API_AUTH)
    assert continued
    assert reply.status == 200
    assert reply.json()["leaders"] == []


# -- /live/* bodies: 64 KiB ---------------------------------------------------------------------


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("chunk_bytes", [None, 4096], ids=["declared", "chunked"])
async def test_live_bodies_are_capped_at_64_kib(port: int, runtime: Any, db: Any,
                                                chunk_bytes: int | None) -> None:
    board = b'{"number_leaders": 3}'
    exact = board + b" " * (LIVE_MAX_BODY_BYTES - len(board))
    reply = await rawhttp.exchange(port, rawhttp.request_bytes(
        "POST", BOARD, exact, auth=API_AUTH, chunk_bytes=chunk_bytes))
    assert reply.status == 200
    assert reply.json()["leaders"] == []
    reply = await rawhttp.exchange(port, rawhttp.request_bytes(
        "POST", BOARD, exact + b" ", auth=API_AUTH, chunk_bytes=chunk_bytes))
    assert (reply.status, reply.json()) == (413, {"error": TOO_LARGE})
    assert reply.headers["connection"] == "close"
    # The cap is /live/*'s own: a notification batch of that size is read.
    batch = b'{"notifications": []}' + b" " * LIVE_MAX_BODY_BYTES
    reply = await rawhttp.exchange(port, rawhttp.request_bytes(
        "POST", NOTIFY, batch, auth=CMX_AUTH, chunk_bytes=chunk_bytes))
    assert (reply.status, reply.json()) == (200, {"accepted": 0, "ignored": 0, "rejected": 0})
    await assert_nothing_stored_and_still_serving(port, runtime, db)
