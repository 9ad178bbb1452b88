"""/admin/*: export, disqualify, requalify, erase, purge with the admin pair (DESIGN 15).

The runtime's clock is the test's (noon of a fixed day); the event is the one of
test_team_boards (six walkers, two teams, two companies, one of them staff). The edge
tests run the runtime's own HTTP server (Runtime.listen), as in test_hostile_input.
"""

from __future__ import annotations

import csv
import io
import logging
from typing import Any

import pytest

from tests.conftest import API_AUTH, CMX_AUTH, MONITOR_AUTH, json_of
from tests.support import event, rawhttp
from tests.support.event import ADMIN_AUTH, DAY_S, LEG_M, NOW_S, YESTERDAY, mac_of, walk
from tests.support.pgproxy import PgProxy
from tests.support.procserver import free_port
from tys_server.server import Runtime
from tys_server.web.app import LIVE_MAX_BODY_BYTES
from tys_server.web.limits import TOO_LARGE

EXPORT, DISQUALIFY, REQUALIFY = "/admin/export", "/admin/disqualify", "/admin/requalify"
ERASE, PURGE = "/admin/erase", "/admin/purge"
ADMIN_PATHS = (EXPORT, DISQUALIFY, REQUALIFY, ERASE, PURGE)
BOARD = "/live/leaderboard"
BAD_USERNAME = "Expecting a JSON object with username."
BAD_EXPORT = "Expecting a JSON object with by and an optional date."
BAD_EXPORT_BY = "by must be user or team."
BAD_DATE = "date must be a day as MM/DD/YYYY."
BAD_PURGE = "unregistered_older_than_days must be an integer from 0 to 36500."
DOMAIN = "cmxtrackyoursteps.com"


runtime_clock = event.noon_clock
overrides = event.board_overrides


def figures(legs: float) -> list[str]:
    """km and miles to 3 decimals and steps (2.5 ft: 20 a 50 ft leg), as the CSV has them."""
    metres = legs * LEG_M
    return [f"{metres / 1000:.3f}", f"{metres / 1609.344:.3f}", str(round(legs * 20))]


async def admin(post: Any, path: str, body: Any = None, **kwargs: Any) -> Any:
    return await post(path, body, auth=ADMIN_AUTH, **kwargs)


def table(reply: Any) -> list[list[str]]:
    """The CSV rows of an export reply (header first), checking its type."""
    assert reply.code == 200, reply.body
    assert reply.headers["Content-Type"] == "text/csv; charset=utf-8"
    text = reply.body.decode("utf-8")
    assert text.endswith("\r\n")
    return list(csv.reader(io.StringIO(text)))


# -- export ------------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_export_by_user_is_the_whole_board_with_emails_and_teams(post: Any,
                                                                       runtime: Runtime) -> None:
    await event.six_walkers(post, runtime)
    reply = await admin(post, EXPORT, {"by": "user"})
    assert reply.headers["Content-Disposition"] == 'attachment; filename="tys-users-overall.csv"'
    assert reply.headers["Cache-Control"] == "no-store"
    assert table(reply) == [
        ["place", "username", "email", "team", "km", "miles", "steps"],
        ["1", "dave@acme.example", "dave@acme.example", "", *figures(60)],
        ["2", "frank", f"frank@{DOMAIN}", "Night Owls", *figures(50)],
        ["3", "alice", f"alice@{DOMAIN}", "Night Owls", *figures(40)],
        ["4", "carol@acme.example", "carol@acme.example", "Larks", *figures(30)],
        ["5", "bob", f"bob@{DOMAIN}", "Night Owls", *figures(10)],
    ]  # erin is staff: off the board, so off the export
    board = json_of(await post(BOARD, {"number_leaders": 100}))
    assert [leader["username"] for leader in board["leaders"]] == [
        row[1] for row in table(await admin(post, EXPORT, {}))[1:]]


