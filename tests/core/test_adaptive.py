"""The adaptive filter and gate (tracking.filter: adaptive, docs/accuracy.md): plain functions."""

from __future__ import annotations

import math
import random
from collections.abc import Iterable

import pytest

from tys_server.core.adaptive import (
    JITTER_PRIOR_FT,
    LONE,
    NONE,
    SETTLED,
    STARTED,
    WALKING,
    ZIG_PRIOR,
    ZIGZAG_MIN,
    gate_distance_ft,
    run_tolerance_ft,
)
from tys_server.core.events import Fix, Movement
from tys_server.core.gate import GateParams, adaptive_gate, gate
from tys_server.core.tracking import FilterParams, Track, advance, settle

# CMX movements. The rules' tests take the stop extension at half a trigger distance
# (25 ft), so their geometry reads in round numbers; the default share is below.
PARAMS = FilterParams(mode="adaptive", cmx_stop_ext_share=0.5)
GATED = FilterParams(mode="adaptive", gated=True)  # movements from the gate
GATE = GateParams(gate_ft=50.0, max_uncertainty_ft=82.0, gate_min_ft=30.0)
M_PER_FT = 0.3048
LEG_M = 50 * M_PER_FT  # one 50 ft CMX leg
STOP_M = 0.5 * 50 * M_PER_FT  # half a trigger distance past the last fix
FLOOR = 1


def mv(x_ft: float, y_ft: float, ts: float, move_ft: float | None = 50.0,
       floor: int = FLOOR) -> Movement:
    return Movement("m", floor, x_ft, y_ft, move_ft, ts)


def fix(x_ft: float, y_ft: float, ts: float, floor: int = FLOOR) -> Fix:
    return Fix("m", floor, x_ft, y_ft, None, ts)


def walk(moves: Iterable[Movement], track: Track | None = None,
         params: FilterParams = PARAMS) -> tuple[Track, list[float]]:
    """Feed moves through the adaptive filter; return the track and each credit."""
    credits = []
    for move in moves:
        track, credited_m, _ = advance(track, move, params)
        credits.append(credited_m)
    assert track is not None
    return track, credits


def zigzagging(first: Movement, zig: float = 1.0) -> Track:
    """A track whose device zig-zags (by default zig 1: independent noise, so rule D never
    runs), as its walks before would have left it."""
    track = Track(first.floor, first.x_ft, first.y_ft, first.ts)
    track.zig = zig
    return track


def straight(points: int, start_s: float = 0.0) -> list[Movement]:
    """points CMX notifications 50 ft apart on a line, 15 s apart."""
    return [mv(50.0 * i, 0.0, start_s + 15 * i) for i in range(points)]


# -- the filter (report 3.2) ------------------------------------------------------------


def test_a_walk_is_credited_leg_by_leg_once_its_second_leg_confirms_it() -> None:
    track, credits = walk(straight(10))
    # The first leg when the walk goes on (STARTED), the second with the third, then each
    # leg as it arrives: nine of the nine legs, the last one included.
    assert credits == pytest.approx([0, 0, LEG_M, 2 * LEG_M] + [LEG_M] * 6)
    assert track.total_m == pytest.approx(9 * LEG_M)
    assert track.walk == WALKING
    assert track.held_m == pytest.approx(STOP_M)  # fixed at the fix: what a stop adds


def test_the_classic_mode_is_untouched_by_the_adaptive_fields() -> None:
    classic, credits = walk(straight(10), params=FilterParams())
    assert sum(credits) == pytest.approx(121.92, abs=1e-9)  # DESIGN 6: eight legs
    assert (classic.walk, classic.held_m) == (NONE, 0.0)
    assert settle(classic, 1e12, FilterParams()) == 0.0


