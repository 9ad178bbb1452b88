"""The Store: every database operation TYS makes, each one unit of work on the pool.

Schema, ping, the start-up load (``load``), the flush (``flush_sql``), user and device
transactions (``users``), erasure and purge (``privacy``), reports. How a unit of work
runs, is retried and fails is ``pool``'s; the conflicts a user transaction can meet are
this module's ``StoreError`` subclasses.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.resources
import logging
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from typing import Any

import psycopg2
import psycopg2.errors

from tys_server.core.snapshot import Loaded
from tys_server.core.state import State
from tys_server.core.users import NO_PROFILE, Profile, ProfileChanges
from tys_server.store import privacy, users
from tys_server.store.flush_sql import FlushChunk, statements
from tys_server.store.load import read_into
from tys_server.store.pool import CommitUnknown, Pool, StoreError, first_line
from tys_server.store.users import StoredUser

__all__ = ["AliasConflict", "CommitUnknown", "DeviceConflict", "DeviceLimit", "Store",
           "StoreError", "UsernameConflict", "sql_text"]

log = logging.getLogger(__name__)


def sql_text(name: str) -> str:
    """One of the SQL files shipped with the package (schema, logged, unlogged)."""
    return (importlib.resources.files("tys_server.store") / "sql" / name).read_text("utf-8")


class UsernameConflict(StoreError):
    """A user with that username or e-mail already exists."""


class DeviceConflict(StoreError):
    """That MAC is already registered."""


class AliasConflict(StoreError):
    """That alias is another user's username or alias."""


class DeviceLimit(StoreError):
    """The user already owns the most devices it may."""


# count.time is UTC; the start is the server's clock's (the service's), not PostgreSQL's.
_REGISTRATION_HISTORY = (
    "SELECT extract(epoch FROM max(time))::float8, max(user_count) FROM count "
    "WHERE time >= to_timestamp(%s) AT TIME ZONE 'UTC' "
    "GROUP BY date_trunc('hour', time) ORDER BY 1")