@pytest.mark.gen_test
async def test_export_names_each_users_team_as_the_team_board_does(post: Any,
                                                                   runtime: Runtime) -> None:
    # bob typed "night owls" and frank "NIGHT OWLS" after alice's "Night Owls": the sheet
    # for the prizes says "Night Owls" on all three rows, as the team board does.
    await event.six_walkers(post, runtime)
    users = table(await admin(post, EXPORT, {"by": "user"}))[1:]
    teams = json_of(await post(BOARD, {"by": "team"}))["leaders"]
    assert {row[1]: row[3] for row in users} == {
        "dave@acme.example": "", "frank": "Night Owls", "alice": "Night Owls",
        "carol@acme.example": "Larks", "bob": "Night Owls"}
    assert {row[3] for row in users} - {""} == {team["team"] for team in teams}


@pytest.mark.gen_test
async def test_export_shows_aliases_and_leaves_out_hidden_and_disqualified_users(
        post: Any, runtime: Runtime) -> None:
    await event.six_walkers(post, runtime)
    assert (await post("/live/profile", {"username": "alice", "alias": "Ace"})).code == 200
    assert (await post("/live/profile", {"username": "bob", "hidden": True})).code == 200
    assert (await admin(post, DISQUALIFY, {"username": "dave@acme.example"})).code == 200
    rows = table(await admin(post, EXPORT, {"by": "user"}))[1:]
    assert [row[:3] for row in rows] == [["1", "frank", f"frank@{DOMAIN}"],
                                         ["2", "Ace", f"alice@{DOMAIN}"],
                                         ["3", "carol@acme.example", "carol@acme.example"]]


@pytest.mark.gen_test
async def test_export_of_a_day_holds_that_days_walkers_only(post: Any,
                                                            runtime: Runtime) -> None:
    await event.six_walkers(post, runtime)
    reply = await admin(post, EXPORT, {"by": "user", "date": YESTERDAY})
    assert reply.headers["Content-Disposition"] == \
        'attachment; filename="tys-users-11-17-2026.csv"'
    assert table(reply)[1:] == [["1", "frank", f"frank@{DOMAIN}", "Night Owls",
                                 *figures(50)]]
    assert table(await admin(post, EXPORT, {"date": "01/01/2020"})) == [
        ["place", "username", "email", "team", "km", "miles", "steps"]]


@pytest.mark.gen_test
async def test_export_by_team_has_members_and_average(post: Any, runtime: Runtime) -> None:
    await event.six_walkers(post, runtime)
    rows = table(await admin(post, EXPORT, {"by": "team"}))
    average = figures(100 / 3)[0]
    assert rows == [
        ["place", "team", "members", "km", "miles", "steps", "average_km"],
        ["1", "Night Owls", "3", *figures(100), average],  # alice, bob, frank
        ["2", "Larks", "1", *figures(30), figures(30)[0]],  # erin is staff: no member
    ]
    board = json_of(await post(BOARD, {"by": "team"}))
    assert [(t["team"], t["members"]) for t in board["leaders"]] == [
        (row[1], int(row[2])) for row in rows[1:]]
    today = table(await admin(post, EXPORT, {"by": "team", "date": "11/18/2026"}))
    assert today[1][:3] == ["1", "Night Owls", "3"] and today[1][3] == figures(50)[0]


