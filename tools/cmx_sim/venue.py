"""The venue model (pure, seeded): true walks, noisy location estimates, the fixes a feed sends.

Every device has a true position. Walkers go from waypoint to waypoint at 1.0-1.6 m/s and
pause at each (layout ``aisles``: from booth to booth along an exhibition hall's aisles,
turning 90° at the crossings without pausing); stationary devices never move. The location
engine re-computes each device's position on its own timer (CMX: every
``compute_interval_s``, each device at its own phase; Spaces and Meraki: every
``compute_interval_s`` .. ``compute_interval_max_s``, drawn anew each time): the estimate
is the true position plus noise per axis, and now and then an outlier jump. Noise is
``independent`` (a fresh gaussian draw per estimate) or ``correlated`` (an
Ornstein-Uhlenbeck drift per axis with correlation time ``noise_corr_s``: real location
error wanders, it does not jump each fix); ``noise_ft`` is its standard deviation per axis
either way. A share ``repeat_share`` of estimates repeats the previous report (a location
engine that did not update). A fix is emitted on the first estimate (``moveDistanceInFt``
10000, as CMX does), on a floor change, and whenever the estimate is
``movement_distance_ft`` or more from the last fix (0: every estimate, as the timer feeds
send them).

Each device draws from random streams of its own (its walk; its estimates), so the same
seed gives the same true walks whatever the feed, its cadence or the noise model.
"""

from __future__ import annotations

import dataclasses
import heapq
import math
import random
from collections.abc import Sequence
from typing import Literal

from tools.cmx_sim.devices import WALKER, Device

M_PER_FT = 0.3048
FIRST_FIX_MOVE_FT = 10000.0  # what CMX reports as moveDistanceInFt on a device's first fix
NoiseModel = Literal["independent", "correlated"]
NOISE_MODELS: tuple[NoiseModel, ...] = ("independent", "correlated")
LAYOUTS = ("open", "aisles")


@dataclasses.dataclass(frozen=True)
class VenueConfig:
    """Geometry, walking behaviour and the location engine's model; units in the names."""

    floors: int = 3
    width_ft: float = 600.0
    depth_ft: float = 400.0
    speed_mps: tuple[float, float] = (1.0, 1.6)
    pause_s: tuple[float, float] = (10.0, 120.0)
    floor_change_prob: float = 0.05  # per waypoint reached
    noise_ft: float = 7.0  # standard deviation per axis of each location estimate
    outlier_rate: float = 0.01  # share of estimates that jump (multipath, a far AP)
    outlier_ft: float = 60.0  # a jump lands outlier_ft/2 .. outlier_ft from the true point
    compute_interval_s: float = 5.0
    movement_distance_ft: float = 50.0
    compute_interval_max_s: float | None = None  # None: exactly every compute_interval_s
    repeat_share: float = 0.0  # share of estimates that repeat the previous report
    noise_model: NoiseModel = "independent"
    noise_corr_s: float = 30.0  # correlation time of the correlated noise
    # "open": straight from waypoint to waypoint (a hall with nothing in the way).
    # "aisles": an exhibition hall; booths line aisles every aisle_ft (x = k × aisle_ft),
    # crossed by aisles every cross_aisle_ft (y = k × cross_aisle_ft): a walker goes from
    # booth to booth along them, turning 90° at the crossings without pausing.
    layout: Literal["open", "aisles"] = "open"
    aisle_ft: float = 40.0
    cross_aisle_ft: float = 120.0

    def __post_init__(self) -> None:
        if self.noise_model not in NOISE_MODELS:
            raise ValueError(f"noise_model must be one of {NOISE_MODELS}, "
                             f"got {self.noise_model!r}")
        if self.compute_interval_s <= 0 or self.noise_corr_s <= 0:
            raise ValueError("compute_interval_s and noise_corr_s must be > 0")
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {self.layout!r}")
        if self.aisle_ft <= 0 or self.cross_aisle_ft <= 0:
            raise ValueError("aisle_ft and cross_aisle_ft must be > 0")
        if (self.compute_interval_max_s is not None
                and self.compute_interval_max_s < self.compute_interval_s):
            raise ValueError("compute_interval_max_s must be >= compute_interval_s")


@dataclasses.dataclass(frozen=True)
class Fix:
    """One reported position: a device's estimate at simulated time t_s."""

    device: int
    t_s: float
    floor: int
    x_ft: float
    y_ft: float
    move_ft: float


