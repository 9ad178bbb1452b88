"""The walk's fixes sent through one feed: CMX POSTs, a fake Firehose stream, Meraki POSTs.

Each emitter takes the venue's fixes in simulated-time order (``send``), can make sure the
server has applied everything sent so far (``settle``: before registering devices whose
IPs the server learns from the feed, and before reading the totals), and sends what it
still holds at the end (``finish``). Its ``tally`` counts what went out: ``notifications``
(location reports: CMX notifications, Firehose events, Meraki fixes), ``posts`` and
``post_errors``, and the server's ``accepted``/``ignored``/``rejected`` where it says them.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any, Protocol, TextIO

import orjson
from tornado.httpserver import HTTPServer

from tools.cmx_sim import fake_firehose, notify
from tools.cmx_sim.api import LiveApi
from tools.cmx_sim.cadence import MERAKI_POST_INTERVAL_S, LateDelivery
from tools.cmx_sim.devices import Device
from tools.cmx_sim.httpclient import HttpConnection, HttpError, basic_auth, encode_request
from tools.cmx_sim.meraki_poster import MerakiPoster, Sighting
from tools.cmx_sim.venue import Fix

SETTLE_TIMEOUT_S = 120.0
_PROBE_NUMBERS = itertools.count(1)
CLOCK_PROBE_MAC = "02:5e:c1:0c:00:01"  # reports after the session so the feed's time runs on
# (CMX: in the tail, where it reports no still phone; every feed: once the phones are silent)
CLOCK_PROBE_IP = "172.31.255.254"


class Emitter(Protocol):
    """What the walk needs of a feed."""

    tally: Counter[str]
    last_error: str
    start_epoch: float  # epoch seconds of simulated time 0
    reported: set[int]  # the devices with a fix sent (or, Meraki, waiting for the POST)

    async def start(self, out: TextIO) -> None: ...

    async def send(self, fixes: list[Fix], t_s: float) -> None: ...

    async def clock(self, t_s: float) -> None: ...

    async def settle(self, t_s: float) -> None: ...

    async def finish(self, t_s: float) -> None: ...

    async def aclose(self) -> None: ...


def count_reply(tally: Counter[str], body: bytes) -> str:
    """Add a feed reply's accepted/ignored/rejected to tally; an error text, or ""."""
    try:
        counts = orjson.loads(body)
        for key in ("accepted", "ignored", "rejected"):
            tally[key] += int(counts.get(key, 0))
    except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
        return f"unexpected reply {body[:120]!r}"
    return ""


class CmxEmitter:
    """POSTs CMX envelopes to /notification in order on one keep-alive connection."""

    def __init__(self, server: str, auth: tuple[str, str], devices: Sequence[Device],
                 device_ids: Sequence[str], start_epoch: float, *, batch_size: int = 50,
                 timeout_s: float = 10.0) -> None:
        self.url = server.rstrip("/") + "/notification"
        self.headers = basic_auth(*auth)
        self.conn = HttpConnection(server, timeout_s)
        self.devices, self.device_ids = devices, device_ids
        self.start_epoch, self.batch_size = start_epoch, batch_size
        self.event_id = 0
        self.tally: Counter[str] = Counter()
        self.last_error = ""
        self.reported: set[int] = set()

    async def start(self, out: TextIO) -> None:
        """Nothing to set up: CMX POSTs to the server."""

    async def send(self, fixes: list[Fix], t_s: float) -> None:
        """The fixes as movement notifications, batch_size per POST."""
        for first in range(0, len(fixes), self.batch_size):
            batch = []
            for fix in fixes[first:first + self.batch_size]:
                self.event_id += 1
                self.reported.add(fix.device)
                epoch_ms = round((self.start_epoch + fix.t_s) * 1000)
                batch.append(notify.movement(fix, self.device_ids[fix.device],
                                             self.devices[fix.device].ip, self.event_id,
                                             epoch_ms))
            await self.post(batch)

    async def post(self, notifications: list[dict[str, Any]], *, counted: bool = True) -> None:
        """Send one batch (one retry on a dropped connection); failures are counted, and
        the rest unless it is not the walk's own (counted False)."""
        raw = encode_request("POST", self.url, self.headers, notify.envelope(notifications))
        tally = self.tally if counted else Counter()
        tally["posts"] += 1
        tally["notifications"] += len(notifications)
        for attempt in (1, 2):
            try:
                status, body = await self.conn.request(raw)
                break
            except HttpError as exc:
                if attempt == 2:
                    self.tally["post_errors"] += 1
                    self.last_error = str(exc)
                    return
        error = f"HTTP {status} {body[:120]!r}" if status != 200 else count_reply(tally, body)
        if error:
            self.tally["post_errors"] += 1
            self.last_error = error

    async def clock(self, t_s: float) -> None:
        """A notification of the clock probe at t_s: CMX sends nothing for still phones."""
        self.event_id += 1
        epoch_ms = round((self.start_epoch + t_s) * 1000)
        fix = Fix(-1, t_s, 1, 0.0, 0.0, 0.0)
        await self.post([notify.movement(fix, CLOCK_PROBE_MAC, CLOCK_PROBE_IP, self.event_id,
                                         epoch_ms)], counted=False)

    async def settle(self, t_s: float) -> None:
        """Nothing: a POST is applied before it is answered."""

    async def finish(self, t_s: float) -> None:
        """Nothing is held back."""

    async def aclose(self) -> None:
        await self.conn.aclose()


