"""Leaderboards kept current from the state's change feed, with their replies cached.

A board (overall, or one event day) is built once from every registered user, then moved
one changed user at a time (state.changed_users): no request ever sorts ten thousand
users. Changes are applied at most every leaderboard.refresh_interval_s, and between
two updates the reply for each request shape is built once and shared. A board's team
and company boards (core/groups.py) are built when first asked for and then follow the
same changes.

Day boards are kept in a bounded LRU (MAX_DAY_BOARDS) and hold only the users who have
distance on that day. A date no stored distance can be on (EventCalendar.days_named)
answers one shared empty board without building anything, so a client cycling through
many dates costs one build per event day, not one build over every user per request.

Who is on a board: the board counts every registered user who is not disqualified (the
event's total); it ranks those is_ranked allows (not hidden, not staff), under the name
they are shown by (the alias, else the username).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from tys_server.core.groups import BoardCounts, GroupBoard, Membership
from tys_server.core.ranking import Ranking
from tys_server.core.state import State, User

# An event has a handful of days; 32 keeps them all, with room for past events' days.
MAX_DAY_BOARDS = 32


class Board:
    """One ranking, the event's total, the group boards asked for, and replies built from them."""

    def __init__(self, total_of: Callable[[User], float], users: Iterable[User],
                 is_ranked: Callable[[User], bool], *, keeps_zero: bool = True) -> None:
        self._total_of = total_of
        self._is_ranked = is_ranked
        # The overall board ranks every user (a dashboard shows a place at 0 m); a day
        # board only those with distance that day, which is all its replies show.
        self._keeps_zero = keeps_zero
        self._totals: dict[User, float] = {}
        for user in users:
            if not user.disqualified:
                total = total_of(user)
                if keeps_zero or total > 0.0:
                    self._totals[user] = total
        # The name each ranked user is ranked under, to take it off when it changes.
        self._shown = {user: user.shown_name for user in self._totals if is_ranked(user)}
        self.ranking = Ranking((name, self._totals[user]) for user, name in self._shown.items())
        self.registered_m = math.fsum(self._totals.values())
        self.groups: dict[str, GroupBoard] = {}  # by ("team", "domain") → its board
        self.replies: dict[Any, bytes] = {}  # request shape → encoded reply, until the next update

    @property
    def totals(self) -> Mapping[User, float]:
        """Every user counted on this board (registered, not disqualified) and their total."""
        return self._totals

    def place(self, user: User) -> int | None:
        """The user's place, or None when not ranked here."""
        name = self._shown.get(user)
        return None if name is None else self.ranking.exact_place(name)

    def update(self, changed: Iterable[User], is_registered: Callable[[User], bool],
               moved_groups: Mapping[str, set[str]]) -> None:
        """Re-rank the changed users, then the groups they or moved_groups[by] touch."""
        ranking, shown = self.ranking, self._shown
        present = []
        # Names taken off first: a freed username or alias may be someone else's now.
        for user in changed:
            counted = is_registered(user) and not user.disqualified
            name = user.shown_name if counted and self._is_ranked(user) else None
            old = shown.get(user)
            if old is not None and old != name:
                ranking.remove(old)
                del shown[user]
            if counted:
                present.append(user)
            else:
                self._totals.pop(user, None)
        for user in present:
            total = self._total_of(user)
            if total > 0.0 or self._keeps_zero:
                self._totals[user] = total
                if self._is_ranked(user):
                    name = shown[user] = user.shown_name
                    ranking.set(name, total)
            else:
                self._totals.pop(user, None)
                name = shown.pop(user, None)
                if name is not None:
                    ranking.remove(name)
        self.registered_m = math.fsum(self._totals.values())
        for by, group in self.groups.items():
            keys = set(moved_groups.get(by, ()))
            key_of = group.membership.key
            keys.update(key for key in map(key_of, present) if key is not None)
            group.update(keys)
        self.replies.clear()


class Boards:
    """The overall board and the day boards asked for, fed by the state's changed users."""

    def __init__(self, state: State, is_ranked: Callable[[User], bool],
                 refresh_interval_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.state = state
        self.is_ranked = is_ranked
        self.refresh_interval_s = refresh_interval_s
        self.clock = clock
        self.counts = BoardCounts()
        self._overall: Board | None = None
        self._days: OrderedDict[int, Board] = OrderedDict()  # least recently asked first
        self._memberships: dict[str, Membership] = {}  # by → who is in which group
        # Every date without distance shares it; it is never updated, so it stays empty.
        self._no_distance = Board(lambda user: 0.0, (), is_ranked, keeps_zero=False)
        self._updated_at = 0.0

    @property
    def day_builds(self) -> int:
        """Day boards built (each visits every registered user)."""
        return self.counts.day_builds

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
        self.counts.day_builds += 1
        board = self._days[ordinal] = Board(lambda user: state.user_day_m(user, ordinal),
                                            state.users.values(), self.is_ranked,
                                            keeps_zero=False)
        if len(self._days) > MAX_DAY_BOARDS:
            self._days.popitem(last=False)
        return board

    def grouped(self, board: Board, by: str) -> GroupBoard:
        """The team ("team") or company ("domain") board of a board from overall() or day()."""
        group = board.groups.get(by)
        if group is None:
            membership = self._memberships.get(by)
            if membership is None:
                membership = self._memberships[by] = Membership(
                    by, self.state.users.values(), self._is_member, self.counts)
            group = board.groups[by] = GroupBoard(membership, board.totals, self.counts)
        return group

    def _is_member(self, user: User) -> bool:
        return self.state.is_registered(user) and self.is_ranked(user)

    def _catch_up(self) -> None:
        """Apply the changed users, unless the boards were updated less than an interval ago."""
        if not self.state.changed_users:
            return
        now = self.clock()
        if now - self._updated_at < self.refresh_interval_s:
            return
        self._updated_at = now
        changed = self.state.take_changed_users()
        moved = {by: membership.update(changed) for by, membership in self._memberships.items()}
        for board in (self._overall, *self._days.values()):
            if board is not None:
                board.update(changed, self.state.is_registered, moved)
