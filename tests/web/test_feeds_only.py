"""A site without CMX: the whole front-end flow on a Spaces-only and a Meraki-only config.

Positions and IP sightings come through the real fakes of the simulator (the fake Firehose
stream, Meraki's poster) into a started Runtime with ``cmx.hosts: []``; the front-end
then registers by IP, reads the dashboard, the leaderboard and ip_username over HTTP.
Also here: a sighting answers a registration before any CMX host is asked.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest

from tests.conftest import json_of, with_overrides
from tests.support import rawhttp
from tests.support.procserver import free_port
from tests.web.test_live_cmx import Hosts, cmx_overrides
from tools.cmx_sim import fake_firehose, meraki_poster
from tools.cmx_sim.fake_cmx import FakeCmx
from tools.cmx_sim.fake_firehose import FakeFirehose
from tools.cmx_sim.meraki_poster import MerakiPoster, Sighting
from tys_server.core.macs import hash_mac
from tys_server.core.units import M_PER_FT
from tys_server.server import Runtime

KEY = "listening"  # cmx.mac_hash_key: both feeds send raw MACs, stored hashed
RAW_MAC = "00:52:bf:74:0b:01"
IP = "10.20.0.5"
SECRET, VALIDATOR = "meraki s3cret", "validator-6f1e"
LEG_FT = 60.0  # above the gate (50 ft): every fix of the walk reaches the filter
POINTS = 10  # a straight walk of n points credits n - 2 legs (the last one is pending)
WALKED_M = (POINTS - 2) * LEG_FT * M_PER_FT
NOT_ON_WIFI = {"error": "Connect to #clus WiFi first"}
gen_test = pytest.mark.gen_test(timeout=30)  # a hang guard, never a duration bound


async def until(predicate: Callable[[], bool]) -> None:
    """The consumer applies lines in its own callbacks, with no event to await: poll."""
    while not predicate():
        await asyncio.sleep(0.005)


class SpacesFeed:
    """Walks sent as DEVICE_LOCATION_UPDATE lines of the fake Firehose stream."""

    def __init__(self, fake: FakeFirehose, runtime: Runtime) -> None:
        self.fake = fake
        self.runtime = runtime

    async def walk(self, raw_mac: str, ip: str, start_s: float, points: int = POINTS) -> None:
        """points fixes LEG_FT apart on a line, 15 s apart, from start_s; applied on return."""
        await self.fake.wait_for(lambda fake: fake.open_streams == 1)  # live only: connected
        records = [fake_firehose.location_update(
            raw_mac, 1, 10.0 + LEG_FT * i, 20.0, record_ms=int((start_s + 15 * i) * 1000),
            ip=ip) for i in range(points)]
        self.fake.push(*records)
        consumer = self.runtime.firehose
        assert consumer is not None
        await until(lambda: consumer.cursor_ms == records[-1]["recordTimestamp"])


class MerakiFeed:
    """Walks sent as one Scanning API v3 POST of the poster, as Meraki's cloud does."""

    def __init__(self, url: str) -> None:
        self.poster = MerakiPoster(url, SECRET)

    async def walk(self, raw_mac: str, ip: str, start_s: float, points: int = POINTS) -> None:
        for i in range(points):
            self.poster.add(Sighting(raw_mac, ip, 1, 10.0 + LEG_FT * i, 20.0, start_s + 15 * i))
        replies = await self.poster.flush(start_s + 15 * points)
        assert [status for status, _ in replies] == [200]  # applied with the answer


SPACES_ONLY = {"feeds.cmx.enabled": False, "feeds.spaces_firehose.enabled": True,
               "feeds.spaces_firehose.api_key": fake_firehose.API_KEY}
MERAKI_ONLY = {"feeds.cmx.enabled": False, "feeds.meraki.enabled": True,
               "feeds.meraki.secret": SECRET, "feeds.meraki.validator": VALIDATOR}


@pytest.fixture
def firehose(io_loop: Any) -> Iterator[tuple[FakeFirehose, str]]:
    fake = FakeFirehose()
    server, url = fake_firehose.start(fake)
    yield fake, url
    server.stop()
    io_loop.run_sync(server.close_all_connections)


@pytest.fixture(params=["spaces", "meraki"])
def site(request: Any) -> str:
    return str(request.param)


@pytest.fixture
def overrides(site: str, firehose: tuple[FakeFirehose, str]) -> dict[str, Any]:
    only = {**SPACES_ONLY, "feeds.spaces_firehose.url": firehose[1]} if site == "spaces" \
        else MERAKI_ONLY
    return {"cmx.hosts": (), "cmx.mac_hash_key": KEY, **only}


