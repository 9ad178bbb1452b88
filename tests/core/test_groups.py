"""Team and company boards (DESIGN 15), as plain functions over a real State."""

from __future__ import annotations

import math
import random

import pytest

from tests.support.clock import Clock
from tys_server.core.groups import GroupEntry
from tys_server.core.leaderboard import Boards
from tys_server.core.snapshot import Loaded
from tys_server.core.state import State, User
from tys_server.core.tracking import FilterParams, Track
from tys_server.core.users import Profile

NOW_S = 1_795_000_000.0
FLOOR = 1
STAFF = "@staff.example"


def is_ranked(user: User) -> bool:
    """The service's rule: hidden, disqualified and staff users stay off the boards."""
    return not (user.hidden or user.disqualified or user.email.endswith(STAFF))


def boards_of(state: State) -> Boards:
    return Boards(state, is_ranked, refresh_interval_s=0.0, clock=Clock(0.0))


def member(state: State, name: str, total_m: float, team: str | None = None, *,
           since_s: float = 0.0, email: str | None = None, **profile: object) -> User:
    """A registered user with total_m metres walked and this profile."""
    index = len(state.tracks)  # never shrinks: every user gets a device of its own
    mac = f"02:10:00:00:{index >> 8:02x}:{index & 255:02x}"
    user = state.add_user(email or f"{name}@example.org", name, mac, NOW_S)
    state.tracks[mac] = Track(FLOOR, 0.0, 0.0, NOW_S - 100, total_m)
    set_profile(state, user, team=team, team_since_s=since_s if team else None, **profile)
    return user


def set_profile(state: State, user: User, **fields: object) -> None:
    state.set_profile(user, user.profile._replace(**fields))


def walk(state: State, user: User, metres: float) -> None:
    """More distance for the user's first device, as ingest would credit it."""
    state.tracks[user.macs[0]].total_m += metres
    user.revision += 1
    state.changed_users.add(user)


def teams(boards: Boards, rank: str = "total", by: str = "team") -> list[GroupEntry]:
    return boards.grouped(boards.overall(), by).top(100, rank)


def test_teams_rank_by_their_members_sum_or_by_its_average() -> None:
    state = State(FilterParams(), "UTC")
    member(state, "alice", 30.0, "Owls")
    member(state, "bob", 20.0, "owls")
    member(state, "carol", 40.0, "Larks")
    member(state, "dave", 100.0)  # no team: on the user board only
    boards = boards_of(state)
    assert teams(boards) == [GroupEntry(1, "Owls", 2, 50.0, 25.0),
                             GroupEntry(2, "Larks", 1, 40.0, 40.0)]
    assert teams(boards, "average") == [GroupEntry(1, "Larks", 1, 40.0, 40.0),
                                        GroupEntry(2, "Owls", 2, 50.0, 25.0)]


def test_a_team_is_shown_as_its_earliest_member_spells_it() -> None:
    state = State(FilterParams(), "UTC")
    bob = member(state, "bob", 5.0, "NIGHT owls", since_s=20.0)
    alice = member(state, "alice", 5.0, "Night Owls", since_s=10.0)
    boards = boards_of(state)
    assert [e.name for e in teams(boards)] == ["Night Owls"]
    member(state, "carol", 5.0, "night OWLS", since_s=30.0)  # a newcomer renames nothing
    assert [(e.name, e.members) for e in teams(boards)] == [("Night Owls", 3)]
    set_profile(state, alice, team=None, team_since_s=None)
    assert [(e.name, e.members) for e in teams(boards)] == [("NIGHT owls", 2)]
    set_profile(state, bob, hidden=True)  # a hidden member is no member: carol is first
    assert [(e.name, e.members) for e in teams(boards)] == [("night OWLS", 1)]


def test_hidden_disqualified_and_staff_users_are_no_members() -> None:
    state = State(FilterParams(), "UTC")
    member(state, "alice", 10.0, "Owls")
    member(state, "hider", 20.0, "Owls", hidden=True)
    member(state, "cheat", 1000.0, "Owls", disqualified=True)
    member(state, "boss", 40.0, "Owls", email="boss@staff.example")
    boards = boards_of(state)
    assert teams(boards) == [GroupEntry(1, "Owls", 1, 10.0, 10.0)]
    assert [e.name for e in teams(boards, by="domain")] == ["example.org"]
    # The event's total: everybody who walked, but not the disqualified.
    assert boards.overall().registered_m == pytest.approx(10.0 + 20.0 + 40.0)


