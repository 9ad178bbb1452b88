"""Users and devices: the statements of the user transactions, and reading them back.

Each function runs inside a transaction that store.database.Store opens and commits.
The *_WRITTEN queries tell, on a new connection, whether a transaction whose COMMIT
answer was lost did commit (DESIGN section 13).

Names (DESIGN 15): an alias is unique case-insensitively (a unique index) and may not be
another user's username, nor may a new username be another user's alias. Those two are
checked here, in the transaction, under a lock on the name, so concurrent requests
cannot both pass: memory's check comes first, the database's is the one that holds.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from tys_server.core.users import NO_PROFILE, Profile, ProfileChanges

# Rows as add_user writes them: the user, and its device pointing at it.
USER_WRITTEN = ("SELECT 1 FROM devices JOIN users ON users.email = devices.owner "
                "WHERE devices.mac = %s AND users.email = %s AND users.nickname = %s")
DEVICE_WRITTEN = "SELECT 1 FROM devices WHERE mac = %s AND owner = %s"
USER_PRESENT = "SELECT 1 FROM users WHERE email = %s"

# The user registered under a username (any case) and the owner of a MAC, with every
# device of each and its profile: what memory must hold about one registration.
_USERS_OF = (
    "SELECT u.email, u.nickname, "
    "coalesce(array_agg(d.mac::text ORDER BY d.mac) FILTER (WHERE d.mac IS NOT NULL), '{}'), "
    "u.team, extract(epoch FROM u.team_since)::float8, u.alias, u.hidden, u.disqualified "
    "FROM users u LEFT JOIN devices d ON d.owner = u.email "
    "WHERE lower(u.nickname) = lower(%s) "
    "OR u.email = (SELECT owner FROM devices WHERE mac = %s) "
    "GROUP BY u.email ORDER BY u.email")
# Registrations and alias changes naming the same name (any case) take turns on this
# lock, so the check after it sees what the other one committed (READ COMMITTED takes a
# snapshot per statement). The first number keeps TYS's locks apart from anyone else's.
_LOCK_NAME = "SELECT pg_advisory_xact_lock(1515, hashtext(lower(%s)))"
# The fields a request gives (set_*), the others as they are; the profile in Profile's
# order. A team named again in another letter case is the same team: the user keeps its
# place in it (team_since), which decides whose spelling names the team.
_UPDATE_PROFILE = """
UPDATE users SET
    team_since = CASE WHEN NOT %(set_team)s THEN team_since
                      WHEN %(team)s::text IS NULL THEN NULL
                      WHEN lower(team) = lower(%(team)s::text) THEN team_since
                      ELSE to_timestamp(%(now_s)s) END,
    team = CASE WHEN %(set_team)s THEN %(team)s::text ELSE team END,
    alias = CASE WHEN %(set_alias)s THEN %(alias)s::text ELSE alias END,
    hidden = CASE WHEN %(set_hidden)s THEN %(hidden)s::boolean ELSE hidden END
WHERE email = %(email)s
RETURNING team, extract(epoch FROM team_since)::float8, alias, hidden, disqualified
"""
_SET_DISQUALIFIED = """
UPDATE users SET disqualified = %s WHERE email = %s
RETURNING team, extract(epoch FROM team_since)::float8, alias, hidden, disqualified
"""


class StoredUser(NamedTuple):
    """A user as the database holds it, with the MACs of its devices and its profile."""

    email: str
    username: str
    macs: tuple[str, ...]
    profile: Profile = NO_PROFILE


class NameTaken(Exception):
    """The name is another user's: an alias as a new username, a username or alias as an alias."""


async def lock_name(cur: Any, name: str) -> None:
    """Take turns with every transaction naming the same name (any case)."""
    await cur.execute(_LOCK_NAME, (name,))


async def insert_user(cur: Any, email: str, username: str, mac: str,
                      profile: Profile = NO_PROFILE) -> None:
    """A new user, its team if any, and its first device; NameTaken if an alias is that name."""
    await lock_name(cur, username)
    await cur.execute("SELECT 1 FROM users WHERE lower(alias) = lower(%s)", (username,))
    if await cur.fetchone() is not None:
        raise NameTaken(username)
    await cur.execute(
        "INSERT INTO users (email, nickname, admin, team, team_since) "
        "VALUES (%s, %s, false, %s, to_timestamp(%s))",
        (email, username, profile.team, profile.team_since_s))
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


async def update_profile(cur: Any, email: str, changes: ProfileChanges,
                         now_s: float) -> Profile | None:
    """Set the given profile fields; the profile as stored, None if the user is gone.

    Raises NameTaken when the alias is another user's username or alias.
    """
    # The row first, as delete_user does: a deletion waits for us or we find it gone.
    await cur.execute("SELECT 1 FROM users WHERE email = %s FOR UPDATE", (email,))
    if await cur.fetchone() is None:
        return None
    alias = changes.get("alias")
    if alias is not None:
        await lock_name(cur, alias)
        await cur.execute("SELECT 1 FROM users WHERE email <> %s AND "
                          "(lower(nickname) = lower(%s) OR lower(alias) = lower(%s))",
                          (email, alias, alias))
        if await cur.fetchone() is not None:
            raise NameTaken(alias)
    given = {f"set_{field}": field in changes for field in ("team", "alias", "hidden")}
    await cur.execute(_UPDATE_PROFILE, {"team": None, "alias": None, "hidden": None, **changes,
                                        **given, "email": email, "now_s": now_s})
    return Profile(*await cur.fetchone())


async def set_disqualified(cur: Any, email: str, disqualified: bool) -> Profile | None:
    """Disqualify or requalify a user; the profile as stored, None if the user is gone."""
    await cur.execute(_SET_DISQUALIFIED, (disqualified, email))
    row = await cur.fetchone()
    return None if row is None else Profile(*row)


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
    return [StoredUser(email, nickname, tuple(macs), Profile(*profile))
            for email, nickname, macs, *profile in await cur.fetchall()]
