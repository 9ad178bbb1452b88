"""SIGTERM and kill -9 under load, and a database outage, against a real server process.

Load: walker threads, each posting one point of each of its devices per request
on a keep-alive connection, recording when each request was acknowledged. The
walk is a staircase (four steps east, four north, ...), so sharp turns put legs
in `held` and a restart has to continue from the stored pending/held legs.
The expected distances come from the same notifications run through
tys_server.feeds.cmx and tys_server.core.tracking in this process.
"""

from __future__ import annotations

import asyncio
import functools
import http.client
import json
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CMX_AUTH, TestDatabase, basic
from tests.support.clock import wall_clock_s
from tests.support.pgproxy import PgProxy
from tests.support.procserver import CLASSIC_FILTER, ServerProcess
from tools import pg_admin
from tys_server.core.events import Movement
from tys_server.core.tracking import FilterParams, Track, advance
from tys_server.feeds.cmx import parse_envelope

pytestmark = pytest.mark.slow

FLUSH_S = 0.5
WALKERS = 4
DEVICES = 25                  # per walker; one request carries a point of each
STEP_MS = 4000                # 50 ft every 4 s: 3.8 m/s, under tracking.max_speed_mps
MAX_POINTS = 2500             # per device: 2.8 h of walk, all of it in the past
FLOOR = 723413320329068590
WARM_REQUESTS = 150           # per walker before the fault
AUTH = basic(CMX_AUTH)


def mac_of(walker: int, device: int) -> str:
    return f"02:fa:17:{walker:02x}:{device >> 8:02x}:{device & 255:02x}"


def phase_of(device: int) -> int:
    """Devices start at different places of the staircase, so that wherever a fault
    strikes, some of them have a leg held after a corner and some do not."""
    return device % 8


def position_ft(k: int, phase: int) -> tuple[float, float]:
    """Point k of a staircase (four steps east, four north, ...) entered at `phase`."""
    step = k + phase
    east = step // 8 * 4 + min(step % 8, 4)
    return 50.0 * east, 50.0 * (step - east)


def notification(mac: str, k: int, base_ms: int, phase: int) -> dict[str, Any]:
    x_ft, y_ft = position_ft(k, phase)
    return {"notificationType": "movement", "deviceId": mac, "floorId": FLOOR,
            "locationCoordinate": {"x": x_ft, "y": y_ft, "unit": "FEET"},
            "moveDistanceInFt": 50.0, "timestamp": base_ms + STEP_MS * k}


@functools.cache  # devices of one walker share points; phases repeat
def reference_m(points: Sequence[int], base_ms: int, phase: int) -> float:
    """Distance the filter credits for these points of one device, computed in-process."""
    body = {"notifications": [notification("02:00:00:00:00:01", k, base_ms, phase)
                              for k in points]}
    track: Track | None = None
    for event in parse_envelope(body, wall_clock_s()).events:
        assert isinstance(event, Movement)
        track, _, _ = advance(track, event, FilterParams())
    return track.total_m if track is not None else 0.0


