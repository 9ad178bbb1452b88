"""kill -9 and restart of a server fed by the Cisco Spaces Firehose: no walk lost or doubled.

The fake Firehose (tools/cmx_sim) runs on an IOLoop of its own thread, so it outlives
the servers it feeds; each server is a real `python -m tys_server` subprocess with
`feeds.spaces_firehose` pointed at it and no CMX. The stream is 36 devices walking for
six minutes of event time (straight walks and walks with corners, a fix every 2-6 s,
repeats, some fixes pushed up to 15 s late, four devices changing floor half-way),
dated in the past by the machine's clock (wall_clock_s: the servers run on it). The
fake's quirks are on: live events go out in groups of five newest first, every seventh
line of a stream is sent twice, and a resume replays 30 s more than it was asked.

The reference is the same code the server runs, in the same tracking.filter mode (a
Runtime's State built from the same settings, the SpacesReader), fed the whole stream
in this process in the order the events were pushed. The live groups reverse only
events of different devices (checked: `per_device_order`) and a replay goes in push
order, so each device's events reach every server in that order, late ones included.

Three kills, none at a flush boundary: two while a flush is held half-way by a lock on
`count` (its rows written, not committed) with newer events applied in memory only, and
one before the restarted server's first flush, right after it applied its replay.
After each kill the database holds exactly the reference's state at the last committed
flush; at the end, every device's distance and day rows are the reference's over the
whole stream. (It found replayed fixes from before a floor change credited twice:
core/state.py now takes a fix older than its track as stale whatever its floor.)
"""

from __future__ import annotations

import asyncio
import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Coroutine, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pytest

from tests.conftest import MONITOR_AUTH, TestDatabase, basic
from tests.support.clock import wall_clock_s
from tests.support.flushhold import TableLock
from tests.support.procserver import ServerProcess
from tools.cmx_sim import fake_firehose
from tools.cmx_sim.fake_firehose import Connection, FakeFirehose
from tys_server.config import Settings, load_settings
from tys_server.core.state import State
from tys_server.feeds.spaces_events import SpacesReader
from tys_server.server import Runtime

pytestmark = pytest.mark.slow

T = TypeVar("T")
Event = dict[str, Any]

DEVICES = 36
WALK_MS = 360_000         # six minutes of event time
NOISE_FT = 4.0            # location noise (σ) of each fix
LATE_SHARE = 0.06         # fixes pushed after newer ones, by LATE_MS
LATE_MS = (4_000, 15_000)  # within the ~20 s of lateness DESIGN 12.2 expects
REPEAT_SHARE = 0.05       # fixes that repeat the device's previous position
REORDER = 5               # fake: live events in groups of five, newest first
REPEAT_EVERY = 7          # fake: every seventh line of a stream sent twice
REPLAY_SLACK_S = 30.0     # fake: a resume replays this much before fromTimestamp
FLUSH_S = 0.2
NO_FLUSH_S = 3600.0       # a server that must not flush during its short life
HASH_KEY = "firehose-faults"
LOCATION_UPDATE = "DEVICE_LOCATION_UPDATE"
HANG_GUARD_S = 60.0       # a hang guard, never a bound on how fast anything is
# The stored columns are real (float4: a 24-bit mantissa, 6e-8 relative); a lost or
# doubled leg is at least the gate's 30 ft (9 m).
REAL = {"rel": 1e-6, "abs": 1e-6}


