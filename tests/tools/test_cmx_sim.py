"""The CMX simulator (tools/cmx_sim): venue model, CMX JSON, fake CMX, load generator, walk."""

from __future__ import annotations

import asyncio
import datetime
import math
import random
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
import tornado.httpserver
import tornado.testing
import tornado.web

from tools.bench_env import free_port
from tools.cmx_sim import fake_cmx, load, notify, report
from tools.cmx_sim.devices import (
    Device,
    cmx_test_mac,
    hash_mac,
    load_devices,
    make_devices,
    save_devices,
)
from tools.cmx_sim.httpclient import HttpConnection, HttpError, basic_auth, encode_request
from tools.cmx_sim.loadgen import LoadResult, run_load
from tools.cmx_sim.venue import FIRST_FIX_MOVE_FT, M_PER_FT, Mover, Venue, VenueConfig
from tools.cmx_sim.walk import WalkOptions, run_walk, sim_start_epoch

ROOT = Path(__file__).resolve().parents[2]
QUIET = VenueConfig(noise_ft=0.0, outlier_rate=0.0)


async def _serve(app: tornado.web.Application,
                 body: Callable[[str], Awaitable[Any]]) -> Any:
    """Run app on a free local port while body(base_url) runs."""
    sock, port = tornado.testing.bind_unused_port()
    server = tornado.httpserver.HTTPServer(app)
    server.add_sockets([sock])
    try:
        return await body(f"http://127.0.0.1:{port}")
    finally:
        server.stop()
        await server.close_all_connections()


# --- venue model -------------------------------------------------------------------------

def test_walker_distance_is_speed_times_walking_time() -> None:
    cfg = VenueConfig(speed_mps=(1.2, 1.2), pause_s=(10.0, 120.0))
    mover = Mover(cfg, random.Random(3), 1, moving=True)
    mover.advance(1800.0)
    assert mover.walking_s + mover.paused_s == pytest.approx(1800.0)
    assert mover.paused_s > 0
    assert mover.distance_ft * M_PER_FT == pytest.approx(1.2 * mover.walking_s)


def test_walker_without_pauses_walks_the_whole_time() -> None:
    cfg = VenueConfig(speed_mps=(1.5, 1.5), pause_s=(0.0, 0.0))
    mover = Mover(cfg, random.Random(4), 1, moving=True)
    for t_s in range(1, 601):  # piecewise advancing changes nothing
        mover.advance(float(t_s))
    assert mover.distance_ft * M_PER_FT == pytest.approx(1.5 * 600)


def test_walkers_stay_on_the_venue_floors() -> None:
    cfg = VenueConfig(floors=2, floor_change_prob=0.5)
    venue = Venue(make_devices(20, 0, 2, 1, "test"), cfg, 1)
    fixes = venue.step(3600.0)
    assert {f.floor for f in fixes} == {1, 2}
    assert all(0 <= f.x_ft <= cfg.width_ft and 0 <= f.y_ft <= cfg.depth_ft for f in fixes)


def test_stationary_devices_walk_nowhere() -> None:
    venue = Venue(make_devices(0, 10, 3, 1, "test"), QUIET, 1)
    fixes = venue.step(1800.0)
    venue.finish(1800.0)
    assert [f.move_ft for f in fixes] == [FIRST_FIX_MOVE_FT] * 10  # one first fix each
    assert all(venue.true_distance_m(i) == 0.0 for i in range(10))


def test_noise_alone_rarely_moves_a_stationary_estimate_50ft() -> None:
    cfg = VenueConfig(noise_ft=7.0, outlier_rate=0.0)
    fixes = Venue(make_devices(0, 50, 3, 2, "test"), cfg, 2).step(1800.0)
    assert len(fixes) <= 52  # the 50 first fixes, at most a rare 7-sigma excursion