def test_a_walker_who_stops_is_credited_half_a_trigger_past_the_last_fix_by_the_settle(
        ) -> None:
    track, _ = walk(straight(10))  # the last fix at x 450 ft, ts 135 s
    assert settle(track, 135 + 59.9, PARAMS) == 0.0  # not quiet long enough
    assert settle(track, 135 + 60.0, PARAMS) == pytest.approx(STOP_M)
    assert track.total_m == pytest.approx(9 * LEG_M + STOP_M)
    # The stop point W is 25 ft on along the walk: the next leg starts there.
    assert (track.walk, track.x1_ft, track.x2_ft) == (SETTLED, 450.0, 475.0)
    assert settle(track, 1e12, PARAMS) == 0.0  # once only


def test_the_settle_credits_what_the_next_slow_fix_would() -> None:
    later = mv(470.0, 30.0, 135 + 300)  # five minutes on, a few feet from the stop
    settled, _ = walk(straight(10))
    settle(settled, 135 + 60.0, PARAMS)
    settled, _ = walk([later], settled)
    unsettled, credits = walk(straight(10) + [later])
    assert credits[-1] == pytest.approx(STOP_M)  # the slow fix stops the walk itself
    assert settled.as_row() + settled.adaptive_row() == \
        unsettled.as_row() + unsettled.adaptive_row()


def test_a_slow_leg_ends_the_walk_and_is_no_walking_itself() -> None:
    # 50 ft in 55 s is 0.28 m/s, under min_speed_mps: the walker stopped before it.
    track, credits = walk(straight(5) + [mv(250.0, 0.0, 60 + 55)])
    assert credits[-1] == pytest.approx(STOP_M)
    assert track.walk == NONE
    assert track.pending_m == pytest.approx(25 * M_PER_FT)  # from the stop point (225 ft)
    # A long quiet is a stop whatever the distance: settle_s without a fix.
    track, credits = walk(straight(5) + [mv(500.0, 0.0, 60 + 60, move_ft=250.0)])
    assert (credits[-1], track.walk) == (pytest.approx(STOP_M), NONE)


def test_a_walk_that_bounces_back_after_one_leg_drops_the_unconfirmed_leg() -> None:
    track, credits = walk(mv(x, 0.0, 15 * i) for i, x in enumerate([0, 50, 100, 50]))
    assert credits == pytest.approx([0, 0, LEG_M, 0])  # the leg 50 → 100 never counted
    assert track.walk == NONE


def test_a_started_walk_that_stops_credits_its_waiting_leg_and_the_stop() -> None:
    track, _ = walk(straight(3))
    assert track.walk == STARTED
    assert settle(track, 30 + 60, PARAMS) == pytest.approx(LEG_M + STOP_M)


def test_bouncing_device_walks_nowhere_and_never_settles() -> None:
    track, credits = walk(mv(50.0 * (i % 2), 0.0, 15 * i) for i in range(20))
    assert sum(credits) == 0.0
    assert settle(track, 1e12, PARAMS) == 0.0


def moves(points: list[tuple[float, float]]) -> list[Movement]:
    """Movements through points, 15 s apart, each measured along the straight line."""
    return [mv(x, y, 15 * i, move_ft=None) for i, (x, y) in enumerate(points)]


def test_a_corner_cut_between_two_turns_the_same_way_is_added_back() -> None:
    # East along y = 0, then north along x = 100: the fixes at (50, 0) and (100, 40)
    # straddle the corner (100, 0); the chord between them (64.03 ft) cut 25.97 ft.
    points = moves([(-50, 0), (0, 0), (50, 0), (100, 40), (100, 90)])
    _, credits = walk(points[1:], zigzagging(points[0]))
    chord_ft = math.hypot(50, 40)
    assert credits[-1] == pytest.approx((50 + (50 + 40 - chord_ft)) * M_PER_FT)
    # A zig-zag (left, then right) is noise: no corner.
    points = moves([(-50, 0), (0, 0), (50, 0), (100, 40), (150, 40)])
    _, credits = walk(points[1:], zigzagging(points[0]))
    assert credits[-1] == pytest.approx(50 * M_PER_FT)