class Store(Pool):
    """The service's only door to PostgreSQL."""

    # -- schema -----------------------------------------------------------------

    async def apply_schema(self, *, unlogged: bool) -> None:
        """Create missing tables and set their persistence (idempotent)."""
        schema = sql_text("schema.sql")
        persistence = sql_text("unlogged.sql" if unlogged else "logged.sql")

        async def work(cur: Any) -> None:
            await cur.execute(schema)
            await cur.execute(persistence)

        await self._run(work, transaction=True)

    async def ping(self) -> None:
        """One round trip; raises StoreError when the database does not answer."""

        async def work(cur: Any) -> None:
            await cur.execute("SELECT 1")

        await self._run(work, transaction=False)

    # -- start-up load ----------------------------------------------------------

    async def load(self, state: State, *, recent_since_s: float) -> Loaded:
        """Seed state from the database in one snapshot (store/load.py); what was read."""
        return await self._run(functools.partial(read_into, state=state,
                                                 recent_since_s=recent_since_s),
                               transaction=True)

    # -- flush ------------------------------------------------------------------

    async def flush(self, chunks: Callable[[], Iterable[FlushChunk]]) -> int:
        """Write one flush in one transaction; returns the rows written.

        chunks() yields the flush piece by piece: each chunk is built only when the
        previous one has been sent, so a flush of 100,000 devices never holds the loop
        for more than a chunk. It is called again if the transaction is retried.
        """

        async def work(cur: Any) -> int:
            # A PostgreSQL crash may lose the last moment of commits; the next
            # flush rewrites them (DESIGN section 8).
            await cur.execute("SET LOCAL synchronous_commit = off")
            written = 0
            # One statement in flight while the next one is built: PostgreSQL and
            # Python work on their own cores instead of taking turns.
            in_flight: asyncio.Future[None] | None = None
            try:
                for sql, args, rows in statements(chunks()):
                    if in_flight is not None:
                        await in_flight
                    in_flight = asyncio.ensure_future(cur.execute(sql, args))
                    await asyncio.sleep(0)  # let it send the statement before building on
                    written += rows
                if in_flight is not None:
                    await in_flight
            finally:
                if in_flight is not None and not in_flight.done():
                    # Never leave a statement running behind our back (the rollback
                    # would meet a busy connection): wait for it, whatever it says.
                    await asyncio.wait([in_flight])
            return written

        return await self._run(work, transaction=True)

    # -- users and devices --------------------------------------------------------

    async def add_user(self, email: str, username: str, mac: str,
                       profile: Profile = NO_PROFILE) -> None:
        """Insert a user (with its team, if any) and its first device in one transaction."""
        await self._write_user(functools.partial(users.insert_user, email=email,
                                                 username=username, mac=mac, profile=profile),
                               users.USER_WRITTEN, (mac, email, username))

    async def update_profile(self, email: str, changes: ProfileChanges,
                             now_s: float) -> Profile | None:
        """Set the given profile fields; the stored profile, None if the user is gone.

        Raises AliasConflict when the alias is another user's username or alias.
        """
        # Absolute values: a transaction run again after a lost COMMIT writes the same.
        return await self._write_profile(functools.partial(
            users.update_profile, email=email, changes=changes, now_s=now_s))

    async def set_disqualified(self, email: str, disqualified: bool) -> Profile | None:
        """Disqualify or requalify a user; the stored profile, None if the user is gone."""
        return await self._write_profile(functools.partial(
            users.set_disqualified, email=email, disqualified=disqualified))

    async def _write_profile(self, work: Callable[[Any], Awaitable[Profile | None]]
                             ) -> Profile | None:
        try:
            return await self._run(work, transaction=True)
        except (users.NameTaken, psycopg2.errors.UniqueViolation) as exc:
            raise AliasConflict(type(exc).__name__) from None  # the only unique it can hit
        except psycopg2.Error as exc:
            raise StoreError(first_line(exc)) from None

    async def add_device(self, email: str, mac: str, max_devices: int) -> None:
        """Attach one more device to a user; DeviceLimit past max_devices."""

        async def work(cur: Any) -> None:
            count = await users.insert_device(cur, email, mac)
            if count is None:
                raise StoreError("the user was deleted meanwhile")
            if count > max_devices:
                raise DeviceLimit(f"{count - 1} devices")

        await self._write_user(work, users.DEVICE_WRITTEN, (mac, email))

    async def delete_user(self, email: str) -> bool:
        """Delete a user and its devices (never its distance); False if not there."""
        return await self._write_user(functools.partial(users.delete_user, email=email),
                                      users.USER_PRESENT, (email,), present=False)

    async def erase_user(self, email: str, macs: Collection[str]) -> list[str]:
        """Delete a user, its devices and their distance rows in one transaction; the
        MACs erased (store/privacy.py). Hold the flusher off around it."""
        return await self._run(functools.partial(privacy.erase_user, email=email, macs=macs),
                               transaction=True)

    async def purge_devices(self, macs: Collection[str]) -> list[str]:
        """Delete the distance rows of unregistered devices in one transaction; the MACs
        purged (those still without an owner). Hold the flusher off around it."""
        return await self._run(functools.partial(privacy.purge_devices, macs=macs),
                               transaction=True)

    async def registrations(self, username: str, mac: str) -> list[StoredUser]:
        """The user of that username (any case) and the owner of that MAC, as stored."""
        return await self._run(functools.partial(users.users_of, username=username, mac=mac),
                               transaction=True)

    async def _write_user(self, work: Callable[[Any], Awaitable[Any]], written: str,
                          args: Sequence[Any], *, present: bool = True) -> bool:
        """Run a user transaction; False when work says nothing changed.

        A lost COMMIT answer is not retried blindly (the retry would meet our own rows
        as a conflict): a new connection reads whether the rows are as written, i.e.
        whether `written` finds a row (present) or none. Not written: once more.
        """
        for _ in (1, 2):
            try:
                return await self._run(work, transaction=True, idempotent=False) is not False
            except psycopg2.errors.UniqueViolation as exc:
                constraint = exc.diag.constraint_name or ""
                if constraint.startswith("devices"):
                    raise DeviceConflict(constraint) from None
                raise UsernameConflict(constraint) from None
            except users.NameTaken:
                raise UsernameConflict("another user's alias") from None
            except psycopg2.Error as exc:
                raise StoreError(first_line(exc)) from None
            except CommitUnknown as exc:
                log.warning("connection lost at COMMIT (%s): reading back", exc)
                if bool(await self.fetch(written, args)) == present:
                    return True
        raise StoreError("connection lost at COMMIT twice")

    # -- reports ----------------------------------------------------------------

    async def registration_history(self, since_s: float) -> list[tuple[float, int]]:
        """Registered users at the last counted minute of each hour since since_s."""
        rows = await self.fetch(_REGISTRATION_HISTORY, (since_s,))
        return [(float(at), int(users or 0)) for at, users in rows]

    async def fetch(self, query: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Read-only query for reports and the status page."""

        async def work(cur: Any) -> list[tuple[Any, ...]]:
            await cur.execute(query, args)
            return list(await cur.fetchall())

        # In a transaction so that statement_timeout applies to reports too.
        return await self._run(work, transaction=True)