def test_notifications_only_when_the_estimate_moved_the_trigger_distance() -> None:
    cfg = VenueConfig(movement_distance_ft=50.0, floor_change_prob=0.0)
    fixes = Venue(make_devices(30, 10, 3, 5, "test"), cfg, 5).step(1800.0)
    last: dict[int, tuple[float, float]] = {}
    for fix in fixes:
        if fix.device not in last:
            assert fix.move_ft == FIRST_FIX_MOVE_FT
        else:
            px, py = last[fix.device]
            assert fix.move_ft >= 50.0
            assert fix.move_ft == pytest.approx(math.hypot(fix.x_ft - px, fix.y_ft - py))
        last[fix.device] = (fix.x_ft, fix.y_ft)
    assert len(fixes) > 40 * 2
    assert [f.t_s for f in fixes] == sorted(f.t_s for f in fixes)


def test_same_seed_same_fixes_whatever_the_step_size() -> None:
    devices = make_devices(10, 5, 3, 9, "random")
    whole = Venue(devices, VenueConfig(), 9).step(900.0)
    stepped = Venue(devices, VenueConfig(), 9)
    pieces = [fix for t_s in range(1, 901) for fix in stepped.step(float(t_s))]
    assert pieces == whole


# --- devices, MACs, CMX JSON -------------------------------------------------------------

def test_hash_matches_real_cmx_output() -> None:
    assert hash_mac("00:00:2a:01:00:3f", "listening") == "00:00:a9:3e:a7:3a"
    assert hash_mac("00:00:2a:01:00:3f", "") == "00:00:2a:01:00:3f"


def test_devices_are_unique_and_follow_the_mac_mode(tmp_path: Path) -> None:
    devices = make_devices(300, 100, 3, 7, "test")
    assert len({d.ip for d in devices}) == len({d.mac for d in devices}) == 400
    assert Counter(d.kind for d in devices) == {"walker": 300, "stationary": 100}
    assert all(d.mac == cmx_test_mac(d.ip) and d.ip.startswith(f"10.{d.floor}.")
               for d in devices)
    assert cmx_test_mac("10.1.2.250") == "02:00:0a:01:02:fa"
    randoms = make_devices(300, 100, 3, 7, "random")
    assert len({d.mac for d in randoms}) == 400
    assert all(int(d.mac[:2], 16) & 0x03 == 0x02 for d in randoms)  # local, unicast
    assert randoms == make_devices(300, 100, 3, 7, "random")
    save_devices(tmp_path / "devices.json", randoms)
    assert load_devices(tmp_path / "devices.json") == randoms


def test_movement_notification_has_the_cmx_field_set() -> None:
    fix = Venue(make_devices(1, 0, 3, 1, "test"), VenueConfig(), 1).step(10.0)[0]
    entry = notify.movement(fix, "02:00:0a:01:00:01", "10.1.0.1", 7, 1795773600123)
    assert entry["notificationType"] == "movement" and entry["eventId"] == 7
    assert entry["moveDistanceInFt"] == FIRST_FIX_MOVE_FT
    assert entry["locationCoordinate"]["unit"] == "FEET"
    assert len(str(entry["floorId"])) == 18 and entry["floorRefId"] == str(entry["floorId"])
    assert entry["lastSeen"] == "2026-11-27T10:00:00.123+0000"
    assert entry["timestamp"] == 1795773600123 and entry["ipAddress"] == ["10.1.0.1"]
    assert entry["locationMapHierarchy"] == f"Venue>Building>Floor {fix.floor}"
    assert orjson.loads(notify.envelope([entry])) == {"notifications": [entry]}


def test_simulated_window_ends_at_the_real_end() -> None:
    now = 1_000_000.0
    assert sim_start_epoch(now, 1800, 30) + 1800 == pytest.approx(now + 1800 / 30)
    assert sim_start_epoch(now, 1800, 1) == now
    assert sim_start_epoch(now, 1800, 0) == now - 1800
    # A whole second, never later than exact: the feeds' times do not depend on the run's
    # fraction of a second, and never run ahead of the wall clock.
    assert sim_start_epoch(now + 0.7, 1800, 0) == sim_start_epoch(now + 0.2, 1800, 0) \
        == now - 1800