def test_turns_under_30_degrees_the_same_way_add_no_corner() -> None:
    # Two turns of 25° to the left: at σ ≥ 10 ft noise makes such pairs on straight walks.
    turn = math.radians(25)
    p2 = (50 + 50 * math.cos(turn), 50 * math.sin(turn))
    p3 = (p2[0] + 50 * math.cos(2 * turn), p2[1] + 50 * math.sin(2 * turn))
    points = moves([(-50, 0), (0, 0), (50, 0), p2, p3])
    _, credits = walk(points[1:], zigzagging(points[0]))
    assert credits[-1] == pytest.approx(50 * M_PER_FT)


def test_a_u_turn_of_parallel_legs_adds_no_corner_and_does_not_fail() -> None:
    # tracking.max_moving_angle_deg may be set below 90°: then a U of two 90° turns walks
    # on, and p0→p1 and p2→p3 are parallel (they meet nowhere). This divided by zero.
    wide = FilterParams(mode="adaptive", cmx_stop_ext_share=0.5, max_moving_angle_deg=60.0)
    points = moves([(-50, 0), (0, 0), (50, 0), (50, 50), (0, 50)])
    _, credits = walk(points[1:], zigzagging(points[0]), params=wide)
    assert credits[-1] == pytest.approx(50 * M_PER_FT)


# -- rule D: a smooth walker's straight run is credited its chord --------------------------

def test_a_smooth_walker_is_credited_the_chord_of_a_straight_run_not_its_wobble() -> None:
    # East along y = 0 with a drift that carries the middle fixes 20 ft north and back:
    # leg by leg that is 53.85 + 50 + 50 + 53.85 ft; the run from (0, 0) (its start when
    # the walk started) to (200, 0) is 200 ft, and each point lies within CMX's 40 ft.
    points = moves([(0, 0), (50, 20), (100, 20), (150, 20), (200, 0)])
    track, credits = walk(points)
    assert sum(credits) == pytest.approx(200 * M_PER_FT)
    # Each credit is the chord's growth: to |A (50, 20)|, to |A (150, 20)|, to 200 ft.
    to_50, to_150 = math.hypot(50, 20), math.hypot(150, 20)
    assert credits == pytest.approx([0, 0, to_50 * M_PER_FT, (to_150 - to_50) * M_PER_FT,
                                     (200 - to_150) * M_PER_FT])
    assert (track.run_x_ft, track.run_y_ft, track.run_m) == (0.0, 0.0,
                                                             pytest.approx(200 * M_PER_FT))
    assert track.zig == pytest.approx(ZIG_PRIOR * 0.9 ** 2)  # two decisions, both on
    # A device that zig-zags (independent noise) is credited leg by leg, as before.
    _, credits = walk(points[1:], zigzagging(points[0]))
    assert sum(credits) == pytest.approx((2 * math.hypot(50, 20) + 100) * M_PER_FT)


def test_a_run_ends_where_the_walk_turns_off_its_chord() -> None:
    # East to (100, 0), then 60° to the left for 100 ft legs: (100, 0) lies 50 ft off the
    # chord from (0, 0) to (150, 86.6), more than CMX's 40 ft, so a run starts at
    # (100, 0): the turn's leg counts as it is, and the next one on its own run's chord.
    points = moves([(0, 0), (50, 0), (100, 0), (150, 50 * math.sqrt(3)),
                    (200, 100 * math.sqrt(3))])
    track, credits = walk(points)
    assert credits == pytest.approx([0, 0, LEG_M, LEG_M + 100 * M_PER_FT, 100 * M_PER_FT])
    assert (track.run_x_ft, track.run_y_ft) == (100.0, 0.0)
    assert track.run_m == pytest.approx(200 * M_PER_FT)


