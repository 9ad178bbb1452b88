"""Each enabled feed as the operator sees it: a state for /healthz and /status, and counts.

The Firehose consumer keeps its own counters and state (feeds/spaces_firehose.py); CMX and
Meraki POST to TYS, so a ``ReceiverWatch`` counts their batches as the handlers hand them
over. ``FeedBoard`` holds the enabled feeds by name; ``Health`` adds their states to the
flusher's health for /healthz. Everything is read when asked: ingestion pays one call.

States and what they mean (docs/operations.md):
- CMX and Meraki: ``ok`` (something arrived within ``quiet_after_s``, or the server started
  less than ``quiet_after_s`` ago: a grace period, so a restart is not an alarm) or
  ``quiet`` (nothing for ``quiet_after_s``).
- Spaces Firehose: the consumer's ``connecting``, ``connected``, ``quiet``,
  ``backing_off``, ``unauthorized`` or ``stopped``.
A feed's state never turns /healthz into a 503: that status is the database's (DESIGN 10),
and restarting TYS cannot bring a feed back.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

from tys_server.core.events import Batch
from tys_server.ops.sources import HealthSource

RECEIVER_STATES = ("ok", "quiet")
FIREHOSE_STATES = ("connecting", "connected", "quiet", "backing_off", "unauthorized",
                   "stopped")


class FeedSource(Protocol):
    """What /healthz, /status and the metrics read of one feed."""

    @property
    def state(self) -> str:
        """One of the feed's known states (``states``)."""
        ...

    @property
    def states(self) -> tuple[str, ...]:
        """Every state this feed can be in (bounded Prometheus label values)."""
        ...

    @property
    def by_type(self) -> Mapping[tuple[str, str], int]:
        """Entries since start by (type, outcome); bounded labels."""
        ...

    @property
    def lag_s(self) -> float | None:
        """Receive time − event time of the newest event (None before the first)."""
        ...

    @property
    def last_event_age_s(self) -> float | None:
        """Seconds since the newest event arrived, on the feed's own clock (None: never)."""
        ...

    @property
    def future_ts(self) -> int:
        """Timestamps more than 5 minutes ahead, replaced by the receive time."""
        ...

    @property
    def reconnects(self) -> int | None:
        """Connections that ended and were retried (None: TYS does not connect out)."""
        ...

    @property
    def bad_lines(self) -> int | None:
        """Lines of a stream that were no event (None: not a stream)."""
        ...

    @property
    def last_error(self) -> str | None:
        """Why the feed is not well, for /status (None when nothing to say)."""
        ...


class ReceiverWatch:
    """A feed POSTed to TYS (CMX, Meraki): its batches counted, ``ok`` or ``quiet``."""

    states = RECEIVER_STATES
    reconnects = None
    bad_lines = None
    last_error = None

    def __init__(self, quiet_after_s: float, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.quiet_after_s = quiet_after_s
        self.clock = clock
        self.heard_at = clock()  # start-up counts as heard: the grace period
        self.by_type: dict[tuple[str, str], int] = {}
        self.future_ts = 0
        self.last_event_at: float | None = None
        self.last_event_ts: float | None = None

    def observe(self, batch: Batch) -> None:
        """One batch the handler applied (the hook of /notification and /meraki)."""
        now_s = self.heard_at = self.clock()
        counts = self.by_type
        for key, count in batch.by_type.items():
            counts[key] = counts.get(key, 0) + count
        self.future_ts += batch.future_ts
        if batch.events:  # events are in arrival order: the last one is the newest, or close
            self.last_event_at = now_s
            self.last_event_ts = batch.events[-1].ts

    @property
    def state(self) -> str:
        """ok, or quiet when nothing arrived for quiet_after_s."""
        return "quiet" if self.clock() - self.heard_at >= self.quiet_after_s else "ok"

    @property
    def lag_s(self) -> float | None:
        """How late the newest event was when it arrived."""
        if self.last_event_at is None or self.last_event_ts is None:
            return None
        return self.last_event_at - self.last_event_ts

    @property
    def last_event_age_s(self) -> float | None:
        """Seconds since the newest event arrived."""
        return None if self.last_event_at is None else self.clock() - self.last_event_at


class FirehoseWatch:
    """The Firehose consumer as a FeedSource (its reader counts replaced timestamps)."""

    states = FIREHOSE_STATES

    def __init__(self, consumer: Any) -> None:
        self.consumer = consumer  # feeds.spaces_firehose.FirehoseConsumer (ops sees no feeds)

    state = property(lambda self: self.consumer.state)
    by_type = property(lambda self: self.consumer.by_type)
    lag_s = property(lambda self: self.consumer.lag_s)
    last_event_age_s = property(lambda self: self.consumer.status()["last_event_age_s"])
    future_ts = property(lambda self: self.consumer.reader.future_ts)
    reconnects = property(lambda self: self.consumer.reconnects)
    bad_lines = property(lambda self: self.consumer.bad_lines)
    last_error = property(lambda self: self.consumer.last_error)


class FeedBoard:
    """The enabled feeds by name, in the order they were added."""

    def __init__(self) -> None:
        self._feeds: dict[str, FeedSource] = {}

    def add(self, name: str, feed: FeedSource) -> None:
        """Watch one more feed under name (cmx, spaces_firehose, meraki)."""
        self._feeds[name] = feed

    def get(self, name: str) -> FeedSource | None:
        """The feed of that name, if enabled."""
        return self._feeds.get(name)

    def __iter__(self) -> Iterator[tuple[str, FeedSource]]:
        return iter(list(self._feeds.items()))

    def states(self) -> dict[str, str]:
        """{name: state} of every enabled feed, for /healthz and /status."""
        return {name: feed.state for name, feed in self._feeds.items()}


class Health:
    """/healthz's source: the database's health (which alone decides 503) and feed states."""

    def __init__(self, database: HealthSource, feeds: FeedBoard) -> None:
        self.database = database
        self.feeds = feeds

    def health(self) -> tuple[bool, dict[str, Any]]:
        """(ok, details): the flusher's, with ``feeds: {name: state}``."""
        ok, details = self.database.health()
        return ok, {**details, "feeds": self.feeds.states()}
