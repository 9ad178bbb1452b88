"""GET (and HEAD) /board: the big screen in the hall (DESIGN 15), self-refreshing.

The page shows the service's own boards (the rankings /live/leaderboard serves, under
aliases, without hidden, disqualified or staff users): the top 10 overall, of today
and of the teams, and the event's totals. It has no JavaScript and loads nothing
(its CSP forbids both), and it is built at most every CACHE_S seconds, however many
screens ask.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable
from typing import Any

from tys_server.config import Settings
from tys_server.core.groups import GroupEntry
from tys_server.core.ranking import Entry
from tys_server.core.units import km, miles, steps
from tys_server.service import Service
from tys_server.web.base import BaseHandler, BasicAuth
from tys_server.web.limits import PathRule
from tys_server.web.pages import page_templates

CACHE_S = 5.0  # the page is rebuilt at most this often, whoever asks
REFRESH_S = 15  # each screen reloads the page this often (meta refresh)
TOP = 10  # rows per board: what a 1080p screen shows in type readable from 10 m
# Nothing loaded, nothing run, and never inside another site's frame: the screens open
# the page itself (full screen, kiosk mode), as TLS's X-Frame-Options: DENY already asks.
CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"


class BigScreen:
    """The /board HTML, drawn from the service's boards and cached for cache_s."""

    def __init__(self, service: Service, title: str, *,
                 clock: Callable[[], float] | None = None,
                 monotonic: Callable[[], float] = time.monotonic,
                 cache_s: float = CACHE_S) -> None:
        self.service = service
        self.title = title
        self.clock = clock if clock is not None else service.clock  # "today" as the API's
        self.monotonic = monotonic
        self.cache_s = cache_s
        self.loader = page_templates()
        self._html = b""
        self._built_at = -float("inf")

    def html(self) -> bytes:
        """The page, rebuilt when older than cache_s (built on the loop: nothing to await)."""
        if self.monotonic() - self._built_at >= self.cache_s:
            self._html = self.render(self.clock())
            self._built_at = self.monotonic()
        return self._html

    def render(self, now_s: float) -> bytes:
        """The page at now_s from what the boards hold now."""
        return self.loader.load("board.html").generate(**self.view(now_s))

    def view(self, now_s: float) -> dict[str, Any]:
        """Everything the template shows, already formatted."""
        boards = self.service.boards
        step_ft = self.service.settings.tracking.step_length_ft
        calendar = self.service.state.calendar
        overall = boards.overall()
        today = boards.day(calendar.day_of(now_s))
        teams = boards.grouped(overall, "team").top(TOP)
        local = dt.datetime.fromtimestamp(now_s, calendar.zone)
        total_m = overall.registered_m
        return {
            "title": self.title,
            "refresh_s": REFRESH_S,
            "updated": local.strftime("%H:%M"),
            "day": f"{local:%a} {local.day} {local:%b}",
            "boards": [
                {"id": "overall", "heading": "Overall", "who": "Walker",
                 "rows": _user_rows(overall.ranking.top(TOP), step_ft),
                 "empty": "Nobody has walked yet"},
                {"id": "today", "heading": "Today", "who": "Walker",
                 "rows": _user_rows(today.ranking.top(TOP), step_ft),
                 "empty": "Nobody has walked today yet"},
                {"id": "teams", "heading": "Teams", "who": "Team",
                 "rows": _team_rows(teams, step_ft), "empty": "No team has walked yet"},
            ],
            "totals": [
                ("km", f"{km(total_m):,.1f}"),
                ("miles", f"{miles(total_m):,.1f}"),
                ("steps", f"{steps(total_m, step_ft):,}"),
                # Counted as the totals are: every registered walker but the disqualified.
                ("walkers", f"{len(overall.totals):,}"),
            ],
        }


def _user_rows(entries: Iterable[Entry], step_ft: float) -> list[dict[str, str]]:
    # A walker at 0 m has a place (the dashboard shows it), but no line on the screen.
    return [{"place": str(e.place), "name": e.username, "steps": f"{steps(e.total_m, step_ft):,}"}
            for e in entries if e.total_m > 0.0]


def _team_rows(entries: Iterable[GroupEntry], step_ft: float) -> list[dict[str, str]]:
    return [{"place": str(e.place), "name": e.name, "steps": f"{steps(e.total_m, step_ft):,}"}
            for e in entries if e.total_m > 0.0]


class BoardHandler(BaseHandler):
    """The big screen: HTML for the venue's screens, public unless board.require_auth."""

    screen: BigScreen
    cache_control: str

    def get(self) -> None:
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.set_header("Cache-Control", self.cache_control)
        self.set_header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        self.finish(self.screen.html())

    head = get  # a player or a probe may ask whether the page is there (no body)


def routes(settings: Settings, service: Service) -> list[Any]:
    """The /board entry of the route table; none when board.enabled is false (404)."""
    board = settings.board
    if not board.enabled:
        return []
    # Fresh at every refresh (max-age below the refresh period). Public, a proxy in front
    # may serve it to every screen; behind the monitoring pair, only the screen keeps it.
    scope = "private" if board.require_auth else "public"
    context = {"auth": _auth(settings), "screen": BigScreen(service, board.title),
               "cache_control": f"{scope}, max-age={CACHE_S:.0f}"}
    return [(r"/board/?", BoardHandler, context)]


def edge_rules(settings: Settings) -> list[PathRule]:
    """With board.require_auth, /board is refused on its headers without the pair."""
    auth = _auth(settings) if settings.board.enabled else None
    return [] if auth is None else [PathRule("/board", auth)]


def _auth(settings: Settings) -> BasicAuth | None:
    # The monitoring pair: a screen's password can read the board, never call the API.
    return BasicAuth(settings.auth.monitor) if settings.board.require_auth else None
