"""Holding a flush half-way, and seeing who waits for it.

A flush writes the devices' rows (distance, distance_history) first and the per-minute
counts (count) last, in one transaction. With count locked by a connection of the test's
own (TableLock), a flush stops after writing the devices' rows and holds them,
uncommitted, until the test releases it: the moment an erasure or a purge could meet a
flush in the middle. WatchedGate is the real flusher's gate that also says when someone
asked for it, so a test knows the erasure waits for the flush before it touches the
database, without waiting on the clock.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Collection
from types import TracebackType

import psycopg2

from tys_server.store.flusher import Flusher

# How often, and how many times, pg_locks is asked whether someone waits for the lock.
POLL_S = 0.01
POLLS = 2000


class TableLock:
    """LOCK TABLE table IN EXCLUSIVE MODE from a connection of its own, until release()."""

    def __init__(self, dsn: str, table: str) -> None:
        self.dsn = dsn
        self.table = table
        self._conn: psycopg2.extensions.connection | None = None

    def __enter__(self) -> TableLock:
        self._conn = psycopg2.connect(self.dsn)
        with self._conn.cursor() as cur:
            # Reads go on (EXCLUSIVE lets ACCESS SHARE through); every write waits.
            cur.execute(f"LOCK TABLE {self.table} IN EXCLUSIVE MODE")  # a name of ours
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.release()

    def release(self) -> None:
        """End the lock's transaction: whoever waits goes on."""
        if self._conn is not None:
            self._conn.rollback()
            self._conn.close()
            self._conn = None

    def waiters(self) -> int:
        """Sessions waiting for a lock on the table now."""
        with psycopg2.connect(self.dsn) as conn, conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_locks "
                        "WHERE relation = %s::regclass AND NOT granted", (self.table,))
            (count,) = cur.fetchone()
        conn.close()
        return int(count)

    async def until_waited_for(self) -> None:
        """Return once another session waits for this lock (the flush reached it)."""
        for _ in range(POLLS):
            if self.waiters():
                return
            await asyncio.sleep(POLL_S)  # PostgreSQL has no event to await for this
        raise AssertionError(f"nobody came to wait for the lock on {self.table}")


class WatchedGate:
    """A flusher's paused() and forget_devices(), with an event set when paused() is asked."""

    def __init__(self, flusher: Flusher) -> None:
        self.flusher = flusher
        self.asked = asyncio.Event()

    @contextlib.asynccontextmanager
    async def paused(self) -> AsyncIterator[None]:
        """The flusher's, once `asked` is set."""
        self.asked.set()
        async with self.flusher.paused():
            yield

    def forget_devices(self, macs: Collection[str]) -> None:
        """The flusher's."""
        self.flusher.forget_devices(macs)
