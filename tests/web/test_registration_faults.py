"""Registrations whose COMMIT answer is lost, and add_device races: the database decides.

Through Tornado's test server and a real PostgreSQL behind tests.support.pgproxy, which
cuts a connection at COMMIT (after the server committed, or before the COMMIT reached
it). Every test checks the reply, memory, and the `users` and `devices` tables.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.conftest import json_of
from tests.support.pgproxy import PgProxy
from tools import pg_admin

REGISTER = "/live/register_username"
EMAIL = "Alice@cmxtrackyoursteps.com"
ADDED = "Username added with device"
NOTHING_TO_DO = "Username already registered with that mac, nothing to do"


def mac_of(ip: str) -> str:
    """CMX test mode: a.b.c.d → 02:00:aa:bb:cc:dd."""
    return "02:00:" + ":".join(f"{int(octet):02x}" for octet in ip.split("."))


@pytest.fixture
def overrides(proxy: PgProxy) -> dict[str, Any]:
    return {"database.dsn": proxy.proxied_dsn(), "registration.max_devices_per_user": 2,
            "database.statement_timeout_s": 2.0, "database.connect_timeout_s": 1.0}


async def register(post: Any, username: str, ip: str, **extra: Any) -> Any:
    return await post(REGISTER, {"username": username, "ip": ip, **extra})


def stored(db: Any) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """(users, devices) rows, sorted."""
    return (db.query("SELECT email, nickname FROM users ORDER BY email"),
            db.query("SELECT mac::text, owner FROM devices ORDER BY mac"))


def remembered(runtime: Any) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Memory's users and devices in the form of stored()."""
    users = sorted((u.email, u.username) for u in runtime.state.users.values())
    devices = sorted((mac, u.email) for mac, u in runtime.state.owners.items())
    return users, devices


# -- item 1: a lost COMMIT answer -----------------------------------------------------


@pytest.mark.gen_test(timeout=30)
async def test_register_whose_commit_answer_is_lost_is_201_and_known_at_once(
        post: Any, runtime: Any, db: Any, proxy: PgProxy) -> None:
    proxy.cut_at_commit(delivered=True, after="INSERT INTO devices")
    reply = await register(post, "Alice", "10.1.2.3")
    assert proxy.commits_cut == 1
    assert reply.code == 201
    assert json_of(reply) == {"success": ADDED, "username": "Alice", "email": EMAIL,
                              "ip": "10.1.2.3", "mac": mac_of("10.1.2.3")}
    again = await register(post, "Alice", "10.1.2.3")
    assert again.code == 200
    assert json_of(again)["info"] == NOTHING_TO_DO
    data = await post("/live/username_data", {"username": "Alice"})
    assert data.code == 200
    assert [device["mac"] for device in json_of(data)] == [mac_of("10.1.2.3")]
    assert stored(db) == ([(EMAIL, "Alice")], [(mac_of("10.1.2.3"), EMAIL)])
    assert remembered(runtime) == stored(db)


@pytest.mark.gen_test(timeout=30)
async def test_register_whose_commit_never_arrived_is_written_once_and_201(
        post: Any, runtime: Any, db: Any, proxy: PgProxy) -> None:
    proxy.cut_at_commit(delivered=False, after="INSERT INTO devices")
    reply = await register(post, "Alice", "10.1.2.3")
    assert proxy.commits_cut == 1
    assert reply.code == 201
    assert json_of(reply)["success"] == ADDED
    assert stored(db) == ([(EMAIL, "Alice")], [(mac_of("10.1.2.3"), EMAIL)])
    assert remembered(runtime) == stored(db)


