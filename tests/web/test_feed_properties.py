"""Hypothesis: no Meraki POST body and no Firehose line makes the server answer 5xx or die.

One Runtime with both feeds on, served from a loop in a thread of its own (the ThreadServer
of test_properties) so that hypothesis can drive it with plain blocking calls: Meraki
bodies go through HTTP to /meraki; Firehose lines go through the simulator's fake stream
to the running consumer, each example followed by a marker fix that must still arrive.
The readers themselves are property-tested in tests/feeds.
"""

from __future__ import annotations

import asyncio
import copy
import http.client
import itertools
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tornado.httpserver import HTTPServer

from tests.conftest import TestDatabase, with_overrides
from tests.support.procserver import free_port
from tests.web.test_properties import ThreadServer
from tools.cmx_sim import fake_firehose, meraki_poster
from tools.cmx_sim.fake_firehose import FakeFirehose
from tools.cmx_sim.meraki_poster import Sighting
from tys_server.config import load_settings
from tys_server.core.macs import hash_mac
from tys_server.server import Runtime

SECRET = "meraki s3cret"
KEY = "listening"
EXAMPLES = settings(max_examples=250, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
_markers = itertools.count(1)

# JSON values orjson can write (the fake Firehose writes with it): 64-bit integers at most.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=10)
numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(),
                    st.sampled_from(["1.5", "NaN", "-Infinity", "1e400", "", " 2 "]), json_values)
times = st.one_of(st.sampled_from(["2027-01-15T08:00:00Z", "2027-13-45T99:00:00Z", "",
                                   "1800000000", "yesterday"]),
                  st.integers(min_value=-(2**70), max_value=2**70), st.floats(), json_values)
macs = st.one_of(st.sampled_from(["00:52:bf:74:0b:02", "0:52:bf:74:b:2", "00-52-BF-74-0B-02",
                                  "0052.bf74.0b02", "", "zz"]), json_values)
locations = st.fixed_dictionaries({}, optional={
    "x": numbers, "y": numbers, "variance": numbers, "unc": numbers, "time": times,
    "floorPlanId": st.one_of(st.text(max_size=20), st.integers(), json_values),
    "floorplanId": json_values})
observations = st.one_of(st.fixed_dictionaries({}, optional={
    "clientMac": macs, "ipv4": st.one_of(st.sampled_from(["10.1.0.2", "/10.1.0.2",
                                                          "host/10.1.0.2", "8.8.8.8"]),
                                         json_values),
    "locations": st.one_of(st.lists(locations, max_size=4), json_values)}), json_values)
meraki_bodies = st.one_of(
    st.fixed_dictionaries({
        "version": st.one_of(st.sampled_from(["3.0", "3.1", "3", "2.0", 3, 3.0]), json_values),
        "secret": st.one_of(st.just(SECRET), st.just(SECRET), json_values),
        "type": st.one_of(st.sampled_from(["WiFi", "wifi", "Bluetooth", "BLE"]), json_values),
        "data": st.one_of(st.fixed_dictionaries({"networkId": json_values, "observations":
                                                 st.lists(observations, max_size=5)}),
                          json_values)}),
    json_values,
    st.binary(max_size=200))


@pytest.fixture(scope="module")
def served(postgres: TestDatabase, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[ThreadServer, FakeFirehose]]:
    postgres.clear()
    fake = FakeFirehose(keepalive_s=3600.0)  # no KEEP_ALIVE between examples: less noise
    fake_port = free_port()
    base = load_settings("conf/tys.yaml", environ={})
    runtime = Runtime(with_overrides(base, **{
        "database.dsn": postgres.dsn, "database.flush_interval_s": 3600.0,
        "database.spill_dir": str(tmp_path_factory.mktemp("spill")),
        "server.port": free_port(), "cmx.mac_hash_key": KEY,
        "feeds.meraki.enabled": True, "feeds.meraki.secret": SECRET,
        "feeds.meraki.validator": "v", "feeds.spaces_firehose.enabled": True,
        "feeds.spaces_firehose.url": f"http://127.0.0.1:{fake_port}{fake_firehose.PATH}",
        "feeds.spaces_firehose.api_key": fake_firehose.API_KEY}))
    server = ThreadServer(runtime)
    server.thread.start()  # the fake lives on the server's loop: it starts first

    async def start_fake() -> HTTPServer:
        return fake_firehose.make_app(fake).listen(fake_port, address="127.0.0.1")

    fake_server = server.call(start_fake())

    async def start_and_listen() -> None:
        await runtime.start()
        runtime.listen()

    server.call(start_and_listen())
    yield server, fake

    async def stop_fake() -> None:
        fake_server.stop()
        await fake_server.close_all_connections()

    flushed = server.call(runtime.stop())
    server.call(stop_fake())
    server.loop.call_soon_threadsafe(server.loop.stop)
    server.thread.join(timeout=10)
    server.loop.close()
    assert flushed  # whatever the examples sent, the final flush wrote it all (no spill)


