"""Registered users: who they are, their devices, and what they set about themselves."""

from __future__ import annotations

from typing import NamedTuple, TypedDict


class Profile(NamedTuple):
    """A user's team, alias and privacy, and the organisers' disqualification."""

    team: str | None = None  # as typed; teams are compared casefolded (name_key)
    # When the user joined that team: a team is shown as its earliest member spells it.
    team_since_s: float | None = None
    alias: str | None = None  # shown on boards instead of the username
    hidden: bool = False  # off every board; the user's own dashboard still works
    disqualified: bool = False  # off every board and out of the event's totals


class User:
    """A registered visitor, the MACs (as stored) of their devices, and their profile."""

    __slots__ = ("email", "username", "macs", "revision", "team", "team_since_s", "alias",
                 "hidden", "disqualified")

    def __init__(self, email: str, username: str, macs: list[str] | None = None) -> None:
        self.email = email
        self.username = username
        self.macs: list[str] = macs if macs is not None else []
        # Bumped whenever the user's devices, distance or profile change: what was worked
        # out from them before (a dashboard) is stale once it moved.
        self.revision = 0
        self.team: str | None = None
        self.team_since_s: float | None = None
        self.alias: str | None = None
        self.hidden = False
        self.disqualified = False

    @property
    def profile(self) -> Profile:
        """The profile as it is now."""
        return Profile(self.team, self.team_since_s, self.alias, self.hidden,
                       self.disqualified)

    def take(self, profile: Profile) -> None:
        """Hold this profile (State.set_profile also tells the boards)."""
        (self.team, self.team_since_s, self.alias, self.hidden,
         self.disqualified) = profile

    @property
    def shown_name(self) -> str:
        """The name boards show: the alias, else the username."""
        return self.alias or self.username


def user_key(username: str) -> str:
    """Usernames are unique case-insensitively."""
    return username.lower()


def name_key(name: str) -> str:
    """Teams, aliases and the usernames an alias may not spoof compare casefolded."""
    return name.casefold()


class ProfileChanges(TypedDict, total=False):
    """What a profile request sets: only the keys given change (None clears a name)."""

    team: str | None
    alias: str | None
    hidden: bool


NO_PROFILE = Profile()  # a user who set nothing
