"""The events every feed produces and the state consumes (DESIGN 12.1). Pure data.

The events are msgspec ``Struct``s, not dataclasses: a busy Firehose makes one per line
and a CMX batch dozens, and a Struct is built in C (about 50 ns, against about 190 ns for
a slotted dataclass and a microsecond for a frozen one). They hold only text and numbers,
so they are not tracked by the cycle collector (``gc=False``): creating and freeing one
costs no collector bookkeeping.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass, field
from typing import Protocol

import msgspec


class Movement(msgspec.Struct, gc=False):
    """A device's position; move_ft is the distance the feed reports, None: measure it."""

    mac: str
    floor: int | None
    x_ft: float
    y_ft: float
    move_ft: float | None
    ts: float


class Fix(msgspec.Struct, gc=False):
    """A position from a feed that reports on a timer (Spaces, Meraki), not on movement.

    The state passes it through the gate (core/gate.py) before the distance filter;
    uncertainty_ft is the feed's own error estimate, None when it gives none.
    """

    mac: str
    floor: int | None
    x_ft: float
    y_ft: float
    uncertainty_ft: float | None
    ts: float


class ZoneVisit(msgspec.Struct, gc=False):
    """A device seen in a zone (``inout``, ``areachange``, ``containment``, …)."""

    mac: str
    zone: str
    ts: float


class IpSeen(msgspec.Struct, gc=False):
    """A feed saw a device at a private IP address (the IP → device look-up learns it)."""

    ip: str
    mac: str
    ts: float


class DeviceExit(msgspec.Struct, gc=False):
    """The venue's location service says the device left: its track ends here."""

    mac: str
    ts: float


Event = Movement | Fix | ZoneVisit | IpSeen | DeviceExit


@dataclass(slots=True)
class Batch:
    """The events of one delivery (a POST, a stream chunk) and what became of each entry."""

    events: list[Event]
    accepted: int
    ignored: int
    rejected: int
    by_type: dict[tuple[str, str], int] = field(default_factory=dict)
    # Entries whose time was more than 5 minutes ahead, replaced by the receive time.
    future_ts: int = 0


def arrival_lag_s(received_s: float | None, event_ts: float | None) -> float | None:
    """How late an event arrived: receive time − event time (None before any event)."""
    if received_s is None or event_ts is None:
        return None
    return received_s - event_ts


class EventSink(Protocol):
    """Where a feed's batches go (the state); tracks: devices it already follows."""

    @property
    def tracks(self) -> Container[str]: ...

    def ingest(self, batch: Batch, now_s: float) -> None: ...
