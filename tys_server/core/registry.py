"""Who is registered, in memory: users by username, by name or alias, and by device. Pure.

The database holds the truth; these methods record what it has accepted (a registration,
a device, a deletion, a profile) and answer the service's questions without a query.
Every change bumps the user's ``revision`` and marks the user changed, so the boards and
cached dashboards follow; a change of the registered counts marks the minute dirty.
"""

from __future__ import annotations

from tys_server.core.dirty import Dirty
from tys_server.core.units import MINUTE_S
from tys_server.core.users import Profile, User, name_key, user_key


class Registry:
    """State's users (a mixin: State holds these attributes)."""

    users: dict[str, User]  # user_key(username) → user
    names: dict[str, User]  # name_key(username or alias) → user
    owners: dict[str, User]  # stored MAC → owner
    registered: dict[int, tuple[int, int]]  # minute → (users, devices)
    changed_users: set[User]
    dirty: Dirty

    def user(self, username: str) -> User | None:
        """The user registered under that name (any case), or None."""
        return self.users.get(user_key(username))

    def owner(self, mac: str) -> User | None:
        """Who registered that (stored) MAC, or None."""
        return self.owners.get(mac)

    def add_user(self, email: str, username: str, mac: str, now_s: float) -> User:
        """Record a registration that the database has accepted."""
        user = User(email, username, [mac])
        self.users[user_key(username)] = user
        self.owners[mac] = user
        self.index_names(user)
        self._registrations_changed(now_s, user)
        return user

    def add_device(self, user: User, mac: str, now_s: float) -> None:
        """Record one more device of a user (already in the database)."""
        user.macs.append(mac)
        self.owners[mac] = user
        self._registrations_changed(now_s, user)

    def remove_user(self, user: User, now_s: float) -> None:
        """Forget a deleted user; distance stays with the MACs."""
        self.users.pop(user_key(user.username), None)
        for mac in user.macs:
            self.owners.pop(mac, None)
        for name in (user.username, user.alias):
            if name is not None and self.names.get(name_key(name)) is user:
                del self.names[name_key(name)]
        self._registrations_changed(now_s, user)

    def name_owner(self, name: str) -> User | None:
        """The user whose username or alias is name (casefolded), or None."""
        return self.names.get(name_key(name))

    def index_names(self, user: User) -> None:
        """Make the user's username and alias known to name_owner (first holder kept)."""
        self.names.setdefault(name_key(user.username), user)
        if user.alias is not None:
            self.names.setdefault(name_key(user.alias), user)

    def set_profile(self, user: User, profile: Profile) -> None:
        """Hold a profile the database has stored; boards and dashboards follow."""
        if user.profile == profile:
            return
        old = user.alias
        if old is not None and name_key(old) != name_key(user.username) \
                and self.names.get(name_key(old)) is user:
            del self.names[name_key(old)]
        user.take(profile)
        self.index_names(user)
        user.revision += 1
        self.changed_users.add(user)

    def device_count(self) -> int:
        """Registered devices."""
        return len(self.owners)

    def _registrations_changed(self, now_s: float, user: User) -> None:
        minute = int(now_s) // MINUTE_S * MINUTE_S
        self.registered[minute] = (len(self.users), len(self.owners))
        self.dirty.minutes.add(minute)
        user.revision += 1
        self.changed_users.add(user)

    def is_registered(self, user: User) -> bool:
        """True while user is the one registered under its username."""
        return self.users.get(user_key(user.username)) is user

    def take_changed_users(self) -> set[User]:
        """Users changed since the last call (the leaderboards' change feed)."""
        changed, self.changed_users = self.changed_users, set()
        return changed