def test_load_bodies_walk_each_mac_forward_in_time() -> None:
    now = time.time()
    bodies = load.build_bodies(macs=7, batch=5, pool=20, now_s=now)
    entries = [e for body in bodies for e in orjson.loads(body)["notifications"]]
    assert len(entries) == 100
    per_mac: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        per_mac.setdefault(entry["deviceId"], []).append(entry)
    assert len(per_mac) == 7
    for seq in per_mac.values():
        stamps = [e["timestamp"] for e in seq]
        assert stamps == sorted(stamps) and stamps[-1] <= now * 1000
        assert seq[0]["moveDistanceInFt"] == FIRST_FIX_MOVE_FT
        assert {e["moveDistanceInFt"] for e in seq[1:]} == {load.STEP_FT}


# --- report ------------------------------------------------------------------------------

def test_report_figures_and_targets() -> None:
    rows = [report.Row("a", "walker", "m1", 1000.0, 900.0),
            report.Row("b", "walker", "m2", 1000.0, 1050.0),
            report.Row("c", "walker", "m3", 1000.0, 700.0),
            report.Row("d", "stationary", "m4", 0.0, 30.0),
            report.Row("e", "stationary", "m5", 0.0, 10.0)]
    result = report.build_report(rows, {}, {"notifications": 9})
    assert result["walkers"]["median_error_pct"] == -10.0
    assert result["walkers"]["worst_error_pct"] == -30.0
    assert result["walkers"]["worst_username"] == "c"
    assert result["stationary"]["mean_credited_m"] == 20.0
    assert result["stationary"]["share_of_mean_walker_pct"] == 2.0
    # Issue 14's targets: |median| <= 5 %, p90 |error| <= 12 %, stationary < 2 %.
    assert result["walkers"]["p90_abs_error_pct"] == 30.0
    assert result["targets"] == {"median_walker_error_within_5pct": False,
                                 "p90_abs_walker_error_within_12pct": False,
                                 "stationary_under_2pct_of_walker": False}
    close = [report.Row("a", "walker", "m1", 1000.0, 960.0),
             report.Row("b", "walker", "m2", 1000.0, 1110.0),
             report.Row("d", "stationary", "m4", 0.0, 19.0)]
    near = report.build_report(close, {}, {})
    assert near["walkers"]["median_error_pct"] == 3.5
    assert near["targets"] == {"median_walker_error_within_5pct": True,
                               "p90_abs_walker_error_within_12pct": True,
                               "stationary_under_2pct_of_walker": True}
    text = report.format_report(result)
    assert "median error -10.0%" in text and "FAIL" in text
    assert "Traffic (cmx): 9 notifications" in text
    assert "PASS" in report.format_report(near)


# --- fake CMX over HTTP ------------------------------------------------------------------

async def _get(url: str, auth: tuple[str, str] | None = None) -> tuple[int, bytes]:
    conn = HttpConnection(url)
    try:
        return await conn.request(encode_request("GET", url, basic_auth(*auth) if auth else {}))
    finally:
        await conn.aclose()


def _fake_cmx(*queries: tuple[str, tuple[str, str] | None], **behaviour: Any
              ) -> list[tuple[int, bytes]]:
    devices = [Device(0, "walker", 2, "10.1.0.1", "aa:bb:cc:00:00:01")]
    app = fake_cmx.make_app(fake_cmx.FakeCmx.serving(devices, **{"username": "", **behaviour}))

    async def body(base: str) -> list[tuple[int, bytes]]:
        return [await _get(base + path, auth) for path, auth in queries]
    return asyncio.run(_serve(app, body))