@pytest.fixture
def feed(site: str, firehose: tuple[FakeFirehose, str], runtime: Runtime, io_loop: Any,
         base_url: str, http_server: Any) -> Iterator[SpacesFeed | MerakiFeed]:
    if site == "spaces":
        yield SpacesFeed(firehose[0], runtime)
        return
    meraki = MerakiFeed(base_url + "/meraki")
    yield meraki
    io_loop.run_sync(meraki.poster.aclose)


@gen_test
async def test_the_whole_front_end_flow_works_without_cmx(site: str, feed: Any, post: Any,
                                                          runtime: Runtime) -> None:
    await feed.walk(RAW_MAC, IP, time.time() - 600)
    mac = hash_mac(RAW_MAC, KEY)

    registered = await post("/live/register_username", {"username": "Ann", "ip": IP})
    assert registered.code == 201
    assert json_of(registered) == {"success": "Username added with device", "username": "Ann",
                                   "email": "Ann@cmxtrackyoursteps.com", "ip": IP, "mac": mac}
    again = await post("/live/register_username", {"username": "Ann", "ip": IP})
    assert (again.code, json_of(again)["info"]) == \
        (200, "Username already registered with that mac, nothing to do")

    dashboard = json_of(await post("/live/username_data", {"username": "Ann"}))
    assert [device["mac"] for device in dashboard] == [mac]
    assert dashboard[0]["total_kilometres"] == pytest.approx(round(WALKED_M / 1000, 3))
    assert dashboard[0]["place"] == 1

    board = json_of(await post("/live/leaderboard", {}))
    assert [(leader["username"], leader["place"]) for leader in board["leaders"]] == [("Ann", 1)]
    assert board["leaders"][0]["kilometres"] == round(WALKED_M / 1000, 1)

    assert json_of(await post("/live/ip_username", {"ip": IP})) == {"ip": IP, "username": "Ann"}

    health = await post("/healthz", method="GET", auth=None)
    assert health.code == 200
    assert json_of(health)["feeds"] == (
        {"spaces_firehose": "connected"} if site == "spaces" else {"meraki": "ok"})


@gen_test
async def test_an_ip_no_feed_saw_is_not_on_the_wifi_with_no_cmx_host(
        site: str, feed: Any, post: Any) -> None:
    await feed.walk(RAW_MAC, IP, time.time() - 600, points=1)
    for ip in ("10.20.0.99", "8.8.8.8"):  # never seen; public (never looked up)
        reply = await post("/live/register_username", {"username": "Bob", "ip": ip})
        assert (reply.code, json_of(reply)) == (404, NOT_ON_WIFI)  # not 503: nobody failed
        reply = await post("/live/ip_username", {"ip": ip})
        assert (reply.code, json_of(reply)) == (404, NOT_ON_WIFI)
    unknown = await post("/live/ip_username", {"ip": IP})  # seen, but nobody registered it
    assert (unknown.code, json_of(unknown)) == (404, {"error": "Device not registered"})
    assert (await post("/notification", {"notifications": []})).code == 404  # CMX is off


@gen_test
async def test_a_sighting_older_than_the_ttl_answers_nothing(site: str, feed: Any, post: Any,
                                                             runtime: Runtime) -> None:
    ttl_s = runtime.settings.lookup.observed_ttl_s
    await feed.walk(RAW_MAC, IP, time.time() - ttl_s - 600, points=1)
    reply = await post("/live/register_username", {"username": "Cy", "ip": IP})
    assert (reply.code, json_of(reply)) == (404, NOT_ON_WIFI)


class TestLookupOrder:
    """Meraki and CMX together: a fresh sighting answers; CMX is asked only without one."""

    @pytest.fixture
    def site(self) -> str:
        return "meraki"

    @pytest.fixture
    def hosts(self, io_loop: Any) -> Iterator[Hosts]:
        started = Hosts()
        started.add(FakeCmx(clients={IP: RAW_MAC, "10.20.0.6": "00:52:bf:74:0b:02"}))
        yield started
        started.stop()

    @pytest.fixture
    def overrides(self, hosts: Hosts) -> dict[str, Any]:
        return cmx_overrides(hosts, **MERAKI_ONLY, **{"cmx.mac_hash_key": KEY})

    @gen_test
    async def test_a_sighting_answers_before_any_cmx_host(self, feed: Any, hosts: Hosts,
                                                          post: Any) -> None:
        await feed.walk(RAW_MAC, IP, time.time() - 600, points=1)
        seen = await post("/live/register_username", {"username": "Ann", "ip": IP})
        assert (seen.code, json_of(seen)["mac"]) == (201, hash_mac(RAW_MAC, KEY))
        assert hosts.fakes[0].requests == 0  # answered from memory, no network call
        unseen = await post("/live/register_username", {"username": "Bob", "ip": "10.20.0.6"})
        assert (unseen.code, json_of(unseen)["mac"]) == \
            (201, hash_mac("00:52:bf:74:0b:02", KEY))
        assert hosts.fakes[0].seen_ips == ["10.20.0.6"]