class Walker(threading.Thread):
    """Posts point k of each of its devices per request until stopped or refused."""

    def __init__(self, server: ServerProcess, number: int, base_ms: int, *,
                 devices: int = DEVICES, first: int = 0) -> None:
        super().__init__(daemon=True, name=f"walker-{number}")
        self.server = server
        self.number = number
        self.base_ms = base_ms
        self.devices = devices
        self.first = first             # the point index of the first request
        self.macs = [mac_of(number, d) for d in range(devices)]
        self.acked: list[float] = []   # acked[i]: when the reply for point first + i arrived
        self.in_doubt = False          # point len(acked) was sent and got no reply
        self.failure: str | None = None
        self.warm = threading.Event()
        self.halt = threading.Event()
        self._more = (0, threading.Event())

    def more(self, requests: int) -> threading.Event:
        """An event set once `requests` more points have been acknowledged."""
        self._more = (len(self.acked) + requests, threading.Event())
        return self._more[1]

    def run(self) -> None:
        conn = self.server.connection()
        try:
            while not self.halt.is_set() and self.first + len(self.acked) < MAX_POINTS:
                k = self.first + len(self.acked)
                body = json.dumps({"notifications": [
                    notification(mac, k, self.base_ms, phase_of(d))
                    for d, mac in enumerate(self.macs)]})
                try:
                    conn.request("POST", "/notification", body=body, headers={
                        "Authorization": AUTH, "Content-Type": "application/json"})
                    reply = conn.getresponse()
                    answer = reply.read()
                except (OSError, http.client.HTTPException):
                    self.in_doubt = True  # the server is going away: stop here
                    return
                if reply.status != 200 or json.loads(answer)["accepted"] != self.devices:
                    self.failure = f"{reply.status} {answer[:200]!r}"
                    return
                self.acked.append(time.monotonic())
                if len(self.acked) >= WARM_REQUESTS:
                    self.warm.set()
                target, event = self._more
                if len(self.acked) >= target:
                    event.set()
        finally:
            conn.close()
            self.warm.set()  # never leave the test waiting on a walker that ended
            self._more[1].set()


@pytest.fixture
def start(db: TestDatabase, workdir: Path) -> Iterator[Any]:
    """start(name) → a ready server on the test database, flushing every FLUSH_S."""
    started: list[ServerProcess] = []

    def _start(name: str) -> ServerProcess:
        server = ServerProcess(workdir, name, env={
            **CLASSIC_FILTER,
            "TYS_DATABASE_DSN": db.dsn, "TYS_DATABASE_FLUSH_INTERVAL_S": str(FLUSH_S)})
        started.append(server)
        server.wait_for("READY=1")
        return server

    yield _start
    for server in started:
        server.close()


def stored_tracks(db: TestDatabase) -> dict[str, tuple[float, float]]:
    """mac → (mtrs, epoch ms of the newest point) as PostgreSQL has them."""
    rows = db.query("SELECT mac::text, mtrs, extract(epoch FROM time)::float8 FROM distance")
    return {mac: (mtrs, round(ts * 1000)) for mac, mtrs, ts in rows}


def stored_notifications(db: TestDatabase) -> int:
    return int(db.query("SELECT coalesce(sum(notification_count), 0) FROM count")[0][0])


