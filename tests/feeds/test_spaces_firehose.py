"""The Firehose consumer against the fake Firehose (tools/cmx_sim), a real local HTTP stream."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop

from tests.support.clock import Clock
from tools.cmx_sim import fake_cmx, fake_firehose
from tools.cmx_sim.fake_firehose import FakeFirehose
from tys_server.core.events import Batch, Event, Fix, IpSeen
from tys_server.core.macs import hash_mac
from tys_server.feeds import spaces_names
from tys_server.feeds.cmx_fields import floor_key
from tys_server.feeds.spaces_firehose import FirehoseConsumer, FirehoseOptions

NOW_S = 1_800_000_000.0  # 2027-01-15 08:00 UTC; every clock here is this one, moved by hand
T0_MS = int(NOW_S * 1000) - 600_000  # events of the last ten minutes
KEY = "listening"
gen_test = pytest.mark.gen_test(timeout=20)  # a hang guard, never a duration bound


class RecordingSink:
    """The EventSink the consumer feeds; records batches and wakes waiters."""

    tracks: frozenset[str] = frozenset()

    def __init__(self) -> None:
        self.batches: list[Batch] = []
        self._changed = asyncio.Event()

    @property
    def events(self) -> list[Event]:
        return [e for b in self.batches for e in b.events]

    @property
    def fixes(self) -> list[Fix]:
        return [e for e in self.events if isinstance(e, Fix)]

    def ingest(self, batch: Batch, now_s: float) -> None:
        self.batches.append(batch)
        self._changed.set()

    async def wait_for(self, predicate: Callable[[RecordingSink], bool]) -> None:
        while not predicate(self):
            self._changed.clear()
            await self._changed.wait()


class Sleeps:
    """The consumer's sleep: records (delay, state); the first `free` return at once,
    later ones wait until the test releases them or stop() cancels them."""

    def __init__(self, free: int = 1_000) -> None:
        self.free = free
        self.calls: list[tuple[float, str]] = []
        self.errors: list[str | None] = []  # the consumer's last_error at each wait
        self.consumer: FirehoseConsumer | None = None
        self._changed = asyncio.Event()
        self._release = asyncio.Event()

    async def __call__(self, delay_s: float) -> None:
        assert self.consumer is not None
        self.calls.append((delay_s, self.consumer.state))
        self.errors.append(self.consumer.last_error)
        self._changed.set()
        if len(self.calls) > self.free:
            await self._release.wait()
        await asyncio.sleep(0)

    @property
    def delays(self) -> list[float]:
        return [delay for delay, _ in self.calls]

    async def wait_calls(self, count: int) -> None:
        while len(self.calls) < count:
            self._changed.clear()
            await self._changed.wait()


async def until(predicate: Callable[[], bool]) -> None:
    """For consumer states, which have no event to await: poll the loop briefly."""
    while not predicate():
        await asyncio.sleep(0.005)


def fix_event(i: int, *, offset_ms: int = 0, **kwargs: Any) -> dict[str, Any]:
    """The i-th device's location update, i seconds after T0."""
    return fake_firehose.location_update(
        f"00:52:bf:74:0b:{i:02x}", 1, 10.0 * i, 20.0, record_ms=T0_MS + 1000 * i + offset_ms,
        ip=f"10.1.0.{i}", uid=f"uid-{i}-{offset_ms}", **kwargs)


@pytest.fixture
def serve(io_loop: IOLoop) -> Iterator[Callable[..., tuple[FakeFirehose, str]]]:
    """serve(**FakeFirehose fields) → (fake, events URL); servers stop after the test."""
    servers: list[HTTPServer] = []

    def start(**behaviour: Any) -> tuple[FakeFirehose, str]:
        fake = FakeFirehose(**behaviour)
        server, url = fake_firehose.start(fake)
        servers.append(server)
        return fake, url

    yield start
    for server in servers:
        server.stop()
        io_loop.run_sync(server.close_all_connections)


