"""Erasure and retention: the statements that delete a person's or an old device's data.

Each function runs inside one transaction that store.database.Store opens and commits.
Both are safe to run again after a lost connection: they delete by MAC, and a second
run finds nothing more to delete. The caller holds the flusher off meanwhile
(Flusher.paused), so no flush can write the deleted rows back (DESIGN 15).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from tys_server.store import users

_OWNED_BY = "SELECT mac::text FROM devices WHERE owner = %s"
_DELETE_TRACKS = "DELETE FROM distance WHERE mac = ANY(%s::macaddr[])"
_DELETE_DAYS = "DELETE FROM distance_history WHERE mac = ANY(%s::macaddr[])"
# Candidates a registration claimed since they were picked keep their data.
_OWNED_AMONG = "SELECT mac::text FROM devices WHERE mac = ANY(%s::macaddr[])"


async def erase_user(cur: Any, email: str, macs: Collection[str]) -> list[str]:
    """Delete a user, its devices and their distance, history and track; the MACs erased.

    macs are the devices memory knows of; the database's own list of the user's devices
    is added, so a device only one side knew of is erased too.
    """
    # Locked first, as delete_user does: an add_device waiting on the row finds it gone.
    await cur.execute("SELECT 1 FROM users WHERE email = %s FOR UPDATE", (email,))
    await cur.execute(_OWNED_BY, (email,))
    erased = sorted({*macs, *(mac for (mac,) in await cur.fetchall())})
    await users.delete_user(cur, email)
    await _delete_distance(cur, erased)
    return erased


async def purge_devices(cur: Any, macs: Collection[str]) -> list[str]:
    """Delete the distance, history and track of these unregistered devices; the MACs purged.

    A candidate that has an owner by now (registered since it was picked) is kept.
    """
    candidates = sorted(macs)
    await cur.execute(_OWNED_AMONG, (candidates,))
    owned = {mac for (mac,) in await cur.fetchall()}
    purged = [mac for mac in candidates if mac not in owned]
    await _delete_distance(cur, purged)
    return purged


async def _delete_distance(cur: Any, macs: list[str]) -> None:
    if macs:
        await cur.execute(_DELETE_TRACKS, (macs,))
        await cur.execute(_DELETE_DAYS, (macs,))