def test_the_run_tolerance_falls_from_the_smooth_to_the_zig_zagging() -> None:
    assert run_tolerance_ft(0.0, gated=False) == 40.0
    assert run_tolerance_ft(0.25, gated=False) == 40.0
    assert run_tolerance_ft(0.30, gated=False) == pytest.approx(20.0)
    assert run_tolerance_ft(0.35, gated=False) == 0.0
    assert run_tolerance_ft(0.08, gated=True) == 60.0
    assert run_tolerance_ft(0.13, gated=True) == pytest.approx(30.0)
    assert run_tolerance_ft(0.5, gated=True) == 0.0


def test_zig_follows_the_sharp_turns_of_walks_under_way_only() -> None:
    # A bouncing device never walks: its turns say nothing of a walker's noise.
    bouncing, _ = walk(mv(50.0 * (i % 2), 0.0, 15 * i) for i in range(8))
    assert bouncing.zig == ZIG_PRIOR
    # A sharp turn in the middle of a walk moves zig a tenth of the way to 1.
    points = moves([(0, 0), (50, 0), (100, 0), (150, 0), (120, 40)])
    track, _ = walk(points)
    assert track.zig == pytest.approx(ZIG_PRIOR * 0.9 * 0.9 + 0.1)
    # A new floor starts a new walk, not a new device: zig is kept.
    track, _, _ = advance(track, mv(0.0, 0.0, 90, floor=2), PARAMS)
    assert track.zig == pytest.approx(ZIG_PRIOR * 0.9 * 0.9 + 0.1)


def test_a_sharp_turn_mid_walk_is_credited_via_a_corner_once_the_walk_goes_on() -> None:
    # East to (150, 0), then back north-west: the chord (150, 0) → (120, 40) cuts a corner
    # somewhere past the last fix. The leg runs via K, 12.5 ft on (half the 25 ft stop
    # extension), and counts when the walk goes on after it.
    points = [(0, 0), (50, 0), (100, 0), (150, 0), (120, 40), (90, 80)]
    track, credits = walk(mv(x, y, 15 * i, move_ft=None) for i, (x, y) in enumerate(points))
    via_k_ft = 12.5 + math.hypot(120 - 162.5, 40)
    assert credits == pytest.approx([0, 0, LEG_M, 2 * LEG_M, 0, via_k_ft * M_PER_FT])
    assert track.walk == STARTED
    # Turning back again drops it, as any unconfirmed leg.
    points = [(0, 0), (50, 0), (100, 0), (150, 0), (120, 40), (150, 0)]
    _, credits = walk(mv(x, y, 15 * i, move_ft=None) for i, (x, y) in enumerate(points))
    assert sum(credits) == pytest.approx(3 * LEG_M)


def zigzag_turn(zig: float, last: tuple[float, float],
                dt_s: float = 15.0) -> tuple[Track, list[float]]:
    """A walk started east from (0, 0) over (50, 0) and (100, 0), whose leg (50, 0) → (100, 0)
    waits for confirmation (STARTED); then a sharp turn to last. The device's zig is set
    first (zigzagging); the fixes after the first come dt_s apart."""
    track = zigzagging(mv(0.0, 0.0, 0.0, move_ft=None), zig)
    times = [15.0, 15.0 + dt_s, 15.0 + 2 * dt_s]
    points = [(50.0, 0.0), (100.0, 0.0), last]
    return walk((mv(x, y, t, move_ft=None) for t, (x, y) in zip(times, points, strict=True)),
                track)


def test_a_zig_zagging_device_s_dropped_leg_counts_for_the_progress_the_turn_shows() -> None:
    # (100, 0) → (110, 60) turns 80.5° off the walk's line: a sharp turn, which drops the
    # waiting leg. The new point is 84.9 ft from the leg's start but only 60.8 ft from its
    # end: the leg made 24.0 ft of progress, which rule Z credits on a zig-zagging device.
    track, credits = zigzag_turn(1.0, (110.0, 60.0))
    gain_ft = math.hypot(60, 60) - math.hypot(10, 60)
    assert credits == pytest.approx([0, LEG_M, gain_ft * M_PER_FT])
    assert track.walk == NONE
    assert track.pending_m == pytest.approx(math.hypot(10, 60) * M_PER_FT)  # it waits
    # A device whose walks seldom zig-zag (zig under ZIGZAG_MIN once this turn is counted)
    # drops the leg, as before rule Z.
    quiet, credits = zigzag_turn(0.2, (110.0, 60.0))
    assert quiet.zig < ZIGZAG_MIN
    assert credits == pytest.approx([0, LEG_M, 0])


