"""The gate for feeds without a movement trigger (DESIGN 12.1). Pure: no I/O, no clock.

Spaces and Meraki report a position on a timer, with repeats and jitter, not each time
a device has moved. Fed straight to the distance filter, every few feet of jitter would
be a leg. The gate does what CMX's own trigger does: a fix goes on to the filter only
once it is at least ``gate_ft`` from the track's newest point (p2, or p1 while p2 is
none). It measures from that stored point, so a restart gates a replayed stream exactly
as before. A fix whose reported uncertainty exceeds ``max_uncertainty_ft`` is dropped.
That is ``gate``, the gate of ``tracking.filter: classic``.

``adaptive_gate`` (``tracking.filter: adaptive``, docs/accuracy.md) sizes each device's
gate from its own noise and refutes jumps: it keeps the previous raw fix R as a
candidate, and passes R (at R's position and time) only when the fix after it confirms
that the device is away from its newest point. Its state (R, jitter_ft) is in the track,
so a restart continues it exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tys_server.core.adaptive import SETTLED, gate_distance_ft
from tys_server.core.events import Fix, Movement
from tys_server.core.tracking import REPEAT_FT, Track

# jitter_ft follows the 30% quantile of a still device's distance from its newest passed
# point N (its spread, drift included: consecutive fixes of a drifting location engine
# are close together while the drift carries them away) by steps of ±0.15 on a log
# scale: up by e^(0.15·0.3) when a sample is further, down by e^(−0.15·0.7) when not.
JITTER_UP = math.exp(0.15 * 0.3)
JITTER_DOWN = math.exp(-0.15 * 0.7)
# Fixes further apart than this say nothing about the noise (the device may have moved).
JITTER_MAX_GAP_S = 30.0
# A fix counts as a sample of the still spread once nothing has passed the gate for this
# long (a walker passes a 30-50 ft gate within ~20 s even at 0.7 m/s).
JITTER_STILL_S = 30.0


@dataclass(frozen=True, slots=True)
class GateParams:
    """tracking.gate_ft (classic gate; adaptive maximum), tracking.gate_min_ft (adaptive
    minimum, at most gate_ft) and tracking.max_uncertainty_ft (None: no cut-off)."""

    gate_ft: float = 50.0
    max_uncertainty_ft: float | None = None
    gate_min_ft: float = 30.0

    def __post_init__(self) -> None:
        # A minimum above the maximum is the maximum (gate_ft 0 passes every fix).
        object.__setattr__(self, "gate_min_ft", min(self.gate_min_ft, self.gate_ft))


def gate(track: Track | None, fix: Fix, params: GateParams) -> Movement | None:
    """The movement the filter should see for this fix, or None when the gate holds it."""
    limit = params.max_uncertainty_ft
    if limit is not None and fix.uncertainty_ft is not None and fix.uncertainty_ft > limit:
        return None
    movement = Movement(fix.mac, fix.floor, fix.x_ft, fix.y_ft, None, fix.ts)
    if track is None or fix.floor != track.floor:
        return movement  # a first fix, or a new floor: the filter starts the track
    if fix.ts < track.last_ts:
        return None  # stale: the filter would ignore it too
    if track.x2_ft is not None and track.y2_ft is not None:
        newest_x, newest_y = track.x2_ft, track.y2_ft
    else:
        newest_x, newest_y = track.x1_ft, track.y1_ft
    if math.hypot(fix.x_ft - newest_x, fix.y_ft - newest_y) < params.gate_ft:
        return None
    return movement


def adaptive_gate(track: Track | None, fix: Fix, params: GateParams) -> Movement | None:
    """The movement the adaptive filter should see for this fix, or None.

    The previous raw fix R passes when it is a gate from the newest point N and this fix
    is too, nearer to R than to N (a jump is refuted by the fix after it). Every fix that
    is not a repeat moves jitter_ft, hence the device's gate, and becomes the new R.
    """
    limit = params.max_uncertainty_ft
    if limit is not None and fix.uncertainty_ft is not None and fix.uncertainty_ft > limit:
        return None
    if track is None or fix.floor != track.floor:
        return Movement(fix.mac, fix.floor, fix.x_ft, fix.y_ft, None, fix.ts)
    ts = fix.ts
    if ts < track.last_ts:
        return None  # stale: the filter would ignore it too
    fx, fy = fix.x_ft, fix.y_ft
    r_ts = track.cand_ts
    movement = None
    if r_ts is not None:
        if ts < r_ts:
            return None  # older than the previous fix: out of order
        rx, ry = track.cand_x_ft, track.cand_y_ft
        step_ft = math.hypot(fx - rx, fy - ry)  # type: ignore[operator]
        if step_ft < REPEAT_FT:
            return None  # a repeat neither moves nor tells the noise; R is kept
        if track.x2_ft is None or track.y2_ft is None or track.walk == SETTLED:
            # A settled track's p2 is the stop point it inferred: measuring from p1 keeps
            # the gate blind to whether the settle ran.
            nx, ny = track.x1_ft, track.y1_ft
        else:
            nx, ny = track.x2_ft, track.y2_ft
        from_n_ft = math.hypot(fx - nx, fy - ny)
        if ts - r_ts <= JITTER_MAX_GAP_S and ts - track.last_ts >= JITTER_STILL_S:
            # Nothing passed for a while: the device is still (or barely moving), and its
            # distance from N is a sample of its spread at a long lag, drift included.
            track.jitter_ft *= JITTER_UP if from_n_ft > track.jitter_ft else JITTER_DOWN
        if step_ft < from_n_ft:  # (the gate is sized only for a fix that may confirm R)
            gate_ft = gate_distance_ft(track.jitter_ft, params.gate_min_ft, params.gate_ft)
            if from_n_ft >= gate_ft and math.hypot(rx - nx, ry - ny) >= gate_ft:  # type: ignore[operator]
                movement = Movement(fix.mac, fix.floor, rx, ry, None, r_ts)  # type: ignore[arg-type]
    track.cand_x_ft, track.cand_y_ft, track.cand_ts = fx, fy, ts
    return movement
