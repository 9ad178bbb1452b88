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

Each feed also keeps a ``FeedClock``: its event time, run on while it is live. The
adaptive filter's settle (background.py) runs at ``FeedBoard.settle_time_s()``, the earliest
feed clock less ``SETTLE_LATENESS_S``: a time before which no more events are expected
from any feed. Event time, never the wall clock: Meraki posts a minute late, a Firehose
resume replays minutes-old events, a simulator runs event time behind the wall clock,
and a wall-clock settle would then stop walks that are still going (docs/accuracy.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from operator import attrgetter
from typing import Any, Protocol

from tys_server.core.events import Batch, arrival_lag_s
from tys_server.ops.sources import HealthSource

RECEIVER_STATES = ("ok", "quiet")
FIREHOSE_STATES = ("connecting", "connected", "quiet", "backing_off", "unauthorized",
                   "stopped")
# How late, in event time, an event may still arrive after a newer one of its feed: CMX
# posts within seconds, the Firehose delivers out of order by up to ~20 s, Meraki posts
# once a minute (its oldest fix is 60-75 s old on arrival).
SETTLE_LATENESS_S = 90.0
_TS = attrgetter("ts")


class FeedClock:
    """A feed's event time: the newest event time it delivered, plus the monotonic
    seconds since, counted only while the feed is live (between two reads that both
    found it live); None before any event."""

    def __init__(self, *, monotonic: Callable[[], float] = time.monotonic,
                 newest_ts: float | None = None) -> None:
        self.monotonic = monotonic
        self.newest_ts = newest_ts  # a resume point may seed it: not live until read so
        self._run_s = 0.0
        self._read_at = monotonic()
        self._live = False

    def saw(self, ts: float) -> None:
        """Events up to ts have just arrived."""
        if self.newest_ts is None or ts > self.newest_ts:
            self.newest_ts = ts
            self._run_s = 0.0
            self._read_at = self.monotonic()
            self._live = True

    def now_s(self, live: bool) -> float | None:
        """The clock, given whether the feed is live now."""
        if self.newest_ts is None:
            return None
        now = self.monotonic()
        if live and self._live:
            self._run_s += now - self._read_at
        self._live = live
        self._read_at = now
        return self.newest_ts + self._run_s


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

    def event_time_s(self) -> float | None:
        """The feed's FeedClock (None before its first event)."""
        ...


class ReceiverWatch:
    """A feed POSTed to TYS (CMX, Meraki): its batches counted, ``ok`` or ``quiet``."""

    states = RECEIVER_STATES
    reconnects = None
    bad_lines = None
    last_error = None

    def __init__(self, quiet_after_s: float, *, clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.quiet_after_s = quiet_after_s
        self.clock = clock
        self.event_clock = FeedClock(monotonic=monotonic)
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
            self.event_clock.saw(max(map(_TS, batch.events)))

    @property
    def state(self) -> str:
        """ok, or quiet when nothing arrived for quiet_after_s."""
        return "quiet" if self.clock() - self.heard_at >= self.quiet_after_s else "ok"

    @property
    def lag_s(self) -> float | None:
        """How late the newest event was when it arrived."""
        return arrival_lag_s(self.last_event_at, self.last_event_ts)

    @property
    def last_event_age_s(self) -> float | None:
        """Seconds since the newest event arrived."""
        return None if self.last_event_at is None else self.clock() - self.last_event_at

    def event_time_s(self) -> float | None:
        """The feed's clock: it runs while the feed is ok (a POST within quiet_after_s)."""
        return self.event_clock.now_s(self.state == "ok")


class FirehoseWatch:
    """The Firehose consumer as a FeedSource (its reader counts replaced timestamps)."""

    states = FIREHOSE_STATES

    def __init__(self, consumer: Any, *, monotonic: Callable[[], float] = time.monotonic,
                 resume_ts: float | None = None) -> None:
        self.consumer = consumer  # feeds.spaces_firehose.FirehoseConsumer (ops sees no feeds)
        # Seeded with the stored cursor: a resume replays events from before it, so the
        # settle waits for them rather than taking the stream as new.
        self.event_clock = FeedClock(monotonic=monotonic, newest_ts=resume_ts)

    state = property(lambda self: self.consumer.state)
    by_type = property(lambda self: self.consumer.by_type)
    lag_s = property(lambda self: self.consumer.lag_s)
    last_event_age_s = property(lambda self: self.consumer.status()["last_event_age_s"])
    future_ts = property(lambda self: self.consumer.reader.future_ts)
    reconnects = property(lambda self: self.consumer.reconnects)
    bad_lines = property(lambda self: self.consumer.bad_lines)
    last_error = property(lambda self: self.consumer.last_error)

    def event_time_s(self) -> float | None:
        """The feed's clock: it runs while the stream is connected (a reconnect replays)."""
        newest_ts = self.consumer.last_event_ts  # the newest of its last step (slice)
        if newest_ts is not None:
            self.event_clock.saw(newest_ts)
        return self.event_clock.now_s(self.consumer.state == "connected")


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

    def settle_time_s(self, lateness_s: float = SETTLE_LATENESS_S) -> float | None:
        """The earliest feed clock less lateness_s: no more events are expected before it.

        None while no feed has delivered an event. A feed that has delivered none since
        start-up (and has no resume point) has no late events to wait for; one that is
        down holds every feed's settle back until it is live again.
        """
        times = [t for feed in self._feeds.values() if (t := feed.event_time_s()) is not None]
        return min(times) - lateness_s if times else None


class Health:
    """/healthz's source: the database's health (which alone decides 503) and feed states."""

    def __init__(self, database: HealthSource, feeds: FeedBoard) -> None:
        self.database = database
        self.feeds = feeds

    def health(self) -> tuple[bool, dict[str, Any]]:
        """(ok, details): the flusher's, with ``feeds: {name: state}``."""
        ok, details = self.database.health()
        return ok, {**details, "feeds": self.feeds.states()}