@pytest.mark.gen_test
async def test_cells_a_spreadsheet_would_run_as_formulas_are_quoted(post: Any,
                                                                    runtime: Runtime) -> None:
    from tests.web.test_live import register

    for username, ip, team in (("=HYPERLINK(1)", "10.0.1.1", "+Team"),
                               ("-2+3", "10.0.1.2", "@SUM(A1)"),
                               ("plain", "10.0.1.3", "Owls")):
        assert (await register(post, username, ip, team=team)).code == 201
    walk(runtime, "10.0.1.1", 30)
    walk(runtime, "10.0.1.2", 20)
    walk(runtime, "10.0.1.3", 10)
    rows = table(await admin(post, EXPORT, {"by": "user"}))[1:]
    assert [(row[1], row[2], row[3]) for row in rows] == [
        ("'=HYPERLINK(1)", f"'=HYPERLINK(1)@{DOMAIN}", "'+Team"),
        ("'-2+3", f"'-2+3@{DOMAIN}", "'@SUM(A1)"),
        ("plain", f"plain@{DOMAIN}", "Owls")]
    teams = table(await admin(post, EXPORT, {"by": "team"}))[1:]
    assert [row[1] for row in teams] == ["'+Team", "'@SUM(A1)", "Owls"]


@pytest.mark.gen_test
async def test_an_empty_post_exports_the_whole_event_by_user(post: Any,
                                                             runtime: Runtime) -> None:
    await event.six_walkers(post, runtime)
    reply = await admin(post, EXPORT, raw=b"", content_type="text/plain")
    assert len(table(reply)) == 6


@pytest.mark.gen_test
@pytest.mark.parametrize(("body", "text"), [
    ([], BAD_EXPORT), ("user", BAD_EXPORT), ({"by": "domain"}, BAD_EXPORT_BY),
    ({"by": "USER"}, BAD_EXPORT_BY), ({"by": 1}, BAD_EXPORT_BY), ({"by": None}, BAD_EXPORT_BY),
    ({"date": "2026-11-18"}, BAD_DATE), ({"by": "team", "date": "02/30/2026"}, BAD_DATE),
    ({"date": 20261118}, BAD_DATE)])
async def test_a_bad_export_is_a_clear_400(post: Any, body: Any, text: str) -> None:
    reply = await admin(post, EXPORT, body)
    assert (reply.code, json_of(reply)) == (400, {"error": text})


# -- disqualify, requalify, erase, purge --------------------------------------------------------


@pytest.mark.gen_test
async def test_disqualify_takes_a_user_off_the_boards_and_requalify_puts_them_back(
        post: Any, runtime: Runtime, db: Any) -> None:
    await event.six_walkers(post, runtime)
    before = json_of(await post(BOARD, {}))
    reply = await admin(post, DISQUALIFY, {"username": "DAVE@acme.example"})
    assert (reply.code, json_of(reply)) == (200, {"username": "dave@acme.example",
                                                  "disqualified": True})
    during = json_of(await post(BOARD, {}))
    assert "dave@acme.example" not in [leader["username"] for leader in during["leaders"]]
    assert during["total_kilometres"] == round(before["total_kilometres"] - 60 * LEG_M / 1000, 1)
    assert db.query("SELECT disqualified FROM users WHERE nickname = 'dave@acme.example'") == [
        (True,)]
    reply = await admin(post, REQUALIFY, {"username": "dave@acme.example"})
    assert (reply.code, json_of(reply)) == (200, {"username": "dave@acme.example",
                                                  "disqualified": False})
    assert json_of(await post(BOARD, {})) == before


@pytest.mark.gen_test
async def test_erase_is_delete_username_with_erase(post: Any, runtime: Runtime,
                                                   db: Any) -> None:
    await event.six_walkers(post, runtime)
    assert runtime.flusher is not None and await runtime.flusher.flush_once()
    reply = await admin(post, ERASE, {"username": "Alice"})
    assert (reply.code, json_of(reply)) == (200, {
        "success": "Username and associated devices deleted", "username": "alice",
        "email": f"alice@{DOMAIN}"})
    alice = mac_of("10.0.0.1")
    assert db.query("SELECT count(*) FROM distance WHERE mac = %s", (alice,)) == [(0,)]
    assert db.query("SELECT count(*) FROM distance_history WHERE mac = %s", (alice,)) == [(0,)]
    assert alice not in runtime.state.tracks
    assert (await post("/live/username_data", {"username": "alice"})).code == 404


