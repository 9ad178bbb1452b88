"""The gate of timer-driven feeds (DESIGN 12.1), as plain functions."""

from __future__ import annotations

import math
import random

from tys_server.core.adaptive import gate_distance_ft
from tys_server.core.events import Fix
from tys_server.core.gate import GateParams, adaptive_gate, gate
from tys_server.core.tracking import FilterParams, Track, advance

MAC = "00:11:22:33:44:55"
FLOOR = 7
PARAMS = GateParams(gate_ft=50.0, max_uncertainty_ft=30.0)


def fix(x_ft: float, y_ft: float, ts: float, *, floor: int = FLOOR,
        uncertainty_ft: float | None = 5.0) -> Fix:
    return Fix(MAC, floor, x_ft, y_ft, uncertainty_ft, ts)


def test_first_fix_passes_to_start_the_track() -> None:
    movement = gate(None, fix(10.0, 20.0, 100.0), PARAMS)
    assert movement is not None
    assert (movement.x_ft, movement.y_ft, movement.move_ft, movement.ts) == (10.0, 20.0, None,
                                                                             100.0)


def test_fix_closer_than_gate_to_newest_point_is_held() -> None:
    track = Track(FLOOR, 0.0, 0.0, 100.0)
    assert gate(track, fix(49.9, 0.0, 105.0), PARAMS) is None
    assert gate(track, fix(30.0, 40.0, 105.0), PARAMS) is not None  # exactly 50 ft


def test_gate_measures_from_p2_once_the_track_has_one() -> None:
    track = Track(FLOOR, 0.0, 0.0, 100.0)
    track, _, _ = advance(track, gate(track, fix(60.0, 0.0, 110.0), PARAMS),  # type: ignore[arg-type]
                          FilterParams())
    assert gate(track, fix(100.0, 0.0, 120.0), PARAMS) is None  # 40 ft from p2, 100 from p1
    assert gate(track, fix(110.0, 0.0, 120.0), PARAMS) is not None


def test_uncertain_fix_is_dropped_and_unknown_uncertainty_is_kept() -> None:
    assert gate(None, fix(0.0, 0.0, 100.0, uncertainty_ft=30.1), PARAMS) is None
    assert gate(None, fix(0.0, 0.0, 100.0, uncertainty_ft=None), PARAMS) is not None
    assert gate(None, fix(0.0, 0.0, 100.0, uncertainty_ft=99.0), GateParams(50.0)) is not None


def test_new_floor_passes_even_close_by() -> None:
    track = Track(FLOOR, 0.0, 0.0, 100.0)
    assert gate(track, fix(1.0, 1.0, 105.0, floor=FLOOR + 1), PARAMS) is not None


def test_stale_fix_is_held() -> None:
    track = Track(FLOOR, 0.0, 0.0, 100.0)
    assert gate(track, fix(500.0, 0.0, 99.0), PARAMS) is None


def test_jitter_around_a_still_phone_never_reaches_the_filter() -> None:
    track = Track(FLOOR, 100.0, 100.0, 0.0)
    jitter = [(103.0, 98.0), (96.0, 104.0), (110.0, 95.0), (91.0, 112.0), (100.0, 100.0)]
    passed = [gate(track, fix(x, y, 10.0 * i), PARAMS) for i, (x, y) in enumerate(jitter, 1)]
    assert passed == [None] * len(jitter)


# -- the adaptive gate (tracking.filter: adaptive, docs/accuracy.md) ------------------------

ADAPTIVE_GATE = GateParams(gate_ft=50.0, max_uncertainty_ft=82.0, gate_min_ft=30.0)
GATED = FilterParams(mode="adaptive", gated=True)


def resting(jitter: list[tuple[float, float]]) -> Track:
    """A device at rest at (0, 0) since ts 0, its next fixes jitter (4 s apart)."""
    track = Track(FLOOR, 0.0, 0.0, 0.0)
    for i, (x, y) in enumerate(jitter):
        movement = adaptive_gate(track, fix(x, y, 4.0 * (i + 1), uncertainty_ft=None),
                                 ADAPTIVE_GATE)
        if movement is not None:
            advance(track, movement, GATED)
    return track


def test_a_jump_is_refuted_by_the_fix_after_it() -> None:
    track = resting([(2, 1), (-1, 2), (1, -2)])
    assert adaptive_gate(track, fix(150.0, 0.0, 16.0), ADAPTIVE_GATE) is None  # a candidate
    assert adaptive_gate(track, fix(1.0, -1.0, 20.0), ADAPTIVE_GATE) is None  # back: a jump
    assert (track.x1_ft, track.x2_ft, track.cand_x_ft) == (0.0, None, 1.0)


