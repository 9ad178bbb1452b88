"""Load generator core: N keep-alive connections, closed loop or a fixed open-loop rate.

Closed loop (``rate_per_s`` None or 0): every connection sends its next request as soon as
the previous answer arrived; latency is send → answer. Open loop: request i is due at
``start + i / rate_per_s`` and its latency is measured from that *intended* time, so a
server that stalls is charged for the requests queued behind the stall (no "coordinated
omission"). Requests cycle through the pre-encoded bodies.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

from tools.cmx_sim.httpclient import HttpConnection, HttpError, encode_request


@dataclasses.dataclass
class LoadResult:
    """What a run measured; latencies in seconds, one per response received."""

    requests: int = 0  # responses received
    ok: int = 0  # 2xx responses
    status_counts: dict[int, int] = dataclasses.field(default_factory=dict)
    connection_errors: int = 0  # requests that got no response (refused, reset, timeout)
    elapsed_s: float = 0.0
    latencies_s: list[float] = dataclasses.field(default_factory=list)

    @property
    def errors(self) -> int:
        """Non-2xx responses plus requests without a response."""
        return self.requests - self.ok + self.connection_errors

    @property
    def throughput_rps(self) -> float:
        """Responses per second of elapsed time."""
        return self.requests / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def percentile_ms(self, q: float) -> float:
        """Latency percentile q (0-100, nearest rank) in milliseconds; 0 without data."""
        if not self.latencies_s:
            return 0.0
        ordered = sorted(self.latencies_s)
        rank = max(1, math.ceil(q / 100 * len(ordered)))
        return ordered[min(rank, len(ordered)) - 1] * 1000

    def summary(self) -> dict[str, Any]:
        """A JSON-ready digest (no per-request latencies)."""
        return {
            "requests": self.requests, "ok": self.ok, "errors": self.errors,
            "connection_errors": self.connection_errors,
            "status_counts": {str(k): v for k, v in sorted(self.status_counts.items())},
            "elapsed_s": round(self.elapsed_s, 3),
            "throughput_rps": round(self.throughput_rps, 1),
            "latency_ms": {name: round(self.percentile_ms(q), 3) for name, q in
                           (("p50", 50), ("p90", 90), ("p99", 99), ("max", 100))},
        }


class _Run:
    """Shared state of the workers: which request is next, and the tallies."""

    def __init__(self, requests: list[bytes], total: int | None, deadline: float | None,
                 rate_per_s: float | None, start: float) -> None:
        self.requests, self.total, self.deadline = requests, total, deadline
        self.rate_per_s, self.start = rate_per_s, start
        self.next_index = 0
        self.result = LoadResult()

    def claim(self, now: float) -> tuple[int, float] | None:
        """The next request index and its intended send time, or None when the run is over."""
        index = self.next_index
        if self.total is not None and index >= self.total:
            return None
        due = self.start + index / self.rate_per_s if self.rate_per_s else now
        if self.deadline is not None and due >= self.deadline:
            return None
        self.next_index += 1
        return index, due


async def _worker(run: _Run, url: str, timeout_s: float) -> None:
    conn = HttpConnection(url, timeout_s)
    clock = time.perf_counter
    result, requests = run.result, run.requests
    try:
        while (claimed := run.claim(clock())) is not None:
            index, due = claimed
            wait_s = due - clock()
            if wait_s > 0:
                await asyncio.sleep(wait_s)
            sent = due if run.rate_per_s else clock()
            try:
                status, _body = await conn.request(requests[index % len(requests)])
            except HttpError:
                result.connection_errors += 1
                await asyncio.sleep(0.01)  # do not spin on a server that is down
                continue
            result.latencies_s.append(clock() - sent)
            result.requests += 1
            result.status_counts[status] = result.status_counts.get(status, 0) + 1
            if 200 <= status < 300:
                result.ok += 1
    finally:
        await conn.aclose()


async def run_load(url: str, bodies: list[bytes], headers: Mapping[str, str] | None = None,
                   connections: int = 16, duration_s: float | None = None,
                   total: int | None = None, rate_per_s: float | None = None, *,
                   method: str = "POST", timeout_s: float = 10.0,
                   on_progress: Callable[[LoadResult], None] | None = None,
                   progress_interval_s: float = 5.0) -> LoadResult:
    """Send requests to url with the given bodies (cycled) until duration_s or total.

    rate_per_s None or 0 runs closed-loop as fast as the server answers; otherwise requests
    are due at a fixed rate and timed from their intended send time.
    """
    if not bodies:
        raise ValueError("need at least one body")
    if duration_s is None and total is None:
        raise ValueError("give duration_s or total (or both)")
    if connections < 1:
        raise ValueError("connections must be >= 1")
    requests = [encode_request(method, url, headers, body) for body in bodies]
    start = time.perf_counter()
    deadline = start + duration_s if duration_s is not None else None
    run = _Run(requests, total, deadline, rate_per_s or None, start)
    reporter = None
    if on_progress is not None:
        reporter = asyncio.create_task(_report(run, on_progress, progress_interval_s))
    try:
        await asyncio.gather(*(_worker(run, url, timeout_s) for _ in range(connections)))
    finally:
        run.result.elapsed_s = time.perf_counter() - start
        if reporter is not None:
            reporter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reporter
    return run.result


async def _report(run: _Run, on_progress: Callable[[LoadResult], None],
                  interval_s: float) -> None:
    while True:
        await asyncio.sleep(interval_s)
        run.result.elapsed_s = time.perf_counter() - run.start
        on_progress(run.result)