def newest_point(walker: Walker, tracks: dict[str, tuple[float, float]]) -> int:
    """Index of the newest point stored for the walker's devices (-1: none); all agree."""
    points = set()
    for mac in walker.macs:
        if mac not in tracks:
            points.add(-1)
        else:
            points.add((tracks[mac][1] - walker.base_ms) // STEP_MS)
    assert len(points) == 1, f"devices of one request stored at different points: {points}"
    return points.pop()


def start_walkers(server: ServerProcess) -> list[Walker]:
    base_ms = int(wall_clock_s() * 1000) - 3 * 3600 * 1000
    walkers = [Walker(server, n, base_ms) for n in range(WALKERS)]
    for walker in walkers:
        walker.start()
    for walker in walkers:
        assert walker.warm.wait(timeout=30), server.log()
        assert walker.failure is None, walker.failure
    return walkers


def stop_walkers(walkers: list[Walker]) -> None:
    for walker in walkers:
        walker.halt.set()
    for walker in walkers:
        walker.join(timeout=15)
        assert not walker.is_alive()
        assert walker.failure is None, walker.failure


class FlushWatch(threading.Thread):
    """The flushes of a server under load as PostgreSQL shows them: the reference of the
    kill -9 loss bound, measured in the same run, in points rather than seconds.

    It reads the newest stored point of each walker's first device again and again; each
    time that moves, a flush landed. The most points a walker's device moved between two
    landings is the load's flush cycle (interval and flush) counted in acknowledged
    requests: a busy runner makes the cycle slower and the walkers too, so the count
    holds where a duration would not.
    """

    def __init__(self, db: TestDatabase, walkers: Sequence[Walker], base_ms: int) -> None:
        super().__init__(daemon=True, name="flush-watch")
        self.dsn = db.dsn
        self.base_ms = base_ms
        self.walker_of = {walker.macs[0]: walker.number for walker in walkers}
        self.newest: dict[int, int] = {}      # walker → newest point of its device seen
        self.cycle_points: dict[int, int] = {}  # walker → most points between two landings
        self.landings = 0                       # moves seen, all walkers together
        self.halt = threading.Event()

    def run(self) -> None:
        with pg_admin.cursor(self.dsn) as cur:
            while not self.halt.wait(0.02):  # a poll: PostgreSQL offers no event for this
                cur.execute("SELECT mac::text, extract(epoch FROM time)::float8 FROM distance "
                            "WHERE mac = ANY(%s::macaddr[])", (list(self.walker_of),))
                for mac, ts in cur.fetchall():
                    number = self.walker_of[mac]
                    k = (round(ts * 1000) - self.base_ms) // STEP_MS
                    before = self.newest.get(number)
                    if before is not None and k > before:
                        self.cycle_points[number] = max(self.cycle_points.get(number, 0),
                                                        k - before)
                        self.landings += 1
                    self.newest[number] = k

    def wait_for_cycles(self, server: ServerProcess, landings: int) -> None:
        """Until every walker's device moved between two landings, `landings` moves in all."""
        deadline = time.monotonic() + 60  # a hang guard, not a bound on the flush
        while (len(self.cycle_points) < len(self.walker_of) or self.landings < landings):
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.02)

    def stop(self) -> None:
        self.halt.set()
        self.join(timeout=10)

    def loss_bound(self, number: int) -> int:
        """Points a kill may lose: those since the last landed flush began, which is at
        most one cycle before the kill, plus the flush running at the kill (one more)."""
        return 2 * self.cycle_points[number] + 1


def test_sigterm_under_load_stores_every_acknowledged_notification(
        start: Any, db: TestDatabase) -> None:
    server = start("sigterm")
    walkers = start_walkers(server)

    status = server.terminate()  # the walkers keep posting until they are refused
    stop_walkers(walkers)
    assert status == 0, server.log()

    tracks = stored_tracks(db)
    expected_notifications = 0
    for walker in walkers:
        acked = len(walker.acked)
        assert acked >= WARM_REQUESTS
        newest = newest_point(walker, tracks)
        # Every acknowledged point is stored; the one in doubt may or may not be.
        assert newest in ((acked - 1, acked) if walker.in_doubt else (acked - 1,))
        for d, mac in enumerate(walker.macs):
            expected_m = reference_m(range(newest + 1), walker.base_ms, phase_of(d))
            assert tracks[mac][0] == pytest.approx(expected_m, rel=1e-6)
        expected_notifications += (newest + 1) * DEVICES
    assert stored_notifications(db) == expected_notifications
    print(f"SIGTERM: {expected_notifications} notifications stored, "  # -rP
          f"{sum(len(w.acked) for w in walkers) * DEVICES} acknowledged")
    [(days_m,)] = db.query("SELECT sum(mtrs) FROM distance_history")
    assert days_m == pytest.approx(sum(m for m, _ in tracks.values()), rel=1e-5)


