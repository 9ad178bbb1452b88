"""CMX notification envelope → typed events (DESIGN section 5). Pure: no I/O.

Tolerances beyond DESIGN, in one place so the README can quote them:

- ``notificationType`` is matched case-insensitively (some senders write ``InOut``).
- ``floorId`` falls back to ``floorRefId``; an integer string is parsed exactly; any
  other string, or an integer outside the signed 64-bit range, becomes a stable
  key in [-2**62, 2**62) from BLAKE2b of its text, so it still works as a floor key
  and fits a PostgreSQL bigint.  An integral float is accepted; ``""``/null → None.
- ``timestamp`` may be a number, a numeric string or an ISO 8601 date; a value
  ≤ 0 counts as absent.  Dates without a UTC offset are read as UTC.
- A ``movement`` without ``moveDistanceInFt`` is measured as a straight line.
- Coordinate units FEET/FOOT/FT (default) and METERS/METRES/METER/METRE/M; any
  other unit, or a coordinate beyond ±1e9 ft, is malformed.
- A type outside the known set is a zone visit when it carries a non-empty
  ``locationMapHierarchy`` (``association``/``absence`` never are), else ignored.
- A zone is the whole ``locationMapHierarchy`` path (``Campus>Building>Floor>Zone``),
  stripped and cut to 255 characters: last elements alone ("Entrance") collide.
- Legacy MSE ``{"MovementEvent": {...}}`` / ``{"StreamingNotification": {...}}``: see
  ``_from_legacy`` for the fields read.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Container
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tys_server.units import M_PER_FT

FUTURE_TOLERANCE_S = 300.0
MAX_COORDINATE_FT = 1e9
ZONE_MAX_CHARS = 255
_SECONDS_BELOW = 1e11  # epoch values below this are seconds, not milliseconds
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1
_PLAIN_NUMBERS = (float, int)  # exact types: bool is not a number here
_PLAIN_MAX = 1e18  # bounds a plain number; beyond it (or NaN) the general path decides

# Spelled out: the same language as [0-9a-f]{2}(?::[0-9a-f]{2}){5}, matched ~30% faster.
_CANONICAL_MAC = re.compile(":".join(["[0-9a-f][0-9a-f]"] * 6))
_ANY_MAC = re.compile(
    r"[0-9a-f]{2}([:-]?)[0-9a-f]{2}(?:\1[0-9a-f]{2}){4}|[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}",
    re.ASCII | re.IGNORECASE,
)
_MAC_SEPARATORS = str.maketrans("", "", ":-.")
_INTEGER_TEXT = re.compile(r"[+-]?[0-9]{1,20}", re.ASCII)

_LOCATION_LABELS = frozenset({"movement", "locationupdate"})
_ZONE_LABELS = frozenset({"inout", "areachange", "containment"})
_IGNORED_LABELS = frozenset({"association", "absence"})
_KNOWN_LABELS = _LOCATION_LABELS | _ZONE_LABELS | _IGNORED_LABELS
_FEET_UNITS = frozenset({"", "FEET", "FOOT", "FT"})
_METRE_UNITS = frozenset({"METERS", "METRES", "METER", "METRE", "M"})
_LEGACY_KEYS = ("MovementEvent", "StreamingNotification")


class EnvelopeError(ValueError):
    """The body is not a JSON object with a "notifications" list (nor a legacy MSE one)."""


# Events are not frozen dataclasses: a frozen one pays an object.__setattr__ per field,
# about a microsecond per event, and a CMX batch carries dozens of them.
@dataclass(slots=True)
class Movement:
    """A device's position: from ``movement`` (move_ft set) or ``locationupdate``."""

    mac: str
    floor: int | None
    x_ft: float
    y_ft: float
    move_ft: float | None
    ts: float


@dataclass(slots=True)
class ZoneVisit:
    """A device seen in a zone (``inout``, ``areachange``, ``containment``, …)."""

    mac: str
    zone: str
    ts: float


Event = Movement | ZoneVisit


@dataclass(slots=True)
class Batch:
    """The events of one envelope and what became of each entry."""

    events: list[Event]
    accepted: int
    ignored: int
    rejected: int
    by_type: dict[tuple[str, str], int]


class _Malformed(Exception):
    """Internal: the entry being read is malformed (counted rejected)."""


def normalise_mac(value: object) -> str | None:
    """A MAC in any usual spelling → "aa:bb:cc:dd:ee:ff"; None if it is not one."""
    if not isinstance(value, str):
        return None
    if _CANONICAL_MAC.fullmatch(value):
        return value
    text = value.strip()
    if not _ANY_MAC.fullmatch(text):
        return None
    h = text.translate(_MAC_SEPARATORS).lower()
    return f"{h[0:2]}:{h[2:4]}:{h[4:6]}:{h[6:8]}:{h[8:10]}:{h[10:12]}"


