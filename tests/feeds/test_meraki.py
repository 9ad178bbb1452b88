"""Meraki Scanning API v3 bodies (DESIGN 12.3): every field rule, on real-shaped payloads."""

from __future__ import annotations

import copy
import math
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tools.cmx_sim import meraki_poster
from tys_server.core.events import Batch, Fix, IpSeen
from tys_server.core.macs import hash_mac
from tys_server.core.units import M_PER_FT
from tys_server.feeds.cmx_fields import floor_key
from tys_server.feeds.meraki import (
    BadBody,
    PostError,
    UnsupportedVersion,
    WrongSecret,
    read_post,
)

SECRET = "supersecret"
KEY = "hash-key"
PLAN = "g_643451796760560979"
FLOOR = floor_key("meraki:" + PLAN)
NOW_S = datetime(2019, 11, 28, 14, 28, 30, tzinfo=UTC).timestamp()  # just after the sample


def epoch(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def location(x: Any = "7.976651798199431", y: Any = "10.576847081490314",
             time: Any = "2019-11-28T14:27:21Z", **changes: Any) -> dict[str, Any]:
    """One locations[] entry of the sample in Meraki's v3 documentation
    (developer.cisco.com/meraki/scanning-api/3-0, mirrored in open-source mock servers)."""
    entry: dict[str, Any] = {
        "x": x, "y": y, "lng": 6.0957744807924485, "lat": 60.05342983801672,
        "floorPlanName": "3rd Floor", "floorPlanId": PLAN, "variance": 1.6885258062410806,
        "nearestApTags": ["", "API-TEST", "Office", ""], "time": time,
        "rssiRecords": [{"apMac": "aa:aa:aa:11:11:11", "rssi": -32},
                        {"apMac": "aa:aa:aa:22:22:22", "rssi": -54},
                        {"apMac": "aa:aa:aa:33:33:33", "rssi": -51}],
    }
    entry.update(changes)
    return {k: v for k, v in entry.items() if v is not DROP}


DROP = object()  # a field left out of the entry


def sample_locations() -> list[dict[str, Any]]:
    """The three fixes of one client in the documented sample."""
    return [location(),
            location("8.013339145491448", "10.697906571736747", "2019-11-28T14:27:35Z",
                     variance=1.6201842796909718),
            location("8.591860719528196", "11.404523745521399", "2019-11-28T14:27:46Z",
                     variance=1.5097088029182084)]


def observation(**changes: Any) -> dict[str, Any]:
    """One client of the documented sample."""
    entry: dict[str, Any] = {
        "locations": sample_locations(), "ipv4": "192.168.0.251", "ssid": ".interwebs",
        "os": "iOS", "clientMac": "11:22:33:44:55:66", "ipv6": None, "manufacturer": "Apple",
        "latestRecord": {"time": "2019-11-28T14:27:46Z", "nearestApMac": "aa:aa:aa:44:44:44",
                         "nearestApRssi": "-47"},
    }
    entry.update(changes)
    return entry


def post(*observations: Any, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"version": "3.0", "secret": SECRET, "type": "WiFi",
                            "data": {"networkId": "L_000000000000000001",
                                     "observations": list(observations)}}
    body.update(changes)
    return body


def read(body: object, *, hash_key: str = "", max_variance_m: float = 25.0) -> Batch:
    batch = read_post(body, NOW_S, secret=SECRET, hash_key=hash_key,
                      max_variance_m=max_variance_m)
    assert sum(batch.by_type.values()) == batch.accepted + batch.ignored + batch.rejected
    return batch


def fixes(batch: Batch) -> list[Fix]:
    return [e for e in batch.events if isinstance(e, Fix)]


def one_fix(entry: dict[str, Any], **kwargs: Any) -> Fix:
    batch = read(post(observation(locations=[entry], ipv4=None)), **kwargs)
    assert (batch.accepted, batch.ignored, batch.rejected) == (1, 0, 0)
    (fix,) = batch.events
    assert isinstance(fix, Fix)
    return fix


def assert_fix_rejected(entry: object) -> None:
    batch = read(post(observation(locations=[entry, location(time="2019-11-28T14:28:00Z")],
                                  ipv4=None)))
    assert (batch.accepted, batch.ignored, batch.rejected) == (1, 0, 1)
    assert batch.by_type == {("fix", "accepted"): 1, ("fix", "rejected"): 1}
    assert [f.ts for f in fixes(batch)] == [epoch("2019-11-28T14:28:00+00:00")]


# -- the documented sample ---------------------------------------------------------------


def test_documented_sample_gives_three_fixes_in_feet_and_one_ip_sighting() -> None:
    batch = read(post(observation()))
    assert (batch.accepted, batch.ignored, batch.rejected) == (3, 0, 0)
    assert batch.by_type == {("fix", "accepted"): 3}
    first, second, third, seen = batch.events
    assert first == Fix("11:22:33:44:55:66", FLOOR, 7.976651798199431 / M_PER_FT,
                        10.576847081490314 / M_PER_FT, 1.6885258062410806 / M_PER_FT,
                        epoch("2019-11-28T14:27:21+00:00"))
    assert round(first.x_ft, 3) == 26.170  # 7.98 m
    assert [f.ts for f in (first, second, third)] == [
        epoch("2019-11-28T14:27:21+00:00"), epoch("2019-11-28T14:27:35+00:00"),
        epoch("2019-11-28T14:27:46+00:00")]
    assert seen == IpSeen("192.168.0.251", "11:22:33:44:55:66", third.ts)


def test_raw_mac_is_hashed_with_the_key_at_the_door() -> None:
    batch = read(post(observation()), hash_key=KEY)
    stored = hash_mac("11:22:33:44:55:66", KEY)
    assert stored.startswith("00:00:")
    assert {e.mac for e in batch.events} == {stored}


@pytest.mark.parametrize("spelling", ["11-22-33-44-55-66", "112233445566", "1122.3344.5566",
                                      "11:22:33:44:55:66 ", "11:22:33:44:55:66".upper()])
def test_mac_spellings_are_read_leniently(spelling: str) -> None:
    batch = read(post(observation(clientMac=spelling)))
    assert {e.mac for e in batch.events} == {"11:22:33:44:55:66"}


def test_unpadded_octets_are_zero_padded() -> None:
    batch = read(post(observation(clientMac="00:52:bf:74:b:0")))
    assert {e.mac for e in batch.events} == {"00:52:bf:74:0b:00"}


@pytest.mark.parametrize("mac", [None, "", "not a mac", 1122334455, "00:00:00:00:00:00",
                                 ["11:22:33:44:55:66"]])
def test_observation_without_a_usable_mac_is_rejected_whole(mac: Any) -> None:
    batch = read(post(observation(clientMac=mac), observation(clientMac="22:33:44:55:66:77")))
    assert (batch.accepted, batch.ignored, batch.rejected) == (3, 0, 1)
    assert batch.by_type == {("observation", "rejected"): 1, ("fix", "accepted"): 3}
    assert {e.mac for e in batch.events} == {"22:33:44:55:66:77"}


@pytest.mark.parametrize("entry", [None, 5, "11:22:33:44:55:66", []])
def test_observation_that_is_no_object_is_rejected(entry: Any) -> None:
    batch = read(post(entry))
    assert (batch.accepted, batch.ignored, batch.rejected, batch.events) == (0, 0, 1, [])


# -- the envelope ----------------------------------------------------------------------


@pytest.mark.parametrize("body", [None, [], "x", 3, {}, {"secret": 5}, {"secret": None}])
def test_body_that_is_no_object_with_a_secret_is_bad(body: Any) -> None:
    with pytest.raises(BadBody):
        read(body)


@pytest.mark.parametrize("secret", ["", "supersecreT", "supersecret ", SECRET + SECRET, "\ud800"])
def test_wrong_secret_is_refused_before_anything_else(secret: str) -> None:
    with pytest.raises(WrongSecret):
        read(post(observation(), secret=secret))
    with pytest.raises(WrongSecret):  # even a v2 body learns nothing beyond "wrong secret"
        read({"secret": secret, "version": "2.0", "type": "DevicesSeen"})


@pytest.mark.parametrize("version", ["3", "3.0", "3.1", " 3.0", 3, 3.0, 3.1, "3.x"])
def test_any_version_3_is_read(version: Any) -> None:
    assert read(post(observation(), version=version)).accepted == 3


@pytest.mark.parametrize("version", ["2.0", "2", 2, 2.0, "4.0", "", "v3", "30", 30, "abc"])
def test_other_versions_are_unsupported(version: Any) -> None:
    with pytest.raises(UnsupportedVersion):
        read(post(observation(), version=version))


@pytest.mark.parametrize("version", [None, True, [3], {"major": 3}])
def test_version_that_is_no_string_or_number_is_bad(version: Any) -> None:
    with pytest.raises(BadBody):
        read(post(observation(), version=version))


@pytest.mark.parametrize("changes", [{"type": None}, {"type": 1}, {"data": None},
                                     {"data": {"networkId": "N"}},
                                     {"data": {"observations": {"a": 1}}}, {"data": []}])
def test_missing_type_or_observations_list_is_bad(changes: dict[str, Any]) -> None:
    with pytest.raises(BadBody):
        read(post(observation(), **changes))


@pytest.mark.parametrize("kind", ["Bluetooth", "BLE", "bluetooth"])
def test_bluetooth_is_counted_and_ignored(kind: str) -> None:
    batch = read(post(observation(), observation(clientMac="22:33:44:55:66:77"), type=kind))
    assert (batch.accepted, batch.ignored, batch.rejected, batch.events) == (0, 2, 0, [])
    assert batch.by_type == {("bluetooth", "ignored"): 2}


def test_unknown_type_is_ignored_under_a_bounded_label() -> None:
    batch = read(post(observation(), type="Camera-🙂" * 100))
    assert (batch.ignored, batch.events, batch.by_type) == (1, [], {("other", "ignored"): 1})


def test_wifi_type_is_matched_case_insensitively() -> None:
    assert read(post(observation(), type="wifi")).accepted == 3


def test_empty_observations_list_is_an_empty_batch() -> None:
    batch = read(post())
    assert (batch.accepted, batch.ignored, batch.rejected, batch.events, batch.by_type) == \
        (0, 0, 0, [], {})


# -- ipv4 ----------------------------------------------------------------------------


@pytest.mark.parametrize(("ipv4", "seen"), [
    ("192.168.0.251", "192.168.0.251"), ("/10.0.0.5", "10.0.0.5"),
    ("android-ab12/10.0.0.5", "10.0.0.5"), (" 172.16.4.2 ", "172.16.4.2"),
    ("100.64.1.2", "100.64.1.2"), ("::ffff:10.1.2.3", "10.1.2.3"),
    (None, None), ("", None), ("/", None), ("8.8.8.8", None), ("/127.0.0.1", None),
    ("fd00::1", None), ("10.0.0.256", None), (167772165, None), (["10.0.0.5"], None)])
def test_only_a_private_ipv4_is_an_ip_sighting(ipv4: Any, seen: str | None) -> None:
    batch = read(post(observation(ipv4=ipv4)))
    sightings = [e for e in batch.events if isinstance(e, IpSeen)]
    assert sightings == ([] if seen is None else
                         [IpSeen(seen, "11:22:33:44:55:66", epoch("2019-11-28T14:27:46+00:00"))])
    assert batch.accepted == 3  # the fixes do not depend on the IP


def test_ip_texts_kept_across_posts_give_the_same_sightings() -> None:
    known: dict[str, str | None] = {}
    texts = ["192.168.0.251", "/10.0.0.5", "8.8.8.8", "host/10.0.0.5"]
    for _ in range(2):  # the second round is answered from what the first one kept
        for text in texts:
            body = post(observation(ipv4=text))
            kept = read_post(body, NOW_S, secret=SECRET, known_ips=known)
            assert kept.events == read(body).events
    assert known == {"192.168.0.251": "192.168.0.251", "/10.0.0.5": "10.0.0.5", "8.8.8.8": None,
                     "host/10.0.0.5": "10.0.0.5"}


def test_ip_texts_kept_never_outgrow_their_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tys_server.feeds.meraki.MAX_KNOWN_IPS", 2)
    known: dict[str, str | None] = {}
    body = post(*(observation(clientMac=f"11:22:33:44:55:{i:02x}", ipv4=f"10.0.0.{i}")
                  for i in range(5)))
    batch = read_post(body, NOW_S, secret=SECRET, known_ips=known)
    assert len(known) <= 2
    assert [e.ip for e in batch.events if isinstance(e, IpSeen)] == \
        [f"10.0.0.{i}" for i in range(5)]


def test_client_without_locations_is_counted_ignored_and_still_gives_its_ip() -> None:
    batch = read(post(observation(locations=[]), observation(clientMac="22:33:44:55:66:77",
                                                             locations=None, ipv4=None)))
    assert (batch.accepted, batch.ignored, batch.rejected) == (0, 2, 0)
    assert batch.by_type == {("observation", "ignored"): 2}
    assert batch.events == [IpSeen("192.168.0.251", "11:22:33:44:55:66", NOW_S)]


@pytest.mark.parametrize("locations", ["x", 5, {"x": "1"}])
def test_locations_that_are_no_list_reject_the_observation(locations: Any) -> None:
    batch = read(post(observation(locations=locations)))
    assert (batch.rejected, batch.events) == (1, [])


# -- locations[] -------------------------------------------------------------------------


def test_fixes_are_sorted_by_time() -> None:
    batch = read(post(observation(locations=sample_locations()[::-1])))
    assert [f.ts for f in fixes(batch)] == sorted(f.ts for f in fixes(batch))
    assert fixes(batch)[0].x_ft == 7.976651798199431 / M_PER_FT


def test_string_and_number_coordinates_are_the_same_fix() -> None:
    as_strings = one_fix(location("1.5", "-2.25"))
    as_numbers = one_fix(location(1.5, -2.25))
    assert as_strings == as_numbers
    assert (as_strings.x_ft, as_strings.y_ft) == (1.5 / M_PER_FT, -2.25 / M_PER_FT)


@pytest.mark.parametrize(("x", "y"), [
    ("NaN", "1.0"), ("1.0", "nan"), (math.nan, 1.0), ("Infinity", "1"), (1.0, -math.inf),
    ("abc", "1"), (None, "1"), (DROP, "1"), (True, 1.0), ([], 1.0), ({}, 1.0), ("", "1"),
    ("1e400", "1"), ("4e8", "1")])
def test_unreadable_or_non_finite_coordinates_reject_the_fix(x: Any, y: Any) -> None:
    assert_fix_rejected(location(x, y))


@pytest.mark.parametrize("entry", [None, 5, "7.9,10.5", [1, 2]])
def test_location_that_is_no_object_rejects_the_fix(entry: Any) -> None:
    assert_fix_rejected(entry)


def test_variance_at_the_limit_is_kept_and_over_it_dropped_and_counted() -> None:
    assert one_fix(location(variance=25.0)).uncertainty_ft == 25.0 / M_PER_FT
    batch = read(post(observation(locations=[location(variance=25.01), location(
        time="2019-11-28T14:28:00Z", variance="2.5")], ipv4=None)))
    assert (batch.accepted, batch.ignored, batch.rejected) == (1, 1, 0)
    assert batch.by_type == {("fix", "accepted"): 1, ("fix", "ignored"): 1}
    assert fixes(batch)[0].uncertainty_ft == 2.5 / M_PER_FT


def test_max_variance_is_the_callers() -> None:
    batch = read(post(observation(ipv4=None)), max_variance_m=1.6)
    assert (batch.accepted, batch.ignored) == (1, 2)  # variances 1.69, 1.62, 1.51 m


def test_fix_without_variance_has_no_uncertainty() -> None:
    assert one_fix(location(variance=DROP)).uncertainty_ft is None
    assert one_fix(location(variance=None)).uncertainty_ft is None


@pytest.mark.parametrize("variance", [-0.1, "NaN", "wide", True, [2.0]])
def test_unreadable_or_negative_variance_rejects_the_fix(variance: Any) -> None:
    assert_fix_rejected(location(variance=variance))


def test_early_v3_spellings_give_the_same_fix() -> None:
    early = location(floorPlanId=DROP, floorPlanName=DROP, variance=DROP,
                     floorplanId=PLAN, floorplanName="3rd Floor", unc=1.6885258062410806)
    assert one_fix(early) == one_fix(location())


def test_floors_are_namespaced_per_feed() -> None:
    fix = one_fix(location(floorPlanId="723413320329068590"))
    assert fix.floor == floor_key("meraki:723413320329068590")
    assert fix.floor != 723413320329068590  # never the CMX floor of the same number
    assert one_fix(location(floorPlanId=723413320329068590)).floor == fix.floor
    assert -(1 << 62) <= fix.floor < (1 << 62)


@pytest.mark.parametrize("plan", [None, "", DROP])
def test_fix_without_a_floor_plan_has_no_floor(plan: Any) -> None:
    assert one_fix(location(floorPlanId=plan)).floor is None


@pytest.mark.parametrize("plan", [1.5, True, ["g_1"], {"id": "g_1"}, 1 << 70])
def test_unreadable_floor_plan_rejects_the_fix(plan: Any) -> None:
    assert_fix_rejected(location(floorPlanId=plan))


@pytest.mark.parametrize(("stamp", "expected"), [
    ("2019-11-28T14:27:21Z", "2019-11-28T14:27:21+00:00"),
    ("2019-11-28T14:27:21.500Z", "2019-11-28T14:27:21.500+00:00"),
    ("2019-11-28T15:27:21+01:00", "2019-11-28T14:27:21+00:00"),
    ("2019-11-28 14:27:21", "2019-11-28T14:27:21+00:00"),  # no offset: UTC
    (1574951241, "2019-11-28T14:27:21+00:00"),  # epoch seconds (a mock server's latestRecord)
    (1574951241000, "2019-11-28T14:27:21+00:00"),  # epoch ms
    ("1574951241", "2019-11-28T14:27:21+00:00")])
def test_time_is_read_from_iso_or_epoch(stamp: Any, expected: str) -> None:
    assert one_fix(location(time=stamp)).ts == epoch(expected)


@pytest.mark.parametrize("stamp", [DROP, None, "", "yesterday", "2019-13-45T00:00:00Z", 0, -5,
                                   True, [1574951241], "NaN"])
def test_fix_without_a_readable_time_is_rejected(stamp: Any) -> None:
    assert_fix_rejected(location(time=stamp))


def test_time_over_five_minutes_ahead_becomes_the_receive_time() -> None:
    ahead = datetime.fromtimestamp(NOW_S + 301, UTC).isoformat()
    near = datetime.fromtimestamp(NOW_S + 299, UTC).isoformat()
    assert one_fix(location(time=ahead)).ts == NOW_S
    assert one_fix(location(time=near)).ts == NOW_S + 299


def test_replaced_future_times_are_counted_per_fix() -> None:
    ahead = datetime.fromtimestamp(NOW_S + 3600, UTC).isoformat()
    batch = read(post(observation(locations=[location(time=ahead), location(time=ahead),
                                             location()])))
    assert batch.accepted == 3
    assert batch.future_ts == 2  # both fixes, though their time text was read once
    assert read(post(observation())).future_ts == 0


def test_a_repeated_post_gives_the_same_events() -> None:
    body = post(observation(), observation(clientMac="22:33:44:55:66:77"))
    first, again = read(copy.deepcopy(body), hash_key=KEY), read(body, hash_key=KEY)
    assert first.events == again.events  # same ts: the state drops them as not newer


# -- the fake poster's bodies ----------------------------------------------------------------


@pytest.mark.parametrize("quirks", [
    meraki_poster.Quirks(), meraki_poster.Quirks(early_v3=True),
    meraki_poster.Quirks(string_coordinates=False), meraki_poster.Quirks(ipv4="slash"),
    meraki_poster.Quirks(version="3.1")])
def test_poster_bodies_read_back_to_their_fixes(quirks: meraki_poster.Quirks) -> None:
    sighting = meraki_poster.Sighting("02:00:0a:01:00:01", "10.1.0.1", 2, 120.5, 40.25,
                                      NOW_S - 30)
    entry = meraki_poster.location(sighting, 2.2, quirks)
    body = meraki_poster.body([meraki_poster.observation(sighting.mac, sighting.ip, [entry],
                                                         quirks)], SECRET, quirks)
    batch = read(body)
    fix, seen = batch.events
    assert isinstance(fix, Fix)
    plan = meraki_poster.floor_plan_id(2)
    assert (fix.mac, fix.floor, fix.ts) == (sighting.mac, floor_key("meraki:" + plan), NOW_S - 30)
    assert (round(fix.x_ft, 9), round(fix.y_ft, 9)) == (120.5, 40.25)
    assert fix.uncertainty_ft == 2.2 / M_PER_FT
    assert seen == IpSeen("10.1.0.1", sighting.mac, NOW_S - 30)


# -- properties -------------------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                max_size=4),
    max_leaves=20)