def test_kill_9_under_load_loses_at_most_one_flush_interval_and_restart_continues(
        start: Any, db: TestDatabase) -> None:
    first = start("first")
    walkers = start_walkers(first)
    watch = FlushWatch(db, walkers, walkers[0].base_ms)
    watch.start()
    watch.wait_for_cycles(first, 3 * WALKERS)  # periodic flushes have landed under load
    more = [walker.more(100) for walker in walkers]  # keep loading past them
    for event in more:
        assert event.wait(timeout=30)

    first.kill()
    watch.stop()
    stop_walkers(walkers)

    tracks = stored_tracks(db)
    newest_of: dict[int, int] = {}
    stored_total = 0
    lost = {}
    for walker in walkers:
        newest = newest_point(walker, tracks)
        newest_of[walker.number] = newest
        attempted = len(walker.acked) + (1 if walker.in_doubt else 0)
        assert newest < attempted  # nothing stored that was never sent
        assert newest >= watch.newest[walker.number]  # what a flush wrote stays written
        lost[walker.number] = len(walker.acked) - (newest + 1)
        assert lost[walker.number] <= watch.loss_bound(walker.number), \
            f"{lost[walker.number]} acknowledged points lost, more than one flush cycle " \
            f"({watch.cycle_points[walker.number]} points) and the flush at the kill"
        for d, mac in enumerate(walker.macs):
            expected_m = reference_m(range(newest + 1), walker.base_ms, phase_of(d))
            assert tracks[mac][0] == pytest.approx(expected_m, rel=1e-6)
        stored_total += (newest + 1) * DEVICES
    # Each device's day rows were taken with its track row: they add up to its total.
    for mac, (total_m, _, days_m) in stored_devices(db).items():
        assert days_m == pytest.approx(total_m, rel=1e-5), mac
    # The flush builds its rows chunk by chunk while requests keep arriving, so
    # the per-minute counters may already include a few notifications whose
    # points were not yet in the rows written: never fewer than the stored points.
    counted_at_kill = stored_notifications(db)
    acked_total = sum(len(w.acked) + (1 if w.in_doubt else 0) for w in walkers) * DEVICES
    assert stored_total <= counted_at_kill <= acked_total
    print(f"kill -9: acknowledged points lost per walker {lost}, "  # -rP
          f"points per flush cycle {watch.cycle_points}")

    # The devices walked on while the server was down; the restart picks each
    # walk up from its stored state (p1, p2, pending, held).
    second = start("second")
    conn = second.connection()
    resumed: dict[int, range] = {}
    for walker in walkers:
        resume = len(walker.acked) + 1
        resumed[walker.number] = range(resume, resume + 12)
        for k in resumed[walker.number]:
            body = json.dumps({"notifications": [
                notification(mac, k, walker.base_ms, phase_of(d))
                for d, mac in enumerate(walker.macs)]})
            conn.request("POST", "/notification", body=body,
                         headers={"Authorization": AUTH, "Content-Type": "application/json"})
            reply = conn.getresponse()
            assert (reply.status, json.loads(reply.read())["accepted"]) == (200, DEVICES)
    conn.close()
    assert second.terminate() == 0, second.log()

    final = stored_tracks(db)
    for walker in walkers:
        points = (*range(newest_of[walker.number] + 1), *resumed[walker.number])
        for d, mac in enumerate(walker.macs):
            expected_m = reference_m(points, walker.base_ms, phase_of(d))
            assert final[mac][0] == pytest.approx(expected_m, rel=1e-5), mac
    assert stored_notifications(db) == counted_at_kill + WALKERS * 12 * DEVICES


BIG_WALKERS = 4
BIG_DEVICES = 500             # per walker: 2,000 devices, a flush of two chunks
KILLS = 5


@functools.cache
def reference_totals(history: tuple[tuple[int, int], ...], base_ms: int,
                     phase: int) -> dict[int, float]:
    """Point k → the distance the filter credits over `history` (ranges of point indices,
    in the order the server applied them) up to and including k."""
    points = [k for first, last in history for k in range(first, last + 1)]
    body = {"notifications": [notification("02:00:00:00:00:01", k, base_ms, phase)
                              for k in points]}
    track: Track | None = None
    totals = {}
    for k, event in zip(points, parse_envelope(body, wall_clock_s()).events, strict=True):
        assert isinstance(event, Movement)
        track, _, _ = advance(track, event, FilterParams())
        totals[k] = track.total_m
    return totals


