"""The use cases called directly (no HTTP): domain results and refusals, real PostgreSQL.

CMX runs in test mode (a.b.c.d → MAC 02:00:aa:bb:cc:dd); each test builds its Service
over the runtime's state, store and CMX client with a clock it controls.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Iterator
from typing import Any

import orjson
import pytest

from tests.conftest import with_overrides
from tests.support.pgproxy import PgProxy
from tools.cmx_sim import fake_cmx
from tys_server.core.events import Batch, Movement
from tys_server.core.users import Profile
from tys_server.server import Runtime
from tys_server.service import (
    AliasTaken,
    DeviceNotRegistered,
    DeviceOwned,
    LimitReached,
    LocationUnavailable,
    NoDevices,
    NotOnWifi,
    Registration,
    Service,
    StorageFailed,
    UsernameTaken,
    UserNotFound,
)

NOW_S = dt.datetime(2026, 11, 18, 12, 0, tzinfo=dt.UTC).timestamp()  # noon: no day edge near
DAY_S = 86400
LEG_M = 15.24  # one 50 ft leg
EMAIL = "Alice@cmxtrackyoursteps.com"


def mac_of(ip: str) -> str:
    """CMX test mode: a.b.c.d → 02:00:aa:bb:cc:dd."""
    return "02:00:" + ":".join(f"{int(octet):02x}" for octet in ip.split("."))


def service_of(runtime: Runtime) -> Service:
    """A service over the runtime's parts, at NOW_S."""
    assert runtime.store is not None and runtime.cmx is not None
    return Service(runtime.settings, runtime.state, runtime.store, runtime.cmx,
                   clock=lambda: NOW_S)


def walk(runtime: Runtime, mac: str, legs: int, start_s: float, y_ft: float = 0.0) -> float:
    """A straight walk of `legs` credited 50 ft legs from start_s; the metres credited."""
    moves = [Movement(mac, 1, 50.0 * i, y_ft, 50.0, start_s + 15 * i) for i in range(legs + 2)]
    runtime.state.ingest(Batch(list(moves), len(moves), 0, 0), NOW_S)
    return legs * LEG_M


@pytest.fixture
def service(runtime: Runtime) -> Service:
    return service_of(runtime)


@contextlib.asynccontextmanager
async def running(settings: Any, **overrides: Any) -> AsyncIterator[Runtime]:
    """A runtime started with these settings, stopped afterwards."""
    runtime = Runtime(with_overrides(settings, **overrides))
    await runtime.start()
    try:
        yield runtime
    finally:
        await runtime.stop()


# -- register ------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_register_creates_the_user_with_its_device(service: Service, db: Any) -> None:
    done = await service.register("Alice", "10.1.2.3")
    assert done == Registration(True, "Alice", EMAIL, "10.1.2.3", "02:00:0a:01:02:03")
    user = service.state.user("alice")
    assert user is not None and user.macs == ["02:00:0a:01:02:03"]
    assert db.query("SELECT email, nickname FROM users") == [(EMAIL, "Alice")]
    assert db.query("SELECT mac::text, owner FROM devices") == [("02:00:0a:01:02:03", EMAIL)]


@pytest.mark.gen_test
async def test_same_device_again_is_already_registered(service: Service, db: Any) -> None:
    await service.register("Alice", "10.1.2.3")
    again = await service.register("ALICE", "10.1.2.3")
    assert again == Registration(False, "Alice", EMAIL, "10.1.2.3", "02:00:0a:01:02:03")
    assert db.query("SELECT count(*) FROM users") == [(1,)]
    assert db.query("SELECT count(*) FROM devices") == [(1,)]


@pytest.mark.gen_test
async def test_device_of_another_user_is_device_owned(service: Service, db: Any) -> None:
    await service.register("Alice", "10.1.2.3")
    with pytest.raises(DeviceOwned):
        await service.register("Bob", "10.1.2.3")
    assert service.state.user("Bob") is None
    assert db.query("SELECT nickname FROM users") == [("Alice",)]


