"""Cisco Spaces Firehose lines (DESIGN 12.2): every field rule, on real-shaped events."""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tools.cmx_sim import fake_firehose
from tys_server.core.events import Batch, DeviceExit, Fix, IpSeen
from tys_server.core.macs import hash_mac
from tys_server.core.units import M_PER_FT
from tys_server.feeds import spaces_events, spaces_names
from tys_server.feeds.cmx_fields import floor_key, read_floor
from tys_server.feeds.lines import LineSplitter
from tys_server.feeds.spaces_events import SpacesReader

# A DEVICE_LOCATION_UPDATE line of a Cisco Spaces "Simulation" tenant, as quoted verbatim in
# a public Pub/Sub test publisher (the shape of Cisco's Sample Events page, developer.cisco
# .com/docs/cisco-spaces-firehose/sample-events, with the quirks of real output: mapId "",
# latitude/longitude -999, lastSeen 21 minutes before recordTimestamp, a FLOOR location
# with its parents up to ROOT).
CAPTURE = orjson.loads(
    b'{"recordUid":"event-f3e19217","recordTimestamp":1641977166586,"spacesTenantId":'
    b'"spaces-tenant-549be59d","spacesTenantName":"Simulation","partnerTenantId":"Simulation'
    b'-Retail","eventType":"DEVICE_LOCATION_UPDATE","deviceLocationUpdate":{"device":{'
    b'"deviceId":"device-qNCqfbaowTbMviFDFEAt2","userId":"","tags":["EmXXXXeeX"],"mobile":"",'
    b'"email":"","gender":"GENDER_NOT_AVAILABLE","firstName":"","lastName":"","postalCode":"",'
    b'"optIns":["TERMS_AND_CONDITIONS"],"attributes":[],"macAddress":"00:39:a7:8f:4a:00",'
    b'"manufacturer":"","os":"Android","osVersion":"","type":"NOT_AVAILABLE",'
    b'"socialNetworkInfo":[],"deviceModel":""},"location":{"locationId":"location-ad0a997",'
    b'"name":"Location - 4081f653","inferredLocationTypes":["FLOOR"],"parent":{"locationId":'
    b'"location-59c7afa3","name":"Location - 6861a1f0","inferredLocationTypes":["NETWORK",'
    b'"BUILDING"],"parent":{"locationId":"location-8df0d359","name":"Location - f9756373",'
    b'"inferredLocationTypes":["CAMPUS"],"parent":{"locationId":"location-a29c1d51","name":'
    b'"Location - 6861a1f0","inferredLocationTypes":["CMX"],"parent":{"locationId":'
    b'"location-e03e5040","name":"Location - 1b03b03b","inferredLocationTypes":["ROOT"],'
    b'"sourceLocationId":"","apCount":3760},"sourceLocationId":"","apCount":221},'
    b'"sourceLocationId":"1496017635452","apCount":221},"sourceLocationId":"733542549725119048"'
    b',"apCount":221},"sourceLocationId":"733542549725119049","apCount":76},"ssid":'
    b'"#XXXeMXXlWXXi","rawUserId":"","visitId":"visit-5648606633851553440","lastSeen":'
    b'1641975908000,"deviceClassification":"","mapId":"","xPos":372.79483,"yPos":210.72083,'
    b'"confidenceFactor":328.0,"latitude":-999.0,"longitude":-999.0,"unc":0.0,'
    b'"maxDetectedRssi":-89,"ipv4":"192.168.36.244","ipv6":[]}}')
MAC = "00:39:a7:8f:4a:00"
FLOOR = floor_key("spaces:location-ad0a997")
LAST_SEEN_S = 1641975908.0
RECORD_MS = 1641977166586
NOW_S = RECORD_MS / 1000 + 2.0  # received two seconds after Spaces made the record
KEY = "listening"


def event(**payload_changes: Any) -> dict[str, Any]:
    """The capture with fields of deviceLocationUpdate changed (None: the field removed)."""
    record = copy.deepcopy(CAPTURE)
    payload = record["deviceLocationUpdate"]
    for name, value in payload_changes.items():
        if value is None:
            payload.pop(name, None)
        else:
            payload[name] = value
    return record


