"""The events every feed produces and the state consumes (DESIGN 12.1). Pure data.

Events are not frozen dataclasses: a frozen one pays an object.__setattr__ per field,
about a microsecond per event, and a CMX batch carries dozens of them.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(slots=True)
class Movement:
    """A device's position; move_ft is the distance the feed reports, None: measure it."""

    mac: str
    floor: int | None
    x_ft: float
    y_ft: float
    move_ft: float | None
    ts: float


@dataclass(slots=True)
class Fix:
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


@dataclass(slots=True)
class ZoneVisit:
    """A device seen in a zone (``inout``, ``areachange``, ``containment``, …)."""

    mac: str
    zone: str
    ts: float


@dataclass(slots=True)
class IpSeen:
    """A feed saw a device at a private IP address (the IP → device look-up learns it)."""

    ip: str
    mac: str
    ts: float


@dataclass(slots=True)
class DeviceExit:
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
