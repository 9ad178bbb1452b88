"""A fake Cisco CMX for tests: a real Tornado app answering the IP→MAC APIs.

``/api/location/v2/clients?ipAddress=`` answers a list of client records carrying
``macAddress``, or 204 with no body when the IP is unknown; ``/api/location/v3/clients``
answers a list of stored notifications carrying ``deviceId``, or ``[]``. Both check HTTP
Basic auth (401 otherwise). A ``FakeCmx`` can also be slow, answer a fixed status, or
answer a fixed (garbage) body, and counts what it was asked.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import time
from typing import Any

from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port
from tornado.web import Application, RequestHandler

USERNAME = "cmx-api"
PASSWORD = "s3cret-cmx"


@dataclasses.dataclass
class FakeCmx:
    """Behaviour of one fake CMX host, and a record of the requests it saw."""

    clients: dict[str, str] = dataclasses.field(default_factory=dict)  # ip → mac
    username: str = USERNAME
    password: str = PASSWORD
    delay_s: float = 0.0  # answer this late (an asyncio sleep, cut short on disconnect)
    status: int | None = None  # answer this status instead of looking up
    body: bytes | None = None  # with status (200 when unset): answer these raw bytes
    requests: int = 0
    seen_ips: list[str] = dataclasses.field(default_factory=list)
    seen_users: list[str | None] = dataclasses.field(default_factory=list)


def _basic_user_password(header: str | None) -> tuple[str, str] | None:
    if not header or not header.startswith("Basic "):
        return None
    try:
        user, _, password = base64.b64decode(header[6:]).decode("utf-8").partition(":")
    except ValueError:
        return None
    return user, password


def v2_record(ip: str, mac: str) -> dict[str, Any]:
    """A v2 client record, trimmed from a real CMX 10.x reply."""
    return {
        "macAddress": mac, "ipAddress": [ip, ""], "ssId": "CiscoLive",
        "mapInfo": {"mapHierarchyString": "Venue>Hall A>Level 1", "floorRefId": 7234234},
        "mapCoordinate": {"x": 103.4, "y": 55.2, "unit": "FEET"},
        "currentlyTracked": True, "confidenceFactor": 40.0, "band": "IEEE_802_11_B",
    }


def v3_notification(ip: str, mac: str) -> dict[str, Any]:
    """A v3 stored notification for the client."""
    return {
        "notificationType": "locationupdate", "subscriptionName": "tys",
        "deviceId": mac, "ipAddress": [ip], "floorId": 723413320329068590,
        "locationCoordinate": {"x": 103.4, "y": 55.2, "z": 0.0, "unit": "FEET"},
        "timestamp": int(time.time() * 1000),
    }


class ClientsHandler(RequestHandler):
    """GET /api/location/(v2|v3)/clients?ipAddress=..."""

    def initialize(self, fake: FakeCmx) -> None:
        self.fake = fake
        self.closed = asyncio.Event()

    def on_connection_close(self) -> None:
        self.closed.set()

    async def get(self, version: str) -> None:
        fake = self.fake
        fake.requests += 1
        credentials = _basic_user_password(self.request.headers.get("Authorization"))
        fake.seen_users.append(credentials[0] if credentials else None)
        ip = self.get_query_argument("ipAddress", "")
        fake.seen_ips.append(ip)
        if fake.delay_s:
            try:
                await asyncio.wait_for(self.closed.wait(), fake.delay_s)
                return  # the client gave up
            except TimeoutError:
                pass
        if credentials != (fake.username, fake.password):
            self.set_header("WWW-Authenticate", 'Basic realm="CMX"')
            self.set_status(401)
            self.finish({"error": "Unauthorized"})
            return
        if fake.status is not None or fake.body is not None:
            self.set_status(fake.status or 200)
            self.finish(fake.body or b"")
            return
        self.set_header("Content-Type", "application/json")
        mac = fake.clients.get(ip)
        if version == "v3":
            self.finish(json.dumps([v3_notification(ip, mac)] if mac else []))
        elif mac:
            self.finish(json.dumps([v2_record(ip, mac)]))
        else:
            self.set_status(204)
            self.finish()


def make_app(fake: FakeCmx) -> Application:
    """The fake CMX as a Tornado application."""
    return Application([(r"/api/location/(v2|v3)/clients", ClientsHandler, {"fake": fake})])


def start(fake: FakeCmx) -> tuple[HTTPServer, str]:
    """Serve fake on 127.0.0.1; returns the server and its "host:port" for cmx.hosts."""
    sock, port = bind_unused_port()
    server = HTTPServer(make_app(fake))
    server.add_sockets([sock])
    return server, f"127.0.0.1:{port}"


def refusing_host() -> str:
    """A "host:port" on 127.0.0.1 where nothing listens (connections are refused)."""
    sock, port = bind_unused_port()
    sock.close()
    return f"127.0.0.1:{port}"
