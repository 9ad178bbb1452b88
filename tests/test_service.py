"""The use cases called directly (no HTTP): domain results and refusals, real PostgreSQL.

CMX runs in test mode (a.b.c.d → MAC 02:00:aa:bb:cc:dd); each test builds its Service
over the runtime's state, store and CMX client with a clock it controls.
"""

from __future__ import annotations

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
from tys_server.server import Runtime
from tys_server.service import (
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
