"""CMX envelope parsing (DESIGN section 5): every variation seen in real captures."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tys_server.core.events import Batch, Movement, ZoneVisit
from tys_server.core.macs import normalise_mac
from tys_server.feeds.cmx import EnvelopeError, parse_envelope

NOW_S = 1509341800.0  # 2017-10-30T05:36:40Z, just after the capture below
FLOOR_ID = 723413320329068590  # 18 digits: not exactly representable as a float


def movement_entry(**fields: Any) -> dict[str, Any]:
    """A movement notification as CMX 10 posts it (from a public capture)."""
    entry: dict[str, Any] = {
        "notificationType": "movement",
        "subscriptionName": "tys_movement",
        "eventId": 50734364,
        "locationMapHierarchy": "DevNetCampus>DevNetBuilding>DevNetZone>Test1",
        "locationCoordinate": {"x": 47.92146, "y": 57.322598, "z": 0.0, "unit": "FEET"},
        "geoCoordinate": {"latitude": 36.1257, "longitude": -97.0668, "unit": "DEGREES"},
        "confidenceFactor": 56.0,
        "apMacAddress": "00:2b:01:00:09:00",
        "associated": True,
        "username": "",
        "ipAddress": ["10.10.20.222", ""],
        "ssid": "test",
        "band": "IEEE_802_11_B",
        "floorId": FLOOR_ID,
        "floorRefId": None,
        "entity": "WIRELESS_CLIENTS",
        "deviceId": "00:00:a9:3e:a7:3a",
        "lastSeen": "2017-10-30T05:36:37.241+0000",
        "moveDistanceInFt": 10000.0,
        "timestamp": 1509341797241,
    }
    entry.update(fields)
    return entry


def zone_entry(**fields: Any) -> dict[str, Any]:
    """An inout notification as CMX 10 posts it."""
    entry: dict[str, Any] = {
        "notificationType": "inout",
        "locationMapHierarchy": "CiscoCampus>Building 9>IDEAS!>CakeBread",
        "deviceId": "00:00:aa:14:50:8b",
        "lastSeen": "2017-10-30T05:36:37.241+0000",
        "boundary": "INSIDE",
        "timestamp": 1509341797241,
    }
    entry.update(fields)
    return entry


def parse_one(entry: object) -> Batch:
    return parse_envelope({"notifications": [entry]}, NOW_S)


def only_movement(entry: object) -> Movement:
    batch = parse_one(entry)
    assert (batch.accepted, batch.ignored, batch.rejected) == (1, 0, 0)
    (event,) = batch.events
    assert isinstance(event, Movement)
    return event


def assert_rejected(entry: object) -> None:
    batch = parse_one(entry)
    assert (batch.accepted, batch.ignored, batch.rejected) == (0, 0, 1)
    assert batch.events == []


# --- movement -----------------------------------------------------------------------

def test_captured_movement_is_read_field_by_field() -> None:
    mv = only_movement(movement_entry())
    assert mv == Movement(
        mac="00:00:a9:3e:a7:3a", floor=FLOOR_ID, x_ft=47.92146, y_ft=57.322598,
        move_ft=10000.0, ts=1509341797.241,
    )


def test_eighteen_digit_floor_id_survives_exactly_through_json_text() -> None:
    body = json.loads(json.dumps({"notifications": [movement_entry()]}))
    (mv,) = parse_envelope(body, NOW_S).events
    assert isinstance(mv, Movement)
    assert mv.floor == FLOOR_ID
    assert float(FLOOR_ID) != FLOOR_ID  # a float would have changed it


def test_negative_floor_id_is_kept() -> None:
    assert only_movement(movement_entry(floorId=-723413320329068590)).floor == -723413320329068590


def test_floor_id_as_a_string_is_parsed_exactly() -> None:
    assert only_movement(movement_entry(floorId=f" {FLOOR_ID} ")).floor == FLOOR_ID
    assert only_movement(movement_entry(floorId="-42")).floor == -42


@pytest.mark.parametrize("empty", ["", "  ", None])
def test_empty_floor_id_means_no_floor(empty: object) -> None:
    assert only_movement(movement_entry(floorId=empty)).floor is None


def test_missing_floor_id_falls_back_to_floor_ref_id() -> None:
    entry = movement_entry(floorRefId="4698041680068395008")
    del entry["floorId"]
    assert only_movement(entry).floor == 4698041680068395008


def test_non_numeric_floor_id_maps_to_a_stable_bigint_key() -> None:
    first = only_movement(movement_entry(floorId="Hall B / level 2")).floor
    again = only_movement(movement_entry(floorId="Hall B / level 2")).floor
    other = only_movement(movement_entry(floorId="Hall C / level 2")).floor
    assert isinstance(first, int)
    assert first == again != other
    assert -(2**62) <= first < 2**62


def test_floor_id_beyond_64_bits_maps_to_the_same_key_as_its_text() -> None:
    huge = 2**70
    as_number = only_movement(movement_entry(floorId=huge)).floor
    assert as_number == only_movement(movement_entry(floorId=str(huge))).floor
    assert as_number is not None and -(2**63) <= as_number < 2**63


def test_floor_id_with_a_lone_surrogate_is_still_a_key() -> None:
    assert isinstance(only_movement(movement_entry(floorId="\ud800")).floor, int)


def test_integral_float_floor_id_is_accepted() -> None:
    assert only_movement(movement_entry(floorId=3.0)).floor == 3


@pytest.mark.parametrize("bad", [True, 1.5, [1], {"id": 1}])
def test_floor_id_of_a_wrong_type_is_rejected(bad: object) -> None:
    assert_rejected(movement_entry(floorId=bad))


def test_numbers_may_arrive_as_strings() -> None:
    mv = only_movement(movement_entry(
        locationCoordinate={"x": "12.5", "y": " -3 ", "unit": "FEET"},
        moveDistanceInFt="49.5", timestamp="1509341797241",
    ))
    assert (mv.x_ft, mv.y_ft, mv.move_ft, mv.ts) == (12.5, -3.0, 49.5, 1509341797.241)


def test_metres_are_converted_to_feet() -> None:
    mv = only_movement(movement_entry(locationCoordinate={"x": 3.048, "y": 0, "unit": "METERS"}))
    assert mv.x_ft == pytest.approx(10.0, abs=1e-12)
    assert mv.y_ft == 0.0


def test_coordinate_unit_defaults_to_feet_and_ignores_case() -> None:
    assert only_movement(movement_entry(locationCoordinate={"x": 1, "y": 2})).x_ft == 1.0
    mv = only_movement(movement_entry(locationCoordinate={"x": 1, "y": 2, "unit": "meters"}))
    assert mv.x_ft == pytest.approx(1 / 0.3048)


def test_unknown_coordinate_unit_is_rejected() -> None:
    assert_rejected(movement_entry(locationCoordinate={"x": 1, "y": 2, "unit": "FURLONGS"}))


def test_first_fix_distance_of_10000_ft_is_accepted_as_sent() -> None:
    assert only_movement(movement_entry(moveDistanceInFt=10000)).move_ft == 10000.0


def test_movement_without_distance_is_measured_as_a_straight_line() -> None:
    entry = movement_entry()
    del entry["moveDistanceInFt"]
    assert only_movement(entry).move_ft is None


def test_locationupdate_carries_no_distance() -> None:
    mv = only_movement(movement_entry(notificationType="locationupdate", moveDistanceInFt=20))
    assert mv.move_ft is None
    assert parse_one(movement_entry(notificationType="locationupdate")).by_type == {
        ("locationupdate", "accepted"): 1
    }


def test_ip_address_list_holding_an_empty_string_is_ignored() -> None:
    assert only_movement(movement_entry(ipAddress=[""])).mac == "00:00:a9:3e:a7:3a"


def test_notification_type_is_matched_case_insensitively() -> None:
    assert parse_one(movement_entry(notificationType="Movement")).accepted == 1
    assert parse_one(zone_entry(notificationType="InOut")).by_type == {("inout", "accepted"): 1}


# --- time ---------------------------------------------------------------------------

def test_timestamp_in_seconds_is_recognised() -> None:
    assert only_movement(movement_entry(timestamp=1509341797)).ts == 1509341797.0


def test_timestamp_in_milliseconds_is_converted() -> None:
    assert only_movement(movement_entry(timestamp=1509341797241)).ts == 1509341797.241


@pytest.mark.parametrize("last_seen", [
    "2017-10-30T05:36:37.241+0000",
    "2017-10-30 05:36:37.241+0000",
    "2017-10-30T05:36:37.241Z",
    "2017-10-30T05:36:37.241+00:00",
    "2017-10-30T06:36:37.241+0100",
    "2017-10-30T05:36:37.241",
])
def test_last_seen_is_used_without_timestamp(last_seen: str) -> None:
    entry = movement_entry(lastSeen=last_seen)
    del entry["timestamp"]
    assert only_movement(entry).ts == pytest.approx(1509341797.241, abs=1e-6)


@pytest.mark.parametrize("absent", [None, "", 0, -5])
def test_timestamp_absent_or_not_positive_falls_back_to_last_seen(absent: object) -> None:
    mv = only_movement(movement_entry(timestamp=absent))
    assert mv.ts == pytest.approx(1509341797.241, abs=1e-6)


def test_no_time_at_all_means_receive_time() -> None:
    entry = movement_entry()
    del entry["timestamp"], entry["lastSeen"]
    assert only_movement(entry).ts == NOW_S


def test_future_timestamp_is_replaced_by_receive_time() -> None:
    assert only_movement(movement_entry(timestamp=(NOW_S + 301) * 1000)).ts == NOW_S
    assert only_movement(movement_entry(timestamp=(NOW_S + 299) * 1000)).ts == NOW_S + 299


def test_replaced_future_timestamps_are_counted_on_both_paths() -> None:
    ahead_ms = (NOW_S + 3600) * 1000
    no_time = movement_entry()
    del no_time["timestamp"], no_time["lastSeen"]
    entries = [
        # the fast path (canonical MAC, numbers in feet, an int floor) and the general one
        {**movement_entry(), "timestamp": int(ahead_ms), "floorId": 7,
         "deviceId": "00:11:22:33:44:55", "locationCoordinate": {"x": 1.0, "y": 2.0}},
        movement_entry(timestamp=str(int(ahead_ms))),
        zone_entry(timestamp=int(ahead_ms)),
        movement_entry(timestamp=(NOW_S + 299) * 1000),  # within the tolerance: kept
        no_time,  # no time is the receive time, not a clock-skew replacement
    ]
    batch = parse_envelope({"notifications": entries}, NOW_S)
    assert batch.accepted == 5
    assert [event.ts for event in batch.events] == [NOW_S, NOW_S, NOW_S, NOW_S + 299, NOW_S]
    assert batch.future_ts == 3


@pytest.mark.parametrize("bad", [True, "yesterday", "nan", [1509341797241], {"ms": 1}])
def test_unreadable_timestamp_is_rejected(bad: object) -> None:
    assert_rejected(movement_entry(timestamp=bad))


def test_unreadable_last_seen_is_rejected() -> None:
    entry = movement_entry(lastSeen="30/10/2017")
    del entry["timestamp"]
    assert_rejected(entry)


# --- MACs ---------------------------------------------------------------------------

@pytest.mark.parametrize("spelling", [
    "aa:bb:cc:dd:ee:ff", "AA:BB:CC:DD:EE:FF", "AA-BB-CC-DD-EE-FF", "aabb.ccdd.eeff",
    "AABB.CCDD.EEFF", "aabbccddeeff", " aa:bb:cc:dd:ee:ff ",
])
def test_mac_spellings_are_normalised(spelling: str) -> None:
    assert normalise_mac(spelling) == "aa:bb:cc:dd:ee:ff"


@pytest.mark.parametrize("bad", [
    "", "aa:bb:cc:dd:ee", "aa:bb:cc:dd:ee:fg", "aa:bb-cc:dd:ee:ff", "aa:bb:cc:dd:ee:ff:00",
    "aabbccddeef", "aabb.ccdd.eeff.0011", "aa:bb:cc:dd:ee:ff\n0", "ａａ:bb:cc:dd:ee:ff",
    None, 0xAABBCCDDEEFF, ["aa:bb:cc:dd:ee:ff"],
])
def test_anything_else_is_not_a_mac(bad: object) -> None:
    assert normalise_mac(bad) is None


# --- zones and other types ----------------------------------------------------------

def test_inout_is_a_visit_to_the_whole_hierarchy_path() -> None:
    batch = parse_one(zone_entry(deviceId="00:00:AA:14:50:8B"))
    assert batch.events == [
        ZoneVisit("00:00:aa:14:50:8b", "CiscoCampus>Building 9>IDEAS!>CakeBread", 1509341797.241)
    ]


@pytest.mark.parametrize("kind", ["inout", "areachange", "containment"])
def test_zone_types_are_zone_visits(kind: str) -> None:
    batch = parse_one(zone_entry(notificationType=kind))
    assert batch.by_type == {(kind, "accepted"): 1}
    assert isinstance(batch.events[0], ZoneVisit)


def test_zone_name_is_cut_to_255_characters() -> None:
    (visit,) = parse_one(zone_entry(locationMapHierarchy="Z" * 1000)).events
    assert isinstance(visit, ZoneVisit)
    assert visit.zone == "Z" * 255


@pytest.mark.parametrize("hierarchy", [None, "", "   ", 7])
def test_zone_visit_without_a_hierarchy_is_rejected(hierarchy: object) -> None:
    assert_rejected(zone_entry(locationMapHierarchy=hierarchy))


def test_zone_visit_without_a_mac_is_rejected() -> None:
    assert_rejected(zone_entry(deviceId="not-a-mac"))


def test_unknown_type_with_a_hierarchy_is_a_zone_visit() -> None:
    batch = parse_one(zone_entry(notificationType="geofence"))
    assert batch.by_type == {("other", "accepted"): 1}
    assert isinstance(batch.events[0], ZoneVisit)


@pytest.mark.parametrize("kind", ["association", "absence"])
def test_association_and_absence_are_ignored_even_with_a_hierarchy(kind: str) -> None:
    batch = parse_one(zone_entry(notificationType=kind))
    assert (batch.accepted, batch.ignored, batch.rejected) == (0, 1, 0)
    assert batch.by_type == {(kind, "ignored"): 1}


def test_unknown_type_without_a_hierarchy_is_ignored_as_other() -> None:
    batch = parse_one({"notificationType": "geofence", "deviceId": "garbage"})
    assert batch.by_type == {("other", "ignored"): 1}


def test_type_labels_stay_in_a_bounded_set() -> None:
    entries = [{"notificationType": f"made-up-{i}"} for i in range(100)]
    batch = parse_envelope({"notifications": entries}, NOW_S)
    assert batch.by_type == {("other", "ignored"): 100}


# --- malformed entries --------------------------------------------------------------

@pytest.mark.parametrize("entry", [
    "movement", 42, None, [], movement_entry(notificationType=None),
    movement_entry(notificationType=""), movement_entry(notificationType=5),
    movement_entry(deviceId="zz:zz:zz:zz:zz:zz"), movement_entry(deviceId=None),
    movement_entry(locationCoordinate=None), movement_entry(locationCoordinate=[1, 2]),
    movement_entry(locationCoordinate={"x": 1}),
    movement_entry(locationCoordinate={"x": float("nan"), "y": 1}),
    movement_entry(locationCoordinate={"x": float("inf"), "y": 1}),
    movement_entry(locationCoordinate={"x": "Infinity", "y": 1}),
    movement_entry(locationCoordinate={"x": True, "y": 1}),
    movement_entry(locationCoordinate={"x": 1e12, "y": 1}),
    movement_entry(locationCoordinate={"x": 10**400, "y": 1}),
    movement_entry(locationCoordinate={"x": 1, "y": 2, "unit": 3}),
    movement_entry(moveDistanceInFt=-1), movement_entry(moveDistanceInFt=float("nan")),
    movement_entry(moveDistanceInFt="far"), movement_entry(moveDistanceInFt=False),
], ids=lambda entry: repr(entry)[:40])
def test_malformed_entry_is_rejected(entry: object) -> None:
    assert_rejected(entry)


def test_malformed_entries_are_skipped_and_the_rest_of_the_batch_kept() -> None:
    body = {"notifications": [
        movement_entry(), "junk", movement_entry(deviceId="bad"),
        {"notificationType": "association"}, zone_entry(),
    ]}
    batch = parse_envelope(body, NOW_S)
    assert (batch.accepted, batch.ignored, batch.rejected) == (2, 1, 2)
    assert [type(event) for event in batch.events] == [Movement, ZoneVisit]
    assert batch.by_type == {
        ("movement", "accepted"): 1, ("unknown", "rejected"): 1, ("movement", "rejected"): 1,
        ("association", "ignored"): 1, ("inout", "accepted"): 1,
    }


def test_entries_keep_their_order() -> None:
    macs = [f"00:00:00:00:01:{i:02x}" for i in range(20)]
    body = {"notifications": [movement_entry(deviceId=mac) for mac in macs]}
    assert [event.mac for event in parse_envelope(body, NOW_S).events] == macs


@pytest.mark.parametrize("mac", ["00:00:00:00:00:00", "000000000000", "0:0:0:0:0:0"])
def test_all_zero_mac_is_a_placeholder_and_rejected(mac: str) -> None:
    batch = parse_envelope({"notifications": [movement_entry(deviceId=mac)]}, NOW_S)
    assert (batch.events, batch.accepted, batch.rejected) == ([], 0, 1)


def test_empty_notifications_list_is_an_empty_batch() -> None:
    assert parse_envelope({"notifications": []}, NOW_S) == Batch([], 0, 0, 0, {})


# --- envelopes ----------------------------------------------------------------------

@pytest.mark.parametrize("body", [
    [movement_entry()], "notifications", None, 42, {}, {"notification": []},
    {"notifications": None}, {"notifications": movement_entry()},
    {"notifications": "[]"},
], ids=repr)
def test_body_without_a_notifications_list_is_an_envelope_error(body: object) -> None:
    with pytest.raises(EnvelopeError):
        parse_envelope(body, NOW_S)


def test_legacy_movement_event_is_one_movement() -> None:
    body = {"MovementEvent": {
        "moveDistanceInFt": "10.00", "subscriptionName": "CMX_Location_Event",
        "timeStamp": "2017-10-29T22:36:37.241-0700", "entity": "WIRELESS_CLIENTS",
        "deviceId": "AA-BB-CC-DD-EE-FF", "mseUdi": "AIR-MSE-VA-K9:V01:mse",
        "floorRefId": "723413320329068590",
        "locationCoordinate": {"x": "12.5", "y": 7, "unit": "FEET"},
    }}
    batch = parse_envelope(body, NOW_S)
    assert batch.events == [
        Movement("aa:bb:cc:dd:ee:ff", FLOOR_ID, 12.5, 7.0, 10.0, 1509341797.241)
    ]
    assert batch.by_type == {("movement", "accepted"): 1}


def test_legacy_streaming_notification_is_one_straight_line_movement() -> None:
    body = {"StreamingNotification": {
        "subscriptionName": "tys", "entity": "WIRELESS_CLIENTS",
        "deviceId": "00:00:2a:01:00:3f",
        "location": {
            "macAddress": "00:00:2a:01:00:3f",
            "mapInfo": {"mapHierarchyString": "Campus>Hall>Floor 1", "floorRefId": 1234},
            "mapCoordinate": {"x": 10, "y": 20, "unit": "FEET"},
            "statistics": {"lastLocatedTime": "2017-10-30T05:36:37.241+0000"},
        },
        "timestampMillis": 1509341797241,
    }}
    batch = parse_envelope(body, NOW_S)
    assert batch.events == [Movement("00:00:2a:01:00:3f", 1234, 10.0, 20.0, None, 1509341797.241)]


def test_legacy_streaming_notification_reads_location_mac_and_capitalised_map_info() -> None:
    body = {"StreamingNotification": {
        "location": {
            "macAddress": "0000.2a01.003f",
            "MapInfo": {"floorRefId": "77"},
            "MapCoordinate": {"x": 3.048, "y": 0, "unit": "METERS"},
            "statistics": {"lastLocatedTime": "2017-10-30T05:36:37.241+0000"},
        },
    }}
    (mv,) = parse_envelope(body, NOW_S).events
    assert isinstance(mv, Movement)
    assert (mv.mac, mv.floor, mv.ts) == ("00:00:2a:01:00:3f", 77, pytest.approx(1509341797.241))
    assert mv.x_ft == pytest.approx(10.0)


def test_legacy_envelope_with_an_explicit_type_keeps_it() -> None:
    body = {"StreamingNotification": {
        "notificationType": "containment", "deviceId": "00:00:2a:01:00:3f",
        "location": {"mapInfo": {"mapHierarchyString": "Campus>Hall>Booth 12"}},
    }}
    assert parse_envelope(body, NOW_S).events == [
        ZoneVisit("00:00:2a:01:00:3f", "Campus>Hall>Booth 12", NOW_S)
    ]


@pytest.mark.parametrize("inner", [
    {"deviceId": "00:00:2a:01:00:3f"}, "not an object", [], None,
], ids=repr)
def test_legacy_envelope_without_type_or_position_is_one_rejected_entry(inner: object) -> None:
    batch = parse_envelope({"MovementEvent": inner}, NOW_S)
    assert (batch.accepted, batch.ignored, batch.rejected) == (0, 0, 1)
    assert batch.by_type == {("unknown", "rejected"): 1}


def test_notifications_list_wins_over_a_legacy_key() -> None:
    body = {"notifications": [], "MovementEvent": {"deviceId": "00:00:2a:01:00:3f"}}
    assert parse_envelope(body, NOW_S) == Batch([], 0, 0, 0, {})


# --- robustness ---------------------------------------------------------------------

def test_a_large_batch_is_read_entirely() -> None:
    body = {"notifications": [movement_entry(), "junk", {"notificationType": "absence"}] * 5000}
    batch = parse_envelope(body, NOW_S)
    assert (batch.accepted, batch.ignored, batch.rejected) == (5000, 5000, 5000)


json_scalars = (
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
    | st.sampled_from(["", "12.5", "-7", "1e400", "NaN", "aa-bb-cc-dd-ee-ff"])
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
field_names = st.sampled_from([
    "notificationType", "deviceId", "macAddress", "locationCoordinate", "mapCoordinate",
    "x", "y", "unit", "floorId", "floorRefId", "moveDistanceInFt", "timestamp",
    "timestampMillis", "timeStamp", "lastSeen", "locationMapHierarchy", "location",
    "mapInfo", "statistics", "lastLocatedTime", "ipAddress",
])
field_values = json_scalars | st.sampled_from([
    "movement", "locationupdate", "inout", "association", "METERS", "2017-10-30T05:36:37Z",
]) | st.dictionaries(field_names, json_scalars, max_size=4)
cmx_like_entries = st.dictionaries(field_names, field_values, max_size=10) | json_values
cmx_like_bodies = (
    st.builds(lambda entries: {"notifications": entries}, st.lists(cmx_like_entries, max_size=8))
    | st.builds(lambda inner: {"MovementEvent": inner}, cmx_like_entries)
    | st.builds(lambda inner: {"StreamingNotification": inner}, cmx_like_entries)
    | json_values
)


@settings(max_examples=400, deadline=None)
@given(body=cmx_like_bodies, now_s=st.floats(0, 4e9))
def test_any_json_value_gives_a_batch_or_an_envelope_error(body: object, now_s: float) -> None:
    try:
        batch = parse_envelope(body, now_s)
    except EnvelopeError:
        return
    assert batch.accepted + batch.ignored + batch.rejected == sum(batch.by_type.values())
    assert batch.accepted == len(batch.events)
    for event in batch.events:
        assert normalise_mac(event.mac) == event.mac
        assert math.isfinite(event.ts) and event.ts <= now_s + 300
        if isinstance(event, Movement):
            assert math.isfinite(event.x_ft) and math.isfinite(event.y_ft)
            assert event.move_ft is None or (math.isfinite(event.move_ft) and event.move_ft >= 0)
            assert event.floor is None or -(2**63) <= event.floor < 2**63
    labels = {label for label, _ in batch.by_type}
    assert labels <= {
        "movement", "locationupdate", "inout", "areachange", "containment", "association",
        "absence", "other", "unknown",
    }
