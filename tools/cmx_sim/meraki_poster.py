"""Meraki's Scanning API v3 poster, faked: bodies as the Meraki cloud sends them, POSTed.

Shared by the tests and the simulator. Meraki POSTs once a minute per network; each
observation is one client with the fixes computed since the last POST (several per
client), x/y in metres as strings, ``variance`` about 2-2.5 m (Meraki's own figure for
v3), ``floorPlanId`` like ``g_643451796760560979`` and ISO-8601 times to the second
(shape from developer.cisco.com/meraki/scanning-api/3-0). ``Quirks`` switches on the
variations of real output that a receiver must take.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import random
from collections import Counter
from collections.abc import Iterable
from typing import Any, Literal

import orjson

from tools.cmx_sim.devices import Device
from tools.cmx_sim.httpclient import HttpConnection, HttpError, encode_request
from tools.cmx_sim.notify import ap_mac
from tools.cmx_sim.venue import M_PER_FT, Fix

NETWORK_ID = "L_000000000000000001"
VERSION = "3.0"
_FLOOR_PLAN_BASE = 643451796760560900  # floor plan ids are "g_" + 18 digits
_ORIGIN_LAT, _ORIGIN_LNG = 60.0534, 6.0957  # where the venue's (0, 0) is on the globe
_M_PER_DEG_LAT = 111_320.0
IpStyle = Literal["plain", "slash", "null"]


@dataclasses.dataclass(frozen=True)
class Quirks:
    """Variations seen in real Scanning API output; the defaults are Meraki's usual v3."""

    early_v3: bool = False  # floorplanId / floorplanName / unc instead of floorPlanId / variance
    string_coordinates: bool = True  # x/y as "1.5"; False: JSON numbers
    ipv4: IpStyle = "plain"  # "10.0.0.5"; "slash": "/10.0.0.5" (v2 style); "null": null
    idle_clients: bool = False  # clients without a fix since the last POST: locations []
    bluetooth: bool = False  # each WiFi POST is followed by a Bluetooth POST
    repeats: int = 0  # each client's last n fixes of the previous POST are sent again
    version: str = VERSION


@dataclasses.dataclass(frozen=True)
class Sighting:
    """One fix of one client, in epoch seconds."""

    mac: str
    ip: str
    floor: int
    x_ft: float
    y_ft: float
    epoch_s: float


def floor_plan_id(floor: int) -> str:
    """The floorPlanId of simulated floor `floor`."""
    return f"g_{_FLOOR_PLAN_BASE + floor}"


