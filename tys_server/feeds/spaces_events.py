"""Cisco Spaces Firehose NDJSON lines → typed events (DESIGN 12.2). Pure: no I/O, no clock.

A line is one ``EventRecord``: ``recordUid``, ``recordTimestamp`` (epoch ms), ``eventType``
and a payload named after the type. Facts from Cisco's documentation (developer.cisco.com/
docs/cisco-spaces-firehose: HTTP Streaming, Sample Events, Best Practices), Cisco's sample
consumers (CiscoDevNet/DNASpaces-FirehoseAPI-*) and a public capture:

- ``DEVICE_LOCATION_UPDATE`` → ``Fix`` (Spaces reports on a timer: the state gates it).
  Device: ``device.macAddress``, normalised leniently (``00:52:bf:74:b:00``), hashed with
  the MAC hash key (raw without one); when Spaces withholds the MAC, ``device.deviceId``:
  hashed the same way if it is a MAC, else ``00:00:`` + the last 8 hex digits of
  SHA-1(deviceId + key), the form of a hashed MAC (the schema stores a ``macaddr``).
- Floor: the ``locationId`` of the first level of the ``location`` chain whose
  ``inferredLocationTypes`` holds ``FLOOR`` (``mapId`` is often ``""``), keyed from
  ``spaces:<locationId>`` like an odd CMX floorId. No FLOOR level: rejected (x/y are
  relative to a floor map).
- ``xPos``/``yPos`` in the configured unit (FEET by default, as Cisco's sample consumers
  read them; METERS converted), numbers or numeric strings; NaN, infinities, other
  values and beyond ±1e9 ft: rejected.
- Time: ``lastSeen``, else ``recordTimestamp``; over 5 minutes ahead → the receive time,
  counted in ``future_ts`` (clock skew).
- ``ipv4``: a private IPv4 yields an ``IpSeen`` (``""``/``"NOT APPLICABLE"``: none).
  ``latitude``/``longitude`` (−999: unknown) and ``confidenceFactor`` are not read: a
  Spaces fix's uncertainty in feet is not documented, so it is None.
- ``DEVICE_EXIT`` → ``DeviceExit`` at ``recordTimestamp``; ``KEEP_ALIVE`` and other types
  are counted and ignored. ``recordUid`` duplicates (retries, resumes) are dropped by an
  LRU of the last ``DEDUP_CAPACITY`` uids. A line that is no JSON object is a bad line
  (captures hold lines broken by raw line breaks); a blank line is skipped.

``by_type`` labels are bounded (Prometheus-safe): the three types read, ``other`` or
``unknown``; outcomes ``accepted``, ``ignored``, ``rejected``, ``duplicate`` (in ``ignored``).
"""
from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Any

import orjson

from tys_server.core.addresses import private_ipv4
from tys_server.core.events import Batch, DeviceExit, Event, Fix, IpSeen
from tys_server.core.macs import hash_mac, normalise_mac
from tys_server.feeds.cmx import MAX_COORDINATE_FT
from tys_server.feeds.cmx_fields import (
    FUTURE_TOLERANCE_S,
    SECONDS_BELOW,
    Malformed,
    floor_key,
    read_number,
)
from tys_server.feeds.spaces_fields import (
    event_time,
    floor_location_id,
    opaque_id_mac,
    read_record_ms,
    unit_factor_ft,
)

LOCATION_UPDATE = "DEVICE_LOCATION_UPDATE"
DEVICE_EXIT = "DEVICE_EXIT"
KEEP_ALIVE = "KEEP_ALIVE"
FLOOR_NAMESPACE = "spaces:"
# ~10 minutes of events at 330 events/s (10,000 devices reported every 30 s); about
# 30 MB of uid strings at the bound. Counted, not timed: a burst after a resume must not
# let a replayed uid fall out of the window early because the clock moved.
DEDUP_CAPACITY = 200_000
_LABELS = frozenset({LOCATION_UPDATE, DEVICE_EXIT, KEEP_ALIVE})
_FLOOR_CACHE_MAX = 4096
# A venue's devices and IPs repeat every few seconds: their readings are cached (cleared
# when full, so bounded); parsing an IP and hashing a MAC cost more than the JSON.
_CACHE_MAX = 1 << 18
_FAST_INT_BELOW = 1 << 53  # ints a float holds exactly: float(n) / 1000 as epoch_s does it