def walk(device: int, rng: random.Random) -> list[tuple[int, int, float, float]]:
    """(offset ms, floor, x_ft, y_ft) of one device's fixes: even devices walk straight,
    odd ones turn a corner every 45-75 s; device 4, 13, ... takes the stairs half-way."""
    period_ms = 2_000 + 1_000 * (device % 5)
    speed_fps = 3.3 + 0.05 * device  # 1.0-1.5 m/s
    leg_ms = None if device % 2 == 0 else 45_000 + 5_000 * (device % 7)
    turn = math.pi / 2 if device % 4 == 1 else -math.pi / 2
    heading = rng.uniform(0.0, 2 * math.pi)
    x_ft, y_ft = rng.uniform(100.0, 900.0), rng.uniform(100.0, 900.0)
    floor = 1 + device % 2
    t_ms = rng.randrange(period_ms)
    next_turn_ms = leg_ms or WALK_MS
    fixes: list[tuple[int, int, float, float]] = []
    last = (x_ft, y_ft)
    while t_ms < WALK_MS:
        if leg_ms is not None and t_ms >= next_turn_ms:
            heading += turn
            next_turn_ms += leg_ms
        if device % 9 == 4 and t_ms >= WALK_MS // 2:
            floor = 3  # up the stairs: the track starts again there
        step_ft = speed_fps * period_ms / 1000
        x_ft += step_ft * math.cos(heading)
        y_ft += step_ft * math.sin(heading)
        if fixes and rng.random() < REPEAT_SHARE:
            fix = last  # Spaces reports on a timer and repeats positions
        else:
            fix = (x_ft + rng.gauss(0.0, NOISE_FT), y_ft + rng.gauss(0.0, NOISE_FT))
        fixes.append((t_ms, floor, round(fix[0], 3), round(fix[1], 3)))
        last = fix
        t_ms += period_ms
    return fixes


def mac_of(device: int) -> str:
    return f"00:52:bf:74:{device:02x}:01"


