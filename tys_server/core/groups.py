"""Team and company (e-mail domain) boards, kept current one changed user at a time.

A Membership knows which ranked users are in which group and the name each group is
shown under; there is one per grouping, shared by every board. A GroupBoard ranks the
groups of one board (overall, or one day) by the sum of their members' totals on that
board, or by that sum per member. A change touches only the groups of the users that
changed: each such group is summed again over its members (exactly, with fsum), never
the whole event.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from tys_server.core.ranking import Ranking
from tys_server.core.users import User, name_key

GROUPINGS = ("team", "domain")
RANKS = ("total", "average")


@dataclass
class BoardCounts:
    """What the boards cost so far: builds, and users visited by group sums (for tests)."""

    day_builds: int = 0  # day boards built (each visits every registered user)
    group_builds: int = 0  # group boards built (each visits its board's users)
    membership_builds: int = 0  # memberships built (each visits every registered user)
    users_visited: int = 0  # users read by group boards, builds and updates


class GroupEntry(NamedTuple):
    """One line of a team or company board."""

    place: int
    name: str
    members: int
    total_m: float
    average_m: float


def team_key(user: User) -> str | None:
    """The user's team, casefolded; None without one."""
    return None if user.team is None else name_key(user.team)


def domain_key(user: User) -> str | None:
    """The user's e-mail domain in lower case (the company); None without one."""
    domain = user.email.rpartition("@")[2].lower()
    return domain or None


def _team_name(key: str, members: Iterable[User]) -> str:
    # The spelling of the member who joined first (then by username): a newcomer's
    # spelling never renames a team, and the name is the same after a restart.
    first = min(members, key=lambda u: (u.team_since_s if u.team_since_s is not None
                                        else math.inf, u.username.casefold(), u.username))
    return first.team or key


def _seen(user: User) -> tuple[object, ...]:
    """What a user's group and its name depend on: a change of it re-checks the group."""
    return (user.team, user.team_since_s)


class Membership:
    """Which ranked users are in which group, and the name each group is shown under."""

    def __init__(self, by: str, users: Iterable[User], is_member: Callable[[User], bool],
                 counts: BoardCounts) -> None:
        self.by = by
        self._key_of = team_key if by == "team" else domain_key
        self._name_of: Callable[[str, Iterable[User]], str] = (
            _team_name if by == "team" else lambda key, members: key)
        self._is_member = is_member
        self._key: dict[User, str] = {}
        self._seen: dict[User, tuple[object, ...]] = {}
        self._members: dict[str, set[User]] = {}
        self.names: dict[str, str] = {}  # group key → the name it is shown under
        counts.membership_builds += 1
        self.update(users)

    def key(self, user: User) -> str | None:
        """The group the user counts in, or None."""
        return self._key.get(user)

    def members(self, key: str) -> set[User]:
        """The ranked users in that group."""
        return self._members.get(key, set())

    def update(self, changed: Iterable[User]) -> set[str]:
        """Move the changed users; the groups whose members or name may have changed."""
        dirty: set[str] = set()
        for user in changed:
            key = self._key_of(user) if self._is_member(user) else None
            old = self._key.get(user)
            if key == old and (key is None or self._seen.get(user) == _seen(user)):
                continue
            if old is not None:
                members = self._members[old]
                members.discard(user)
                if not members:
                    del self._members[old]
                del self._key[user], self._seen[user]
                dirty.add(old)
            if key is not None:
                self._members.setdefault(key, set()).add(user)
                self._key[user] = key
                self._seen[user] = _seen(user)
                dirty.add(key)
        for key in dirty:
            members = self._members.get(key)
            if members:
                self.names[key] = self._name_of(key, members)
            else:
                self.names.pop(key, None)
        return dirty


class GroupBoard:
    """The groups of one board, ranked by their members' total there, or its average."""

    def __init__(self, membership: Membership, totals: Mapping[User, float],
                 counts: BoardCounts) -> None:
        self.membership = membership
        self._totals = totals  # the board's: users counted on it and their totals
        self._counts = counts
        self._sums: dict[str, float] = {}
        self._shown: dict[str, str] = {}  # group key → the name it is ranked under
        self._by_name: dict[str, str] = {}  # ranked name → group key
        self.by_total = Ranking()
        self.by_average = Ranking()
        counts.group_builds += 1
        counts.users_visited += len(totals)
        parts: dict[str, list[float]] = {}
        for user, total_m in totals.items():
            key = membership.key(user)
            if key is not None:
                parts.setdefault(key, []).append(total_m)
        for key, values in parts.items():
            self._set(key, math.fsum(values))

    def update(self, keys: Iterable[str]) -> None:
        """Sum these groups again over their members."""
        totals, counts = self._totals, self._counts
        for key in keys:
            members = self.membership.members(key)
            counts.users_visited += len(members)
            self._set(key, math.fsum(totals.get(user, 0.0) for user in members))

    def _set(self, key: str, total_m: float) -> None:
        old = self._shown.pop(key, None)
        if old is not None:
            self.by_total.remove(old)
            self.by_average.remove(old)
            del self._by_name[old]
        members = len(self.membership.members(key))
        name = self.membership.names.get(key)
        if total_m <= 0.0 or not members or name is None:
            self._sums.pop(key, None)
            return
        self._sums[key] = total_m
        self._shown[key] = name
        self._by_name[name] = key
        self.by_total.set(name, total_m)
        self.by_average.set(name, total_m / members)

    def top(self, count: int, rank: str = "total") -> list[GroupEntry]:
        """The first `count` groups by total or by average, each with its figures."""
        ranking = self.by_average if rank == "average" else self.by_total
        entries = []
        for entry in ranking.top(count):
            key = self._by_name[entry.username]
            members = len(self.membership.members(key))
            total_m = self._sums[key]
            entries.append(GroupEntry(entry.place, entry.username, members, total_m,
                                      total_m / members))
        return entries

    def __len__(self) -> int:
        return len(self._sums)