FIELDS = ["x", "y", "time", "variance", "unc", "floorPlanId", "floorplanId"]
LOCATION = st.one_of(JSON, st.dictionaries(st.sampled_from(FIELDS), JSON | st.text(
    alphabet="0123456789.-eENaIinfTZ: ", max_size=25)))
OBSERVATION = st.one_of(JSON, st.fixed_dictionaries({}, optional={
    "clientMac": JSON | st.just("11:22:33:44:55:66"),
    "ipv4": JSON | st.just("/10.0.0.5"), "locations": JSON | st.lists(LOCATION, max_size=4)}))


@settings(max_examples=300, deadline=None)
@given(JSON)
def test_no_json_value_makes_read_post_raise_anything_but_its_errors(body: Any) -> None:
    try:
        read_post(body, NOW_S, secret=SECRET, hash_key=KEY, max_variance_m=25.0)
    except PostError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["version", "secret", "type", "data"]),
                       JSON | st.just(SECRET) | st.just("3.0") | st.just("WiFi"), max_size=4))
def test_no_envelope_makes_read_post_raise_anything_but_its_errors(body: Any) -> None:
    try:
        read(body, hash_key=KEY)
    except PostError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.lists(OBSERVATION, max_size=5))
def test_any_observations_are_counted_whole_and_never_raise(observations: list[Any]) -> None:
    batch = read(post(*observations), hash_key=KEY)
    assert batch.accepted == len(fixes(batch))
    assert {label for label, _ in batch.by_type} <= {"fix", "observation"}
    for fix in fixes(batch):
        assert math.isfinite(fix.x_ft) and math.isfinite(fix.y_ft) and fix.ts <= NOW_S + 300
