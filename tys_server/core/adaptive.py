"""The adaptive distance filter (``tracking.filter: adaptive``, docs/accuracy.md). Pure.

DESIGN 6's filter, with additions measured against ground truth (/work/lab's
report, docs/accuracy.md): a walk is confirmed before its second leg counts (STARTED), a
leg slower than ``min_speed_mps`` or after ``settle_s`` of quiet means the walker had
stopped, a walker who stops is credited the last leg plus ``stop_ext_share`` of a trigger
distance past the last fix (rule S; less on a feed whose fixes come under DENSE_FIX_S
apart), the corner a chord cut between two turns the same
way is added back (rule C), and a sharp turn in the middle of a walk is measured via a
corner past the last fix rather than along the chord (rule T); behind the gate, a lone
leg at least LONE_K times the device's jitter long counts if it ends in a stop (rule L);
a device whose walks seldom zig-zag is credited a straight run's chord, not its legs
(rule D); a device whose walks often do is credited, for a leg dropped at a sharp turn, what
the chord from the leg's start to the new point gains on the new leg (rule Z). ``settle``
credits rule S without a next fix, once the feeds' clock says none
can come. Per-device state, in the Track: ``walk``, p0, the stop extension fixed at the
last fix (``held_m``: classic's held leg is unused), rule D's run and ``zig``.

tracking.advance dispatches here; it creates new tracks itself, so this module needs no
Track class at run time (tracking imports it).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from tys_server.core.events import Movement
from tys_server.core.units import M_PER_FT

if TYPE_CHECKING:
    from tys_server.core.tracking import FilterParams, Track

# Track.walk. WALKING and STARTED are the odd values: `walk & 1` is "a walk is under way".
NONE = 0      # the pending leg p1→p2 is not credited
WALKING = 1   # it is credited, as part of a walk
SETTLED = 2   # it is the credited stop extension (the walker stopped)
STARTED = 3   # a walk started at p1: walking on or stopping credits the pending leg,
              # a bounce back drops it
LONE = 4      # as NONE, but a stop credits the pending leg (rule L): gated, and at least
              # LONE_K × the device's jitter_ft long. Even: no walk is under way
WALKS = (NONE, WALKING, SETTLED, STARTED, LONE)

# The corner rule: both turns at least 30° (sin 30° = 0.5; noise zig-zags alternate, and
# turns of 20-30° the same way twice are mostly noise at σ ≥ 10 ft), and a corner adds
# at most 45% of the chord it replaces.
CORNER_MIN_SIN = 0.5
CORNER_MAX_SHARE = 0.45
# Rule T: a sharp turn in the middle of a walk is a corner TURN_SHARE of the stop
# extension (so a quarter of a trigger distance) past the last fix.
TURN_SHARE = 0.5
# The gate of timer-driven feeds: clamp(GATE_K × jitter_ft, gate_min_ft, gate_ft).
GATE_K = 2.2
JITTER_PRIOR_FT = 18.0  # a new device's jitter: its first gate is 2.2 × 18 ≈ 40 ft
# A gated point confirmed by a fix lag_s < DENSE_FIX_S after it (the Firehose reports
# every 2-6 s, Meraki every 5-15 s) has its stop extension scaled by lag_s / DENSE_FIX_S:
# the denser the fixes, the more chances noise has to carry one past the gate before the
# walker got there, and to carry a stopped walker's fixes past it again.
DENSE_FIX_S = 5.0
# Rule L: a gated device's lone leg (walk NONE: after a pause, a turn or a stop) at least
# LONE_K × its jitter_ft long is a walk of one leg, credited if it ends in a stop. A
# still phone's noise rarely carries it that far from its newest point; at 4 × jitter
# correlated σ 20 ft phones crossed 2 % of a walker (docs/accuracy.md).
LONE_K = 6.0
# Rule D: zig is a device's share of sharp turns while a walk is under way (an average of
# about 1 / ZIG_STEP decisions, from ZIG_PRIOR). Up to zig lo (drifting noise, or little),
# a run's chord is credited when the point before the new one lies within tol_ft of it;
# the tolerance falls to 0 at hi (independent noise: its sharp turns already drop what its
# zig-zag adds). (lo, hi, tol_ft) for CMX and gated feeds (docs/accuracy.md, "Rule D").
ZIG_PRIOR = 0.15
ZIG_STEP = 0.1
RUN_CMX = (0.25, 0.35, 40.0)
RUN_GATED = (0.08, 0.18, 60.0)
# Rule Z: from this zig on (independent noise of about σ 20 ft: CMX walkers' zig there is
# 0.45-0.6, still phones' stays near ZIG_PRIOR, as they seldom have a walk under way), a
# leg waiting for confirmation that a sharp turn would drop is credited what the chord from
# its start to the new point is longer than the new leg (docs/accuracy.md, "Rule Z").
ZIGZAG_MIN = 0.4


def settles(walk: int) -> bool:
    """A stop would credit a track in this walk state (the settle may end it): a walk
    under way (odd), or a LONE leg. Such a track has a p2."""
    return bool(walk & 1) or walk == LONE


def gate_distance_ft(jitter_ft: float, gate_min_ft: float, gate_max_ft: float) -> float:
    """A device's gate: GATE_K times its jitter, within [gate_min_ft, gate_max_ft]."""
    g = GATE_K * jitter_ft
    return gate_min_ft if g < gate_min_ft else gate_max_ft if g > gate_max_ft else g


