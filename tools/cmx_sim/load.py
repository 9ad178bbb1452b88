"""The ``load`` scenario: pre-encoded movement batches fired at /notification.

Each MAC walks a 600 x 400 ft rectangle 50 ft per notification, 5 s apart, so the server
does its full work (parse, filter, credit at the corners' next step) on every entry.
Bodies are built before the run and cycled; once a MAC's notifications repeat, their
timestamps are older than the last one the server saw, so it counts them as stale: size
the pool (``pool``) to the run when that matters.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from tools.cmx_sim import notify
from tools.cmx_sim.httpclient import basic_auth
from tools.cmx_sim.loadgen import LoadResult, run_load
from tools.cmx_sim.venue import FIRST_FIX_MOVE_FT, Fix

STEP_FT = 50.0
STEP_S = 5.0  # 50 ft in 5 s = 3 m/s, under the server's max_speed_mps cap
_LOOP_W_FT, _LOOP_H_FT = 600.0, 400.0
_MAX_POOL_BYTES = 64 * 1024 * 1024


def load_mac(index: int) -> str:
    """The index-th MAC of the load generator (locally administered, 02:10:...)."""
    return "02:10:" + ":".join(f"{(index >> shift) & 0xFF:02x}" for shift in (24, 16, 8, 0))


def _loop_point(distance_ft: float) -> tuple[float, float]:
    """The point distance_ft along the rectangle's perimeter, starting at (0, 0)."""
    d = distance_ft % (2 * (_LOOP_W_FT + _LOOP_H_FT))
    for length, (x0, y0, dx, dy) in ((_LOOP_W_FT, (0, 0, 1, 0)), (_LOOP_H_FT, (600, 0, 0, 1)),
                                     (_LOOP_W_FT, (600, 400, -1, 0)),
                                     (_LOOP_H_FT, (0, 400, 0, -1))):
        if d <= length:
            return x0 + dx * d, y0 + dy * d
        d -= length
    return 0.0, 0.0


def build_bodies(macs: int, batch: int, pool: int, now_s: float | None = None) -> list[bytes]:
    """pool envelopes of batch entries; entry n is step n // macs of MAC n % macs."""
    if macs < 1 or batch < 1 or pool < 1:
        raise ValueError("macs, batch and pool must be >= 1")
    steps = -(-pool * batch // macs)
    start_s = (time.time() if now_s is None else now_s) - steps * STEP_S
    bodies = []
    for b in range(pool):
        entries = []
        for n in range(b * batch, (b + 1) * batch):
            mac_index, step = n % macs, n // macs
            x, y = _loop_point(mac_index * 170.0 + step * STEP_FT)
            move_ft = FIRST_FIX_MOVE_FT if step == 0 else STEP_FT
            fix = Fix(mac_index, 0.0, 1 + mac_index % 3, x, y, move_ft)
            ip = f"10.200.{(mac_index >> 8) & 0xFF}.{mac_index & 0xFF}"
            epoch_ms = round((start_s + step * STEP_S) * 1000)
            entries.append(notify.movement(fix, load_mac(mac_index), ip, n + 1, epoch_ms))
        bodies.append(notify.envelope(entries))
    return bodies


def default_pool(requests: int | None, batch: int) -> int:
    """As many bodies as requests (so nothing repeats), capped at ~64 MB of bodies."""
    cap = max(1, _MAX_POOL_BYTES // (batch * 900))
    return min(requests, cap) if requests else cap


async def run(server: str, auth: tuple[str, str], *, rate: float, connections: int,
              batch: int, macs: int, duration_s: float | None, requests: int | None,
              pool: int | None, out: TextIO = sys.stderr) -> dict[str, Any]:
    """Build the bodies, run the load, return the summary (also with entries per second)."""
    bodies = build_bodies(macs, batch, pool or default_pool(requests, batch))
    print(f"load: {len(bodies)} pre-encoded bodies of {batch} notifications "
          f"({sum(map(len, bodies)) / len(bodies) / 1024:.1f} KiB each), {macs} MACs, "
          f"{connections} connections, "
          f"{'as fast as possible' if not rate else f'{rate:g} POST/s'}", file=out, flush=True)

    def progress(result: LoadResult) -> None:
        print(f"  {result.elapsed_s:6.1f}s  {result.requests} responses "
              f"({result.throughput_rps:.0f}/s)  errors {result.errors}", file=out, flush=True)

    result = await run_load(server.rstrip("/") + "/notification", bodies, basic_auth(*auth),
                            connections, duration_s, requests, rate or None,
                            on_progress=progress)
    summary = result.summary()
    summary["notifications_per_s"] = round(result.ok * batch / result.elapsed_s, 1) \
        if result.elapsed_s > 0 else 0.0
    summary["batch"] = batch
    return summary


def format_summary(summary: dict[str, Any]) -> str:
    """Throughput, latency percentiles and errors in a few lines."""
    lat = summary["latency_ms"]
    return (f"throughput: {summary['throughput_rps']:.1f} POST/s "
            f"({summary['notifications_per_s']:.0f} notifications/s, batch {summary['batch']})"
            f" over {summary['elapsed_s']:.1f} s\n"
            f"latency ms: p50 {lat['p50']:.2f}  p90 {lat['p90']:.2f}  p99 {lat['p99']:.2f}  "
            f"max {lat['max']:.2f}\n"
            f"responses: {summary['requests']} ({summary['status_counts']}), "
            f"errors {summary['errors']} (no response: {summary['connection_errors']})")
