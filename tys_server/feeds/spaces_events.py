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
- ``ipv4``: a private IPv4 yields an ``IpSeen`` (``""``/``"NOT APPLICABLE"``: none), at most
  once a minute for the same device at the same IP (``RESIGHT_S``).
  ``latitude``/``longitude`` (−999: unknown) and ``confidenceFactor`` are not read: a
  Spaces fix's uncertainty in feet is not documented, so it is None.
- ``DEVICE_EXIT`` → ``DeviceExit`` at ``recordTimestamp``; ``KEEP_ALIVE`` and other types
  are counted and ignored. ``recordUid`` duplicates (retries, resumes) are dropped by an
  LRU of the last ``DEDUP_CAPACITY`` uids. A line that is no JSON object is a bad line
  (captures hold lines broken by raw line breaks); a blank line is skipped.

The usual location update is decoded by type (``spaces_typed``, msgspec: the fields above
only); devices, floors and IPs are read once and cached (``spaces_names``); every other
line goes through ``orjson`` and the general path, with the same results.

``by_type`` labels are bounded (Prometheus-safe): the three types read, ``other`` or
``unknown``; outcomes ``accepted``, ``ignored``, ``rejected``, ``duplicate`` (in ``ignored``).
"""
from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Any

import orjson

from tys_server.core.events import Batch, DeviceExit, Event, Fix, IpSeen
from tys_server.feeds.cmx import MAX_COORDINATE_FT
from tys_server.feeds.cmx_fields import (
    FUTURE_TOLERANCE_S,
    SECONDS_BELOW,
    Malformed,
    read_number,
)
from tys_server.feeds.spaces_fields import (
    event_time,
    read_record_ms,
    unit_factor_ft,
)
from tys_server.feeds.spaces_names import SpacesNames
from tys_server.feeds.spaces_typed import NOT_USUAL, decode_typed

LOCATION_UPDATE = "DEVICE_LOCATION_UPDATE"
DEVICE_EXIT = "DEVICE_EXIT"
KEEP_ALIVE = "KEEP_ALIVE"
# ~10 minutes of events at 330 events/s (10,000 devices reported every 30 s); about
# 30 MB of uid strings at the bound. Counted, not timed: a burst after a resume must not
# let a replayed uid fall out of the window early because the clock moved.
DEDUP_CAPACITY = 200_000
_LABELS = frozenset({LOCATION_UPDATE, DEVICE_EXIT, KEEP_ALIVE})
# A device seen again at the same IP within this long is not told again (another device
# there, at once): the IP map's sighting is at most this much older than the feed's newest
# (lookup.observed_ttl_s is 30 minutes by default), and a venue's devices, reported every
# few seconds, cost one IpSeen a minute, not a dozen (~0.5 us a line of the bench's).
RESIGHT_S = 60.0


# A location update's fields as read: device id as stored, floor key, x ft, y ft, and
# lastSeen, recordTimestamp and ipv4 as sent.
_Fields = tuple[str, int, float, float, Any, Any, Any]


class _Tally:
    """read()'s counts of the lines its general path took, and their newest record time."""

    __slots__ = ("counts", "ignored", "rejected", "other_accepted", "other_device_lines",
                 "newest_ms")

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str], int] = {}
        self.ignored = self.rejected = self.other_accepted = self.other_device_lines = 0
        self.newest_ms: int | None = None

    def count(self, label: str, outcome: str) -> None:
        key = (label, outcome)
        self.counts[key] = self.counts.get(key, 0) + 1

    def refused(self) -> None:
        """A location update refused (a field unreadable or out of range)."""
        self.other_device_lines += 1
        self.rejected += 1
        self.count(LOCATION_UPDATE, "rejected")