def run_tolerance_ft(zig: float, gated: bool) -> float:
    """Rule D: how far (ft) a point may lie off a run's chord and still be on the run."""
    lo, hi, tol_ft = RUN_GATED if gated else RUN_CMX
    if zig <= lo:
        return tol_ft
    if zig >= hi:
        return 0.0
    return tol_ft * (hi - zig) / (hi - lo)


def _run_leg(track: Track, fx: float, fy: float, tx: float, ty: float, leg_m: float,
             tol_ft: float) -> float:
    """Rule D: the metres credited for a leg F→T of a walk (leg_m along the leg).

    When F lies within tol_ft of the chord from the run's start A to T, between them, the
    run goes on: its credit grows to |AT| (no more than leg_m; nothing when the chord is
    no longer than what the run was credited). Otherwise a run starts at F, and the leg
    counts as it is.
    """
    ax, ay = track.run_x_ft, track.run_y_ft
    if ax is not None and ay is not None:
        cx, cy = tx - ax, ty - ay
        chord_ft = math.hypot(cx, cy)
        px, py = fx - ax, fy - ay
        if (chord_ft > 0.0 and 0.0 < cx * px + cy * py < chord_ft * chord_ft
                and abs(cx * py - cy * px) <= tol_ft * chord_ft):
            chord_m = chord_ft * M_PER_FT
            credit = chord_m - track.run_m
            if credit <= 0.0:
                return 0.0
            track.run_m = chord_m
            return credit if credit < leg_m else leg_m
    track.run_x_ft, track.run_y_ft = fx, fy
    track.run_m = leg_m
    return leg_m


def _zigzag_m(x1: float, y1: float, x: float, y: float, line_ft: float, pending_m: float) -> float:
    """Rule Z: the metres of the dropped leg p1→p2 that its walk made good, judged from the
    point after it: |p1 point| − |p2 point| (line_ft), at most the leg's own pending_m.

    Noise bouncing a point out and back makes no progress (nothing); a walk zig-zagging
    along its line makes the chord; a walker turning twice keeps some of the first leg.
    """
    gain_m = (math.hypot(x - x1, y - y1) - line_ft) * M_PER_FT
    if gain_m <= 0.0:
        return 0.0
    return gain_m if gain_m < pending_m else pending_m


def stop(track: Track) -> float:
    """Rule S: a walking device stopped somewhere past p2. Returns the metres credited.

    The pending leg counts if the walk was only STARTED or LONE; the stop point W is the stop
    extension (fixed at the last fix, in held_m) past p2 along p1→p2, and p2→W is
    credited as the new pending leg.
    """
    credited = track.pending_m if track.walk == STARTED or track.walk == LONE else 0.0
    x2, y2 = track.x2_ft, track.y2_ft
    assert x2 is not None and y2 is not None  # a walk under way has a p2
    ax, ay = x2 - track.x1_ft, y2 - track.y1_ft
    n = math.hypot(ax, ay)
    track.walk = SETTLED
    track.run_x_ft = track.run_y_ft = None
    if n > 0.0:
        ext_ft = track.held_m / M_PER_FT
        track.x0_ft = track.y0_ft = None  # the stop point is no corner
        track.x1_ft, track.y1_ft = x2, y2
        track.x2_ft = x2 + ax / n * ext_ft
        track.y2_ft = y2 + ay / n * ext_ft
        track.pending_m = ext_ft * M_PER_FT
        credited += track.pending_m
    track.total_m += credited
    return credited


