"""Leaderboards kept current from the state's change feed, with their replies cached.

A board (overall, or one event day) is built once from every registered user, then moved
one changed user at a time (state.changed_users): no request ever sorts ten thousand
users. Changes are applied at most every leaderboard.refresh_interval_s, and between
two updates the reply for each number_leaders is built once and shared.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable

from tys_server.core.ranking import Ranking
from tys_server.core.state import State, User

MAX_DAY_BOARDS = 32


class Board:
    """One ranking, the total over every registered device, and replies built from them."""

    def __init__(self, total_of: Callable[[User], float], users: Iterable[User],
                 is_ranked: Callable[[User], bool]) -> None:
        self._total_of = total_of
        self._is_ranked = is_ranked
        self._totals: dict[User, float] = {user: total_of(user) for user in users}
        self.ranking = Ranking((user.username, total) for user, total in self._totals.items()
                               if is_ranked(user))
        self.registered_m = math.fsum(self._totals.values())
        self.replies: dict[int, bytes] = {}  # number_leaders → encoded reply, until the next update

    def update(self, changed: Iterable[User], is_registered: Callable[[User], bool]) -> None:
        """Re-rank the changed users (removals first: a freed username may be taken again)."""
        present = []
        for user in changed:
            if is_registered(user):
                present.append(user)
            elif self._totals.pop(user, None) is not None:
                self.ranking.remove(user.username)
        for user in present:
            total = self._totals[user] = self._total_of(user)
            if self._is_ranked(user):
                self.ranking.set(user.username, total)
        self.registered_m = math.fsum(self._totals.values())
        self.replies.clear()


class Boards:
    """The overall board and the day boards asked for, fed by the state's changed users."""

    def __init__(self, state: State, is_ranked: Callable[[User], bool],
                 refresh_interval_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.state = state
        self.is_ranked = is_ranked
        self.refresh_interval_s = refresh_interval_s
        self.clock = clock
        self._overall: Board | None = None
        self._days: dict[int, Board] = {}
        self._updated_at = 0.0

    def overall(self) -> Board:
        """The event's board."""
        self._catch_up()
        if self._overall is None:
            self._overall = Board(self.state.user_total_m, self.state.users.values(),
                                  self.is_ranked)
        return self._overall

    def day(self, ordinal: int) -> Board:
        """One event day's board."""
        self._catch_up()
        board = self._days.get(ordinal)
        if board is None:
            if len(self._days) >= MAX_DAY_BOARDS:
                self._days.clear()
            state = self.state
            board = self._days[ordinal] = Board(lambda user: state.user_day_m(user, ordinal),
                                                state.users.values(), self.is_ranked)
        return board

    def _catch_up(self) -> None:
        """Apply the changed users, unless the boards were updated less than an interval ago."""
        if not self.state.changed_users:
            return
        now = self.clock()
        if now - self._updated_at < self.refresh_interval_s:
            return
        self._updated_at = now
        changed = self.state.take_changed_users()
        for board in (self._overall, *self._days.values()):
            if board is not None:
                board.update(changed, self.state.is_registered)
