"""IP → device from the feeds' sightings (DESIGN 12.1), as plain functions."""

from __future__ import annotations

from tys_server.core.events import IpSeen
from tys_server.lookup.observed import ObservedIps

TTL_S = 1800.0
PHONE = "00:00:aa:bb:cc:01"
OTHER = "00:00:aa:bb:cc:02"


def test_fresh_sighting_answers_and_old_one_does_not() -> None:
    observed = ObservedIps(TTL_S)
    observed.saw(IpSeen("10.0.0.5", PHONE, 1000.0))
    assert observed.device_at("10.0.0.5", 1000.0 + TTL_S) == PHONE
    assert observed.device_at("10.0.0.5", 1000.0 + TTL_S + 1.0) is None
    assert observed.device_at("10.0.0.6", 1000.0) is None


def test_newest_sighting_of_an_ip_wins_whatever_the_arrival_order() -> None:
    observed = ObservedIps(TTL_S)
    observed.saw(IpSeen("10.0.0.5", OTHER, 2000.0))
    observed.saw(IpSeen("10.0.0.5", PHONE, 1500.0))  # late, out of order: older
    assert observed.device_at("10.0.0.5", 2001.0) == OTHER
    observed.saw(IpSeen("10.0.0.5", PHONE, 2500.0))
    assert observed.device_at("10.0.0.5", 2501.0) == PHONE


def test_addresses_are_stored_canonically() -> None:
    observed = ObservedIps(TTL_S)
    observed.saw(IpSeen("::ffff:10.0.0.7", PHONE, 1000.0))
    assert observed.device_at("10.0.0.7", 1000.0) == PHONE
    observed.saw(IpSeen("not an ip", PHONE, 1000.0))
    assert len(observed) == 1


def test_map_is_bounded_and_forgets_the_oldest_first() -> None:
    observed = ObservedIps(TTL_S, max_entries=3)
    for i in range(5):
        observed.saw(IpSeen(f"10.0.0.{i}", PHONE, 1000.0 + i))
    assert len(observed) == 3
    assert observed.device_at("10.0.0.1", 1010.0) is None
    assert observed.device_at("10.0.0.4", 1010.0) == PHONE


def test_forget_old_drops_expired_sightings_only() -> None:
    observed = ObservedIps(TTL_S)
    observed.saw(IpSeen("10.0.0.1", PHONE, 1000.0))
    observed.saw(IpSeen("10.0.0.2", OTHER, 2000.0))
    observed.forget_old(1000.0 + TTL_S + 1.0)
    assert len(observed) == 1
    assert observed.device_at("10.0.0.2", 2000.0) == OTHER


def test_another_spelling_of_a_known_ip_is_the_same_entry() -> None:
    observed = ObservedIps(TTL_S)
    observed.saw(IpSeen("10.0.0.7", OTHER, 2000.0))
    observed.saw(IpSeen("::ffff:10.0.0.7", PHONE, 1500.0))  # older: ignored
    assert observed.device_at("10.0.0.7", 2001.0) == OTHER
    observed.saw(IpSeen("::ffff:10.0.0.7", PHONE, 2500.0))
    assert (len(observed), observed.device_at("10.0.0.7", 2501.0)) == (1, PHONE)


def test_a_full_map_forgets_the_ip_seen_longest_ago_not_the_first_added() -> None:
    observed = ObservedIps(TTL_S, max_entries=3)
    for i in range(3):
        observed.saw(IpSeen(f"10.0.0.{i}", PHONE, 1000.0 + i))
    observed.saw(IpSeen("10.0.0.0", OTHER, 1010.0))  # seen again: now the newest
    assert len(observed) == 3
    observed.saw(IpSeen("10.0.0.9", PHONE, 1011.0))
    assert observed.device_at("10.0.0.0", 1012.0) == OTHER
    assert observed.device_at("10.0.0.1", 1012.0) is None
