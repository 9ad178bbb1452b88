"""The per-device distance filter (DESIGN section 6). Pure: no I/O.

Two modes (``tracking.filter``): ``classic`` is DESIGN 6 exactly (the code below,
unchanged, so past events reproduce their numbers bit for bit); ``adaptive`` is
core/adaptive.py (docs/accuracy.md). ``advance`` is the one entry point of both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from tys_server.core import adaptive
from tys_server.core.events import Movement
from tys_server.core.units import M_PER_FT

# A fix closer than this to the newest point is a repeat: ignored (DESIGN 6, rule 2).
REPEAT_FT = 1.0
# The floor of a track that has ended (a device that left, a legacy row without a
# point): no real floorId is the smallest bigint, so the next fix starts a new track.
NO_FLOOR = -(2**63)

# A track's state in the order of Track.as_row() and Track.restore(): floor, x1_ft, y1_ft,
# x2_ft, y2_ft, pending_m, held_m, last_ts, total_m.
TrackRow = tuple[
    int | None, float, float, float | None, float | None, float, float, float, float
]
# The adaptive filter's and gate's state in the order of Track.adaptive_row() (after
# TrackRow's in Track.restore()): walk, x0_ft, y0_ft, cand_x_ft, cand_y_ft, cand_ts,
# jitter_ft, run_x_ft, run_y_ft, run_m, zig.
AdaptiveRow = tuple[
    int, float | None, float | None, float | None, float | None, float | None, float,
    float | None, float | None, float, float,
]

CLASSIC = "classic"
ADAPTIVE = "adaptive"
MODES = (CLASSIC, ADAPTIVE)


@dataclass(frozen=True, slots=True)
class FilterParams:
    """Tuning of the filter (tracking.*); the default is DESIGN 6's classic filter.

    The adaptive mode also reads min_speed_mps, settle_s and the stop extension: for
    CMX's movements cmx_stop_ext_share of trigger_ft (cmx.movement_distance_ft), for
    gated ones stop_ext_share of the device's gate within [gate_min_ft, gate_max_ft].
    """

    max_speed_mps: float = 4.42
    max_moving_angle_deg: float = 105.0
    mode: str = CLASSIC
    min_speed_mps: float = 0.3
    settle_s: float = 60.0
    stop_ext_share: float = 0.55
    trigger_ft: float = 50.0
    cmx_stop_ext_share: float = 0.4
    gated: bool = False  # the movements come from the gate (Spaces, Meraki)
    gate_min_ft: float = 30.0
    gate_max_ft: float = 50.0
    cos_max_angle: float = field(init=False, repr=False, compare=False)
    adaptive: bool = field(init=False, repr=False, compare=False)
    # The stop extension per foot of trigger distance, and a CMX leg's (in metres).
    stop_m_per_trigger_ft: float = field(init=False, repr=False, compare=False)
    cmx_stop_m: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        # The turn test compares cosines: angle >= max  <=>  cos(angle) <= cos(max).
        object.__setattr__(self, "cos_max_angle",
                           math.cos(math.radians(self.max_moving_angle_deg)))
        object.__setattr__(self, "adaptive", self.mode == ADAPTIVE)
        object.__setattr__(self, "stop_m_per_trigger_ft", self.stop_ext_share * M_PER_FT)
        object.__setattr__(self, "cmx_stop_m",
                           self.cmx_stop_ext_share * M_PER_FT * self.trigger_ft)
        # A minimum above the maximum is the maximum (gate_ft 0 passes every fix).
        object.__setattr__(self, "gate_min_ft", min(self.gate_min_ft, self.gate_max_ft))


class Track:
    """One device's filter state: floor, p1, p2 (newest, may be none), pending, held.

    The adaptive mode adds walk, p0 (x0_ft, y0_ft), the gate's candidate (the previous
    raw fix: cand_x_ft, cand_y_ft, cand_ts), jitter_ft, rule D's run (its start run_x_ft,
    run_y_ft and the metres it was credited, run_m) and zig, and keeps its stop extension
    in held_m (core/adaptive.py); the classic mode leaves them at their start values.
    """

    __slots__ = (
        "floor", "x1_ft", "y1_ft", "x2_ft", "y2_ft", "pending_m", "held_m", "last_ts", "total_m",
        "walk", "x0_ft", "y0_ft", "cand_x_ft", "cand_y_ft", "cand_ts", "jitter_ft",
        "run_x_ft", "run_y_ft", "run_m", "zig",
    )

    floor: int | None
    x1_ft: float
    y1_ft: float
    x2_ft: float | None
    y2_ft: float | None
    pending_m: float
    held_m: float
    last_ts: float
    total_m: float
    walk: int
    x0_ft: float | None
    y0_ft: float | None
    cand_x_ft: float | None
    cand_y_ft: float | None
    cand_ts: float | None
    jitter_ft: float
    run_x_ft: float | None
    run_y_ft: float | None
    run_m: float
    zig: float

    def __init__(
        self, floor: int | None, x_ft: float, y_ft: float, ts: float, total_m: float = 0.0
    ) -> None:
        """A track that starts at a first fix (step 1), carrying total_m over."""
        self.total_m = total_m
        self.jitter_ft = adaptive.JITTER_PRIOR_FT
        self.zig = adaptive.ZIG_PRIOR
        self.start(floor, x_ft, y_ft, ts)

    def start(self, floor: int | None, x_ft: float, y_ft: float, ts: float) -> None:
        """Step 1: start again from one point on floor; total_m, jitter_ft and zig are
        kept (they describe the device, not the walk)."""
        self.floor = floor
        self.x1_ft = x_ft
        self.y1_ft = y_ft
        self.x2_ft = None
        self.y2_ft = None
        self.pending_m = 0.0
        self.held_m = 0.0
        self.last_ts = ts
        self.walk = adaptive.NONE
        self.x0_ft = None
        self.y0_ft = None
        self.cand_x_ft = None
        self.cand_y_ft = None
        self.cand_ts = None
        self.run_x_ft = None
        self.run_y_ft = None
        self.run_m = 0.0

    def end(self, ts: float) -> None:
        """The device left: forget its points and legs (never credited); total_m is kept."""
        self.start(NO_FLOOR, 0.0, 0.0, ts)

    @classmethod
    def restore(
        cls,
        floor: int | None,
        x1_ft: float,
        y1_ft: float,
        x2_ft: float | None,
        y2_ft: float | None,
        pending_m: float,
        held_m: float,
        last_ts: float,
        total_m: float,
        walk: int = adaptive.NONE,
        x0_ft: float | None = None,
        y0_ft: float | None = None,
        cand_x_ft: float | None = None,
        cand_y_ft: float | None = None,
        cand_ts: float | None = None,
        jitter_ft: float = adaptive.JITTER_PRIOR_FT,
        run_x_ft: float | None = None,
        run_y_ft: float | None = None,
        run_m: float = 0.0,
        zig: float = adaptive.ZIG_PRIOR,
    ) -> Track:
        """Rebuild a track from stored columns (the order of as_row(), adaptive_row())."""
        if (x2_ft is None) != (y2_ft is None):
            raise ValueError("x2_ft and y2_ft must both be set or both be None")
        if ((x0_ft is None) != (y0_ft is None) or (cand_x_ft is None) != (cand_y_ft is None)
                or (run_x_ft is None) != (run_y_ft is None)):
            raise ValueError("x0_ft/y0_ft, cand_x_ft/cand_y_ft and run_x_ft/run_y_ft must be "
                             "set in pairs")
        if adaptive.settles(walk) and x2_ft is None:
            raise ValueError("a walk under way or a lone leg needs a second point")
        track = cls.__new__(cls)  # a million of these at start-up: set each slot once
        track.floor = floor
        track.x1_ft = x1_ft
        track.y1_ft = y1_ft
        track.x2_ft = x2_ft
        track.y2_ft = y2_ft
        track.pending_m = pending_m
        track.held_m = held_m
        track.last_ts = last_ts
        track.total_m = total_m
        track.walk = walk
        track.x0_ft = x0_ft
        track.y0_ft = y0_ft
        track.cand_x_ft = cand_x_ft
        track.cand_y_ft = cand_y_ft
        track.cand_ts = cand_ts
        track.jitter_ft = jitter_ft
        track.run_x_ft = run_x_ft
        track.run_y_ft = run_y_ft
        track.run_m = run_m
        track.zig = zig
        return track

    def as_row(self) -> TrackRow:
        """(floor, x1, y1, x2, y2, pending_m, held_m, last_ts, total_m): restore()'s order."""
        return (
            self.floor, self.x1_ft, self.y1_ft, self.x2_ft, self.y2_ft,
            self.pending_m, self.held_m, self.last_ts, self.total_m,
        )

    def adaptive_row(self) -> AdaptiveRow:
        """(walk, x0, y0, cand_x, cand_y, cand_ts, jitter_ft, run_x, run_y, run_m, zig):
        restore()'s after as_row()."""
        return (self.walk, self.x0_ft, self.y0_ft, self.cand_x_ft, self.cand_y_ft,
                self.cand_ts, self.jitter_ft, self.run_x_ft, self.run_y_ft, self.run_m,
                self.zig)

    def __repr__(self) -> str:
        return f"Track{self.as_row() + self.adaptive_row()!r}"


