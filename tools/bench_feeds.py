"""The feeds' rows: Firehose ingest against a bare reader, reads during it, Meraki POSTs.

Firehose: a pre-built stream (DEVICE_LOCATION_UPDATE lines of the simulated venue at
Spaces' cadence, a KEEP_ALIVE every 15 s of stream time, and a last event for a probe
device at an IP nobody else has) is served by the fake Firehose in a process of its own
(``cmx_sim fake-firehose --prebuilt FILE --hold``), each connection held until released.
The *bare reader* (this process) reads it through a ``CurlAsyncHTTPClient`` of its own as
the server's consumer does, only splitting lines and running ``orjson.loads`` on each;
it runs before TYS and after each round of it. In each round a TYS (feeds.spaces_firehose
on, no CMX host, a database of its own) is released the same stream while 300 reads/s
run against its API; it is done when ``/live/ip_username`` knows the probe's IP (the
stream is read in order; TYS is asked every 10 ms once the fake has written the whole
stream, the fake before that). A round's ratio is its rate against the mean of the bare
reader's runs on either side of it; the row is the median round (``firehose_rounds``: 3,
--quick 1), as the machine's speed drifts from run to run. The read p99 is that of the
reads answered during an ingest, the worst round's; the reads of the same round answered
before and after it give the machine's own p99 beside it.
Meraki: POSTs of N observations × 5 fixes to /meraki (tools/bench_meraki.py), after the
last round.
"""

from __future__ import annotations

import asyncio
import re
import sys
import time
from pathlib import Path
from typing import Any

import orjson
from tornado.curl_httpclient import CurlAsyncHTTPClient
from tornado.httpclient import HTTPRequest

from tools import bench_env as env
from tools.bench_http import API_HEADERS, OPEN_CONNECTIONS, measured
from tools.bench_meraki import MERAKI_SECRET, meraki_bodies, meraki_posts
from tools.cmx_sim import fake_firehose
from tools.cmx_sim.api import LiveApi
from tools.cmx_sim.cadence import for_feed
from tools.cmx_sim.devices import make_devices
from tools.cmx_sim.httpclient import HttpConnection, basic_auth, encode_request
from tools.cmx_sim.loadgen import LoadResult, run_load
from tools.cmx_sim.venue import Fix, Venue, VenueConfig

API_KEY = "bench-firehose-key"
PROBE_IP = "172.31.255.1"
STREAM_DEVICES = 2000
KEEPALIVE_EVERY_S = 15.0
POLL_S = 0.01
MONITOR_AUTH = ("monitor", "change-me-monitor")  # conf/tys.yaml's pair


def build_stream(lines: int, end_epoch_s: float, seed: int = 7) -> bytes:
    """`lines` location events (NDJSON, the probe's last) of the venue at Spaces' cadence,
    a KEEP_ALIVE every 15 s of stream time between them, all before end_epoch_s."""
    devices = make_devices(STREAM_DEVICES, 0, 3, seed, "random")
    venue = Venue(devices, for_feed(VenueConfig(), "firehose"), seed)
    fixes: list[Fix] = []
    t_s = 0.0
    while len(fixes) < lines - 1:
        t_s += 1.0
        fixes += venue.step(t_s)
    fixes = fixes[:lines - 1]
    start_epoch = end_epoch_s - t_s - 60.0
    out = []
    next_keepalive_s = KEEPALIVE_EVERY_S
    for fix in fixes:
        epoch_ms = round((start_epoch + fix.t_s) * 1000)
        if fix.t_s >= next_keepalive_s:
            out.append(orjson.dumps(fake_firehose.keep_alive(epoch_ms)))
            next_keepalive_s += KEEPALIVE_EVERY_S
        out.append(orjson.dumps(fake_firehose.from_fix(fix, devices[fix.device], epoch_ms)))
    out.append(orjson.dumps(fake_firehose.location_update(
        "02:5e:ff:00:00:01", 1, 0.0, 0.0, record_ms=round((start_epoch + t_s) * 1000),
        ip=PROBE_IP)))
    return b"\n".join(out) + b"\n"