def read(*records: object, reader: SpacesReader | None = None,
         now_s: float = NOW_S) -> tuple[Batch, int | None]:
    lines = [r if isinstance(r, bytes) else orjson.dumps(r) for r in records]
    return (reader or SpacesReader()).read(lines, now_s)


def only_fix(batch: Batch) -> Fix:
    fixes = [e for e in batch.events if isinstance(e, Fix)]
    assert len(fixes) == 1, batch
    return fixes[0]


# --- DEVICE_LOCATION_UPDATE ------------------------------------------------------------

def test_captured_location_update_is_a_fix_at_last_seen_on_its_floor() -> None:
    batch, newest_ms = read(CAPTURE)
    assert batch.events == [Fix(MAC, FLOOR, 372.79483, 210.72083, None, LAST_SEEN_S),
                            IpSeen("192.168.36.244", MAC, LAST_SEEN_S)]
    assert (batch.accepted, batch.ignored, batch.rejected) == (1, 0, 0)
    assert batch.by_type == {("DEVICE_LOCATION_UPDATE", "accepted"): 1}
    assert newest_ms == RECORD_MS


def test_mac_is_hashed_at_the_door_with_the_key() -> None:
    batch, _ = read(CAPTURE, reader=SpacesReader(hash_key=KEY))
    assert {e.mac for e in batch.events} == {hash_mac(MAC, KEY)}
    assert hash_mac(MAC, KEY) != MAC


def test_unpadded_mac_octets_are_read_as_the_padded_mac() -> None:
    device = {**CAPTURE["deviceLocationUpdate"]["device"], "macAddress": "00:52:bf:74:b:00"}
    assert only_fix(read(event(device=device))[0]).mac == "00:52:bf:74:0b:00"


def test_withheld_mac_falls_back_to_the_device_id_in_the_form_of_a_hashed_mac() -> None:
    device = {**CAPTURE["deviceLocationUpdate"]["device"], "macAddress": ""}
    digest = hashlib.sha1(b"device-qNCqfbaowTbMviFDFEAt2" + KEY.encode()).hexdigest()[-8:]
    expected = "00:00:" + ":".join(digest[i:i + 2] for i in range(0, 8, 2))
    batch, _ = read(event(device=device), reader=SpacesReader(hash_key=KEY))
    assert only_fix(batch).mac == expected
    unkeyed = hashlib.sha1(b"device-qNCqfbaowTbMviFDFEAt2").hexdigest()[-8:]
    assert only_fix(read(event(device=device))[0]).mac.replace(":", "")[4:] == unkeyed


def test_device_id_that_is_a_mac_is_hashed_like_a_mac() -> None:
    device = {"deviceId": "00-39-A7-8F-4A-00"}
    batch, _ = read(event(device=device), reader=SpacesReader(hash_key=KEY))
    assert only_fix(batch).mac == hash_mac(MAC, KEY)


@pytest.mark.parametrize("device", [{"macAddress": "00:39:A7:8F:4A:00"}, {"deviceId": "device-7"},
                                    {"macAddress": "", "deviceId": "00-39-a7-8f-4a-00"}])
def test_a_device_seen_again_keeps_its_id(device: dict[str, str]) -> None:
    """The second line's id comes from the reader's cache: the same as the first's."""
    reader = SpacesReader(hash_key=KEY)
    lines = [{**event(device=device), "recordUid": uid} for uid in ("u1", "u2")]
    batch, _ = read(*lines, reader=reader)
    fixes = [e for e in batch.events if isinstance(e, Fix)]
    assert len(fixes) == 2 and fixes[0].mac == fixes[1].mac == \
        only_fix(read(event(device=device), reader=SpacesReader(hash_key=KEY))[0]).mac


@pytest.mark.parametrize("device", [None, "00:39:a7:8f:4a:00", {}, {"deviceId": "  "},
                                    {"macAddress": "", "deviceId": 7}])
def test_event_without_a_device_is_rejected(device: object) -> None:
    batch, newest_ms = read(event(device=device))
    assert (batch.events, batch.rejected) == ([], 1)
    assert batch.by_type == {("DEVICE_LOCATION_UPDATE", "rejected"): 1}
    assert newest_ms == RECORD_MS  # consumed all the same: the cursor moves past it


