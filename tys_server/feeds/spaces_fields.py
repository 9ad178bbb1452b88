"""Field readers of Cisco Spaces Firehose events (DESIGN 12.2): units, times, opaque ids.

Pure functions for ``spaces_events``: the coordinate unit's feet, the FLOOR level of a
location chain, an event's time from its first readable field, ``recordTimestamp`` as a
cursor, and a ``deviceId`` that is no MAC in the form of a hashed MAC.
"""

from __future__ import annotations

import hashlib
import math

from tys_server.core.units import M_PER_FT
from tys_server.feeds.cmx_fields import SECONDS_BELOW, Malformed, epoch_s

_FEET_UNITS = frozenset({"FEET", "FOOT", "FT"})
_METRE_UNITS = frozenset({"METERS", "METRES", "METER", "METRE", "M"})
_MAX_LOCATION_DEPTH = 16  # FLOOR sits 1-2 levels up; ROOT is ~5 levels up
# Integers a float holds exactly: below this an epoch time is read as epoch_s reads it
# (float(n) / 1000); orjson reads larger ones as floats.
EXACT_INT_BELOW = 1 << 53


def unit_factor_ft(unit: str) -> float:
    """Feet per unit of the configured coordinate_unit; ValueError for an unknown unit."""
    name = unit.strip().upper()
    if name in _FEET_UNITS:
        return 1.0
    if name in _METRE_UNITS:
        return 1.0 / M_PER_FT
    raise ValueError(f"coordinate_unit must be FEET or METERS, not {unit!r}")


def floor_location_id(location: object) -> str:
    """The locationId of the first level of the chain that is a FLOOR; Malformed if none."""
    node = location
    for _ in range(_MAX_LOCATION_DEPTH):
        if type(node) is not dict:
            break
        types = node.get("inferredLocationTypes")
        if type(types) is list and "FLOOR" in types:
            location_id = node.get("locationId")
            if not isinstance(location_id, str) or not location_id.strip():
                raise Malformed
            return location_id
        node = node.get("parent")
    raise Malformed


def event_time(first: object, second: object, now_s: float) -> float:
    """Epoch seconds of first, else of second, else now_s (a future time as it is)."""
    ts = None
    for value in (first, second):
        if value is not None and value != "":
            ts = epoch_s(value)
            if ts is not None:
                break
    return now_s if ts is None else ts


def read_record_ms(value: object) -> int | None:
    """recordTimestamp as epoch ms: a number, or a digit string (proto3 JSON's int64)."""
    if type(value) is int:
        ms = value
    elif type(value) is float and math.isfinite(value):
        ms = int(value)
    elif type(value) is str and value.isascii() and value.isdigit():
        ms = int(value)
    else:
        return None
    return ms if ms >= SECONDS_BELOW else None  # seconds or garbage: not a cursor


def opaque_id_mac(device_id: str, key: str) -> str:
    """A Spaces deviceId that is no MAC, in the form of a hashed MAC (DESIGN 9)."""
    digest = hashlib.sha1((device_id + key).encode("utf-8", "surrogatepass")).hexdigest()[-8:]
    return "00:00:" + ":".join(digest[i:i + 2] for i in range(0, 8, 2))
