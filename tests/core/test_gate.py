"""The gate of timer-driven feeds (DESIGN 12.1), as plain functions."""

from __future__ import annotations

from tys_server.core.events import Fix
from tys_server.core.gate import GateParams, gate
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