def settle(track: Track, now_s: float, params: FilterParams) -> float:
    """A walk (or a LONE leg) with no fix since now_s − settle_s has stopped: rule S.
    Metres credited.

    now_s must be a time before which no more fixes of the device can arrive (the feeds'
    clock less their lateness): the credit then equals what the next fix would credit,
    so whether and when this runs changes when a credit shows, never how much.
    """
    if (not settles(track.walk) or track.x2_ft is None
            or now_s - track.last_ts < params.settle_s):
        return 0.0
    return stop(track)


def _corner_m(x0: float, y0: float, x1: float, y1: float, x2: float, y2: float,
              x3: float, y3: float, lb: float, lc: float) -> float:
    """Rule C: the metres the chord p1→p2 (lb ft) cut off the corner between the lines
    p0→p1 and p2→p3 (lc = |p2p3| ft); 0 unless both turns go the same way, ≥ 30°."""
    bx, by = x2 - x1, y2 - y1
    cx, cy = x3 - x2, y3 - y2
    cross2 = bx * cy - by * cx  # lb·lc·sine of the turn at p2
    if abs(cross2) < CORNER_MIN_SIN * lb * lc:
        return 0.0  # tested first: a walk's turns are mostly under 30°, and this is cheap
    ax, ay = x1 - x0, y1 - y0
    cross1 = ax * by - ay * bx  # la·lb·sine of the turn at p1 (0 when p0 = p1)
    if cross1 * cross2 <= 0.0:
        return 0.0
    la = math.hypot(ax, ay)
    if abs(cross1) < CORNER_MIN_SIN * la * lb:
        return 0.0
    den = ax * cy - ay * cx  # the corner K: p1 + t·a = p2 + u·c
    if den == 0.0:
        return 0.0  # p0→p1 and p2→p3 are parallel (a U: possible below 90° of max angle)
    t = cross2 / den
    u = (bx * ay - by * ax) / den
    if t <= 0.0 or u >= 0.0:
        return 0.0  # K is not ahead of p1 and behind p2
    extra_ft = t * la - u * lc - lb
    if extra_ft <= 0.0:
        return 0.0
    return min(extra_ft, CORNER_MAX_SHARE * lb) * M_PER_FT


