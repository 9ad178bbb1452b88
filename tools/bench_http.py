"""Rows measured over HTTP: TYS and the reference driven the same way, alternating.

Throughput rows run closed-loop (16 keep-alive connections, each sends as soon as its
previous answer arrived) in short alternating rounds (TYS then reference, then the other
way round); the ratio is the median of the back-to-back pairs' ratios, the rates shown
the median round of each side. Latency rows run open-loop at a fixed rate and time every
request from its intended send time (tools.cmx_sim.loadgen), so a stall is charged to
every request queued behind it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from tools.bench_env import API_AUTH, CMX_AUTH, Process, busy_cores_s
from tools.cmx_sim.httpclient import basic_auth
from tools.cmx_sim.loadgen import LoadResult, run_load

NOTIFY_HEADERS = basic_auth(*CMX_AUTH)
API_HEADERS = basic_auth(*API_AUTH)
CLOSED_CONNECTIONS = 16
OPEN_CONNECTIONS = 32
BACKGROUND_CONNECTIONS = 4


class BodyPool:
    """Notification bodies handed out in order, so that TYS never sees a notification twice.

    Past its end the pool is replayed with every timestamp moved on by `span_ms` per lap
    (the length of time the pool covers): a replayed notification is as fresh to the
    server as the first lap's, never a stale repeat that would cost it less. The planner
    (bench.build_pools) leaves room for MAX_LAPS laps before the next pool's times. The
    reference reads the same bodies without using them up.
    """

    def __init__(self, bodies: list[bytes], span_ms: int) -> None:
        self.bodies = bodies
        self.span_ms = span_ms
        self.cursor = 0
        self.laps = 1

    def ahead(self, count: int) -> list[bytes]:
        """The next `count` bodies (replayed laps built as needed)."""
        size = len(self.bodies)
        out = []
        for index in range(self.cursor, self.cursor + max(count, 1)):
            lap, at = divmod(index, size)
            body = self.bodies[at]
            out.append(shift_timestamps(body, lap * self.span_ms) if lap else body)
            self.laps = max(self.laps, lap + 1)
        return out

    def use(self, result: LoadResult) -> None:
        """Move past what a run sent."""
        self.cursor += result.requests + result.connection_errors


_TIMESTAMP = re.compile(rb'"timestamp":(\d+)')


def shift_timestamps(body: bytes, delta_ms: int) -> bytes:
    """The same CMX body with every notification's timestamp delta_ms later."""
    return _TIMESTAMP.sub(lambda m: b'"timestamp":%d' % (int(m[1]) + delta_ms), body)


@dataclasses.dataclass
class Run:
    """One measured run against one target."""

    target: str
    result: LoadResult
    server_cpu_s: float
    client_cpu_s: float
    machine_cpu_s: float

    def digest(self, per_request: int = 1) -> dict[str, Any]:
        """Rates, latencies, and CPU in cores (server, load generator, whole machine)."""
        r = self.result
        elapsed = r.elapsed_s or 1e-9
        return {"target": self.target, "requests": r.requests, "errors": r.errors,
                "per_s": round(r.ok * per_request / elapsed, 1),
                "p50_ms": round(r.percentile_ms(50), 2), "p99_ms": round(r.percentile_ms(99), 2),
                "max_ms": round(r.percentile_ms(100), 2),
                "server_cpu": round(self.server_cpu_s / elapsed, 2),
                "server_cpu_us_per_request": round(1e6 * self.server_cpu_s / max(r.ok, 1), 1),
                "client_cpu": round(self.client_cpu_s / elapsed, 2),
                "machine_cpu": round(self.machine_cpu_s / elapsed, 2)}


async def measured(process: Process, work: Callable[[], Awaitable[LoadResult]]) -> Run:
    """Run work() and charge the CPU time of the server, this process and the machine."""
    server0, client0, machine0 = process.cpu_s(), time.process_time(), busy_cores_s()
    result = await work()
    return Run(process.name, result, process.cpu_s() - server0, time.process_time() - client0,
               busy_cores_s() - machine0)


