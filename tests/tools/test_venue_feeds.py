"""The venue as each feed reports it (tools/cmx_sim/venue.py, cadence.py): cadences, noise,
late delivery. Statistics come from fixed seeds: the same run gives the same figures."""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections import defaultdict
from itertools import pairwise

import pytest

from tools.cmx_sim.cadence import LateDelivery, for_feed
from tools.cmx_sim.devices import make_devices
from tools.cmx_sim.venue import FIRST_FIX_MOVE_FT, Fix, Venue, VenueConfig

# A floor so large that no estimate of a stationary device is snapped onto its edge.
WIDE = VenueConfig(floors=1, width_ft=100_000.0, depth_ft=100_000.0, outlier_rate=0.0,
                   movement_distance_ft=0.0)


def _by_device(fixes: list[Fix]) -> dict[int, list[Fix]]:
    out: dict[int, list[Fix]] = defaultdict(list)
    for fix in fixes:
        out[fix.device].append(fix)
    return out


def _errors_x(venue: Venue, fixes: list[Fix]) -> dict[int, list[float]]:
    """Each stationary device's x errors in time order (its true x never changes)."""
    return {device: [f.x_ft - venue.movers[device].x for f in seq]
            for device, seq in _by_device(fixes).items()}


def _lag1(series: dict[int, list[float]]) -> float:
    pairs = [(a, b) for errors in series.values() for a, b in pairwise(errors)]
    return sum(a * b for a, b in pairs) / sum(a * a for a, _ in pairs)


def test_same_seed_walks_the_same_truth_on_every_feed_and_noise_model() -> None:
    devices = make_devices(40, 10, 3, 4, "random")
    truths = set()
    for feed in ("cmx", "firehose", "meraki"):
        for noise in ("independent", "correlated"):
            cfg = for_feed(VenueConfig(noise_model=noise, noise_ft=20.0), feed)
            venue = Venue(devices, cfg, 4)
            venue.step(1800.0)
            venue.finish(1800.0)
            truths.add(tuple(round(venue.true_distance_m(i), 6) for i in range(50)))
    assert len(truths) == 1
    assert min(next(iter(truths))[:40]) > 0  # every walker walked


def test_spaces_reports_every_device_every_2_to_6_seconds_with_some_repeats() -> None:
    cfg = for_feed(VenueConfig(), "firehose")
    fixes = Venue(make_devices(30, 10, 3, 2, "random"), cfg, 2).step(1200.0)
    gaps = [b.t_s - a.t_s for seq in _by_device(fixes).values() for a, b in pairwise(seq)]
    assert len(_by_device(fixes)) == 40
    assert 2.0 <= min(gaps) and max(gaps) <= 6.0
    assert statistics.fmean(gaps) == pytest.approx(4.0, abs=0.1)
    repeats = sum(1 for seq in _by_device(fixes).values() for a, b in pairwise(seq)
                  if (a.x_ft, a.y_ft) == (b.x_ft, b.y_ft))
    assert repeats / len(gaps) == pytest.approx(0.1, abs=0.015)


def test_spaces_fixes_include_jumps_above_walking_speed() -> None:
    cfg = for_feed(VenueConfig(noise_ft=5.0), "firehose")
    fixes = Venue(make_devices(30, 0, 1, 3, "random"), cfg, 3).step(1800.0)
    speeds = [math.hypot(b.x_ft - a.x_ft, b.y_ft - a.y_ft) * 0.3048 / (b.t_s - a.t_s)
              for seq in _by_device(fixes).values() for a, b in pairwise(seq)]
    fast = sum(1 for v in speeds if v > 4.42)  # the filter's max_speed_mps
    assert 0.005 < fast / len(speeds) < 0.05  # the outliers: ~1 % of fixes, two legs each