def test_floor_is_the_floor_level_above_a_zone() -> None:
    floor = CAPTURE["deviceLocationUpdate"]["location"]
    zone = {"locationId": "location-zone1", "name": "Hall A", "inferredLocationTypes": ["ZONE"],
            "parent": floor}
    assert only_fix(read(event(location=zone))[0]).floor == FLOOR


def test_a_floor_read_again_is_the_same_key_whichever_level_it_is() -> None:
    floor = CAPTURE["deviceLocationUpdate"]["location"]
    zone = {"locationId": "location-zone1", "inferredLocationTypes": ["ZONE"], "parent": floor}
    reader = SpacesReader()
    lines = [{**event(location=location), "recordUid": f"u{n}"}
             for n, location in enumerate([floor, zone, floor, zone])]
    batch, _ = read(*lines, reader=reader)
    assert [e.floor for e in batch.events if isinstance(e, Fix)] == [FLOOR] * 4


def test_floor_is_namespaced_away_from_a_cmx_floor_of_the_same_id() -> None:
    floor = {"locationId": "723413320329068590", "inferredLocationTypes": ["FLOOR"]}
    key = only_fix(read(event(location=floor))[0]).floor
    assert key == floor_key("spaces:723413320329068590")
    assert key != read_floor("723413320329068590")


@pytest.mark.parametrize("location", [
    {"locationId": "location-59c7afa3", "inferredLocationTypes": ["BUILDING"]},
    {"locationId": "", "inferredLocationTypes": ["FLOOR"]},
    "location-ad0a997", None,
])
def test_location_without_a_floor_level_is_rejected(location: object) -> None:
    batch, _ = read(event(location=location))
    assert (batch.events, batch.rejected) == ([], 1)


def test_metres_are_converted_to_feet() -> None:
    fix = only_fix(read(event(xPos=10.0, yPos=3.048),
                        reader=SpacesReader(coordinate_unit="METERS"))[0])
    assert (fix.x_ft, fix.y_ft) == (pytest.approx(10.0 / M_PER_FT), pytest.approx(10.0))


def test_unknown_coordinate_unit_is_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="FEET or METERS"):
        SpacesReader(coordinate_unit="YARDS")


def test_numeric_string_coordinates_are_read() -> None:
    fix = only_fix(read(event(xPos="12.5", yPos="7"))[0])
    assert (fix.x_ft, fix.y_ft) == (12.5, 7.0)


@pytest.mark.parametrize("x", ["NaN", "Infinity", "-inf", "abc", "", True, [1.0], {}, 1e10])
def test_unreadable_coordinates_are_rejected(x: object) -> None:
    batch, _ = read(event(xPos=x))
    assert (batch.events, batch.rejected) == ([], 1)


def test_missing_coordinate_is_rejected() -> None:
    batch, _ = read(event(yPos=None))
    assert (batch.events, batch.rejected) == ([], 1)


@pytest.mark.parametrize("last_seen", [None, 0, ""])
def test_time_falls_back_to_record_timestamp_without_last_seen(last_seen: object) -> None:
    assert only_fix(read(event(lastSeen=last_seen))[0]).ts == RECORD_MS / 1000


@pytest.mark.parametrize("last_seen", [RECORD_MS - 4000, (RECORD_MS - 4000) // 1000 * 1000,
                                       (RECORD_MS - 4000) // 1000, str(RECORD_MS - 4000),
                                       float(RECORD_MS - 4000)])
def test_last_seen_in_ms_or_seconds_number_or_text_is_float_epoch_seconds(
        last_seen: object) -> None:
    ts = only_fix(read(event(lastSeen=last_seen))[0]).ts
    assert type(ts) is float
    assert ts == float(last_seen) / (1 if float(last_seen) < 1e11 else 1000)


def test_last_seen_beyond_what_a_float_holds_exactly_is_read_as_before() -> None:
    huge = 2**53 + 1  # not the int fast path: epoch_s reads it (a date far ahead: now)
    assert only_fix(read(event(lastSeen=huge))[0]).ts == NOW_S


