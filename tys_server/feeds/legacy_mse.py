"""Legacy MSE notifications ({"MovementEvent": {...}}, {"StreamingNotification": ...}).

Rewritten into a CMX entry with the field names cmx.py reads. Pure: no I/O.
"""

from __future__ import annotations

LEGACY_KEYS = ("MovementEvent", "StreamingNotification")


def from_legacy(inner: dict[str, object]) -> dict[str, object]:
    """A legacy MSE notification rewritten with the CMX field names cmx.py reads.

    MAC: deviceId, macAddress, location.macAddress.  Position: locationCoordinate,
    mapCoordinate, location.mapCoordinate / MapCoordinate.  Floor: floorId,
    floorRefId, location.mapInfo (or MapInfo).floorRefId.  Zone: locationMapHierarchy,
    mapInfo.mapHierarchyString.  Time: timestampMillis, timestamp, timeStamp, else
    lastSeen, location.statistics.lastLocatedTime.  No notificationType but a
    position → a movement (moveDistanceInFt if present, else a straight line).
    """
    location = _dict(inner.get("location"))
    map_info = _dict(_first(location.get("mapInfo"), location.get("MapInfo")))
    statistics = _dict(location.get("statistics"))
    coordinate = _first(
        inner.get("locationCoordinate"), inner.get("mapCoordinate"),
        location.get("mapCoordinate"), location.get("MapCoordinate"),
        location.get("locationCoordinate"),
    )
    kind = inner.get("notificationType")
    if kind is None and coordinate is not None:
        kind = "movement"
    return {
        "notificationType": kind,
        "deviceId": _first(
            inner.get("deviceId"), inner.get("macAddress"), location.get("macAddress")
        ),
        "locationCoordinate": coordinate,
        "floorId": _first(
            inner.get("floorId"), inner.get("floorRefId"), map_info.get("floorRefId"),
            map_info.get("floorId"),
        ),
        "moveDistanceInFt": inner.get("moveDistanceInFt"),
        "locationMapHierarchy": _first(
            inner.get("locationMapHierarchy"), map_info.get("mapHierarchyString")
        ),
        "timestamp": _first(
            inner.get("timestampMillis"), inner.get("timestamp"), inner.get("timeStamp")
        ),
        "lastSeen": _first(inner.get("lastSeen"), statistics.get("lastLocatedTime")),
    }


def _first(*values: object) -> object:
    for value in values:
        if value is not None:
            return value
    return None


def _dict(value: object) -> dict[str, object]:
    return value if isinstance(value, dict) else {}
