"""The ``walk`` scenario: register devices, stream CMX notifications, compare with the truth.

Simulated time: the simulation covers ``duration_s`` of simulated time, run ``speedup``
times faster than real time (0 = as fast as possible). Timestamps in the notifications
are simulated time, and the server replaces a timestamp more than 5 minutes ahead of its
clock by the receive time, so simulated time must never run ahead of the wall clock: the
simulation starts at ``now - duration_s * (1 - 1/speedup)`` (``now - duration_s`` when as
fast as possible), which makes the simulated window end when the run ends, ~now.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import random
import sys
import time
from collections import Counter
from typing import Any, TextIO

import orjson

from tools.cmx_sim import fake_cmx, notify, report
from tools.cmx_sim.api import ApiError, LiveApi
from tools.cmx_sim.devices import Device, MacMode, hash_mac, make_devices, save_devices
from tools.cmx_sim.httpclient import HttpConnection, HttpError, basic_auth, encode_request
from tools.cmx_sim.venue import Fix, Venue, VenueConfig


@dataclasses.dataclass(frozen=True)
class WalkOptions:
    """Everything ``walk`` needs; the CLI fills it from its arguments."""

    server: str = "http://127.0.0.1:8080"
    notify_auth: tuple[str, str] = ("cmx", "change-me-cmx")
    api_auth: tuple[str, str] = ("frontend", "change-me-api")
    attendees: int = 200
    stationary: int = 100
    seed: int = 1
    mac_mode: MacMode = "test"
    hash_key: str = ""
    venue: VenueConfig = VenueConfig()
    duration_s: float = 1800.0
    speedup: float = 30.0  # 0 = as fast as possible
    batch_size: int = 50
    batch_interval_s: float = 1.0  # simulated seconds between CMX flushes
    register_share: float = 1.0
    user_prefix: str = "sim"
    serve_cmx: tuple[str, int] | None = None  # (host, port) of an in-process fake CMX
    cmx_auth: tuple[str, str] = ("", "")
    devices_file: str | None = None
    progress_s: float = 5.0
    leaderboard: int = 0
    table_rows: int = 10
    timeout_s: float = 10.0


def sim_start_epoch(now_s: float, duration_s: float, speedup: float) -> float:
    """Epoch seconds of simulated t=0, so the simulated window ends at the real end."""
    return now_s - duration_s * (1 - 1 / speedup if speedup > 0 else 1)


def username_for(device: Device, prefix: str) -> str:
    """A stable username per device (tied to its MAC, so reruns find it again)."""
    return f"{prefix}-{device.mac.replace(':', '')}"


class Sender:
    """POSTs CMX envelopes to /notification in order on one keep-alive connection."""

    def __init__(self, opts: WalkOptions) -> None:
        self.url = opts.server.rstrip("/") + "/notification"
        self.headers = basic_auth(*opts.notify_auth)
        self.conn = HttpConnection(opts.server, opts.timeout_s)
        self.tally: Counter[str] = Counter()
        self.last_error = ""

    async def post(self, notifications: list[dict[str, Any]]) -> None:
        """Send one batch (one retry on a dropped connection); failures are counted."""
        raw = encode_request("POST", self.url, self.headers,
                             notify.envelope(notifications))
        self.tally["posts"] += 1
        self.tally["notifications"] += len(notifications)
        for attempt in (1, 2):
            try:
                status, body = await self.conn.request(raw)
                break
            except HttpError as exc:
                if attempt == 2:
                    self.tally["post_errors"] += 1
                    self.last_error = str(exc)
                    return
        if status != 200:
            self.tally["post_errors"] += 1
            self.last_error = f"HTTP {status} {body[:120]!r}"
            return
        try:
            counts = orjson.loads(body)
            for key in ("accepted", "ignored", "rejected"):
                self.tally[key] += int(counts.get(key, 0))
        except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
            self.tally["post_errors"] += 1
            self.last_error = f"unexpected reply {body[:120]!r}"


async def _register(api: LiveApi, devices: list[Device], opts: WalkOptions,
                    device_ids: list[str], out: TextIO) -> dict[int, float]:
    """Register devices; {index: the server's km for it before the walk} of those that took."""
    failures: Counter[str] = Counter()
    mismatched: list[str] = []

    async def one(device: Device) -> tuple[int, float] | None:
        name = username_for(device, opts.user_prefix)
        try:
            status, data = await api.register(name, device.ip)
            if status not in (200, 201) or not isinstance(data, dict):
                text = data.get("error", "") if isinstance(data, dict) else ""
                failures[f"HTTP {status} {text}".strip()] += 1
                return None
            if data.get("mac") != device_ids[device.index]:
                mismatched.append(f"{device.ip}: server {data.get('mac')}, "
                                  f"simulator {device_ids[device.index]}")
            before_km = await api.total_km(name)
        except (HttpError, ApiError) as exc:
            failures[str(exc)] += 1
            return None
        return device.index, before_km or 0.0

    results = await api.map(one, devices)
    for text, count in failures.most_common():
        print(f"registration failed for {count} device(s): {text}", file=out)
    if failures and any("Connect to" in text for text in failures):
        print("  hint: the server's CMX does not know these IPs; use --mac-mode test with "
              "cmx.hosts [test], or --serve-cmx and point cmx.hosts at it", file=out)
    if mismatched:
        print(f"warning: {len(mismatched)} registered MACs differ from the notified ones "
              f"(check --mac-mode / --hash-key against the server's cmx settings), "
              f"e.g. {mismatched[0]}", file=out)
    return dict(r for r in results if r is not None)


def _choose(devices: list[Device], share: float, seed: int) -> list[Device]:
    rng = random.Random(f"register-{seed}")
    chosen: list[Device] = []
    for kind in ("walker", "stationary"):
        group = [d for d in devices if d.kind == kind]
        chosen += rng.sample(group, round(len(group) * share))
    return sorted(chosen, key=lambda d: d.index)


def _progress(out: TextIO, t_s: float, opts: WalkOptions, sender: Sender, real_s: float,
              behind_s: float) -> None:
    tally = sender.tally
    rate = tally["posts"] / real_s if real_s > 0 else 0.0
    error = f" (last: {sender.last_error})" if sender.last_error else ""
    print(f"sim {_clock(t_s)}/{_clock(opts.duration_s)}  notifications {tally['notifications']}"
          f"  posts {tally['posts']} ({rate:.1f}/s)  errors {tally['post_errors']}{error}"
          f"  behind {max(0.0, behind_s):.1f}s", file=out, flush=True)


def _clock(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600:02d}:{whole // 60 % 60:02d}:{whole % 60:02d}"


async def _stream(venue: Venue, devices: list[Device], device_ids: list[str],
                  opts: WalkOptions, start_epoch: float, sender: Sender, out: TextIO) -> None:
    """Run simulated time from 0 to duration_s, posting a batch every batch interval."""
    event_id = 0
    real_start = time.monotonic()
    next_progress = real_start + opts.progress_s
    t_s = 0.0
    while t_s < opts.duration_s:
        t_s = min(t_s + opts.batch_interval_s, opts.duration_s)
        batch: list[dict[str, Any]] = []
        fix: Fix
        for fix in venue.step(t_s):
            event_id += 1
            device = devices[fix.device]
            epoch_ms = round((start_epoch + fix.t_s) * 1000)
            batch.append(notify.movement(fix, device_ids[fix.device], device.ip, event_id,
                                         epoch_ms))
            if len(batch) >= opts.batch_size:
                await sender.post(batch)
                batch = []
        if batch:
            await sender.post(batch)
        now = time.monotonic()
        behind_s = 0.0
        if opts.speedup > 0:
            behind_s = now - (real_start + t_s / opts.speedup)
            if behind_s < 0:
                await asyncio.sleep(-behind_s)
        if opts.progress_s > 0 and now >= next_progress:
            _progress(out, t_s, opts, sender, now - real_start, behind_s)
            next_progress = now + opts.progress_s
    venue.finish(opts.duration_s)


async def run_walk(opts: WalkOptions, out: TextIO = sys.stderr) -> dict[str, Any]:
    """Run the scenario against the server; returns the ground-truth report."""
    devices = make_devices(opts.attendees, opts.stationary, opts.venue.floors, opts.seed,
                           opts.mac_mode)
    if opts.devices_file:
        save_devices(opts.devices_file, devices)
    device_ids = [hash_mac(d.mac, opts.hash_key) for d in devices]
    cmx_server = None
    if opts.serve_cmx is not None:
        username, password = opts.cmx_auth
        app = fake_cmx.make_app(fake_cmx.FakeCmx.serving(
            devices, username=username, password=password, seed=opts.seed))
        cmx_server = app.listen(opts.serve_cmx[1], address=opts.serve_cmx[0])
    api = LiveApi(opts.server, *opts.api_auth, timeout_s=opts.timeout_s)
    sender = Sender(opts)
    real_start = time.monotonic()
    try:
        chosen = _choose(devices, opts.register_share, opts.seed)
        before = await _register(api, chosen, opts, device_ids, out)
        if chosen and not before:
            raise SystemExit("walk: no device could be registered; nothing to evaluate")
        print(f"registered {len(before)} of {len(chosen)} devices; walking "
              f"{opts.attendees} attendees + {opts.stationary} stationary devices for "
              f"{_clock(opts.duration_s)} simulated", file=out, flush=True)
        start_epoch = sim_start_epoch(time.time(), opts.duration_s, opts.speedup)
        venue = Venue(devices, opts.venue, opts.seed)
        await _stream(venue, devices, device_ids, opts, start_epoch, sender, out)
        registered = [d for d in chosen if d.index in before]
        after = await api.map(lambda d: api.total_km(username_for(d, opts.user_prefix)),
                              registered)
        rows = [report.Row(username_for(d, opts.user_prefix), d.kind, device_ids[d.index],
                           round(venue.true_distance_m(d.index), 1),
                           round(((km or 0.0) - before[d.index]) * 1000, 1))
                for d, km in zip(registered, after, strict=True)]
        board = await api.leaderboard(opts.leaderboard) if opts.leaderboard > 0 else None
    finally:
        await sender.conn.aclose()
        await api.aclose()
        if cmx_server is not None:
            cmx_server.stop()
    traffic = dict(sender.tally) | {"registered": len(before),
                                    "real_s": round(time.monotonic() - real_start, 1)}
    result = report.build_report(rows, _scenario(opts, start_epoch), traffic)
    if board is not None:
        result["leaderboard"] = board
    return result


def _scenario(opts: WalkOptions, start_epoch: float) -> dict[str, Any]:
    start = datetime.datetime.fromtimestamp(start_epoch, tz=datetime.UTC)
    return {"attendees": opts.attendees, "stationary": opts.stationary, "seed": opts.seed,
            "duration_s": opts.duration_s, "speedup": opts.speedup,
            "sim_start": start.isoformat(timespec="seconds"), "mac_mode": opts.mac_mode,
            "mac_hashing": bool(opts.hash_key), "register_share": opts.register_share,
            "batch_size": opts.batch_size, "batch_interval_s": opts.batch_interval_s,
            **dataclasses.asdict(opts.venue)}