def test_time_ahead_of_the_receive_time_by_over_5_minutes_is_the_receive_time() -> None:
    ahead = int((NOW_S + 301) * 1000)
    assert only_fix(read(event(lastSeen=ahead))[0]).ts == NOW_S
    near = int((NOW_S + 299) * 1000)
    assert only_fix(read(event(lastSeen=near))[0]).ts == near / 1000


def test_replaced_future_times_are_counted_per_batch_and_since_start() -> None:
    reader = SpacesReader()
    ahead_ms = int((NOW_S + 3600) * 1000)
    exit_ahead = fake_firehose.device_exit(MAC, record_ms=ahead_ms)
    on_time = {**event(lastSeen=int(NOW_S * 1000) - 10), "recordUid": "event-on-time"}
    batch, _ = read(event(lastSeen=ahead_ms), on_time, exit_ahead, reader=reader)
    assert batch.accepted == 3
    assert batch.future_ts == 2  # the fix and the exit; the IP sighting is not an entry
    assert [(type(e).__name__, e.ts) for e in batch.events if not isinstance(e, IpSeen)] == \
        [("Fix", NOW_S), ("Fix", NOW_S - 0.01), ("DeviceExit", NOW_S)]
    again, _ = read({**event(lastSeen=ahead_ms), "recordUid": "event-again"}, reader=reader)
    assert (again.future_ts, reader.future_ts) == (1, 3)


def test_unreadable_last_seen_is_rejected() -> None:
    batch, _ = read(event(lastSeen="yesterday"))
    assert batch.rejected == 1


@pytest.mark.parametrize("ipv4", ["NOT APPLICABLE", "", None, "8.8.8.8", "fe80::1",
                                  "300.1.1.1", 167772161])
def test_no_ip_sighting_without_a_private_ipv4(ipv4: object) -> None:
    batch, _ = read(event(ipv4=ipv4))
    assert [type(e) for e in batch.events] == [Fix]
    assert batch.accepted == 1


def test_private_ipv4_is_seen_at_the_fix_time() -> None:
    batch, _ = read(event(ipv4="10.20.30.40"), reader=SpacesReader(hash_key=KEY))
    assert batch.events[1] == IpSeen("10.20.30.40", hash_mac(MAC, KEY), LAST_SEEN_S)


def test_a_device_seen_again_at_its_ip_is_told_once_a_minute_and_a_new_one_at_once() -> None:
    other = {**CAPTURE["deviceLocationUpdate"]["device"], "macAddress": "00:39:a7:8f:4a:01"}
    ms = int(LAST_SEEN_S * 1000)
    sightings = [(0, None), (30_000, None), (59_900, None), (60_000, None),
                 (61_000, other), (62_000, None), (1_000, None)]  # the last one late: older
    records = [{**event(ipv4="10.20.30.40", lastSeen=ms + offset,
                        **({"device": device} if device else {})), "recordUid": f"uid-{n}"}
               for n, (offset, device) in enumerate(sightings)]
    batch, _ = read(*records)
    told = [(e.mac, e.ts - LAST_SEEN_S) for e in batch.events if isinstance(e, IpSeen)]
    assert told == [(MAC, 0.0), (MAC, 60.0), ("00:39:a7:8f:4a:01", 61.0), (MAC, 62.0)]
    assert batch.accepted == len(records)  # every fix is read; only sightings are spared


def test_fake_firehose_quirks_are_all_read() -> None:
    quirks = fake_firehose.Quirks(ipv4="not_applicable", unpadded_mac=True)
    record = fake_firehose.location_update("00:0b:bf:74:0b:00", 2, 100.0, 50.0,
                                           record_ms=RECORD_MS, ip="10.0.0.9", quirks=quirks)
    assert record["deviceLocationUpdate"]["device"]["macAddress"] == "0:b:bf:74:b:0"
    batch, _ = read(record)
    assert batch.events == [Fix("00:0b:bf:74:0b:00", floor_key("spaces:location-fl0002"),
                                100.0, 50.0, None, RECORD_MS / 1000)]


# --- other types, duplicates, bad lines --------------------------------------------------

def test_device_exit_ends_the_track_at_record_time() -> None:
    record = fake_firehose.device_exit(MAC, record_ms=RECORD_MS)
    batch, newest_ms = read(record, reader=SpacesReader(hash_key=KEY))
    assert batch.events == [DeviceExit(hash_mac(MAC, KEY), RECORD_MS / 1000)]
    assert batch.by_type == {("DEVICE_EXIT", "accepted"): 1}
    assert newest_ms == RECORD_MS


