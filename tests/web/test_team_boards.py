"""/live/leaderboard's `by` and `rank`, aliases and hidden users on boards, over HTTP.

The runtime's clock is the test's (noon of a fixed day, no day edge near); walks go
straight into the runtime's state, the boards follow every change (refresh 0 s).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import json_of
from tests.support import event
from tests.support.event import LEG_M, TODAY, YESTERDAY, km, miles
from tys_server.server import Runtime

pytestmark = pytest.mark.clock  # day boards (on a fixed clock: any event time zone)

BOARD = "/live/leaderboard"
PROFILE = "/live/profile"
runtime_clock = event.noon_clock
overrides = event.board_overrides


async def board(post: Any, **body: Any) -> Any:
    reply = await post(BOARD, body)
    assert reply.code == 200
    return json_of(reply)


@pytest.mark.gen_test
async def test_a_team_board_ranks_teams_by_their_ranked_members_sum(post: Any,
                                                                    runtime: Runtime) -> None:
    await event.six_walkers(post, runtime)
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
    await event.six_walkers(post, runtime)
    total = await board(post, by="domain")
    assert [(e["place"], e["domain"], e["members"], e["kilometres"])
            for e in total["leaders"]] == [(1, "cmxtrackyoursteps.com", 3, km(100)),
                                           (2, "acme.example", 2, km(90))]
    average = await board(post, by="domain", rank="average", number_leaders=1)
    assert [(e["place"], e["domain"], e["average_kilometres"]) for e in average["leaders"]] \
        == [(1, "acme.example", km(45))]


@pytest.mark.gen_test
async def test_date_works_for_every_by(post: Any, runtime: Runtime) -> None:
    await event.six_walkers(post, runtime)
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
    await event.six_walkers(post, runtime)
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
    await event.six_walkers(post, runtime)
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
    await event.six_walkers(post, runtime)
    old = await board(post, number_leaders=3)
    assert old == await board(post, number_leaders=3, by="user", rank="average")
    assert set(old) == {"leaders", "total_kilometres", "total_miles"}
    assert all(set(e) == {"place", "username", "kilometres", "miles", "steps"}
               for e in old["leaders"])
