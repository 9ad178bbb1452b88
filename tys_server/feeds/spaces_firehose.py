"""The Cisco Spaces Firehose consumer: TYS connects out and reads the stream (DESIGN 12.2).

``GET <url>[?fromTimestamp=<ms>]`` with ``X-API-KEY``, through a ``CurlAsyncHTTPClient``
of its own; the reply never ends (NDJSON, read by ``spaces_events``). Why it is set up so:

- ``request_timeout=0``: Tornado's 20 s default would cut the stream. ``max_body_size`` at
  its maximum: Tornado counts every streamed byte against it (100 MiB by default, minutes
  of a busy venue).
- The ``header_callback`` reads the status line first: only a 200's body is read as events.
  Lines are reassembled across chunks, a partial line bounded by ``MAX_LINE_BYTES``.
- No byte for ``stall_timeout_s`` (a KEEP_ALIVE comes about every 15 s) → cut, reconnect.
  A cut shuts the transfer's socket down (``transfer``): the transfer ends at once as a
  transport error. ``stop()`` cuts the same way, so SIGTERM ends the stream without
  waiting for a timeout.
- Back-off 1 s doubling to 60 s with full jitter, reset once a connection stayed up 5
  minutes (Cisco's best practice); 429 → at least 30 s, or Retry-After (up to an hour);
  401/403/400 → ``unauthorized``, retried every 5 minutes; anything else → back-off
  (``reconnect``).

States: ``connecting``, ``connected``, ``quiet`` (connected, KEEP_ALIVEs flow, but no
DEVICE_* line for ``quiet_after_s``), ``backing_off``, ``unauthorized``, ``stopped``.

Lines are applied a slice per IOLoop turn, the transfer paused while too many wait
(``slices``): API requests are served while a burst is worked off. A connection's lines
are all applied before the next connects; ``stop()`` drops those still waiting.

Resume: ``cursor_ms`` is the newest ``recordTimestamp`` handed to the sink; a (re)connect
asks ``fromTimestamp = cursor_ms − resume_overlap_s`` (events arrive up to ~20 s out of
order) and the reader drops the overlap's ``recordUid`` duplicates. The flush stores
``cursor_for_flush()`` in the transaction that writes the state: a step's events go to
the sink and the cursor moves in one synchronous call, so the cursor read when the flush
takes its snapshot describes exactly the state it snapshots (lines waiting in the
backlog are in neither). After a restart, replayed fixes are no newer than their tracks
and the state ignores them.
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging
import operator
import random
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

from tornado.curl_httpclient import CurlAsyncHTTPClient
from tornado.httpclient import HTTPClientError, HTTPRequest

from tys_server.core.events import EventSink, arrival_lag_s
from tys_server.feeds.lines import LineSplitter
from tys_server.feeds.reconnect import (
    HEALTHY_RESET_S,
    UNAUTHORIZED_RETRY_S,
    Backoff,
    retry_after_s,
)
from tys_server.feeds.slices import STEP_LINES, TURN_S, SlicedApplier
from tys_server.feeds.spaces_events import SpacesReader
from tys_server.feeds.transfer import TransferCut

log = logging.getLogger(__name__)

_EVENT_TS = operator.attrgetter("ts")  # max over a step's events without a Python loop
DEFAULT_URL = "https://partners.ciscospaces.io/api/partners/v1/firehose/events"
USER_AGENT = "tys-server"


@dataclasses.dataclass(frozen=True)
class FirehoseOptions:
    """What the consumer needs (config keys feeds.spaces_firehose.*, and the MAC hash key)."""

    url: str = DEFAULT_URL
    api_key: str = ""
    coordinate_unit: str = "FEET"
    resume_overlap_s: float = 60.0
    stall_timeout_s: float = 45.0
    hash_key: str = ""
    connect_timeout_s: float = 10.0
    quiet_after_s: float = 300.0
    validate_cert: bool = True
    ca_file: str | None = None


class FirehoseConsumer:
    """Reads the Firehose into an EventSink until stopped; reconnects and resumes itself.

    Metrics are plain attributes read at scrape time: ``by_type`` (lines by type and
    outcome), ``bad_lines``, ``reconnects``, ``last_event_at`` (receive time of the newest
    event), ``last_event_ts`` (its event time) and ``lag_s``; ``status()`` sums them up.
    """

    def __init__(self, options: FirehoseOptions, sink: EventSink, *,
                 initial_cursor_ms: int | None = None,
                 clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
                 jitter: Callable[[], float] = random.random,
                 step_lines: int = STEP_LINES, turn_s: float = TURN_S) -> None:
        self.options = options
        self.sink = sink
        self.reader = SpacesReader(coordinate_unit=options.coordinate_unit,
                                   hash_key=options.hash_key)
        self.cursor_ms = initial_cursor_ms
        self.reconnects = 0
        self.last_event_at: float | None = None
        self.last_event_ts: float | None = None
        self.last_error: str | None = None  # why the last connection ended (None once up)
        self._clock, self._sleep = clock, sleep
        self._splitter = LineSplitter()
        self._state = "stopped"
        self._task: asyncio.Task[None] | None = None
        self._http: CurlAsyncHTTPClient | None = None
        self._stopping = False
        self._backoff = Backoff(jitter)
        self._transfer = TransferCut()
        self._slices = SlicedApplier(self._apply, self._transfer, step_lines=step_lines,
                                     turn_s=turn_s)
        self._status: int | None = None
        self._early: list[bytes] = []  # body chunks delivered before the status line
        self._retry_after_s: float | None = None
        self._connected_at: float | None = None
        self._device_seen_at = 0.0  # clock of the newest DEVICE_* line (or of connecting)
        self._device_lines = 0

    @property
    def state(self) -> str:
        """connecting, connected, quiet, backing_off, unauthorized or stopped."""
        if self._state == "connected" and (
                self._clock() - self._device_seen_at >= self.options.quiet_after_s):
            return "quiet"
        return self._state

    @property
    def bad_lines(self) -> int:
        """Lines that were not a JSON object, or longer than MAX_LINE_BYTES."""
        return self.reader.bad_lines + self._splitter.overlong

    @property
    def lag_s(self) -> float | None:
        """How late the newest DEVICE_* event was: receive time − event time."""
        return arrival_lag_s(self.last_event_at, self.last_event_ts)

    @property
    def by_type(self) -> dict[tuple[str, str], int]:
        """Lines since start by (type, outcome), for the metrics; do not modify."""
        return self.reader.by_type

    def status(self) -> dict[str, object]:
        """The feed's line on /status."""
        return {"state": self.state, "last_error": self.last_error,
                "reconnects": self.reconnects, "bad_lines": self.bad_lines,
                "cursor_ms": self.cursor_ms, "lag_s": self.lag_s,
                "last_event_age_s": None if self.last_event_at is None
                else self._clock() - self.last_event_at}

    def cursor_for_flush(self) -> int | None:
        """The cursor that describes the state already handed to the sink (ms, or None)."""
        return self.cursor_ms

    def start(self) -> None:
        """Start reading in a task of the running loop."""
        if self._task is not None:
            raise RuntimeError("the Firehose consumer is already started")
        self._stopping = False
        # Its own client: its own max_clients, and a body limit no other request shares.
        self._http = CurlAsyncHTTPClient(force_instance=True, max_clients=1,
                                         max_body_size=sys.maxsize)
        self._task = asyncio.get_running_loop().create_task(self._run(),
                                                            name="spaces-firehose")

    async def stop(self) -> None:
        """End the stream (the transfer is cut, not left to time out) and the task."""
        task = self._task
        if task is None:
            return
        self._stopping = True
        self._slices.stop()
        if self._transfer.curl is not None:
            self._transfer.cut("stopping")
        else:  # waiting to reconnect: nothing in flight
            task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            if not task.cancelled():
                raise
        finally:
            self._task = None
            if self._http is not None:
                self._http.close()
                self._http = None
            self._set_state("stopped", None)

    async def _run(self) -> None:
        while not self._stopping:
            self._set_state("connecting", None)
            try:
                code = await self._connect_once()
            except Exception as exc:  # a bug must not end the feed for good
                log.exception("Spaces Firehose: unexpected error")
                code, self.last_error = 599, type(exc).__name__
            if self._stopping:
                break
            state, delay_s = self._backoff.after(
                self._status if self._status is not None else code, self._retry_after_s)
            self._set_state(state, self.last_error)
            self.reconnects += 1
            await self._sleep(delay_s)

    def _url(self) -> str:
        if self.cursor_ms is None:
            return self.options.url
        from_ms = max(1, self.cursor_ms - int(self.options.resume_overlap_s * 1000))
        separator = "&" if "?" in self.options.url else "?"
        return self.options.url + separator + urlencode({"fromTimestamp": from_ms})

    async def _connect_once(self) -> int:
        """One request, read until it ends; its status (599: transport error or cut)."""
        opts = self.options
        assert self._http is not None
        self._status = self._retry_after_s = self._connected_at = None
        self._early = []
        request = HTTPRequest(
            self._url(), headers={"X-API-KEY": opts.api_key, "Accept": "application/x-ndjson"},
            user_agent=USER_AGENT, connect_timeout=opts.connect_timeout_s, request_timeout=0,
            follow_redirects=False, validate_cert=opts.validate_cert, ca_certs=opts.ca_file,
            header_callback=self._on_header, streaming_callback=self._on_chunk,
            prepare_curl_callback=self._transfer.on_curl)
        self._transfer.begin(opts.stall_timeout_s)
        self._slices.begin()
        applier = asyncio.get_running_loop().create_task(self._slices.run(),
                                                         name="spaces-firehose-apply")
        try:
            response = await self._http.fetch(request, raise_error=False)
            code, error = response.code, ("the stream ended" if response.code == 200
                                          else f"HTTP {response.code}")
        except HTTPClientError as exc:  # 599: refused, DNS, TLS, reset, or our own cut
            code, error = exc.code, exc.message or f"HTTP {exc.code}"
        finally:
            self._transfer.end()
            if self._splitter.reset():
                self.reader.bad_lines += 1  # the stream ended inside a line
            self._slices.finish()
            await applier  # this connection's lines are applied before the next connects
        self.last_error = self._transfer.reason or error
        if self._connected_at is not None and (
                self._clock() - self._connected_at >= HEALTHY_RESET_S):
            self._backoff.reset()
        return code

    def _set_state(self, state: str, reason: str | None) -> None:
        if state == self._state:
            return
        self._state = state
        if state == "unauthorized":
            log.error("Spaces Firehose: %s: check feeds.spaces_firehose.api_key; "
                      "retrying every %.0f s", reason, UNAUTHORIZED_RETRY_S)
        elif state == "backing_off":
            log.warning("Spaces Firehose: %s; reconnecting", reason)
        elif state in ("connected", "stopped"):
            log.info("Spaces Firehose: %s", state)

    # --- callbacks of the transfer (run on the IOLoop, in order) ---------------------

    def _on_header(self, line: str) -> None:
        self._transfer.touch()
        if line.startswith("HTTP/"):  # a status line (a 1xx may come before the final one)
            parts = line.split(None, 2)
            self._status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
            self._retry_after_s = None
            early, self._early = self._early, []
            if self._status == 200:
                self._connected_at = self._device_seen_at = self._clock()
                self.last_error = None
                self._set_state("connected", None)
                for chunk in early:
                    self._take(chunk)
        elif line[:12].lower() == "retry-after:":
            self._retry_after_s = retry_after_s(line[12:].strip(), self._clock())

    def _on_chunk(self, chunk: bytes) -> None:
        self._transfer.touch()
        if self._status is None:
            # Header callbacks are queued on the IOLoop, but curl's final flush of a reply
            # read in one go runs at once: such chunks wait for their status line.
            self._early.append(chunk)
        elif self._status == 200:
            self._take(chunk)
        # else: an error's body, not NDJSON

    def _take(self, chunk: bytes) -> None:
        """The lines a chunk completes wait for the applier (``slices``)."""
        if not self._stopping:  # else the transfer is being cut
            self._slices.add(self._splitter.feed(chunk))

    def _apply(self, lines: list[bytes]) -> None:
        """Hand lines to the sink, then move the cursor: one synchronous step."""
        try:
            now_s = self._clock()
            batch, newest_ms = self.reader.read(lines, now_s)
            if self.reader.line_error is not None:  # the line is counted bad; the rest went on
                error, self.reader.line_error = self.reader.line_error, None
                log.error("Spaces Firehose: a line could not be read", exc_info=error)
            if batch.events or batch.accepted or batch.rejected or batch.ignored:
                self.sink.ingest(batch, now_s)
            if newest_ms is not None and (self.cursor_ms is None or newest_ms > self.cursor_ms):
                self.cursor_ms = newest_ms
            if self.reader.device_lines != self._device_lines:
                self._device_lines = self.reader.device_lines
                self._device_seen_at = now_s
            if batch.events:
                self.last_event_at = now_s
                self.last_event_ts = max(map(_EVENT_TS, batch.events))
        except Exception:  # a bug in a reader or the sink: log it, keep the stream
            log.exception("Spaces Firehose: lines could not be applied")