def build_stream(base_ms: int) -> list[Event]:
    """The DEVICE_LOCATION_UPDATE events in push order (a multiple of REORDER of them)."""
    rng = random.Random(1313)
    keyed: list[tuple[int, int, int, Event]] = []
    for device in range(DEVICES):
        for k, (t_ms, floor, x_ft, y_ft) in enumerate(walk(device, rng)):
            push_ms = t_ms
            if rng.random() < LATE_SHARE:
                push_ms += rng.randrange(*LATE_MS)
            event = fake_firehose.location_update(
                mac_of(device), floor, x_ft, y_ft, record_ms=base_ms + t_ms,
                ip=f"10.30.0.{10 + device}", uid=f"walk-{device:02d}-{k:04d}")
            keyed.append((push_ms, device, t_ms, event))
    keyed.sort(key=lambda item: item[:3])
    # The fake reverses each group of REORDER pushed events: a device appears at most
    # once in a group, so that each device's events go out live in their push order, as
    # a replay sends them (a second one waits for the next group).
    waiting = deque(event for *_, event in keyed)
    events: list[Event] = []
    while len(waiting) >= REORDER:
        group: list[Event] = []
        later: list[Event] = []
        while waiting and len(group) < REORDER:
            event = waiting.popleft()
            (later if any(same_device(event, e) for e in group) else group).append(event)
        waiting.extendleft(reversed(later))
        events += group
    return events[:len(events) // REORDER * REORDER]  # no group left waiting in the fake


def same_device(one: Event, other: Event) -> bool:
    return bool(one["deviceLocationUpdate"]["device"]["macAddress"]
                == other["deviceLocationUpdate"]["device"]["macAddress"])


def per_device_order(events: Sequence[Event]) -> dict[str, list[str]]:
    """Each device's recordUids in the order of events."""
    order: dict[str, list[str]] = {}
    for event in events:
        mac = event["deviceLocationUpdate"]["device"]["macAddress"]
        order.setdefault(mac, []).append(event["recordUid"])
    return order


def live_order(events: Sequence[Event]) -> list[Event]:
    """The order the fake sends pushed events live in: groups of REORDER, newest first."""
    return [e for i in range(0, len(events), REORDER) for e in events[i:i + REORDER][::-1]]


class FirehoseThread:
    """The fake Firehose on an event loop of its own thread: it outlives the servers."""

    def __init__(self, fake: FakeFirehose) -> None:
        self.fake = fake
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True,
                                       name="fake-firehose")
        self.thread.start()
        self.server, self.url = self.call(self._start())

    async def _start(self) -> Any:
        return fake_firehose.start(self.fake)

    def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the fake's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(HANG_GUARD_S)

    def push(self, events: Sequence[Event]) -> None:
        """Store and send events (on the fake's loop, as its handlers run there)."""
        async def push() -> None:
            self.fake.push(*events)
        self.call(push())

    def connections(self) -> list[Connection]:
        """The connections the fake answered so far."""
        async def copy() -> list[Connection]:
            return list(self.fake.connections)
        return self.call(copy())

    def wait_for_connection(self, number: int) -> Connection:
        """The number-th connection, once it is being served."""
        async def connected() -> Connection:
            await self.fake.wait_for(lambda fake: len(fake.connections) >= number)
            return self.fake.connections[number - 1]
        return self.call(asyncio.wait_for(connected(), HANG_GUARD_S))

    def close(self) -> None:
        async def stop() -> None:
            self.fake.end_streams()
            self.server.stop()
            await self.server.close_all_connections()
        self.call(stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


class Pushed:
    """What the test pushed, and when each server connected: what each one must read."""

    def __init__(self, firehose: FirehoseThread, events: list[Event]) -> None:
        self.firehose = firehose
        self.events = events
        self.count = 0  # events[:count] are pushed
        self.newest_ms = 0

    def push_to(self, stop: int) -> None:
        assert stop % REORDER == 0  # whole groups: none waits in the fake for more events
        part = self.events[self.count:stop]
        self.firehose.push(part)
        self.count = stop
        self.newest_ms = max([self.newest_ms, *(e["recordTimestamp"] for e in part)])

    def replayed(self, connection: Connection) -> int:
        """Events a connection made now gets in its replay: those pushed, from its
        fromTimestamp less the fake's slack on."""
        if connection.from_timestamp is None:
            return 0
        since_ms = connection.from_timestamp - REPLAY_SLACK_S * 1000
        return sum(e["recordTimestamp"] >= since_ms for e in self.events[:self.count])


def metrics(server: ServerProcess) -> dict[str, float]:
    """The server's /metrics samples by name with labels, e.g. 'tys_stale_movements_total'."""
    conn = server.connection()
    try:
        conn.request("GET", "/metrics", headers={"Authorization": basic(MONITOR_AUTH)})
        reply = conn.getresponse()
        text = reply.read().decode()
    finally:
        conn.close()
    assert reply.status == 200, text
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


def location_lines(server: ServerProcess, outcome: str) -> int:
    """DEVICE_LOCATION_UPDATE lines the server's consumer read with that outcome."""
    name = (f'tys_feed_events_total{{feed="spaces_firehose",outcome="{outcome}",'
            f'type="{LOCATION_UPDATE}"}}')
    return int(metrics(server).get(name, 0))


def until(predicate: Callable[[], bool], server: ServerProcess, what: str) -> None:
    """Poll (a subprocess offers no event to await) until predicate() holds."""
    deadline = time.monotonic() + HANG_GUARD_S
    while not predicate():
        assert time.monotonic() < deadline, f"no {what}:\n{server.log()}"
        time.sleep(0.02)


def stored_cursor(db: TestDatabase) -> int | None:
    rows = db.query("SELECT cursor_ms FROM feed_cursor WHERE feed = 'spaces_firehose'")
    return int(rows[0][0]) if rows else None


def backlog(server: ServerProcess) -> int:
    status, health = server.request("GET", "/healthz")
    assert status == 200, health
    return int(health["backlog"])


class Reference:
    """The server's filter and gate (a Runtime's State, built from the same settings)
    fed the pushed events in this process; snapshots of what the database must hold."""

    def __init__(self, settings: Settings) -> None:
        self.state: State = Runtime(settings).state
        spaces = settings.feeds.spaces_firehose
        self.reader = SpacesReader(coordinate_unit=spaces.coordinate_unit,
                                   hash_key=settings.cmx.mac_hash_key)

    def feed(self, events: Sequence[Event]) -> None:
        now_s = wall_clock_s()
        batch, _ = self.reader.read([orjson.dumps(e) for e in events], now_s)
        assert batch.rejected == 0
        self.state.ingest(batch, now_s)

    def snapshot(self) -> tuple[dict[str, float], dict[tuple[str, int], float]]:
        """mac → total metres, and (mac, day start in epoch s) → metres."""
        calendar = self.state.calendar
        return ({mac: track.total_m for mac, track in self.state.tracks.items()},
                {(mac, round(calendar.day_start(day))): m
                 for (mac, day), m in self.state.days.items()})


def assert_stored(db: TestDatabase, expected: tuple[dict[str, float],
                                                    dict[tuple[str, int], float]]) -> int:
    """distance.mtrs, the distance_history rows and their sum per device are the
    reference's (the columns are real: float4's precision); returns the devices."""
    totals, days = expected
    stored = dict(db.query("SELECT mac::text, mtrs FROM distance"))
    rows = db.query("SELECT mac::text, extract(epoch FROM time)::float8, mtrs "
                    "FROM distance_history")
    stored_days = {(mac, round(start)): m for mac, start, m in rows}
    assert stored.keys() == totals.keys()
    assert stored_days.keys() == days.keys()
    for mac, total_m in totals.items():
        assert stored[mac] == pytest.approx(total_m, **REAL), mac
        days_m = sum(m for (owner, _), m in stored_days.items() if owner == mac)
        assert days_m == pytest.approx(total_m, **REAL), mac
    for key, metres in days.items():
        assert stored_days[key] == pytest.approx(metres, **REAL), key
    return len(totals)


def server_env(db: TestDatabase, url: str, mode: str, flush_s: float) -> dict[str, str]:
    """A Spaces-only site: the Firehose at the fake, no CMX, the key from the environment."""
    return {"TYS_DATABASE_DSN": db.dsn, "TYS_DATABASE_FLUSH_INTERVAL_S": str(flush_s),
            "TYS_TRACKING_FILTER": mode,
            "TYS_CMX_HOSTS": "", "TYS_FEEDS_CMX_ENABLED": "false",
            "TYS_CMX_MAC_HASH_KEY": HASH_KEY,
            "TYS_FEEDS_SPACES_FIREHOSE_ENABLED": "true",
            "TYS_FEEDS_SPACES_FIREHOSE_URL": url,
            "TYS_FEEDS_SPACES_FIREHOSE_API_KEY": fake_firehose.API_KEY}


@pytest.fixture
def firehose() -> Iterator[FirehoseThread]:
    fake = FakeFirehose(reorder_window=REORDER, repeat_every=REPEAT_EVERY,
                        replay_slack_s=REPLAY_SLACK_S)
    thread = FirehoseThread(fake)
    yield thread
    thread.close()


@pytest.fixture
def servers() -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    yield started
    for server in started:
        server.close()


@pytest.mark.parametrize("mode", ["adaptive", "classic"])  # tracking.filter
def test_kill_9_and_restart_of_a_firehose_fed_server_neither_lose_nor_double_a_walk(
        mode: str, db: TestDatabase, workdir: Path, firehose: FirehoseThread,
        servers: list[ServerProcess]) -> None:
    base_ms = (int(wall_clock_s()) - 120) * 1000 - WALK_MS  # all of it in the past
    events = build_stream(base_ms)
    assert per_device_order(live_order(events)) == per_device_order(events)
    pushed = Pushed(firehose, events)
    firehose.fake.clock = lambda: pushed.newest_ms / 1000  # KEEP_ALIVE: the stream's now
    n = len(events)
    cut = [round(n * share / REORDER) * REORDER for share in (0.25, 0.35, 0.45, 0.65, 0.75,
                                                              0.8)]
    env = server_env(db, firehose.url, mode, FLUSH_S)
    settings = load_settings("conf/tys.yaml", environ=env)
    reference = Reference(settings)
    overlap_ms = int(settings.feeds.spaces_firehose.resume_overlap_s * 1000)
    connected = 0

    def start(name: str, flush_s: float = FLUSH_S) -> tuple[ServerProcess, Connection, int]:
        """A server on the same database; its connection and the size of its replay."""
        nonlocal connected
        server = ServerProcess(workdir, name, env=server_env(db, firehose.url, mode, flush_s))
        servers.append(server)
        server.wait_for("READY=1")
        connected += 1
        connection = firehose.wait_for_connection(connected)
        return server, connection, pushed.replayed(connection)

    def read_all(server: ServerProcess, events_read: int) -> None:
        """Until the server's consumer read events_read distinct events."""
        until(lambda: location_lines(server, "accepted") == events_read, server,
              f"{events_read} events read")

    def flushed(server: ServerProcess) -> None:
        """Until every change is committed, with the cursor of everything pushed."""
        until(lambda: stored_cursor(db) == pushed.newest_ms and backlog(server) == 0,
              server, f"flush of cursor {pushed.newest_ms}")

    def kill_mid_flush(server: ServerProcess, read_before: int, stop: int) -> int:
        """Hold the next flush half-way, push events[pushed.count:stop], kill -9 once the
        server applied them and a flush of them waits; how many that was."""
        cursor_before = stored_cursor(db)
        with TableLock(db.dsn, "count") as lock:
            first = pushed.count
            pushed.push_to(stop)
            read_all(server, read_before + stop - first)
            until(lambda: lock.waiters() > 0, server, "flush held half-way")
            server.kill()
        assert stored_cursor(db) == cursor_before  # the held flush never committed
        return stop - first

    # A: no cursor yet, live events only; a flush stores the cursor; kill mid-flush.
    first, conn_a, _ = start("a")
    assert (conn_a.from_timestamp, conn_a.status) == (None, 200)
    pushed.push_to(cut[0])
    read_all(first, cut[0])
    flushed(first)
    reference.feed(events[:cut[0]])
    at_kill_1 = reference.snapshot()
    flushed_ms = pushed.newest_ms
    lost_1 = kill_mid_flush(first, cut[0], cut[1])
    cursor_1 = stored_cursor(db)
    assert cursor_1 == flushed_ms
    devices = assert_stored(db, at_kill_1)

    # The walkers walk on while no server reads the stream.
    pushed.push_to(cut[2])

    # B resumes from the stored cursor less the overlap; flush; kill mid-flush again.
    second, conn_b, replayed_b = start("b")
    assert (conn_b.from_timestamp, conn_b.status) == (cursor_1 - overlap_ms, 200)
    read_all(second, replayed_b)
    pushed.push_to(cut[3])
    read_all(second, replayed_b + cut[3] - cut[2])
    flushed(second)
    reference.feed(events[cut[0]:cut[3]])
    at_kill_2 = reference.snapshot()
    stale_b = metrics(second)["tys_stale_movements_total"]
    duplicates_b = location_lines(second, "duplicate")
    flushed_ms = pushed.newest_ms
    lost_2 = kill_mid_flush(second, replayed_b + cut[3] - cut[2], cut[4])
    cursor_2 = stored_cursor(db)
    assert cursor_2 == flushed_ms
    assert_stored(db, at_kill_2)

    # C reads its replay and dies before its first flush: nothing of it is stored.
    third, conn_c, replayed_c = start("c", NO_FLUSH_S)
    assert (conn_c.from_timestamp, conn_c.status) == (cursor_2 - overlap_ms, 200)
    read_all(third, replayed_c)
    third.kill()
    assert stored_cursor(db) == cursor_2
    assert_stored(db, at_kill_2)

    # D resumes from the same cursor, reads to the end, and stops cleanly.
    pushed.push_to(cut[5])
    last, conn_d, replayed_d = start("d")
    assert (conn_d.from_timestamp, conn_d.status) == (cursor_2 - overlap_ms, 200)
    read_all(last, replayed_d)
    pushed.push_to(n)
    read_all(last, replayed_d + n - cut[5])
    stale_d = metrics(last)["tys_stale_movements_total"]
    duplicates_d = location_lines(last, "duplicate")
    assert last.terminate() == 0, last.log()
    assert len(firehose.connections()) == 4  # one connection per server: no reconnects

    reference.feed(events[cut[3]:])
    assert stored_cursor(db) == pushed.newest_ms
    assert assert_stored(db, reference.snapshot()) == devices == DEVICES
    # The replays did overlap what was stored: fixes older than their tracks were
    # dropped, and every stream had duplicate recordUids to drop.
    assert stale_b > 0 and stale_d > 0
    assert duplicates_b > 0 and duplicates_d > 0
    walked_m = sum(reference.snapshot()[0].values())
    print(f"Firehose kill -9 x 3 ({mode}): {n} events of {DEVICES} devices, "
          f"{walked_m:.0f} m walked; "
          f"read but not committed at the kills: {lost_1}, {lost_2}, {replayed_c}; "
          f"replayed on resume: {replayed_b}, {replayed_c}, {replayed_d}; "
          f"stale fixes ignored {stale_b:.0f}, {stale_d:.0f}; duplicate lines dropped "
          f"{duplicates_b}, {duplicates_d}; every device's distance equal to the "
          f"reference")  # -rP
