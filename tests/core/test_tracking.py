"""The distance filter (DESIGN section 6), as plain functions."""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tys_server.core.events import Movement
from tys_server.core.tracking import FilterParams, Track, advance
from tys_server.feeds.cmx import parse_envelope

PARAMS = FilterParams()
MAC = "aa:bb:cc:dd:ee:ff"
LEG_M = 50 * 0.3048  # one 50 ft CMX step


def mv(x_ft: float, y_ft: float, ts: float, move_ft: float | None = 50.0,
       floor: int | None = 1) -> Movement:
    return Movement(MAC, floor, x_ft, y_ft, move_ft, ts)


def walk(moves: Iterable[Movement], track: Track | None = None,
         params: FilterParams = PARAMS) -> tuple[Track, list[float]]:
    """Feed moves through the filter; return the track and each credit."""
    credits = []
    for move in moves:
        track, credited_m, _ = advance(track, move, params)
        credits.append(credited_m)
    assert track is not None
    return track, credits


def test_default_params_match_the_original_service() -> None:
    assert (PARAMS.max_speed_mps, PARAMS.max_moving_angle_deg) == (4.42, 105.0)


def test_straight_walk_credits_every_leg_but_the_last_two() -> None:
    track, credits = walk(mv(50 * i, 0, 15 * i) for i in range(10))
    assert credits[:2] == [0.0, 0.0]
    assert sum(credits) == pytest.approx(121.92, abs=1e-9)
    assert track.total_m == pytest.approx(121.92, abs=1e-9)
    assert track.pending_m == pytest.approx(LEG_M)


def test_bouncing_device_walks_nowhere() -> None:
    track, credits = walk(mv(50 * (i % 2), 0, 15 * i) for i in range(20))
    assert sum(credits) == 0.0
    assert track.total_m == 0.0


def test_corner_followed_by_a_straight_walk_keeps_the_leg_into_the_corner() -> None:
    # East to a corner at (100, 0), then north.  Arriving at (100, 50) shows a 90° turn:
    # the leg into the corner is held; at (100, 100) the walk goes straight on, so the
    # held leg and the leg out of the corner are credited together.
    points = [(0, 0), (50, 0), (100, 0), (100, 50), (100, 100)]
    track, credits = walk(mv(x, y, 15 * i) for i, (x, y) in enumerate(points))
    assert credits == pytest.approx([0, 0, LEG_M, 0, 2 * LEG_M])
    assert track.held_m == 0.0


def test_two_sharp_turns_in_a_row_drop_the_held_leg() -> None:
    # Along a zig-zag each point turns sharply from the last: jitter, not walking.
    points = [(0, 0), (50, 0), (100, 0), (100, 50), (150, 50), (150, 100), (200, 100)]
    track, credits = walk(mv(x, y, 15 * i) for i, (x, y) in enumerate(points))
    assert credits == pytest.approx([0, 0, LEG_M, 0, 0, 0, 0])
    assert track.held_m == 0.0  # held at (100, 50), dropped at (150, 50), ...


def test_sharp_turn_holds_the_pending_leg_for_one_step() -> None:
    track, _ = walk(mv(x, 0, 15 * i) for i, x in enumerate([0, 50, 0]))
    assert track.held_m == pytest.approx(LEG_M)
    assert (track.x1_ft, track.x2_ft) == (50, 0)


def test_floor_change_starts_again_but_keeps_the_total() -> None:
    track, _ = walk(mv(50 * i, 0, 15 * i) for i in range(5))
    walked_m = track.total_m
    assert walked_m == pytest.approx(3 * LEG_M)
    track, credited_m, changed = advance(track, mv(500, 500, 90, floor=2), PARAMS)
    assert (credited_m, changed) == (0.0, True)
    assert track.as_row() == (2, 500, 500, None, None, 0.0, 0.0, 90, walked_m)
    track, credits = walk((mv(500 + 50 * i, 500, 90 + 15 * i, floor=2) for i in range(1, 4)),
                          track)
    assert track.total_m == pytest.approx(walked_m + 2 * LEG_M)


def test_floor_change_is_applied_even_to_an_older_time() -> None:
    track, _ = walk([mv(0, 0, 100), mv(50, 0, 115)])
    track, _, changed = advance(track, mv(0, 0, 50, floor=None), PARAMS)
    assert changed and track.floor is None and track.last_ts == 50


def test_first_fix_of_10000_ft_is_capped_at_walking_speed() -> None:
    track, credits = walk([mv(0, 0, 0), mv(50, 0, 5, move_ft=10000), mv(100, 0, 20)])
    assert credits[2] == pytest.approx(5 * 4.42)


def test_distance_is_capped_by_elapsed_time_times_max_speed() -> None:
    fast = FilterParams(max_speed_mps=1.0)
    track, credits = walk([mv(50 * i, 0, 10 * i) for i in range(4)], params=fast)
    assert credits == pytest.approx([0, 0, 10.0, 10.0])


def test_notifications_at_the_same_time_add_nothing() -> None:
    track, _ = walk([mv(0, 0, 0), mv(50, 0, 15), mv(100, 0, 15)])
    assert track.pending_m == 0.0


def test_stale_notification_changes_nothing() -> None:
    track, _ = walk(mv(50 * i, 0, 15 * i) for i in range(4))
    before = track.as_row()
    same, credited_m, changed = advance(track, mv(999, 999, 44.9), PARAMS)
    assert (same, credited_m, changed) == (track, 0.0, False)
    assert track.as_row() == before