def iso_time(epoch_s: float) -> str:
    """Meraki's time format, whole seconds: ``2019-11-28T14:27:21Z``."""
    moment = datetime.datetime.fromtimestamp(int(epoch_s), tz=datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def location(sighting: Sighting, variance_m: float, quirks: Quirks = Quirks()) -> dict[str, Any]:
    """One entry of an observation's locations[]."""
    x_m, y_m = sighting.x_ft * M_PER_FT, sighting.y_ft * M_PER_FT
    lat = _ORIGIN_LAT + y_m / _M_PER_DEG_LAT
    lng = _ORIGIN_LNG + x_m / (_M_PER_DEG_LAT * math.cos(math.radians(_ORIGIN_LAT)))
    near = ap_mac(sighting.floor, sighting.x_ft, sighting.y_ft)
    entry: dict[str, Any] = {
        "x": repr(x_m) if quirks.string_coordinates else x_m,
        "y": repr(y_m) if quirks.string_coordinates else y_m,
        "lat": lat, "lng": lng,
        "time": iso_time(sighting.epoch_s),
        "nearestApTags": ["", "TYS-SIM", ""],
        "rssiRecords": [{"apMac": near, "rssi": -48},
                        {"apMac": ap_mac(sighting.floor, sighting.x_ft + 100, sighting.y_ft),
                         "rssi": -61},
                        {"apMac": ap_mac(sighting.floor, sighting.x_ft, sighting.y_ft + 100),
                         "rssi": -67}],
    }
    plan, name = floor_plan_id(sighting.floor), f"Floor {sighting.floor}"
    if quirks.early_v3:
        entry |= {"floorplanId": plan, "floorplanName": name, "unc": variance_m}
    else:
        entry |= {"floorPlanId": plan, "floorPlanName": name, "variance": variance_m}
    return entry


def observation(mac: str, ip: str, locations: list[dict[str, Any]],
                quirks: Quirks = Quirks()) -> dict[str, Any]:
    """One client of a POST, its fixes since the last POST in locations[]."""
    ipv4 = {"plain": ip, "slash": "/" + ip, "null": None}[quirks.ipv4]
    last = locations[-1]["time"] if locations else None
    return {"clientMac": mac, "ipv4": ipv4, "ipv6": None, "ssid": "#clus", "os": "iOS",
            "manufacturer": "Apple", "locations": locations,
            "latestRecord": {"time": last, "nearestApMac": "aa:aa:aa:44:44:44",
                             "nearestApRssi": "-47"}}


def body(observations: list[dict[str, Any]], secret: str, quirks: Quirks = Quirks(),
         kind: str = "WiFi", network_id: str = NETWORK_ID) -> dict[str, Any]:
    """The POST body: meta fields at the root, the observations under data."""
    return {"version": quirks.version, "secret": secret, "type": kind,
            "data": {"networkId": network_id, "observations": observations}}


class MerakiPoster:
    """Collects fixes and POSTs one v3 body per interval with the fixes since the last."""

    def __init__(self, url: str, secret: str, *, quirks: Quirks = Quirks(), seed: int = 1,
                 interval_s: float = 60.0, timeout_s: float = 10.0) -> None:
        self.url = url
        self.secret = secret
        self.quirks = quirks
        self.interval_s = interval_s
        self.rng = random.Random(f"meraki-{seed}")
        self.conn = HttpConnection(url, timeout_s)
        self.pending: dict[str, list[dict[str, Any]]] = {}  # MAC → locations since last POST
        self.previous: dict[str, list[dict[str, Any]]] = {}  # MAC → locations of the last POST
        self.ips: dict[str, str] = {}
        self.last_post_s: float | None = None
        self.tally: Counter[str] = Counter()
        self.last_error = ""

    def add(self, sighting: Sighting) -> None:
        """Buffer one fix for the next POST."""
        variance_m = round(self.rng.uniform(2.0, 2.5), 6)
        self.ips[sighting.mac] = sighting.ip
        self.pending.setdefault(sighting.mac, []).append(
            location(sighting, variance_m, self.quirks))

    def add_fix(self, device: Device, fix: Fix, start_epoch_s: float) -> None:
        """Buffer a venue fix (simulated time from start_epoch_s) of a simulated device."""
        self.add(Sighting(device.mac, device.ip, fix.floor, fix.x_ft, fix.y_ft,
                          start_epoch_s + fix.t_s))

    def due(self, epoch_s: float) -> bool:
        """True when an interval has passed since the last POST (the first one: now)."""
        return self.last_post_s is None or epoch_s - self.last_post_s >= self.interval_s

    def take_bodies(self, epoch_s: float) -> list[bytes]:
        """The encoded POSTs of this interval (WiFi, then Bluetooth if on; none when no client
        was seen); clears the buffer."""
        self.last_post_s = epoch_s
        quirks = self.quirks
        observations = []
        macs: Iterable[str] = self.ips if quirks.idle_clients else self.pending
        for mac in macs:
            fresh = self.pending.get(mac, [])
            # The history sent again leads a client's new fixes; an idle client has none.
            again = self.previous.get(mac, [])[-quirks.repeats:] if quirks.repeats and fresh \
                else []
            if fresh or quirks.idle_clients:
                observations.append(observation(mac, self.ips[mac], again + fresh, quirks))
            if fresh:
                self.previous[mac] = fresh
        self.pending = {}
        if not observations:
            return []
        bodies = [orjson.dumps(body(observations, self.secret, quirks))]
        if quirks.bluetooth:
            beacons = [observation(o["clientMac"], "", [], Quirks(ipv4="null"))
                       for o in observations]
            bodies.append(orjson.dumps(body(beacons, self.secret, quirks, kind="Bluetooth")))
        return bodies

    async def post(self, raw_body: bytes) -> tuple[int, bytes]:
        """POST one encoded body; (0, b"") when no reply came. Replies are tallied."""
        self.tally["posts"] += 1
        try:
            status, reply = await self.conn.request(encode_request("POST", self.url, None,
                                                                   raw_body))
        except HttpError as exc:
            self.tally["post_errors"] += 1
            self.last_error = str(exc)
            return 0, b""
        if status != 200:
            self.tally["post_errors"] += 1
            self.last_error = f"HTTP {status} {reply[:120]!r}"
            return status, reply
        try:
            counts = orjson.loads(reply)
            for key in ("accepted", "ignored", "rejected"):
                self.tally[key] += int(counts.get(key, 0))
        except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
            self.tally["post_errors"] += 1
            self.last_error = f"unexpected reply {reply[:120]!r}"
        return status, reply

    async def flush(self, epoch_s: float) -> list[tuple[int, bytes]]:
        """POST what this interval holds; the replies, in order."""
        return [await self.post(raw) for raw in self.take_bodies(epoch_s)]

    async def aclose(self) -> None:
        """Close the connection (at the end of a run)."""
        await self.conn.aclose()