def test_meraki_estimates_every_5_to_15_seconds() -> None:
    fixes = Venue(make_devices(20, 5, 3, 6, "random"), for_feed(VenueConfig(), "meraki"),
                  6).step(1800.0)
    gaps = [b.t_s - a.t_s for seq in _by_device(fixes).values() for a, b in pairwise(seq)]
    assert 5.0 <= min(gaps) and max(gaps) <= 15.0
    assert statistics.fmean(gaps) == pytest.approx(10.0, abs=0.2)
    assert all(f.move_ft == FIRST_FIX_MOVE_FT for f in (seq[0] for seq in
                                                        _by_device(fixes).values()))


def test_cmx_keeps_its_movement_trigger_and_fixed_interval() -> None:
    cfg = for_feed(VenueConfig(), "cmx")
    assert cfg == VenueConfig()
    by_device = _by_device(Venue(make_devices(20, 0, 3, 6, "random"), cfg, 6).step(1800.0))
    assert len(by_device) == 20
    for seq in by_device.values():
        assert seq[0].move_ft == FIRST_FIX_MOVE_FT
        assert all(b.move_ft >= 50.0 or b.floor != a.floor for a, b in pairwise(seq))
        # Estimates every 5 s at the device's own phase: fixes only on that grid.
        assert all(abs((f.t_s - seq[0].t_s) / 5.0 - round((f.t_s - seq[0].t_s) / 5.0)) < 1e-6
                   for f in seq)


def test_correlated_noise_has_its_sigma_and_correlation_time() -> None:
    cfg = dataclasses.replace(WIDE, noise_model="correlated", noise_ft=10.0,
                              noise_corr_s=30.0, compute_interval_s=5.0)
    venue = Venue(make_devices(0, 60, 1, 8, "random"), cfg, 8)
    errors = _errors_x(venue, venue.step(3 * 3600.0))
    flat = [e for seq in errors.values() for e in seq]
    assert statistics.pstdev(flat) == pytest.approx(10.0, rel=0.06)
    assert _lag1(errors) == pytest.approx(math.exp(-5.0 / 30.0), abs=0.02)  # 0.846


def test_independent_noise_has_its_sigma_and_no_memory() -> None:
    cfg = dataclasses.replace(WIDE, noise_ft=10.0, compute_interval_s=5.0)
    venue = Venue(make_devices(0, 60, 1, 8, "random"), cfg, 8)
    errors = _errors_x(venue, venue.step(3600.0))
    flat = [e for seq in errors.values() for e in seq]
    assert statistics.pstdev(flat) == pytest.approx(10.0, rel=0.03)
    assert abs(_lag1(errors)) < 0.03


def test_correlated_noise_keeps_the_outlier_jumps() -> None:
    cfg = dataclasses.replace(WIDE, noise_model="correlated", noise_ft=2.0,
                              outlier_rate=0.02, outlier_ft=60.0)
    venue = Venue(make_devices(0, 40, 1, 9, "random"), cfg, 9)
    fixes = venue.step(3600.0)
    far = [f for f in fixes if math.hypot(f.x_ft - venue.movers[f.device].x,
                                          f.y_ft - venue.movers[f.device].y) > 20.0]
    assert len(far) / len(fixes) == pytest.approx(0.02, abs=0.005)


def test_late_delivery_is_out_of_order_by_at_most_20_seconds() -> None:
    fixes = Venue(make_devices(30, 10, 3, 5, "random"), for_feed(VenueConfig(), "firehose"),
                  5).step(600.0)
    delivery = LateDelivery(seed=5)
    delivered: list[tuple[float, Fix]] = []
    for t_s in range(1, 601):
        delivery.add(f for f in fixes if t_s - 1 < f.t_s <= t_s)
        delivered += [(float(t_s), fix) for fix in delivery.due(float(t_s))]
    delivered += [(601.0, fix) for fix in delivery.rest()]
    assert sorted(id(f) for _, f in delivered) == sorted(id(f) for f in fixes)
    delays = [at - fix.t_s for at, fix in delivered]
    assert max(delays) <= 21.0  # up to 20 s late, plus the tick
    late = sum(1 for d in delays if d > 1.0)
    assert late / len(delays) == pytest.approx(0.1 * 0.95, abs=0.02)  # a tenth, most > 1 s
    overtaken = sum(1 for (_, a), (_, b) in pairwise(delivered) if b.t_s < a.t_s)
    assert overtaken > 0
    assert len(delivery) == 0