def test_locationupdate_without_distance_measures_the_straight_line() -> None:
    track, credits = walk(mv(30 * i, 40 * i, 15 * i, move_ft=None) for i in range(4))
    assert credits == pytest.approx([0, 0, LEG_M, LEG_M])  # 3-4-5: each leg is 50 ft


def test_locationupdate_measures_from_the_first_point_when_there_is_no_second() -> None:
    track, _ = walk([mv(0, 0, 0), mv(30, 40, 15, move_ft=None)])
    assert track.pending_m == pytest.approx(LEG_M)


def test_metres_coordinates_walk_the_same_distance_as_feet() -> None:
    # 15.24 m = 50 ft between notifications, sent by CMX in METERS, no distance field.
    entries = [
        {"notificationType": "locationupdate", "deviceId": MAC, "floorId": "7",
         "timestamp": 1_700_000_000_000 + 15_000 * i,
         "locationCoordinate": {"x": 15.24 * i, "y": 0, "unit": "METERS"}}
        for i in range(10)
    ]
    batch = parse_envelope({"notifications": entries}, 1_800_000_000.0)
    moves = [event for event in batch.events if isinstance(event, Movement)]
    assert len(moves) == 10
    track, _ = walk(moves)
    assert track.total_m == pytest.approx(121.92, abs=1e-9)


def test_track_round_trips_through_its_row() -> None:
    track, _ = walk(mv(x, y, 15 * i) for i, (x, y) in enumerate([(0, 0), (50, 0), (50, 50)]))
    row = track.as_row()
    assert Track.restore(*row).as_row() == row
    again, _ = walk([mv(50, 100, 60)], Track.restore(*row))
    track, _ = walk([mv(50, 100, 60)], track)
    assert again.as_row() == track.as_row()


def test_restored_track_without_a_second_point() -> None:
    track = Track.restore(floor=3, x1_ft=1, y1_ft=2, x2_ft=None, y2_ft=None, pending_m=0.0,
                          held_m=0.0, last_ts=10.0, total_m=99.0)
    assert track.as_row() == (3, 1, 2, None, None, 0.0, 0.0, 10.0, 99.0)


def test_restore_refuses_half_a_point() -> None:
    with pytest.raises(ValueError):
        Track.restore(1, 0.0, 0.0, 5.0, None, 0.0, 0.0, 0.0, 0.0)


moves = st.builds(
    Movement,
    mac=st.just(MAC),
    floor=st.sampled_from([1, 2]),
    x_ft=st.floats(-1e6, 1e6),
    y_ft=st.floats(-1e6, 1e6),
    move_ft=st.none() | st.floats(0, 1e5),
    ts=st.floats(0, 1e6),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(moves, max_size=40), st.floats(0.1, 10), st.floats(0, 180))
def test_credit_is_never_negative_nor_faster_than_max_speed(
    sequence: list[Movement], max_speed_mps: float, max_angle_deg: float
) -> None:
    params = FilterParams(max_speed_mps, max_angle_deg)
    track: Track | None = None
    credited_total_m = allowed_m = 0.0
    for move in sequence:
        same_floor = track is not None and track.floor == move.floor
        last_ts = track.last_ts if track is not None else 0.0
        track, credited_m, changed = advance(track, move, params)
        assert credited_m >= 0.0
        if same_floor and changed:
            allowed_m += (move.ts - last_ts) * max_speed_mps
        credited_total_m += credited_m
        assert credited_total_m <= allowed_m * (1 + 1e-9) + 1e-9
    if track is not None:
        assert track.total_m == pytest.approx(credited_total_m)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(0, 1e4), min_size=2, max_size=30, unique=True))
def test_walk_on_one_floor_in_time_order_never_beats_max_speed(times: list[float]) -> None:
    times.sort()
    track, credits = walk(mv(50 * i, 0, ts, move_ft=1e4) for i, ts in enumerate(times))
    assert sum(credits) <= (times[-1] - times[0]) * PARAMS.max_speed_mps * (1 + 1e-9)


def test_repeated_fix_on_a_straight_walk_loses_no_leg() -> None:
    # Four 30 ft legs east, the position at 60 ft reported twice (feeds on a timer repeat
    # positions): three legs credited, as without the repeat (DESIGN 6, rule 2).
    xs = [0, 30, 60, 60, 90, 120]
    track, credits = walk(mv(x, 0, 10 * i, move_ft=None) for i, x in enumerate(xs))
    assert sum(credits) == pytest.approx(3 * 30 * 0.3048)  # 27.43 m, not 18.29 m
    assert track.total_m == pytest.approx(27.432)


def test_a_fix_within_1_ft_of_the_newest_point_changes_nothing() -> None:
    track, _ = walk([mv(0, 0, 0, move_ft=None), mv(30, 0, 10, move_ft=None)])
    before = track.as_row()
    # 0.9 ft from p2, later and with a reported move: still a repeat, last_ts kept.
    same, credited_m, changed = advance(track, mv(30.6, 0.7, 25, move_ft=50.0), PARAMS)
    assert (same, credited_m, changed) == (track, 0.0, False)
    assert track.as_row() == before
    # While p2 is none the newest point is p1.
    first, _ = walk([mv(5, 5, 0, move_ft=None)])
    _, credited_m, changed = advance(first, mv(5.5, 5.5, 10, move_ft=None), PARAMS)
    assert (credited_m, changed, first.x2_ft, first.last_ts) == (0.0, False, None, 0)
    # 1 ft exactly is a step, and on another floor the same spot starts a new track.
    _, _, changed = advance(track, mv(31, 0, 30, move_ft=None), PARAMS)
    assert changed and track.x2_ft == 31
    _, _, changed = advance(track, mv(31, 0, 40, floor=2), PARAMS)
    assert changed and track.floor == 2
