"""The encoded replies of username_data and leaderboard, built once and served again.

Encoded here, not in web: a dashboard is kept per user until the user's revision, the
day or the user's place moves, and a board's reply per request shape until the board
moves, which only the service sees.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import orjson

from tys_server.core.groups import GroupBoard
from tys_server.core.leaderboard import Board, Boards
from tys_server.core.state import State, User
from tys_server.core.units import km, miles, steps

# Dashboards kept for users read again (about 2 KB each for 5 days): bounded, and
# forgotten all at once when full, which costs one recomputation per user.
DASHBOARD_CACHE_USERS = 4096
DATE_FORMAT = "%m/%d/%Y"  # dates in replies, and the leaderboard's `date`
EMPTY_BOARD = "No data to display for the leader board"


class Replies:
    """username_data's and leaderboard's replies over the state and its boards."""

    def __init__(self, state: State, boards: Boards, step_ft: float,
                 is_ranked: Callable[[User], bool], clock: Callable[[], float]) -> None:
        self.state = state
        self.boards = boards
        self.step_ft = step_ft
        self.is_ranked = is_ranked
        self.clock = clock
        self._dates: dict[int, str] = {}  # ordinal → "MM/DD/YYYY"
        # user → ((revision, days, today, place), encoded reply): a dashboard read again
        # before the user's distance, profile or place moved is served as it was.
        self._dashboards: dict[User, tuple[tuple[int, int, int, int | None], bytes]] = {}

    def forget(self, user: User) -> None:
        """Drop a deleted user's cached dashboard."""
        self._dashboards.pop(user, None)

    def _date_text(self, ordinal: int) -> str:
        text = self._dates.get(ordinal)
        if text is None:
            if len(self._dates) > 1024:
                self._dates.clear()
            text = self._dates[ordinal] = dt.date.fromordinal(ordinal).strftime(DATE_FORMAT)
        return text

    # -- username_data ----------------------------------------------------------------

    def dashboard(self, user: User, days: int) -> bytes:
        """Per-device totals and the last `days` days, as username_data's encoded reply."""
        place = self.boards.overall().place(user) if self.is_ranked(user) else None
        today = self.state.calendar.day_of(self.clock())
        key = (user.revision, days, today, place)
        cached = self._dashboards.get(user)
        if cached is None or cached[0] != key:
            if len(self._dashboards) >= DASHBOARD_CACHE_USERS:
                self._dashboards.clear()
            encoded = orjson.dumps(self._device_rows(user, days, today, place))
            cached = self._dashboards[user] = (key, encoded)
        return cached[1]

    def _device_rows(self, user: User, days: int, today: int,
                     place: int | None) -> list[dict[str, Any]]:
        """username_data's devices: their totals and the last `days` days."""
        step_ft = self.step_ft
        day_m = self.state.days.get  # a read per day asked for: skip State.day_m's call
        devices = []
        for mac in user.macs:
            history = []
            for ordinal in range(today - days + 1, today + 1):
                metres = day_m((mac, ordinal), 0.0)
                if metres > 0.0:
                    history.append({
                        "date": self._dates.get(ordinal) or self._date_text(ordinal),
                        "km": round(km(metres), 3), "miles": round(miles(metres), 3),
                        "steps": steps(metres, step_ft)})
            total = self.state.total_m(mac)
            # The owner's own dashboard shows the real username, whatever its alias.
            devices.append({
                "distance_day": history, "mac": mac, "place": place,
                "total_kilometres": round(km(total), 3), "total_miles": round(miles(total), 3),
                "total_steps": steps(total, step_ft), "username": user.username})
        return devices

    # -- leaderboard ------------------------------------------------------------------

    def leaderboard(self, count: int, ordinal: int | None = None, by: str = "user",
                    rank: str = "total") -> bytes:
        """The top `count` users, teams or companies, overall or of the day `ordinal`.

        Encoded once per board update and request shape (Board.replies), then served as
        it is. `rank` orders teams and companies; users are ranked by total either way.
        """
        board = self.boards.overall() if ordinal is None else self.boards.day(ordinal)
        shape: Any = count if by == "user" else (by, rank, count)
        reply = board.replies.get(shape)
        if reply is None:
            if by == "user":
                body = self._user_board(board, count)
            else:
                body = self._group_board(board, self.boards.grouped(board, by), by, rank,
                                         count)
            reply = board.replies[shape] = orjson.dumps(body)
        return reply

    def _user_board(self, board: Board, count: int) -> dict[str, Any]:
        step_ft = self.step_ft
        leaders = [{"place": e.place, "username": e.username,
                    "kilometres": round(km(e.total_m), 1), "miles": round(miles(e.total_m), 1),
                    "steps": steps(e.total_m, step_ft)} for e in board.ranking.top(count)]
        return self._with_totals(board, leaders)

    def _group_board(self, board: Board, groups: GroupBoard, by: str, rank: str,
                     count: int) -> dict[str, Any]:
        step_ft = self.step_ft
        leaders = [{"place": e.place, by: e.name, "members": e.members,
                    "kilometres": round(km(e.total_m), 1), "miles": round(miles(e.total_m), 1),
                    "steps": steps(e.total_m, step_ft),
                    "average_kilometres": round(km(e.average_m), 1)}
                   for e in groups.top(count, rank)]
        return self._with_totals(board, leaders)

    @staticmethod
    def _with_totals(board: Board, leaders: list[dict[str, Any]]) -> dict[str, Any]:
        """The event's totals (the same on every board of a day), and the empty board's text."""
        total = board.registered_m
        reply: dict[str, Any] = {"leaders": leaders, "total_kilometres": round(km(total), 1),
                                 "total_miles": round(miles(total), 1)}
        if not leaders:
            reply["error"] = EMPTY_BOARD
        return reply