def test_fake_cmx_answers_v2_and_v3() -> None:
    v2, v2_unknown, v3, v3_unknown = _fake_cmx(
        ("/api/location/v2/clients?ipAddress=10.1.0.1", None),
        ("/api/location/v2/clients?ipAddress=10.9.9.9", None),
        ("/api/location/v3/clients?ipAddress=10.1.0.1", None),
        ("/api/location/v3/clients?ipAddress=10.9.9.9", None))
    assert v2[0] == 200 and orjson.loads(v2[1])[0]["macAddress"] == "aa:bb:cc:00:00:01"
    assert orjson.loads(v2[1])[0]["ipAddress"] == ["10.1.0.1"]
    assert orjson.loads(v2[1])[0]["mapInfo"]["floorRefId"] == notify.floor_id(2)
    assert v2_unknown == (204, b"")
    assert v3[0] == 200 and orjson.loads(v3[1])[0]["deviceId"] == "aa:bb:cc:00:00:01"
    assert orjson.loads(v3[1])[0]["floorId"] == notify.floor_id(2)
    assert v3_unknown == (200, b"[]")


def test_fake_cmx_checks_basic_auth() -> None:
    url = "/api/location/v2/clients?ipAddress=10.1.0.1"
    none, wrong, right = _fake_cmx((url, None), (url, ("admin", "nope")), (url, ("admin", "pw")),
                                   username="admin", password="pw")
    assert none[0] == wrong[0] == 401
    assert right[0] == 200


def test_fake_cmx_injects_failures_and_garbage() -> None:
    url = "/api/location/v2/clients?ipAddress=10.1.0.1"
    (failed,) = _fake_cmx((url, None), fail_rate=1.0)
    (garbage,) = _fake_cmx((url, None), garbage_rate=1.0)
    assert failed[0] == 500
    assert garbage[0] == 200
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(garbage[1])


def test_fake_cmx_fails_the_share_of_look_ups_it_is_told_to() -> None:
    url = "/api/location/v2/clients?ipAddress=10.1.0.1"
    replies = _fake_cmx(*[(url, None)] * 200, fail_rate=0.25, garbage_rate=0.25, seed=3)
    statuses = Counter(status for status, _ in replies)
    garbage = sum(1 for status, body in replies if status == 200 and body.startswith(b"<html>"))
    # 200 draws of a seeded generator: each share lands within a few percent of 25 %.
    assert 35 <= statuses[500] <= 65
    assert 35 <= garbage <= 65
    assert statuses[500] + statuses[200] == 200


# --- HTTP client and load generator ------------------------------------------------------

class _CountingHandler(tornado.web.RequestHandler):
    def initialize(self, seen: list[bytes]) -> None:
        self.seen = seen

    def post(self) -> None:
        self.seen.append(self.request.body)
        self.finish({"accepted": 1, "ignored": 0, "rejected": 0})


class _OddReplies(tornado.web.RequestHandler):
    async def get(self, kind: str) -> None:
        if kind == "chunked":
            self.write("hello, ")
            await self.flush()  # forces chunked transfer-encoding
            self.write("world")
        elif kind == "empty":
            self.set_status(204)
        elif kind == "close":
            self.set_header("Connection", "close")
            self.write("bye")


def test_http_connection_reads_chunked_204_and_close() -> None:
    app = tornado.web.Application([(r"/(\w+)", _OddReplies)])

    async def body(base: str) -> list[tuple[int, bytes]]:
        conn = HttpConnection(base)
        try:
            return [await conn.request(encode_request("GET", f"{base}/{kind}"))
                    for kind in ("chunked", "empty", "close", "chunked")]
        finally:
            await conn.aclose()
    assert asyncio.run(_serve(app, body)) == [(200, b"hello, world"), (204, b""),
                                              (200, b"bye"), (200, b"hello, world")]


