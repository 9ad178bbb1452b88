"""POST /live/profile and register_username's `team` through HTTP (DESIGN 15).

CMX in test mode, a real PostgreSQL. The last test is a hypothesis property against a
server of its own: any profile body gets 200 or a 4xx, and a 4xx changes nothing.
"""

from __future__ import annotations

import base64
import http.client
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.conftest import CMX_AUTH, MONITOR_AUTH, TestDatabase, json_of, with_overrides
from tests.support.procserver import free_port
from tests.web.test_live import register
from tests.web.test_properties import ThreadServer, bodies, json_values, usernames
from tys_server.config import load_settings
from tys_server.server import Runtime

PROFILE = "/live/profile"
BAD_PROFILE = "Expecting a JSON object with username."
BAD_TEAM = "team must be 1 to 64 printable characters without leading or trailing spaces, or null."
BAD_ALIAS = ("alias must be 1 to 64 printable characters without leading or trailing spaces, "
             "or null.")
BAD_HIDDEN = "hidden must be true or false."
SPOOFING = "alias is already another user's username or alias."
BAD_REGISTER = "Not a POST request or no application/json headers with username and ip"
STORED = "SELECT nickname, team, alias, hidden, disqualified FROM users ORDER BY nickname"


async def two_users(post: Any) -> None:
    assert (await register(post, "Alice", "10.1.2.3", team="Owls")).code == 201
    assert (await register(post, "Bob", "10.1.2.4")).code == 201


@pytest.mark.gen_test
async def test_profile_sets_what_is_given_and_answers_the_profile(post: Any, db: Any) -> None:
    await two_users(post)
    reply = await post(PROFILE, {"username": "alice", "alias": "Speedy", "hidden": True})
    assert reply.code == 200
    assert json_of(reply) == {"username": "Alice", "team": "Owls", "alias": "Speedy",
                              "hidden": True}
    reply = await post(PROFILE, {"username": "ALICE", "team": None, "hidden": False})
    assert json_of(reply) == {"username": "Alice", "team": None, "alias": "Speedy",
                              "hidden": False}
    assert db.query(STORED) == [("Alice", None, "Speedy", False, False),
                                ("Bob", None, None, False, False)]


@pytest.mark.gen_test
async def test_a_body_with_only_the_username_reads_the_profile(post: Any, db: Any) -> None:
    await two_users(post)
    before = db.query(STORED)
    reply = await post(PROFILE, {"username": "bob", "unknown": 1})
    assert reply.code == 200
    assert json_of(reply) == {"username": "Bob", "team": None, "alias": None, "hidden": False}
    assert db.query(STORED) == before


@pytest.mark.gen_test
@pytest.mark.parametrize(("body", "text"), [
    ([], BAD_PROFILE), ("alice", BAD_PROFILE), ({}, BAD_PROFILE),
    ({"username": "@alice", "team": "X"}, BAD_PROFILE), ({"username": 5}, BAD_PROFILE),
    ({"username": "alice", "team": ""}, BAD_TEAM),
    ({"username": "alice", "team": "x" * 65}, BAD_TEAM),
    ({"username": "alice", "team": " Owls"}, BAD_TEAM),
    ({"username": "alice", "team": "Owls\n"}, BAD_TEAM),
    ({"username": "alice", "team": "tab\there"}, BAD_TEAM),
    ({"username": "alice", "team": 7}, BAD_TEAM),
    ({"username": "alice", "team": "Larks", "alias": ""}, BAD_ALIAS),
    ({"username": "alice", "alias": "a" * 65}, BAD_ALIAS),
    ({"username": "alice", "alias": "nul\x00"}, BAD_ALIAS),
    ({"username": "alice", "alias": "Ace "}, BAD_ALIAS),
    ({"username": "alice", "alias": ["Ace"]}, BAD_ALIAS),
    ({"username": "alice", "team": "Larks", "hidden": "true"}, BAD_HIDDEN),
    ({"username": "alice", "hidden": 1}, BAD_HIDDEN),
    ({"username": "alice", "hidden": None}, BAD_HIDDEN),
    ({"username": "alice", "team": "Larks", "alias": "BOB"}, SPOOFING),
])
async def test_bad_input_is_a_clear_400_and_changes_nothing(post: Any, runtime: Runtime,
                                                            db: Any, body: Any,
                                                            text: str) -> None:
    await two_users(post)
    before, remembered = db.query(STORED), runtime.state.user("alice").profile
    reply = await post(PROFILE, body)
    assert reply.code == 400
    assert json_of(reply) == {"error": text}
    assert db.query(STORED) == before
    assert runtime.state.user("alice").profile == remembered


@pytest.mark.gen_test
async def test_an_alias_equal_to_another_alias_in_any_case_is_spoofing(post: Any) -> None:
    await two_users(post)
    assert (await post(PROFILE, {"username": "bob", "alias": "Robert"})).code == 200
    reply = await post(PROFILE, {"username": "alice", "alias": "ROBERT"})
    assert (reply.code, json_of(reply)) == (400, {"error": SPOOFING})
    assert (await post(PROFILE, {"username": "alice", "alias": "ALICE"})).code == 200


@pytest.mark.gen_test
async def test_profile_of_an_unknown_user_is_404(post: Any) -> None:
    reply = await post(PROFILE, {"username": "ghost", "hidden": True})
    assert (reply.code, json_of(reply)) == (404, {"error": "Username not found"})


