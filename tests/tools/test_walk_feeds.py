"""The walk through each feed (tools/cmx_sim/emitters.py, walk.py) and the accuracy matrix
(accuracy.py): what each feed sends, read back by the server's own readers, and short walks
through a real server."""

from __future__ import annotations

import asyncio
import http.client
import io
import json
from collections.abc import Iterator
from itertools import pairwise as pairs
from pathlib import Path
from typing import Any

import orjson
import pytest
import tornado.web

from tests.conftest import MONITOR_AUTH, TestDatabase, basic
from tests.support.procserver import ServerProcess
from tests.tools.test_cmx_sim import _serve
from tools.bench_env import free_port
from tools.cmx_sim import accuracy, emitters
from tools.cmx_sim.api import LiveApi
from tools.cmx_sim.cadence import MERAKI_POST_INTERVAL_S, for_feed
from tools.cmx_sim.devices import make_devices
from tools.cmx_sim.emitters import FirehoseEmitter, MerakiEmitter
from tools.cmx_sim.venue import M_PER_FT, Venue, VenueConfig
from tools.cmx_sim.walk import run_walk
from tys_server.core.events import Fix as FixEvent
from tys_server.core.events import IpSeen
from tys_server.feeds import meraki
from tys_server.feeds.cmx_fields import floor_key
from tys_server.feeds.spaces_events import RESIGHT_S, SpacesReader

START_EPOCH = 1_800_000_000.0
NOW_S = START_EPOCH + 3600.0
SECRET = "test-meraki-secret"


class _MerakiSink(tornado.web.RequestHandler):
    def initialize(self, bodies: list[bytes]) -> None:
        self.bodies = bodies

    def post(self) -> None:
        self.bodies.append(self.request.body)
        self.finish({"accepted": 1, "ignored": 0, "rejected": 0})


def test_meraki_posts_once_a_simulated_minute_with_the_fixes_since_the_last() -> None:
    devices = make_devices(8, 2, 2, 3, "random")
    venue = Venue(devices, for_feed(VenueConfig(), "meraki"), 3)
    bodies: list[bytes] = []
    sent = []
    post_times: list[float] = []  # simulated time of each POST

    async def walk(base: str) -> None:
        emitter = MerakiEmitter(base + "/meraki", SECRET, devices, START_EPOCH, seed=3)
        try:
            for t_s in range(1, 601):
                fixes = venue.step(float(t_s))
                sent.extend(fixes)
                await emitter.send(fixes, float(t_s))
                post_times.extend([float(t_s)] * (len(bodies) - len(post_times)))
            await emitter.finish(600.0)
            post_times.extend([600.0] * (len(bodies) - len(post_times)))
        finally:
            await emitter.aclose()

    app = tornado.web.Application([("/meraki", _MerakiSink, {"bodies": bodies})])
    asyncio.run(_serve(app, walk))
    # One POST a simulated minute (the first at the first fixes), and the last at the end.
    gaps = [b - a for a, b in pairs(post_times)]
    assert all(gap == MERAKI_POST_INTERVAL_S for gap in gaps[:-1]) and 0 < gaps[-1] <= 60
    assert post_times[0] < 15 and len(bodies) == 11
    posts = [orjson.loads(body) for body in bodies]
    assert {(p["version"], p["secret"], p["type"]) for p in posts} == {("3.0", SECRET, "WiFi")}
    batches = [meraki.read_post(post, NOW_S, secret=SECRET) for post in posts]
    previous_s = 0.0
    for batch, post_s in zip(batches, post_times, strict=True):
        fix_times = [e.ts - START_EPOCH for e in batch.events if isinstance(e, FixEvent)]
        # Only the fixes since the last POST (ISO times are whole seconds).
        assert previous_s - 1 < min(fix_times) and max(fix_times) <= post_s
        previous_s = post_s
    locations = [loc for p in posts for o in p["data"]["observations"] for loc in o["locations"]]
    assert len(locations) == len(sent) == sum(batch.accepted for batch in batches)
    assert all(isinstance(loc["x"], str) and isinstance(loc["y"], str) for loc in locations)
    assert all(2.0 <= loc["variance"] <= 2.5 for loc in locations)
    # Read back in feet, they are the venue's fixes, in each device's time order.
    read = sorted((e.mac, e.ts, round(e.x_ft, 6)) for b in batches for e in b.events
                  if isinstance(e, FixEvent))
    expected = sorted((devices[f.device].mac, float(int(START_EPOCH + f.t_s)),
                       round(float(repr(f.x_ft * M_PER_FT)) / M_PER_FT, 6)) for f in sent)
    assert read == expected


