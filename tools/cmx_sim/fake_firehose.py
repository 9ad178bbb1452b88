"""A fake Cisco Spaces Firehose (``GET /api/partners/v1/firehose/events``): tests and simulator.

The reply never ends: newline-delimited JSON, one ``EventRecord`` per line (shapes in
``firehose_events``), a ``KEEP_ALIVE`` about every ``keepalive_s``. ``X-API-KEY`` is
checked (401 otherwise); ``fromTimestamp`` replays the stored events with
``recordTimestamp`` ≥ it (0 or none: live events only), as Cisco's HTTP Streaming page
says. Switches reproduce the quirks of real output; a ``FakeFirehose`` records every
connection and what it asked. For the benchmark it can also send a pre-built stream
(bytes) to each connection, held until ``POST /fake/release``; ``POST /fake/end`` closes
every stream, ``GET /fake/status`` says how many are open (and how many have written all
the prebuilt bytes).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import orjson
import tornado.web
from tornado.httpserver import HTTPServer
from tornado.iostream import StreamClosedError
from tornado.testing import bind_unused_port

from tools.cmx_sim.devices import Device
from tools.cmx_sim.firehose_events import (
    TENANT,
    IpQuirk,
    Quirks,
    device_exit,
    floor_location_id,
    from_fix,
    keep_alive,
    location_chain,
    location_update,
    next_uid,
)
from tools.cmx_sim.signals import until_stopped
from tools.cmx_sim.venue import Venue, VenueConfig

__all__ = ["API_KEY", "PATH", "TENANT", "Connection", "FakeFirehose", "IpQuirk", "Quirks",
           "device_exit", "floor_location_id", "from_fix", "keep_alive", "location_chain",
           "location_update", "make_app", "next_uid", "serve_forever", "start", "stream_venue"]

PATH = "/api/partners/v1/firehose/events"
API_KEY = "fake-firehose-key"
_ERRORS = {400: "bad fromTimestamp", 401: "invalid API key", 429: "too many requests"}
_PREBUILT_PIECE = 256 * 1024
PLAIN = Quirks()  # real output's usual shape


@dataclasses.dataclass
class Connection:
    """One GET the fake answered: its number (from 1), what it asked, what it got."""

    number: int
    api_key: str | None
    from_timestamp: int | None
    status: int = 200


@dataclasses.dataclass
class FakeFirehose:
    """Behaviour of the fake and a record of its connections; push() sends live events."""

    api_key: str = API_KEY
    keepalive_s: float = 15.0
    split_lines: bool = False  # each line sent in three pieces, flushed apart
    bad_line_every: int = 0  # after every n-th event line, a truncated (unparsable) one
    repeat_every: int = 0  # every n-th event line sent twice (a duplicate recordUid)
    reorder_window: int = 0  # live events go out in groups of n, newest first
    replay_slack_s: float = 0.0  # a resume also replays this much before fromTimestamp
    fail_connects: dict[int, int] = dataclasses.field(default_factory=dict)  # n → status
    retry_after: str | None = None  # Retry-After header of a 429
    stall_connects: frozenset[int] = frozenset()  # silent after the replay, never closed
    clock: Callable[[], float] = time.time
    retain: int = 500_000  # stored events for replay (the oldest are forgotten)
    prebuilt: bytes = b""  # NDJSON sent whole to each stream, before any live event
    hold: bool = False  # the prebuilt bytes wait for release()
    connections: list[Connection] = dataclasses.field(default_factory=list)
    lines_sent: int = 0
    prebuilt_sent: int = 0  # streams that have written all the prebuilt bytes to their socket

    def __post_init__(self) -> None:
        self.events: deque[dict[str, Any]] = deque(maxlen=self.retain)
        self._streams: set[_Stream] = set()
        self._held: list[dict[str, Any]] = []
        self._changed = asyncio.Event()

    @property
    def open_streams(self) -> int:
        """Streams being served now."""
        return len(self._streams)

    def push(self, *events: dict[str, Any]) -> None:
        """Store events (for replay) and send them to every live stream."""
        self.events.extend(events)
        self._notify()
        if self.reorder_window > 1:
            self._held.extend(events)
            while len(self._held) >= self.reorder_window:
                group = self._held[:self.reorder_window]
                del self._held[:self.reorder_window]
                self._broadcast(group[::-1])
        else:
            self._broadcast(list(events))

    @property
    def pending_events(self) -> int:
        """Event groups pushed but not yet written to their streams."""
        return sum(stream.queue.qsize() for stream in self._streams)

    def release(self) -> int:
        """Let the streams that hold the prebuilt bytes send them; how many were waiting."""
        waiting = [s for s in self._streams if not s.released.is_set()]
        for stream in waiting:
            stream.released.set()
        return len(waiting)

    def stall(self) -> None:
        """Make every open stream go silent (no events, no KEEP_ALIVE) without closing."""
        for stream in self._streams:
            stream.stalled = True

    def end_streams(self) -> None:
        """Close every open stream cleanly, as Spaces does when it rebalances."""
        for stream in self._streams:
            stream.queue.put_nowait(None)

    async def wait_for(self, predicate: Callable[[FakeFirehose], bool]) -> None:
        """Return once predicate(self) holds (checked at each push, connection, stream end)."""
        while not predicate(self):
            self._changed.clear()
            await self._changed.wait()

    def _broadcast(self, events: list[dict[str, Any]]) -> None:
        for stream in self._streams:
            if not stream.stalled:
                stream.queue.put_nowait(events)

    def _notify(self) -> None:
        self._changed.set()


class _Stream:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[list[dict[str, Any]] | None] = asyncio.Queue()
        self.stalled = False
        self.closed = False  # by the client
        self.sent = 0  # event lines sent on this stream
        self.released = asyncio.Event()


class _EventsHandler(tornado.web.RequestHandler):
    def initialize(self, fake: FakeFirehose) -> None:
        self.fake = fake
        self.stream = _Stream()

    def on_connection_close(self) -> None:
        self.stream.closed = True
        self.stream.released.set()
        self.stream.queue.put_nowait(None)

    async def get(self) -> None:
        fake = self.fake
        raw_from = self.get_query_argument("fromTimestamp", None)
        from_ms = int(raw_from) if raw_from is not None and raw_from.isdigit() else None
        connection = Connection(len(fake.connections) + 1, self.request.headers.get(
            "X-API-KEY"), from_ms)
        fake.connections.append(connection)
        fake._notify()
        status = fake.fail_connects.get(connection.number)
        if connection.api_key != fake.api_key:
            status = 401
        elif raw_from is not None and from_ms is None:
            status = 400
        if status:
            connection.status = status
            if status == 429 and fake.retry_after is not None:
                self.set_header("Retry-After", fake.retry_after)
            self.set_status(status)
            self.finish({"error": _ERRORS.get(status, "simulated failure")})
            return
        self.set_header("Content-Type", "application/x-ndjson")
        fake._streams.add(self.stream)
        try:
            await self._serve(connection, from_ms)
        except StreamClosedError:
            pass
        finally:
            fake._streams.discard(self.stream)
            fake._notify()

    async def _serve(self, connection: Connection, from_ms: int | None) -> None:
        fake, stream = self.fake, self.stream
        self.write(b"")
        await self.flush()  # the headers go out now, as Spaces sends them before any event
        if from_ms:
            since_ms = from_ms - fake.replay_slack_s * 1000
            await self._send([e for e in fake.events if e["recordTimestamp"] >= since_ms])
        if fake.prebuilt:
            if fake.hold:
                await stream.released.wait()
            for first in range(0, len(fake.prebuilt), _PREBUILT_PIECE):
                self.write(fake.prebuilt[first:first + _PREBUILT_PIECE])
                await self.flush()
            fake.prebuilt_sent += 1
        if connection.number in fake.stall_connects:
            stream.stalled = True
        while True:
            try:
                events = await asyncio.wait_for(stream.queue.get(), fake.keepalive_s)
            except TimeoutError:
                events = [] if stream.stalled else [keep_alive(int(fake.clock() * 1000))]
            if events is None:
                break
            if not stream.stalled:
                await self._send(events)
        if not stream.closed:
            self.finish()

    async def _send(self, events: Iterable[dict[str, Any]]) -> None:
        fake, stream = self.fake, self.stream
        for event in events:
            line = orjson.dumps(event) + b"\n"
            pieces = [line]
            if fake.split_lines:
                third = max(1, len(line) // 3)
                pieces = [line[:third], line[third:2 * third], line[2 * third:]]
            stream.sent += 1
            if fake.repeat_every and stream.sent % fake.repeat_every == 0:
                pieces.append(line)
            if fake.bad_line_every and stream.sent % fake.bad_line_every == 0:
                pieces.append(line[:len(line) // 2] + b"\n")  # a line cut short
            for piece in pieces:
                self.write(piece)
                if fake.split_lines:
                    await self.flush()
            fake.lines_sent += 1
        await self.flush()  # one flush per group: a walk pushes thousands of events a second


class _ControlHandler(tornado.web.RequestHandler):
    """POST /fake/release, POST /fake/end (every stream closes), GET /fake/status."""

    def initialize(self, fake: FakeFirehose) -> None:
        self.fake = fake

    def get(self, action: str) -> None:
        fake = self.fake
        if action != "status":
            raise tornado.web.HTTPError(405)
        self.finish({"open_streams": fake.open_streams, "connections": len(fake.connections),
                     "lines_sent": fake.lines_sent, "prebuilt_sent": fake.prebuilt_sent})

    def post(self, action: str) -> None:
        if action == "release":
            self.finish({"released": self.fake.release()})
        elif action == "end":
            streams = self.fake.open_streams
            self.fake.end_streams()
            self.finish({"ended": streams})
        else:
            raise tornado.web.HTTPError(405)


def make_app(fake: FakeFirehose) -> tornado.web.Application:
    """The fake Firehose as a Tornado application (with its two control routes)."""
    context = {"fake": fake}
    return tornado.web.Application([(PATH, _EventsHandler, context),
                                    (r"/fake/(release|end|status)", _ControlHandler, context)],
                                   log_function=lambda handler: None)


def start(fake: FakeFirehose) -> tuple[HTTPServer, str]:
    """Serve fake on a free port of 127.0.0.1; returns the server and the events URL."""
    sock, port = bind_unused_port()
    server = HTTPServer(make_app(fake))
    server.add_sockets([sock])
    return server, f"http://127.0.0.1:{port}{PATH}"


async def stream_venue(fake: FakeFirehose, devices: Sequence[Device], cfg: VenueConfig,
                       seed: int, quirks: Quirks = PLAIN, tick_s: float = 1.0) -> None:
    """Push the simulated devices' fixes in real time: one per device per compute interval.

    Spaces reports on a timer, not on movement, so every computed estimate is sent.
    """
    venue = Venue(devices, dataclasses.replace(cfg, movement_distance_ft=0.0), seed)
    start_s = time.time()
    while True:
        await asyncio.sleep(tick_s)
        now_s = time.time()
        for fix in venue.step(now_s - start_s):
            fake.push(from_fix(fix, devices[fix.device], int((start_s + fix.t_s) * 1000), quirks))


async def serve_forever(host: str, port: int, fake: FakeFirehose, devices: Sequence[Device],
                        cfg: VenueConfig, seed: int, quirks: Quirks = PLAIN) -> None:
    """Run the fake Firehose (with the simulated venue, given devices) until SIGTERM or SIGINT."""
    server = make_app(fake).listen(port, address=host)
    venue = asyncio.get_running_loop().create_task(
        stream_venue(fake, devices, cfg, seed, quirks)) if devices else None
    try:
        await until_stopped()
    finally:
        if venue is not None:
            venue.cancel()
        fake.end_streams()
        server.stop()
        await server.close_all_connections()