class SpacesReader:
    """Firehose lines → batches of events; keeps the dedup window and running counts."""

    def __init__(self, *, coordinate_unit: str = "FEET", hash_key: str = "",
                 dedup_capacity: int = DEDUP_CAPACITY) -> None:
        self.ft_per_unit = unit_factor_ft(coordinate_unit)
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
        self.names = SpacesNames(hash_key)  # devices, floors and IPs as read, cached

    def read(self, lines: Iterable[bytes], now_s: float) -> tuple[Batch, int | None]:
        """The batch of lines received at now_s, and the newest sane recordTimestamp (ms)."""
        # The per-line loop is the Firehose's hot path (tools/bench_feeds.py): names are
        # bound once per call and the counts kept in locals. A usual location update (most
        # lines) is decoded by type (spaces_typed) and read here, its device and floor from
        # the caches; any other line (a first sighting, another type, an odd value) goes
        # through orjson and the general path, _line.
        events: list[Event] = []
        append = events.append
        tally = _Tally()
        located = future = 0
        newest_ms: int | None = None
        latest_s = now_s + FUTURE_TOLERANCE_S
        newest_allowed_ms = latest_s * 1000.0
        future_before = self.future_ts
        seen, order, capacity = self._seen, self._seen_order, self.dedup_capacity
        names, unit = self.names, self.ft_per_unit
        scaled = unit != 1.0
        devices, floors, ips, sighted = names.devices, names.floors, names.ips, names.sighted
        resight_s, decode = RESIGHT_S, decode_typed
        for line in lines:
            try:
                usual = decode(line)
            except NOT_USUAL:
                usual = None
            mac = floor = None
            if usual is not None and usual.recordUid not in seen:
                update = usual.deviceLocationUpdate
                level = update.location
                mac = devices.get(update.device.macAddress)
                if "FLOOR" in level.inferredLocationTypes:
                    floor = floors.get(level.locationId)
                x_ft, y_ft = update.xPos, update.yPos
                if scaled:
                    x_ft, y_ft = x_ft * unit, y_ft * unit
                if (x_ft > MAX_COORDINATE_FT or x_ft < -MAX_COORDINATE_FT
                        or y_ft > MAX_COORDINATE_FT or y_ft < -MAX_COORDINATE_FT):
                    floor = None  # the general path refuses it
            if mac is not None and floor is not None:
                uid, record_ts = usual.recordUid, usual.recordTimestamp  # type: ignore[union-attr]
                seen.add(uid)
                order.append(uid)
                if len(order) > capacity:
                    seen.remove(order.popleft())
                if record_ts <= newest_allowed_ms and (newest_ms is None or record_ts > newest_ms):
                    newest_ms = record_ts
                # lastSeen: an int in (0, 2**53), as the typed decode checked: epoch ms or s.
                last_seen, ip_text = update.lastSeen, update.ipv4
                ts = float(last_seen) if last_seen < SECONDS_BELOW else last_seen / 1000.0
                if ts > latest_s:  # a clock off by minutes: never "stale" for hours
                    ts = now_s
                    future += 1
            else:
                fields = self._line(line, now_s, events, tally)
                if fields is None:
                    continue
                mac, floor, x_ft, y_ft, last_seen, record_ts, ip_text = fields
                try:
                    ts = self._event_ts(last_seen, record_ts, now_s)
                except Malformed:  # an unreadable time
                    tally.refused()
                    continue
                except Exception as exc:  # a bug met on one line: that line is bad
                    self._device_line_failed(tally, exc)
                    continue
            mark = len(events)
            try:
                append(Fix(mac, floor, x_ft, y_ft, None, ts))
                if type(ip_text) is str:
                    ip = ips.get(ip_text, "")
                    if ip == "":
                        ip = names.private_ip(ip_text)  # "NOT APPLICABLE": None
                    if ip is not None:
                        told = sighted.get(ip)
                        if told is None or told[0] != mac or ts - told[1] >= resight_s:
                            sighted[ip] = (mac, ts)
                            append(IpSeen(ip, mac, ts))
            except Exception as exc:  # a bug met on one line: that line is bad, not the chunk
                del events[mark:]
                self._device_line_failed(tally, exc)
                continue
            located += 1
        counts = tally.counts
        if located:
            key = (LOCATION_UPDATE, "accepted")
            counts[key] = counts.get(key, 0) + located
        totals = self.by_type
        for key, count in counts.items():
            totals[key] = totals.get(key, 0) + count
        self.device_lines += located + tally.other_device_lines
        self.future_ts += future
        if tally.newest_ms is not None and (newest_ms is None or tally.newest_ms > newest_ms):
            newest_ms = tally.newest_ms
        return Batch(events, located + tally.other_accepted, tally.ignored, tally.rejected,
                     counts, self.future_ts - future_before), newest_ms

    def _line(self, line: bytes, now_s: float, events: list[Event],
              tally: _Tally) -> _Fields | None:
        """Any line but a usual location update read by type: counted in tally (and its
        event appended) or, for a location update, its fields for read()'s own tail."""
        try:
            record: Any = orjson.loads(line)
        except ValueError:  # orjson.JSONDecodeError: not JSON, truncated, NaN, 1e400
            if line and not line.isspace():  # a blank line is skipped, not bad
                self.bad_lines += 1
            return None
        if type(record) is not dict:
            self.bad_lines += 1
            return None
        kind = record.get("eventType")
        if kind == LOCATION_UPDATE:
            label = LOCATION_UPDATE
        elif type(kind) is str:  # a list or an object is no type and cannot be looked up
            label = kind if kind in _LABELS else "other"
        else:
            label = "unknown"
        uid = record.get("recordUid")
        if type(uid) is str and uid:
            if uid in self._seen:
                tally.count(label, "duplicate")
                tally.ignored += 1
                return None
            self._seen.add(uid)
            self._seen_order.append(uid)
            if len(self._seen_order) > self.dedup_capacity:
                self._seen.remove(self._seen_order.popleft())
        record_ts = record.get("recordTimestamp")
        record_ms = read_record_ms(record_ts)
        if record_ms is not None and record_ms <= (now_s + FUTURE_TOLERANCE_S) * 1000.0 and (
                tally.newest_ms is None or record_ms > tally.newest_ms):
            tally.newest_ms = record_ms
        if label == LOCATION_UPDATE:
            return self._location_update(record, record_ts, tally)
        if label == DEVICE_EXIT:
            tally.other_device_lines += 1
            outcome = self._device_exit(record, now_s, events)
            if outcome is None:
                return None
            if outcome == "accepted":
                tally.other_accepted += 1
            else:
                tally.rejected += 1
        else:
            outcome = "ignored"
            tally.ignored += 1
        tally.count(label, outcome)
        return None

    def _location_update(self, record: dict[str, Any], record_ts: object,
                         tally: _Tally) -> _Fields | None:
        """A location update's fields (device, floor and IP cached as read), or None when
        it is refused (counted) or a bug meets it (a bad line)."""
        try:
            payload = record.get("deviceLocationUpdate")
            if type(payload) is not dict:
                raise Malformed
            get = payload.get
            mac = self.names.device(get("device"))
            floor = self.names.floor(get("location"))
            x, y = get("xPos"), get("yPos")
            # orjson's floats are finite (it refuses NaN and 1e400); anything else is read
            x_ft = (x if type(x) is float else read_number(x)) * self.ft_per_unit
            y_ft = (y if type(y) is float else read_number(y)) * self.ft_per_unit
            if abs(x_ft) > MAX_COORDINATE_FT or abs(y_ft) > MAX_COORDINATE_FT:
                raise Malformed
        except Malformed:
            tally.refused()
            return None
        except Exception as exc:  # a bug met on one line: that line is bad, not the chunk
            self._device_line_failed(tally, exc)
            return None
        return mac, floor, x_ft, y_ft, get("lastSeen"), record_ts, get("ipv4")

    def _device_line_failed(self, tally: _Tally, error: Exception) -> None:
        """A device's line the reader failed on: a device line, and a bad one."""
        tally.other_device_lines += 1
        self._bad_line(error)

    def _bad_line(self, error: Exception) -> None:
        """A line the reader failed on: counted bad, its error kept for the consumer's log."""
        self.bad_lines += 1
        self.line_error = error

    def _device_exit(self, record: dict[str, Any], now_s: float,
                     events: list[Event]) -> str | None:
        """A DEVICE_EXIT line: "accepted" (a DeviceExit), "rejected", or None (a bad line)."""
        try:
            payload = record.get("deviceExit")
            if type(payload) is not dict:
                raise Malformed
            mac = self.names.device(payload.get("device"))
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
