"""CMX notification envelope → typed events (DESIGN section 5). Pure: no I/O.

Tolerances beyond DESIGN, in one place so the README can quote them:

- ``notificationType`` is matched case-insensitively (some senders write ``InOut``).
- ``floorId`` falls back to ``floorRefId``; an integer string is parsed exactly; any
  other string, or an integer outside the signed 64-bit range, becomes a stable
  key in [-2**62, 2**62) from BLAKE2b of its text, so it still works as a floor key
  and fits a PostgreSQL bigint.  An integral float is accepted; ``""``/null → None.
- ``timestamp`` may be a number, a numeric string or an ISO 8601 date; a value
  ≤ 0 counts as absent.  Dates without a UTC offset are read as UTC.  A time more
  than 5 minutes ahead of the receive time is replaced by it and counted in
  ``Batch.future_ts`` (a CMX clock off by minutes: the server needs NTP, and so does CMX).
- A ``movement`` without ``moveDistanceInFt`` is measured as a straight line.
- Coordinate units FEET/FOOT/FT (default) and METERS/METRES/METER/METRE/M; any
  other unit, or a coordinate beyond ±1e9 ft, is malformed.
- A type outside the known set is a zone visit when it carries a non-empty
  ``locationMapHierarchy`` (``association``/``absence`` never are), else ignored.
- A zone is the whole ``locationMapHierarchy`` path (``Campus>Building>Floor>Zone``),
  stripped and cut to 255 characters: last elements alone ("Entrance") collide.
- Legacy MSE ``{"MovementEvent": {...}}`` / ``{"StreamingNotification": {...}}``: see
  ``legacy_mse.from_legacy`` for the fields read.
"""

from __future__ import annotations

from collections.abc import Container
from typing import Any

from tys_server.core.events import Batch, Event, EventSink, Movement, ZoneVisit
from tys_server.core.macs import CANONICAL_MAC, ZERO_MAC, normalise_mac
from tys_server.core.units import M_PER_FT
from tys_server.feeds.cmx_fields import (
    FUTURE_TOLERANCE_S,
    INT64_MAX,
    INT64_MIN,
    SECONDS_BELOW,
    Malformed,
    event_time,
    read_floor,
    read_number,
)
from tys_server.feeds.legacy_mse import LEGACY_KEYS, from_legacy

MAX_COORDINATE_FT = 1e9
_MIN_COORDINATE_FT = -MAX_COORDINATE_FT  # bound once: -MAX_COORDINATE_FT makes a float per use
ZONE_MAX_CHARS = 255
_PLAIN_NUMBERS = (float, int)  # exact types: bool is not a number here
_PLAIN_MAX = 1e18  # bounds a plain number; beyond it (or NaN) the general path decides

_LOCATION_LABELS = frozenset({"movement", "locationupdate"})
_ZONE_LABELS = frozenset({"inout", "areachange", "containment"})
_IGNORED_LABELS = frozenset({"association", "absence"})
_KNOWN_LABELS = _LOCATION_LABELS | _ZONE_LABELS | _IGNORED_LABELS
_FEET_UNITS = frozenset({"", "FEET", "FOOT", "FT"})
_METRE_UNITS = frozenset({"METERS", "METRES", "METER", "METRE", "M"})


class EnvelopeError(ValueError):
    """The body is not a JSON object with a "notifications" list (nor a legacy MSE one)."""


def ingest(sink: EventSink, body: object, now_s: float) -> Batch:
    """Read a decoded CMX body received at now_s and apply it; raises EnvelopeError."""
    batch = parse_envelope(body, now_s, sink.tracks)
    sink.ingest(batch, now_s)
    return batch