class MerakiEmitter:
    """Meraki's poster: one POST per simulated minute with the fixes since the last one."""

    def __init__(self, url: str, secret: str, devices: Sequence[Device], start_epoch: float,
                 *, seed: int = 1, timeout_s: float = 10.0) -> None:
        self.poster = MerakiPoster(url, secret, seed=seed, interval_s=MERAKI_POST_INTERVAL_S,
                                   timeout_s=timeout_s)
        self.devices, self.start_epoch = devices, start_epoch
        self.tally = self.poster.tally
        self.last_error = ""
        self.reported: set[int] = set()

    async def start(self, out: TextIO) -> None:
        """Nothing to set up: Meraki POSTs to the server."""

    async def send(self, fixes: list[Fix], t_s: float) -> None:
        """Buffer the fixes; POST them when a minute has passed since the last POST."""
        for fix in fixes:
            self.poster.add_fix(self.devices[fix.device], fix, self.start_epoch)
            self.reported.add(fix.device)
        self.tally["notifications"] += len(fixes)
        epoch_s = self.start_epoch + t_s
        if self.poster.pending and self.poster.due(epoch_s):
            await self._post(epoch_s)

    async def _post(self, epoch_s: float) -> None:
        await self.poster.flush(epoch_s)  # the poster tallies the replies
        self.last_error = self.poster.last_error

    async def clock(self, t_s: float) -> None:
        """A sighting of the clock probe at t_s, POSTed with the minute's others."""
        self.tally["probe_fixes"] += 1  # the replies count it as accepted too
        self.poster.add(Sighting(CLOCK_PROBE_MAC, CLOCK_PROBE_IP, 1, 0.0, 0.0,
                                 self.start_epoch + t_s))
        if self.poster.due(self.start_epoch + t_s):
            await self._post(self.start_epoch + t_s)

    async def settle(self, t_s: float) -> None:
        """POST what is buffered now: the server applies a POST before answering it."""
        if self.poster.pending:
            await self._post(self.start_epoch + t_s)

    async def finish(self, t_s: float) -> None:
        """The last POST, with the fixes of the last (part of a) minute."""
        await self.settle(t_s)

    async def aclose(self) -> None:
        await self.poster.aclose()