def test_load_generator_sends_exactly_total_requests() -> None:
    seen: list[bytes] = []
    app = tornado.web.Application([(r"/notification", _CountingHandler, {"seen": seen})])
    bodies = [b'{"notifications":[1]}', b'{"notifications":[2]}']

    async def body(base: str) -> LoadResult:
        return await run_load(base + "/notification", bodies, basic_auth("cmx", "x"),
                              connections=4, total=300)
    result = asyncio.run(_serve(app, body))
    assert len(seen) == result.requests == result.ok == 300 and result.errors == 0
    assert Counter(seen) == {bodies[0]: 150, bodies[1]: 150}
    assert result.status_counts == {200: 300}
    assert 0 < result.percentile_ms(50) <= result.percentile_ms(90) \
        <= result.percentile_ms(99) <= result.percentile_ms(100)
    assert result.throughput_rps > 100
    assert result.summary()["latency_ms"]["max"] == round(result.percentile_ms(100), 3)


def test_load_generator_holds_a_fixed_rate() -> None:
    seen: list[bytes] = []
    app = tornado.web.Application([(r"/notification", _CountingHandler, {"seen": seen})])

    async def body(base: str) -> LoadResult:
        return await run_load(base + "/notification", [b"{}"], {}, connections=2,
                              duration_s=1.0, rate_per_s=200)
    result = asyncio.run(_serve(app, body))
    assert result.requests == len(seen) == 200  # due times 0, 1/200 .. 199/200 s
    assert 0.95 <= result.elapsed_s < 1.5


def test_load_generator_counts_a_server_that_is_down() -> None:
    sock, port = tornado.testing.bind_unused_port()
    sock.close()
    result = asyncio.run(run_load(f"http://127.0.0.1:{port}/notification", [b"{}"],
                                  connections=2, total=6, timeout_s=1.0))
    assert result.requests == 0 and result.connection_errors == result.errors == 6
    with pytest.raises(HttpError):
        asyncio.run(HttpConnection(f"http://127.0.0.1:{port}").request(b"GET / HTTP/1.1\r\n\r\n"))


# --- walk against a stub TYS server ------------------------------------------------------

class _StubTys:
    """Just enough of the server: credits every non-first moveDistanceInFt per MAC.

    It resolves a registering IP like the server's CMX test mode, or through the v2 API
    of the CMX at cmx_url.
    """

    def __init__(self, hash_key: str = "", cmx_url: str | None = None) -> None:
        self.hash_key, self.cmx_url = hash_key, cmx_url
        self.credited_ft: Counter[str] = Counter()
        self.entries: list[dict[str, Any]] = []
        self.users: dict[str, str] = {}  # username -> mac

    async def lookup(self, ip: str) -> str:
        """The stored MAC of ip: from CMX (or test mode), hashed like the server does."""
        if self.cmx_url is None:
            return hash_mac(cmx_test_mac(ip), self.hash_key)
        status, body = await _get(f"{self.cmx_url}/api/location/v2/clients?ipAddress={ip}",
                                  ("cmx-user", "cmx-pw"))
        assert status == 200, status
        return hash_mac(orjson.loads(body)[0]["macAddress"], self.hash_key)

    def app(self) -> tornado.web.Application:
        stub = self

        class Notify(tornado.web.RequestHandler):
            def post(self) -> None:
                assert self.request.headers["Authorization"] == basic_auth(
                    "cmx", "change-me-cmx")["Authorization"]
                batch = orjson.loads(self.request.body)["notifications"]
                for entry in batch:
                    stub.entries.append(entry)
                    if entry["moveDistanceInFt"] != FIRST_FIX_MOVE_FT:
                        stub.credited_ft[entry["deviceId"]] += entry["moveDistanceInFt"]
                self.finish({"accepted": len(batch), "ignored": 0, "rejected": 0})

        class Live(tornado.web.RequestHandler):
            async def post(self, name: str) -> None:
                data = orjson.loads(self.request.body)
                if name == "register_username":
                    mac = stub.users[data["username"]] = await stub.lookup(data["ip"])
                    self.set_status(201)
                    self.finish({"success": "Username added with device", "mac": mac,
                                 **data})
                elif name == "username_data":
                    km = stub.credited_ft[stub.users[data["username"]]] * M_PER_FT / 1000
                    self.write(orjson.dumps([{"total_kilometres": round(km, 3)}]))
                else:
                    self.finish({"leaders": [{"place": 1, "username": "x", "kilometres": 1.0,
                                              "miles": 0.6, "steps": 1312}],
                                 "total_kilometres": 1.0, "total_miles": 0.6})
        return tornado.web.Application([(r"/notification", Notify), (r"/live/(\w+)", Live)])