@pytest.mark.gen_test
async def test_profile_needs_the_api_pair(post: Any, db: Any) -> None:
    await two_users(post)
    for pair in (None, CMX_AUTH, MONITOR_AUTH):
        reply = await post(PROFILE, {"username": "alice", "hidden": True}, auth=pair)
        assert reply.code == 401
        assert reply.headers["WWW-Authenticate"] == 'Basic realm="TYS"'
    assert db.query("SELECT count(*) FROM users WHERE hidden") == [(0,)]


# -- register_username's team ------------------------------------------------------------


@pytest.mark.gen_test
async def test_register_with_a_team_replies_as_the_seed_did(post: Any, db: Any) -> None:
    reply = await register(post, "Carol", "10.1.2.5", team="Night Owls")
    assert reply.code == 201
    assert json_of(reply) == {"success": "Username added with device", "username": "Carol",
                              "email": "Carol@cmxtrackyoursteps.com", "ip": "10.1.2.5",
                              "mac": "02:00:0a:01:02:05"}
    assert db.query(STORED) == [("Carol", "Night Owls", None, False, False)]
    again = await register(post, "Carol", "10.1.2.5", team="Larks")  # nothing to do: kept
    assert again.code == 200
    assert db.query("SELECT team FROM users") == [("Night Owls",)]


@pytest.mark.gen_test
@pytest.mark.parametrize("team", ["", " x", "x" * 65, 5, ["x"], "a\tb"])
async def test_register_with_a_bad_team_is_400_and_registers_nothing(post: Any, db: Any,
                                                                      team: Any) -> None:
    reply = await register(post, "Carol", "10.1.2.5", team=team)
    assert (reply.code, json_of(reply)) == (400, {"error": BAD_TEAM})
    assert db.query("SELECT count(*) FROM users") == [(0,)]
    bad_body = await register(post, "@Carol", "10.1.2.5", team=team)  # the seed's text first
    assert json_of(bad_body) == {"error": BAD_REGISTER}


@pytest.mark.gen_test
async def test_a_username_that_is_an_alias_is_already_registered(post: Any, db: Any) -> None:
    await two_users(post)
    await post(PROFILE, {"username": "alice", "alias": "Speedy"})
    reply = await register(post, "SPEEDY", "10.1.2.9")
    assert (reply.code, json_of(reply)) == (409, {"error": "Username already registered"})
    assert db.query("SELECT count(*) FROM users") == [(2,)]


# -- the property ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(postgres: TestDatabase) -> Iterator[ThreadServer]:
    postgres.clear()
    base = load_settings("conf/tys.yaml", environ={})
    server = ThreadServer(Runtime(with_overrides(base, **{
        "database.dsn": postgres.dsn, "database.flush_interval_s": 3600.0,
        "server.port": free_port()})))
    server.start()
    yield server
    server.stop()
    postgres.clear()


def send(served: ThreadServer, path: str, body: Any) -> tuple[int, Any]:
    """One POST with the API pair; (status, JSON reply)."""
    conn = http.client.HTTPConnection("127.0.0.1", served.runtime.settings.server.port,
                                      timeout=10)
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    token = base64.b64encode(b"frontend:change-me-api").decode()
    try:
        conn.request("POST", path, body=raw, headers={
            "Authorization": "Basic " + token, "Content-Type": "application/json"})
        reply = conn.getresponse()
        return reply.status, json.loads(reply.read())
    finally:
        conn.close()


def profiles(served: ThreadServer, postgres: TestDatabase) -> tuple[Any, Any]:
    """Every profile as stored, and as memory holds it."""

    async def read() -> Any:
        return sorted((u.username, u.profile) for u in served.runtime.state.users.values())

    return postgres.query(STORED), served.call(read())


registered = st.sampled_from(["alice", "Bob", "CAROL"])
valid_names = st.none() | st.sampled_from(["Owls", "OWLS", "Zoë", "x" * 64, "Night Owls"]) \
    | st.text(st.characters(codec="utf-8", categories=["L", "N"]), min_size=1, max_size=20)
names = valid_names | st.sampled_from(["Alice", "bob", " x", ""]) | st.text(max_size=70) \
    | json_values


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(body=bodies({"username": usernames, "team": names, "alias": names,
                    "hidden": st.booleans() | json_values},
                   {"username": registered, "team": valid_names, "alias": valid_names,
                    "hidden": st.booleans()}))
def test_any_profile_body_gets_200_or_a_4xx_that_changes_nothing(
        served: ThreadServer, postgres: TestDatabase, body: Any) -> None:
    if not served.runtime.state.users:
        for index, name in enumerate(("alice", "bob", "carol")):
            assert send(served, "/live/register_username",
                        {"username": name, "ip": f"10.0.9.{index + 1}"})[0] == 201
    before = profiles(served, postgres)
    status, reply = send(served, PROFILE, body)
    after = profiles(served, postgres)
    event(f"{status}")
    assert status in (200, 400, 404), (status, reply)
    if status != 200:
        assert set(reply) == {"error"} and after == before
        return
    stored, remembered = after
    assert [row[:4] for row in stored] == [(name, p.team, p.alias, p.hidden)
                                          for name, p in remembered]
    row = next(r for r in stored if r[0].lower() == body["username"].lower())
    assert reply == {"username": row[0], "team": row[1], "alias": row[2], "hidden": row[3]}
    for key in ("team", "alias", "hidden"):
        if key in body:
            assert reply[key] == body[key]