@pytest.mark.gen_test
async def test_taken_username_is_username_taken(service: Service, db: Any) -> None:
    await service.register("Alice", "10.1.2.3")
    with pytest.raises(UsernameTaken):
        await service.register("aLiCe", "10.1.2.4")
    assert service.state.owner(mac_of("10.1.2.4")) is None
    assert db.query("SELECT count(*) FROM devices") == [(1,)]


@pytest.mark.gen_test
@pytest.mark.parametrize("overrides", [{"registration.max_devices_per_user": 2}])
async def test_add_device_up_to_the_limit_then_limit_reached(overrides: Any, service: Service,
                                                             db: Any) -> None:
    await service.register("Alice", "10.1.2.3")
    second = await service.register("alice", "10.1.2.4", add_device=True)
    assert second == Registration(True, "Alice", EMAIL, "10.1.2.4", "02:00:0a:01:02:04")
    with pytest.raises(LimitReached):
        await service.register("Alice", "10.1.2.5", add_device=True)
    user = service.state.user("Alice")
    assert user is not None and user.macs == [mac_of("10.1.2.3"), mac_of("10.1.2.4")]
    assert db.query("SELECT count(*) FROM devices") == [(2,)]


@pytest.mark.gen_test
async def test_a_refusal_for_rows_memory_lacks_teaches_memory_the_rows(service: Service,
                                                                       db: Any) -> None:
    # Rows memory never saw (a registration whose COMMIT answer was lost, say).
    db.query("INSERT INTO users (email, nickname) VALUES (%s, 'Alice'), "
             "('Carol@cmxtrackyoursteps.com', 'Carol')", (EMAIL,))
    db.query("INSERT INTO devices (mac, owner) VALUES (%s, %s), (%s, %s)",
             (mac_of("10.1.2.3"), EMAIL, mac_of("10.1.2.9"), "Carol@cmxtrackyoursteps.com"))
    again = await service.register("alice", "10.1.2.3")
    assert again == Registration(False, "Alice", EMAIL, "10.1.2.3", mac_of("10.1.2.3"))
    with pytest.raises(UsernameTaken):
        await service.register("carol", "10.1.2.7")
    with pytest.raises(DeviceOwned):
        await service.register("Dave", "10.1.2.9")
    known = sorted((u.username, tuple(u.macs)) for u in service.state.users.values())
    assert known == [("Alice", (mac_of("10.1.2.3"),)), ("Carol", (mac_of("10.1.2.9"),))]
    assert db.query("SELECT count(*) FROM users") == [(2,)]
    assert db.query("SELECT count(*) FROM devices") == [(2,)]


@pytest.mark.gen_test
@pytest.mark.parametrize("overrides", [{"registration.max_devices_per_user": 2}])
async def test_device_limit_is_counted_in_the_database_not_only_in_memory(
        overrides: Any, service: Service, db: Any) -> None:
    await service.register("Alice", "10.1.2.3")
    # A second device memory has not heard of yet: the database counts it.
    db.query("INSERT INTO devices (mac, owner) VALUES (%s, %s)", (mac_of("10.1.2.4"), EMAIL))
    with pytest.raises(LimitReached):
        await service.register("Alice", "10.1.2.5", add_device=True)
    user = service.state.user("Alice")
    assert user is not None and user.macs == [mac_of("10.1.2.3"), mac_of("10.1.2.4")]
    assert db.query("SELECT mac::text FROM devices ORDER BY mac") == \
        [(mac_of("10.1.2.3"),), (mac_of("10.1.2.4"),)]


@pytest.mark.gen_test
async def test_ip_outside_the_wifi_is_not_on_wifi(service: Service) -> None:
    with pytest.raises(NotOnWifi):
        await service.register("Alice", "8.8.8.8")
    assert not service.state.users


# -- delete --------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_delete_forgets_the_user_and_keeps_the_distance(runtime: Runtime,
                                                              service: Service,
                                                              db: Any) -> None:
    await service.register("Alice", "10.1.2.3")
    credited_m = walk(runtime, mac_of("10.1.2.3"), 4, NOW_S - 600)
    user = await service.delete("alice")
    assert (user.username, user.email) == ("Alice", EMAIL)
    assert service.state.user("Alice") is None
    assert db.query("SELECT count(*) FROM users") == [(0,)]
    assert db.query("SELECT count(*) FROM devices") == [(0,)]
    assert service.state.total_m(mac_of("10.1.2.3")) == pytest.approx(credited_m)
    with pytest.raises(UserNotFound):
        await service.delete("Alice")


