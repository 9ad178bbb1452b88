"""Prometheus metrics of one server: counters fed by hooks, gauges read at scrape time.

Every label value comes from a bounded set the server chooses (handler class names,
status codes, notification type labels, look-up outcomes): never a MAC, an IP, a
username or a CMX host name. Hot paths (one call per request, per batch) add to plain
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

from tys_server.core.events import Batch
from tys_server.core.state import State
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

    def __init__(self, state: State, *, clock: Callable[[], float] = time.time) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.flush_seconds = Histogram("tys_flush_duration_seconds",
                                       "Time of one flush to PostgreSQL (failed ones too).",
                                       buckets=FLUSH_BUCKETS_S, registry=r)
        self.flush_failures = Counter("tys_flush_failures", "Flushes that did not reach "
                                      "the database.", registry=r)
        self.flush_rows = Counter("tys_flush_rows_written", "Rows written by successful "
                                  "flushes.", registry=r)
        self.lookups = Counter("tys_cmx_lookups", "CMX IP to MAC look-ups, by outcome.",
                               ["outcome"], registry=r)
        self.lookup_seconds = Histogram("tys_cmx_lookup_duration_seconds",
                                        "Time of one CMX look-up, fail-over included.",
                                        buckets=LOOKUP_BUCKETS_S, registry=r)
        self._request_children: dict[tuple[str, int], _RequestChild] = {}
        self._request_histograms: dict[str, _Histogram] = {}
        self._notification_counts: dict[tuple[str, str], int] = {}
        self._lookup_children: dict[str, Any] = {}
        self._gauges = _ScrapeGauges(state, clock)
        r.register(self._gauges)
        r.register(_HotPathCounts(self))

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

    def observe_batch(self, batch: Batch) -> None:
        """One parsed CMX batch (type labels are bounded by notifications._label)."""
        counts = self._notification_counts
        for key, count in batch.by_type.items():
            counts[key] = counts.get(key, 0) + count

    def observe_flush(self, seconds: float, rows: int, ok: bool) -> None:
        """The flusher's on_flush hook."""
        self.flush_seconds.observe(seconds)
        if ok:
            self.flush_rows.inc(rows)
        else:
            self.flush_failures.inc()

    def observe_lookup(self, outcome: str, seconds: float) -> None:
        """The CMX client's on_lookup hook."""
        child = self._lookup_children.get(outcome)
        if child is None:
            child = self._lookup_children[outcome] = self.lookups.labels(outcome)
        child.inc()
        self.lookup_seconds.observe(seconds)

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
        notifications = CounterMetricFamily(
            "tys_notifications", "CMX notification entries received, by type and outcome.",
            labels=["type", "outcome"])
        for (kind, outcome), count in m._notification_counts.items():
            notifications.add_metric([kind, outcome], count)
        yield notifications


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
