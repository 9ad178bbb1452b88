"""Rows measured over HTTP: TYS and the reference driven the same way, alternating.

Throughput rows run closed-loop (16 keep-alive connections, each sends as soon as its
previous answer arrived) in alternating rounds, TYS then reference, and keep the median
round of each. Latency rows run open-loop at a fixed rate and time every request from its
intended send time (tools.cmx_sim.loadgen), so a stall is charged to every request queued
behind it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from tools.bench_env import API_AUTH, CMX_AUTH, Process
from tools.cmx_sim.httpclient import basic_auth
from tools.cmx_sim.loadgen import LoadResult, run_load

NOTIFY_HEADERS = basic_auth(*CMX_AUTH)
API_HEADERS = basic_auth(*API_AUTH)
CLOSED_CONNECTIONS = 16
OPEN_CONNECTIONS = 32
BACKGROUND_CONNECTIONS = 4


class BodyPool:
    """Pre-encoded notification bodies handed out in order: TYS never sees one twice.

    The reference reads the same bodies without using them up. When a run needs more than
    is left, run_load cycles the slice (repeats are stale to TYS: `exhausted` says so).
    """

    def __init__(self, bodies: list[bytes]) -> None:
        self.bodies = bodies
        self.cursor = 0
        self.exhausted = False

    def ahead(self, count: int) -> list[bytes]:
        """The next `count` bodies (fewer, cycled by run_load, when the pool runs dry)."""
        part = self.bodies[self.cursor:self.cursor + max(count, 1)]
        if len(part) < count:
            self.exhausted = True
        return part or self.bodies[-1:]

    def use(self, result: LoadResult) -> None:
        """Move past what a run sent."""
        self.cursor += result.requests + result.connection_errors


@dataclasses.dataclass
class Run:
    """One measured run against one target."""

    target: str
    result: LoadResult
    server_cpu_s: float
    client_cpu_s: float

    def digest(self, per_request: int = 1) -> dict[str, Any]:
        r = self.result
        elapsed = r.elapsed_s or 1e-9
        return {"target": self.target, "requests": r.requests, "errors": r.errors,
                "per_s": round(r.ok * per_request / elapsed, 1),
                "p50_ms": round(r.percentile_ms(50), 2), "p99_ms": round(r.percentile_ms(99), 2),
                "max_ms": round(r.percentile_ms(100), 2),
                "server_cpu": round(self.server_cpu_s / elapsed, 2),
                "client_cpu": round(self.client_cpu_s / elapsed, 2)}


async def measured(process: Process, work: Callable[[], Awaitable[LoadResult]]) -> Run:
    """Run work() and charge the CPU time of the server and of this process to it."""
    server0, client0 = process.cpu_s(), time.process_time()
    result = await work()
    return Run(process.name, result, process.cpu_s() - server0, time.process_time() - client0)


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
                            background: BackgroundFlow | None = None) -> dict[str, Any]:
        """Warm up, then alternate TYS / reference rounds; the median round of each."""
        runs: dict[str, list[dict[str, Any]]] = {p.name: [] for p in self.targets}
        for round_index in range(-1, self.rounds):
            seconds = self.warmup_s if round_index < 0 else self.seconds
            for process in self.targets:
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
        return {name: _median_round(rounds) for name, rounds in runs.items()}

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