class FakeStream:
    """The fake Firehose process serving the pre-built stream, and its control routes."""

    def __init__(self, path: Path, workdir: Path) -> None:
        port = env.free_port()
        argv = [sys.executable, "-m", "tools.cmx_sim", "fake-firehose", "--prebuilt", str(path),
                "--hold", "--port", str(port), "--api-key", API_KEY, "--attendees", "0",
                "--stationary", "0"]
        self.process = env.Process("fake-firehose", argv, env.clean_environment(),
                                   workdir / "fake-firehose.log", "/fake/status")
        self.url = self.process.base_url + fake_firehose.PATH
        self.conn = HttpConnection(self.process.base_url)

    async def control(self, method: str, action: str) -> dict[str, Any]:
        status, body = await self.conn.request(encode_request(
            method, f"{self.process.base_url}/fake/{action}"))
        if status != 200:
            raise RuntimeError(f"fake Firehose /fake/{action}: HTTP {status}")
        return dict(orjson.loads(body))

    async def wait_streams(self, count: int, timeout_s: float = 60.0) -> None:
        """Until `count` streams are open (held, waiting for release)."""
        await self._wait_status("open_streams", count, timeout_s)

    async def wait_sent(self, count: int, timeout_s: float = 600.0) -> None:
        """Until `count` streams have written the whole pre-built stream to their socket."""
        await self._wait_status("prebuilt_sent", count, timeout_s)

    async def _wait_status(self, field: str, count: int, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while (await self.control("GET", "status"))[field] < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"no {count} Firehose stream(s) {field} within {timeout_s} s")
            await asyncio.sleep(POLL_S)

    async def close(self) -> None:
        await self.conn.aclose()
        self.process.stop()


async def bare_reader(stream: FakeStream, lines: int) -> dict[str, Any]:
    """Read the stream through curl, split lines and orjson.loads each: its rate."""
    # As the server's consumer: Tornado counts streamed bytes against max_body_size.
    client = CurlAsyncHTTPClient(force_instance=True, max_clients=1, max_body_size=sys.maxsize)
    done = asyncio.Event()
    tail = b""
    seen = 0

    def on_chunk(chunk: bytes) -> None:
        nonlocal tail, seen
        parts = (tail + chunk).split(b"\n")
        tail = parts.pop()
        for line in parts:
            if line:
                orjson.loads(line)
                seen += 1
        if seen >= lines:
            done.set()

    request = HTTPRequest(stream.url, headers={"X-API-KEY": API_KEY}, connect_timeout=10,
                          request_timeout=0, streaming_callback=on_chunk)
    fetch = asyncio.ensure_future(client.fetch(request, raise_error=False))
    try:
        await stream.wait_streams(1)
        started, cpu0 = time.perf_counter(), time.process_time()
        await stream.control("POST", "release")
        finished = asyncio.ensure_future(done.wait())
        await asyncio.wait([finished, fetch], return_when=asyncio.FIRST_COMPLETED)
        elapsed_s = time.perf_counter() - started
        cpu_s = time.process_time() - cpu0
        if not done.is_set():
            finished.cancel()
            response = fetch.result()
            raise RuntimeError(f"the bare reader's stream ended after {seen} of {lines} lines: "
                               f"{response.code} {response.error}")
        await stream.control("POST", "end")
        await fetch
    finally:
        client.close()
    return {"lines": lines, "seconds": round(elapsed_s, 3), "per_s": round(lines / elapsed_s),
            "cpu_us_per_line": round(cpu_s * 1e6 / lines, 2)}


def p99_ms(latencies_s: list[float]) -> float:
    """The 99th percentile (nearest rank) in ms; 0 without data."""
    return LoadResult(latencies_s=latencies_s).percentile_ms(99)


