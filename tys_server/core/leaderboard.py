"""Leaderboards kept current from the state's change feed, with their replies cached.

A board (overall, or one event day) is built once from every registered user, then moved
one changed user at a time (state.changed_users): no request ever sorts ten thousand
users. Changes are applied at most every leaderboard.refresh_interval_s, and between
two updates the reply for each number_leaders is built once and shared.

Day boards are kept in a bounded LRU (MAX_DAY_BOARDS) and hold only the users who have
distance on that day. A date no stored distance can be on (EventCalendar.days_named)
answers one shared empty board without building anything, so a client cycling through
many dates costs one build per event day, not one build over every user per request.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable

from tys_server.core.ranking import Ranking
from tys_server.core.state import State, User

# An event has a handful of days; 32 keeps them all, with room for past events' days.
MAX_DAY_BOARDS = 32


class Board:
    """One ranking, the total over every registered device, and replies built from them."""

    def __init__(self, total_of: Callable[[User], float], users: Iterable[User],
                 is_ranked: Callable[[User], bool], *, keeps_zero: bool = True) -> None:
        self._total_of = total_of
        self._is_ranked = is_ranked
        # The overall board ranks every user (a dashboard shows a place at 0 m); a day
        # board only those with distance that day, which is all its replies show.
        self._keeps_zero = keeps_zero
        totals = ((user, total_of(user)) for user in users)
        self._totals: dict[User, float] = {
            user: total for user, total in totals if keeps_zero or total > 0.0}
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
            total = self._total_of(user)
            if total > 0.0 or self._keeps_zero:
                self._totals[user] = total
                if self._is_ranked(user):
                    self.ranking.set(user.username, total)
            elif self._totals.pop(user, None) is not None:
                self.ranking.remove(user.username)
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
        self._days: OrderedDict[int, Board] = OrderedDict()  # least recently asked first
        # Every date without distance shares it; it is never updated, so it stays empty.
        self._no_distance = Board(lambda user: 0.0, (), is_ranked, keeps_zero=False)
        self._updated_at = 0.0
        self.day_builds = 0  # day boards built (each visits every registered user)

    def overall(self) -> Board:
        """The event's board."""
        self._catch_up()
        if self._overall is None:
            self._overall = Board(self.state.user_total_m, self.state.users.values(),
                                  self.is_ranked)
        return self._overall

    def day(self, ordinal: int) -> Board:
        """One day's board; the shared empty board for a day no distance can be on."""
        self._catch_up()
        board = self._days.get(ordinal)
        if board is not None:
            self._days.move_to_end(ordinal)
            return board
        state = self.state
        if ordinal not in state.calendar.days_named:
            return self._no_distance
        self.day_builds += 1
        board = self._days[ordinal] = Board(lambda user: state.user_day_m(user, ordinal),
                                            state.users.values(), self.is_ranked,
                                            keeps_zero=False)
        if len(self._days) > MAX_DAY_BOARDS:
            self._days.popitem(last=False)
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