@pytest.mark.gen_test(timeout=30)
async def test_add_device_whose_commit_answer_is_lost_is_201_and_known_at_once(
        post: Any, runtime: Any, db: Any, proxy: PgProxy) -> None:
    assert (await register(post, "Alice", "10.1.2.3")).code == 201
    proxy.cut_at_commit(delivered=True, after="INSERT INTO devices")
    reply = await register(post, "alice", "10.1.2.4", add_device=True)
    assert proxy.commits_cut == 1
    assert reply.code == 201
    assert json_of(reply) == {"success": ADDED, "username": "Alice", "email": EMAIL,
                              "ip": "10.1.2.4", "mac": mac_of("10.1.2.4")}
    again = await register(post, "Alice", "10.1.2.4", add_device=True)
    assert again.code == 200
    assert json_of(again)["info"] == NOTHING_TO_DO
    data = await post("/live/username_data", {"username": "Alice"})
    assert [device["mac"] for device in json_of(data)] == [mac_of("10.1.2.3"),
                                                           mac_of("10.1.2.4")]
    assert stored(db) == ([(EMAIL, "Alice")],
                          [(mac_of("10.1.2.3"), EMAIL), (mac_of("10.1.2.4"), EMAIL)])
    assert remembered(runtime) == stored(db)


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("delivered", [True, False], ids=["committed", "not_committed"])
async def test_delete_whose_commit_answer_is_lost_answers_from_the_database(
        post: Any, runtime: Any, db: Any, proxy: PgProxy, delivered: bool) -> None:
    assert (await register(post, "Alice", "10.1.2.3")).code == 201
    proxy.cut_at_commit(delivered=delivered, after="DELETE FROM users")
    reply = await post("/live/delete_username", {"username": "Alice"})
    assert proxy.commits_cut == 1
    assert reply.code == 200
    assert json_of(reply) == {"success": "Username and associated devices deleted",
                              "username": "Alice", "email": EMAIL}
    assert stored(db) == ([], [])
    assert remembered(runtime) == stored(db)
    gone = await post("/live/username_data", {"username": "Alice"})
    assert gone.code == 404


@pytest.mark.gen_test(timeout=30)
async def test_lost_commit_with_the_database_gone_is_500_then_the_retry_is_known(
        post: Any, runtime: Any, db: Any, proxy: PgProxy) -> None:
    proxy.cut_at_commit(delivered=True, after="INSERT INTO devices", then_down=True)
    reply = await register(post, "Alice", "10.1.2.3")
    assert proxy.commits_cut == 1
    assert reply.code == 500
    assert json_of(reply) == {"error": "Database error adding user"}
    assert runtime.state.user("Alice") is None  # memory unchanged: nothing was confirmed
    await proxy.up()
    # The database did commit: the front-end's retry learns it instead of a 409.
    again = await register(post, "Alice", "10.1.2.3")
    assert again.code == 200
    assert json_of(again)["info"] == NOTHING_TO_DO
    assert (await post("/live/username_data", {"username": "Alice"})).code == 200
    assert stored(db) == ([(EMAIL, "Alice")], [(mac_of("10.1.2.3"), EMAIL)])
    assert remembered(runtime) == stored(db)


# -- item 2: the device limit holds in the database ------------------------------------


async def waiting_on_locks(db: Any, count: int) -> None:
    """Until `count` sessions of the test database wait for a lock."""
    while db.query("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                   " AND wait_event_type = 'Lock'") != [(count,)]:
        await asyncio.sleep(0.01)


@pytest.mark.gen_test(timeout=30)
async def test_concurrent_add_devices_past_the_limit_exactly_one_wins(
        post: Any, runtime: Any, db: Any) -> None:
    assert (await register(post, "Alice", "10.1.2.3")).code == 201  # 1 of 2 devices
    ips = ("10.1.2.4", "10.1.2.5", "10.1.2.6")
    # Alice's row locked by another session: all three requests reach the database
    # (each passed memory's check, 1 < 2) and wait there together, every time.
    with pg_admin.cursor(db.dsn, autocommit=False) as holder:
        holder.execute("SELECT 1 FROM users WHERE email = %s FOR UPDATE", (EMAIL,))
        racing = asyncio.gather(*(register(post, "Alice", ip, add_device=True) for ip in ips))
        await waiting_on_locks(db, len(ips))
    replies = await racing
    assert sorted(r.code for r in replies) == [201, 409, 409]
    for reply in replies:
        if reply.code == 409:
            assert json_of(reply) == {"error": "Maximum number of devices registered"}
    winner = ips[[r.code for r in replies].index(201)]
    assert stored(db) == ([(EMAIL, "Alice")],
                          sorted([(mac_of("10.1.2.3"), EMAIL), (mac_of(winner), EMAIL)]))
    assert remembered(runtime) == stored(db)
    user = runtime.state.user("Alice")
    assert user is not None and user.macs == [mac_of("10.1.2.3"), mac_of(winner)]