def test_firehose_events_are_read_back_by_the_server_reader_out_of_order_by_at_most_20s(
        ) -> None:
    devices = make_devices(10, 3, 3, 4, "random")
    venue = Venue(devices, for_feed(VenueConfig(), "firehose"), 4)
    sent = []

    async def walk() -> FirehoseEmitter:
        api = LiveApi("http://127.0.0.1:9", "u", "p")  # settle is not called here
        emitter = FirehoseEmitter(("127.0.0.1", 0), "key", devices, START_EPOCH, api, seed=4)
        for t_s in range(1, 301):
            fixes = venue.step(float(t_s))
            sent.extend(fixes)
            await emitter.send(fixes, float(t_s))
        emitter._push(emitter.delivery.rest())  # what finish() delivers before it settles
        await api.aclose()
        return emitter

    emitter = asyncio.run(walk())
    records = list(emitter.fake.events)
    assert len(records) == len(sent) == emitter.tally["notifications"]
    batch, newest_ms = SpacesReader().read([orjson.dumps(r) for r in records], NOW_S)
    assert batch.accepted == len(sent) and batch.rejected == 0
    fixes = [e for e in batch.events if isinstance(e, FixEvent)]
    sightings = [e for e in batch.events if isinstance(e, IpSeen)]
    ip_of = {d.mac: d.ip for d in devices}
    assert sorted((e.mac, round(e.ts, 3), e.floor, e.x_ft) for e in fixes) == sorted(
        (devices[f.device].mac, round(START_EPOCH + f.t_s, 3),
         floor_key(f"spaces:location-fl{f.floor:04d}"), round(f.x_ft, 5)) for f in sent)
    told: dict[str, tuple[str, float]] = {}  # each device's IP, at most once a minute
    expected = []
    for fix in fixes:
        ip, last = ip_of[fix.mac], told.get(ip_of[fix.mac])
        if last is None or last[0] != fix.mac or fix.ts - last[1] >= RESIGHT_S:
            told[ip] = (fix.mac, fix.ts)
            expected.append(IpSeen(ip, fix.mac, fix.ts))
    assert sightings == expected and {s.mac for s in sightings} == set(ip_of)
    newest_s = 0.0
    late = 0
    for fix in fixes:  # in delivery order
        assert fix.ts >= newest_s - 20.0
        late += fix.ts < newest_s
        newest_s = max(newest_s, fix.ts)
    assert late > 0
    assert newest_ms == round((START_EPOCH + max(f.t_s for f in sent)) * 1000)


# --- through a real server ----------------------------------------------------------------

def _metrics(server: ServerProcess) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request("GET", "/metrics", headers={"Authorization": basic(MONITOR_AUTH)})
        return conn.getresponse().read().decode()
    finally:
        conn.close()


@pytest.fixture
def feed_server(db: TestDatabase, workdir: Path, request: Any) -> Iterator[
        tuple[ServerProcess, accuracy.Cell, int]]:
    """A server configured for the cell's feed as `accuracy` configures it."""
    cell = accuracy.Cell(request.param, "correlated", 10.0, 5.0)
    firehose_port = free_port()
    url = f"http://127.0.0.1:{firehose_port}/api/partners/v1/firehose/events"
    env = accuracy.server_env(cell, accuracy.MatrixOptions(), url)
    server = ServerProcess(workdir, cell.feed, env={**env, "TYS_DATABASE_DSN": db.dsn})
    try:
        server.wait_for("READY=1")
        yield server, cell, firehose_port
    finally:
        server.close()