def test_unknown_feed_and_bad_noise_model_are_refused() -> None:
    with pytest.raises(ValueError, match="feed must be one of"):
        for_feed(VenueConfig(), "wifi")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="noise_model"):
        VenueConfig(noise_model="pink")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="layout"):
        VenueConfig(layout="maze")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="aisle_ft"):
        VenueConfig(layout="aisles", cross_aisle_ft=0.0)


def test_in_an_aisle_hall_walkers_keep_to_the_aisles_and_turn_without_pausing() -> None:
    cfg = VenueConfig(floors=1, layout="aisles", aisle_ft=40.0, cross_aisle_ft=120.0,
                      floor_change_prob=0.0)
    venue = Venue(make_devices(20, 0, 1, 3, "random"), cfg, 3)
    turns_walking = 0
    for mover in venue.movers:
        x0, y0, d0 = mover.x, mover.y, mover.distance_ft
        for second in range(1, 1801):
            mover.advance(float(second))
            x, y = mover.x, mover.y
            on_booth_aisle = math.isclose(x / 40.0, round(x / 40.0), abs_tol=1e-9)
            on_cross_aisle = math.isclose(y / 120.0, round(y / 120.0), abs_tol=1e-9)
            assert on_booth_aisle or on_cross_aisle, (x, y)
            step = mover.distance_ft - d0
            if x != x0 and y != y0:  # a turn within this second: walked round the corner
                assert step > math.hypot(x - x0, y - y0)
                turns_walking += 1
            else:  # straight along an aisle (or standing at a booth)
                assert step == pytest.approx(math.hypot(x - x0, y - y0))
            x0, y0, d0 = x, y, mover.distance_ft
    assert turns_walking > 100  # two crossings on most booth-to-booth walks


def test_after_the_session_the_truth_stands_still_while_the_fixes_go_on() -> None:
    venue = Venue(make_devices(10, 0, 1, 7, "random"), for_feed(VenueConfig(), "firehose"), 7)
    venue.step(600.0)
    venue.stop_walking(600.0)
    walked = [venue.true_distance_m(i) for i in range(10)]
    after = venue.step(780.0)
    venue.finish(780.0)
    assert [venue.true_distance_m(i) for i in range(10)] == walked
    assert {f.device for f in after} == set(range(10))  # still reported on Spaces' timer
    assert min(walked) > 0  # every walker walked before the end


def test_the_truth_starts_at_each_devices_first_report() -> None:
    # Meraki's first estimate comes up to 15 s after t = 0, when half the walkers are
    # already walking: what they walked before it, no feed could show.
    cfg = for_feed(VenueConfig(noise_ft=0.0, outlier_rate=0.0), "meraki")
    devices = make_devices(30, 0, 3, 5, "test")
    venue = Venue(devices, cfg, 5)
    assert venue.reported_distance_m(0) == 0.0  # not reported yet
    first_s = {}
    for fix in venue.step(600.0):
        first_s.setdefault(fix.device, fix.t_s)
    venue.finish(600.0)
    twin = Venue(devices, cfg, 5)  # the same seeded walks, stopped at each first report
    before_m = []
    for index, t_s in sorted(first_s.items()):
        twin.movers[index].advance(t_s)
        before_m.append(twin.true_distance_m(index))
        assert venue.reported_distance_m(index) == pytest.approx(
            venue.true_distance_m(index) - before_m[-1], abs=1e-9)
    assert len(first_s) == 30
    assert sum(m > 1.0 for m in before_m) >= 5  # walkers already on their way at t = 0