class Mover:
    """The true position of one device over simulated time."""

    __slots__ = ("cfg", "rng", "moving", "floor", "x", "y", "t", "tx", "ty", "speed_fps",
                 "pause_until", "distance_ft", "paused_s", "walking_s", "corners")

    def __init__(self, cfg: VenueConfig, rng: random.Random, floor: int, moving: bool) -> None:
        self.cfg, self.rng, self.moving, self.floor = cfg, rng, moving, floor
        self.x, self.y = rng.uniform(0, cfg.width_ft), rng.uniform(0, cfg.depth_ft)
        self.corners: list[tuple[float, float]] = []  # the leg's turns left, then its end
        if cfg.layout == "aisles":  # at a booth: on the nearest aisle
            self.x = min(round(self.x / cfg.aisle_ft), self._aisles()) * cfg.aisle_ft
        self.t = 0.0
        self.distance_ft = self.paused_s = self.walking_s = 0.0
        self.tx, self.ty, self.speed_fps = self.x, self.y, 0.0
        self.pause_until = 0.0
        if moving:
            self._new_leg()
            if rng.random() < 0.5:  # some attendees are standing somewhere at the start
                self.pause_until = rng.uniform(0, cfg.pause_s[1])

    def _aisles(self) -> int:
        """The highest booth aisle's index (the aisles are x = 0 .. that × aisle_ft)."""
        return int(self.cfg.width_ft // self.cfg.aisle_ft)

    def _new_leg(self) -> None:
        cfg = self.cfg
        if cfg.layout == "aisles":
            tx = self.rng.randint(0, self._aisles()) * cfg.aisle_ft
            ty = self.rng.uniform(0, cfg.depth_ft)
            self.corners = self._route(tx, ty)
            self.tx, self.ty = self.corners.pop(0)
        else:
            self.tx = self.rng.uniform(0, cfg.width_ft)
            self.ty = self.rng.uniform(0, cfg.depth_ft)
        self.speed_fps = self.rng.uniform(*cfg.speed_mps) / M_PER_FT

    def _route(self, tx: float, ty: float) -> list[tuple[float, float]]:
        """Along the booth aisle to a cross aisle, along it to the booth's aisle, along
        that to the booth (the cross aisle that makes it shortest, the nearer one on a
        tie); a booth on the same aisle straight along it."""
        if tx == self.x:
            return [(tx, ty)]
        step = self.cfg.cross_aisle_ft
        crossings = [k * step for k in range(int(self.cfg.depth_ft // step) + 1)]
        cy = min(crossings, key=lambda c: (abs(self.y - c) + abs(c - ty), abs(self.y - c)))
        return [p for p in ((self.x, cy), (tx, cy), (tx, ty)) if p != (self.x, self.y)]

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
                if self.corners:  # an aisle crossing: turn, walk on
                    self.tx, self.ty = self.corners.pop(0)
                else:
                    self._arrive()
            else:
                step = t_to - self.t
                share = step * self.speed_fps / left_ft
                self.x += dx * share
                self.y += dy * share
                self.distance_ft += step * self.speed_fps
                self.walking_s += step
                self.t = t_to


class Estimator:
    """One device's location engine: its timer, noise state, outliers and repeats."""

    __slots__ = ("cfg", "rng", "error_x", "error_y", "last_t", "last_report")

    def __init__(self, cfg: VenueConfig, rng: random.Random) -> None:
        self.cfg, self.rng = cfg, rng
        self.error_x = self.error_y = 0.0
        self.last_t: float | None = None
        self.last_report: tuple[float, float] | None = None

    def first_time_s(self) -> float:
        """When the device's first estimate is computed (its phase)."""
        return self.rng.uniform(0, self.cfg.compute_interval_max_s or self.cfg.compute_interval_s)

    def interval_s(self) -> float:
        """Seconds to the device's next estimate."""
        cfg = self.cfg
        if cfg.compute_interval_max_s is None:
            return cfg.compute_interval_s
        return self.rng.uniform(cfg.compute_interval_s, cfg.compute_interval_max_s)

    def _error(self, t_s: float) -> tuple[float, float]:
        cfg, rng, sigma = self.cfg, self.rng, self.cfg.noise_ft
        if cfg.noise_model == "independent" or self.last_t is None:
            # The drift starts from its stationary distribution.
            self.error_x, self.error_y = rng.gauss(0.0, sigma), rng.gauss(0.0, sigma)
        else:
            rho = math.exp(-(t_s - self.last_t) / cfg.noise_corr_s)
            step = sigma * math.sqrt(1.0 - rho * rho)
            self.error_x = rho * self.error_x + rng.gauss(0.0, step)
            self.error_y = rho * self.error_y + rng.gauss(0.0, step)
        self.last_t = t_s
        return self.error_x, self.error_y

    def estimate(self, t_s: float, x_ft: float, y_ft: float) -> tuple[float, float]:
        """The reported position of a device truly at (x_ft, y_ft) at t_s."""
        cfg, rng = self.cfg, self.rng
        repeat = cfg.repeat_share > 0 and rng.random() < cfg.repeat_share
        error_x, error_y = self._error(t_s)  # the drift goes on under a repeat
        if repeat and self.last_report is not None:
            return self.last_report
        x, y = x_ft + error_x, y_ft + error_y
        if cfg.outlier_rate > 0 and rng.random() < cfg.outlier_rate:
            angle = rng.uniform(0, 2 * math.pi)
            jump_ft = rng.uniform(cfg.outlier_ft / 2, cfg.outlier_ft)
            x += jump_ft * math.cos(angle)
            y += jump_ft * math.sin(angle)
        # Location engines snap estimates onto the floor map.
        report = (min(max(x, 0.0), cfg.width_ft), min(max(y, 0.0), cfg.depth_ft))
        self.last_report = report
        return report


class Venue:
    """All devices, their true movers and the feed's view of them; step() yields fixes."""

    def __init__(self, devices: Sequence[Device], cfg: VenueConfig, seed: int) -> None:
        self.cfg = cfg
        self.devices = list(devices)
        self.movers = [Mover(cfg, random.Random(f"walk-{seed}-{d.index}"),
                             min(d.floor, cfg.floors), d.kind == WALKER) for d in self.devices]
        self.estimators = [Estimator(cfg, random.Random(f"estimates-{seed}-{d.index}"))
                           for d in self.devices]
        self._notified: list[tuple[int, float, float] | None] = [None] * len(self.devices)
        # Each device's true distance (ft) at its first report: what it walked before, no
        # feed saw (docs/accuracy.md, "The simulated venue").
        self._first_report_ft: list[float | None] = [None] * len(self.devices)
        self._heap = [(e.first_time_s(), i) for i, e in enumerate(self.estimators)]
        heapq.heapify(self._heap)

    def _compute(self, index: int, t_s: float) -> Fix | None:
        mover = self.movers[index]
        mover.advance(t_s)
        x, y = self.estimators[index].estimate(t_s, mover.x, mover.y)
        last = self._notified[index]
        if last is None:
            move_ft = FIRST_FIX_MOVE_FT
            self._first_report_ft[index] = mover.distance_ft
        else:
            move_ft = math.hypot(x - last[1], y - last[2])
            if last[0] == mover.floor and move_ft < self.cfg.movement_distance_ft:
                return None
        self._notified[index] = (mover.floor, x, y)
        return Fix(index, t_s, mover.floor, x, y, move_ft)

    def step(self, t_to: float) -> list[Fix]:
        """Run every location computation due up to simulated time t_to; fixes in time order."""
        fixes = []
        heap, estimators = self._heap, self.estimators
        while heap and heap[0][0] <= t_to:
            t_s, index = heap[0]
            fix = self._compute(index, t_s)
            if fix is not None:
                fixes.append(fix)
            heapq.heapreplace(heap, (t_s + estimators[index].interval_s(), index))
        return fixes

    def finish(self, t_end: float) -> None:
        """Advance every true path to the end of the simulation."""
        for mover in self.movers:
            mover.advance(t_end)

    def stop_walking(self, t_s: float) -> None:
        """From t_s on nobody walks (the session is over; the phones stay in the venue)."""
        self.finish(t_s)
        for mover in self.movers:
            mover.moving = False

    def true_distance_m(self, index: int) -> float:
        """Metres device `index` really walked so far (horizontal, floor changes excluded)."""
        return self.movers[index].distance_ft * M_PER_FT

    def reported_distance_m(self, index: int) -> float:
        """The ground truth: metres device `index` walked since the feed first reported it
        (0 before that). No feed can show a walk that began before its first fix."""
        first_ft = self._first_report_ft[index]
        if first_ft is None:
            return 0.0
        return (self.movers[index].distance_ft - first_ft) * M_PER_FT
