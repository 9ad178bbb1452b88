"""The assembled server: database, state, look-ups, flusher, feeds, app and HTTP server.

``Runtime.start`` does everything but listening (embedded or configured PostgreSQL, the
schema, the start-up load and any spill file, the CMX client, the flusher, the service,
the feeds and periodic tasks of ``background``); ``listen`` binds the HTTP(S) server;
``stop`` stops accepting, drains, stops the feeds, and ends with the final flush, or the
spill file when the database is unreachable. ``server`` runs it between the signals.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import ssl
import time
from collections.abc import Callable

import tornado.httpserver
import tornado.web

from tys_server.background import Background
from tys_server.config import Settings
from tys_server.core import restore
from tys_server.core.dirty import RECENT_S
from tys_server.core.gate import GateParams
from tys_server.core.snapshot import Unflushed
from tys_server.core.state import State
from tys_server.core.tracking import FilterParams
from tys_server.feeds.spaces_firehose import FirehoseConsumer
from tys_server.lookup.cmx_api import CmxClient, configure_http_client
from tys_server.lookup.observed import ObservedIps
from tys_server.ops.feeds import Health
from tys_server.ops.metrics import Metrics
from tys_server.ops.startup import StartupError
from tys_server.ops.tls import tls_context
from tys_server.service import Service
from tys_server.store import spill
from tys_server.store.database import Store, StoreError
from tys_server.store.embedded import EmbeddedPostgres
from tys_server.store.flusher import Flusher
from tys_server.web import status
from tys_server.web.app import in_flight, make_app
from tys_server.web.base import SECURITY_HEADERS
from tys_server.web.limits import BodyLimit

log = logging.getLogger("tys_server")

# The shutdown flush: tries, and the pauses between them (2, 4 s), then the spill file;
# systemd's TimeoutStopSec must outlast them all (tests/ops/test_systemd_units.py reads
# these).
FINAL_FLUSH_ATTEMPTS = 3
FINAL_FLUSH_PAUSE_STEP_S = 2.0
FINAL_FLUSH_PAUSE_MAX_S = 5.0


def final_flush_pause_s(attempt: int) -> float:
    """The pause after failed try `attempt` (1-based) of the shutdown flush."""
    return min(FINAL_FLUSH_PAUSE_STEP_S * attempt, FINAL_FLUSH_PAUSE_MAX_S)


class Runtime:
    """The assembled service: database, state, CMX client, flusher, HTTP server."""

    def __init__(self, settings: Settings, *, clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.clock = clock  # the feeds' and the service's "now" (tests move it)
        self.monotonic = monotonic  # runs the feeds' event clocks on (the settle's time)
        self.embedded: EmbeddedPostgres | None = None
        self.store: Store | None = None
        # IP → device as the feeds saw it: registration asks it before any CMX host.
        self.observed = ObservedIps(settings.lookup.observed_ttl_s)
        tracking = settings.tracking
        self.state = State(FilterParams(tracking.max_speed_mps, tracking.max_moving_angle_deg,
                                        mode=tracking.filter,
                                        min_speed_mps=tracking.min_speed_mps,
                                        settle_s=tracking.settle_s,
                                        stop_ext_share=tracking.stop_ext_share,
                                        cmx_stop_ext_share=tracking.cmx_stop_ext_share,
                                        trigger_ft=settings.cmx.movement_distance_ft),
                           settings.tracking.timezone,
                           gate=GateParams(settings.gate_ft(), tracking.max_uncertainty_ft,
                                           tracking.gate_min_ft),
                           max_devices=settings.tracking.max_devices,
                           on_ip_seen=self.observed.saw)
        self.loaded_cursors: dict[str, int] = {}  # feed → cursor_ms read at start-up
        # The feeds' watches, the Firehose consumer and the periodic tasks (background.py).
        self.background = Background(settings, self.state, self.observed, clock=clock,
                                     monotonic=monotonic)
        self.feeds = self.background.feeds
        self.metrics = Metrics(self.state, feeds=self.feeds, clock=clock)
        self.cmx: CmxClient | None = None
        self.service: Service | None = None
        self.flusher: Flusher | None = None
        self.http: tornado.httpserver.HTTPServer | None = None
        self.app: tornado.web.Application | None = None

    @property
    def firehose(self) -> FirehoseConsumer | None:
        """The Spaces Firehose consumer, once started (None when that feed is off)."""
        return self.background.firehose

    @property
    def retention_runs(self) -> int:
        """Purges the retention task has run (privacy.retain_unregistered_days)."""
        return self.background.retention_runs

    @property
    def retained(self) -> asyncio.Event:
        """Set after each purge of the retention task."""
        return self.background.retained

    def settle(self) -> int:
        """The adaptive filter's settle at the feeds' clock (background.py): devices settled."""
        return self.background.settle()

    async def open_database(self) -> str:
        """Embedded PostgreSQL unless database.dsn is set; returns the DSN."""
        db = self.settings.database
        if db.dsn:
            return db.dsn
        self.embedded = EmbeddedPostgres(db.embedded_dir)
        await asyncio.to_thread(self.embedded.start)
        await asyncio.to_thread(self.embedded.ensure_database)
        return self.embedded.dsn()

    async def start(self) -> None:
        """Everything but listening: database, schema, state, service."""
        db = self.settings.database
        dsn = await self.open_database()
        self.store = await Store.connect(dsn, pool_size=db.pool_size,
                                         connect_timeout_s=db.connect_timeout_s,
                                         statement_timeout_s=db.statement_timeout_s)
        await self.store.apply_schema(unlogged=db.unlogged)
        started = time.perf_counter()
        # A million long-lived objects: GC passes during the load could free none of them.
        gc.disable()
        try:
            loaded = await self.store.load(self.state, recent_since_s=self.clock() - RECENT_S)
            # What start-up made (modules, the loaded state) lives as long as the server:
            # no later full pass need walk it (with a million tracks a pass took ~100 ms;
            # with 10,000 users full passes of 53-56 ms were seen after a Firehose ingest).
            gc.freeze()
        finally:
            gc.enable()
        log.info("loaded %d users, %d devices, %d tracks, %d day rows in %.1f s",
                 len(self.state.users), len(self.state.owners), len(self.state.tracks),
                 len(self.state.days), time.perf_counter() - started)
        self.loaded_cursors = dict(loaded.cursors)
        spilled = await asyncio.to_thread(spill.read, db.spill_dir)
        if spilled is not None:  # newer than the database: a shutdown could not write it
            restore.apply_unflushed(self.state, spilled)
            self.loaded_cursors.update(spilled.cursors)
        configure_http_client(self.settings.cmx.max_clients)
        self.cmx = CmxClient(self.settings.cmx, on_lookup=self.metrics.observe_lookup)
        self.flusher = Flusher(self.state, self.store, db.flush_interval_s, clock=self.clock,
                               on_flush=self.metrics.observe_flush, cursors=self._cursors)
        self.service = Service(self.settings, self.state, self.store, self.cmx, self.clock,
                               observed=self.observed, on_lookup=self.metrics.count_lookup,
                               flush=self.flusher)
        self.flusher.written_cursors = dict(loaded.cursors)
        if spilled is not None:
            await self._write_spill(spilled)
        self.metrics.watch(self.flusher, self.cmx)
        self.flusher.last_success_s = self.clock()
        self.flusher.start()
        self.background.start(self.loaded_cursors, self.service)

    def application(self) -> tornado.web.Application:
        """The Tornado app over this runtime."""
        assert self.service is not None and self.flusher is not None
        health = Health(self.flusher, self.feeds)
        cmx_feed, meraki_feed = self.background.cmx_feed, self.background.meraki_feed
        page = status.StatusPage(self.service, health, self.cmx, feeds=self.feeds,
                                 clock=self.clock)
        self.app = make_app(self.settings, self.service, health, clock=self.clock,
                            on_batch=cmx_feed.observe if cmx_feed else None,
                            on_meraki_batch=meraki_feed.observe if meraki_feed else None,
                            on_request=self.metrics.on_request,
                            extra_routes=status.routes(self.settings, self.metrics, page))
        return self.app

    def listen(self, tls: ssl.SSLContext | None = None) -> None:
        """Bind the HTTP(S) server (tls: a context already made, else from the settings)."""
        server = self.settings.server
        app = self.application()
        # Bad credentials (401) and bodies over the cap (413) are refused on the headers.
        guarded = BodyLimit(app, server.max_body_bytes,
                            SECURITY_HEADERS if app.settings.get("security_headers") else (),
                            rules=app.settings.get("edge_rules", ()))
        self.http = tornado.httpserver.HTTPServer(
            guarded, xheaders=server.xheaders,
            ssl_options=tls if tls is not None else tls_context(self.settings),
            max_body_size=server.max_body_bytes, body_timeout=server.body_timeout_s,
            idle_connection_timeout=server.idle_connection_timeout_s,
            max_header_size=16 * 1024)
        try:
            self.http.listen(server.port, server.host)
        except OSError as exc:
            raise StartupError(f"cannot listen on {server.host}:{server.port}",
                               exc.strerror or str(exc)) from None
        log.info("serving on %s://%s:%d", "https" if server.tls_cert else "http",
                 server.host, server.port)

    async def _write_spill(self, spilled: Unflushed) -> None:
        """Flush what a spill file put back; only then remove the file."""
        assert self.flusher is not None
        if not await self.flusher.flush_once():
            raise StoreError(f"cannot write the {len(spilled)} rows of the spill file to the "
                             "database; the file is kept for the next start")
        await asyncio.to_thread(spill.remove, self.settings.database.spill_dir)
        log.info("wrote the %d rows of the spill file and removed it", len(spilled))

    def _cursors(self) -> dict[str, int]:
        # A feed that has not moved since start-up keeps the cursor it was loaded with.
        return {**self.loaded_cursors, **self.background.feed_cursors()}

    async def stop(self) -> bool:
        """Stop accepting, drain, final flush (or spill), close; True when nothing is lost."""
        if self.http is not None:
            self.http.stop()
            await self._drain()
        flushed = True
        await self.background.stop()
        if self.flusher is not None:
            await self.flusher.stop()
            flushed = await self._final_flush()
        if self.store is not None:
            await self.store.close()
        if self.embedded is not None:
            await asyncio.to_thread(self.embedded.stop)
        return flushed

    async def _drain(self) -> None:
        assert self.http is not None
        deadline = time.monotonic() + self.settings.server.drain_timeout_s
        while in_flight(self.app) > 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await self.http.close_all_connections()

    async def _final_flush(self) -> bool:
        assert self.flusher is not None
        for attempt in range(1, FINAL_FLUSH_ATTEMPTS + 1):
            if await self.flusher.flush_once():
                log.info("final flush done")
                return True
            log.error("final flush failed (attempt %d of %d)", attempt, FINAL_FLUSH_ATTEMPTS)
            if attempt < FINAL_FLUSH_ATTEMPTS:  # no pause before the spill file
                await asyncio.sleep(final_flush_pause_s(attempt))
        return await self._spill()

    async def _spill(self) -> bool:
        """Write what the database did not get to the spill file; True when written."""
        assert self.flusher is not None
        content = spill.unflushed(self.state, self.flusher.unflushed(), self._cursors())
        directory = self.settings.database.spill_dir
        try:
            path = await asyncio.to_thread(spill.write, directory, content)
        except OSError as exc:
            log.error("cannot write the spill file in %s (%s): %d unflushed rows are lost",
                      directory, exc.strerror or exc, len(content))
            return False
        log.warning("database unreachable: wrote %d unflushed rows to %s; the next start "
                    "writes them", len(content), path)
        return True