def test_keep_alive_is_counted_and_moves_the_cursor() -> None:
    batch, newest_ms = read(fake_firehose.keep_alive(RECORD_MS + 15_000))
    assert (batch.events, batch.ignored) == ([], 1)
    assert batch.by_type == {("KEEP_ALIVE", "ignored"): 1}
    assert newest_ms == RECORD_MS + 15_000


def test_other_types_are_counted_and_ignored_under_bounded_labels() -> None:
    profile = {"recordUid": "p1", "recordTimestamp": RECORD_MS, "eventType": "PROFILE_UPDATE"}
    odd = {"recordUid": "p2", "recordTimestamp": RECORD_MS, "eventType": 42}
    unhashable = [{"recordUid": f"p{i}", "eventType": kind}
                  for i, kind in enumerate(([], {"a": 1}, ["DEVICE_EXIT"]), 4)]
    batch, _ = read(profile, odd, {"recordUid": "p3"}, *unhashable, CAPTURE)
    assert [type(event).__name__ for event in batch.events] == ["Fix", "IpSeen"]  # still read
    assert batch.by_type == {("other", "ignored"): 1, ("unknown", "ignored"): 5,
                             ("DEVICE_LOCATION_UPDATE", "accepted"): 1}


def test_duplicate_record_uid_is_dropped() -> None:
    reader = SpacesReader()
    first, _ = read(CAPTURE, reader=reader)
    again, _ = read(CAPTURE, CAPTURE, reader=reader)
    assert len(first.events) == 2 and again.events == []
    assert (again.ignored, again.by_type) == (2, {("DEVICE_LOCATION_UPDATE", "duplicate"): 2})
    assert reader.by_type == {("DEVICE_LOCATION_UPDATE", "accepted"): 1,
                              ("DEVICE_LOCATION_UPDATE", "duplicate"): 2}


def test_dedup_window_is_bounded_by_count() -> None:
    reader = SpacesReader(dedup_capacity=3)
    lines = [{**CAPTURE, "recordUid": f"u{i}"} for i in range(4)]
    read(*lines, reader=reader)  # u0 falls out of the window when u3 comes in
    batch, _ = read(lines[0], lines[3], reader=reader)
    assert batch.by_type == {("DEVICE_LOCATION_UPDATE", "accepted"): 1,
                             ("DEVICE_LOCATION_UPDATE", "duplicate"): 1}


def test_a_duplicate_does_not_keep_its_uid_in_the_window_longer() -> None:
    """The window holds the last uids first seen: a duplicate dropped does not renew its uid."""
    reader = SpacesReader(dedup_capacity=2)
    lines = [{**CAPTURE, "recordUid": f"u{i}"} for i in range(3)]
    first, _ = read(lines[0], lines[1], lines[0], lines[2], reader=reader)  # u0 leaves
    again, _ = read(lines[0], lines[2], reader=reader)
    assert first.by_type == {("DEVICE_LOCATION_UPDATE", "accepted"): 3,
                             ("DEVICE_LOCATION_UPDATE", "duplicate"): 1}
    assert again.by_type == {("DEVICE_LOCATION_UPDATE", "accepted"): 1,
                             ("DEVICE_LOCATION_UPDATE", "duplicate"): 1}


def test_lines_that_are_no_json_object_are_bad_and_blank_lines_are_skipped() -> None:
    reader = SpacesReader()
    text = orjson.dumps(CAPTURE)
    batch, newest_ms = read(b"not json", text[:200], text[200:], b"[1, 2]", b'"KEEP_ALIVE"',
                            b'{"xPos": NaN}', b"\xff\xfe", b"", b"   \r", reader=reader)
    assert (batch.events, batch.by_type, newest_ms) == ([], {}, None)
    assert reader.bad_lines == 7


def test_record_timestamp_as_a_digit_string_moves_the_cursor() -> None:
    _, newest_ms = read({**CAPTURE, "recordTimestamp": str(RECORD_MS)})
    assert newest_ms == RECORD_MS


