"""Day leaderboards: a bounded cache, and no rebuild over every user per request (issue 12.13)."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.support.clock import Clock
from tys_server.core.events import Batch, Movement
from tys_server.core.leaderboard import MAX_DAY_BOARDS, Boards
from tys_server.core.ranking import Entry
from tys_server.core.snapshot import Loaded
from tys_server.core.state import State, User
from tys_server.core.tracking import FilterParams

FLOOR = 723413320329068590
FIRST_DAY = dt.date(2026, 6, 7)  # the event's first day (UTC)
NOW_S = dt.datetime(2026, 6, 12, 12, tzinfo=dt.UTC).timestamp()


class CountingState(State):
    """A real State that counts the users a day board reads."""

    def __init__(self) -> None:
        super().__init__(FilterParams(), "UTC")
        self.day_reads = 0

    def user_day_m(self, user: User, ordinal: int) -> float:
        self.day_reads += 1
        return super().user_day_m(user, ordinal)


def day_start_s(day: dt.date) -> float:
    return dt.datetime.combine(day, dt.time(), dt.UTC).timestamp()


def event_state(users: int, days: int) -> CountingState:
    """`users` registered users, user i with (i + 1) × (day + 1) metres on each event day,
    loaded the way start-up loads them."""
    state = CountingState()
    macs = [f"02:20:00:00:{i >> 8:02x}:{i & 255:02x}" for i in range(users)]
    state.seed(Loaded(
        users=[(f"u{i}@example.org", f"u{i}") for i in range(users)],
        devices=[(mac, f"u{i}@example.org") for i, mac in enumerate(macs)],
        tracks=[],
        days=[(mac, day_start_s(FIRST_DAY + dt.timedelta(d)), float((i + 1) * (d + 1)))
              for i, mac in enumerate(macs) for d in range(days)],
        counts=[], zones=[]))
    return state


def ordinal(day: int) -> int:
    """The ordinal of event day `day` (0 = the first)."""
    return (FIRST_DAY + dt.timedelta(day)).toordinal()


def boards_of(state: State) -> Boards:
    return Boards(state, lambda user: True, refresh_interval_s=0.0, clock=Clock(0.0))


def test_cycling_through_60_dates_builds_each_event_day_once() -> None:
    state = event_state(users=200, days=5)
    boards = boards_of(state)
    dates = [ordinal(day) for day in range(-30, 30)]  # 5 event days among 60 dates
    for _ in range(3):
        for date in dates:
            boards.day(date)
    assert boards.day_builds == 5
    assert state.day_reads == 5 * 200  # one read per user per event day, in all
    assert boards.day(ordinal(0)).ranking.top(1) == [Entry(1, "u199", 200.0)]
    assert boards.day(ordinal(4)).registered_m == pytest.approx(5 * sum(range(1, 201)))


def test_a_date_without_distance_is_the_empty_board_without_a_build() -> None:
    state = event_state(users=50, days=2)
    boards = boards_of(state)
    for day in (-400, -1, 2, 3000):
        board = boards.day(ordinal(day))
        assert board.ranking.top(10) == []
        assert board.registered_m == 0.0
    assert (boards.day_builds, state.day_reads) == (0, 0)


def test_the_most_recently_asked_day_boards_stay_cached() -> None:
    days = MAX_DAY_BOARDS + 8
    state = event_state(users=20, days=days)
    boards = boards_of(state)
    for day in range(days):
        boards.day(ordinal(day))
    assert boards.day_builds == days
    for day in range(8, days):  # the last MAX_DAY_BOARDS asked: none is built again
        boards.day(ordinal(day))
    assert boards.day_builds == days
    boards.day(ordinal(0))  # the least recently asked went first
    assert boards.day_builds == days + 1


def walk(state: State, mac: str, start_s: float) -> None:
    """Three 50 ft steps east, 10 s apart: two legs credited on start_s's day."""
    moves = [Movement(mac, FLOOR, 50.0 * step, 10.0, 50.0, start_s + 10.0 * step)
             for step in range(4)]
    state.ingest(Batch(moves, len(moves), 0, 0, {}), NOW_S)


def test_a_day_board_follows_new_distance_and_registrations() -> None:
    state = event_state(users=3, days=1)
    boards = boards_of(state)
    new_day = ordinal(5)  # the day of NOW_S
    assert boards.day(new_day).ranking.top(5) == []  # nothing on that day yet
    walk(state, "02:20:00:00:00:01", NOW_S - 900)
    assert [e.username for e in boards.day(new_day).ranking.top(5)] == ["u1"]
    # A device that walked that day before it was registered brings its distance along.
    walk(state, "02:30:00:00:00:09", NOW_S - 600)
    state.add_user("late@example.org", "late", "02:30:00:00:00:09", NOW_S)
    board = boards.day(new_day)
    assert sorted(e.username for e in board.ranking.top(5)) == ["late", "u1"]
    assert board.registered_m == pytest.approx(
        state.user_day_m(state.users["u1"], new_day)
        + state.user_day_m(state.users["late"], new_day))
    assert len(board.ranking) == 2  # users without distance that day are not held