def test_a_move_confirmed_by_the_next_fix_passes_at_its_own_place_and_time() -> None:
    track = resting([(2, 1), (-1, 2), (1, -2)])
    assert adaptive_gate(track, fix(100.0, 0.0, 16.0), ADAPTIVE_GATE) is None
    movement = adaptive_gate(track, fix(104.0, 1.0, 20.0), ADAPTIVE_GATE)
    assert movement is not None
    assert (movement.x_ft, movement.y_ft, movement.move_ft, movement.ts) == \
        (100.0, 0.0, None, 16.0)


def test_a_repeated_fix_keeps_the_candidate_and_the_jitter() -> None:
    track = resting([(2, 1), (-1, 2)])
    before = track.adaptive_row()
    assert adaptive_gate(track, fix(-1.0, 2.0, 12.0), ADAPTIVE_GATE) is None  # the same spot
    assert adaptive_gate(track, fix(-1.5, 2.5, 16.0), ADAPTIVE_GATE) is None  # within 1 ft
    assert track.adaptive_row() == before


def test_a_fix_older_than_the_previous_one_is_dropped() -> None:
    track = resting([(2, 1), (-1, 2)])
    before = track.adaptive_row()
    assert adaptive_gate(track, fix(60.0, 60.0, 7.0), ADAPTIVE_GATE) is None  # after last_ts 0
    assert track.adaptive_row() == before
    assert adaptive_gate(track, fix(5.0, 5.0, -1.0), ADAPTIVE_GATE) is None  # before it: stale


def test_the_gate_follows_each_device_s_own_noise() -> None:
    rng = random.Random(3)
    calm = resting([(rng.gauss(0, 2), rng.gauss(0, 2)) for _ in range(200)])
    noisy = resting([(rng.gauss(0, 30), rng.gauss(0, 30)) for _ in range(200)])
    assert gate_distance_ft(calm.jitter_ft, 30.0, 50.0) == 30.0  # the minimum
    assert gate_distance_ft(noisy.jitter_ft, 30.0, 50.0) == 50.0  # the maximum
    # Fixes more than 30 s apart say nothing about the noise.
    track = resting([(2, 1)])
    before = track.jitter_ft
    adaptive_gate(track, fix(40.0, 0.0, 4.0 + 31.0), ADAPTIVE_GATE)
    assert track.jitter_ft == before


def test_a_phone_whose_fix_drifts_slowly_earns_nothing() -> None:
    # A location engine's error wanders: consecutive fixes 4 s apart differ by at most
    # 4 ft, yet they roam 25 ft either way from the phone. Sized on consecutive steps, the
    # gate stayed at its minimum and the drift was credited (114 m over 20 minutes).
    track = Track(FLOOR, 0.0, 0.0, 0.0)
    for i in range(1, 301):
        ts = 4.0 * i
        x = 25.0 * math.sin(2 * math.pi * ts / 150.0)
        y = 25.0 * math.sin(2 * math.pi * ts / 110.0)
        movement = adaptive_gate(track, fix(x, y, ts, uncertainty_ft=None), ADAPTIVE_GATE)
        if movement is not None:
            advance(track, movement, GATED)
    assert gate_distance_ft(track.jitter_ft, 30.0, 50.0) > 40.0
    assert track.total_m == 0.0


def test_a_walker_s_steps_leave_the_jitter_alone() -> None:
    # 1.3 m/s, a fix every 4 s: the gate passes a point every few fixes, so no fix is a
    # sample of the still spread (only 30 s without a pass makes one).
    track = resting([])
    before = track.jitter_ft
    for i in range(1, 31):
        movement = adaptive_gate(track, fix(17.0 * i, 0.0, 4.0 * i, uncertainty_ft=None),
                                 ADAPTIVE_GATE)
        if movement is not None:
            advance(track, movement, GATED)
    assert track.total_m > 0.0
    assert track.jitter_ft == before


def test_gate_min_above_gate_ft_is_capped_at_it() -> None:
    assert GateParams(gate_ft=20.0, gate_min_ft=30.0).gate_min_ft == 20.0
    assert FilterParams(mode="adaptive", gate_min_ft=30.0, gate_max_ft=0.0).gate_min_ft == 0.0


def test_the_adaptive_gate_drops_uncertain_fixes_and_passes_a_new_floor() -> None:
    track = resting([(2, 1)])
    before = track.adaptive_row()
    assert adaptive_gate(track, fix(90.0, 0.0, 8.0, uncertainty_ft=82.5), ADAPTIVE_GATE) is None
    assert track.adaptive_row() == before  # dropped before it could be a candidate
    upstairs = adaptive_gate(track, fix(2.0, 1.0, 8.0, floor=FLOOR + 1), ADAPTIVE_GATE)
    assert upstairs is not None and (upstairs.floor, upstairs.ts) == (FLOOR + 1, 8.0)