# -- dashboard -----------------------------------------------------------------------


@pytest.mark.gen_test
async def test_dashboard_of_an_unknown_user_is_user_not_found(service: Service) -> None:
    with pytest.raises(UserNotFound):
        service.dashboard("ghost", 5)


@pytest.mark.clock
@pytest.mark.gen_test
async def test_dashboard_reads_the_last_days_of_each_device(runtime: Runtime,
                                                            service: Service) -> None:
    await service.register("Alice", "10.0.0.1")
    walk(runtime, mac_of("10.0.0.1"), 3, NOW_S - 2 * DAY_S)
    walk(runtime, mac_of("10.0.0.1"), 5, NOW_S - 1800, y_ft=500.0)
    (device,) = orjson.loads(service.dashboard("alice", 2))
    assert [d["date"] for d in device["distance_day"]] == ["11/18/2026"]  # 2 days: not 11/16
    assert device["total_steps"] == round(8 * 50 / 2.5)
    assert (device["username"], device["place"]) == ("Alice", 1)
    (longer,) = orjson.loads(service.dashboard("Alice", 3))
    assert [d["date"] for d in longer["distance_day"]] == ["11/16/2026", "11/18/2026"]


@pytest.fixture
def legacy_runtime(io_loop: Any, settings: Any, db: Any) -> Iterator[Runtime]:
    """A runtime loaded from a database holding a user without any device."""
    boot = Runtime(settings)
    io_loop.run_sync(boot.start)  # the schema
    io_loop.run_sync(boot.stop)
    db.query("INSERT INTO users (email, nickname, admin) VALUES "
             "('legacy@cmxtrackyoursteps.com', 'legacy', false)")
    runtime = Runtime(settings)
    io_loop.run_sync(runtime.start)
    yield runtime
    io_loop.run_sync(runtime.stop)


@pytest.mark.gen_test
async def test_dashboard_of_a_user_without_devices_is_no_devices(
        legacy_runtime: Runtime) -> None:
    service = service_of(legacy_runtime)
    assert service.state.user("Legacy") is not None
    with pytest.raises(NoDevices):
        service.dashboard("Legacy", 5)


# -- leaderboard ---------------------------------------------------------------------


@pytest.mark.clock
@pytest.mark.gen_test
async def test_leaderboard_of_one_day_and_overall(runtime: Runtime, service: Service) -> None:
    await service.register("alice", "10.0.0.1")
    await service.register("bob", "10.0.0.2")
    walk(runtime, mac_of("10.0.0.1"), 20, NOW_S - 2 * DAY_S)
    walk(runtime, mac_of("10.0.0.2"), 3, NOW_S - 600)
    today = dt.date(2026, 11, 18).toordinal()
    day = orjson.loads(service.leaderboard(5, today - 2))
    assert [(e["place"], e["username"]) for e in day["leaders"]] == [(1, "alice")]
    assert day["total_kilometres"] == round(20 * LEG_M / 1000, 1)
    assert [e["username"] for e in orjson.loads(service.leaderboard(5, today))["leaders"]] \
        == ["bob"]
    overall = orjson.loads(service.leaderboard(1))
    assert [e["username"] for e in overall["leaders"]] == ["alice"]
    assert overall["total_kilometres"] == round(23 * LEG_M / 1000, 1)
    empty = orjson.loads(service.leaderboard(5, today - 1))
    assert empty == {"leaders": [], "total_kilometres": 0.0, "total_miles": 0.0,
                     "error": "No data to display for the leader board"}


# -- ip_username ---------------------------------------------------------------------


@pytest.mark.gen_test
async def test_ip_username_names_the_owner_or_refuses(service: Service) -> None:
    await service.register("Alice", "10.1.2.3")
    assert await service.ip_username("10.1.2.3") == "Alice"
    with pytest.raises(DeviceNotRegistered):
        await service.ip_username("10.1.2.4")
    with pytest.raises(NotOnWifi):
        await service.ip_username("1.1.1.1")