@pytest.fixture(scope="module")
def post_meraki(served: tuple[ThreadServer, FakeFirehose]) -> Iterator[Callable[[bytes], int]]:
    server, _ = served
    conn = http.client.HTTPConnection("127.0.0.1", server.runtime.settings.server.port,
                                      timeout=10)

    def send(raw: bytes) -> int:
        conn.request("POST", "/meraki", body=raw, headers={"Content-Type": "application/json"})
        reply = conn.getresponse()
        reply.read()
        return reply.status

    yield send
    conn.close()


def health(server: ThreadServer) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", server.runtime.settings.server.port,
                                      timeout=10)
    try:
        conn.request("GET", "/healthz")
        return conn.getresponse().status
    finally:
        conn.close()


@EXAMPLES
@given(body=meraki_bodies)
def test_no_meraki_body_gets_a_5xx(post_meraki: Callable[[bytes], int],
                                   served: tuple[ThreadServer, FakeFirehose], body: Any) -> None:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    assert post_meraki(raw) < 500


def test_a_valid_meraki_post_still_applies_after_the_garbage(
        post_meraki: Callable[[bytes], int], served: tuple[ThreadServer, FakeFirehose]) -> None:
    server, _ = served
    now_s = time.time()
    body = meraki_poster.body([meraki_poster.observation("00:52:bf:74:0b:99", "10.1.0.99", [
        meraki_poster.location(Sighting("", "", 1, 10.0, 20.0, now_s - 30), 2.0)])], SECRET)
    assert post_meraki(json.dumps(body).encode()) == 200

    async def tracked() -> bool:
        return hash_mac("00:52:bf:74:0b:99", KEY) in server.runtime.state.tracks

    assert server.call(tracked())
    assert health(server) == 200


def mutate(record: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    """record with the field at path (a key, or a key of deviceLocationUpdate) replaced."""
    out = copy.deepcopy(record)
    node = out
    for key in path[:-1]:
        node = node.setdefault(key, {}) if isinstance(node, dict) else node
    if isinstance(node, dict):
        node[path[-1]] = value
    return out


fields = st.sampled_from([
    ("recordTimestamp",), ("eventType",), ("recordUid",), ("deviceLocationUpdate",),
    ("deviceLocationUpdate", "device"), ("deviceLocationUpdate", "location"),
    ("deviceLocationUpdate", "xPos"), ("deviceLocationUpdate", "yPos"),
    ("deviceLocationUpdate", "lastSeen"), ("deviceLocationUpdate", "ipv4"),
    ("deviceExit",)])
records = st.one_of(
    st.tuples(st.lists(st.tuples(fields, json_values), min_size=1, max_size=3),
              st.booleans()),
    json_values)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(record=records)
def test_no_firehose_line_stops_the_consumer(served: tuple[ThreadServer, FakeFirehose],
                                             record: Any) -> None:
    server, fake = served
    now_ms = int(time.time() * 1000)
    if isinstance(record, tuple):
        changes, exit_event = record
        line: Any = fake_firehose.device_exit("00:52:bf:74:0b:03", record_ms=now_ms) \
            if exit_event else fake_firehose.location_update(
                "00:52:bf:74:0b:03", 1, 10.0, 20.0, record_ms=now_ms, ip="10.1.0.3")
        for path, value in changes:
            line = mutate(line, path, value)
    else:
        line = record
    marker = next(_markers)
    marker_mac = f"02:7a:00:00:{marker >> 8 & 0xff:02x}:{marker & 0xff:02x}"
    stored = hash_mac(marker_mac, KEY)

    async def push_and_wait() -> tuple[str, int]:
        await fake.wait_for(lambda fake: fake.open_streams == 1)
        fake.push(line, fake_firehose.location_update(
            marker_mac, 1, 10.0, 20.0, record_ms=now_ms, uid=f"marker-{marker}"))
        while stored not in server.runtime.state.tracks:  # the line after it still arrives
            await asyncio.sleep(0.002)
        consumer = server.runtime.firehose
        assert consumer is not None
        return consumer.state, consumer.reconnects

    assert server.call(push_and_wait()) == ("connected", 0)
    assert health(server) == 200