async def tys_ingest(stream: FakeStream, tys: env.Process, lines: int,
                     reads: dict[str, list[bytes]], read_s: float) -> dict[str, Any]:
    """Release the stream to TYS while 300 reads/s run; its rate and the reads' latency:
    of the reads answered during the ingest, and of the others of the same run (before
    and after it: the machine's own noise)."""
    await stream.wait_streams(1)
    api = LiveApi(tys.base_url, *env.API_AUTH, connections=1)
    live: list[LoadResult] = []  # each load's result as it fills (latencies in answer order)

    async def reads_at(name: str, bodies: list[bytes]) -> LoadResult:
        return await run_load(f"{tys.base_url}/live/{name}", bodies, API_HEADERS,
                              OPEN_CONNECTIONS, duration_s=read_s, rate_per_s=150,
                              on_progress=lambda r: any(r is x for x in live) or live.append(r),
                              progress_interval_s=0.05)

    async def read_load() -> LoadResult:
        results = await asyncio.gather(*(reads_at(name, bodies)
                                         for name, bodies in reads.items()))
        merged = results[0]
        for other in results[1:]:
            merged.latencies_s.extend(other.latencies_s)
            merged.requests += other.requests
            merged.ok += other.ok
            merged.connection_errors += other.connection_errors
        return merged

    try:
        load = asyncio.ensure_future(measured(tys, read_load))
        await asyncio.sleep(0.3)  # the reads settle first (and report their results)
        marks = [len(r.latencies_s) for r in live]
        started, cpu0 = time.perf_counter(), tys.cpu_s()
        await stream.control("POST", "release")
        # TYS cannot be done before the fake has written the whole stream: until then the
        # fake is asked, and TYS serves only the 300 reads/s (the probe is the bench's own).
        await stream.wait_sent(1)
        while True:
            status, data = await api.call("ip_username", {"ip": PROBE_IP})
            if not (status == 404 and str(data.get("error", "")).startswith("Connect to")):
                break
            await asyncio.sleep(POLL_S)
        elapsed_s, cpu_s = time.perf_counter() - started, tys.cpu_s() - cpu0
        ends = [len(r.latencies_s) for r in live]
        reads_run = await load
    finally:
        await api.aclose()
    if len(live) != len(reads):
        raise RuntimeError("the reads did not report before the release")
    during = [x for r, a, b in zip(live, marks, ends, strict=True) for x in r.latencies_s[a:b]]
    other = [x for r, a, b in zip(live, marks, ends, strict=True)
             for x in r.latencies_s[:a] + r.latencies_s[b:]]
    # CPU per line (the reads served meanwhile included): less at the mercy of other
    # processes than the wall-clock rate on a shared machine.
    digest = reads_run.digest()
    reads_digest = {**digest, "p99_ms": round(p99_ms(during), 2), "during_ingest": len(during),
                    "p99_all_ms": digest["p99_ms"], "p99_outside_ms": round(p99_ms(other), 2)}
    return {"lines": lines, "seconds": round(elapsed_s, 3), "per_s": round(lines / elapsed_s),
            "cpu_us_per_line": round(cpu_s * 1e6 / lines, 2), "reads": reads_digest,
            "reads_cover_ingest": read_s - 0.3 >= elapsed_s}


_EVENTS = re.compile(r"^tys_feed_events_total\{([^}]*)\} (\S+)$", re.MULTILINE)
_LABEL = re.compile(r'(\w+)="([^"]*)"')


async def feed_events(tys: env.Process) -> dict[str, float]:
    """TYS's tys_feed_events_total by "feed type outcome", from /metrics."""
    conn = HttpConnection(tys.base_url)
    try:
        status, body = await conn.request(encode_request(
            "GET", tys.base_url + "/metrics", basic_auth(*MONITOR_AUTH)))
    finally:
        await conn.aclose()
    if status != 200:
        raise RuntimeError(f"/metrics: HTTP {status}")
    counts = {}
    for sample in _EVENTS.finditer(body.decode()):
        labels = dict(_LABEL.findall(sample[1]))
        key = f"{labels.get('feed')} {labels.get('type')} {labels.get('outcome')}"
        counts[key] = float(sample[2])
    return counts