def advance(track: Track | None, mv: Movement, params: FilterParams) -> tuple[Track, float, bool]:
    """Apply one movement; return (track, credited_m, changed)."""
    if params.adaptive:
        if track is None:
            return Track(mv.floor, mv.x_ft, mv.y_ft, mv.ts), 0.0, True
        return adaptive.advance(track, mv, params)
    x_ft, y_ft, ts = mv.x_ft, mv.y_ft, mv.ts
    if track is None:
        return Track(mv.floor, x_ft, y_ft, ts), 0.0, True
    if mv.floor != track.floor:
        track.start(mv.floor, x_ft, y_ft, ts)
        return track, 0.0, True
    if ts < track.last_ts:
        return track, 0.0, False

    x2_ft, y2_ft = track.x2_ft, track.y2_ft
    if x2_ft is None or y2_ft is None:
        gap_ft = math.hypot(x_ft - track.x1_ft, y_ft - track.y1_ft)
    else:
        gap_ft = math.hypot(x_ft - x2_ft, y_ft - y2_ft)
    if gap_ft < REPEAT_FT:
        # A repeat carries no movement; as a zero-length leg it would drop the leg
        # before it as a "sharp turn" (feeds that report on a timer repeat positions).
        return track, 0.0, False
    distance_m = mv.move_ft * M_PER_FT if mv.move_ft is not None else gap_ft * M_PER_FT
    # A jump (CMX reports 10000 ft on a first fix) is worth at most a fast walk.
    cap_m = (ts - track.last_ts) * params.max_speed_mps
    if distance_m > cap_m:
        distance_m = cap_m

    credited_m = 0.0
    if x2_ft is not None and y2_ft is not None:
        if _walks_on(track.x1_ft, track.y1_ft, x2_ft, y2_ft, x_ft, y_ft, params):
            credited_m = track.pending_m + track.held_m
            track.total_m += credited_m
            track.held_m = 0.0
        elif track.held_m == 0.0:
            track.held_m = track.pending_m  # maybe a real corner: the next step decides
        else:
            track.held_m = 0.0  # two sharp turns in a row are jitter
        track.x1_ft, track.y1_ft = x2_ft, y2_ft
    track.x2_ft, track.y2_ft = x_ft, y_ft
    track.pending_m = distance_m
    track.last_ts = ts
    return track, credited_m, True