Setup = tuple[FakeFirehose, FirehoseConsumer, RecordingSink, Sleeps, Clock]


@pytest.fixture
def firehose(serve: Callable[..., tuple[FakeFirehose, str]],
             io_loop: IOLoop) -> Iterator[Callable[..., Setup]]:
    """firehose(fake=…, free_sleeps=…, cursor=…, **options) → a started consumer on a fake."""
    consumers: list[FirehoseConsumer] = []

    def make(fake: dict[str, Any] | None = None, free_sleeps: int = 1_000,
             cursor: int | None = None, jitter: float = 0.5, **options: Any) -> Setup:
        clock = Clock(NOW_S)  # the consumer's and the fake's
        fake_firehose_, url = serve(**{"keepalive_s": 3600.0, "clock": clock, **(fake or {})})
        sink, sleeps = RecordingSink(), Sleeps(free_sleeps)
        settings = {"url": url, "api_key": fake_firehose.API_KEY, "stall_timeout_s": 30.0,
                    **options}
        consumer = FirehoseConsumer(FirehoseOptions(**settings), sink, initial_cursor_ms=cursor,
                                    clock=clock, sleep=sleeps, jitter=lambda: jitter)
        sleeps.consumer = consumer
        consumers.append(consumer)
        consumer.start()
        return fake_firehose_, consumer, sink, sleeps, clock

    yield make
    for consumer in consumers:
        io_loop.run_sync(consumer.stop)


# --- connecting and resuming -------------------------------------------------------------

@gen_test
async def test_first_connection_without_a_cursor_asks_for_live_events_only(firehose) -> None:
    fake, consumer, sink, _, _ = firehose()
    await fake.wait_for(lambda f: f.open_streams == 1)
    assert [(c.number, c.api_key, c.from_timestamp) for c in fake.connections] == [
        (1, fake_firehose.API_KEY, None)]
    await until(lambda: consumer.state == "connected")
    fake.push(fix_event(1))
    await sink.wait_for(lambda s: len(s.fixes) == 1)
    assert consumer.cursor_for_flush() == T0_MS + 1000


@gen_test
async def test_resume_asks_from_the_stored_cursor_minus_the_overlap(firehose) -> None:
    fake, _, _, _, _ = firehose(cursor=T0_MS, resume_overlap_s=60)
    await fake.wait_for(lambda f: f.open_streams == 1)
    assert fake.connections[0].from_timestamp == T0_MS - 60_000


@gen_test
async def test_reconnect_resumes_from_the_newest_record_applied_and_drops_the_replay(
        firehose) -> None:
    fake, consumer, sink, sleeps, _ = firehose(cursor=T0_MS, resume_overlap_s=60)
    await fake.wait_for(lambda f: f.open_streams == 1)
    # out of order, as Spaces sends them: the newest record is not the last line
    fake.push(fix_event(1, offset_ms=30_000), fix_event(2), fix_event(3, offset_ms=-20_000))
    await sink.wait_for(lambda s: len(s.fixes) == 3)
    assert consumer.cursor_for_flush() == T0_MS + 31_000
    fake.end_streams()
    await fake.wait_for(lambda f: len(f.connections) == 2 and f.open_streams == 1)
    assert fake.connections[1].from_timestamp == T0_MS + 31_000 - 60_000
    fake.push(fix_event(4))
    await sink.wait_for(lambda s: len(s.fixes) == 4)
    assert [f.x_ft for f in sink.fixes] == [10.0, 20.0, 30.0, 40.0]  # the replay added none
    assert consumer.reader.by_type[("DEVICE_LOCATION_UPDATE", "duplicate")] == 3
    assert (consumer.reconnects, sleeps.calls) == (1, [(0.5, "backing_off")])


