"""Readers of single CMX field values: numbers, floorId, event times. Pure: no I/O.

Each raises Malformed when the value cannot be read; the feed reading the entry (cmx.py,
spaces_events.py, meraki.py) counts it as rejected. The tolerances are listed in cmx.py's
docstring.
"""

from __future__ import annotations

import hashlib
import math
import re
from datetime import UTC, datetime

FUTURE_TOLERANCE_S = 300.0
SECONDS_BELOW = 1e11  # epoch values below this are seconds, not milliseconds
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
_INTEGER_TEXT = re.compile(r"[+-]?[0-9]{1,20}", re.ASCII)


class Malformed(Exception):
    """The value (so the entry being read) is malformed: counted rejected."""


def read_number(value: object) -> float:
    """A finite float from a JSON number or numeric string (never a bool)."""
    if type(value) is float:
        result = value
    elif isinstance(value, (int, float, str)) and not isinstance(value, bool):
        try:
            result = float(value)
        except (ValueError, OverflowError):  # "abc", or an int beyond float range
            raise Malformed from None
    else:
        raise Malformed
    if not math.isfinite(result):
        raise Malformed
    return result


def read_floor(value: object) -> int | None:
    """floorId as an exact int (see the module docstring for the other forms)."""
    if type(value) is int:
        if INT64_MIN <= value <= INT64_MAX:
            return value
        try:
            return floor_key(str(value))
        except ValueError:  # more digits than int→str allows
            raise Malformed from None
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if _INTEGER_TEXT.fullmatch(text):
            number = int(text)
            if INT64_MIN <= number <= INT64_MAX:
                return number
            return floor_key(str(number))
        return floor_key(text)
    if isinstance(value, float) and value.is_integer():
        return read_floor(int(value))
    if isinstance(value, int) and not isinstance(value, bool):
        return read_floor(int(value))
    raise Malformed


def floor_key(text: str) -> int:
    """A stable signed 63-bit key for a floor's text: an odd floorId, or ``meraki:<id>``."""
    digest = hashlib.blake2b(
        text.encode("utf-8", "surrogatepass"), digest_size=8, person=b"tys.floorId"
    ).digest()
    return int.from_bytes(digest, "big", signed=True) >> 1


def event_time(entry: dict[str, object], now_s: float) -> float:
    """Event time in epoch seconds: timestamp, else lastSeen, else now_s.

    A time in the future is returned as it is: the caller replaces it (cmx.parse_envelope
    counts it in Batch.future_ts).
    """
    ts = None
    value = entry.get("timestamp")
    if value is not None and value != "":
        ts = epoch_s(value)
    if ts is None:
        value = entry.get("lastSeen")
        if value is not None and value != "":
            ts = epoch_s(value)
    return now_s if ts is None else ts


def epoch_s(value: object) -> float | None:
    """Epoch seconds from ms, seconds (< 1e11) or an ISO date; None when not after 1970."""
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            seconds = _iso_date_s(value)
            return seconds if seconds > 0.0 else None
        if not math.isfinite(number):
            raise Malformed
    else:
        number = read_number(value)
    if number <= 0.0:
        return None
    return number if number < SECONDS_BELOW else number / 1000.0


def _iso_date_s(text: str) -> float:
    """``2017-10-30T05:36:37.241+0000`` (space for T, Z, +00:00 also) → epoch seconds."""
    try:
        moment = datetime.fromisoformat(text.strip())
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.timestamp()
    except (ValueError, OverflowError):
        raise Malformed from None