@pytest.mark.gen_test(timeout=30)
async def test_no_cmx_host_answering_is_location_unavailable(settings: Any) -> None:
    async with running(settings, **{"cmx.hosts": (fake_cmx.refusing_host(),),
                                    "cmx.timeout_s": 0.5}) as runtime:
        service = service_of(runtime)
        with pytest.raises(LocationUnavailable):
            await service.ip_username("10.1.2.3")
        with pytest.raises(LocationUnavailable):
            await service.register("Alice", "10.1.2.3")
        assert not service.state.users


# -- storage failures ----------------------------------------------------------------


@pytest.mark.gen_test(timeout=30)
async def test_database_gone_is_storage_failed_and_memory_unchanged(
        settings: Any, proxy: PgProxy, db: Any) -> None:
    async with running(settings, **{"database.dsn": proxy.proxied_dsn(),
                                    "database.statement_timeout_s": 1.0,
                                    "database.connect_timeout_s": 1.0}) as runtime:
        service = service_of(runtime)
        await service.register("Keep", "10.0.0.9")
        await proxy.down()
        with pytest.raises(StorageFailed):
            await service.register("Alice", "10.0.0.1")
        with pytest.raises(StorageFailed):
            await service.delete("Keep")
        assert service.state.user("Alice") is None
        assert service.state.owner(mac_of("10.0.0.1")) is None
        assert service.state.user("Keep") is not None
        await proxy.up()
        assert (await service.register("Alice", "10.0.0.1")).added
        assert db.query("SELECT nickname FROM users ORDER BY nickname") == \
            [("Alice",), ("Keep",)]


# -- teams, aliases, hidden, disqualified (DESIGN 15) ------------------------------------

PROFILE_SQL = ("SELECT nickname, team, extract(epoch FROM team_since)::float8, alias, hidden, "
               "disqualified FROM users ORDER BY nickname")


@pytest.fixture
def overrides() -> dict[str, Any]:
    return {"leaderboard.refresh_interval_s": 0.0}  # every board request sees every change


def board(service: Service, **kwargs: Any) -> Any:
    return orjson.loads(service.leaderboard(10, **kwargs))


@pytest.mark.gen_test
async def test_register_with_a_team_stores_it_and_when_it_was_joined(service: Service,
                                                                       db: Any) -> None:
    done = await service.register("Alice", "10.1.2.3", team="Night Owls")
    assert done == Registration(True, "Alice", EMAIL, "10.1.2.3", mac_of("10.1.2.3"))
    assert db.query(PROFILE_SQL) == [("Alice", "Night Owls", NOW_S, None, False, False)]
    user = service.state.user("alice")
    assert user is not None and user.profile == Profile("Night Owls", NOW_S)


@pytest.mark.gen_test
async def test_profile_sets_what_is_given_and_null_clears_a_name(service: Service,
                                                                 db: Any) -> None:
    await service.register("Alice", "10.1.2.3", team="Owls")
    user = await service.profile("ALICE", {"alias": "Speedy"})
    assert user.profile == Profile("Owls", NOW_S, "Speedy", False, False)
    await service.profile("alice", {"team": "Larks", "hidden": True})
    await service.profile("alice", {"alias": None})
    assert db.query(PROFILE_SQL) == [("Alice", "Larks", NOW_S, None, True, False)]
    assert service.state.user("alice").profile == Profile("Larks", NOW_S, None, True, False)
    assert service.state.name_owner("speedy") is None  # the old alias is free again


@pytest.mark.gen_test
async def test_an_alias_may_not_be_another_users_name(service: Service, db: Any) -> None:
    await service.register("Alice", "10.1.2.3")
    await service.register("Bob", "10.1.2.4")
    await service.profile("bob", {"alias": "Robert"})
    before = db.query(PROFILE_SQL)
    for alias in ("BOB", "robert", "ROBERT"):
        with pytest.raises(AliasTaken):
            await service.profile("alice", {"alias": alias, "team": "Owls"})
    assert db.query(PROFILE_SQL) == before  # nothing changed, the team neither
    assert service.state.user("alice").profile == Profile()
    await service.profile("alice", {"alias": "alice"})  # one's own username, any case
    await service.profile("bob", {"alias": "ROBERT"})  # one's own alias in another case
    with pytest.raises(UsernameTaken):
        await service.register("robert", "10.1.2.5")  # a new username may not be an alias
    assert service.state.user("robert") is None