@gen_test
async def test_events_reach_the_sink_as_fixes_and_ip_sightings_with_quirks(firehose) -> None:
    fake, consumer, sink, _, clock = firehose(hash_key=KEY)
    await until(lambda: consumer.state == "connected")
    mac = "00:52:bf:74:0b:00"
    quirky = fake_firehose.Quirks(ipv4="not_applicable", unpadded_mac=True)
    fake.push(fake_firehose.location_update(mac, 3, 12.5, 7.0, record_ms=T0_MS,
                                            last_seen_ms=T0_MS - 4000, quirks=quirky),
              fake_firehose.location_update(mac, 3, 14.5, 9.0, record_ms=T0_MS + 1000,
                                            ip="192.168.7.9"))
    await sink.wait_for(lambda s: len(s.events) == 3)
    stored, floor = hash_mac(mac, KEY), floor_key("spaces:location-fl0003")
    assert sink.events == [Fix(stored, floor, 12.5, 7.0, None, T0_MS / 1000 - 4),
                           Fix(stored, floor, 14.5, 9.0, None, T0_MS / 1000 + 1),
                           IpSeen("192.168.7.9", stored, T0_MS / 1000 + 1)]
    assert consumer.last_event_at == clock.now_s
    assert consumer.lag_s == NOW_S - (T0_MS / 1000 + 1)
    clock.now_s += 7
    assert consumer.status() == {
        "state": "connected", "last_error": None, "reconnects": 0, "bad_lines": 0,
        "cursor_ms": T0_MS + 1000, "lag_s": NOW_S - (T0_MS / 1000 + 1), "last_event_age_s": 7.0}


# --- quirks of the stream ----------------------------------------------------------------

@gen_test
async def test_lines_split_across_chunks_are_reassembled(firehose) -> None:
    fake, consumer, sink, _, _ = firehose(fake={"split_lines": True})
    await until(lambda: consumer.state == "connected")
    fake.push(*[fix_event(i) for i in range(1, 6)])
    await sink.wait_for(lambda s: len(s.fixes) == 5)
    assert [f.x_ft for f in sink.fixes] == [10.0, 20.0, 30.0, 40.0, 50.0]
    assert consumer.bad_lines == 0


@gen_test
async def test_unparsable_lines_are_counted_and_skipped(firehose) -> None:
    fake, consumer, sink, _, _ = firehose(fake={"bad_line_every": 2})
    await until(lambda: consumer.state == "connected")
    fake.push(*[fix_event(i) for i in range(1, 6)])
    fake.push(fix_event(9))  # the line after the 5th: the bad line before it is read
    await sink.wait_for(lambda s: len(s.fixes) == 6)
    assert consumer.bad_lines == 3
    assert consumer.state == "connected"


@gen_test
async def test_repeated_lines_are_dropped_as_duplicates(firehose) -> None:
    fake, consumer, sink, _, _ = firehose(fake={"repeat_every": 1})
    await until(lambda: consumer.state == "connected")
    fake.push(fix_event(1), fix_event(2))
    fake.push(fix_event(3))
    await sink.wait_for(lambda s: len(s.fixes) == 3)
    await sink.wait_for(lambda s: sum(b.ignored for b in s.batches) == 3)
    assert len(sink.fixes) == 3
    assert consumer.reader.by_type == {("DEVICE_LOCATION_UPDATE", "accepted"): 3,
                                       ("DEVICE_LOCATION_UPDATE", "duplicate"): 3}


@gen_test
async def test_keep_alives_are_counted_and_keep_the_stream(firehose) -> None:
    fake, consumer, sink, _, _ = firehose(fake={"keepalive_s": 0.02}, stall_timeout_s=5.0)
    await sink.wait_for(lambda s: consumer.reader.by_type.get(("KEEP_ALIVE", "ignored"), 0) >= 5)
    assert len(fake.connections) == 1 and consumer.reconnects == 0
    assert consumer.cursor_for_flush() == int(NOW_S * 1000)  # the keep-alives' record time