@pytest.mark.parametrize("stamp", [int((NOW_S + 3600) * 1000), 1641977166, "2022-01-12",
                                   -5, True, None])
def test_record_timestamp_ahead_or_unreadable_does_not_move_the_cursor(stamp: object) -> None:
    _, newest_ms = read({**fake_firehose.keep_alive(RECORD_MS), "recordTimestamp": stamp})
    assert newest_ms is None


def test_cursor_is_the_newest_record_of_out_of_order_lines() -> None:
    lines = [{**CAPTURE, "recordUid": f"u{i}", "recordTimestamp": RECORD_MS + offset}
             for i, offset in enumerate([3000, -20_000, 1000])]
    assert read(*lines)[1] == RECORD_MS + 3000


# --- LineSplitter ------------------------------------------------------------------------

def test_lines_split_across_chunks_are_reassembled() -> None:
    splitter = LineSplitter()
    assert splitter.feed(b'{"a":') == []
    assert splitter.feed(b'1}\n{"b"') == [b'{"a":1}\n']
    assert splitter.pending_bytes() == 4
    assert splitter.feed(b":2}\n\n") == [b'{"b":2}\n', b"\n"]
    assert (splitter.pending_bytes(), splitter.reset()) == (0, False)


def test_overlong_partial_line_is_dropped_up_to_its_newline_and_counted_once() -> None:
    splitter = LineSplitter(max_line_bytes=10)
    assert splitter.feed(b"x" * 8) == []
    assert splitter.feed(b"y" * 8) == []  # 16 bytes kept would exceed 10: dropped
    assert splitter.pending_bytes() == 0
    assert splitter.feed(b"z" * 100) == []
    assert splitter.feed(b'zz\n{"ok":1}\n') == [b'{"ok":1}\n']
    assert splitter.overlong == 1


def test_overlong_line_completed_in_one_chunk_is_dropped() -> None:
    splitter = LineSplitter(max_line_bytes=10)
    splitter.feed(b"a" * 6)
    assert splitter.feed(b"b" * 6 + b"\nok\n") == [b"ok\n"]
    assert splitter.overlong == 1


def test_a_line_of_exactly_the_limit_is_kept_without_its_newline_counted() -> None:
    splitter = LineSplitter(max_line_bytes=10)
    splitter.feed(b"a" * 6)
    assert splitter.feed(b"b" * 4 + b"\nc") == [b"a" * 6 + b"b" * 4 + b"\n"]
    assert splitter.feed(b"c" * 10 + b"\n") == []  # 11 bytes before its newline
    assert splitter.overlong == 1


def test_reset_reports_a_partial_line() -> None:
    splitter = LineSplitter()
    splitter.feed(b'{"cut')
    assert splitter.reset() is True
    assert splitter.feed(b'{"a":1}\n') == [b'{"a":1}\n']


# --- properties --------------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20)
FIELDS = {"xPos": JSON, "yPos": JSON, "lastSeen": JSON, "ipv4": JSON, "device": JSON,
          "location": JSON, "mapId": JSON}
HUGE = st.sampled_from([b"1e400", b"-1e400", b"1e308", str(10**30).encode(),
                        str(2**64).encode(), str(-10**400).encode(), b"0.0000001e-400"])


@st.composite
def lines(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["bytes", "json", "truncated", "event", "huge"]))
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    if kind == "json":
        return json.dumps(draw(JSON)).encode()  # stdlib: any int, "Infinity"
    record = copy.deepcopy(CAPTURE)
    record["eventType"] = draw(st.sampled_from(["DEVICE_LOCATION_UPDATE", "DEVICE_EXIT",
                                                "KEEP_ALIVE", "X"]))
    record["recordTimestamp"] = draw(JSON)
    changes = draw(st.dictionaries(st.sampled_from(sorted(FIELDS)), JSON, max_size=4))
    record["deviceLocationUpdate"].update(changes)
    record["deviceExit"] = draw(JSON)
    text = json.dumps(record, separators=(",", ":")).encode()
    if kind == "huge":  # numbers orjson reads as floats, infinities or not at all
        for field in (b"372.79483", b"210.72083", b"1641975908000", b"1641977166586"):
            text = text.replace(field, draw(HUGE))
    if kind == "truncated":
        return text[:draw(st.integers(0, len(text)))]
    return text


