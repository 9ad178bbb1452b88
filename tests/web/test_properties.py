"""Hypothesis against the real app over HTTP: no body gives a 5xx, and state changes
only for valid input.

The parser itself is property-tested in tests/test_notifications.py
(test_any_json_value_gives_a_batch_or_an_envelope_error); here every endpoint
gets random bodies through Runtime.listen(), served from an event loop in a
thread of its own so that hypothesis can drive it with plain blocking calls.
"""

from __future__ import annotations

import asyncio
import base64
import http.client
import ipaddress
import json
import threading
import time
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.conftest import API_AUTH, CMX_AUTH, TestDatabase, with_overrides
from tests.support.procserver import free_port
from tys_server.config import load_settings
from tys_server.core.macs import normalise_mac
from tys_server.server import Runtime

T = TypeVar("T")
EXAMPLES = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


class ThreadServer:
    """A Runtime listening on a free port, its loop running in a background thread."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the server's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=30)

    def start(self) -> None:
        self.thread.start()

        async def start_and_listen() -> None:
            await self.runtime.start()
            self.runtime.listen()

        self.call(start_and_listen())

    def stop(self) -> bool:
        """Stop the runtime and its loop; True when its final flush lost nothing."""
        flushed = self.call(self.runtime.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()
        return flushed


@pytest.fixture(scope="module")
def served(postgres: TestDatabase, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[ThreadServer]:
    postgres.clear()
    base_settings = load_settings("conf/tys.yaml", environ={})
    runtime = Runtime(with_overrides(base_settings, **{
        "database.dsn": postgres.dsn, "database.flush_interval_s": 3600.0,
        "database.spill_dir": str(tmp_path_factory.mktemp("spill")),
        "server.port": free_port()}))
    server = ThreadServer(runtime)
    server.start()
    yield server
    # Whatever the examples sent, the final flush writes it all (nothing is spilled).
    assert server.stop()


@pytest.fixture(scope="module")
def client(served: ThreadServer) -> Iterator[Any]:
    """send(path, body | raw bytes, pair) → (status, JSON reply), on one keep-alive connection."""
    conn = http.client.HTTPConnection("127.0.0.1", served.runtime.settings.server.port,
                                      timeout=10)

    def send(path: str, body: Any, pair: tuple[str, str]) -> tuple[int, Any]:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        token = base64.b64encode(":".join(pair).encode()).decode()
        conn.request("POST", path, body=raw, headers={
            "Authorization": "Basic " + token, "Content-Type": "application/json"})
        reply = conn.getresponse()
        answer = reply.read()
        assert reply.getheader("Content-Type", "").startswith("application/json"), answer
        return reply.status, json.loads(answer)

    yield send
    conn.close()


def snapshot(server: ThreadServer) -> tuple[Any, ...]:
    """Users, devices, tracks, day totals and zones, read on the server's own loop."""

    async def read() -> tuple[Any, ...]:
        state = server.runtime.state
        return (frozenset((key, u.email, tuple(u.macs)) for key, u in state.users.items()),
                frozenset((mac, user.username) for mac, user in state.owners.items()),
                {mac: track.as_row() for mac, track in state.tracks.items()},
                dict(state.days), dict(state.zones))

    return server.call(read())


# -- strategies ---------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**64)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=10)
good_names = st.sampled_from(["alice", "Alice", "bob", "carol", "x'; DROP TABLE users; --",
                              "ok@example.org", "Zoë", "a" * 64])
bad_names = st.sampled_from(["@at", " padded", "a" * 65, "", "tab\there", "nul\x00"]) \
    | st.text(max_size=70) | json_values
usernames = st.one_of(good_names, good_names, bad_names)
good_ips = st.sampled_from(["10.0.0.1", "10.0.0.2", "192.168.1.9", "172.16.0.3", "100.64.0.1",
                            "::ffff:10.0.0.2", "127.0.0.1", " 10.0.0.3 "])
bad_ips = st.sampled_from(["fd00::1", "8.8.8.8", "::1", "10.0.0.1%eth0", "", "10.0.0",
                           "999.1.1.1"]) | st.ip_addresses().map(str) | json_values
ips = st.one_of(good_ips, good_ips, bad_ips)
small_ints = st.integers(min_value=-5, max_value=400) | st.sampled_from(
    [True, False, "5", 2.5, 1e300, 2**63, 2**64, None]) | json_values
dates = st.dates().map(lambda d: d.strftime("%m/%d/%Y")) | st.text(max_size=12) | json_values