def stored_devices(db: TestDatabase) -> dict[str, tuple[float, int, float]]:
    """mac → (distance.mtrs, newest point's epoch ms, sum of its distance_history.mtrs)."""
    rows = db.query("SELECT d.mac::text, d.mtrs, extract(epoch FROM d.time)::float8, "
                    "coalesce(sum(h.mtrs), 0) FROM distance d "
                    "LEFT JOIN distance_history h USING (mac) GROUP BY 1, 2, 3")
    return {mac: (mtrs, round(ts * 1000), days) for mac, mtrs, ts, days in rows}


def all_stored_since(db: TestDatabase, first: int, base_ms: int) -> bool:
    """Every device of the big walk has a point from index `first` on stored."""
    stored = stored_devices(db)
    return len(stored) == BIG_WALKERS * BIG_DEVICES and all(
        (ts - base_ms) // STEP_MS >= first for _, ts, _ in stored.values())


def test_kill_9_at_many_moments_of_a_large_flush_keeps_each_device_s_rows_one_snapshot(
        start: Any, db: TestDatabase) -> None:
    """Five kill -9s of a server flushing 2,000 walking devices every FLUSH_S.

    After each: for every device, the sum of its day rows equals its total, and both
    equal the reference filter over the points the server had applied up to the newest
    one stored (and no more acknowledged points are missing than FlushWatch.loss_bound);
    the next server continues each walk from the stored state.
    """
    base_ms = int(wall_clock_s() * 1000) - 3 * 3600 * 1000
    # Per device: the ranges of point indices the server applied, in order.
    histories = {(w, d): [] for w in range(BIG_WALKERS) for d in range(BIG_DEVICES)}
    first = 0
    worst_lost = worst_cycle = 0
    for kill in range(KILLS + 1):
        server = start(f"big{kill}")
        walkers = [Walker(server, n, base_ms, devices=BIG_DEVICES, first=first)
                   for n in range(BIG_WALKERS)]
        warm = [walker.more(10) for walker in walkers]
        for walker in walkers:
            walker.start()
        for event in warm:
            assert event.wait(timeout=30), server.log()
        deadline = time.monotonic() + 30  # a hang guard, not a bound on the flush
        while not all_stored_since(db, first, base_ms):  # a flush of this server landed
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.02)
        watch = FlushWatch(db, walkers, base_ms)
        watch.start()
        if kill == KILLS:
            watch.stop()
            assert server.terminate() == 0, server.log()
        else:
            watch.wait_for_cycles(server, 2 * BIG_WALKERS)  # this load's flush cycle
            more = [walker.more(5 + 4 * kill) for walker in walkers]  # a moment of its own
            for event in more:
                assert event.wait(timeout=30), server.log()
            server.kill()
            watch.stop()
        stop_walkers(walkers)

        stored = stored_devices(db)
        for walker in walkers:
            attempted = walker.first + len(walker.acked) + (1 if walker.in_doubt else 0)
            for d, mac in enumerate(walker.macs):
                total_m, newest_ms, days_m = stored[mac]
                k = (newest_ms - base_ms) // STEP_MS
                assert k < attempted  # nothing stored that was never sent
                history = histories[walker.number, d]
                if k >= walker.first:
                    history.append((walker.first, k))
                assert history and history[-1][1] == k, (mac, k, history)
                # One snapshot per device: its day rows add up to its total...
                assert days_m == pytest.approx(total_m, rel=1e-5), mac
                # ...which is the filter's over the points it had applied.
                expected_m = reference_totals(tuple(history), base_ms, phase_of(d))[k]
                assert total_m == pytest.approx(expected_m, rel=1e-5), mac
                if kill == KILLS:
                    assert k >= attempted - 1 - (1 if walker.in_doubt else 0)
                    continue
                lost = walker.first + len(walker.acked) - (k + 1)
                assert lost <= watch.loss_bound(walker.number), \
                    f"{mac}: {lost} acknowledged points lost at kill {kill}, more than one " \
                    f"flush cycle ({watch.cycle_points[walker.number]} points) and the flush " \
                    f"at the kill"
                worst_lost = max(worst_lost, lost)
                worst_cycle = max(worst_cycle, watch.cycle_points[walker.number])
        # The devices walked on while the server was down: one point is skipped.
        first = max(w.first + len(w.acked) + 1 for w in walkers) + 1
    print(f"kill -9 x {KILLS} during 2,000-device flushes: at most {worst_lost} "  # -rP
          f"acknowledged points lost per device, flush cycles of up to {worst_cycle} points")