def settle(track: Track, now_s: float, params: FilterParams) -> float:
    """Adaptive mode: a walk quiet since now_s − settle_s has stopped; credit its stop
    (core/adaptive.py). Metres credited; always 0 in the classic mode."""
    if not params.adaptive:
        return 0.0
    return adaptive.settle(track, now_s, params)


# Cosines closer than this to the bound are settled by the angle in degrees itself, so
# the cosine shortcut never decides differently from DESIGN's "angle >= max".
_COSINE_BAND = 1e-9


def _walks_on(x1: float, y1: float, x2: float, y2: float, x3: float, y3: float,
              params: FilterParams) -> bool:
    """True when the angle at p2 is at least max_moving_angle_deg (the walker kept going)."""
    ax, ay = x1 - x2, y1 - y2
    bx, by = x3 - x2, y3 - y2
    lengths = math.hypot(ax, ay) * math.hypot(bx, by)
    if lengths == 0.0:
        return 0.0 >= params.max_moving_angle_deg
    cosine = (ax * bx + ay * by) / lengths
    if cosine < params.cos_max_angle - _COSINE_BAND:
        return True
    if cosine > params.cos_max_angle + _COSINE_BAND:
        return False
    return _angle_deg(x1, y1, x2, y2, x3, y3) >= params.max_moving_angle_deg


def _angle_deg(x1: float, y1: float, x2: float, y2: float, x3: float, y3: float) -> float:
    """The angle at p2 between p2→p1 and p2→p3, 0–180°; 0 when either leg has no length."""
    ax, ay = x1 - x2, y1 - y2
    bx, by = x3 - x2, y3 - y2
    lengths = math.hypot(ax, ay) * math.hypot(bx, by)
    if lengths == 0.0:
        return 0.0
    cosine = (ax * bx + ay * by) / lengths
    return math.degrees(math.acos(max(-1.0, min(1.0, cosine))))
