"""The fake Cisco Spaces Firehose (tools/cmx_sim/fake_firehose.py), read over raw HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest

from tools.cmx_sim import fake_firehose
from tools.cmx_sim.__main__ import build_parser
from tools.cmx_sim.devices import make_devices
from tools.cmx_sim.fake_firehose import FakeFirehose
from tools.cmx_sim.httpclient import HttpConnection, encode_request
from tools.cmx_sim.venue import Fix, VenueConfig
from tys_server.core.events import Fix as FixEvent
from tys_server.core.events import IpSeen
from tys_server.feeds.cmx_fields import floor_key
from tys_server.feeds.spaces_events import SpacesReader

NOW_S = 1_800_000_000.0
T0_MS = int(NOW_S * 1000) - 60_000
gen_test = pytest.mark.gen_test(timeout=20)


class Stream:
    """One HTTP/1.0 GET of the fake (no chunked encoding): its status, headers and lines."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.status = 0
        self.headers: dict[str, str] = {}

    async def line(self) -> dict[str, Any]:
        return orjson.loads(await self.reader.readline())

    async def raw_line(self) -> bytes:
        return await self.reader.readline()

    async def body(self) -> bytes:
        return await self.reader.read()


@pytest.fixture
def opened() -> Iterator[Callable[..., Any]]:
    writers: list[asyncio.StreamWriter] = []

    async def open_stream(url: str, query: str = "", key: str | None = fake_firehose.API_KEY
                          ) -> Stream:
        parts = urlsplit(url)
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        writers.append(writer)
        head = f"GET {parts.path}{'?' + query if query else ''} HTTP/1.0\r\n"
        if key is not None:
            head += f"X-API-KEY: {key}\r\n"
        writer.write((head + "\r\n").encode())
        stream = Stream(reader, writer)
        status_line, *lines = (await reader.readuntil(b"\r\n\r\n")).decode().split("\r\n")
        stream.status = int(status_line.split()[1])
        stream.headers = dict(line.split(": ", 1) for line in lines if line)
        return stream

    yield open_stream
    for writer in writers:
        writer.close()


@pytest.fixture
def served(io_loop: Any) -> Any:
    servers = []

    def serve(**behaviour: Any) -> tuple[FakeFirehose, str]:
        fake = FakeFirehose(**{"keepalive_s": 3600.0, "clock": lambda: NOW_S, **behaviour})
        server, url = fake_firehose.start(fake)
        servers.append(server)
        return fake, url

    yield serve
    for server in servers:
        server.stop()
        io_loop.run_sync(server.close_all_connections)


def update(i: int) -> dict[str, Any]:
    return fake_firehose.location_update(f"02:00:0a:00:00:{i:02x}", 1, float(i), 2.0,
                                         record_ms=T0_MS + 1000 * i, uid=f"u{i}")


@gen_test
async def test_wrong_or_missing_api_key_is_answered_401(served, opened) -> None:
    fake, url = served()
    for key in ("wrong", None):
        stream = await opened(url, key=key)
        assert stream.status == 401
        assert orjson.loads(await stream.body()) == {"error": "invalid API key"}
    assert [(c.api_key, c.status) for c in fake.connections] == [("wrong", 401), (None, 401)]


@gen_test
async def test_nth_connection_fails_as_told_then_streams(served, opened) -> None:
    fake, url = served(fail_connects={1: 429, 2: 500}, retry_after="120")
    first, second, third = [await opened(url) for _ in range(3)]
    assert (first.status, first.headers["Retry-After"], second.status) == (429, "120", 500)
    assert (third.status, third.headers["Content-Type"]) == (200, "application/x-ndjson")
    assert [c.status for c in fake.connections] == [429, 500, 200]


@gen_test
async def test_bad_from_timestamp_is_answered_400(served, opened) -> None:
    _, url = served()
    assert (await opened(url, "fromTimestamp=yesterday")).status == 400


@gen_test
async def test_from_timestamp_replays_stored_events_from_that_record_time(served, opened) -> None:
    fake, url = served()
    fake.push(update(1), update(2), update(3))
    stream = await opened(url, f"fromTimestamp={T0_MS + 2000}")
    assert [(await stream.line())["recordUid"] for _ in range(2)] == ["u2", "u3"]
    assert fake.connections[0].from_timestamp == T0_MS + 2000
    fake.push(update(4))
    assert (await stream.line())["recordUid"] == "u4"


@gen_test
async def test_replay_slack_resends_earlier_events_as_duplicates(served, opened) -> None:
    fake, url = served(replay_slack_s=1.0)
    fake.push(update(1), update(2), update(3))
    stream = await opened(url, f"fromTimestamp={T0_MS + 3000}")
    assert [(await stream.line())["recordUid"] for _ in range(2)] == ["u2", "u3"]


@gen_test
async def test_no_or_zero_from_timestamp_sends_live_events_only(served, opened) -> None:
    fake, url = served()
    fake.push(update(1))
    live, zero = await opened(url), await opened(url, "fromTimestamp=0")
    await fake.wait_for(lambda f: f.open_streams == 2)
    fake.push(update(2))
    assert (await live.line())["recordUid"] == (await zero.line())["recordUid"] == "u2"


@gen_test
async def test_keep_alive_when_idle(served, opened) -> None:
    _, url = served(keepalive_s=0.01)
    line = await (await opened(url)).line()
    assert (line["eventType"], line["recordTimestamp"]) == ("KEEP_ALIVE", int(NOW_S * 1000))