@gen_test
async def test_a_restart_resumes_the_stream_from_the_cursor_the_final_flush_stored(
        firehose: tuple[FakeFirehose, str], settings: Any, db: Any) -> None:
    fake, url = firehose
    config = with_overrides(settings, **{"cmx.hosts": (), "cmx.mac_hash_key": KEY,
                                         **SPACES_ONLY, "feeds.spaces_firehose.url": url})
    first = Runtime(config)
    await first.start()
    await SpacesFeed(fake, first).walk(RAW_MAC, IP, time.time() - 600)
    walked_m = first.state.total_m(hash_mac(RAW_MAC, KEY))
    cursor_ms = first.firehose.cursor_ms if first.firehose is not None else None
    assert cursor_ms is not None and walked_m == pytest.approx(WALKED_M)
    assert await first.stop()  # the stream ends first, then the final flush writes the cursor
    assert db.query("SELECT feed, cursor_ms FROM feed_cursor") == [("spaces_firehose",
                                                                    cursor_ms)]

    second = Runtime(config)
    await second.start()
    try:
        consumer = second.firehose
        assert consumer is not None
        await fake.wait_for(lambda fake: len(fake.connections) == 2)
        overlap_ms = int(config.feeds.spaces_firehose.resume_overlap_s * 1000)
        assert fake.connections[1].from_timestamp == cursor_ms - overlap_ms
        replayed = ("DEVICE_LOCATION_UPDATE", "accepted")
        await until(lambda: consumer.by_type.get(replayed) == 5)  # the overlap's 5 fixes...
        assert consumer.cursor_ms == cursor_ms
        assert second.state.total_m(hash_mac(RAW_MAC, KEY)) == pytest.approx(walked_m)
    finally:  # ...and credited nothing twice
        assert await second.stop()
    assert db.query("SELECT mtrs FROM distance")[0][0] == pytest.approx(walked_m, abs=1e-3)


class TestMerakiPathThroughListen:
    """The configured path behind Runtime.listen(): its own body cap, its secret, no auth."""

    SERVER_CAP, MERAKI_CAP, PATH = 64 * 1024, 256 * 1024, "/hook-5e1f0a"

    @pytest.fixture
    def overrides(self) -> dict[str, Any]:
        return {"server.port": free_port(), "server.max_body_bytes": self.SERVER_CAP,
                **MERAKI_ONLY, "feeds.meraki.path": self.PATH,
                "feeds.meraki.max_body_bytes": self.MERAKI_CAP}

    @gen_test
    async def test_the_meraki_path_takes_bodies_up_to_its_own_cap(self, runtime: Runtime) -> None:
        runtime.listen()
        port = runtime.settings.server.port
        now_s = time.time()
        clients = [meraki_poster.observation(f"00:52:bf:74:{i >> 8:02x}:{i & 0xff:02x}",
                                             f"10.30.{i >> 8}.{i & 0xff}", [
            meraki_poster.location(Sighting("", "", 1, 10.0, 20.0, now_s - 60), 2.0)])
            for i in range(1, 300)]
        raw = orjson.dumps(meraki_poster.body(clients, SECRET))
        assert self.SERVER_CAP < len(raw) < self.MERAKI_CAP  # over the server's own cap
        taken = await rawhttp.post(port, self.PATH, None, raw=raw, auth=None)
        assert (taken.status, taken.json()["accepted"]) == (200, 299)
        validator = await rawhttp.exchange(port, rawhttp.request_bytes("GET", self.PATH))
        assert (validator.status, validator.body) == (200, VALIDATOR.encode())
        too_big = await rawhttp.exchange(port, rawhttp.request_bytes(
            "POST", self.PATH, b"{}", length=self.MERAKI_CAP + 1))
        assert (too_big.status, too_big.json()) == (413, {"error": "Request body too large"})
        other = await rawhttp.post(port, "/meraki", None, raw=raw, auth=None)
        assert other.status == 413  # any other path keeps server.max_body_bytes