def parse_envelope(body: object, now_s: float, known_macs: Container[str] = ()) -> Batch:
    """Read a decoded CMX body received at now_s; raise EnvelopeError if it is no envelope.

    known_macs: MACs already checked to be canonical (the tracked devices), which the
    fast path then need not match against the pattern again.
    """
    events: list[Event] = []
    by_type: dict[tuple[str, str], int] = {}
    accepted = ignored = rejected = 0
    plain_moves = plain_updates = 0  # accepted by _plain_movement, counted at the end
    for entry in _entries(body):
        if type(entry) is dict:
            kind = entry.get("notificationType")
            if kind == "movement" or kind == "locationupdate":
                movement = _plain_movement(entry, kind == "movement", now_s, known_macs)
                if movement is not None:
                    events.append(movement)
                    if kind == "movement":
                        plain_moves += 1
                    else:
                        plain_updates += 1
                    continue
        label = _label(entry)
        try:
            event = _read(label, entry, now_s)
        except _Malformed:
            outcome = "rejected"
            rejected += 1
        else:
            if event is None:
                outcome = "ignored"
                ignored += 1
            else:
                outcome = "accepted"
                accepted += 1
                events.append(event)
        key = (label, outcome)
        by_type[key] = by_type.get(key, 0) + 1
    for kind, count in (("movement", plain_moves), ("locationupdate", plain_updates)):
        if count:
            accepted += count
            key = (kind, "accepted")
            by_type[key] = by_type.get(key, 0) + count
    return Batch(events, accepted, ignored, rejected, by_type)


def _plain_movement(entry: dict[str, Any], with_distance: bool, now_s: float,
                    known_macs: Container[str]) -> Movement | None:
    """The shape CMX sends almost always, read in one go; None: take the general path.

    Accepts only what _movement would accept unchanged: a canonical MAC, numeric x/y in
    feet, an int64 floorId, a non-negative distance (or none) and an epoch timestamp.
    """
    try:  # subscripts, not .get(): the fields are there in all but odd entries
        mac: Any = entry["deviceId"]
        coordinate: Any = entry["locationCoordinate"]
        x_ft: Any = coordinate["x"]
        y_ft: Any = coordinate["y"]
        floor: Any = entry["floorId"]
        stamp: Any = entry["timestamp"]
    except (KeyError, TypeError):  # a field missing, or a coordinate that is no mapping
        return None
    if type(mac) is not str or type(coordinate) is not dict or (
            mac not in known_macs and not _CANONICAL_MAC.fullmatch(mac)):
        return None
    unit: Any = coordinate.get("unit")
    if not (type(x_ft) in _PLAIN_NUMBERS and type(y_ft) in _PLAIN_NUMBERS
            and -MAX_COORDINATE_FT <= x_ft <= MAX_COORDINATE_FT
            and -MAX_COORDINATE_FT <= y_ft <= MAX_COORDINATE_FT
            and (unit == "FEET" or unit is None)
            and type(floor) is int and _INT64_MIN <= floor <= _INT64_MAX
            and type(stamp) in _PLAIN_NUMBERS
            and 0 < stamp <= _PLAIN_MAX):
        return None
    move_ft: Any = None
    if with_distance:
        move_ft = entry.get("moveDistanceInFt")
        if move_ft is not None:
            if type(move_ft) not in _PLAIN_NUMBERS or not 0 <= move_ft <= _PLAIN_MAX:
                return None
            move_ft = float(move_ft)
    ts = float(stamp)
    if ts >= _SECONDS_BELOW:
        ts /= 1000.0
    if ts > now_s + FUTURE_TOLERANCE_S:
        ts = now_s
    return Movement(mac, floor, float(x_ft), float(y_ft), move_ft, ts)


def _entries(body: object) -> list[object]:
    if not isinstance(body, dict):
        raise EnvelopeError("body is not a JSON object")
    entries = body.get("notifications")
    if isinstance(entries, list):
        return entries
    if "notifications" in body:
        raise EnvelopeError('"notifications" is not a list')
    for key in _LEGACY_KEYS:
        if key in body:
            inner = body[key]
            return [_from_legacy(inner) if isinstance(inner, dict) else inner]
    raise EnvelopeError('body has no "notifications" list')


def _label(entry: object) -> str:
    """The bounded type label of an entry: safe as a Prometheus label value."""
    if not isinstance(entry, dict):
        return "unknown"
    kind = entry.get("notificationType")
    if not isinstance(kind, str) or not kind:
        return "unknown"
    if kind in _KNOWN_LABELS:
        return kind
    kind = kind.lower()
    return kind if kind in _KNOWN_LABELS else "other"


def _read(label: str, entry: object, now_s: float) -> Event | None:
    """The event of one entry, None when its type is ignored; raises _Malformed."""
    if label == "unknown" or not isinstance(entry, dict):
        raise _Malformed
    if label in _LOCATION_LABELS:
        return _movement(entry, label == "movement", now_s)
    if label in _ZONE_LABELS:
        return _zone_visit(entry, now_s)
    if label == "other":
        hierarchy = entry.get("locationMapHierarchy")
        if isinstance(hierarchy, str) and hierarchy.strip():
            return _zone_visit(entry, now_s)
    return None