def test_a_deleted_user_leaves_the_day_board() -> None:
    state = event_state(users=3, days=1)
    boards = boards_of(state)
    assert len(boards.day(ordinal(0)).ranking) == 3
    state.remove_user(state.users["u2"], NOW_S)
    board = boards.day(ordinal(0))
    assert [e.username for e in board.ranking.top(5)] == ["u1", "u0"]
    assert board.registered_m == pytest.approx(3.0)


# -- team and company boards (DESIGN 15) -------------------------------------------------


def team_event_state(users: int, days: int, teams: int) -> CountingState:
    """event_state's users, user i in team T(i % teams)."""
    state = CountingState()
    macs = [f"02:20:00:00:{i >> 8:02x}:{i & 255:02x}" for i in range(users)]
    state.seed(Loaded(
        users=[(f"u{i}@example.org", f"u{i}", f"T{i % teams}", float(i), None, False, False)
               for i in range(users)],
        devices=[(mac, f"u{i}@example.org") for i, mac in enumerate(macs)],
        tracks=[],
        days=[(mac, day_start_s(FIRST_DAY + dt.timedelta(d)), float((i + 1) * (d + 1)))
              for i, mac in enumerate(macs) for d in range(days)],
        counts=[], zones=[]))
    return state


def test_one_walker_sums_only_their_own_team_again() -> None:
    state = team_event_state(users=2000, days=1, teams=100)
    boards = boards_of(state)
    day = ordinal(0)
    board = boards.grouped(boards.day(day), "team")
    assert (boards.counts.group_builds, boards.counts.membership_builds) == (1, 1)
    assert boards.counts.users_visited == 2000  # the build: every user of that day once
    walk(state, "02:20:00:00:00:07", NOW_S - 900)  # u7 of team T7 walks on another day
    walk(state, "02:20:00:00:00:08", day_start_s(FIRST_DAY) + 3600)  # u8 of T8, that day
    assert boards.grouped(boards.day(day), "team") is board
    assert boards.counts.users_visited == 2000 + 2 * 20  # T7 and T8: 20 members each
    assert boards.counts.group_builds == 1
    top = board.top(1)[0]
    assert (top.name, top.members) == ("T99", 20)
    assert top.total_m == pytest.approx(sum(i + 1 for i in range(99, 2000, 100)))


def test_cycling_through_60_dates_builds_each_event_days_team_board_once() -> None:
    state = team_event_state(users=200, days=5, teams=10)
    boards = boards_of(state)
    dates = [ordinal(day) for day in range(-30, 30)]
    for _ in range(3):
        for date in dates:
            for by in ("team", "domain"):
                boards.grouped(boards.day(date), by).top(10)
    assert boards.day_builds == 5
    # One per event day and grouping, and the shared empty board's (which visits nobody).
    assert (boards.counts.group_builds, boards.counts.membership_builds) == (2 * 5 + 2, 2)
    assert boards.counts.users_visited == 2 * 5 * 200  # each day's users, once a grouping
    assert state.day_reads == 5 * 200


def test_a_changed_profile_moves_the_boards_it_shows_on() -> None:
    state = event_state(users=3, days=1)
    boards = Boards(state, lambda user: not (user.hidden or user.disqualified),
                    refresh_interval_s=0.0, clock=Clock(0.0))
    board = boards.day(ordinal(0))
    u1, u2 = state.users["u1"], state.users["u2"]
    assert [e.username for e in board.ranking.top(5)] == ["u2", "u1", "u0"]
    state.set_profile(u2, u2.profile._replace(alias="Zed"))
    state.set_profile(u1, u1.profile._replace(hidden=True))
    board = boards.day(ordinal(0))
    assert [e.username for e in board.ranking.top(5)] == ["Zed", "u0"]
    assert (board.place(u2), board.place(u1)) == (1, None)
    assert board.registered_m == pytest.approx(6.0)  # hidden users walked: they count
    state.set_profile(u2, u2.profile._replace(disqualified=True))
    board = boards.day(ordinal(0))
    assert [e.username for e in board.ranking.top(5)] == ["u0"]
    assert board.registered_m == pytest.approx(3.0)  # a cheater's metres are not the event's


def test_two_users_swapping_aliases_at_once_keep_both_places() -> None:
    state = event_state(users=2, days=1)
    boards = boards_of(state)
    u0, u1 = state.users["u0"], state.users["u1"]
    state.set_profile(u0, u0.profile._replace(alias="Ann"))
    state.set_profile(u1, u1.profile._replace(alias="Bea"))
    boards.day(ordinal(0))
    state.set_profile(u0, u0.profile._replace(alias="Bea"))
    state.set_profile(u1, u1.profile._replace(alias="Ann"))
    board = boards.day(ordinal(0))
    assert [(e.place, e.username, e.total_m) for e in board.ranking.top(5)] == \
        [(1, "Ann", 2.0), (2, "Bea", 1.0)]
