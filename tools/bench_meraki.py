"""The Meraki row of the feed rows (tools/bench_feeds.py): POSTs of N observations x 5 fixes.

Bodies from the simulator's Meraki poster, each POST a minute later than the one before
(new fixes, not repeats), sent to /meraki one at a time on one keep-alive connection
after one unmeasured warm-up POST. Beside the latencies, the server's CPU per measured POST
(from /proc, warm-up excluded): a GET of the validator on the same connection after the last
POST waits for the work /meraki does after its answer, so that is counted too.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import orjson

from tools import bench_env as env
from tools.cmx_sim import meraki_poster
from tools.cmx_sim.devices import make_devices
from tools.cmx_sim.httpclient import HttpConnection, encode_request

MERAKI_SECRET = "bench-meraki-secret"
FIXES_PER_OBSERVATION = 5


def meraki_bodies(observations: int, posts: int, end_epoch_s: float) -> list[bytes]:
    """posts POST bodies of `observations` clients × 5 fixes, each POST a minute later."""
    devices = make_devices(observations, 0, 3, 11, "random")
    bodies = []
    for number in range(posts):
        minute_s = end_epoch_s - (posts - number) * 60.0
        clients = []
        for device in devices:
            locations = [meraki_poster.location(meraki_poster.Sighting(
                device.mac, device.ip, device.floor, 10.0 * fix + device.index % 500,
                50.0 + number, minute_s + 12.0 * fix), 2.2)
                for fix in range(FIXES_PER_OBSERVATION)]
            clients.append(meraki_poster.observation(device.mac, device.ip, locations))
        bodies.append(orjson.dumps(meraki_poster.body(clients, MERAKI_SECRET)))
    return bodies


async def meraki_posts(tys: env.Process, bodies: list[bytes]) -> dict[str, Any]:
    """POST each body in turn (the first unmeasured); latency send → answer of the rest."""
    url = tys.base_url + "/meraki"
    conn = HttpConnection(tys.base_url, timeout_s=30.0)
    latencies_ms = []
    cpu_start_s = 0.0
    try:
        for index, body in enumerate(bodies):
            raw = encode_request("POST", url, None, body)
            if index == 1:
                cpu_start_s = tys.cpu_s()
            started = time.perf_counter()
            status, reply = await conn.request(raw)
            elapsed_ms = (time.perf_counter() - started) * 1000
            if status != 200:
                raise RuntimeError(f"/meraki: HTTP {status} {reply[:200]!r}")
            if index:
                latencies_ms.append(elapsed_ms)
        await conn.request(encode_request("GET", url))  # answered once the last POST is done
        cpu_s = tys.cpu_s() - cpu_start_s
    finally:
        await conn.aclose()
    ordered = sorted(latencies_ms)
    return {"posts": len(ordered), "bytes": len(bodies[-1]),
            "median_ms": round(statistics.median(ordered), 2),
            "p99_ms": round(ordered[max(0, -(-99 * len(ordered) // 100) - 1)], 2),
            "max_ms": round(ordered[-1], 2),
            "server_cpu_ms_per_post": round(cpu_s * 1000 / len(ordered), 1)}