def _movement(entry: dict[str, object], with_distance: bool, now_s: float) -> Movement:
    mac = normalise_mac(entry.get("deviceId"))
    coordinate = entry.get("locationCoordinate")
    if mac is None or not isinstance(coordinate, dict):
        raise _Malformed
    x_ft = _number(coordinate.get("x"))
    y_ft = _number(coordinate.get("y"))
    unit = coordinate.get("unit")
    if unit is not None and unit != "FEET":
        if not isinstance(unit, str):
            raise _Malformed
        unit = unit.strip().upper()
        if unit in _METRE_UNITS:
            x_ft /= M_PER_FT
            y_ft /= M_PER_FT
        elif unit not in _FEET_UNITS:
            raise _Malformed
    if abs(x_ft) > MAX_COORDINATE_FT or abs(y_ft) > MAX_COORDINATE_FT:
        raise _Malformed
    floor_value = entry.get("floorId")
    if floor_value is None or floor_value == "":
        floor_value = entry.get("floorRefId")
    move_ft = None
    if with_distance:
        raw = entry.get("moveDistanceInFt")
        if raw is not None:
            move_ft = _number(raw)
            if move_ft < 0.0:
                raise _Malformed
    return Movement(mac, _floor(floor_value), x_ft, y_ft, move_ft, _event_time(entry, now_s))


def _zone_visit(entry: dict[str, object], now_s: float) -> ZoneVisit:
    mac = normalise_mac(entry.get("deviceId"))
    hierarchy = entry.get("locationMapHierarchy")
    if mac is None or not isinstance(hierarchy, str):
        raise _Malformed
    # PostgreSQL text cannot hold NUL: one such name would poison every flush.
    zone = hierarchy.replace("\x00", "").strip()[:ZONE_MAX_CHARS]
    if not zone:
        raise _Malformed
    return ZoneVisit(mac, zone, _event_time(entry, now_s))


def _number(value: object) -> float:
    """A finite float from a JSON number or numeric string (never a bool)."""
    if type(value) is float:
        result = value
    elif isinstance(value, (int, float, str)) and not isinstance(value, bool):
        try:
            result = float(value)
        except (ValueError, OverflowError):  # "abc", or an int beyond float range
            raise _Malformed from None
    else:
        raise _Malformed
    if not math.isfinite(result):
        raise _Malformed
    return result


def _floor(value: object) -> int | None:
    """floorId as an exact int (see the module docstring for the other forms)."""
    if type(value) is int:
        if _INT64_MIN <= value <= _INT64_MAX:
            return value
        try:
            return _floor_key(str(value))
        except ValueError:  # more digits than int→str allows
            raise _Malformed from None
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if _INTEGER_TEXT.fullmatch(text):
            number = int(text)
            if _INT64_MIN <= number <= _INT64_MAX:
                return number
            return _floor_key(str(number))
        return _floor_key(text)
    if isinstance(value, float) and value.is_integer():
        return _floor(int(value))
    if isinstance(value, int) and not isinstance(value, bool):
        return _floor(int(value))
    raise _Malformed


def _floor_key(text: str) -> int:
    """A stable signed 63-bit key for a floorId that is not a 64-bit integer."""
    digest = hashlib.blake2b(
        text.encode("utf-8", "surrogatepass"), digest_size=8, person=b"tys.floorId"
    ).digest()
    return int.from_bytes(digest, "big", signed=True) >> 1


def _event_time(entry: dict[str, object], now_s: float) -> float:
    """Event time in epoch seconds: timestamp, else lastSeen, else now_s; never future."""
    ts = None
    value = entry.get("timestamp")
    if value is not None and value != "":
        ts = _epoch_s(value)
    if ts is None:
        value = entry.get("lastSeen")
        if value is not None and value != "":
            ts = _epoch_s(value)
    if ts is None or ts > now_s + FUTURE_TOLERANCE_S:
        return now_s
    return ts


def _epoch_s(value: object) -> float | None:
    """Epoch seconds from ms, seconds (< 1e11) or an ISO date; None when not after 1970."""
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            seconds = _iso_date_s(value)
            return seconds if seconds > 0.0 else None
        if not math.isfinite(number):
            raise _Malformed
    else:
        number = _number(value)
    if number <= 0.0:
        return None
    return number if number < _SECONDS_BELOW else number / 1000.0


def _iso_date_s(text: str) -> float:
    """``2017-10-30T05:36:37.241+0000`` (space for T, Z, +00:00 also) → epoch seconds."""
    try:
        moment = datetime.fromisoformat(text.strip())
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.timestamp()
    except (ValueError, OverflowError):
        raise _Malformed from None


def _from_legacy(inner: dict[str, object]) -> dict[str, object]:
    """A legacy MSE notification rewritten with the CMX field names read above.

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
