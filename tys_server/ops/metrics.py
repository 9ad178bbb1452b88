"""Prometheus metrics of one server: counters fed by hooks, gauges read at scrape time.

Every label value comes from a bounded set the server chooses (handler class names,
status codes, feed names, type labels, feed states, look-up outcomes): never a MAC, an
IP, a username or a CMX host name. Hot paths (one call per request, per batch) add to plain
numbers in dicts, read out at scrape time: no prometheus-client child and no lock per
request (the server is one thread), which cost about 2% of a notification's CPU.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import tornado.web
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.utils import floatToGoString

from tys_server.core.state import State
from tys_server.ops.feeds import FeedBoard
from tys_server.ops.sources import HostSource

# Notification batches are answered in well under a millisecond: start the buckets low.
REQUEST_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                     1.0, 2.5, 5.0, 10.0)
FLUSH_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
LOOKUP_BUCKETS_S = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class FlushSource(Protocol):
    """What the scrape reads of the flusher."""

    last_success_s: float | None
    failing_since_s: float | None


class _Histogram:
    """Observations counted per bucket (not cumulative) and summed."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    def buckets(self) -> list[tuple[str, float]]:
        """Cumulative (le, count) pairs as Prometheus reads them."""
        out, total = [], 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            total += count
            out.append((floatToGoString(bound), total))
        return out


class _RequestChild:
    """Requests of one (handler, status), and the handler's latency histogram."""

    __slots__ = ("count", "histogram")

    def __init__(self, histogram: _Histogram) -> None:
        self.count = 0
        self.histogram = histogram


class Metrics:
    """One registry per server, so several apps in one process never collide."""

    def __init__(self, state: State, *, feeds: FeedBoard | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.flush_seconds = Histogram("tys_flush_duration_seconds",
                                       "Time of one flush to PostgreSQL (failed ones too).",
                                       buckets=FLUSH_BUCKETS_S, registry=r)
        self.flush_failures = Counter("tys_flush_failures", "Flushes that did not reach "
                                      "the database.", registry=r)
        self.flush_rows = Counter("tys_flush_rows_written", "Rows written by successful "
                                  "flushes.", registry=r)
        # The name predates the feeds: outcome "observed" is a feed's sighting, no CMX asked.
        self.lookups = Counter("tys_cmx_lookups", "IP to MAC look-ups, by outcome.",
                               ["outcome"], registry=r)
        self.lookup_seconds = Histogram("tys_cmx_lookup_duration_seconds",
                                        "Time of one CMX look-up, fail-over included.",
                                        buckets=LOOKUP_BUCKETS_S, registry=r)
        self._request_children: dict[tuple[str, int], _RequestChild] = {}
        self._request_histograms: dict[str, _Histogram] = {}
        self._lookup_children: dict[str, Any] = {}
        self.feeds = feeds if feeds is not None else FeedBoard()
        self._gauges = _ScrapeGauges(state, clock)
        r.register(self._gauges)
        r.register(_HotPathCounts(self))
        r.register(_FeedFamilies(self.feeds, state))

    def watch(self, flusher: FlushSource | None, cmx: HostSource | None) -> None:
        """Read the flusher and the CMX hosts at scrape time (they exist after start-up)."""
        self._gauges.flusher = flusher
        self._gauges.cmx = cmx

    # -- hooks (hot paths) ------------------------------------------------------------

    def observe_request(self, handler_name: str, status: int, seconds: float) -> None:
        """One answered request; handler_name is a class name from the route table."""
        child = self._request_children.get((handler_name, status))
        if child is None:
            histogram = self._request_histograms.get(handler_name)
            if histogram is None:
                histogram = self._request_histograms[handler_name] = \
                    _Histogram(REQUEST_BUCKETS_S)
            child = self._request_children[(handler_name, status)] = _RequestChild(histogram)
        child.count += 1
        child.histogram.observe(seconds)

    def on_request(self, handler: tornado.web.RequestHandler) -> None:
        """make_app's on_request hook: the handler as Tornado logs it."""
        self.observe_request(type(handler).__name__, handler.get_status(),
                             handler.request.request_time())

    def observe_flush(self, seconds: float, rows: int, ok: bool) -> None:
        """The flusher's on_flush hook."""
        self.flush_seconds.observe(seconds)
        if ok:
            self.flush_rows.inc(rows)
        else:
            self.flush_failures.inc()

    def observe_lookup(self, outcome: str, seconds: float) -> None:
        """The CMX client's on_lookup hook."""
        self.count_lookup(outcome)
        self.lookup_seconds.observe(seconds)

    def count_lookup(self, outcome: str) -> None:
        """A look-up answered without a CMX host (the service's hook): ``observed`` (a
        feed's sighting), or ``not_found``/``not_private`` with no host configured."""
        child = self._lookup_children.get(outcome)
        if child is None:
            child = self._lookup_children[outcome] = self.lookups.labels(outcome)
        child.inc()

    # -- scrape -----------------------------------------------------------------------

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)


