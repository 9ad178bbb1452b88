"""The ``walk`` scenario: register devices, send their fixes through a feed, compare with the truth.

The same ground-truth walkers go through the chosen feed (``--feed``): CMX notifications
POSTed to /notification (a fix each 50 ft of estimated movement); a fake Cisco Spaces
Firehose served by the walk, which the server reads (every estimate, each 2-6 s, some
late); Meraki Scanning API v3 POSTs to /meraki, one per simulated minute with the fixes
since the last. On CMX the devices register first (the server looks their IPs up in CMX);
on Firehose and Meraki the server learns IP → device from the feed, so they register once
every device has been reported. After the session (``duration_s``) nobody walks, and the
phones stay in the venue for ``tail_s`` while the feed reports on (CMX, which reports no
still phone, gets a probe's notifications), then fall silent for ``quiet_s`` while only
the probe reports, so that every walk's settle is due (settle_s + the 90 s lateness after
its last fix), and the walk waits up to ``settle_wait_s`` for the server's periodic
settle to show in the totals: a filter that credits a walker's last leg once the walker
has been still a while (the adaptive one) is read after it has had its documented time.

Simulated time: the simulation covers ``duration_s`` of simulated time, run ``speedup``
times faster than real time (0 = as fast as possible). Timestamps in the feeds are
simulated time, and the server replaces a timestamp more than 5 minutes ahead of its
clock by the receive time, so simulated time must never run ahead of the wall clock: the
simulation starts at ``now - (duration_s + tail_s + quiet_s) * (1 - 1/speedup)`` (``now - ...`` when
as fast as possible), which makes the simulated window end when the run ends, ~now. (So a
sighting at the start is up to that old by the server's clock: a server whose
``lookup.observed_ttl_s`` is shorter forgets it before registration asks.)
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import math
import random
import sys
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, TextIO

from tools.cmx_sim import fake_cmx, fake_firehose, report
from tools.cmx_sim.api import ApiError, LiveApi
from tools.cmx_sim.cadence import Feed, for_feed
from tools.cmx_sim.devices import Device, MacMode, hash_mac, make_devices, save_devices
from tools.cmx_sim.emitters import CmxEmitter, Emitter, FirehoseEmitter, MerakiEmitter
from tools.cmx_sim.httpclient import HttpError
from tools.cmx_sim.venue import Venue, VenueConfig


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
    batch_interval_s: float = 1.0  # simulated seconds between sends
    register_share: float = 1.0
    user_prefix: str = "sim"
    serve_cmx: tuple[str, int] | None = None  # (host, port) of an in-process fake CMX
    cmx_auth: tuple[str, str] = ("", "")
    devices_file: str | None = None
    progress_s: float = 5.0
    leaderboard: int = 0
    table_rows: int = 10
    timeout_s: float = 10.0
    feed: Feed = "cmx"
    serve_firehose: tuple[str, int] = ("127.0.0.1", 8282)  # where the fake Firehose listens
    firehose_api_key: str = fake_firehose.API_KEY
    meraki_url: str | None = None  # default: <server>/meraki
    meraki_secret: str = ""
    # After the session everyone stays put this long (simulated) while the feed reports
    # on: the adaptive filter credits a walk's last leg once the feeds' event clock has
    # run settle_s + 90 s past it (tracking.settle_s 60).
    tail_s: float = 180.0
    # Then the phones fall silent this long while a probe runs the feed's clock on: a walk
    # whose last fix came late in the tail is settled too (settle_s 60 + lateness 90).
    quiet_s: float = 160.0
    # Then up to this long (real) for the server's periodic settle (every 5 s) to show.
    settle_wait_s: float = 6.0


def sim_start_epoch(now_s: float, duration_s: float, speedup: float) -> float:
    """Epoch seconds of simulated t=0, so the simulated window ends at the real end.

    A whole second: the feeds' times are then the same whatever the run's wall clock
    (Meraki's are whole seconds; a fraction carried in would move each fix's second, and
    the filter's speed cap with it, from one run to the next).
    """
    return float(math.floor(now_s - duration_s * (1 - 1 / speedup if speedup > 0 else 1)))


def username_for(device: Device, prefix: str) -> str:
    """A stable username per device (tied to its MAC, so reruns find it again)."""
    return f"{prefix}-{device.mac.replace(':', '')}"


def make_emitter(opts: WalkOptions, devices: list[Device], device_ids: list[str],
                 start_epoch: float, api: LiveApi) -> Emitter:
    """The sender of opts.feed."""
    if opts.feed == "firehose":
        return FirehoseEmitter(opts.serve_firehose, opts.firehose_api_key, devices,
                               start_epoch, api, seed=opts.seed)
    if opts.feed == "meraki":
        url = opts.meraki_url or opts.server.rstrip("/") + "/meraki"
        return MerakiEmitter(url, opts.meraki_secret, devices, start_epoch, seed=opts.seed,
                             timeout_s=opts.timeout_s)
    return CmxEmitter(opts.server, opts.notify_auth, devices, device_ids, start_epoch,
                      batch_size=opts.batch_size, timeout_s=opts.timeout_s)


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
        hint = ("use --mac-mode test with cmx.hosts [test], or --serve-cmx and point cmx.hosts "
                "at it" if opts.feed == "cmx" else
                f"the server should have learnt them from the {opts.feed} feed: is it enabled, "
                f"and lookup.observed_ttl_s longer than the simulated duration?")
        print(f"  hint: {hint}", file=out)
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


async def _settled_totals(api: LiveApi, registered: list[Device],
                          opts: WalkOptions) -> list[float | None]:
    """The registered devices' totals once the server's settle has shown (or settle_wait_s
    has passed): read again after the first totals that differ from those read right after
    the walk."""

    async def read() -> list[float | None]:
        return await api.map(lambda d: api.total_km(username_for(d, opts.user_prefix)),
                             registered)

    totals = await read()
    deadline = time.monotonic() + opts.settle_wait_s
    while time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        if await read() != totals:
            # The settle ran before or while that read: a read begun now is wholly after it
            # (one settle pass stops every walk due).
            return await read()
    return totals


def _clock(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600:02d}:{whole // 60 % 60:02d}:{whole % 60:02d}"


class _Stream:
    """Simulated time from 0 to duration_s, a send every batch interval, paced to speedup."""

    def __init__(self, venue: Venue, emitter: Emitter, opts: WalkOptions, out: TextIO) -> None:
        self.venue, self.emitter, self.opts, self.out = venue, emitter, opts, out
        self.t_s = 0.0
        self.origin = time.monotonic()  # real time of simulated 0 (moved on by pauses)
        self.real_start = self.origin
        self.next_progress = self.origin + opts.progress_s

    async def run(self, end_s: float, until: Callable[[], bool] = lambda: False,
                  clock: bool = False, quiet: bool = False) -> None:
        """Run until end_s, or until until() holds after a send; with clock, the emitter's
        clock probe reports at every step too; with quiet, the devices report nothing."""
        opts = self.opts
        while self.t_s < end_s and not until():
            self.t_s = min(self.t_s + opts.batch_interval_s, end_s)
            await self.emitter.send([] if quiet else self.venue.step(self.t_s), self.t_s)
            if clock:
                await self.emitter.clock(self.t_s)
            now = time.monotonic()
            behind_s = 0.0
            if opts.speedup > 0:
                behind_s = now - (self.origin + self.t_s / opts.speedup)
                if behind_s < 0:
                    await asyncio.sleep(-behind_s)
            if opts.progress_s > 0 and now >= self.next_progress:
                self._progress(now, behind_s)
                self.next_progress = now + opts.progress_s

    def pause(self) -> float:
        """Stop the pacing clock (registration); resume(returned value) restarts it."""
        return time.monotonic()

    def resume(self, paused_at: float) -> None:
        self.origin += time.monotonic() - paused_at

    def _progress(self, now: float, behind_s: float) -> None:
        tally, opts = self.emitter.tally, self.opts
        real_s = now - self.real_start
        rate = tally["notifications"] / real_s if real_s > 0 else 0.0
        error = f" (last: {self.emitter.last_error})" if self.emitter.last_error else ""
        print(f"sim {_clock(self.t_s)}/{_clock(opts.duration_s + opts.tail_s)}  {opts.feed} fixes "
              f"{tally['notifications']} ({rate:.0f}/s)  posts {tally['posts']}  errors "
              f"{tally['post_errors']}{error}  behind {max(0.0, behind_s):.1f}s",
              file=self.out, flush=True)


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
    real_start = time.monotonic()
    # The Firehose consumer may take a while to connect: simulated time starts after it.
    start_epoch = 0.0
    emitter = make_emitter(opts, devices, device_ids, start_epoch, api)
    try:
        await emitter.start(out)
        end_s = opts.duration_s + opts.tail_s + opts.quiet_s
        start_epoch = sim_start_epoch(time.time(), end_s, opts.speedup)
        emitter.start_epoch = start_epoch
        venue = Venue(devices, for_feed(opts.venue, opts.feed), opts.seed)
        stream = _Stream(venue, emitter, opts, out)
        chosen = _choose(devices, opts.register_share, opts.seed)
        paused_at = 0.0
        if opts.feed != "cmx":  # the server learns the IPs from the feed: report them first
            await stream.run(opts.duration_s, until=lambda: len(emitter.reported) == len(devices))
            paused_at = stream.pause()
            await emitter.settle(stream.t_s)
        before = await _register(api, chosen, opts, device_ids, out)
        if chosen and not before:
            raise SystemExit("walk: no device could be registered; nothing to evaluate")
        print(f"registered {len(before)} of {len(chosen)} devices; walking "
              f"{opts.attendees} attendees + {opts.stationary} stationary devices for "
              f"{_clock(opts.duration_s)} simulated through {opts.feed}", file=out, flush=True)
        if opts.feed != "cmx":
            stream.resume(paused_at)
        await stream.run(opts.duration_s)
        venue.stop_walking(opts.duration_s)  # the truth ends with the session
        await stream.run(opts.duration_s + opts.tail_s, clock=True)
        await stream.run(end_s, clock=True, quiet=True)
        await emitter.finish(end_s)
        registered = [d for d in chosen if d.index in before]
        after = await _settled_totals(api, registered, opts)
        rows = [report.Row(username_for(d, opts.user_prefix), d.kind, device_ids[d.index],
                           round(venue.reported_distance_m(d.index), 1),
                           round(((km or 0.0) - before[d.index]) * 1000, 1))
                for d, km in zip(registered, after, strict=True)]
        board = await api.leaderboard(opts.leaderboard) if opts.leaderboard > 0 else None
    finally:
        await emitter.aclose()
        await api.aclose()
        if cmx_server is not None:
            cmx_server.stop()
    traffic = dict(emitter.tally) | {"registered": len(before),
                                     "real_s": round(time.monotonic() - real_start, 1)}
    result = report.build_report(rows, _scenario(opts, start_epoch), traffic)
    if board is not None:
        result["leaderboard"] = board
    return result


def _scenario(opts: WalkOptions, start_epoch: float) -> dict[str, Any]:
    start = datetime.datetime.fromtimestamp(start_epoch, tz=datetime.UTC)
    return {"feed": opts.feed, "attendees": opts.attendees, "stationary": opts.stationary,
            "seed": opts.seed, "duration_s": opts.duration_s, "tail_s": opts.tail_s,
            "quiet_s": opts.quiet_s,
            "speedup": opts.speedup,
            "sim_start": start.isoformat(timespec="seconds"), "mac_mode": opts.mac_mode,
            "mac_hashing": bool(opts.hash_key), "register_share": opts.register_share,
            "batch_size": opts.batch_size, "batch_interval_s": opts.batch_interval_s,
            **dataclasses.asdict(for_feed(opts.venue, opts.feed))}