class SpacesReader:
    """Firehose lines → batches of events; keeps the dedup window and running counts."""

    def __init__(self, *, coordinate_unit: str = "FEET", hash_key: str = "",
                 dedup_capacity: int = DEDUP_CAPACITY) -> None:
        self.ft_per_unit = unit_factor_ft(coordinate_unit)
        self.hash_key = hash_key
        self.dedup_capacity = dedup_capacity
        self.by_type: dict[tuple[str, str], int] = {}  # since start, for the metrics
        self.bad_lines = 0
        # The newest exception a line raised (counted in bad_lines), for the consumer to log.
        self.line_error: Exception | None = None
        self.device_lines = 0  # DEVICE_* lines read (not duplicates): "quiet" watches it
        self.future_ts = 0  # event times over 5 minutes ahead, replaced (since start)
        # The dedup window: its uids, and the same in arrival order (the oldest leave first).
        self._seen: set[str] = set()
        self._seen_order: deque[str] = deque()
        self._floors: dict[str, int] = {}
        self._devices: dict[str, str] = {}  # macAddress or deviceId text → id as stored
        self._ips: dict[str, str | None] = {}  # ipv4 text → the private IPv4, or None

    def read(self, lines: Iterable[bytes], now_s: float) -> tuple[Batch, int | None]:
        """The batch of lines received at now_s, and the newest sane recordTimestamp (ms)."""
        # The per-line loop is the Firehose's hot path (tools/bench_feeds.py). Names are
        # bound once per call and the usual counts kept in locals. A location update, most
        # lines, is read inline; its device, floor and IP come from the caches, and only
        # one not cached yet (or malformed) goes through the methods below.
        events: list[Event] = []
        append = events.append
        counts: dict[tuple[str, str], int] = {}
        located = ignored = rejected = other_accepted = device_lines = future = 0
        newest_ms: int | None = None
        latest_s = now_s + FUTURE_TOLERANCE_S
        newest_allowed_ms = latest_s * 1000.0
        future_before = self.future_ts
        seen, order, capacity, loads = (self._seen, self._seen_order, self.dedup_capacity,
                                        orjson.loads)
        devices, floors, ips, unit = self._devices, self._floors, self._ips, self.ft_per_unit
        for line in lines:
            try:
                record: Any = loads(line)
            except ValueError:  # orjson.JSONDecodeError: not JSON, truncated, NaN, 1e400
                if line and not line.isspace():  # a blank line is skipped, not bad
                    self.bad_lines += 1
                continue
            if type(record) is not dict:
                self.bad_lines += 1
                continue
            kind = record.get("eventType")
            if kind == LOCATION_UPDATE:
                label = LOCATION_UPDATE
            elif type(kind) is str:  # a list or an object is no type and cannot be looked up
                label = kind if kind in _LABELS else "other"
            else:
                label = "unknown"
            uid = record.get("recordUid")
            if type(uid) is str and uid:
                if uid in seen:
                    ignored += 1
                    key = (label, "duplicate")
                    counts[key] = counts.get(key, 0) + 1
                    continue
                seen.add(uid)
                order.append(uid)
                if len(order) > capacity:
                    seen.remove(order.popleft())
            record_ts = record.get("recordTimestamp")
            record_ms = (record_ts if type(record_ts) is int and record_ts >= SECONDS_BELOW
                         else read_record_ms(record_ts))
            if record_ms is not None and record_ms <= newest_allowed_ms and (
                    newest_ms is None or record_ms > newest_ms):
                newest_ms = record_ms
            if label != LOCATION_UPDATE:
                if label == DEVICE_EXIT:
                    device_lines += 1
                    outcome = self._device_exit(record, now_s, events)
                    if outcome is None:
                        continue
                    if outcome == "accepted":
                        other_accepted += 1
                    else:
                        rejected += 1
                else:
                    outcome = "ignored"
                    ignored += 1
                key = (label, outcome)
                counts[key] = counts.get(key, 0) + 1
                continue
            device_lines += 1
            mark = len(events)
            try:
                payload = record.get("deviceLocationUpdate")
                if type(payload) is not dict:
                    raise Malformed
                get = payload.get
                device = get("device")
                text = device.get("macAddress") if type(device) is dict else None
                mac = devices.get(text) if type(text) is str else None  # "" is never a key
                if mac is None:
                    mac = self._device(device)
                location = get("location")
                floor = None
                if type(location) is dict:  # FLOOR is most often the first level
                    types, location_id = (location.get("inferredLocationTypes"),
                                          location.get("locationId"))
                    if type(types) is list and "FLOOR" in types and type(location_id) is str:
                        floor = floors.get(location_id)
                if floor is None:
                    floor = self._floor(location)
                # orjson's floats are finite (it refuses NaN and 1e400); anything else is read
                x, y = get("xPos"), get("yPos")
                x_ft = (x if type(x) is float else read_number(x)) * unit
                y_ft = (y if type(y) is float else read_number(y)) * unit
                if abs(x_ft) > MAX_COORDINATE_FT or abs(y_ft) > MAX_COORDINATE_FT:
                    raise Malformed
                last_seen = get("lastSeen")
                if type(last_seen) is int and 0 < last_seen < _FAST_INT_BELOW:  # epoch_s's int
                    ts = float(last_seen) if last_seen < SECONDS_BELOW else last_seen / 1000.0
                    if ts > latest_s:  # a clock off by minutes: never "stale" for hours
                        ts = now_s
                        future += 1
                else:
                    ts = self._event_ts(last_seen, record_ts, now_s)
                append(Fix(mac, floor, x_ft, y_ft, None, ts))
                ip_text = get("ipv4")
                if type(ip_text) is str:
                    ip = ips.get(ip_text, "")
                    if ip == "":
                        ip = self._private_ip(ip_text)  # "NOT APPLICABLE": None
                    if ip is not None:
                        append(IpSeen(ip, mac, ts))
            except Malformed:
                rejected += 1
                key = (LOCATION_UPDATE, "rejected")
                counts[key] = counts.get(key, 0) + 1
                continue
            except Exception as exc:  # a bug met on one line: that line is bad, not the chunk
                del events[mark:]
                self._bad_line(exc)
                continue
            located += 1
        if located:
            key = (LOCATION_UPDATE, "accepted")
            counts[key] = counts.get(key, 0) + located
        totals = self.by_type
        for key, count in counts.items():
            totals[key] = totals.get(key, 0) + count
        self.device_lines += device_lines
        self.future_ts += future
        return Batch(events, located + other_accepted, ignored, rejected, counts,
                     self.future_ts - future_before), newest_ms

    def _bad_line(self, error: Exception) -> None:
        """A line the reader failed on: counted bad, its error kept for the consumer's log."""
        self.bad_lines += 1
        self.line_error = error

    def _private_ip(self, text: str) -> str | None:
        """The private IPv4 in a feed's ipv4 text, or None; cached (cleared when full)."""
        if len(self._ips) >= _CACHE_MAX:
            self._ips.clear()
        ip = self._ips[text] = private_ipv4(text)
        return ip

    def _device_exit(self, record: dict[str, Any], now_s: float,
                     events: list[Event]) -> str | None:
        """A DEVICE_EXIT line: "accepted" (a DeviceExit), "rejected", or None (a bad line)."""
        try:
            payload = record.get("deviceExit")
            if type(payload) is not dict:
                raise Malformed
            mac = self._device(payload.get("device"))
            events.append(DeviceExit(mac, self._event_ts(None, record.get("recordTimestamp"),
                                                         now_s)))
        except Malformed:
            return "rejected"
        except Exception as exc:  # a bug met on one line: that line is bad, not the chunk
            self._bad_line(exc)
            return None
        return "accepted"

    def _event_ts(self, first: object, second: object, now_s: float) -> float:
        """The event's time (event_time); over 5 minutes ahead, now_s, counted in future_ts."""
        ts = event_time(first, second, now_s)
        if ts > now_s + FUTURE_TOLERANCE_S:  # a clock off by minutes: never "stale" for hours
            ts = now_s
            self.future_ts += 1
        return ts

    def _device(self, device: object) -> str:
        """The device's id as stored: its MAC (hashed with a key), else its deviceId's."""
        if type(device) is not dict:
            raise Malformed
        cache = self._devices
        text = device.get("macAddress")
        if type(text) is str and text:
            stored = cache.get(text)
            if stored is not None:
                return stored
            mac = normalise_mac(text)
            if mac is not None:
                return self._remember(text, mac)
        text = device.get("deviceId")
        if type(text) is not str or not text.strip():
            raise Malformed
        stored = cache.get(text)
        if stored is not None:
            return stored
        return self._remember(text, normalise_mac(text))

    def _remember(self, text: str, mac: str | None) -> str:
        """The stored id of a MAC (or, None, of an opaque deviceId), cached under text."""
        if mac is None:
            stored = opaque_id_mac(text.strip(), self.hash_key)
        else:
            stored = hash_mac(mac, self.hash_key) if self.hash_key else mac
        if len(self._devices) >= _CACHE_MAX:
            self._devices.clear()
        self._devices[text] = stored
        return stored

    def _floor(self, location: object) -> int:
        """The key of the FLOOR level of the location chain; raises Malformed without one."""
        location_id = floor_location_id(location)
        key = self._floors.get(location_id)
        if key is None:
            if len(self._floors) >= _FLOOR_CACHE_MAX:
                self._floors.clear()
            key = floor_key(FLOOR_NAMESPACE + location_id.strip())
            self._floors[location_id] = key
        return key