class _HotPathCounts:
    """Requests and notifications, counted in plain numbers, as Prometheus families."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        m = self.metrics
        requests = CounterMetricFamily("tys_http_requests", "HTTP requests answered.",
                                       labels=["handler", "status"])
        for (handler, status), child in m._request_children.items():
            requests.add_metric([handler, str(status)], child.count)
        yield requests
        seconds = HistogramMetricFamily("tys_http_request_duration_seconds",
                                        "Time to answer an HTTP request.", labels=["handler"])
        for handler, histogram in m._request_histograms.items():
            seconds.add_metric([handler], histogram.buckets(), histogram.sum)
        yield seconds


class _FeedFamilies:
    """Per-feed counts and states (ops.feeds), and the state's refusals, read at scrape."""

    def __init__(self, feeds: FeedBoard, state: State) -> None:
        self.feeds = feeds
        self.state = state

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        # CMX's entries keep their own family too: dashboards were built on it.
        notifications = CounterMetricFamily(
            "tys_notifications", "CMX notification entries received, by type and outcome.",
            labels=["type", "outcome"])
        cmx = self.feeds.get("cmx")
        for (kind, outcome), count in (cmx.by_type.items() if cmx is not None else ()):
            notifications.add_metric([kind, outcome], count)
        yield notifications
        events = CounterMetricFamily(
            "tys_feed_events", "Entries received from each feed, by type and outcome.",
            labels=["feed", "type", "outcome"])
        future = CounterMetricFamily(
            "tys_feed_future_timestamps", "Event times more than 5 minutes ahead of the "
            "server's clock, replaced by the receive time (clock skew).", labels=["feed"])
        states = GaugeMetricFamily("tys_feed_state", "1 for each feed's current state.",
                                   labels=["feed", "state"])
        lag = GaugeMetricFamily("tys_feed_lag_seconds", "Receive time minus event time of "
                                "each feed's newest event.", labels=["feed"])
        age = GaugeMetricFamily("tys_feed_last_event_age_seconds", "Seconds since each "
                                "feed's newest event arrived.", labels=["feed"])
        reconnects = CounterMetricFamily("tys_feed_reconnects", "Feed connections that "
                                         "ended and were retried.", labels=["feed"])
        bad_lines = CounterMetricFamily("tys_feed_bad_lines", "Stream lines that were no "
                                        "event (not JSON, cut short, too long, or one the "
                                        "reader failed on).", labels=["feed"])
        for name, feed in self.feeds:
            for (kind, outcome), count in list(feed.by_type.items()):
                events.add_metric([name, kind, outcome], count)
            future.add_metric([name], feed.future_ts)
            current = feed.state
            for known in feed.states:
                states.add_metric([name, known], 1 if known == current else 0)
            if feed.lag_s is not None:
                lag.add_metric([name], feed.lag_s)
            last_event_age_s = feed.last_event_age_s
            if last_event_age_s is not None:
                age.add_metric([name], max(0.0, last_event_age_s))
            if feed.reconnects is not None:
                reconnects.add_metric([name], feed.reconnects)
            if feed.bad_lines is not None:
                bad_lines.add_metric([name], feed.bad_lines)
        yield from (events, future, states, lag, age, reconnects, bad_lines)
        state = self.state
        for name, documentation, value in (
                ("tys_devices_refused", "Movements and fixes of new devices refused "
                 "because tracking.max_devices devices are tracked (one per event, not "
                 "per device).", state.refused_devices),
                ("tys_stale_movements", "Fixes older than their track's newest point, "
                 "dropped.", state.stale_movements),
                ("tys_stale_visits", "Zone visits not counted, their minute not open: "
                 "over 10 minutes behind or 5 minutes ahead of the receive time, or a "
                 "minute whose zone count was loaded at start-up.", state.stale_visits)):
            yield CounterMetricFamily(name, documentation, value=value)


class _ScrapeGauges:
    """Gauges computed from memory when Prometheus scrapes, so ingestion pays nothing."""

    def __init__(self, state: State, clock: Callable[[], float]) -> None:
        self.state = state
        self.clock = clock
        self.flusher: FlushSource | None = None
        self.cmx: HostSource | None = None

    def describe(self) -> Iterable[Metric]:
        return []  # names are fixed; no need to collect at registration

    def collect(self) -> Iterable[Metric]:
        state = self.state
        yield _gauge("tys_devices_tracked", "Devices with a track in memory.", len(state.tracks))
        yield _gauge("tys_users_registered", "Registered users.", len(state.users))
        yield _gauge("tys_devices_registered", "Registered devices.", len(state.owners))
        flusher = self.flusher
        yield _gauge("tys_flush_backlog_keys", "Changed keys not yet written to PostgreSQL.",
                     flusher.backlog() if flusher is not None else len(state.dirty))
        if flusher is not None:
            yield _gauge("tys_database_up", "1 while flushes reach the database, else 0.",
                         1 if flusher.failing_since_s is None else 0)
            if flusher.last_success_s is not None:
                yield _gauge("tys_flush_last_success_age_seconds",
                             "Seconds since the last successful flush.",
                             max(0.0, self.clock() - flusher.last_success_s))
        if self.cmx is not None:
            hosts = GaugeMetricFamily("tys_cmx_hosts", "Configured CMX hosts by status.",
                                      labels=["status"])
            statuses = [host.status for host in self.cmx.hosts]
            for status in ("up", "down", "unknown"):
                hosts.add_metric([status], statuses.count(status))
            yield hosts


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)