class FirehoseEmitter:
    """A fake Cisco Spaces Firehose served in this process; the server under test reads it.

    Fixes are pushed as DEVICE_LOCATION_UPDATE events when Spaces would deliver them (a
    share late, out of order). ``settle`` pushes one more event, for a probe device at an
    IP no walker has, and waits until the server's ``/live/ip_username`` knows that IP:
    the server reads the stream in order, so everything before the probe is applied. (A
    server that resolves every IP without the feed, as CMX test mode does, cannot show
    that: then settle waits for the stream to be written, and a second.)
    """

    def __init__(self, listen: tuple[str, int], api_key: str, devices: Sequence[Device],
                 start_epoch: float, api: LiveApi, *, seed: int = 1,
                 connect_timeout_s: float = SETTLE_TIMEOUT_S) -> None:
        # A resume replays the last minute or so (resume_overlap_s): keep a few of those.
        self.fake = fake_firehose.FakeFirehose(api_key, retain=50_000)
        self.listen, self.devices, self.start_epoch, self.api = listen, devices, start_epoch, api
        self.delivery = LateDelivery(seed)
        self.connect_timeout_s = connect_timeout_s
        self.server: HTTPServer | None = None
        self.tally: Counter[str] = Counter()
        self.last_error = ""
        self.reported: set[int] = set()
        self.probe_works = True
        self._probe_prefix = f"02:5e:{seed % 256:02x}"

    @property
    def url(self) -> str:
        """The events URL to configure as feeds.spaces_firehose.url."""
        return f"http://{self.listen[0]}:{self.listen[1]}{fake_firehose.PATH}"

    async def start(self, out: TextIO) -> None:
        """Listen, then wait until the server under test has connected."""
        self.server = fake_firehose.make_app(self.fake).listen(self.listen[1],
                                                                address=self.listen[0])
        print(f"fake Firehose on {self.url}; waiting for the server to connect "
              f"(feeds.spaces_firehose.url)", file=out, flush=True)
        try:
            await asyncio.wait_for(self.fake.wait_for(lambda f: f.open_streams > 0),
                                   self.connect_timeout_s)
        except TimeoutError:
            raise SystemExit(
                f"walk: the server did not connect to the fake Firehose at {self.url} within "
                f"{self.connect_timeout_s:.0f} s: set feeds.spaces_firehose.enabled true, its "
                f"url to that URL and its api_key to the walk's --firehose-api-key") from None
        self.probe_works = await self._unknown(self._probe()[1])
        if not self.probe_works:
            print("note: the server resolves IPs no feed has seen (CMX test mode?); the walk "
                  "cannot tell when it has read the stream and waits a second instead",
                  file=out, flush=True)

    def _push(self, fixes: list[Fix]) -> None:
        events = []
        for fix in fixes:
            epoch_ms = round((self.start_epoch + fix.t_s) * 1000)
            events.append(fake_firehose.from_fix(fix, self.devices[fix.device], epoch_ms))
            self.reported.add(fix.device)
        if events:  # one push: the stream writes the group in one go
            self.fake.push(*events)
        self.tally["notifications"] += len(fixes)

    async def send(self, fixes: list[Fix], t_s: float) -> None:
        """Push the fixes Spaces delivers by simulated time t_s."""
        self.delivery.add(fixes)
        self._push(self.delivery.due(t_s))
        await asyncio.sleep(0)  # let the stream handler write

    async def clock(self, t_s: float) -> None:
        """A location update of the clock probe at t_s."""
        self.tally["probe_fixes"] += 1
        self.fake.push(fake_firehose.location_update(
            CLOCK_PROBE_MAC, 1, 0.0, 0.0, record_ms=round((self.start_epoch + t_s) * 1000),
            ip=CLOCK_PROBE_IP))

    def _probe(self) -> tuple[str, str]:
        """A MAC and an IP of a probe device no walker has."""
        number = next(_PROBE_NUMBERS)
        mac = f"{self._probe_prefix}:{number >> 16 & 255:02x}:{number >> 8 & 255:02x}:" \
              f"{number & 255:02x}"
        return mac, f"172.31.{number // 250 % 256}.{number % 250 + 1}"

    async def _unknown(self, ip: str) -> bool:
        """True while the server has no device for ip (its "Connect to ... WiFi first")."""
        status, data = await self.api.call("ip_username", {"ip": ip})
        text = data.get("error", "") if isinstance(data, dict) else ""
        return status == 404 and text.startswith("Connect to")

    async def settle(self, t_s: float) -> None:
        """Wait until the server has applied every event pushed so far (see the class)."""
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        if not self.probe_works:
            while self.fake.pending_events and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            await asyncio.sleep(1.0)
            return
        mac, ip = self._probe()
        epoch_ms = round((self.start_epoch + t_s) * 1000)
        self.fake.push(fake_firehose.location_update(mac, 1, 0.0, 0.0, record_ms=epoch_ms,
                                                     ip=ip))
        while time.monotonic() < deadline:
            if not await self._unknown(ip):
                return
            await asyncio.sleep(0.02)
        raise SystemExit(f"walk: the server did not apply the Firehose stream within "
                         f"{SETTLE_TIMEOUT_S:.0f} s (probe IP {ip} still unknown)")

    async def finish(self, t_s: float) -> None:
        """Deliver the late events still held, then settle."""
        self._push(self.delivery.rest())
        await self.settle(t_s)

    async def aclose(self) -> None:
        if self.server is not None:
            self.fake.end_streams()
            self.server.stop()
            await self.server.close_all_connections()
