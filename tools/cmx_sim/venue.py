"""The venue model (pure, seeded): true walks, CMX-like noisy estimates, movement triggers.

Every device has a true position. Walkers go from waypoint to waypoint at 1.0-1.6 m/s and
pause at each; stationary devices never move. Like CMX, the location of each device is
re-computed every ``compute_interval_s`` (each device at its own phase): the estimate is
the true position plus gaussian noise per axis, and now and then an outlier jump. A fix
(a movement notification) is emitted on the first estimate (``moveDistanceInFt`` 10000,
as CMX does), on a floor change, and whenever the estimate is ``movement_distance_ft``
or more from the last notified estimate.
"""

from __future__ import annotations

import dataclasses
import heapq
import math
import random
from collections.abc import Sequence

from tools.cmx_sim.devices import WALKER, Device

M_PER_FT = 0.3048
FIRST_FIX_MOVE_FT = 10000.0  # what CMX reports as moveDistanceInFt on a device's first fix


@dataclasses.dataclass(frozen=True)
class VenueConfig:
    """Geometry, walking behaviour and the CMX noise model; units in the names."""

    floors: int = 3
    width_ft: float = 600.0
    depth_ft: float = 400.0
    speed_mps: tuple[float, float] = (1.0, 1.6)
    pause_s: tuple[float, float] = (10.0, 120.0)
    floor_change_prob: float = 0.05  # per waypoint reached
    noise_ft: float = 7.0  # gaussian sigma per axis of each location estimate
    outlier_rate: float = 0.01  # share of estimates that jump (multipath, a far AP)
    outlier_ft: float = 60.0  # a jump lands outlier_ft/2 .. outlier_ft from the true point
    compute_interval_s: float = 5.0
    movement_distance_ft: float = 50.0


@dataclasses.dataclass(frozen=True)
class Fix:
    """One movement notification: a device's estimate at simulated time t_s."""

    device: int
    t_s: float
    floor: int
    x_ft: float
    y_ft: float
    move_ft: float


class Mover:
    """The true position of one device over simulated time."""

    __slots__ = ("cfg", "rng", "moving", "floor", "x", "y", "t", "tx", "ty", "speed_fps",
                 "pause_until", "distance_ft", "paused_s", "walking_s")

    def __init__(self, cfg: VenueConfig, rng: random.Random, floor: int, moving: bool) -> None:
        self.cfg, self.rng, self.moving, self.floor = cfg, rng, moving, floor
        self.x, self.y = rng.uniform(0, cfg.width_ft), rng.uniform(0, cfg.depth_ft)
        self.t = 0.0
        self.distance_ft = self.paused_s = self.walking_s = 0.0
        self.tx, self.ty, self.speed_fps = self.x, self.y, 0.0
        self.pause_until = 0.0
        if moving:
            self._new_leg()
            if rng.random() < 0.5:  # some attendees are standing somewhere at the start
                self.pause_until = rng.uniform(0, cfg.pause_s[1])

    def _new_leg(self) -> None:
        self.tx = self.rng.uniform(0, self.cfg.width_ft)
        self.ty = self.rng.uniform(0, self.cfg.depth_ft)
        self.speed_fps = self.rng.uniform(*self.cfg.speed_mps) / M_PER_FT

    def _arrive(self) -> None:
        cfg = self.cfg
        self.pause_until = self.t + self.rng.uniform(*cfg.pause_s)
        if cfg.floors > 1 and self.rng.random() < cfg.floor_change_prob:
            self.floor = self.rng.choice([f for f in range(1, cfg.floors + 1) if f != self.floor])
        self._new_leg()

    def advance(self, t_to: float) -> None:
        """Move along the true path up to simulated time t_to (never backwards)."""
        while self.t < t_to:
            if not self.moving:
                self.t = t_to
                return
            if self.t < self.pause_until:
                step = min(t_to, self.pause_until) - self.t
                self.paused_s += step
                self.t += step
                continue
            dx, dy = self.tx - self.x, self.ty - self.y
            left_ft = math.hypot(dx, dy)
            need_s = left_ft / self.speed_fps
            if self.t + need_s <= t_to:
                self.x, self.y = self.tx, self.ty
                self.distance_ft += left_ft
                self.walking_s += need_s
                self.t += need_s
                self._arrive()
            else:
                step = t_to - self.t
                share = step * self.speed_fps / left_ft
                self.x += dx * share
                self.y += dy * share
                self.distance_ft += step * self.speed_fps
                self.walking_s += step
                self.t = t_to


class Venue:
    """All devices, their true movers and CMX's view of them; step() yields fixes in order."""

    def __init__(self, devices: Sequence[Device], cfg: VenueConfig, seed: int) -> None:
        self.cfg = cfg
        self.rng = random.Random(f"venue-{seed}")
        self.devices = list(devices)
        self.movers = [Mover(cfg, self.rng, min(d.floor, cfg.floors), d.kind == WALKER)
                       for d in self.devices]
        self._notified: list[tuple[int, float, float] | None] = [None] * len(self.devices)
        self._heap = [(self.rng.uniform(0, cfg.compute_interval_s), i)
                      for i in range(len(self.devices))]
        heapq.heapify(self._heap)

    def _estimate(self, mover: Mover) -> tuple[float, float]:
        cfg, rng = self.cfg, self.rng
        x = mover.x + rng.gauss(0.0, cfg.noise_ft)
        y = mover.y + rng.gauss(0.0, cfg.noise_ft)
        if cfg.outlier_rate > 0 and rng.random() < cfg.outlier_rate:
            angle = rng.uniform(0, 2 * math.pi)
            jump_ft = rng.uniform(cfg.outlier_ft / 2, cfg.outlier_ft)
            x += jump_ft * math.cos(angle)
            y += jump_ft * math.sin(angle)
        # CMX snaps estimates onto the floor map.
        return min(max(x, 0.0), cfg.width_ft), min(max(y, 0.0), cfg.depth_ft)

    def _compute(self, index: int, t_s: float) -> Fix | None:
        mover = self.movers[index]
        mover.advance(t_s)
        x, y = self._estimate(mover)
        last = self._notified[index]
        if last is None:
            move_ft = FIRST_FIX_MOVE_FT
        else:
            move_ft = math.hypot(x - last[1], y - last[2])
            if last[0] == mover.floor and move_ft < self.cfg.movement_distance_ft:
                return None
        self._notified[index] = (mover.floor, x, y)
        return Fix(index, t_s, mover.floor, x, y, move_ft)

    def step(self, t_to: float) -> list[Fix]:
        """Run every location computation due up to simulated time t_to; fixes in time order."""
        fixes = []
        heap, interval = self._heap, self.cfg.compute_interval_s
        while heap and heap[0][0] <= t_to:
            t_s, index = heap[0]
            fix = self._compute(index, t_s)
            if fix is not None:
                fixes.append(fix)
            heapq.heapreplace(heap, (t_s + interval, index))
        return fixes

    def finish(self, t_end: float) -> None:
        """Advance every true path to the end of the simulation."""
        for mover in self.movers:
            mover.advance(t_end)

    def true_distance_m(self, index: int) -> float:
        """Metres device `index` really walked so far (horizontal, floor changes excluded)."""
        return self.movers[index].distance_ft * M_PER_FT
