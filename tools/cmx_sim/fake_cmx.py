"""A fake CMX location API (v2 and v3 ``clients?ipAddress=``) for the simulated devices.

v2 answers a list of client records carrying ``macAddress``, or 204 with no body for an
unknown IP; v3 answers a list of stored notifications carrying ``deviceId``, or ``[]``.
MACs are served raw, as a CMX does: the TYS server hashes them itself when
``cmx.mac_hash_key`` is set. Failures and latency can be injected to rehearse fail-over.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import random
import signal
import time
from collections.abc import Iterable

import orjson
import tornado.web

from tools.cmx_sim import notify
from tools.cmx_sim.devices import Device
from tools.cmx_sim.venue import Fix


@dataclasses.dataclass(frozen=True)
class FakeCmxOptions:
    """Credentials (no check when username is empty) and injected misbehaviour."""

    username: str = ""
    password: str = ""
    latency_ms: float = 0.0
    fail_rate: float = 0.0  # share of look-ups answered 500
    garbage_rate: float = 0.0  # share answered 200 with a body that is not JSON
    seed: int = 0


class Directory:
    """IP → device, shared with a running ``walk`` so registrations see its devices."""

    def __init__(self, devices: Iterable[Device] = ()) -> None:
        self._by_ip: dict[str, Device] = {}
        self.add(devices)

    def add(self, devices: Iterable[Device]) -> None:
        """Make devices known (a later device with the same IP replaces the earlier)."""
        for device in devices:
            self._by_ip[device.ip] = device

    def get(self, ip: str) -> Device | None:
        """The device holding ip, or None."""
        return self._by_ip.get(ip)

    def __len__(self) -> int:
        return len(self._by_ip)


class _ClientsHandler(tornado.web.RequestHandler):
    def initialize(self, directory: Directory, options: FakeCmxOptions, rng: random.Random,
                   version: int) -> None:
        self.directory, self.options, self.rng, self.version = directory, options, rng, version

    def _authorised(self) -> bool:
        if not self.options.username:
            return True
        header = self.request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            pair = base64.b64decode(header[6:], validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return pair == f"{self.options.username}:{self.options.password}"

    async def get(self) -> None:
        if not self._authorised():
            self.set_status(401)
            self.set_header("WWW-Authenticate", 'Basic realm="CMX"')
            self.finish({"error": "unauthorised"})
            return
        opts = self.options
        if opts.latency_ms > 0:
            await asyncio.sleep(opts.latency_ms / 1000)
        draw = self.rng.random()
        if draw < opts.fail_rate:
            self.set_status(500)
            self.finish({"error": "simulated failure"})
            return
        if draw < opts.fail_rate + opts.garbage_rate:
            self.set_header("Content-Type", "application/json")
            self.finish(b"<html>not json{")
            return
        device = self.directory.get(self.get_query_argument("ipAddress", "").strip())
        self.set_header("Content-Type", "application/json")
        if device is None:
            if self.version == 2:
                self.set_status(204)
                self.finish()
            else:
                self.finish(b"[]")
            return
        self.finish(orjson.dumps([self._record(device)]))

    def _record(self, device: Device) -> dict[str, object]:
        now_ms = int(time.time() * 1000)
        if self.version == 2:
            return notify.v2_client(device.mac, device.ip, device.floor, 300.0, 200.0, now_ms)
        fix = Fix(device.index, 0.0, device.floor, 300.0, 200.0, 0.0)
        record = notify.movement(fix, device.mac, device.ip, 0, now_ms)
        record["notificationType"] = "locationupdate"
        del record["moveDistanceInFt"]
        return record


def make_app(directory: Directory, options: FakeCmxOptions) -> tornado.web.Application:
    """The fake CMX Tornado application."""
    rng = random.Random(f"fake-cmx-{options.seed}")
    common = {"directory": directory, "options": options, "rng": rng}
    return tornado.web.Application([
        (r"/api/location/v2/clients/?", _ClientsHandler, {**common, "version": 2}),
        (r"/api/location/v3/clients/?", _ClientsHandler, {**common, "version": 3}),
    ], log_function=_quiet)


def _quiet(handler: tornado.web.RequestHandler) -> None:
    """No access log: injected failures are on purpose, and look-ups are many."""


async def serve_forever(host: str, port: int, directory: Directory,
                        options: FakeCmxOptions) -> None:
    """Run the fake CMX until SIGTERM or SIGINT."""
    server = make_app(directory, options).listen(port, address=host, xheaders=False)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        server.stop()
