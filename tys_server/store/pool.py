"""The pool plumbing under Store: connect, run a unit of work, retry, classify failures.

``Pool._run`` is the one place that talks to aiopg's connections: every operation of
``database.Store`` (a Pool) is a ``work(cursor)`` coroutine it runs, in a transaction
with statement_timeout or without one. A connection broken by a server restart is retried
once on a new one; a lost COMMIT of a transaction that is not idempotent is never run
again (``CommitUnknown``, for the caller to read back); any other failure is a
``StoreError`` with the database's first line, never a psycopg2 type.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Self, TypeVar

import aiopg
import psycopg2
import psycopg2.errors

log = logging.getLogger(__name__)

T = TypeVar("T")


class StoreError(Exception):
    """The database could not do what was asked (down, timed out, refused)."""


class CommitUnknown(StoreError):
    """The connection was lost at COMMIT: the transaction may or may not have committed."""


class Pool:
    """An aiopg pool with statement_timeout_s on every transaction."""

    def __init__(self, pool: aiopg.Pool, statement_timeout_s: float) -> None:
        self._pool = pool
        self._statement_timeout_ms = int(statement_timeout_s * 1000)

    @classmethod
    async def connect(cls, dsn: str, *, pool_size: int, connect_timeout_s: float,
                      statement_timeout_s: float) -> Self:
        """Open a pool; fails (StoreError) when the server does not answer."""
        timeout_s = statement_timeout_s + connect_timeout_s
        try:
            pool = await aiopg.create_pool(
                dsn, minsize=1, maxsize=pool_size, timeout=timeout_s,
                enable_json=False, enable_hstore=False, enable_uuid=False,
                connect_timeout=max(1, round(connect_timeout_s)))
        except (TimeoutError, psycopg2.Error, OSError) as exc:
            raise StoreError(f"cannot connect to PostgreSQL: {first_line(exc)}") from None
        return cls(pool, statement_timeout_s)

    async def close(self) -> None:
        """Close every pooled connection."""
        self._pool.close()
        await self._pool.wait_closed()

    # -- plumbing ---------------------------------------------------------------

    async def _run(self, work: Callable[[Any], Awaitable[T]], *, transaction: bool,
                   idempotent: bool = True) -> T:
        """Run work(cursor), retrying once on a connection broken by a server restart.

        A transaction that is not idempotent is never run again after its COMMIT was
        sent: a lost connection there raises CommitUnknown for the caller to read back.
        """
        for attempt in (1, 2):
            committing = False
            try:
                conn = await self._pool.acquire()
            except (TimeoutError, psycopg2.Error, OSError) as exc:
                raise StoreError(first_line(exc)) from None
            try:
                async with conn.cursor() as cur:
                    if not transaction:
                        return await work(cur)
                    await cur.execute("BEGIN")
                    try:
                        await cur.execute(
                            f"SET LOCAL statement_timeout = {self._statement_timeout_ms}")
                        result = await work(cur)
                        committing = True
                        await cur.execute("COMMIT")
                        return result
                    except BaseException as exc:
                        await _rollback_or_close(conn, cur, exc)
                        raise
            except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
                conn.close()
                if committing and not idempotent and not _is_timeout(exc):
                    raise CommitUnknown(first_line(exc)) from None
                if attempt == 2 or _is_timeout(exc):
                    raise StoreError(first_line(exc)) from None
                log.info("database connection lost, retrying on a new one")
            except psycopg2.IntegrityError:
                raise
            except psycopg2.Error as exc:
                raise StoreError(first_line(exc)) from None
            except TimeoutError:
                conn.close()
                if committing and not idempotent:
                    raise CommitUnknown("COMMIT timed out") from None
                raise StoreError("database operation timed out") from None
            except asyncio.CancelledError:
                conn.close()
                raise
            finally:
                await self._pool.release(conn)
        raise AssertionError("unreachable")

async def _rollback_or_close(conn: Any, cur: Any, exc: BaseException) -> None:
    if conn.closed:
        return
    if isinstance(exc, (asyncio.CancelledError, asyncio.TimeoutError, psycopg2.OperationalError)):
        conn.close()  # the connection's state is unknown: never reuse it
        return
    try:
        await cur.execute("ROLLBACK")
    except (TimeoutError, psycopg2.Error):
        conn.close()


def _is_timeout(exc: BaseException) -> bool:
    return isinstance(exc, psycopg2.errors.QueryCanceled)


def first_line(exc: BaseException) -> str:
    """The first line of exc's text (psycopg2 adds hints below it), else its type's name."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__

