"""The Firehose's usual line decoded by type (feeds/spaces_typed.py): the fields a usual
location update gives, None (the general path) for every other shape, and a reader that
gives the same batches with that path as without it."""

from __future__ import annotations

from typing import Any
from unittest import mock

import msgspec
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tools.cmx_sim import firehose_events
from tools.cmx_sim.cadence import for_feed
from tools.cmx_sim.devices import make_devices
from tools.cmx_sim.venue import Venue, VenueConfig
from tys_server.feeds import spaces_events
from tys_server.feeds.spaces_events import SpacesReader
from tys_server.feeds.spaces_typed import decode_usual

MAC = "02:00:0a:01:04:59"
FLOOR_ID = firehose_events.floor_location_id(2)
RECORD_MS = 1_795_725_000_123


def line(record: dict[str, Any]) -> bytes:
    return orjson.dumps(record)


def update(**fields: Any) -> dict[str, Any]:
    """A location update as Spaces sends it, with fields of deviceLocationUpdate changed
    (None: the field removed)."""
    record = firehose_events.location_update(MAC, 2, 120.5, 80.25, record_ms=RECORD_MS,
                                             last_seen_ms=RECORD_MS - 900, ip="10.1.4.89",
                                             uid="event-1")
    payload = record["deviceLocationUpdate"]
    for name, value in fields.items():
        if value is None:
            payload.pop(name)
        else:
            payload[name] = value
    return record


def test_a_usual_update_gives_the_fields_the_reader_uses() -> None:
    usual = decode_usual(line(update()))
    assert usual is not None
    fix = usual.deviceLocationUpdate
    assert (usual.recordUid, usual.recordTimestamp, fix.device.macAddress,
            fix.location.locationId, fix.location.inferredLocationTypes, fix.xPos, fix.yPos,
            fix.lastSeen, fix.ipv4) == ("event-1", RECORD_MS, MAC, FLOOR_ID, ["FLOOR"], 120.5,
                                        80.25, RECORD_MS - 900, "10.1.4.89")


def test_numbers_are_read_as_the_general_path_reads_them() -> None:
    text = line(update(xPos=120)).replace(b"80.25", b"12345678901234567890123")
    usual = decode_usual(text)
    assert usual is not None
    fix = usual.deviceLocationUpdate
    assert (fix.xPos, fix.yPos) == (120.0, 1.2345678901234568e22)
    assert orjson.loads(b"12345678901234567890123") == fix.yPos


def test_ipv4_is_passed_as_sent_and_may_be_missing() -> None:
    for ipv4 in ("NOT APPLICABLE", "", ["10.0.0.1"]):
        usual = decode_usual(line(update(ipv4=ipv4)))
        assert usual is not None and usual.deviceLocationUpdate.ipv4 == ipv4
    usual = decode_usual(line(update(ipv4=None)))
    assert usual is not None and usual.deviceLocationUpdate.ipv4 is None


def test_fields_the_reader_does_not_use_are_skipped_unread() -> None:
    text = line(update()).replace(b'"maxDetectedRssi":-61', b'"maxDetectedRssi":1e400')
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(text)  # the general path would call this line bad
    assert decode_usual(text) is not None


@pytest.mark.parametrize("text", [
    b"", b"not json", b"[1, 2]", b'{"recordUid": "event-1"} trailing', b"{}",
    line({**update(), "eventType": "DEVICE_EXIT"}),
    line({**update(), "eventType": "KEEP_ALIVE"}),
    line({**update(), "recordUid": ""}),
    line({**update(), "recordUid": 17}),
    line({**update(), "recordTimestamp": str(RECORD_MS)}),
    line({**update(), "recordTimestamp": 1_795_725_000}),  # seconds: no cursor
    line({**update(), "recordTimestamp": 1 << 60}),  # orjson reads it another way
    line({**update(), "deviceLocationUpdate": "none"}),
    line(update(device=None)),
    line(update(device=["02:00:0a:01:04:59"])),
    line(update(device={"deviceId": "device-1"})),
    line(update(location=None)),
    line(update(location={"locationId": FLOOR_ID, "inferredLocationTypes": "FLOOR"})),
    line(update(location={"locationId": 5, "inferredLocationTypes": ["FLOOR"]})),
    line(update(yPos="80.25")),
    line(update(xPos=True)),
    line(update(xPos=None)),
    line(update(lastSeen="2026-11-26T20:30:00Z")),
    line(update(lastSeen=0)),
    line(update(lastSeen=1 << 60)),
    line(update(lastSeen=1.7e12)),
    line(update()).replace(b"120.5", b"1e400"),
    line(update()).replace(b"120.5", b"NaN"),
])
def test_every_other_shape_is_for_the_general_path(text: bytes) -> None:
    assert decode_usual(text) is None