def test_rule_z_credits_a_bounce_back_nothing_and_a_leg_at_most_its_own_metres() -> None:
    # Back towards where the walk came from: the new point is nearer the leg's start than
    # its end, no progress at all.
    _, credits = zigzag_turn(1.0, (60.0, 40.0))
    assert credits == pytest.approx([0, LEG_M, 0])
    # 3 s apart, the waiting 50 ft leg was capped at max_speed_mps × 3 s (13.26 m). The
    # turn 5 ft on, 80° off the line, shows 46.1 ft (14.05 m) of progress: the leg's
    # capped metres are credited, no more.
    angle = math.radians(80)
    last = (100.0 + 5 * math.cos(angle), 5 * math.sin(angle))
    track, credits = zigzag_turn(1.0, last, dt_s=3.0)
    gain_ft = math.hypot(last[0] - 50.0, last[1]) - 5.0  # from the leg's start, (50, 0)
    assert gain_ft == pytest.approx(46.1, abs=0.05)
    assert gain_ft * M_PER_FT > 3.0 * PARAMS.max_speed_mps
    assert credits == pytest.approx([0, LEG_M, 3.0 * PARAMS.max_speed_mps])
    assert track.total_m == pytest.approx(LEG_M + 3.0 * PARAMS.max_speed_mps)


def test_a_track_restored_before_the_turn_credits_rule_z_as_the_uninterrupted_one() -> None:
    # Rule Z reads the waiting leg's ends, its metres, the walk and zig: all in the stored
    # row, so a restart between the leg and the turn changes nothing.
    through, credits = zigzag_turn(1.0, (110.0, 60.0))
    assert credits[2] > 0.0
    before, _ = zigzag_turn(1.0, (100.0, 0.0))  # the same fixes but the turn (a repeat)
    assert before.walk == STARTED
    cut = Track.restore(*before.as_row(), *before.adaptive_row())
    restored, credits_after = walk([mv(110.0, 60.0, 45.0, move_ft=None)], cut)
    assert credits_after == pytest.approx([credits[2]])
    assert restored.as_row() + restored.adaptive_row() == \
        through.as_row() + through.adaptive_row()


def test_a_repeat_and_a_stale_movement_change_nothing() -> None:
    track, _ = walk(straight(4))
    before = track.as_row() + track.adaptive_row()
    for stale_or_repeat in (mv(150.5, 0.3, 200), mv(999.0, 9.0, 44.0)):
        same, credited_m, changed = advance(track, stale_or_repeat, PARAMS)
        assert (same, credited_m, changed) == (track, 0.0, False)
    assert track.as_row() + track.adaptive_row() == before


def test_another_floor_stops_the_walk_and_starts_again() -> None:
    track, _ = walk(straight(5))
    walked_m, zig = track.total_m, track.zig
    track, credited_m, changed = advance(track, mv(0.0, 0.0, 80, floor=2), PARAMS)
    assert (credited_m, changed) == (pytest.approx(STOP_M), True)
    assert track.total_m == pytest.approx(walked_m + STOP_M)
    assert track.adaptive_row() == (NONE, None, None, None, None, None, JITTER_PRIOR_FT,
                                    None, None, 0.0, zig)


