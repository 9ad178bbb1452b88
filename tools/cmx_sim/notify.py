"""CMX JSON as the real thing sends it: movement notifications, batches, v2 client records."""

from __future__ import annotations

import datetime
import math
from typing import Any

import orjson

from tools.cmx_sim.venue import Fix

SUBSCRIPTION = "tys-sim"
VENUE_NAME = "Venue"
BUILDING_NAME = "Building"
# CMX floor ids are 18-digit integers; one per simulated floor.
_FLOOR_ID_BASE = 723413320329068590
# Where the simulated venue's (0, 0) corner is on the globe, for geoCoordinate.
_ORIGIN_LAT, _ORIGIN_LON = 38.8408, -117.2060
_FT_PER_DEG_LAT = 364_000.0
_AP_GRID_FT = 100.0  # one access point per 100 x 100 ft cell


def floor_id(floor: int) -> int:
    """The 18-digit CMX floorId of simulated floor `floor`."""
    return _FLOOR_ID_BASE + floor


def hierarchy(floor: int) -> str:
    """locationMapHierarchy of a floor, e.g. ``Venue>Building>Floor 2``."""
    return f"{VENUE_NAME}>{BUILDING_NAME}>Floor {floor}"


def last_seen(epoch_ms: int) -> str:
    """CMX's lastSeen format: ``2026-11-27T10:00:00.123+0000`` (UTC)."""
    when = datetime.datetime.fromtimestamp(epoch_ms / 1000, tz=datetime.UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{epoch_ms % 1000:03d}+0000"


def ap_mac(floor: int, x_ft: float, y_ft: float) -> str:
    """The access point nearest to (x, y): one per grid cell, stable across the run."""
    gx, gy = int(x_ft // _AP_GRID_FT), int(y_ft // _AP_GRID_FT)
    return f"00:2b:01:{floor % 256:02x}:{gx % 256:02x}:{gy % 256:02x}"


def movement(fix: Fix, device_id: str, ip: str, event_id: int, epoch_ms: int,
             ssid: str = "#clus") -> dict[str, Any]:
    """A movement notification with the field set of a real CMX 10.x subscription."""
    lat = _ORIGIN_LAT + fix.y_ft / _FT_PER_DEG_LAT
    lon = _ORIGIN_LON + fix.x_ft / (_FT_PER_DEG_LAT * math.cos(math.radians(_ORIGIN_LAT)))
    fid = floor_id(fix.floor)
    return {
        "notificationType": "movement",
        "subscriptionName": SUBSCRIPTION,
        "eventId": event_id,
        "locationMapHierarchy": hierarchy(fix.floor),
        "locationCoordinate": {"x": round(fix.x_ft, 2), "y": round(fix.y_ft, 2),
                               "z": 0.0, "unit": "FEET"},
        "geoCoordinate": {"latitude": round(lat, 7), "longitude": round(lon, 7),
                          "unit": "DEGREES"},
        "confidenceFactor": 56.0,
        "apMacAddress": ap_mac(fix.floor, fix.x_ft, fix.y_ft),
        "associated": True,
        "username": "",
        "ipAddress": [ip],
        "ssid": ssid,
        "band": "IEEE_802_11_B",
        "floorId": fid,
        "floorRefId": str(fid),
        "entity": "WIRELESS_CLIENTS",
        "deviceId": device_id,
        "lastSeen": last_seen(epoch_ms),
        "rawUserId": "",
        "timestamp": epoch_ms,
        "moveDistanceInFt": round(fix.move_ft, 2),
    }


def envelope(notifications: list[dict[str, Any]]) -> bytes:
    """The POST body CMX sends: ``{"notifications": [...]}``."""
    return orjson.dumps({"notifications": notifications})


def v2_client(mac: str, ip: str, floor: int, x_ft: float, y_ft: float, epoch_ms: int,
              ssid: str = "#clus") -> dict[str, Any]:
    """One record of ``GET /api/location/v2/clients?ipAddress=`` (CMX 10.x shape)."""
    return {
        "macAddress": mac,
        "mapInfo": {"mapHierarchyString": hierarchy(floor), "floorRefId": floor_id(floor),
                    "floorDimension": {"length": 400.0, "width": 600.0, "height": 10.0,
                                       "offsetX": 0.0, "offsetY": 0.0, "unit": "FEET"}},
        "mapCoordinate": {"x": round(x_ft, 2), "y": round(y_ft, 2), "z": 0.0, "unit": "FEET"},
        "currentlyTracked": True,
        "confidenceFactor": 56.0,
        "statistics": {"currentServerTime": last_seen(epoch_ms),
                       "firstLocatedTime": last_seen(epoch_ms),
                       "lastLocatedTime": last_seen(epoch_ms),
                       "maxDetectedRssi": {"apMacAddress": ap_mac(floor, x_ft, y_ft),
                                           "band": "IEEE_802_11_B", "slot": 0, "rssi": -52,
                                           "antennaIndex": 0, "lastHeardInSeconds": 1}},
        "historyLogReason": None,
        "geoCoordinate": None,
        "networkStatus": "ACTIVE",
        "changedOn": epoch_ms,
        "ipAddress": [ip],
        "userName": "",
        "ssId": ssid,
        "sourceTimestamp": None,
        "band": "IEEE_802_11_B",
        "apMacAddress": ap_mac(floor, x_ft, y_ft),
        "dot11Status": "ASSOCIATED",
        "manufacturer": None,
        "areaGlobalIdList": [floor_id(floor)],
        "detectingControllers": "10.0.0.2",
        "bytesSent": 0,
        "bytesReceived": 0,
        "guestUser": False,
    }
