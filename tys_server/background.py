"""What runs beside the HTTP server: the feed watches, the Firehose, the periodic tasks.

The periodic tasks: sighting expiry, the adaptive filter's settle, the retention purge.

``runtime.Runtime`` builds one ``Background`` with the state, starts it once the state
is loaded and the service exists, and stops it before the final flush: the Firehose
cursor written then matches the state, and a purge batch under way ends first. The
feeds that POST to TYS (CMX, Meraki) are only watched here (``ops.feeds.ReceiverWatch``):
their handlers apply the batches.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping

import tornado.ioloop

from tys_server.config import Settings
from tys_server.core.state import State
from tys_server.feeds.spaces_firehose import FirehoseConsumer, FirehoseOptions
from tys_server.lookup.observed import ObservedIps
from tys_server.ops.feeds import FeedBoard, FirehoseWatch, ReceiverWatch
from tys_server.service import Service, StorageFailed

log = logging.getLogger("tys_server")

FORGET_SIGHTINGS_EVERY_S = 60.0  # expired IP sightings leave memory this often
# The adaptive filter's settle runs this often (its credits show on the boards then).
SETTLE_EVERY_S = 5.0
# privacy.retain_unregistered_days is applied at start-up and then this often.
RETAIN_EVERY_S = 3600.0


class Background:
    """The enabled feeds (``feeds``, a FeedBoard) and the server's periodic tasks."""

    def __init__(self, settings: Settings, state: State, observed: ObservedIps, *,
                 clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.state = state
        self.observed = observed
        self.clock = clock  # the feeds' "now"
        self.monotonic = monotonic  # runs the feeds' event clocks on (the settle's time)
        self.feeds, self.cmx_feed, self.meraki_feed = self._receivers()
        self.firehose: FirehoseConsumer | None = None
        self._forget_sightings: tornado.ioloop.PeriodicCallback | None = None
        self._settle: tornado.ioloop.PeriodicCallback | None = None
        self._retention: asyncio.Task[None] | None = None  # privacy.retain_unregistered_days
        self.retention_runs = 0  # purges the retention task has run
        self.retained = asyncio.Event()  # set after each of them

    def _receivers(self) -> tuple[FeedBoard, ReceiverWatch | None, ReceiverWatch | None]:
        """The board of enabled feeds, with a watch for each feed that POSTs to TYS."""
        feeds = self.settings.feeds
        board = FeedBoard()
        watches: list[ReceiverWatch | None] = []
        for name, on, quiet_after_s in (
                ("cmx", feeds.cmx.enabled, feeds.cmx.quiet_after_s),
                ("meraki", feeds.meraki.enabled, feeds.meraki.quiet_after_s)):
            watch = (ReceiverWatch(quiet_after_s, clock=self.clock, monotonic=self.monotonic)
                     if on else None)
            if watch is not None:
                board.add(name, watch)
            watches.append(watch)
        return board, watches[0], watches[1]

    def start(self, loaded_cursors: Mapping[str, int], service: Service) -> None:
        """The Firehose consumer (resuming from its stored cursor), sighting expiry, the
        settle and the retention purge: everything that runs once the state is loaded."""
        spaces = self.settings.feeds.spaces_firehose
        if spaces.enabled:
            options = FirehoseOptions(
                url=spaces.url, api_key=spaces.api_key, coordinate_unit=spaces.coordinate_unit,
                resume_overlap_s=spaces.resume_overlap_s, stall_timeout_s=spaces.stall_timeout_s,
                hash_key=self.settings.cmx.mac_hash_key, quiet_after_s=spaces.quiet_after_s)
            self.firehose = FirehoseConsumer(
                options, self.state, clock=self.clock,
                initial_cursor_ms=loaded_cursors.get("spaces_firehose"))
            cursor_ms = loaded_cursors.get("spaces_firehose")
            self.feeds.add("spaces_firehose", FirehoseWatch(
                self.firehose, monotonic=self.monotonic,
                resume_ts=None if cursor_ms is None else cursor_ms / 1000))
            self.firehose.start()
        self._forget_sightings = tornado.ioloop.PeriodicCallback(
            lambda: self.observed.forget_old(self.clock()), FORGET_SIGHTINGS_EVERY_S * 1000)
        self._forget_sightings.start()
        if self.state.params.adaptive:
            self._settle = tornado.ioloop.PeriodicCallback(self.settle, SETTLE_EVERY_S * 1000)
            self._settle.start()
        if self.settings.privacy.retain_unregistered_days is not None:
            self._retention = asyncio.create_task(
                self._retain(service, self.settings.privacy.retain_unregistered_days),
                name="tys-retention")

    def settle(self) -> int:
        """The adaptive filter's settle at the feeds' clock (ops.feeds): devices settled.

        Event time, not the wall clock: a walk is taken as stopped only once every feed
        has run on past its last fix by settle_s plus the feeds' lateness.
        """
        now_s = self.feeds.settle_time_s()
        return 0 if now_s is None else self.state.settle(now_s)

    def feed_cursors(self) -> dict[str, int]:
        """The Flusher's cursors: each feed's position, matching the state it snapshots."""
        cursor_ms = self.firehose.cursor_for_flush() if self.firehose is not None else None
        return {} if cursor_ms is None else {"spaces_firehose": cursor_ms}

    async def stop(self) -> None:
        """End the stream before the final flush, so the cursor written matches the state,
        and the retention purge."""
        if self._forget_sightings is not None:
            self._forget_sightings.stop()
        if self._settle is not None:
            self._settle.stop()
        if self.firehose is not None:
            await self.firehose.stop()
        if self._retention is not None:
            # A purge batch under way still ends (shielded), and the final flush waits for
            # it (the flusher's lock): memory and database agree about it.
            self._retention.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retention
            self._retention = None

    async def _retain(self, service: Service, days: int) -> None:
        """privacy.retain_unregistered_days: purge at start-up, then every RETAIN_EVERY_S."""
        while True:
            try:
                await service.purge_unregistered(days)
            except StorageFailed:
                pass  # the database refused, which the service logged: next time
            except Exception:  # a bug must not end the retention for good
                log.exception("purge of unregistered devices failed")
            self.retention_runs += 1
            self.retained.set()
            await asyncio.sleep(RETAIN_EVERY_S)