@gen_test
async def test_quirk_switches_shape_the_stream(served, opened) -> None:
    fake, url = served(bad_line_every=2, repeat_every=3, reorder_window=2)
    stream = await opened(url)
    await fake.wait_for(lambda f: f.open_streams == 1)
    fake.push(update(1))
    fake.push(update(2), update(3), update(4))  # held in pairs, each pair newest first
    uids = []
    for _ in range(6):
        raw = await stream.raw_line()
        uids.append(orjson.loads(raw)["recordUid"] if raw.endswith(b"}\n") else "bad")
    assert uids == ["u2", "u1", "bad", "u4", "u4", "u3"]  # 2nd line cut, 3rd repeated


@gen_test
async def test_stalled_connection_sends_nothing_and_stays_open(served, opened) -> None:
    fake, url = served(stall_connects=frozenset({1}), keepalive_s=0.01)
    stalled = await opened(url)
    await fake.wait_for(lambda f: f.open_streams == 1)
    fake.push(update(1))
    healthy = await opened(url)
    assert (await healthy.line())["eventType"] == "KEEP_ALIVE"
    assert stalled.reader.at_eof() is False and fake.open_streams == 2
    fake.end_streams()
    assert await stalled.body() == b""  # closed, nothing ever sent


@gen_test
async def test_split_lines_arrive_whole_to_a_line_reader(served, opened) -> None:
    fake, url = served(split_lines=True)
    stream = await opened(url)
    await fake.wait_for(lambda f: f.open_streams == 1)
    fake.push(update(7))
    assert await stream.line() == update(7)


def test_simulated_fix_is_read_back_by_the_server_reader() -> None:
    device = make_devices(1, 0, 2, seed=3, mac_mode="test")[0]
    fix = Fix(device.index, 12.0, 2, 123.456, 78.9, 10000.0)
    record = fake_firehose.from_fix(fix, device, T0_MS)
    batch, newest_ms = SpacesReader().read([orjson.dumps(record)], NOW_S)
    assert batch.events == [FixEvent(device.mac, floor_key("spaces:location-fl0002"),
                                     123.456, 78.9, None, T0_MS / 1000),
                            IpSeen(device.ip, device.mac, T0_MS / 1000)]
    assert newest_ms == T0_MS


@gen_test
async def test_venue_stream_reports_every_device_on_a_timer(served) -> None:
    fake, _ = served()
    devices = make_devices(3, 2, 1, seed=1, mac_mode="test")
    task = asyncio.ensure_future(fake_firehose.stream_venue(
        fake, devices, VenueConfig(floors=1, compute_interval_s=0.05), seed=1, tick_s=0.02))
    try:
        await fake.wait_for(lambda f: len(
            {e["deviceLocationUpdate"]["device"]["macAddress"] for e in f.events}) == 5)
    finally:
        task.cancel()
    assert {e["eventType"] for e in fake.events} == {"DEVICE_LOCATION_UPDATE"}


def test_cli_reads_the_fault_switches() -> None:
    args = build_parser().parse_args(
        ["fake-firehose", "--fail-connect", "2:429", "--stall-connect", "3", "--split-lines",
         "--ipv4", "not_applicable", "--unpadded-macs"])
    assert (args.fail_connect, args.stall_connect, args.split_lines) == (["2:429"], [3], True)
    assert (args.ipv4, args.unpadded_macs, args.port) == ("not_applicable", True, 8282)


async def _control(url: str, method: str, action: str) -> dict[str, Any]:
    base = url.removesuffix(fake_firehose.PATH)
    conn = HttpConnection(base)
    try:
        status, body = await conn.request(encode_request(method, f"{base}/fake/{action}"))
    finally:
        await conn.aclose()
    assert status == 200
    return dict(orjson.loads(body))


@gen_test
async def test_prebuilt_stream_is_held_until_released_then_sent_whole(served, opened) -> None:
    prebuilt = b"".join(orjson.dumps(update(i)) + b"\n" for i in range(1, 4))
    fake, url = served(prebuilt=prebuilt, hold=True)
    stream = await opened(url)
    await fake.wait_for(lambda f: f.open_streams == 1)
    assert await _control(url, "GET", "status") == {"open_streams": 1, "connections": 1,
                                                    "lines_sent": 0, "prebuilt_sent": 0}
    fake.push(update(9))  # live while held: it waits behind the prebuilt bytes
    assert await _control(url, "POST", "release") == {"released": 1}
    assert await _control(url, "POST", "release") == {"released": 0}  # nobody left waiting
    assert [(await stream.line())["recordUid"] for _ in range(4)] == ["u1", "u2", "u3", "u9"]
    assert (await _control(url, "GET", "status"))["prebuilt_sent"] == 1


@gen_test
async def test_end_closes_every_open_stream(served, opened) -> None:
    fake, url = served(prebuilt=orjson.dumps(update(1)) + b"\n")
    first, second = await opened(url), await opened(url)
    await fake.wait_for(lambda f: f.open_streams == 2)
    assert await _control(url, "POST", "end") == {"ended": 2}
    assert [orjson.loads(line)["recordUid"] for line in (await first.body()).splitlines()] \
        == ["u1"]
    assert await second.body() == orjson.dumps(update(1)) + b"\n"
