"""/live/* against real fake-CMX hosts: fail-over, 404 vs 503, hashing, a free loop."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from tests.conftest import CMX_AUTH, json_of
from tools.cmx_sim import fake_cmx
from tools.cmx_sim.fake_cmx import FakeCmx

V2_URL = "http://{host}/api/location/v2/clients?ipAddress={ip}"
V3_URL = "http://{host}/api/location/v3/clients?ipAddress={ip}"
IP = "10.20.30.40"
MAC = "aa:bb:cc:00:11:22"


class Hosts:
    """Fake CMX hosts started for one test; `hosts` is the cmx.hosts list."""

    def __init__(self) -> None:
        self.fakes: list[FakeCmx] = []
        self.servers: list[Any] = []
        self.hosts: list[str] = []

    def add(self, fake: FakeCmx | None) -> FakeCmx | None:
        if fake is None:
            self.hosts.append(fake_cmx.refusing_host())
            return None
        server, host = fake_cmx.start(fake)
        self.fakes.append(fake)
        self.servers.append(server)
        self.hosts.append(host)
        return fake

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


def cmx_overrides(hosts: Hosts, url: str = V2_URL, **extra: Any) -> dict[str, Any]:
    return {"cmx.hosts": tuple(hosts.hosts), "cmx.ip2mac_url": url, "cmx.timeout_s": 0.5,
            "cmx.username": fake_cmx.USERNAME, "cmx.password": fake_cmx.PASSWORD, **extra}


@pytest.fixture
def hosts(io_loop: Any) -> Any:
    started = Hosts()
    yield started
    started.stop()


def knows(ip: str = IP, mac: str = MAC, **kwargs: Any) -> FakeCmx:
    return FakeCmx(clients={ip: mac}, **kwargs)


# Each scenario: the hosts in order (None = refusing), then the expected reply.
SCENARIOS = {
    "first_knows": ([knows(), knows(mac="aa:bb:cc:99:99:99")], 201, MAC),
    "refused_then_knows": ([None, knows()], 201, MAC),
    "500_then_knows": ([FakeCmx(status=500), knows()], 201, MAC),
    "garbage_then_knows": ([FakeCmx(status=200, body=b"<html>"), knows()], 201, MAC),
    "slow_then_knows": ([FakeCmx(delay_s=2.0), knows()], 201, MAC),
    "unknown_everywhere": ([FakeCmx(), FakeCmx()], 404, "Connect to #clus WiFi first"),
    "down_and_unknown": ([None, FakeCmx()], 404, "Connect to #clus WiFi first"),
    "all_down": ([None, FakeCmx(status=503)], 503, "Location service unavailable"),
    "wrong_password_only": ([knows(password="other")], 503, "Location service unavailable"),
}


@pytest.fixture(params=sorted(SCENARIOS))
def scenario(request: Any, hosts: Hosts) -> tuple[str, int, str]:
    fakes, status, expected = SCENARIOS[request.param]
    for fake in fakes:
        hosts.add(None if fake is None else FakeCmx(**{
            k: v for k, v in vars(fake).items()
            if k in ("clients", "username", "password", "delay_s", "status", "body")}))
    return request.param, status, expected


@pytest.fixture
def overrides(scenario: Any, hosts: Hosts) -> dict[str, Any]:
    return cmx_overrides(hosts)


@pytest.mark.gen_test(timeout=20)
async def test_register_fails_over_in_order(scenario: Any, hosts: Hosts, post: Any) -> None:
    name, status, expected = scenario
    reply = await post("/live/register_username", {"username": "Alice", "ip": IP})
    assert reply.code == status, name
    body = json_of(reply)
    if status == 201:
        assert body["mac"] == expected
        if name == "first_knows":
            assert hosts.fakes[1].requests == 0  # the first host that knows wins
    else:
        assert body == {"error": expected}
    ip_reply = await post("/live/ip_username", {"ip": IP})
    if status == 201:
        assert json_of(ip_reply) == {"ip": IP, "username": "Alice"}
    elif status == 404:
        assert ip_reply.code == 404
        assert json_of(ip_reply) == {"error": "Connect to #clus WiFi first"}
    else:
        assert ip_reply.code == 503
        assert json_of(ip_reply) == {"error": "Location service unavailable"}


class TestV3AndHashing:
    @pytest.fixture
    def overrides(self, hosts: Hosts) -> dict[str, Any]:
        hosts.add(FakeCmx(clients={IP: "00:00:2a:01:00:3f"}))
        return cmx_overrides(hosts, V3_URL, **{"cmx.mac_hash_key": "listening"})

    @pytest.mark.gen_test
    async def test_v3_mac_is_hashed_and_credited(self, hosts: Hosts, post: Any) -> None:
        reply = await post("/live/register_username", {"username": "Alice", "ip": IP})
        assert reply.code == 201
        assert json_of(reply)["mac"] == "00:00:a9:3e:a7:3a"
        start_ms = int((time.time() - 600) * 1000)
        walk = [{"notificationType": "movement", "deviceId": "00:00:a9:3e:a7:3a",
                 "floorId": 1, "locationCoordinate": {"x": 50.0 * i, "y": 0, "unit": "FEET"},
                 "moveDistanceInFt": 50.0, "timestamp": start_ms + 15_000 * i}
                for i in range(4)]
        await post("/notification", {"notifications": walk}, auth=CMX_AUTH)
        data = json_of(await post("/live/username_data", {"username": "Alice"}))
        assert data[0]["mac"] == "00:00:a9:3e:a7:3a"
        assert data[0]["total_kilometres"] == round(2 * 15.24 / 1000, 3)


class TestLoopKeepsServing:
    @pytest.fixture
    def overrides(self, hosts: Hosts) -> dict[str, Any]:
        hosts.add(FakeCmx(delay_s=60.0, clients={IP: MAC}))  # answers only after the timeout
        return cmx_overrides(hosts, **{"cmx.timeout_s": 3.0})

    @pytest.mark.gen_test(timeout=20)  # a hang guard, never a duration bound
    async def test_notifications_and_api_answer_while_cmx_times_out(
            self, hosts: Hosts, post: Any) -> None:
        slow = asyncio.ensure_future(
            post("/live/register_username", {"username": "Alice", "ip": IP}))
        while hosts.fakes[0].requests == 0:  # the fake offers no event for it: poll
            await asyncio.sleep(0.005)
        for _ in range(5):
            ok = await post("/notification", {"notifications": []}, auth=CMX_AUTH)
            assert ok.code == 200
            board = await post("/live/leaderboard", {})
            assert board.code == 200
        # Ten answers while the look-up was still waiting for CMX: the loop was free.
        assert not slow.done()
        reply = await slow
        assert reply.code == 503
