"""The periodic flush of dirty state to PostgreSQL, with back-off and health."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Collection
from typing import Any

from tys_server.core.dirty import Dirty
from tys_server.core.state import State
from tys_server.store.database import Store, StoreError
from tys_server.store.flush_rows import flush_chunks

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 30.0
UNHEALTHY_AFTER_INTERVALS = 3


class Flusher:
    """Owns the flush task: every interval, write what changed; keep it on failure."""

    def __init__(self, state: State, store: Store, interval_s: float, *,
                 clock: Callable[[], float] = time.time,
                 on_flush: Callable[[float, int, bool], None] | None = None,
                 cursors: Callable[[], dict[str, int]] | None = None) -> None:
        self.state = state
        self.store = store
        self.interval_s = interval_s
        self.clock = clock
        self.on_flush = on_flush  # (seconds, rows, ok) for metrics
        # feed → cursor_ms describing the state handed to it so far: read before the
        # flush's first await, written in its transaction (resume points of the feeds).
        self.cursors = cursors
        self.written_cursors: dict[str, int] = {}  # as the database holds them
        self.last_success_s: float | None = None
        self.failing_since_s: float | None = None
        self.failures = 0
        self.flushes = 0
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        # Distance keys of the last flush, written once more by the next one: its
        # commit was asynchronous (synchronous_commit = off), so a PostgreSQL crash
        # right after it may have lost it (DESIGN section 8).
        self._unconfirmed = Dirty()
        self._writing = 0  # changed keys held by the flush running now

    async def flush_once(self) -> bool:
        """Write every dirty key as an absolute value; True when it reached the database."""
        async with self._lock:
            fresh = self.state.take_dirty()
            cursors = self._changed_cursors()
            dirty = Dirty(fresh.tracks | self._unconfirmed.tracks,
                          fresh.days | self._unconfirmed.days, fresh.minutes, fresh.zones)
            started = time.perf_counter()
            rows = len(dirty) + len(cursors)
            self._writing = len(fresh)
            try:
                if rows:
                    # Built chunk by chunk while they are written: the loop keeps serving.
                    await self.store.flush(
                        lambda: flush_chunks(self.state, dirty, cursors=cursors))
                else:
                    await self.store.ping()
            except (StoreError, OSError) as exc:
                self.state.dirty.merge(dirty)
                self._failed(exc)
                self._report(started, rows, False)
                return False
            except Exception as exc:  # a bug, not the database: still keep and report it
                log.exception("flush failed unexpectedly")
                self.state.dirty.merge(dirty)
                self._failed(exc)
                self._report(started, rows, False)
                return False
            except BaseException:
                self.state.dirty.merge(dirty)
                raise
            finally:
                self._writing = 0
            now = self.clock()
            if self.failing_since_s is not None:
                log.warning("database reachable again after %.0f s; flushed %d rows",
                            now - self.failing_since_s, rows)
            self._unconfirmed = Dirty(tracks=fresh.tracks, days=fresh.days)
            self.written_cursors.update(cursors)
            self.last_success_s = now
            self.failing_since_s = None
            self.failures = 0
            self.flushes += 1
            self.state.forget_old(now)
            self._report(started, rows, True)
            return True

    @contextlib.asynccontextmanager
    async def paused(self) -> AsyncIterator[None]:
        """No flush runs, and none starts, until the block ends (waits for a running one).

        An erasure or a purge deletes stored rows and then memory inside it, so no flush
        can be half-way through writing those devices back (DESIGN 15).
        """
        async with self._lock:
            yield

    def forget_devices(self, macs: Collection[str]) -> None:
        """The next flush does not write these (erased or purged) devices once more."""
        last = self._unconfirmed
        last.tracks.difference_update(macs)
        last.days = {key for key in last.days if key[0] not in macs}

    def _changed_cursors(self) -> dict[str, int]:
        if self.cursors is None:
            return {}
        written = self.written_cursors
        return {feed: ms for feed, ms in self.cursors().items() if written.get(feed) != ms}

    def unflushed(self) -> Dirty:
        """Keys not known to be durable: the dirty ones, and those of the last flush
        (its commit was asynchronous); what a spill file must hold."""
        dirty, last = self.state.dirty, self._unconfirmed
        return Dirty(dirty.tracks | last.tracks, dirty.days | last.days, set(dirty.minutes),
                     set(dirty.zones))

    def _failed(self, exc: BaseException) -> None:
        self.failures += 1
        if self.failing_since_s is None:
            self.failing_since_s = self.clock()
            log.error("flush failed, keeping %d dirty keys in memory: %s",
                      len(self.state.dirty), exc)
        else:
            log.debug("flush failed again (%d): %s", self.failures, exc)

    def _report(self, started: float, rows: int, ok: bool) -> None:
        if self.on_flush is not None:
            self.on_flush(time.perf_counter() - started, rows, ok)

    def next_delay_s(self) -> float:
        """Interval when healthy; doubling back-off (capped) while failing."""
        if not self.failures:
            return self.interval_s
        return min(self.interval_s * 2 ** min(self.failures - 1, 8),
                   max(self.interval_s, MAX_BACKOFF_S))

    def health(self) -> tuple[bool, dict[str, Any]]:
        """(ok, details) for /healthz: not ok once the database is gone 3 intervals."""
        now = self.clock()
        down_s = 0.0 if self.failing_since_s is None else now - self.failing_since_s
        ok = down_s <= UNHEALTHY_AFTER_INTERVALS * self.interval_s
        age = None if self.last_success_s is None else round(now - self.last_success_s, 1)
        return ok, {
            "database": "up" if self.failing_since_s is None else "down",
            "last_flush_age_s": age,
            "backlog": self.backlog(),
        }

    def backlog(self) -> int:
        """Changed keys not yet known to be written, those of a running flush included.

        A key changed again while its flush runs is counted twice: an upper bound.
        """
        return len(self.state.dirty) + self._writing

    def start(self) -> None:
        """Run the periodic flush in the background."""
        self._task = asyncio.create_task(self._run(), name="tys-flush")

    def wake(self) -> None:
        """Flush now instead of at the end of the interval (tests, shutdown)."""
        self._wake.set()

    async def _run(self) -> None:
        while not self._stop.is_set():
            try:
                await asyncio.wait_for(self._wake.wait(), self.next_delay_s())
            except TimeoutError:
                pass
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                await self.flush_once()
            except Exception:  # a bug must not end the flushing for good
                log.exception("unexpected error in the flush")

    async def stop(self) -> None:
        """Let a running flush finish (never cancel it mid-transaction), then stop."""
        self._stop.set()
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