@gen_test
async def test_quiet_when_only_keep_alives_flow_for_5_minutes(firehose) -> None:
    fake, consumer, sink, _, clock = firehose(fake={"keepalive_s": 0.02})
    await sink.wait_for(lambda s: len(s.batches) >= 1)
    clock.now_s += 299
    assert consumer.state == "connected"
    clock.now_s += 1
    assert consumer.state == "quiet"
    fake.push(fix_event(1))
    await sink.wait_for(lambda s: len(s.fixes) == 1)
    assert consumer.state == "connected"


# --- failures and back-off ---------------------------------------------------------------

@pytest.mark.parametrize("status", [401, 403, 400])
@gen_test
async def test_refused_key_shows_unauthorized_and_retries_every_5_minutes(
        firehose, status: int) -> None:
    fake, consumer, _, sleeps, _ = firehose(fake={"fail_connects": {1: status}}, free_sleeps=0)
    await sleeps.wait_calls(1)
    assert sleeps.calls == [(300.0, "unauthorized")]
    assert consumer.state == "unauthorized"
    assert fake.connections[0].status == status


@gen_test
async def test_wrong_api_key_is_answered_401_and_shows_unauthorized(firehose) -> None:
    fake, consumer, _, sleeps, _ = firehose(free_sleeps=0, api_key="stale-key")
    await sleeps.wait_calls(1)
    assert (fake.connections[0].api_key, fake.connections[0].status) == ("stale-key", 401)
    assert consumer.state == "unauthorized"
    assert sleeps.errors == ["HTTP 401"]


@pytest.mark.parametrize("retry_after,wait_s", [(None, 30.0), ("5", 30.0), ("120", 120.0),
                                                ("86400", 3600.0)])
@gen_test
async def test_rate_limited_waits_at_least_30_s_or_as_told(
        firehose, retry_after: str | None, wait_s: float) -> None:
    fake, consumer, sink, sleeps, _ = firehose(
        fake={"fail_connects": {1: 429}, "retry_after": retry_after}, jitter=1.0)
    await fake.wait_for(lambda f: f.open_streams == 1)
    assert sleeps.calls == [(wait_s, "backing_off")]
    assert [c.status for c in fake.connections] == [429, 200]


@gen_test
async def test_server_errors_back_off_in_doubling_jittered_windows(firehose) -> None:
    fails = {n: 500 for n in range(1, 9)}
    fake, consumer, _, sleeps, _ = firehose(fake={"fail_connects": fails}, jitter=1.0)
    await fake.wait_for(lambda f: f.open_streams == 1)
    assert sleeps.delays == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]
    assert {state for _, state in sleeps.calls} == {"backing_off"}
    assert consumer.reconnects == 8


@gen_test
async def test_jitter_draws_within_the_window(firehose) -> None:
    fake, _, _, sleeps, _ = firehose(fake={"fail_connects": {1: 503, 2: 503}}, jitter=0.25)
    await fake.wait_for(lambda f: f.open_streams == 1)
    assert sleeps.delays == [0.25, 0.5]


@gen_test
async def test_back_off_resets_after_5_minutes_connected(firehose) -> None:
    fake, consumer, _, sleeps, clock = firehose(
        fake={"fail_connects": {1: 500, 3: 500, 5: 500}}, jitter=1.0)
    await fake.wait_for(lambda f: f.open_streams == 1)  # connection 2
    await until(lambda: consumer.state == "connected")
    clock.now_s += 300
    fake.end_streams()
    await fake.wait_for(lambda f: len(f.connections) == 4 and f.open_streams == 1)
    await until(lambda: consumer.state == "connected")
    clock.now_s += 299  # not long enough: the back-off goes on growing
    fake.end_streams()
    await fake.wait_for(lambda f: len(f.connections) == 6 and f.open_streams == 1)
    assert sleeps.delays == [1.0, 1.0, 2.0, 4.0, 8.0]