def tys_env(url: str) -> dict[str, str]:
    """TYS with both modern feeds on and no CMX host (IPs learnt from the feeds)."""
    return {"TYS_CMX_HOSTS": "", "TYS_FEEDS_SPACES_FIREHOSE_ENABLED": "true",
            "TYS_FEEDS_SPACES_FIREHOSE_URL": url, "TYS_FEEDS_SPACES_FIREHOSE_API_KEY": API_KEY,
            "TYS_FEEDS_MERAKI_ENABLED": "true", "TYS_FEEDS_MERAKI_SECRET": MERAKI_SECRET,
            "TYS_FEEDS_MERAKI_VALIDATOR": "bench-validator"}


def feed_rows(sizes: Any, pg: env.Postgres, workdir: Path, reads: dict[str, list[bytes]],
              say: Any) -> dict[str, Any]:
    """Every feed row (see the module docstring)."""
    say(f"building a Firehose stream of {sizes.firehose_lines:,} lines")
    path = workdir / "firehose.ndjson"
    path.write_bytes(build_stream(sizes.firehose_lines, time.time()))
    lines = path.read_bytes().count(b"\n")
    bodies = meraki_bodies(sizes.meraki_observations, sizes.meraki_posts + 1, time.time())
    stream = FakeStream(path, workdir)
    last = sizes.firehose_rounds - 1

    def seeded() -> str:  # each round's TYS starts on a database of its own
        dsn = pg.create_database("feeds")
        env.apply_schema(dsn)
        env.seed_users(dsn, sizes.users)
        return dsn

    async def rows() -> dict[str, Any]:
        bare, rounds = [], []
        try:
            say("bare reader (split lines + orjson.loads) on the stream")
            bare.append(await bare_reader(stream, lines))
            for n in range(sizes.firehose_rounds):
                tys = env.start_tys(seeded(), workdir, env=tys_env(stream.url))
                try:
                    say(f"TYS reading the stream while 300 reads/s run ({n + 1} of {last + 1})")
                    rounds.append(await tys_ingest(stream, tys, lines, reads, sizes.feed_read_s))
                    if n == last:
                        say(f"Meraki POSTs of {sizes.meraki_observations:,} observations x 5 "
                            "fixes")
                        meraki = await meraki_posts(tys, bodies)
                    counted = await feed_events(tys)
                finally:
                    tys.stop()
                # What TYS's metrics say it took: the figures are only worth something if it did.
                rounds[-1]["accepted"] = counted.get(
                    "spaces_firehose DEVICE_LOCATION_UPDATE accepted", 0)
                if rounds[-1]["accepted"] < lines * 0.9:
                    raise RuntimeError(f"TYS did not take the Firehose's events: {counted}")
                say("bare reader again")
                bare.append(await bare_reader(stream, lines))
        finally:
            await stream.close()
        meraki["accepted_fixes"] = counted.get("meraki fix accepted", 0)
        if not meraki["accepted_fixes"]:
            raise RuntimeError(f"TYS did not take the Meraki POSTs' fixes: {counted}")
        # Each round against the bare reader's runs just before and after it; the row is
        # the median round (the machine's speed drifts between runs).
        refs = [(bare[n]["per_s"] + bare[n + 1]["per_s"]) / 2 for n in range(len(rounds))]
        ratios = [r["per_s"] / ref for r, ref in zip(rounds, refs, strict=True)]
        middle = sorted(range(len(ratios)), key=ratios.__getitem__)[len(ratios) // 2]
        return {"events": sizes.firehose_lines, "lines": lines, "bare": bare,
                "bare_per_s": round(refs[middle]), "tys": rounds[middle], "rounds": rounds,
                "ratios": [round(r, 3) for r in ratios], "ratio": round(ratios[middle], 3),
                "read_p99_ms": max(r["reads"]["p99_ms"] for r in rounds), "meraki": meraki,
                "meraki_observations": sizes.meraki_observations}

    return asyncio.run(rows())