@settings(max_examples=400, deadline=None)
@given(st.lists(lines(), max_size=6), st.sampled_from(["", KEY]),
       st.sampled_from(["FEET", "METERS"]))
def test_no_sequence_of_lines_raises_out_of_the_reader(
        batch_lines: list[bytes], key: str, unit: str) -> None:
    reader = SpacesReader(hash_key=key, coordinate_unit=unit)
    batch, newest_ms = reader.read(batch_lines, NOW_S)
    assert batch.accepted + batch.ignored + batch.rejected + reader.bad_lines <= len(batch_lines)
    assert newest_ms is None or newest_ms <= (NOW_S + 300) * 1000
    for e in batch.events:
        assert e.ts <= NOW_S + 300


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=30).filter(lambda b: b"\n" not in b), max_size=8),
       st.lists(st.integers(1, 40), min_size=1, max_size=10))
def test_splitting_a_stream_anywhere_yields_the_same_lines(
        parts: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(p + b"\n" for p in parts)
    splitter, got, at, i = LineSplitter(), [], 0, 0
    while at < len(stream):
        size = cuts[i % len(cuts)]
        got += splitter.feed(stream[at:at + size])
        at, i = at + size, i + 1
    assert got == [p + b"\n" for p in parts]
    assert splitter.reset() is False


# --- a fault on one line -----------------------------------------------------------------

def test_a_line_the_reader_fails_on_is_counted_bad_and_the_others_are_read(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug met on one line (injected in the ipv4 reader) costs that line, not the batch."""
    real = spaces_names.private_ipv4

    def fails_on_one_ip(text: object) -> str | None:
        if text == "10.9.9.9":
            raise RuntimeError("injected")
        return real(text)

    monkeypatch.setattr(spaces_names, "private_ipv4", fails_on_one_ip)
    records = [{**event(ipv4=ip), "recordUid": f"uid-{n}"}
               for n, ip in enumerate(["10.0.0.1", "10.9.9.9", "10.0.0.3"])]
    reader = SpacesReader()
    batch, newest_ms = read(*records, reader=reader)
    assert batch.events == [Fix(MAC, FLOOR, 372.79483, 210.72083, None, LAST_SEEN_S),
                            IpSeen("10.0.0.1", MAC, LAST_SEEN_S),
                            Fix(MAC, FLOOR, 372.79483, 210.72083, None, LAST_SEEN_S),
                            IpSeen("10.0.0.3", MAC, LAST_SEEN_S)]  # none of the failed line
    assert (batch.accepted, batch.ignored, batch.rejected, reader.bad_lines) == (2, 0, 0, 1)
    assert batch.by_type == {("DEVICE_LOCATION_UPDATE", "accepted"): 2}
    assert isinstance(reader.line_error, RuntimeError) and newest_ms == RECORD_MS


def test_a_time_the_reader_fails_on_costs_its_line_only(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug met reading a line's time (a lastSeen text: the general path) costs that line."""
    real = spaces_events.event_time

    def fails_on_one_time(first: object, second: object, now_s: float) -> float:
        if first == "2017-10-30T05:36:37Z":
            raise RuntimeError("injected")
        return real(first, second, now_s)

    monkeypatch.setattr(spaces_events, "event_time", fails_on_one_time)
    records = [{**event(ipv4="10.0.0.1"), "recordUid": "uid-0"},
               {**event(ipv4="10.0.0.2", lastSeen="2017-10-30T05:36:37Z"), "recordUid": "uid-1"},
               {**event(ipv4="10.0.0.3"), "recordUid": "uid-2"}]
    reader = SpacesReader()
    batch, _ = read(*records, reader=reader)
    assert batch.events == [Fix(MAC, FLOOR, 372.79483, 210.72083, None, LAST_SEEN_S),
                            IpSeen("10.0.0.1", MAC, LAST_SEEN_S),
                            Fix(MAC, FLOOR, 372.79483, 210.72083, None, LAST_SEEN_S),
                            IpSeen("10.0.0.3", MAC, LAST_SEEN_S)]
    assert (batch.accepted, reader.bad_lines, reader.device_lines) == (2, 1, 3)
    assert isinstance(reader.line_error, RuntimeError)