def test_walk_reports_true_against_server_distance(tmp_path: Path) -> None:
    stub = _StubTys(hash_key="salt")
    opts = WalkOptions(attendees=6, stationary=3, seed=3, hash_key="salt", duration_s=900.0,
                       speedup=0.0, progress_s=0.0, tail_s=0.0, quiet_s=0.0,
                       settle_wait_s=0.0, leaderboard=5,
                       devices_file=str(tmp_path / "devices.json"))
    log = tmp_path / "walk.log"

    async def body(base: str) -> dict[str, Any]:
        with log.open("w") as out:
            return await run_walk(WalkOptions(**{**opts.__dict__, "server": base}), out)
    started_ms = time.time() * 1000
    result = asyncio.run(_serve(stub.app(), body))
    assert "warning" not in log.read_text()
    assert result["walkers"]["evaluated"] == 6 and result["stationary"]["evaluated"] == 3
    assert result["traffic"]["notifications"] == result["traffic"]["accepted"] \
        == len(stub.entries) > 9
    assert result["traffic"].get("post_errors", 0) == 0
    assert result["leaderboard"]["leaders"][0]["place"] == 1
    assert len(load_devices(tmp_path / "devices.json")) == 9
    macs = {d.mac for d in load_devices(tmp_path / "devices.json")}
    assert {e["deviceId"] for e in stub.entries} == {hash_mac(m, "salt") for m in macs}
    stamps = [e["timestamp"] for e in stub.entries]
    assert stamps == sorted(stamps)  # one sender, in simulated-time order
    assert started_ms - 901_000 < stamps[0] and stamps[-1] <= time.time() * 1000
    for row in result["devices"]:
        credited_m = stub.credited_ft[row["device_id"]] * M_PER_FT
        assert row["server_m"] == pytest.approx(credited_m, abs=0.6)
        if row["kind"] == "walker":
            assert row["true_m"] > 0
    first = datetime.datetime.fromisoformat(result["scenario"]["sim_start"])
    assert first.timestamp() * 1000 == pytest.approx(started_ms - 900_000, abs=5_000)


def test_walk_serves_its_devices_to_the_server_through_a_fake_cmx(tmp_path: Path) -> None:
    cmx_port = free_port()
    stub = _StubTys(cmx_url=f"http://127.0.0.1:{cmx_port}")
    log = tmp_path / "walk.log"

    async def body(base: str) -> dict[str, Any]:
        opts = WalkOptions(server=base, attendees=4, stationary=2, mac_mode="random",
                           duration_s=300.0, speedup=0.0, progress_s=0.0, tail_s=0.0,
                           quiet_s=0.0,
                           settle_wait_s=0.0,
                           serve_cmx=("127.0.0.1", cmx_port), cmx_auth=("cmx-user", "cmx-pw"))
        with log.open("w") as out:
            return await run_walk(opts, out)
    result = asyncio.run(_serve(stub.app(), body))
    assert "warning" not in log.read_text()
    random_macs = {d.mac for d in make_devices(4, 2, 3, 1, "random")}
    assert set(stub.users.values()) == random_macs
    assert {e["deviceId"] for e in stub.entries} == random_macs
    assert result["traffic"]["registered"] == 6