@pytest.mark.slow
@pytest.mark.db
@pytest.mark.parametrize("feed_server", ["cmx", "firehose", "meraki"], indirect=True)
def test_a_short_walk_through_each_feed_registers_everyone_and_credits_the_walkers(
        feed_server: tuple[ServerProcess, accuracy.Cell, int]) -> None:
    server, cell, firehose_port = feed_server
    matrix = accuracy.MatrixOptions(attendees=12, stationary=4, seed=2)
    log = io.StringIO()
    result = asyncio.run(run_walk(accuracy.walk_options(cell, matrix, server.url, firehose_port),
                                  log))
    traffic = result["traffic"]
    # Every device registered: on Firehose and Meraki from the IPs the feed carried.
    assert traffic["registered"] == 16, log.getvalue()
    assert result["walkers"]["evaluated"] == 12 and result["stationary"]["evaluated"] == 4
    walkers = [d for d in result["devices"] if d["kind"] == "walker"]
    true_m = sum(d["true_m"] for d in walkers)
    assert 0.5 * true_m < sum(d["server_m"] for d in walkers) < 1.2 * true_m
    assert result["stationary"]["mean_credited_m"] < 0.05 * true_m / 12
    if cell.feed == "firehose":  # every streamed event taken, and the settle probes
        accepted = [line for line in _metrics(server).splitlines() if line.startswith(
            "tys_feed_events_total") and 'feed="spaces_firehose"' in line
            and 'outcome="accepted"' in line]
        assert len(accepted) == 1
        assert float(accepted[0].split()[-1]) == \
            traffic["notifications"] + traffic["probe_fixes"] + 2
    else:  # the server's replies to the POSTs (CMX's probe is not in the tally)
        assert traffic["accepted"] == traffic["notifications"] + traffic.get("probe_fixes", 0)
        assert traffic["notifications"] > 0
        assert traffic.get("post_errors", 0) == traffic["rejected"] == 0


# --- the accuracy matrix ------------------------------------------------------------------

def test_matrix_cells_and_their_servers() -> None:
    opts = accuracy.MatrixOptions(filter_mode="smooth",
                                  server_env=(("TYS_TRACKING_GATE_FT", "40"),))
    cells = accuracy.cells(opts)
    assert len(cells) == 3 * 4 * 2 * 2
    assert cells[0] == accuracy.Cell("cmx", "independent", 5.0, 5.0)
    firehose = accuracy.server_env(accuracy.Cell("firehose", "correlated", 20.0, 30.0), opts,
                                   "http://x/events")
    assert firehose["TYS_FEEDS_SPACES_FIREHOSE_URL"] == "http://x/events"
    assert (firehose["TYS_CMX_HOSTS"], firehose["TYS_FEEDS_CMX_ENABLED"]) == ("", "false")
    assert firehose["TYS_TRACKING_FILTER"] == "smooth"
    assert firehose["TYS_TRACKING_GATE_FT"] == "40"
    assert int(firehose["TYS_LOOKUP_OBSERVED_TTL_S"]) > 30 * 60  # outlives the session
    cmx = accuracy.server_env(accuracy.Cell("cmx", "independent", 5.0, 5.0),
                              accuracy.MatrixOptions(), "")
    assert "TYS_CMX_HOSTS" not in cmx and "TYS_TRACKING_FILTER" not in cmx


def _report(median: float, p90: float, stationary: float) -> dict[str, Any]:
    from tools.cmx_sim import report
    rows = [report.Row("a", "walker", "m", 1000.0, 1000.0 * (1 + median / 100)),
            report.Row("b", "walker", "m", 1000.0, 1000.0 * (1 + median / 100)),
            report.Row("c", "walker", "m", 1000.0, 1000.0 * (1 - p90 / 100)),
            report.Row("s", "stationary", "m", 0.0, 10.0 * stationary)]
    return report.build_report(rows, {}, {})


def test_verdict_holds_cells_up_to_20ft_to_the_targets_and_reports_30ft() -> None:
    good, bad = _report(-3.0, 10.0, 0.5), _report(-8.0, 20.0, 5.0)
    cell = accuracy.Cell("meraki", "independent", 20.0, 30.0)
    assert accuracy.verdict(cell, good) == "pass"
    assert accuracy.verdict(cell, bad) == "FAIL (median, p90, stationary)"
    loud = accuracy.Cell("meraki", "independent", 30.0, 30.0)
    assert accuracy.verdict(loud, bad) == "reported"


@pytest.mark.slow
@pytest.mark.db
def test_accuracy_runs_its_cells_through_servers_and_writes_the_tables(
        postgres: TestDatabase, tmp_path: Path) -> None:
    opts = accuracy.MatrixOptions(feeds=("cmx", "meraki"), noise_models=("correlated",),
                                  sigmas_ft=(10.0,), minutes=(5.0,), attendees=8, stationary=2,
                                  admin_dsn=postgres.admin_dsn)
    out = io.StringIO()
    accuracy.main(opts, "python -m tools.cmx_sim accuracy ...", tmp_path, out)
    saved = json.loads((tmp_path / "accuracy.json").read_text())
    assert [(c["feed"], c["sigma_ft"], c["minutes"]) for c in saved["cells"]] == [
        ("cmx", 10.0, 5.0), ("meraki", 10.0, 5.0)]
    for cell in saved["cells"]:
        assert cell["registered"] == 10 and cell["walkers"] == 8
        missed = [name for name, bad in (("median", abs(cell["median_error_pct"]) > 5),
                                         ("p90", cell["p90_abs_error_pct"] > 12),
                                         ("stationary", cell["stationary_pct"] >= 2)) if bad]
        assert cell["verdict"] == (f"FAIL ({', '.join(missed)})" if missed else "pass")
        assert accuracy.format_row(cell) in out.getvalue()
    markdown = (tmp_path / "accuracy.md").read_text()
    assert markdown.startswith("`python -m tools.cmx_sim accuracy ...`")
    assert "### correlated noise" in markdown and accuracy.HEADER in markdown