# --- the reader: the same batch by type as by the general path ---------------------------

TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)  # orjson-readable
VALUE = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | TEXT,
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(TEXT, children, max_size=3), max_leaves=8)
MACS = ["02:00:0a:01:04:59", "00:52:bf:74:b:00", "", "02:00:0A:01:04:5A", "nope"]


@st.composite
def firehose_lines(draw: st.DrawFn) -> bytes:
    """Lines of a few devices: mostly usual location updates (repeats, duplicates,
    other floors and units of time), with odd values, other types and broken lines."""
    kind = draw(st.sampled_from(["usual"] * 6 + ["odd", "exit", "keepalive", "broken"]))
    record_ms = RECORD_MS + draw(st.integers(-600_000, 600_000))
    record = firehose_events.location_update(
        draw(st.sampled_from(MACS)), draw(st.integers(1, 3)),
        draw(st.floats(-1e4, 1e4)), draw(st.floats(-1e4, 1e4)), record_ms=record_ms,
        last_seen_ms=draw(st.sampled_from([record_ms, record_ms // 1000, record_ms + 10**6])),
        ip=draw(st.sampled_from(["10.1.4.89", "", "NOT APPLICABLE", "8.8.8.8"])),
        uid=f"event-{draw(st.integers(0, 12))}")
    if kind == "odd":
        field = draw(st.sampled_from(["xPos", "yPos", "lastSeen", "ipv4", "device", "location"]))
        record["deviceLocationUpdate"][field] = draw(VALUE)
    elif kind == "exit":
        record = firehose_events.device_exit(draw(st.sampled_from(MACS)), record_ms=record_ms,
                                             uid=f"event-{draw(st.integers(0, 12))}")
    elif kind == "keepalive":
        record = firehose_events.keep_alive(record_ms)
    text = orjson.dumps(record)
    return text[:draw(st.integers(0, len(text)))] if kind == "broken" else text


def never_usual(line: bytes) -> Any:
    """The typed decode switched off: every line takes the general path."""
    raise msgspec.ValidationError("not the usual line")


def read_all(reader: SpacesReader, chunks: list[list[bytes]]) -> list[Any]:
    """Every chunk's batch and newest time, then the reader's running counts."""
    out: list[Any] = []
    for chunk in chunks:
        batch, newest_ms = reader.read(chunk, RECORD_MS / 1000)
        out.append((batch, newest_ms))
    return [*out, reader.by_type, reader.bad_lines, reader.device_lines, reader.future_ts]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(firehose_lines(), max_size=8), max_size=4),
       st.sampled_from(["", "listening"]), st.sampled_from(["FEET", "METERS"]))
def test_the_reader_gives_the_same_batches_with_the_usual_path_as_without(
        chunks: list[list[bytes]], key: str, unit: str) -> None:
    typed = read_all(SpacesReader(hash_key=key, coordinate_unit=unit), chunks)
    with mock.patch.object(spaces_events, "decode_typed", never_usual):
        general = read_all(SpacesReader(hash_key=key, coordinate_unit=unit), chunks)
    assert typed == general


def test_only_a_device_s_first_line_takes_the_general_path() -> None:
    devices = make_devices(50, 0, 3, 7, "random")
    venue = Venue(devices, for_feed(VenueConfig(), "firehose"), 7)
    fixes = [fix for t_s in range(1, 61) for fix in venue.step(float(t_s))]
    lines = [orjson.dumps(firehose_events.from_fix(fix, devices[fix.device],
                                                   RECORD_MS + round(fix.t_s * 1000)))
             for fix in fixes]
    with mock.patch.object(SpacesReader, "_line", autospec=True,
                           side_effect=SpacesReader._line) as general:
        batch, _ = SpacesReader().read(lines, RECORD_MS / 1000 + 61)
    assert batch.accepted == len(lines) > 500
    assert general.call_count == len({fix.device for fix in fixes}) == 50