def test_ties_go_by_name_and_places_are_never_shared() -> None:
    state = State(FilterParams(), "UTC")
    member(state, "a", 10.0, "beta")
    member(state, "b", 10.0, "Alpha")
    member(state, "c", 10.0, "gamma")
    boards = boards_of(state)
    assert [(e.place, e.name) for e in teams(boards)] == [(1, "Alpha"), (2, "beta"),
                                                          (3, "gamma")]


def test_a_company_is_the_lower_case_email_domain() -> None:
    state = State(FilterParams(), "UTC")
    member(state, "a", 10.0, email="a@Example.COM")
    member(state, "b", 5.0, email="b@example.com")
    member(state, "c", 7.0, email="c@other.org")
    boards = boards_of(state)
    assert teams(boards, by="domain") == [GroupEntry(1, "example.com", 2, 15.0, 7.5),
                                          GroupEntry(2, "other.org", 1, 7.0, 7.0)]


def test_a_group_without_distance_is_off_the_board() -> None:
    state = State(FilterParams(), "UTC")
    member(state, "a", 0.0, "Idle")
    walker = member(state, "b", 0.0, "Busy")
    boards = boards_of(state)
    assert teams(boards) == []
    walk(state, walker, 3.0)
    assert [e.name for e in teams(boards)] == ["Busy"]


def fresh(state: State, by: str, rank: str) -> list[GroupEntry]:
    """The same board built from nothing."""
    boards = boards_of(state)
    return boards.grouped(boards.overall(), by).top(100, rank)


def test_group_boards_kept_current_equal_a_fresh_build() -> None:
    rng = random.Random(15)
    state = State(FilterParams(), "UTC")
    names = [f"Team{i}" for i in range(12)]
    for i in range(150):
        member(state, f"u{i}", float(rng.randrange(0, 50)), rng.choice([*names, None]),
               since_s=float(i), email=f"u{i}@d{i % 7}.example")
    boards = boards_of(state)
    for by in ("team", "domain"):
        teams(boards, by=by)  # built now: from here on they follow the changes
    for step in range(40):
        for _ in range(rng.randrange(1, 12)):
            users = list(state.users.values())
            user = rng.choice(users)
            change = rng.randrange(7)
            if change == 0:
                walk(state, user, rng.uniform(0.1, 30.0))
            elif change == 1:
                team = rng.choice([*names, None, rng.choice(names).upper()])
                set_profile(state, user, team=team, team_since_s=float(100 + step))
            elif change == 2:
                set_profile(state, user, hidden=not user.hidden)
            elif change == 3:
                set_profile(state, user, disqualified=not user.disqualified)
            elif change == 4:
                set_profile(state, user, alias=rng.choice([None, f"A{step}{user.username}"]))
            elif change == 5 and len(users) > 20:
                state.remove_user(user, NOW_S)
            else:
                member(state, f"n{step}x{len(state.tracks)}", rng.uniform(0, 40),
                       rng.choice(names), since_s=float(200 + step))
        for by in ("team", "domain"):
            for rank in ("total", "average"):
                kept = teams(boards, rank, by)
                built = fresh(state, by, rank)
                assert [(e.place, e.name, e.members) for e in kept] == \
                    [(e.place, e.name, e.members) for e in built], (step, by, rank)
                for a, b in zip(kept, built, strict=True):
                    assert math.isclose(a.total_m, b.total_m, rel_tol=1e-12)
        overall = boards.overall()
        rebuilt = boards_of(state).overall()
        assert overall.ranking.top(500) == rebuilt.ranking.top(500)
        assert overall.registered_m == pytest.approx(rebuilt.registered_m)


def test_a_profile_loaded_at_start_up_reaches_the_boards() -> None:
    state = State(FilterParams(), "UTC")
    macs = ("02:00:00:00:00:01", "02:00:00:00:00:02")
    state.seed(Loaded(users=[("a@x.org", "a", "Owls", 1.0, "Ace", False, False),
                             ("b@x.org", "b", "OWLS", 2.0, None, True, False)],
                      devices=[(macs[0], "a@x.org"), (macs[1], "b@x.org")],
                      tracks=[], days=[], counts=[], zones=[]))
    for mac in macs:
        state.tracks[mac] = Track(FLOOR, 0.0, 0.0, NOW_S - 100, 10.0)
    a = state.user("a")
    assert a is not None and a.profile == Profile("Owls", 1.0, "Ace", False, False)
    assert state.name_owner("ACE") is a  # the alias is known to the spoofing check
    boards = boards_of(state)
    assert [e.username for e in boards.overall().ranking.top(5)] == ["Ace"]  # b is hidden
    assert teams(boards) == [GroupEntry(1, "Owls", 1, 10.0, 10.0)]
    assert boards.overall().registered_m == 20.0