class ThreadedProxy:
    """tests.pgproxy.PgProxy on an event loop of its own, driven from this thread."""

    def __init__(self, dsn: str) -> None:
        self.proxy = PgProxy(dsn)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.call(self.proxy.start())

    def call(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=10)

    def close(self) -> None:
        self.call(self.proxy.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


def wait_for_health(server: ServerProcess, status: int, timeout_s: float = 15.0) -> float:
    """Poll /healthz (no event exists for it) until it answers `status`; seconds waited."""
    started = time.monotonic()
    while True:
        got, _ = server.request("GET", "/healthz")
        if got == status:
            return time.monotonic() - started
        assert time.monotonic() - started < timeout_s, f"/healthz still {got}\n{server.log()}"
        time.sleep(0.05)


def test_database_outage_with_a_real_clock(db: TestDatabase, workdir: Path) -> None:
    interval_s = 0.3
    proxy = ThreadedProxy(db.dsn)
    server = ServerProcess(workdir, "outage", env={
        **CLASSIC_FILTER, "TYS_DATABASE_DSN": proxy.proxy.proxied_dsn(),
        "TYS_DATABASE_FLUSH_INTERVAL_S": str(interval_s),
        "TYS_DATABASE_CONNECT_TIMEOUT_S": "1", "TYS_DATABASE_STATEMENT_TIMEOUT_S": "1"})
    try:
        server.wait_for("READY=1")
        base_ms = int(wall_clock_s() * 1000) - 3600 * 1000
        mac = mac_of(9, 9)

        def post(points: range) -> None:
            body = {"notifications": [notification(mac, k, base_ms, 0) for k in points]}
            assert server.request("POST", "/notification", body, auth=CMX_AUTH) == \
                (200, {"accepted": len(points), "ignored": 0, "rejected": 0})

        post(range(0, 10))
        proxy.call(proxy.proxy.down())
        post(range(10, 20))  # accepted while PostgreSQL is gone
        waited_s = wait_for_health(server, 503)
        print(f"outage: /healthz 503 after {waited_s:.2f} s (interval {interval_s} s)")  # -rP
        # Unhealthy once the first failed flush is three intervals old, never before (how
        # soon after is the wall clock's on a busy runner; the threshold itself is tested
        # on a moved clock: tests/store/test_db_faults.py).
        assert waited_s >= 3 * interval_s
        _, health = server.request("GET", "/healthz")
        assert health["database"] == "down"
        assert health["backlog"] >= 1  # also while a (backed-off) flush holds the keys
        post(range(20, 30))
        proxy.call(proxy.proxy.up())
        wait_for_health(server, 200)  # the next (backed-off) flush succeeded
        [(stored_m,)] = db.query("SELECT mtrs FROM distance")
        assert stored_m == pytest.approx(reference_m(range(30), base_ms, 0), rel=1e-6)
        post(range(30, 40))
        assert server.terminate() == 0, server.log()
    finally:
        server.close()
        proxy.close()
    [(stored_m,)] = db.query("SELECT mtrs FROM distance")
    assert stored_m == pytest.approx(reference_m(range(40), base_ms, 0), rel=1e-6)
    assert stored_notifications(db) == 40
