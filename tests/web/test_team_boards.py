"""/live/leaderboard's `by` and `rank`, aliases and hidden users on boards, over HTTP.

The runtime's clock is the test's (noon of a fixed day, no day edge near); walks go
straight into the runtime's state, the boards follow every change (refresh 0 s).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from tests.conftest import json_of
from tests.support.clock import Clock
from tests.web.test_live import register
from tys_server.core.events import Batch, Movement
from tys_server.server import Runtime

pytestmark = pytest.mark.clock  # day boards (on a fixed clock: any event time zone)

NOW_S = dt.datetime(2026, 11, 18, 12, 0, tzinfo=dt.UTC).timestamp()
TODAY = "11/18/2026"
YESTERDAY = "11/17/2026"
BOARD = "/live/leaderboard"
PROFILE = "/live/profile"
LEG_M = 15.24  # one 50 ft leg


@pytest.fixture
def runtime_clock() -> Clock:
    return Clock(NOW_S)


@pytest.fixture
def overrides() -> dict[str, Any]:
    return {"leaderboard.refresh_interval_s": 0.0,
            "leaderboard.exclude_email_domains": ("staff.example",)}


def mac_of(ip: str) -> str:
    """CMX test mode: a.b.c.d → 02:00:aa:bb:cc:dd."""
    return "02:00:" + ":".join(f"{int(octet):02x}" for octet in ip.split("."))


def walk(runtime: Runtime, ip: str, legs: int, start_s: float = NOW_S - 1800) -> None:
    """A straight walk crediting `legs` 50 ft legs to the device at ip."""
    moves = [Movement(mac_of(ip), 1, 50.0 * i, 0.0, 50.0, start_s + 15 * i)
             for i in range(legs + 2)]
    runtime.state.ingest(Batch(list(moves), len(moves), 0, 0), NOW_S)


def km(legs: float) -> float:
    return round(legs * LEG_M / 1000, 1)


def miles(legs: float) -> float:
    return round(legs * LEG_M / 1609.344, 1)


async def event(post: Any, runtime: Runtime) -> None:
    """Six walkers in two teams and two companies, one of them staff, one walked yesterday.

    Legs: dave 60, frank 50 (yesterday), alice 40, carol 30, bob 10; erin (staff) 100.
    """
    people = [("alice", "10.0.0.1", "Night Owls", 40), ("bob", "10.0.0.2", "night owls", 10),
              ("carol@acme.example", "10.0.0.3", "Larks", 30),
              ("dave@acme.example", "10.0.0.4", None, 60),
              ("erin@staff.example", "10.0.0.5", "Larks", 100),
              ("frank", "10.0.0.6", "NIGHT OWLS", 50)]
    for username, ip, team, legs in people:
        extra = {} if team is None else {"team": team}
        assert (await register(post, username, ip, **extra)).code == 201
        walk(runtime, ip, legs, NOW_S - (86400 if username == "frank" else 1800))


async def board(post: Any, **body: Any) -> Any:
    reply = await post(BOARD, body)
    assert reply.code == 200
    return json_of(reply)


@pytest.mark.gen_test
async def test_a_team_board_ranks_teams_by_their_ranked_members_sum(post: Any,
                                                                    runtime: Runtime) -> None:
    await event(post, runtime)
    teams = await board(post, by="team", number_leaders=10)
    # erin is staff: off the boards, so no member of Larks; her metres are the event's.
    assert teams == {
        "leaders": [
            {"place": 1, "team": "Night Owls", "members": 3, "kilometres": km(100),
             "miles": miles(100), "steps": 100 * 20, "average_kilometres": km(100 / 3)},
            {"place": 2, "team": "Larks", "members": 1, "kilometres": km(30),
             "miles": miles(30), "steps": 30 * 20, "average_kilometres": km(30)}],
        "total_kilometres": km(290), "total_miles": miles(290)}
    users = await board(post, number_leaders=10)
    assert users["total_kilometres"] == teams["total_kilometres"]
    assert [e["username"] for e in users["leaders"]] == \
        ["dave@acme.example", "frank", "alice", "carol@acme.example", "bob"]


@pytest.mark.gen_test
async def test_company_boards_by_total_and_by_average(post: Any, runtime: Runtime) -> None:
    await event(post, runtime)
    total = await board(post, by="domain")
    assert [(e["place"], e["domain"], e["members"], e["kilometres"])
            for e in total["leaders"]] == [(1, "cmxtrackyoursteps.com", 3, km(100)),
                                           (2, "acme.example", 2, km(90))]
    average = await board(post, by="domain", rank="average", number_leaders=1)
    assert [(e["place"], e["domain"], e["average_kilometres"]) for e in average["leaders"]] \
        == [(1, "acme.example", km(45))]


@pytest.mark.gen_test
async def test_date_works_for_every_by(post: Any, runtime: Runtime) -> None:
    await event(post, runtime)
    yesterday = {by: await board(post, by=by, date=YESTERDAY) for by in ("user", "team",
                                                                        "domain")}
    assert [e["username"] for e in yesterday["user"]["leaders"]] == ["frank"]
    assert [(e["team"], e["members"], e["kilometres"]) for e in yesterday["team"]["leaders"]] \
        == [("Night Owls", 3, km(50))]  # members: the team's, walked that day or not
    assert [e["domain"] for e in yesterday["domain"]["leaders"]] == ["cmxtrackyoursteps.com"]
    assert {b["total_kilometres"] for b in yesterday.values()} == {km(50)}
    today = await board(post, by="team", date=TODAY, rank="average")
    assert [(e["team"], e["average_kilometres"]) for e in today["leaders"]] == \
        [("Larks", km(30)), ("Night Owls", km(50 / 3))]
    empty = await board(post, by="team", date="01/01/2020")
    assert empty == {"leaders": [], "total_kilometres": 0.0, "total_miles": 0.0,
                     "error": "No data to display for the leader board"}


@pytest.mark.gen_test
async def test_an_alias_shows_on_boards_and_the_owner_sees_the_real_name(
        post: Any, runtime: Runtime) -> None:
    await event(post, runtime)
    assert (await post(PROFILE, {"username": "alice", "alias": "Nightjar"})).code == 200
    users = await board(post)
    assert [e["username"] for e in users["leaders"]] == \
        ["dave@acme.example", "frank", "Nightjar", "carol@acme.example", "bob"]
    (device,) = json_of(await post("/live/username_data", {"username": "alice"}))
    assert (device["username"], device["place"]) == ("alice", 3)
    assert runtime.service is not None
    leaders = [e.username for e in runtime.service.ranking().top(10)]  # the status page's
    assert leaders[2] == "Nightjar"


@pytest.mark.gen_test
async def test_a_hidden_user_is_off_every_board_with_place_null(post: Any,
                                                                runtime: Runtime) -> None:
    await event(post, runtime)
    before = await board(post)
    assert (await post(PROFILE, {"username": "bob", "hidden": True})).code == 200
    for by in ("user", "team", "domain"):
        for date in (None, TODAY, YESTERDAY):
            shown = await board(post, by=by, date=date, number_leaders=100)
            assert "bob" not in str(shown["leaders"])
    assert [e["username"] for e in (await board(post))["leaders"]] == \
        ["dave@acme.example", "frank", "alice", "carol@acme.example"]
    teams = await board(post, by="team")
    assert [(e["team"], e["members"], e["kilometres"]) for e in teams["leaders"]] == \
        [("Night Owls", 2, km(90)), ("Larks", 1, km(30))]
    assert teams["total_kilometres"] == before["total_kilometres"]  # bob still walked
    (device,) = json_of(await post("/live/username_data", {"username": "bob"}))
    assert device["place"] is None
    assert device["total_kilometres"] == round(10 * LEG_M / 1000, 3)


@pytest.mark.gen_test
@pytest.mark.parametrize(("body", "text"), [
    ({"by": "teams"}, "by must be one of user, team, domain."),
    ({"by": "USER"}, "by must be one of user, team, domain."),
    ({"by": None}, "by must be one of user, team, domain."),
    ({"by": ["team"]}, "by must be one of user, team, domain."),
    ({"by": "team", "rank": "mean"}, "rank must be total or average."),
    ({"rank": True}, "rank must be total or average."),
    ({"rank": None}, "rank must be total or average."),
    ({"by": "team", "number_leaders": 0}, "number_leaders must be an integer from 1 to 100."),
    ({"by": "team", "date": "2026-11-18"}, "date must be a day as MM/DD/YYYY."),
])
async def test_a_bad_by_or_rank_is_a_clear_400(post: Any, runtime: Runtime, body: Any,
                                               text: str) -> None:
    reply = await post(BOARD, body)
    assert (reply.code, json_of(reply)) == (400, {"error": text})


@pytest.mark.gen_test
async def test_an_old_clients_board_is_unchanged(post: Any, runtime: Runtime) -> None:
    await event(post, runtime)
    old = await board(post, number_leaders=3)
    assert old == await board(post, number_leaders=3, by="user", rank="average")
    assert set(old) == {"leaders", "total_kilometres", "total_miles"}
    assert all(set(e) == {"place", "username", "kilometres", "miles", "steps"}
               for e in old["leaders"])
