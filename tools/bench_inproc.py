"""Rows measured inside one server process: flush and its loop stalls, memory, reload,
day leaderboards.

``python -m tools.bench_inproc flush --dsn DSN --devices N [--unlogged]``,
``python -m tools.bench_inproc memory --dsn DSN --devices N`` and
``python -m tools.bench_inproc leaderboard --users N`` each print one JSON object.
They run in a fresh process of their own so that resident memory and the event loop are
the server code's alone. The flush row drives the real State and Flusher; the memory row
starts a real Runtime over a database filled with N devices; the leaderboard row reads
the real Boards over a State seeded with N users' distance on the event's days.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import gc
import json
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tys_server.config import load_settings
from tys_server.core.events import Batch, Movement
from tys_server.core.leaderboard import Board, Boards
from tys_server.core.snapshot import Loaded
from tys_server.core.state import State
from tys_server.core.tracking import FilterParams
from tys_server.server import Runtime
from tys_server.store.database import Store
from tys_server.store.flusher import Flusher

ROOT = Path(__file__).resolve().parents[1]
FLOOR = 723413320329068590
TICK_S = 0.005


class LagProbe:
    """A 5 ms ticker on the loop: the longest it waited beyond its interval is a stall."""

    def __init__(self, interval_s: float = TICK_S) -> None:
        self.interval_s = interval_s
        self.longest_s = 0.0
        self.ticks = 0
        self._task: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        clock = time.perf_counter
        while True:
            before = clock()
            await asyncio.sleep(self.interval_s)
            self.longest_s = max(self.longest_s, clock() - before - self.interval_s)
            self.ticks += 1

    def __enter__(self) -> LagProbe:
        self._task = asyncio.get_running_loop().create_task(self._tick())
        return self

    def __exit__(self, *_: object) -> None:
        assert self._task is not None
        self._task.cancel()


def _mac(index: int) -> str:
    h = f"0230{index:08x}"
    return ":".join(h[i:i + 2] for i in range(0, 12, 2))


def walk_every_device(state: State, macs: list[str], step: int, now_s: float) -> None:
    """One 50 ft step east for every device (from step 2 on, each step credits a leg)."""
    ts = now_s - 3600 + step * 5.0
    events: list[Any] = [Movement(mac, FLOOR, 50.0 * step, 10.0 + i % 300, 50.0, ts)
                         for i, mac in enumerate(macs)]
    state.ingest(Batch(events, len(events), 0, 0, {}), now_s)


async def flush_row(dsn: str, devices: int, unlogged: bool) -> dict[str, Any]:
    """Flush `devices` dirty devices (new rows, then updates) while a ticker runs."""
    store = await Store.connect(dsn, pool_size=2, connect_timeout_s=5.0,
                                statement_timeout_s=300.0)
    try:
        await store.apply_schema(unlogged=unlogged)
        state = State(FilterParams(), "UTC")
        flusher = Flusher(state, store, 3600.0)
        macs = [_mac(i) for i in range(devices)]
        now_s = time.time()
        out: dict[str, Any] = {"devices": devices, "unlogged": unlogged}
        for step in range(3):
            walk_every_device(state, macs, step, now_s)
        for phase, step in (("insert", 3), ("update", 4)):
            if phase == "update":
                walk_every_device(state, macs, step, now_s)
            # The fill just made 100,000 events at once, all still referenced: collect
            # them now, as a server that met them over minutes would have long done,
            # rather than in the middle of the flush being measured.
            gc.collect()
            rows = len(state.dirty.tracks) + len(state.dirty.days)
            with LagProbe() as probe:
                started = time.perf_counter()
                ok = await flusher.flush_once()
                elapsed = time.perf_counter() - started
                await asyncio.sleep(2 * TICK_S)  # let the ticker see the end of the flush
            out[phase] = {"ok": ok, "rows": rows, "seconds": round(elapsed, 3),
                          "longest_stall_ms": round(probe.longest_s * 1000, 1),
                          "ticks": probe.ticks}
        return out
    finally:
        await store.close()


# Day rows per device in the reload row: a five-day event's worth of distance_history.
HISTORY_DAYS = 5


def fill_devices(dsn: str, devices: int, days: int = HISTORY_DAYS) -> None:
    """`devices` tracks and `days` day rows each (the last days, adding up to the
    track's total), written by PostgreSQL itself."""
    from tools import pg_admin
    from tools.bench_env import apply_schema

    apply_schema(dsn)
    with pg_admin.cursor(dsn, autocommit=False) as cur:
        # 12 hex digits are a macaddr; points in feet, a real 18-digit floorId.
        cur.execute(
            "INSERT INTO distance (mac, mtrs, floor_id, point_1, point_2, distance_1to2,"
            " held_m, time) "
            "SELECT ('0240' || lpad(to_hex(i), 8, '0'))::macaddr, (random() * 20000)::real,"
            " %s + i %% 3, point(random() * 600, random() * 400),"
            " point(random() * 600, random() * 400), (random() * 15)::real, 0,"
            " now() - random() * interval '1 hour' "
            "FROM generate_series(0, %s - 1) AS i", (FLOOR, devices))
        cur.execute(
            "INSERT INTO distance_history (time, mac, mtrs) "
            "SELECT (date_trunc('day', now() AT TIME ZONE 'UTC') - d * interval '1 day')"
            " AT TIME ZONE 'UTC', mac, mtrs / %s"
            " FROM distance, generate_series(0, %s - 1) AS d", (days, days))
        cur.execute("ANALYZE")


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


async def memory_row(dsn: str, devices: int) -> dict[str, Any]:
    """Start a Runtime over `devices` stored devices and their day rows: reload time and
    resident memory."""
    base = load_settings(ROOT / "conf" / "tys.yaml", environ={})
    settings = dataclasses.replace(base, database=dataclasses.replace(
        base.database, dsn=dsn, flush_interval_s=3600.0))
    runtime = Runtime(settings)
    gc.collect()
    before_kib = _status_kib("VmRSS")
    started = time.perf_counter()
    await runtime.start()
    reload_s = time.perf_counter() - started
    gc.collect()
    after_kib = _status_kib("VmRSS")
    tracked = len(runtime.state.tracks)
    day_rows = len(runtime.state.days)
    await runtime.stop()
    return {"devices": tracked, "day_rows": day_rows, "reload_s": round(reload_s, 2),
            "rss_mib": round(after_kib / 1024, 1),
            "peak_rss_mib": round(_status_kib("VmHWM") / 1024, 1),
            "bytes_per_device": round((after_kib - before_kib) * 1024 / max(tracked, 1))}


EVENT_DAYS = 5
DATES = 60  # a client cycling through two months of dates, the event's days among them


def _event_state(users: int) -> tuple[State, int]:
    """`users` registered users with distance on each of EVENT_DAYS days; the first day."""
    state = State(FilterParams(), "UTC")
    first = dt.date(2026, 6, 7)
    macs = [_mac(i) for i in range(users)]
    state.seed(Loaded(
        users=[(f"u{i}@bench.example", f"u{i}") for i in range(users)],
        devices=[(mac, f"u{i}@bench.example") for i, mac in enumerate(macs)],
        tracks=[],
        days=[(mac, dt.datetime.combine(first + dt.timedelta(d), dt.time(), dt.UTC).timestamp(),
               float(i % 997 + d)) for i, mac in enumerate(macs) for d in range(EVENT_DAYS)],
        counts=[], zones=[]))
    return state, first.toordinal()


def _read(board: Board) -> bytes:
    """What the service does per leaderboard request: its cached reply, built once."""
    reply = board.replies.get(10)
    if reply is None:
        reply = board.replies[10] = json.dumps(
            [(e.username, e.total_m) for e in board.ranking.top(10)]).encode()
    return reply


def leaderboard_row(users: int, rounds: int = 9) -> dict[str, Any]:
    """Requests cycling through DATES dates against the overall board's, and one build."""
    state, first = _event_state(users)
    boards = Boards(state, lambda user: True, refresh_interval_s=0.5)
    dates = [first + offset for offset in range(-DATES // 2, DATES - DATES // 2)]
    requests = DATES * 100
    clock = time.perf_counter

    def overall_s() -> float:
        started = clock()
        for _ in range(requests):
            _read(boards.overall())
        return clock() - started

    def cycling_s() -> float:
        started = clock()
        for index in range(requests):
            _read(boards.day(dates[index % DATES]))
        return clock() - started

    overall_s(), cycling_s()  # the boards' first builds are the build row's business
    pairs = [(overall_s(), cycling_s()) for _ in range(rounds)]
    builds_ms = []
    for _ in range(5):
        fresh = Boards(state, lambda user: True, refresh_interval_s=0.5)
        started = clock()
        fresh.day(first)
        builds_ms.append((clock() - started) * 1000)
    return {"users": users, "dates": DATES, "event_days": EVENT_DAYS, "requests": requests,
            "overall_per_s": round(requests / statistics.median(o for o, _ in pairs)),
            "day_per_s": round(requests / statistics.median(d for _, d in pairs)),
            "ratio": round(statistics.median(o / d for o, d in pairs), 3),
            "day_builds": boards.day_builds, "build_ms": round(statistics.median(builds_ms), 2)}


def main(argv: Sequence[str] | None = None) -> None:
    """python -m tools.bench_inproc {flush,memory} --dsn DSN --devices N [--unlogged],
    or leaderboard --users N."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("row", choices=("flush", "memory", "leaderboard"))
    parser.add_argument("--dsn")
    parser.add_argument("--devices", type=int)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--unlogged", action="store_true")
    args = parser.parse_args(argv)
    if args.row == "leaderboard":
        result = leaderboard_row(args.users)
    elif args.dsn is None or args.devices is None:
        parser.error(f"{args.row} needs --dsn and --devices")
    elif args.row == "flush":
        result = asyncio.run(flush_row(args.dsn, args.devices, args.unlogged))
    else:
        started = time.perf_counter()
        fill_devices(args.dsn, args.devices)
        fill_s = time.perf_counter() - started
        result = asyncio.run(memory_row(args.dsn, args.devices))
        result["fill_s"] = round(fill_s, 1)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