@gen_test
async def test_refused_connection_backs_off(firehose) -> None:
    url = f"http://{fake_cmx.refusing_host()}{fake_firehose.PATH}"
    _, consumer, _, sleeps, _ = firehose(free_sleeps=0, url=url)
    await sleeps.wait_calls(1)
    assert sleeps.calls == [(0.5, "backing_off")]
    assert str(consumer.last_error).startswith("Failed to connect to 127.0.0.1")


@gen_test
async def test_silent_stall_is_cut_and_resumed(firehose) -> None:
    # KEEP_ALIVEs every 20 ms keep a healthy stream well inside the 1 s stall timeout
    fake, consumer, sink, sleeps, _ = firehose(
        fake={"stall_connects": frozenset({1}), "keepalive_s": 0.02}, cursor=T0_MS,
        stall_timeout_s=1.0)
    await fake.wait_for(lambda f: len(f.connections) == 2)
    assert fake.connections[1].from_timestamp == T0_MS - 60_000
    assert (sleeps.calls, sleeps.errors) == ([(0.5, "backing_off")], ["no byte for 1 s"])
    assert consumer.reconnects == 1
    fake.push(fix_event(1))
    await sink.wait_for(lambda s: len(s.fixes) == 1)


@gen_test
async def test_stall_after_events_reconnects_and_keeps_them(firehose) -> None:
    fake, consumer, sink, sleeps, _ = firehose(fake={"keepalive_s": 0.02}, stall_timeout_s=1.0)
    await until(lambda: consumer.state == "connected")
    fake.push(fix_event(1))
    await sink.wait_for(lambda s: len(s.fixes) == 1)
    cursor_ms = int(NOW_S * 1000)  # a keep-alive's record time: the newest record
    await sink.wait_for(lambda s: consumer.cursor_for_flush() == cursor_ms)
    fake.stall()
    await fake.wait_for(lambda f: len(f.connections) == 2)
    assert fake.connections[1].from_timestamp == cursor_ms - 60_000
    assert sleeps.errors == ["no byte for 1 s"]
    await until(lambda: consumer.state == "connected")
    assert consumer.last_error is None
    assert len(sink.fixes) == 1


# --- stopping ----------------------------------------------------------------------------

@gen_test
async def test_stop_ends_the_stream_and_the_task_cleanly(firehose) -> None:
    fake, consumer, sink, _, _ = firehose()
    await until(lambda: consumer.state == "connected")
    fake.push(fix_event(1))
    await sink.wait_for(lambda s: len(s.fixes) == 1)
    await consumer.stop()
    assert consumer.state == "stopped"
    await fake.wait_for(lambda f: f.open_streams == 0)  # the server saw the stream end
    assert [t for t in asyncio.all_tasks() if "firehose" in t.get_name()] == []
    assert consumer.cursor_for_flush() == T0_MS + 1000  # what the final flush writes


@gen_test
async def test_stop_while_backing_off_cancels_the_wait(firehose) -> None:
    fake, consumer, _, sleeps, _ = firehose(fake={"fail_connects": {1: 500}}, free_sleeps=0)
    await sleeps.wait_calls(1)
    await consumer.stop()
    assert consumer.state == "stopped"
    assert len(fake.connections) == 1


@gen_test
async def test_stop_before_the_first_connection(firehose) -> None:
    _, consumer, _, sleeps, _ = firehose()
    await consumer.stop()
    await consumer.stop()  # twice is harmless
    assert (consumer.state, sleeps.calls) == ("stopped", [])


@gen_test
async def test_started_twice_is_refused(firehose) -> None:
    _, consumer, _, _, _ = firehose()
    with pytest.raises(RuntimeError, match="already started"):
        consumer.start()


# --- raw servers: replies the fake does not make -----------------------------------------

async def raw_server(reply: bytes | None) -> tuple[asyncio.Server, str, asyncio.Event]:
    """A server that answers every request with reply in one write and closes (None: never
    answers); the event is set at each accepted connection."""
    accepted = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.set()
        await reader.readuntil(b"\r\n\r\n")
        if reply is None:
            await reader.read()  # until the client goes away
        else:
            writer.write(reply)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}{fake_firehose.PATH}", accepted


