"""A fake CMX location API (v2 and v3 ``clients?ipAddress=``): one for tests and simulator.

v2 answers a list of client records carrying ``macAddress``, or 204 with no body for an
unknown IP; v3 answers a list of stored notifications carrying ``deviceId``, or ``[]``.
Both check HTTP Basic auth (401 otherwise; no check when the username is empty). MACs are
served raw, as a CMX does: the TYS server hashes them itself when ``cmx.mac_hash_key`` is
set. A ``FakeCmx`` can be slow, fail or answer garbage (always, or at a rate, to rehearse
fail-over), and records what it was asked.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import random
import time
from collections.abc import Callable, Iterable

import orjson
import tornado.web
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port

from tools.cmx_sim import notify
from tools.cmx_sim.devices import Device
from tools.cmx_sim.signals import until_stopped
from tools.cmx_sim.venue import Fix

# The credentials a FakeCmx expects unless told otherwise (tests point cmx.* at these).
USERNAME = "cmx-api"
PASSWORD = "s3cret-cmx"
FLOOR = 1  # the simulated floor of a client given without one
X_FT, Y_FT = 300.0, 200.0  # where every client stands in the records


@dataclasses.dataclass
class FakeCmx:
    """One fake CMX host: whom it knows, how it misbehaves, and what it was asked."""

    clients: dict[str, str] = dataclasses.field(default_factory=dict)  # ip → raw MAC
    floors: dict[str, int] = dataclasses.field(default_factory=dict)  # ip → floor (else 1)
    username: str = USERNAME  # empty: every caller is let in
    password: str = PASSWORD
    delay_s: float = 0.0  # answer this late (cut short when the caller gives up)
    status: int | None = None  # answer this status instead of looking up
    body: bytes | None = None  # with status (200 when unset): answer these raw bytes
    fail_rate: float = 0.0  # share of look-ups answered 500
    garbage_rate: float = 0.0  # share answered 200 with a body that is not JSON
    seed: int = 0  # of the draws deciding which look-ups fail
    clock: Callable[[], float] = time.time  # the records' timestamps
    requests: int = 0
    seen_ips: list[str] = dataclasses.field(default_factory=list)
    seen_users: list[str | None] = dataclasses.field(default_factory=list)
    rng: random.Random = dataclasses.field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(f"fake-cmx-{self.seed}")

    @classmethod
    def serving(cls, devices: Iterable[Device], **behaviour: object) -> FakeCmx:
        """A fake that knows the simulated devices (a later one with the same IP wins)."""
        fake = cls(**behaviour)  # type: ignore[arg-type]
        for device in devices:
            fake.clients[device.ip] = device.mac
            fake.floors[device.ip] = device.floor
        return fake


def _basic_pair(header: str | None) -> tuple[str, str] | None:
    if not header or not header.startswith("Basic "):
        return None
    try:
        user, _, password = base64.b64decode(header[6:], validate=True).decode(
            "utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user, password


class _ClientsHandler(tornado.web.RequestHandler):
    """GET /api/location/(v2|v3)/clients?ipAddress=..."""

    def initialize(self, fake: FakeCmx) -> None:
        self.fake = fake
        self.closed = asyncio.Event()

    def on_connection_close(self) -> None:
        self.closed.set()

    async def get(self, version: str) -> None:
        fake = self.fake
        fake.requests += 1
        pair = _basic_pair(self.request.headers.get("Authorization"))
        fake.seen_users.append(pair[0] if pair else None)
        ip = self.get_query_argument("ipAddress", "").strip()
        fake.seen_ips.append(ip)
        if fake.delay_s:
            try:
                await asyncio.wait_for(self.closed.wait(), fake.delay_s)
                return  # the caller gave up
            except TimeoutError:
                pass
        if fake.username and pair != (fake.username, fake.password):
            self.set_header("WWW-Authenticate", 'Basic realm="CMX"')
            self.set_status(401)
            self.finish({"error": "Unauthorized"})
            return
        if fake.status is not None or fake.body is not None:
            self.set_status(fake.status or 200)
            self.finish(fake.body or b"")
            return
        draw = fake.rng.random()
        if draw < fake.fail_rate:
            self.set_status(500)
            self.finish({"error": "simulated failure"})
            return
        self.set_header("Content-Type", "application/json")
        if draw < fake.fail_rate + fake.garbage_rate:
            self.finish(b"<html>not json{")
            return
        mac = fake.clients.get(ip)
        if mac is None:
            if version == "v2":
                self.set_status(204)
                self.finish()
            else:
                self.finish(b"[]")
            return
        self.finish(orjson.dumps([_record(version, ip, mac, fake.floors.get(ip, FLOOR),
                                          int(fake.clock() * 1000))]))


def _record(version: str, ip: str, mac: str, floor: int, now_ms: int) -> dict[str, object]:
    if version == "v2":
        return notify.v2_client(mac, ip, floor, X_FT, Y_FT, now_ms)
    record = notify.movement(Fix(0, 0.0, floor, X_FT, Y_FT, 0.0), mac, ip, 0, now_ms)
    record["notificationType"] = "locationupdate"
    del record["moveDistanceInFt"]
    return record


def make_app(fake: FakeCmx) -> tornado.web.Application:
    """The fake CMX as a Tornado application."""
    return tornado.web.Application(
        [(r"/api/location/(v2|v3)/clients/?", _ClientsHandler, {"fake": fake})],
        log_function=_quiet)


def _quiet(handler: tornado.web.RequestHandler) -> None:
    """No access log: injected failures are on purpose, and look-ups are many."""


def start(fake: FakeCmx) -> tuple[HTTPServer, str]:
    """Serve fake on 127.0.0.1 (a free port); the server and its "host:port" for cmx.hosts."""
    sock, port = bind_unused_port()
    server = HTTPServer(make_app(fake))
    server.add_sockets([sock])
    return server, f"127.0.0.1:{port}"


def refusing_host() -> str:
    """A "host:port" on 127.0.0.1 where nothing listens (connections are refused)."""
    sock, port = bind_unused_port()
    sock.close()
    return f"127.0.0.1:{port}"


async def serve_forever(host: str, port: int, fake: FakeCmx) -> None:
    """Run the fake CMX until SIGTERM or SIGINT."""
    server = make_app(fake).listen(port, address=host, xheaders=False)
    try:
        await until_stopped()
    finally:
        server.stop()
