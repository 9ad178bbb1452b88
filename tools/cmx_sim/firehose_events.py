"""Cisco Spaces Firehose event records, shaped like real output (shared by the fake and tests).

Shapes follow Cisco's Sample Events page and a public capture: an ``EventRecord`` with
``recordUid``, ``recordTimestamp`` (epoch ms), the tenant fields and ``eventType``; a
DEVICE_LOCATION_UPDATE's location chain FLOOR → BUILDING → CAMPUS → ROOT, ``mapId: ""``,
``latitude``/``longitude`` −999 and the MAC raw. ``Quirks`` switches on variations of real
output.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any, Literal

from tools.cmx_sim.devices import Device
from tools.cmx_sim.venue import Fix

TENANT = {"spacesTenantId": "spaces-tenant-5a1e", "spacesTenantName": "TYS Simulation",
          "partnerTenantId": "tys-sim"}
IpQuirk = Literal["plain", "empty", "not_applicable"]
_uids = itertools.count(1)


@dataclasses.dataclass(frozen=True)
class Quirks:
    """Variations of real DEVICE_LOCATION_UPDATE output (−999 lat/lng and mapId "" always)."""

    ipv4: IpQuirk = "plain"  # "empty": "", "not_applicable": "NOT APPLICABLE"
    unpadded_mac: bool = False  # "00:52:bf:74:b:00": octets without their leading zero
    mac_withheld: bool = False  # macAddress "" (Spaces' privacy settings): deviceId only


def next_uid(prefix: str = "event") -> str:
    """A recordUid no other event of this process has."""
    return f"{prefix}-{next(_uids):08x}"


def floor_location_id(floor: int) -> str:
    """The Spaces locationId of simulated floor `floor`."""
    return f"location-fl{floor:04d}"


def location_chain(floor: int) -> dict[str, Any]:
    """The ``location`` of an event on `floor`: FLOOR with its parents up to ROOT."""
    node: dict[str, Any] = {"locationId": "location-root", "name": "Root",
                            "inferredLocationTypes": ["ROOT"], "sourceLocationId": ""}
    for location_id, name, kind in (("location-campus", "Campus", "CAMPUS"),
                                    ("location-bldg", "Building", "BUILDING"),
                                    (floor_location_id(floor), f"Floor {floor}", "FLOOR")):
        node = {"locationId": location_id, "name": name, "inferredLocationTypes": [kind],
                "parent": node, "sourceLocationId": ""}
    return node


_SHARED_CHAINS: dict[int, dict[str, Any]] = {}


def shared_location_chain(floor: int) -> dict[str, Any]:
    """location_chain(floor), built once: shared by every record made with it (never change
    it); the simulator sends hundreds of thousands of events."""
    chain = _SHARED_CHAINS.get(floor)
    if chain is None:
        chain = _SHARED_CHAINS[floor] = location_chain(floor)
    return chain


def _record(kind: str, uid: str, record_ms: int) -> dict[str, Any]:
    return {"recordUid": uid, "recordTimestamp": record_ms, **TENANT, "eventType": kind}


def _device(mac: str, quirks: Quirks) -> dict[str, Any]:
    shown = mac
    if quirks.unpadded_mac:
        shown = ":".join(octet[1:] if octet[0] == "0" else octet for octet in mac.split(":"))
    return {"deviceId": "device-" + mac.replace(":", ""), "userId": "", "tags": [],
            "macAddress": "" if quirks.mac_withheld else shown, "manufacturer": "",
            "os": "", "type": "NOT_AVAILABLE"}


def location_update(mac: str, floor: int, x: float, y: float, *, record_ms: int,
                    last_seen_ms: int | None = None, ip: str = "", uid: str | None = None,
                    quirks: Quirks = Quirks(),
                    location: dict[str, Any] | None = None) -> dict[str, Any]:
    """A DEVICE_LOCATION_UPDATE; x/y in the unit the test or simulator means (feet usually).

    location: the location chain (default: a fresh location_chain(floor)).
    """
    ipv4 = {"plain": ip, "empty": "", "not_applicable": "NOT APPLICABLE"}[quirks.ipv4]
    record = _record("DEVICE_LOCATION_UPDATE", uid or next_uid(), record_ms)
    record["deviceLocationUpdate"] = {
        "device": _device(mac, quirks), "location": location or location_chain(floor),
        "ssid": "#tys", "rawUserId": "", "visitId": "visit-" + mac.replace(":", ""),
        "lastSeen": record_ms if last_seen_ms is None else last_seen_ms,
        "deviceClassification": "", "mapId": "", "xPos": x, "yPos": y,
        "confidenceFactor": 56.0, "latitude": -999.0, "longitude": -999.0, "unc": 0.0,
        "maxDetectedRssi": -61, "ipv4": ipv4, "ipv6": []}
    return record


def device_exit(mac: str, *, record_ms: int, uid: str | None = None) -> dict[str, Any]:
    """A DEVICE_EXIT: Spaces saw no activity of the device for hours."""
    record = _record("DEVICE_EXIT", uid or next_uid(), record_ms)
    record["deviceExit"] = {"device": _device(mac, Quirks()), "visitId": "visit-0",
                            "visitDurationMinutes": 95, "deviceClassification": ""}
    return record


def keep_alive(record_ms: int) -> dict[str, Any]:
    """The KEEP_ALIVE Spaces sends about every 15 s."""
    return _record("KEEP_ALIVE", next_uid("keepalive"), record_ms)


def from_fix(fix: Fix, device: Device, epoch_ms: int, quirks: Quirks = Quirks()) -> dict[str, Any]:
    """A simulated fix (x/y in feet) as the DEVICE_LOCATION_UPDATE Spaces would send."""
    return location_update(device.mac, fix.floor, round(fix.x_ft, 5), round(fix.y_ft, 5),
                           record_ms=epoch_ms, ip=device.ip, quirks=quirks,
                           location=shared_location_chain(fix.floor))
