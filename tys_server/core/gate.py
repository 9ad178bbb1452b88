"""The gate for feeds without a movement trigger (DESIGN 12.1). Pure: no I/O, no clock.

Spaces and Meraki report a position on a timer, with repeats and jitter, not each time
a device has moved. Fed straight to the distance filter, every few feet of jitter would
be a leg. The gate does what CMX's own trigger does: a fix goes on to the filter only
once it is at least ``gate_ft`` from the track's newest point (p2, or p1 while p2 is
none). It measures from that stored point, so a restart gates a replayed stream exactly
as before. A fix whose reported uncertainty exceeds ``max_uncertainty_ft`` is dropped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tys_server.core.events import Fix, Movement
from tys_server.core.tracking import Track


@dataclass(frozen=True, slots=True)
class GateParams:
    """tracking.gate_ft and tracking.max_uncertainty_ft (None: no uncertainty cut-off)."""

    gate_ft: float = 50.0
    max_uncertainty_ft: float | None = None


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
