"""Prometheus metrics of one server: counters fed by hooks, gauges read at scrape time.

Every label value comes from a bounded set the server chooses (handler class names,
status codes, notification type labels, look-up outcomes): never a MAC, an IP, a
username or a CMX host name. Hot paths (one call per request, per batch) only look up
labelled children cached in dicts; nothing is created per call once warm.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import tornado.web
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

from .notifications import Batch
from .state import State

# Notification batches are answered in well under a millisecond: start the buckets low.
REQUEST_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                     1.0, 2.5, 5.0, 10.0)
FLUSH_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
LOOKUP_BUCKETS_S = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class FlushSource(Protocol):
    """What the scrape reads of the flusher."""

    last_success_s: float | None
    failing_since_s: float | None


class HostSource(Protocol):
    """What the scrape reads of the CMX client (host names are never exported)."""

    @property
    def hosts(self) -> list[Any]: ...


class Metrics:
    """One registry per server, so several apps in one process never collide."""

    def __init__(self, state: State, *, clock: Callable[[], float] = time.time) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("tys_http_requests", "HTTP requests answered.",
                                ["handler", "status"], registry=r)
        self.request_seconds = Histogram(
            "tys_http_request_duration_seconds", "Time to answer an HTTP request.",
            ["handler"], buckets=REQUEST_BUCKETS_S, registry=r)
        self.notifications = Counter(
            "tys_notifications", "CMX notification entries received, by type and outcome.",
            ["type", "outcome"], registry=r)
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
        self._request_children: dict[tuple[str, int], tuple[Any, Any]] = {}
        self._notification_children: dict[tuple[str, str], Any] = {}
        self._lookup_children: dict[str, Any] = {}
        self._gauges = _ScrapeGauges(state, clock)
        r.register(self._gauges)

    def watch(self, flusher: FlushSource | None, cmx: HostSource | None) -> None:
        """Read the flusher and the CMX hosts at scrape time (they exist after start-up)."""
        self._gauges.flusher = flusher
        self._gauges.cmx = cmx

    # -- hooks (hot paths) ------------------------------------------------------------

    def observe_request(self, handler_name: str, status: int, seconds: float) -> None:
        """One answered request; handler_name is a class name from the route table."""
        children = self._request_children.get((handler_name, status))
        if children is None:
            children = (self.requests.labels(handler_name, str(status)),
                        self.request_seconds.labels(handler_name))
            self._request_children[(handler_name, status)] = children
        children[0].inc()
        children[1].observe(seconds)

    def on_request(self, handler: tornado.web.RequestHandler) -> None:
        """make_app's on_request hook: the handler as Tornado logs it."""
        self.observe_request(type(handler).__name__, handler.get_status(),
                             handler.request.request_time())

    def observe_batch(self, batch: Batch) -> None:
        """One parsed CMX batch (type labels are bounded by notifications._label)."""
        children = self._notification_children
        for key, count in batch.by_type.items():
            child = children.get(key)
            if child is None:
                child = children[key] = self.notifications.labels(*key)
            child.inc(count)

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
        yield _gauge("tys_flush_backlog_keys", "Changed keys waiting for the next flush.",
                     len(state.dirty))
        flusher = self.flusher
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