@pytest.mark.gen_test
async def test_an_alias_only_the_database_knows_is_refused(service: Service, db: Any) -> None:
    await service.register("Alice", "10.1.2.3")
    db.query("INSERT INTO users (email, nickname, alias) VALUES ('c@x.org', 'Carol', 'Cee')")
    with pytest.raises(AliasTaken):
        await service.profile("alice", {"alias": "CEE"})
    with pytest.raises(AliasTaken):
        await service.profile("alice", {"alias": "carol"})
    with pytest.raises(UsernameTaken):
        await service.register("cee", "10.1.2.4")
    assert service.state.user("alice").alias is None
    assert db.query("SELECT count(*) FROM users WHERE alias IS NOT NULL") == [(1,)]


@pytest.mark.gen_test
async def test_concurrent_claims_on_one_name_end_with_one_holder(service: Service,
                                                                 db: Any) -> None:
    for index, name in enumerate(("Alice", "Bob", "Carol")):
        await service.register(name, f"10.1.2.{index + 1}")
    # Each passes memory's check before the others commit: the database decides.
    results = await asyncio.gather(
        service.profile("alice", {"alias": "Zed"}), service.profile("bob", {"alias": "ZED"}),
        service.register("zed", "10.1.2.9"), service.profile("carol", {"alias": "zed"}),
        return_exceptions=True)
    refused = [r for r in results if isinstance(r, AliasTaken | UsernameTaken)]
    assert len(refused) == 3, results
    holders = db.query("SELECT nickname FROM users WHERE lower(alias) = 'zed' "
                       "OR lower(nickname) = 'zed'")
    assert len(holders) == 1
    named = [u.username for u in service.state.users.values()
             if "zed" in (u.username.lower(), (u.alias or "").lower())]
    assert named == [holders[0][0]]


@pytest.mark.gen_test
async def test_profile_of_an_unknown_user_is_user_not_found(service: Service) -> None:
    with pytest.raises(UserNotFound):
        await service.profile("ghost", {"hidden": True})
    with pytest.raises(UserNotFound):
        await service.set_disqualified("ghost", True)


@pytest.mark.gen_test
async def test_boards_show_the_alias_and_leave_out_hidden_users(runtime: Runtime,
                                                                service: Service) -> None:
    await service.register("alice", "10.0.0.1", team="Owls")
    await service.register("bob", "10.0.0.2", team="owls")
    await service.register("carol", "10.0.0.3", team="Larks")
    walk(runtime, mac_of("10.0.0.1"), 8, NOW_S - 900)
    walk(runtime, mac_of("10.0.0.2"), 4, NOW_S - 900, y_ft=300.0)
    walk(runtime, mac_of("10.0.0.3"), 10, NOW_S - 900, y_ft=600.0)
    await service.profile("alice", {"alias": "Speedy"})
    await service.profile("carol", {"hidden": True})
    users = board(service)
    assert [(e["place"], e["username"]) for e in users["leaders"]] == [(1, "Speedy"), (2, "bob")]
    assert users["total_kilometres"] == round(22 * LEG_M / 1000, 1)  # carol walked: counted
    teams = board(service, by="team")
    assert teams["leaders"] == [{"place": 1, "team": "Owls", "members": 2,
                                 "kilometres": round(12 * LEG_M / 1000, 1),
                                 "miles": round(12 * LEG_M / 1609.344, 1),
                                 "steps": round(12 * 50 / 2.5),
                                 "average_kilometres": round(6 * LEG_M / 1000, 1)}]
    assert teams["total_kilometres"] == users["total_kilometres"]
    (alice,) = orjson.loads(service.dashboard("alice", 1))
    (carol,) = orjson.loads(service.dashboard("carol", 1))
    assert (alice["username"], alice["place"]) == ("alice", 1)  # the real name, to its owner
    assert (carol["username"], carol["place"]) == ("carol", None)