def test_a_gated_leg_stops_0_55_of_the_device_s_gate_on() -> None:
    track, _ = walk(straight(5), params=GATED)
    gate_ft = gate_distance_ft(JITTER_PRIOR_FT, 30.0, 50.0)  # 2.2 × 18 = 39.6 ft
    assert gate_ft == pytest.approx(39.6)
    assert track.held_m == pytest.approx(0.55 * gate_ft * M_PER_FT)


def gated_walk(fixes: Iterable[Fix]) -> Track:
    """Feed fixes through the adaptive gate and filter; return the track."""
    track: Track | None = None
    for one in fixes:
        movement = adaptive_gate(track, one, GATE)
        if movement is not None:
            track, _, _ = advance(track, movement, GATED)
    assert track is not None
    return track


def test_a_gated_point_confirmed_within_5_s_stops_that_share_of_its_stop_on() -> None:
    gate_ft = gate_distance_ft(JITTER_PRIOR_FT, 30.0, 50.0)  # 39.6 ft
    # Firehose-like, a fix every 2 s (10 ft): the last point passed, 160 ft, was confirmed
    # by the fix 2 s after it, so the stop is 2/5 of 0.55 of a gate on.
    dense = gated_walk(fix(10.0 * i, 0.0, 2.0 * i) for i in range(21))
    assert (dense.x2_ft, dense.walk) == (160.0, WALKING)
    assert dense.held_m == pytest.approx(0.4 * 0.55 * gate_ft * M_PER_FT)
    assert settle(dense, math.inf, GATED) == pytest.approx(0.4 * 0.55 * gate_ft * M_PER_FT)
    # Meraki-like, a fix every 10 s (50 ft): 0.55 of a gate, as before.
    sparse = gated_walk(fix(50.0 * i, 0.0, 10.0 * i) for i in range(6))
    assert sparse.walk == WALKING
    assert sparse.held_m == pytest.approx(0.55 * gate_ft * M_PER_FT)


def test_a_gated_sharp_turn_runs_via_half_the_stop_whatever_the_cadence() -> None:
    # East every 2 s to (200, 0), then north-west: (160, 40) passes, a 90° turn at the last
    # point (160, 0). The corner K is half the stop (0.275 of the gate, 10.9 ft) past it,
    # not a share of the stop the dense fixes shortened.
    east = [fix(10.0 * i, 0.0, 2.0 * i) for i in range(21)]
    back = [fix(200.0 - 10.0 * i, 10.0 * i, 40.0 + 2.0 * i) for i in range(1, 6)]
    track = gated_walk(east + back)
    assert (track.x2_ft, track.y2_ft, track.walk) == (160.0, 40.0, NONE)
    k_ft = 0.5 * 0.55 * gate_distance_ft(JITTER_PRIOR_FT, 30.0, 50.0)
    assert track.pending_m == pytest.approx((k_ft + math.hypot(k_ft, 40.0)) * M_PER_FT)


def test_a_quiet_gated_device_s_lone_leg_that_ends_in_a_stop_is_credited() -> None:
    # One 100 ft leg after a 2-minute pause (slow: it waits), then nothing more. Rule L:
    # on a device of 5 ft jitter it is over 6 jitters long, and the settle credits it
    # and the stop 0.55 of a gate (at its 30 ft minimum) on, as rule S a STARTED walk.
    def lone_leg(jitter_ft: float, params: FilterParams = GATED) -> Track:
        track, _ = walk([mv(0.0, 0.0, 0.0, move_ft=None)], params=params)
        track.jitter_ft = jitter_ft
        track, _ = walk([mv(100.0, 0.0, 120.0, move_ft=None)], track, params)
        return track
    quiet = lone_leg(5.0)
    assert quiet.walk == LONE
    assert settle(quiet, 180.0, GATED) == pytest.approx((100.0 + 16.5) * M_PER_FT)
    assert quiet.walk == SETTLED
    _, credits = walk([mv(100.0, 40.0, 300.0, move_ft=None)], lone_leg(5.0), GATED)
    assert credits == [pytest.approx((100.0 + 16.5) * M_PER_FT)]  # a slow fix: the same
    # Under 6 jitters (18 ft, the prior: 108 ft), and on CMX, it is still dropped.
    noisy = lone_leg(JITTER_PRIOR_FT)
    assert (noisy.walk, settle(noisy, math.inf, GATED), noisy.total_m) == (NONE, 0.0, 0.0)
    cmx = lone_leg(5.0, PARAMS)
    assert (cmx.walk, settle(cmx, math.inf, PARAMS), cmx.total_m) == (NONE, 0.0, 0.0)