def bodies(fields: dict[str, st.SearchStrategy[Any]],
           good: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """Good bodies, objects with all or some of the endpoint's keys (good and bad values)
    and extra keys, any other JSON, or bytes that may not be JSON at all."""
    extra = st.dictionaries(st.text(max_size=8), json_values, max_size=2)
    every = st.tuples(st.fixed_dictionaries(fields), extra).map(lambda p: {**p[1], **p[0]})
    some = st.tuples(st.fixed_dictionaries({}, optional=fields), extra).map(
        lambda p: {**p[1], **p[0]})
    good_body = st.fixed_dictionaries(good)
    return st.one_of(good_body, good_body, every, some, json_values, st.binary(max_size=64))


LIVE_BODIES = {
    "/live/register_username": bodies(
        {"username": usernames, "ip": ips, "add_device": st.booleans() | json_values},
        {"username": good_names, "ip": good_ips, "add_device": st.booleans()}),
    "/live/delete_username": bodies({"username": usernames}, {"username": good_names}),
    "/live/username_data": bodies({"username": usernames, "days": small_ints},
                                  {"username": good_names, "days": st.integers(1, 366)}),
    "/live/leaderboard": bodies({"number_leaders": small_ints, "date": dates},
                                {"number_leaders": st.integers(1, 100)}),
    "/live/ip_username": bodies({"ip": ips}, {"ip": good_ips}),
}
# One request to any endpoint per example; the server keeps its state between
# examples, so deletes and dashboards meet users that earlier examples registered.
live_requests = st.one_of([st.tuples(st.just(path), body) for path, body in LIVE_BODIES.items()])


def valid_username(value: object) -> bool:
    """DESIGN 7, written out again independently of tys_server.service."""
    return (isinstance(value, str) and 1 <= len(value) <= 64 and not value.startswith("@")
            and value.isprintable() and value == value.strip())


def private_ip(value: object) -> bool:
    try:
        address = ipaddress.ip_address(value)  # type: ignore[arg-type]
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_private or address in ipaddress.ip_network("100.64.0.0/10")


# -- the properties -----------------------------------------------------------------------------


@EXAMPLES
@given(call=live_requests)
def test_any_body_to_the_api_gets_an_answer_below_500_and_changes_only_on_success(
        served: ThreadServer, client: Any, postgres: TestDatabase, call: tuple[str, Any]
) -> None:
    path, body = call
    before = snapshot(served)
    status, reply = client(path, body, API_AUTH)
    after = snapshot(served)
    event(f"{path} {status}")
    assert status < 500, (status, reply)
    if status >= 400:
        assert set(reply) == {"error"} and isinstance(reply["error"], str)
    changed = before != after
    if path == "/live/register_username":
        assert changed == (status == 201), (status, reply)
        if changed:
            assert valid_username(body["username"]) and private_ip(body["ip"].strip())
    elif path == "/live/delete_username":
        assert changed == (status == 200), (status, reply)
    else:
        assert not changed
    if changed:  # registrations are written through: memory and database agree
        stored = postgres.query("SELECT count(*) FROM users")[0][0]
        assert stored == len(after[0])


def movement_like() -> st.SearchStrategy[Any]:
    coordinate = st.fixed_dictionaries({}, optional={
        "x": st.floats(allow_nan=False, allow_infinity=False) | json_values,
        "y": st.floats(min_value=-1e4, max_value=1e4) | json_values,
        "unit": st.sampled_from(["FEET", "METERS", "feet", "inches", ""]) | json_values})
    return st.fixed_dictionaries({}, optional={
        "notificationType": st.sampled_from(["movement", "locationupdate", "inout",
                                             "association", "Other", ""]) | json_values,
        "deviceId": st.sampled_from(["00:11:22:33:44:55", "00-11-22-33-44-66",
                                     "0011.2233.4477", "zz:11:22:33:44:55", ""]) | json_values,
        "locationCoordinate": coordinate | json_values,
        "floorId": st.integers() | st.text(max_size=20) | json_values,
        "moveDistanceInFt": st.floats(min_value=-10, max_value=1e4) | json_values,
        "timestamp": st.integers(min_value=-1, max_value=2**53) | json_values,
        "lastSeen": st.sampled_from(["2017-10-30T05:36:37.241+0000", "yesterday"])
        | json_values,
        "locationMapHierarchy": st.sampled_from(["V>B>Hall A", "", " "]) | json_values,
    })


MACS = ["00:11:22:33:44:55", "00-11-22-33-44-66", "0011.2233.4477", "AA:BB:CC:DD:EE:FF"]
NOW_MS = int(time.time() * 1000)
good_entries = st.fixed_dictionaries({
    "notificationType": st.sampled_from(["movement", "locationupdate"]),
    "deviceId": st.sampled_from(MACS),
    "locationCoordinate": st.fixed_dictionaries({
        "x": st.floats(-1e4, 1e4), "y": st.floats(-1e4, 1e4),
        "unit": st.sampled_from(["FEET", "METERS"])}),
    "floorId": st.integers(1, 3),
    "moveDistanceInFt": st.floats(0, 200),
    "timestamp": st.integers(NOW_MS - 3_600_000, NOW_MS)}) | st.fixed_dictionaries({
        "notificationType": st.sampled_from(["inout", "areachange"]),
        "deviceId": st.sampled_from(MACS),
        "locationMapHierarchy": st.sampled_from(["V>B>Hall A", "V>B>Hall B"]),
        "timestamp": st.integers(NOW_MS - 3_600_000, NOW_MS)})
entries = st.one_of(good_entries, good_entries, movement_like(), json_values)
envelopes = (st.fixed_dictionaries({"notifications": st.lists(entries, max_size=8)})
             | st.fixed_dictionaries({"MovementEvent": movement_like() | json_values})
             | json_values | st.binary(max_size=64))


@EXAMPLES
@given(body=envelopes)
def test_any_body_to_notification_is_answered_and_only_accepted_entries_move_state(
        served: ThreadServer, client: Any, body: Any) -> None:
    before = snapshot(served)
    status, reply = client("/notification", body, CMX_AUTH)
    after = snapshot(served)
    event(f"HTTP {status}, accepted {min(reply.get('accepted', 0), 1)}+")
    assert status in (200, 400), (status, reply)
    if status == 400:
        assert reply == {"error": "Expecting a JSON object with a notifications list"}
        assert before == after
        return
    entries = body.get("notifications") if isinstance(body, dict) else None
    if isinstance(entries, list):
        assert reply["accepted"] + reply["ignored"] + reply["rejected"] == len(entries)
    if reply["accepted"] == 0:
        assert before[2:] == after[2:]  # tracks, days, zones
    macs = {normalise_mac(e.get("deviceId")) for e in (entries or [body.get("MovementEvent")])
            if isinstance(e, dict)}
    moved = {mac for mac, row in after[2].items() if before[2].get(mac) != row}
    assert moved <= macs
    assert before[:2] == after[:2]  # notifications never touch users or devices