def test_walk_warns_when_the_server_resolves_other_macs(tmp_path: Path) -> None:
    stub = _StubTys()  # resolves like CMX test mode, but the walk sends random MACs
    log = tmp_path / "walk.log"

    async def body(base: str) -> dict[str, Any]:
        opts = WalkOptions(server=base, attendees=3, stationary=0, mac_mode="random",
                           duration_s=60.0, speedup=0.0, progress_s=0.0, tail_s=0.0,
                           quiet_s=0.0,
                           settle_wait_s=0.0, register_share=0.5)
        with log.open("w") as out:
            return await run_walk(opts, out)
    result = asyncio.run(_serve(stub.app(), body))
    assert "warning: 2 registered MACs differ from the notified ones" in log.read_text()
    assert result["walkers"]["evaluated"] == 2  # round(3 * 0.5)


# --- CLI ---------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("command", [[], ["fake-cmx"], ["fake-firehose"], ["walk"],
                                     ["accuracy"], ["load"]])
def test_every_subcommand_has_help(command: list[str]) -> None:
    done = subprocess.run([sys.executable, "-m", "tools.cmx_sim", *command, "--help"],
                          cwd=ROOT, capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    assert "usage: python -m tools.cmx_sim" in done.stdout


def test_accuracy_command_line_carries_the_venue_layout(monkeypatch: pytest.MonkeyPatch,
                                                       tmp_path: Path) -> None:
    from tools.cmx_sim import accuracy
    from tools.cmx_sim.__main__ import build_parser
    from tools.cmx_sim.walk_cli import run_accuracy_command

    seen: list[accuracy.MatrixOptions] = []
    monkeypatch.setattr(accuracy, "main", lambda opts, *_: seen.append(opts) or 0)
    args = build_parser().parse_args(
        ["accuracy", "--layout", "aisles", "--aisle-ft", "30", "--noise-corr-s", "60",
         "--out", str(tmp_path)])
    assert run_accuracy_command(args, []) == 0
    (opts,) = seen
    assert (opts.venue.layout, opts.venue.aisle_ft, opts.venue.cross_aisle_ft,
            opts.venue.noise_corr_s) == ("aisles", 30.0, 120.0, 60.0)


def test_walk_command_line_becomes_walk_options(monkeypatch: pytest.MonkeyPatch) -> None:
    from tools.cmx_sim.__main__ import build_parser
    from tools.cmx_sim.walk_cli import walk_options

    monkeypatch.setenv("TYS_FEEDS_MERAKI_SECRET", "from-env")
    monkeypatch.setenv("TYS_FEEDS_MERAKI_PATH", "/hidden-meraki")
    args = build_parser().parse_args(
        ["walk", "--server", "http://tys:8080", "--feed", "meraki", "--attendees", "7",
         "--stationary", "2", "--register-share", "0.5", "--noise", "correlated",
         "--noise-ft", "12", "--noise-corr-s", "40", "--duration-min", "5", "--tail-s", "90",
         "--settle-wait-s", "2", "--serve-firehose", "9999", "--speedup", "0",
         "--layout", "aisles", "--cross-aisle-ft", "100"])
    opts = walk_options(args)
    assert (opts.venue.layout, opts.venue.aisle_ft, opts.venue.cross_aisle_ft) == (
        "aisles", 40.0, 100.0)
    assert (opts.feed, opts.attendees, opts.stationary, opts.register_share) == (
        "meraki", 7, 2, 0.5)
    assert (opts.venue.noise_model, opts.venue.noise_ft, opts.venue.noise_corr_s) == (
        "correlated", 12.0, 40.0)
    assert (opts.duration_s, opts.tail_s, opts.settle_wait_s, opts.speedup) == (
        300.0, 90.0, 2.0, 0.0)
    assert opts.meraki_url == "http://tys:8080/hidden-meraki"
    assert opts.meraki_secret == "from-env"
    assert opts.serve_firehose == ("127.0.0.1", 9999)