@pytest.mark.gen_test
async def test_purge_takes_unregistered_devices_idle_past_the_days_given(
        post: Any, runtime: Runtime, db: Any) -> None:
    await event.six_walkers(post, runtime)
    walk(runtime, "10.0.9.1", 5, NOW_S - 10 * DAY_S)  # nobody registered these
    walk(runtime, "10.0.9.2", 5, NOW_S - 3 * DAY_S)
    assert runtime.flusher is not None and await runtime.flusher.flush_once()
    reply = await admin(post, PURGE, {"unregistered_older_than_days": 7})
    assert (reply.code, json_of(reply)) == (200, {"purged_devices": 1})
    assert mac_of("10.0.9.1") not in runtime.state.tracks
    assert db.query("SELECT count(*) FROM distance") == [(7,)]  # six walkers and the other
    reply = await admin(post, PURGE, {"unregistered_older_than_days": 0})
    assert json_of(reply) == {"purged_devices": 1}
    assert db.query("SELECT count(*) FROM distance") == [(6,)]  # registered ones stay


@pytest.mark.gen_test
@pytest.mark.parametrize("path", [DISQUALIFY, REQUALIFY, ERASE])
async def test_an_unknown_user_is_404_and_a_bad_body_400(post: Any, path: str) -> None:
    reply = await admin(post, path, {"username": "ghost"})
    assert (reply.code, json_of(reply)) == (404, {"error": "Username not found"})
    for body in ({}, [], {"username": "@x"}, {"username": 5}, {"username": " x"}):
        reply = await admin(post, path, body)
        assert (reply.code, json_of(reply)) == (400, {"error": BAD_USERNAME})


@pytest.mark.gen_test
@pytest.mark.parametrize("days", [-1, 36_501, "30", 1.5, True, None, [30]])
async def test_purge_needs_a_whole_number_of_days(post: Any, runtime: Runtime,
                                                  days: Any) -> None:
    walk(runtime, "10.0.9.1", 5, NOW_S - 10 * DAY_S)
    reply = await admin(post, PURGE, {"unregistered_older_than_days": days})
    assert (reply.code, json_of(reply)) == (400, {"error": BAD_PURGE})
    assert mac_of("10.0.9.1") in runtime.state.tracks


# -- who may call, and the log ---------------------------------------------------------------


@pytest.mark.gen_test
@pytest.mark.parametrize("path", ADMIN_PATHS)
async def test_every_other_pair_gets_401(post: Any, runtime: Runtime, db: Any,
                                         path: str) -> None:
    await event.six_walkers(post, runtime)
    body = {"username": "alice", "unregistered_older_than_days": 0}
    for pair in (API_AUTH, MONITOR_AUTH, CMX_AUTH, None, ("admin", "change-me-api")):
        reply = await post(path, body, auth=pair)
        assert (reply.code, json_of(reply)) == (401, {"error": "Unauthorized"})
        assert reply.headers["WWW-Authenticate"] == 'Basic realm="TYS"'
    assert runtime.state.user("alice") is not None and not runtime.state.user("alice").disqualified
    assert len(runtime.state.tracks) == 6


@pytest.mark.gen_test
async def test_each_admin_call_is_logged_with_who_what_and_never_a_secret(
        post: Any, runtime: Runtime, caplog: Any) -> None:
    await event.six_walkers(post, runtime)
    with caplog.at_level(logging.INFO, logger="tys_server"):
        await admin(post, DISQUALIFY, {"username": "bob"})
        await admin(post, ERASE, {"username": "ghost"})
        await admin(post, EXPORT, {"by": "team", "date": YESTERDAY})
        await admin(post, PURGE, {"unregistered_older_than_days": 3})
        await post(ERASE, {"username": "bob"}, auth=API_AUTH)
    lines = [r.getMessage() for r in caplog.records if r.name == "tys_server.web.admin"]
    assert lines == [
        "admin admin from 127.0.0.1: disqualify bob -> 200",
        "admin admin from 127.0.0.1: erase ghost -> 404",
        "admin admin from 127.0.0.1: export by team, 11/17/2026 -> 200",
        "admin admin from 127.0.0.1: purge unregistered older than 3 days -> 200",
        "admin someone without the admin pair from 127.0.0.1: erase - -> 401",
    ]
    assert all(record.levelno == logging.INFO for record in caplog.records
               if record.name == "tys_server.web.admin")
    for secret in (ADMIN_AUTH[1], API_AUTH[1], "Basic "):
        assert secret not in caplog.text


