"""GET /metrics and GET /status: the operator's view (auth.monitor on both)."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST

from tys_server.config import Settings
from tys_server.core.dirty import RECENT_S
from tys_server.core.units import MINUTE_S, km, steps
from tys_server.ops.feeds import FeedBoard
from tys_server.ops.metrics import Metrics
from tys_server.ops.sources import HealthSource, HostSource
from tys_server.service import Service
from tys_server.web import charts
from tys_server.web.base import BaseHandler, BasicAuth
from tys_server.web.pages import page_templates

log = logging.getLogger(__name__)

CACHE_S = 5.0  # the page is rebuilt at most this often, whoever asks
HISTORY_CACHE_S = 60.0  # the database is asked for older registrations at most this often
HISTORY_DAYS = 7
HISTORY_TIMEOUT_S = 2.0
REGISTERED_POINTS = 120
TOP_ZONES = 10
TOP_LEADERS = 10
FEED_NAMES = {"cmx": "CMX notifications", "spaces_firehose": "Cisco Spaces Firehose",
              "meraki": "Meraki Scanning API"}


def step_series(points: Sequence[tuple[float, float]], start_s: float, end_s: float,
                count: int) -> list[float]:
    """A step function known at (time, value) points, sampled at count even times."""
    ordered = sorted(points)
    if not ordered or count < 1:
        return []
    values, index, current = [], 0, ordered[0][1]
    for i in range(count):
        at = end_s if count == 1 else start_s + (end_s - start_s) * i / (count - 1)
        while index < len(ordered) and ordered[index][0] <= at:
            current = ordered[index][1]
            index += 1
        values.append(current)
    return values


class StatusPage:
    """The /status HTML, drawn from memory (and hourly history from the database)."""

    def __init__(self, service: Service, health: HealthSource, cmx: HostSource | None,
                 *, feeds: FeedBoard | None = None, clock: Callable[[], float] = time.time,
                 cache_s: float = CACHE_S) -> None:
        self.service = service
        self.state = service.state
        self.health = health
        self.cmx = cmx
        self.feeds = feeds if feeds is not None else FeedBoard()
        self.clock = clock
        self.cache_s = cache_s
        self.loader = page_templates()
        self._html = b""
        self._built_at = -float("inf")
        self._history: list[tuple[float, float]] = []
        self._history_at = -float("inf")
        self._lock = asyncio.Lock()

    async def html(self) -> bytes:
        """The page, rebuilt when older than cache_s (concurrent callers share one build)."""
        if time.monotonic() - self._built_at < self.cache_s:
            return self._html
        async with self._lock:
            if time.monotonic() - self._built_at >= self.cache_s:
                await self._refresh_history()
                self._html = self.render(self.clock())
                self._built_at = time.monotonic()
        return self._html

    async def _refresh_history(self) -> None:
        if time.monotonic() - self._history_at < HISTORY_CACHE_S:
            return
        if self.health.health()[1].get("database") == "down":
            return  # the flusher already knows; do not wait for a timeout here
        self._history_at = time.monotonic()
        history = await self.service.registration_history(HISTORY_DAYS, HISTORY_TIMEOUT_S)
        if history is not None:
            self._history = history

    def render(self, now_s: float) -> bytes:
        """The page at now_s from what memory holds now."""
        return self.loader.load("status.html").generate(**self.view(now_s))

    def view(self, now_s: float) -> dict[str, Any]:
        """Everything the template shows, already formatted or drawn."""
        state = self.state
        # Complete minutes only (the current one would always look like a sudden drop),
        # and not the oldest: the flush forgets minutes older than exactly 3 h before now.
        minute = int(now_s) // MINUTE_S * MINUTE_S
        minutes = range(minute - RECENT_S + MINUTE_S, minute, MINUTE_S)
        per_minute = [float(state.notifications.get(m, 0)) for m in minutes]
        ok, health = self.health.health()
        step_ft = self.service.settings.tracking.step_length_ft
        leaders = [{"place": e.place, "username": e.username, "km": f"{km(e.total_m):.2f}",
                    "steps": f"{steps(e.total_m, step_ft):,}"}
                   for e in self.service.ranking().top(TOP_LEADERS)]
        return {
            "generated": self._clock_text(now_s, "%Y-%m-%d %H:%M:%S %Z"),
            "refresh_s": 10,
            "tiles": [
                ("Notifications last minute",
                 f"{state.notifications.get(minute - MINUTE_S, 0):,}"),
                ("Registered users", f"{len(state.users):,}"),
                ("Registered devices", f"{len(state.owners):,}"),
                ("Devices tracked", f"{len(state.tracks):,}"),
            ],
            "notifications_svg": charts.line_chart(
                per_minute, title="Notifications per minute, last 3 hours",
                x_labels=self._time_labels(minutes[0], minutes[-1])),
            "registered_svg": self._registered_chart(now_s),
            "zones_svg": charts.bar_chart(self._top_zones(now_s),
                                          title="Zone visits, last 3 hours (top 10)"),
            "leaders": leaders,
            "healthy": ok,
            "database": health.get("database", "unknown"),
            "flush_age": _age_text(health.get("last_flush_age_s")),
            "backlog": f"{health.get('backlog', 0):,}",
            "hosts": [{"host": h.host, "status": h.status, "error": h.last_error or "",
                       "since": self._clock_text(h.last_change_s, "%H:%M:%S")}
                      for h in (self.cmx.hosts if self.cmx is not None else [])],
            "feeds": self._feed_rows(),
        }

    def _feed_rows(self) -> list[dict[str, str]]:
        """Each enabled feed: its state, how old its newest event is, and how late it was."""
        rows = []
        for name, feed in self.feeds:
            lag_s = feed.lag_s
            details = [f"last event: {_age_text(feed.last_event_age_s)}"]
            if lag_s is not None:
                details.append(f"lag {lag_s:.1f} s")
            if feed.future_ts:
                details.append(f"{feed.future_ts:,} future times replaced (clock skew?)")
            if feed.reconnects:
                details.append(f"{feed.reconnects:,} reconnects")
            if feed.last_error:
                details.append(feed.last_error)
            rows.append({"name": FEED_NAMES.get(name, name), "state": feed.state,
                         "details": " · ".join(details)})
        return rows

    def _registered_chart(self, now_s: float) -> str:
        points = list(self._history)
        points.extend((float(m), float(users)) for m, (users, _) in
                      sorted(self.state.registered.items()))
        points.append((now_s, float(len(self.state.users))))
        start_s = min(min(at for at, _ in points), now_s - RECENT_S)
        values = step_series(points, start_s, now_s, REGISTERED_POINTS)
        return charts.line_chart(values, title="Registered users",
                                 x_labels=self._time_labels(start_s, now_s))

    def _top_zones(self, now_s: float) -> list[tuple[str, float]]:
        horizon = now_s - RECENT_S
        totals: dict[str, int] = {}
        for (minute, name), visits in list(self.state.zones.items()):
            if minute >= horizon:
                totals[name] = totals.get(name, 0) + visits
        ranked = sorted(totals.items(), key=lambda item: (-item[1], item[0]))[:TOP_ZONES]
        return [(name, float(visits)) for name, visits in ranked]

    def _time_labels(self, start_s: float, end_s: float) -> list[str]:
        style = "%a %H:%M" if end_s - start_s > 86400 else "%H:%M"
        middle = (start_s + end_s) / 2
        return [self._clock_text(at, style) for at in (start_s, middle, end_s)]

    def _clock_text(self, at_s: float, style: str) -> str:
        return dt.datetime.fromtimestamp(at_s, self.state.calendar.zone).strftime(style)


def _age_text(age_s: float | None) -> str:
    if age_s is None:
        return "never"
    if age_s < 120:
        return f"{age_s:.0f} s ago"
    return f"{age_s / 60:.0f} min ago"


class MetricsHandler(BaseHandler):
    """Prometheus text exposition of this server's registry."""

    metrics: Metrics

    def get(self) -> None:
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.set_header("Cache-Control", "no-store")
        self.finish(self.metrics.exposition())


class StatusHandler(BaseHandler):
    """The status page: self-refreshing HTML with inline SVG, nothing loaded from elsewhere."""

    page: StatusPage

    async def get(self) -> None:
        body = await self.page.html()
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")
        self.set_header("Content-Security-Policy",
                        "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
        self.finish(body)


def routes(settings: Settings, metrics: Metrics, page: StatusPage) -> list[Any]:
    """The route table entries for make_app's extra_routes, behind the monitoring pair."""
    # Its own pair: a password given to Prometheus cannot register or delete users.
    auth = BasicAuth(settings.auth.monitor)
    return [
        (r"/metrics", MetricsHandler, {"auth": auth, "metrics": metrics}),
        (r"/status/?", StatusHandler, {"auth": auth, "page": page}),
    ]