def ndjson_reply(body: bytes) -> bytes:
    """A whole 200 reply: headers, the body, and the end (Content-Length)."""
    return (b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nContent-Length: "
            + str(len(body)).encode() + b"\r\n\r\n" + body)


@gen_test
async def test_short_reply_read_in_one_go_is_applied(firehose) -> None:
    # Headers, body and end in one read: curl's final flush reaches the streaming
    # callback before the queued header callbacks run.
    body = b"".join(orjson.dumps(fix_event(i)) + b"\n" for i in (1, 2))
    server, url, _ = await raw_server(ndjson_reply(body))
    try:
        _, consumer, sink, sleeps, _ = firehose(free_sleeps=0, url=url)
        await sleeps.wait_calls(1)
        assert [f.x_ft for f in sink.fixes] == [10.0, 20.0]
        assert (sleeps.errors, consumer.cursor_for_flush()) == (["the stream ended"], T0_MS + 2000)
    finally:
        server.close()
        await server.wait_closed()


@gen_test
async def test_line_of_megabytes_without_newline_is_dropped_and_counted(firehose) -> None:
    good = orjson.dumps(fix_event(1)) + b"\n"
    body = b"[" + b"1," * 800_000 + b"\n" + good + b'{"recordUid": "cut sh'
    server, url, _ = await raw_server(ndjson_reply(body))
    try:
        _, consumer, sink, sleeps, _ = firehose(free_sleeps=0, url=url)
        await sleeps.wait_calls(1)
        assert [f.x_ft for f in sink.fixes] == [10.0]
        assert consumer.bad_lines == 2  # the 1.6 MB line, and the line the end cut short
    finally:
        server.close()
        await server.wait_closed()


@gen_test
async def test_stop_while_waiting_for_the_status_line_cuts_the_request(firehose) -> None:
    server, url, accepted = await raw_server(None)
    try:
        _, consumer, _, sleeps, _ = firehose(url=url)
        await accepted.wait()
        await consumer.stop()
        assert (consumer.state, sleeps.calls) == ("stopped", [])
    finally:
        server.close()
        await server.wait_closed()


@gen_test
async def test_server_that_never_answers_is_a_stall(firehose) -> None:
    server, url, _ = await raw_server(None)
    try:
        _, consumer, _, sleeps, _ = firehose(url=url, stall_timeout_s=0.2, free_sleeps=0)
        await sleeps.wait_calls(1)
        assert (sleeps.calls, sleeps.errors) == ([(0.5, "backing_off")], ["no byte for 0.2 s"])
    finally:
        server.close()
        await server.wait_closed()


# --- a fault on one line -----------------------------------------------------------------

@gen_test
async def test_a_line_that_fails_costs_that_line_not_its_chunk(
        firehose, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    real = spaces_names.private_ipv4

    def fails_on_one_ip(text: object) -> str | None:
        if text == "10.1.0.2":
            raise RuntimeError("injected")
        return real(text)

    monkeypatch.setattr(spaces_names, "private_ipv4", fails_on_one_ip)
    fake, consumer, sink, _, _ = firehose()
    await until(lambda: consumer.state == "connected")
    fake.push(fix_event(1), fix_event(2), fix_event(3))  # one group, one write
    await sink.wait_for(lambda s: len(s.fixes) == 2)
    assert [f.x_ft for f in sink.fixes] == [10.0, 30.0]
    assert [e.ip for e in sink.events if isinstance(e, IpSeen)] == ["10.1.0.1", "10.1.0.3"]
    assert consumer.bad_lines == 1 and consumer.state == "connected"
    assert consumer.cursor_for_flush() == T0_MS + 3000
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == [
        "Spaces Firehose: a line could not be read"]
