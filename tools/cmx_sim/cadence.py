"""How each feed reports the venue's estimates (DESIGN 14): its cadence and its delivery order.

- CMX: a fix each time the estimate moved ``movement_distance_ft`` (the venue's default).
- Cisco Spaces Firehose: every estimate, every 2-6 s per device, some repeated positions,
  outlier jumps above walking speed (the venue's outliers, more of them per minute at this
  cadence), delivered out of order: a share of events arrives up to 20 s late.
- Meraki Scanning API v3: every estimate, every 5-15 s per device, collected into one POST
  a minute (the poster, tools/cmx_sim/meraki_poster.py, adds the 2-2.5 m variance and the
  x/y strings in metres).
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import random
from collections.abc import Iterable
from typing import Literal

from tools.cmx_sim.venue import Fix, VenueConfig

Feed = Literal["cmx", "firehose", "meraki"]
FEEDS: tuple[Feed, ...] = ("cmx", "firehose", "meraki")
SPACES_LATE_SHARE = 0.1  # share of Firehose events delivered late
SPACES_LATE_MAX_S = 20.0  # events arrive up to ~20 s out of order (DESIGN 12.2)
MERAKI_POST_INTERVAL_S = 60.0


@dataclasses.dataclass(frozen=True)
class Cadence:
    """A timer feed's reporting: seconds between a device's estimates, and its repeats."""

    interval_s: tuple[float, float]
    repeat_share: float


CADENCES: dict[Feed, Cadence] = {
    "firehose": Cadence((2.0, 6.0), 0.1),
    "meraki": Cadence((5.0, 15.0), 0.0),
}


def for_feed(cfg: VenueConfig, feed: Feed) -> VenueConfig:
    """The venue as `feed` reports it: CMX's movement trigger, or every estimate on a timer."""
    if feed == "cmx":
        return cfg
    if feed not in CADENCES:
        raise ValueError(f"feed must be one of {FEEDS}, got {feed!r}")
    cadence = CADENCES[feed]
    low_s, high_s = cadence.interval_s
    return dataclasses.replace(cfg, compute_interval_s=low_s, compute_interval_max_s=high_s,
                               movement_distance_ft=0.0, repeat_share=cadence.repeat_share)


class LateDelivery:
    """Spaces' delivery order, seeded: most events at once, a share up to max_delay_s late."""

    def __init__(self, seed: int, late_share: float = SPACES_LATE_SHARE,
                 max_delay_s: float = SPACES_LATE_MAX_S) -> None:
        self.rng = random.Random(f"delivery-{seed}")
        self.late_share, self.max_delay_s = late_share, max_delay_s
        self._order = itertools.count()
        self._held: list[tuple[float, int, Fix]] = []

    def add(self, fixes: Iterable[Fix]) -> None:
        """Fixes as the location engine computed them."""
        for fix in fixes:
            delay_s = 0.0
            if self.late_share > 0 and self.rng.random() < self.late_share:
                delay_s = self.rng.uniform(0.0, self.max_delay_s)
            heapq.heappush(self._held, (fix.t_s + delay_s, next(self._order), fix))

    def due(self, t_s: float) -> list[Fix]:
        """The fixes delivered up to simulated time t_s, in delivery order."""
        out = []
        held = self._held
        while held and held[0][0] <= t_s:
            out.append(heapq.heappop(held)[2])
        return out

    def rest(self) -> list[Fix]:
        """Everything still held, in delivery order (the end of a run)."""
        return self.due(float("inf"))

    def __len__(self) -> int:
        return len(self._held)