def test_by_default_a_cmx_walker_stops_four_tenths_of_a_trigger_on() -> None:
    # CMX's trigger fires on noisy positions, before the walker has gone the whole 50 ft.
    default = FilterParams(mode="adaptive")
    track, _ = walk(straight(5), params=default)
    assert track.held_m == pytest.approx(20 * M_PER_FT)
    assert settle(track, 60 + 60.0, default) == pytest.approx(20 * M_PER_FT)
    assert (track.x2_ft, track.y2_ft) == (pytest.approx(220.0), 0.0)  # 20 ft past 200 ft


@pytest.mark.parametrize("points", [
    straight(7), moves([(0, 0), (50, 20), (100, 20), (150, 20), (200, 0), (250, -10),
                        (300, 0)])], ids=["straight", "in_a_run"])
def test_restored_track_continues_exactly_including_a_later_settle(
        points: list[Movement]) -> None:
    before = walk(points[:5])[0]
    assert before.run_x_ft is not None and before.zig < ZIG_PRIOR  # rule D's state too
    cut = Track.restore(*before.as_row(), *before.adaptive_row())
    restored, _ = walk(points[5:], cut)
    straight_through, _ = walk(points)
    assert settle(restored, 1e12, PARAMS) == settle(straight_through, 1e12, PARAMS)
    assert restored.as_row() + restored.adaptive_row() == \
        straight_through.as_row() + straight_through.adaptive_row()


# -- the filter behind the gate (report 3.3) -----------------------------------------------


def still_phone(seed: int, sigma_ft: float, jumps: bool, adaptive: bool) -> float:
    """Metres credited to a phone that never moves, seen every 2-6 s for 30 minutes
    (Firehose-like: iid noise of sigma_ft per axis, and 2% jumps of 80-200 ft if jumps)."""
    rng = random.Random(seed)
    track: Track | None = None
    ts = 0.0
    while ts < 1800.0:
        x_ft, y_ft = rng.gauss(0, sigma_ft), rng.gauss(0, sigma_ft)
        if jumps and rng.random() < 0.02:
            angle, jump_ft = rng.uniform(0, 2 * math.pi), rng.uniform(80, 200)
            x_ft, y_ft = x_ft + jump_ft * math.cos(angle), y_ft + jump_ft * math.sin(angle)
        one = fix(x_ft, y_ft, ts)
        if adaptive:
            movement = adaptive_gate(track, one, GATE)
            params = GATED
        else:
            movement, params = gate(track, one, GATE), FilterParams()
        if movement is not None:
            track, _, _ = advance(track, movement, params)
        ts += rng.uniform(2.0, 6.0)
    assert track is not None
    if adaptive:
        settle(track, math.inf, GATED)
    return track.total_m


def test_still_phones_with_jitter_are_credited_nothing() -> None:
    assert [still_phone(seed, 10.0, False, True) for seed in range(20)] == [0.0] * 20


def test_still_phones_with_jumps_are_credited_a_fraction_of_the_classic_gate_s() -> None:
    adaptive_m = sum(still_phone(seed, 10.0, True, True) for seed in range(20)) / 20
    classic_m = sum(still_phone(seed, 10.0, True, False) for seed in range(20)) / 20
    assert adaptive_m < 5.0  # 2.6 m per phone in 30 minutes, one phone of 20 credited
    assert classic_m > 100.0  # a pure distance gate passes every jump (171 m)
