"""Users and devices: the statements of the registration transactions, and reading them back.

Each function runs inside a transaction that store.database.Store opens and commits.
The *_WRITTEN queries tell, on a new connection, whether a transaction whose COMMIT
answer was lost did commit (DESIGN section 13).
"""

from __future__ import annotations

from typing import Any, NamedTuple

# Rows as add_user writes them: the user, and its device pointing at it.
USER_WRITTEN = ("SELECT 1 FROM devices JOIN users ON users.email = devices.owner "
                "WHERE devices.mac = %s AND users.email = %s AND users.nickname = %s")
DEVICE_WRITTEN = "SELECT 1 FROM devices WHERE mac = %s AND owner = %s"
USER_PRESENT = "SELECT 1 FROM users WHERE email = %s"

# The user registered under a username (any case) and the owner of a MAC, with every
# device of each: what memory must hold about one registration.
_USERS_OF = (
    "SELECT u.email, u.nickname, "
    "coalesce(array_agg(d.mac::text ORDER BY d.mac) FILTER (WHERE d.mac IS NOT NULL), '{}') "
    "FROM users u LEFT JOIN devices d ON d.owner = u.email "
    "WHERE lower(u.nickname) = lower(%s) "
    "OR u.email = (SELECT owner FROM devices WHERE mac = %s) "
    "GROUP BY u.email, u.nickname ORDER BY u.email")


class StoredUser(NamedTuple):
    """A user as the database holds it, with the MACs of its devices."""

    email: str
    username: str
    macs: tuple[str, ...]


async def insert_user(cur: Any, email: str, username: str, mac: str) -> None:
    """A new user and its first device."""
    await cur.execute("INSERT INTO users (email, nickname, admin) VALUES (%s, %s, false)",
                      (email, username))
    await cur.execute("INSERT INTO devices (mac, owner) VALUES (%s, %s)", (mac, email))


async def insert_device(cur: Any, email: str, mac: str) -> int | None:
    """One more device of a user: the user's device count with it, None if the user is gone.

    The user's row stays locked to the end of the transaction, so concurrent inserts for
    one user are counted one after the other: the caller refuses (rolls back) a count
    over the limit and the limit holds in the database, not only in memory.
    """
    await cur.execute("SELECT 1 FROM users WHERE email = %s FOR UPDATE", (email,))
    if await cur.fetchone() is None:
        return None
    await cur.execute("INSERT INTO devices (mac, owner) VALUES (%s, %s)", (mac, email))
    # A statement after the lock: its snapshot holds the devices that a transaction which
    # had the lock before us committed (READ COMMITTED takes one per statement).
    await cur.execute("SELECT count(*) FROM devices WHERE owner = %s", (email,))
    (count,) = await cur.fetchone()
    return int(count)


async def delete_user(cur: Any, email: str) -> bool:
    """A user and its devices (never its distance); False if it was not there."""
    # Locked first: an add_device waiting on the row then finds the user gone, instead of
    # inserting a device that would make the user's DELETE violate the foreign key.
    await cur.execute("SELECT 1 FROM users WHERE email = %s FOR UPDATE", (email,))
    await cur.execute("DELETE FROM devices WHERE owner = %s", (email,))
    await cur.execute("DELETE FROM users WHERE email = %s", (email,))
    return bool(cur.rowcount)


async def users_of(cur: Any, username: str, mac: str) -> list[StoredUser]:
    """The user named username (any case) and the owner of mac, as stored."""
    await cur.execute(_USERS_OF, (username, mac))
    return [StoredUser(email, nickname, tuple(macs))
            for email, nickname, macs in await cur.fetchall()]