def advance(track: Track, mv: Movement, params: FilterParams) -> tuple[Track, float, bool]:
    """Apply one movement to an existing track; return (track, credited_m, changed).

    A credit made while the track ends up with an even ``walk`` is a stop (rule S), which
    belongs to the time of the fix before this one (the state books it to that day).
    """
    x, y, ts = mv.x_ft, mv.y_ft, mv.ts
    if mv.floor != track.floor:
        credited = stop(track) if track.walk & 1 else 0.0
        track.start(mv.floor, x, y, ts)
        return track, credited, True
    if ts < track.last_ts:
        return track, 0.0, False
    x2, y2 = track.x2_ft, track.y2_ft
    if x2 is None or y2 is None:
        line_ft = math.hypot(x - track.x1_ft, y - track.y1_ft)
    else:
        line_ft = math.hypot(x - x2, y - y2)
    if line_ft < 1.0:
        return track, 0.0, False  # a repeat (DESIGN 6, rule 2)
    dt = ts - track.last_ts
    # CMX's moveDistanceInFt is measured from its last real fix, not from a stop point.
    if mv.move_ft is not None and track.walk != SETTLED:
        d = mv.move_ft * M_PER_FT
    else:
        d = line_ft * M_PER_FT
    cap = dt * params.max_speed_mps
    if d > cap:
        d = cap
    credited = 0.0
    if d < params.min_speed_mps * dt or dt >= params.settle_s:
        # Slow: the device stopped before this leg, which is no evidence of walking.
        if settles(track.walk):
            credited = stop(track)  # the new leg starts at the stop point
            d = math.hypot(x - track.x2_ft, y - track.y2_ft) * M_PER_FT  # type: ignore[operator]
            if d > cap:
                d = cap
        track.run_x_ft = track.run_y_ft = None
        if track.x2_ft is not None:
            track.walk = NONE
            track.x0_ft, track.y0_ft = track.x1_ft, track.y1_ft
            track.x1_ft, track.y1_ft = track.x2_ft, track.y2_ft  # type: ignore[assignment]
    elif x2 is not None and y2 is not None:
        x1, y1 = track.x1_ft, track.y1_ft
        ax, ay = x1 - x2, y1 - y2
        bx, by = x - x2, y - y2
        back_ft = math.hypot(ax, ay)
        walk = track.walk
        if walk == LONE:
            walk = NONE  # walking on, it is the first leg of a walk; a turn drops it
        # The angle at p2 is at least max_moving_angle_deg: the device walked on.
        walked_on = back_ft > 0.0 and \
            (ax * bx + ay * by) <= params.cos_max_angle * back_ft * line_ft
        if walk & 1:  # rule D's zig: a decision while a walk is under way
            track.zig += ZIG_STEP * ((0.0 if walked_on else 1.0) - track.zig)
        if walked_on:
            if walk == NONE:
                c = track.pending_m  # a walk starts: its first leg counts, the new one waits
                track.run_x_ft, track.run_y_ft, track.run_m = x1, y1, c
                track.walk = STARTED
            else:
                tol_ft = run_tolerance_ft(track.zig, params.gated)
                c = 0.0
                if walk == STARTED:  # the walk's second leg counts now, before the new one
                    c = _run_leg(track, x1, y1, x2, y2, track.pending_m, tol_ft)
                c += _run_leg(track, x2, y2, x, y, d, tol_ft)
                track.walk = WALKING
            x0 = track.x0_ft
            if walk != NONE and x0 is not None:
                c += _corner_m(x0, track.y0_ft, x1, y1, x2, y2, x, y,  # type: ignore[arg-type]
                               back_ft, line_ft)
            track.total_m += c
            credited = c
        else:
            if walk == WALKING and back_ft > 0.0:
                # Rule T: a walker turned a corner somewhere past p2; the chord p2→point
                # cuts it. The new leg runs via K, TURN_SHARE of the stop extension past
                # p2 along p1→p2 (it counts only if the walk goes on after it).
                if params.gated:  # a quarter of the gate, whatever the fixes' cadence
                    ext_ft = TURN_SHARE * params.stop_m_per_trigger_ft / M_PER_FT * \
                        gate_distance_ft(track.jitter_ft, params.gate_min_ft, params.gate_max_ft)
                else:
                    ext_ft = TURN_SHARE * track.held_m / M_PER_FT
                kx, ky = x2 - ax / back_ft * ext_ft, y2 - ay / back_ft * ext_ft
                d = (ext_ft + math.hypot(x - kx, y - ky)) * M_PER_FT
                if d > cap:
                    d = cap
            elif (walk == NONE or walk == STARTED) and track.zig >= ZIGZAG_MIN:
                # Rule Z: a noisy device's leg p1→p2, not yet credited, counts for the
                # progress the new point shows.
                credited = _zigzag_m(x1, y1, x, y, line_ft, track.pending_m)
                track.total_m += credited
            track.walk = NONE  # a sharp turn: an uncredited pending leg is dropped
            track.run_x_ft = track.run_y_ft = None
        track.x0_ft, track.y0_ft = x1, y1
        track.x1_ft, track.y1_ft = x2, y2
    track.x2_ft, track.y2_ft = x, y
    track.pending_m = d
    track.last_ts = ts
    # Rule L, decided here so that the settle credits the same whenever it runs.
    if params.gated and track.walk == NONE and d >= LONE_K * track.jitter_ft * M_PER_FT:
        track.walk = LONE
    # How far a walker stopping now walks on, on average, fixed here so that whenever the
    # settle runs it credits the same: a share of the device's trigger distance.
    if params.gated:
        stop_m = params.stop_m_per_trigger_ft * gate_distance_ft(
            track.jitter_ft, params.gate_min_ft, params.gate_max_ft)
        # The gate set its candidate to the fix that confirmed this point.
        if track.cand_ts is not None:
            lag_s = track.cand_ts - ts
            if 0.0 <= lag_s < DENSE_FIX_S:
                stop_m *= lag_s / DENSE_FIX_S
        track.held_m = stop_m
    else:
        track.held_m = params.cmx_stop_m
    return track, credited, True