class Driver:
    """Both servers, the notification pools, and the run lengths of this bench."""

    def __init__(self, tys: Process, reference: Process, *, rounds: int, seconds: float,
                 warmup_s: float) -> None:
        self.targets = (tys, reference)
        self.tys = tys
        self.rounds, self.seconds, self.warmup_s = rounds, seconds, warmup_s

    async def _closed(self, process: Process, path: str, bodies: list[bytes],
                      headers: dict[str, str], seconds: float) -> LoadResult:
        return await run_load(process.base_url + path, bodies, headers, CLOSED_CONNECTIONS,
                              duration_s=seconds)

    async def closed_rounds(self, path: str, headers: dict[str, str],
                            bodies_for: Callable[[Process, float], list[bytes]],
                            used: Callable[[Process, LoadResult], None],
                            per_request: int = 1,
                            background: BackgroundFlow | None = None,
                            extra: tuple[Process, ...] = ()) -> dict[str, Any]:
        """Warm up, then alternate TYS / reference (/ extra) rounds; the median of each."""
        targets = self.targets + extra
        runs: dict[str, list[dict[str, Any]]] = {p.name: [] for p in targets}
        for round_index in range(-1, self.rounds):
            seconds = self.warmup_s if round_index < 0 else self.seconds
            # A B, then B A: a machine speeding up or slowing down favours neither side.
            for process in targets if round_index % 2 == 0 else targets[::-1]:
                bodies = bodies_for(process, seconds)

                async def work(process: Process = process, bodies: list[bytes] = bodies,
                               seconds: float = seconds) -> LoadResult:
                    return await self._closed(process, path, bodies, headers, seconds)

                if background is not None:
                    run = await background.around(process, seconds, work)
                else:
                    run = await measured(process, work)
                used(process, run.result)
                if round_index >= 0:
                    runs[process.name].append(run.digest(per_request))
        out = {name: _median_round(rounds) for name, rounds in runs.items()}
        # Each TYS round against the other targets' rounds run right after it: a slow
        # stretch of the machine hits both sides of a pair, and the median pair decides.
        tys = runs[self.tys.name]
        for process in targets[1:]:
            other = runs[process.name]
            pairs = [t["per_s"] / r["per_s"] for t, r in zip(tys, other, strict=True)
                     if r["per_s"]]
            out[process.name]["paired_ratios"] = [round(x, 3) for x in pairs]
            out[process.name]["ratio"] = round(statistics.median(pairs), 3) if pairs else 0.0
            # Cross-check: the same pairs judged by server CPU time per request.
            cpu = [r["server_cpu_us_per_request"] / t["server_cpu_us_per_request"]
                   for t, r in zip(tys, other, strict=True) if t["server_cpu_us_per_request"]]
            out[process.name]["cpu_ratio"] = round(statistics.median(cpu), 3) if cpu else 0.0
        return out

    async def open_rate(self, process: Process, path: str, headers: dict[str, str],
                        bodies: list[bytes], rate_per_s: float, seconds: float) -> Run:
        """A fixed request rate, latency from each intended send time."""

        async def work() -> LoadResult:
            return await run_load(process.base_url + path, bodies, headers, OPEN_CONNECTIONS,
                                  duration_s=seconds, rate_per_s=rate_per_s)

        return await measured(process, work)


class BackgroundFlow:
    """Notifications at a steady rate while a measured run reads."""

    def __init__(self, pools: dict[str, BodyPool], rate_per_s: float) -> None:
        self.pools = pools
        self.rate_per_s = rate_per_s
        self.achieved: list[float] = []

    async def around(self, process: Process, seconds: float,
                     work: Callable[[], Awaitable[LoadResult]]) -> Run:
        """Start the flow, let it settle, measure work(), stop the flow."""
        lead_s = 0.3
        pool = self.pools[process.name]
        bodies = pool.ahead(int(self.rate_per_s * (seconds + 2 * lead_s)) + 16)
        flow = asyncio.create_task(run_load(
            process.base_url + "/notification", bodies, NOTIFY_HEADERS, BACKGROUND_CONNECTIONS,
            duration_s=seconds + 2 * lead_s, rate_per_s=self.rate_per_s))
        await asyncio.sleep(lead_s)
        run = await measured(process, work)
        flowed = await flow
        pool.use(flowed)
        self.achieved.append(flowed.ok / flowed.elapsed_s if flowed.elapsed_s else 0.0)
        return run


def _median_round(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """The round with the median rate, with every round's rate alongside."""
    if not rounds:
        return {}
    ordered = sorted(rounds, key=lambda r: r["per_s"])
    middle = dict(ordered[(len(ordered) - 1) // 2])
    middle["rounds_per_s"] = [r["per_s"] for r in rounds]
    middle["per_s_median"] = statistics.median(r["per_s"] for r in rounds)
    return middle


async def team_board_rounds(tys: Process, reference: Process, background: BodyPool,
                            body: bytes, *, rounds: int, seconds: float,
                            warmup_s: float) -> dict[str, Any]:
    """POSTs of one team-board body while 500 notifications/s flow (TYS's background pool
    goes on; the reference reads the same bodies), closed loop like the other read rows."""
    driver = Driver(tys, reference, rounds=rounds, seconds=seconds, warmup_s=warmup_s)
    flow = BackgroundFlow({tys.name: background,
                           reference.name: BodyPool(background.bodies, background.span_ms)}, 500)
    return await driver.closed_rounds("/live/leaderboard", API_HEADERS, lambda _p, _s: [body],
                                      lambda _p, _r: None, background=flow)
