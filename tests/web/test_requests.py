"""web/requests.py: /live/* bodies read into typed arguments, or the endpoint's 400 text."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from tys_server.web import requests
from tys_server.web.requests import BadRequest


def refusal(reader: Callable[[Any], Any], body: Any) -> str:
    """The 400 text a reader gives for body (failing the test when it accepts it)."""
    with pytest.raises(BadRequest) as raised:
        reader(body)
    return raised.value.text


def test_register_reads_username_canonical_ip_and_add_device() -> None:
    assert requests.register_args({"username": "Alice", "ip": " ::ffff:10.0.0.1"}) == \
        ("Alice", "10.0.0.1", False)
    assert requests.register_args({"username": "a@b.c", "ip": "fd00::1", "add_device": True}) \
        == ("a@b.c", "fd00::1", True)
    for body in (None, [], {"username": "Alice"}, {"username": "@a", "ip": "10.0.0.1"},
                 {"username": "Alice", "ip": "10.0.0.1", "add_device": 1}):
        assert refusal(requests.register_args, body) == requests.BAD_REGISTER, body


@pytest.mark.parametrize("username", ["", "x" * 65, "@alice", " alice", "alice\n", "tab\tx", 5])
def test_usernames_outside_the_contract_are_refused(username: Any) -> None:
    assert requests.valid_username(username) is None
    assert refusal(requests.delete_args, {"username": username}) == requests.BAD_DELETE


def test_usernames_of_1_to_64_printable_characters_are_taken() -> None:
    for username in ("a", "x" * 64, "Zoë Ünal", "bob@example.org"):
        assert requests.delete_args({"username": username}) == username


def test_dashboard_days_default_to_5_and_must_be_a_json_integer_in_1_366() -> None:
    assert requests.dashboard_args({"username": "a"}) == ("a", 5)
    assert requests.dashboard_args({"username": "a", "days": 366}) == ("a", 366)
    for days in (0, 367, "5", 2.5, 5.0, True, None):
        assert refusal(requests.dashboard_args, {"username": "a", "days": days}) == \
            requests.BAD_DASHBOARD, days
    assert refusal(requests.dashboard_args, None) == requests.NOT_JSON


def test_leaderboard_reads_count_and_date_each_with_its_own_text() -> None:
    assert requests.leaderboard_args({}) == (5, None)
    assert requests.leaderboard_args({"number_leaders": 100, "date": "02/29/2024"}) == \
        (100, dt.date(2024, 2, 29).toordinal())
    assert refusal(requests.leaderboard_args, None) == requests.BAD_BOARD
    for count in (0, 101, "5", 2.5, True, None):
        assert refusal(requests.leaderboard_args, {"number_leaders": count}) == \
            requests.BAD_LEADERS, count
    for date in ("2/29/2024", "02/30/2024", "2024-02-29", "02/29/2024 ", 20240229):
        assert refusal(requests.leaderboard_args, {"date": date}) == requests.BAD_DATE, date


def test_ip_username_reads_the_canonical_ip() -> None:
    assert requests.ip_args({"ip": "FD00:0::1"}) == "fd00::1"
    for body in (None, {}, {"ip": "nope"}, {"ip": 5}, {"ip": "10.0.0.1%eth0"}):
        assert refusal(requests.ip_args, body) == requests.BAD_IP, body


# -- DESIGN 15: teams, aliases, boards by team or company ----------------------------------


@pytest.mark.parametrize("name", ["", "x" * 65, " Owls", "Owls ", "a\tb", "nul\x00", "\u00a0x",
                                  5, None, ["x"]])
def test_team_and_alias_names_outside_the_rules_are_refused(name: Any) -> None:
    assert requests.valid_name(name) is None
    body = {"username": "a", "team": name}
    if name is None:
        assert requests.team_arg(body) is None  # null: no team
        assert requests.profile_args({"username": "a", "alias": None}) == ("a", {"alias": None})
    else:
        assert refusal(requests.team_arg, body) == requests.BAD_TEAM
        assert refusal(requests.profile_args, body) == requests.BAD_TEAM
        assert refusal(requests.profile_args, {"username": "a", "alias": name}) == \
            requests.BAD_ALIAS


def test_names_of_1_to_64_printable_characters_are_taken_as_typed() -> None:
    for name in ("x", "x" * 64, "Night Owls", "@team", "Zoë & Co."):
        assert requests.team_arg({"team": name}) == name


def test_profile_reads_only_the_fields_given() -> None:
    assert requests.profile_args({"username": "a"}) == ("a", {})
    assert requests.profile_args({"username": "a", "team": "T", "alias": None,
                                  "hidden": False, "other": 1}) == \
        ("a", {"team": "T", "alias": None, "hidden": False})
    for body in (None, [], {}, {"username": "@a"}, {"team": "T"}):
        assert refusal(requests.profile_args, body) == requests.BAD_PROFILE, body
    for hidden in (None, 0, 1, "true", []):
        assert refusal(requests.profile_args, {"username": "a", "hidden": hidden}) == \
            requests.BAD_HIDDEN, hidden


def test_a_board_is_by_user_and_total_unless_asked_otherwise() -> None:
    assert requests.board_kind_args({}) == ("user", "total")
    assert requests.board_kind_args({"by": "team", "rank": "average"}) == ("team", "average")
    assert requests.board_kind_args({"by": "domain"}) == ("domain", "total")
    for by in ("users", "Team", None, 1, ["team"]):
        assert refusal(requests.board_kind_args, {"by": by}) == requests.BAD_BY, by
    for rank in ("avg", "TOTAL", None, True):
        assert refusal(requests.board_kind_args, {"rank": rank}) == requests.BAD_RANK, rank