@pytest.mark.clock
@pytest.mark.gen_test
async def test_disqualified_users_leave_boards_and_totals_until_requalified(
        runtime: Runtime, service: Service, db: Any) -> None:
    await service.register("alice", "10.0.0.1", team="Owls")
    await service.register("cheat", "10.0.0.2", team="Owls")
    walk(runtime, mac_of("10.0.0.1"), 2, NOW_S - 900)
    walk(runtime, mac_of("10.0.0.2"), 30, NOW_S - 900, y_ft=300.0)
    today = dt.date(2026, 11, 18).toordinal()
    user = await service.set_disqualified("CHEAT", True)
    assert user.disqualified and db.query(
        "SELECT nickname FROM users WHERE disqualified") == [("cheat",)]
    for date in (None, today):
        users, teams = board(service, ordinal=date), board(service, ordinal=date, by="team")
        assert [e["username"] for e in users["leaders"]] == ["alice"]
        assert users["total_kilometres"] == teams["total_kilometres"] == \
            round(2 * LEG_M / 1000, 1)
        assert [(e["team"], e["members"]) for e in teams["leaders"]] == [("Owls", 1)]
    (device,) = orjson.loads(service.dashboard("cheat", 1))
    assert device["place"] is None
    assert device["total_kilometres"] == round(30 * LEG_M / 1000, 3)  # the data stays
    await service.set_disqualified("cheat", False)
    assert [e["username"] for e in board(service)["leaders"]] == ["cheat", "alice"]
    assert db.query("SELECT count(*) FROM users WHERE disqualified") == [(0,)]


@pytest.mark.clock
@pytest.mark.gen_test
async def test_company_and_day_boards_rank_by_average_on_request(runtime: Runtime,
                                                                  service: Service) -> None:
    await service.register("a@big.example", "10.0.0.1")
    await service.register("b@BIG.example", "10.0.0.2")
    await service.register("c@small.example", "10.0.0.3")
    walk(runtime, mac_of("10.0.0.1"), 6, NOW_S - 2 * DAY_S)
    walk(runtime, mac_of("10.0.0.2"), 2, NOW_S - 900, y_ft=300.0)
    walk(runtime, mac_of("10.0.0.3"), 5, NOW_S - 900, y_ft=600.0)
    overall = board(service, by="domain")
    assert [(e["domain"], e["members"]) for e in overall["leaders"]] == \
        [("big.example", 2), ("small.example", 1)]
    average = board(service, by="domain", rank="average")
    assert [e["domain"] for e in average["leaders"]] == ["small.example", "big.example"]
    today = board(service, by="domain", ordinal=dt.date(2026, 11, 18).toordinal())
    assert [(e["domain"], e["kilometres"]) for e in today["leaders"]] == \
        [("small.example", round(5 * LEG_M / 1000, 1)), ("big.example", round(2 * LEG_M / 1000, 1))]
    assert board(service, rank="average") == board(service)  # users rank by total anyway


@pytest.mark.gen_test(timeout=30)
async def test_profile_with_the_database_gone_is_storage_failed_and_changes_nothing(
        settings: Any, proxy: PgProxy) -> None:
    async with running(settings, **{"database.dsn": proxy.proxied_dsn(),
                                    "database.statement_timeout_s": 1.0,
                                    "database.connect_timeout_s": 1.0}) as runtime:
        service = service_of(runtime)
        await service.register("Keep", "10.0.0.9", team="Owls")
        await proxy.down()
        with pytest.raises(StorageFailed):
            await service.profile("keep", {"team": "Larks", "alias": "K"})
        with pytest.raises(StorageFailed):
            await service.set_disqualified("keep", True)
        assert service.state.user("keep").profile == Profile("Owls", NOW_S)
        assert service.state.name_owner("K") is None


@pytest.mark.gen_test(timeout=30)
async def test_a_restart_loads_every_profile_field(settings: Any, db: Any) -> None:
    async with running(settings) as first:
        service = service_of(first)
        await service.register("Alice", "10.0.0.1", team="Owls")
        await service.profile("alice", {"alias": "Ace", "hidden": True})
        await service.set_disqualified("alice", True)
    async with running(settings) as second:
        user = second.state.user("alice")
        assert user is not None
        assert user.profile == Profile("Owls", NOW_S, "Ace", True, True)
        assert second.state.name_owner("ace") is user