def parse_envelope(body: object, now_s: float, known_macs: Container[str] = ()) -> Batch:
    """Read a decoded CMX body received at now_s; raise EnvelopeError if it is no envelope.

    known_macs: MACs already checked to be canonical (the tracked devices), which the
    fast path then need not match against the pattern again.
    """
    events: list[Event] = []
    by_type: dict[tuple[str, str], int] = {}
    accepted = ignored = rejected = future = 0
    plain_moves = plain_updates = 0  # accepted by _plain_movement, counted at the end
    # One bad clock must not freeze a device as "stale" for hours: a future time is
    # replaced by the receive time, and counted.
    future_limit_s = now_s + FUTURE_TOLERANCE_S
    for entry in _entries(body):
        if type(entry) is dict:
            kind = entry.get("notificationType")
            if kind == "movement" or kind == "locationupdate":
                movement = _plain_movement(entry, kind == "movement", known_macs)
                if movement is not None:
                    if movement.ts > future_limit_s:
                        movement.ts = now_s
                        future += 1
                    events.append(movement)
                    if kind == "movement":
                        plain_moves += 1
                    else:
                        plain_updates += 1
                    continue
        label = _label(entry)
        try:
            event = _read(label, entry, now_s)
        except Malformed:
            outcome = "rejected"
            rejected += 1
        else:
            if event is None:
                outcome = "ignored"
                ignored += 1
            else:
                outcome = "accepted"
                accepted += 1
                if event.ts > future_limit_s:
                    event.ts = now_s
                    future += 1
                events.append(event)
        key = (label, outcome)
        by_type[key] = by_type.get(key, 0) + 1
    for kind, count in (("movement", plain_moves), ("locationupdate", plain_updates)):
        if count:
            accepted += count
            key = (kind, "accepted")
            by_type[key] = by_type.get(key, 0) + count
    return Batch(events, accepted, ignored, rejected, by_type, future)


def _plain_movement(entry: dict[str, Any], with_distance: bool,
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
            mac not in known_macs and (not CANONICAL_MAC.fullmatch(mac) or mac == ZERO_MAC)):
        return None
    unit: Any = coordinate.get("unit")
    if not (type(x_ft) in _PLAIN_NUMBERS and type(y_ft) in _PLAIN_NUMBERS
            and _MIN_COORDINATE_FT <= x_ft <= MAX_COORDINATE_FT
            and _MIN_COORDINATE_FT <= y_ft <= MAX_COORDINATE_FT
            and (unit == "FEET" or unit is None)
            and type(floor) is int and INT64_MIN <= floor <= INT64_MAX
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
    if ts >= SECONDS_BELOW:
        ts /= 1000.0
    return Movement(mac, floor, float(x_ft), float(y_ft), move_ft, ts)


def _entries(body: object) -> list[object]:
    if not isinstance(body, dict):
        raise EnvelopeError("body is not a JSON object")
    entries = body.get("notifications")
    if isinstance(entries, list):
        return entries
    if "notifications" in body:
        raise EnvelopeError('"notifications" is not a list')
    for key in LEGACY_KEYS:
        if key in body:
            inner = body[key]
            return [from_legacy(inner) if isinstance(inner, dict) else inner]
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
    """The event of one entry, None when its type is ignored; raises Malformed."""
    if label == "unknown" or not isinstance(entry, dict):
        raise Malformed
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
        raise Malformed
    x_ft = read_number(coordinate.get("x"))
    y_ft = read_number(coordinate.get("y"))
    unit = coordinate.get("unit")
    if unit is not None and unit != "FEET":
        if not isinstance(unit, str):
            raise Malformed
        unit = unit.strip().upper()
        if unit in _METRE_UNITS:
            x_ft /= M_PER_FT
            y_ft /= M_PER_FT
        elif unit not in _FEET_UNITS:
            raise Malformed
    if abs(x_ft) > MAX_COORDINATE_FT or abs(y_ft) > MAX_COORDINATE_FT:
        raise Malformed
    floor_value = entry.get("floorId")
    if floor_value is None or floor_value == "":
        floor_value = entry.get("floorRefId")
    move_ft = None
    if with_distance:
        raw = entry.get("moveDistanceInFt")
        if raw is not None:
            move_ft = read_number(raw)
            if move_ft < 0.0:
                raise Malformed
    return Movement(mac, read_floor(floor_value), x_ft, y_ft, move_ft, event_time(entry, now_s))


def _zone_visit(entry: dict[str, object], now_s: float) -> ZoneVisit:
    mac = normalise_mac(entry.get("deviceId"))
    hierarchy = entry.get("locationMapHierarchy")
    if mac is None or not isinstance(hierarchy, str):
        raise Malformed
    # PostgreSQL text cannot hold NUL: one such name would poison every flush.
    zone = hierarchy.replace("\x00", "").strip()[:ZONE_MAX_CHARS]
    if not zone:
        raise Malformed
    return ZoneVisit(mac, zone, event_time(entry, now_s))