class TestTheDatabaseRefusing:
    """Each admin change answers its 500 text when PostgreSQL is gone, and changes nothing."""

    @pytest.fixture
    def overrides(self, proxy: PgProxy) -> dict[str, Any]:
        return {"database.dsn": proxy.proxied_dsn(), "database.statement_timeout_s": 1.0,
                "database.connect_timeout_s": 1.0, "leaderboard.refresh_interval_s": 0.0}

    @pytest.mark.gen_test(timeout=30)
    async def test_500_texts(self, post: Any, runtime: Runtime, db: Any,
                             proxy: PgProxy) -> None:
        from tests.web.test_live import register

        assert (await register(post, "alice", "10.0.0.1")).code == 201
        walk(runtime, "10.0.9.1", 5, NOW_S - 10 * DAY_S)
        await proxy.down()
        for path, body, text in (
                (DISQUALIFY, {"username": "alice"}, "Could not update user in database"),
                (REQUALIFY, {"username": "alice"}, "Could not update user in database"),
                (ERASE, {"username": "alice"}, "Could not delete user from database"),
                (PURGE, {"unregistered_older_than_days": 1},
                 "Could not purge devices from database")):
            reply = await admin(post, path, body)
            assert (reply.code, json_of(reply)) == (500, {"error": text})
        await proxy.up()
        assert runtime.state.user("alice") is not None
        assert mac_of("10.0.9.1") in runtime.state.tracks
        assert db.query("SELECT nickname, disqualified FROM users") == [("alice", False)]


# -- on the real server's edge -------------------------------------------------------------------


class TestTheEdge:
    """The runtime's own HTTP server: the admin pair is checked on the headers."""

    @pytest.fixture
    def overrides(self) -> dict[str, Any]:
        return {"server.port": free_port()}

    @pytest.fixture
    def port(self, runtime: Runtime) -> int:
        runtime.listen()
        return int(runtime.settings.server.port)

    @pytest.mark.gen_test(timeout=30)
    @pytest.mark.parametrize("pair", [API_AUTH, MONITOR_AUTH, None])
    async def test_another_pair_is_401_before_the_body(self, port: int, pair: Any) -> None:
        continued, reply = await rawhttp.post_after_continue(
            port, ERASE, b'{"username": "alice"}', auth=pair)
        assert not continued  # refused on the headers: the body was never asked for
        assert (reply.status, reply.json()) == (401, {"error": "Unauthorized"})
        assert reply.headers["www-authenticate"] == 'Basic realm="TYS"'

    @pytest.mark.gen_test(timeout=30)
    async def test_admin_bodies_are_capped_at_64_kib(self, port: int) -> None:
        body = b'{"by": "user"}'
        exact = body + b" " * (LIVE_MAX_BODY_BYTES - len(body))
        reply = await rawhttp.exchange(port, rawhttp.request_bytes(
            "POST", EXPORT, exact, auth=ADMIN_AUTH))
        assert reply.status == 200
        assert reply.headers["content-type"] == "text/csv; charset=utf-8"
        reply = await rawhttp.exchange(port, rawhttp.request_bytes(
            "POST", EXPORT, exact + b" ", auth=ADMIN_AUTH))
        assert (reply.status, reply.json()) == (413, {"error": TOO_LARGE})