def test_cmx_walk_tail_carries_the_feed_clock_with_a_probe_the_walk_does_not_count(
        tmp_path: Path) -> None:
    from tests.tools.test_cmx_sim import _StubTys
    from tools.cmx_sim.emitters import CLOCK_PROBE_MAC
    from tools.cmx_sim.walk import WalkOptions

    stub = _StubTys()

    async def body(base: str) -> dict[str, Any]:
        opts = WalkOptions(server=base, attendees=4, stationary=2, duration_s=300.0,
                           speedup=0.0, progress_s=0.0, tail_s=60.0, settle_wait_s=0.0)
        with (tmp_path / "walk.log").open("w") as out:
            return await run_walk(opts, out)

    result = asyncio.run(_serve(stub.app(), body))
    probes = [e for e in stub.entries if e["deviceId"] == CLOCK_PROBE_MAC]
    walk = [e for e in stub.entries if e["deviceId"] != CLOCK_PROBE_MAC]
    end_ms = min(e["timestamp"] for e in probes) - 1000  # the first probe: 1 s after the end
    # Through the tail (60 s) and the quiet end (160 s, where the phones send nothing).
    assert [e["timestamp"] - end_ms for e in probes] == [1000 * (i + 1) for i in range(220)]
    assert max(e["timestamp"] for e in walk) <= end_ms + 60_000
    assert result["traffic"]["notifications"] == result["traffic"]["accepted"] == len(walk)
    assert (result["scenario"]["tail_s"], result["scenario"]["quiet_s"]) == (60.0, 160.0)


def test_once_the_phones_are_silent_the_probe_runs_each_feeds_clock_on() -> None:
    devices = make_devices(3, 0, 1, 6, "random")
    bodies: list[bytes] = []

    async def meraki_walk(base: str) -> None:
        emitter = MerakiEmitter(base + "/meraki", SECRET, devices, START_EPOCH, seed=6)
        try:
            for t_s in range(1, 161):  # the quiet end: nothing but the probe
                await emitter.send([], float(t_s))
                await emitter.clock(float(t_s))
            await emitter.finish(160.0)
        finally:
            await emitter.aclose()

    app = tornado.web.Application([("/meraki", _MerakiSink, {"bodies": bodies})])
    asyncio.run(_serve(app, meraki_walk))
    batches = [meraki.read_post(orjson.loads(body), NOW_S, secret=SECRET) for body in bodies]
    times = [[e.ts - START_EPOCH for e in b.events if isinstance(e, FixEvent)] for b in batches]
    assert [(ts[0], ts[-1]) for ts in times] == [(1.0, 1.0), (2.0, 60.0), (61.0, 120.0),
                                                  (121.0, 160.0)]  # a POST a minute
    assert {e.mac for b in batches for e in b.events if isinstance(e, FixEvent)} == \
        {emitters.CLOCK_PROBE_MAC}

    async def firehose_walk() -> FirehoseEmitter:
        api = LiveApi("http://127.0.0.1:9", "u", "p")  # settle is not called here
        emitter = FirehoseEmitter(("127.0.0.1", 0), "key", devices, START_EPOCH, api, seed=6)
        for t_s in range(1, 161):
            await emitter.send([], float(t_s))
            await emitter.clock(float(t_s))
        await api.aclose()
        return emitter

    emitter = asyncio.run(firehose_walk())
    batch, newest_ms = SpacesReader().read([orjson.dumps(r) for r in emitter.fake.events], NOW_S)
    probe = [e for e in batch.events if isinstance(e, FixEvent)]
    assert [e.ts - START_EPOCH for e in probe] == [float(t) for t in range(1, 161)]
    assert newest_ms == round((START_EPOCH + 160.0) * 1000)
