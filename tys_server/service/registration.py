"""Registration: the device at a caller's IP becomes a user's, in memory and the database.

Memory answers first (the device is the user's already, or taken, or the name is); only
a registration memory lets through is written. When the database refuses what memory
allowed, it holds rows memory lacks (a request beside this one, or a COMMIT whose answer
was lost): they are read back and learnt, and the request is answered from them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import NamedTuple

from tys_server.config import Settings
from tys_server.core.state import State
from tys_server.core.users import Profile, name_key
from tys_server.service.errors import (
    DeviceOwned,
    LimitReached,
    StorageFailed,
    UsernameTaken,
)
from tys_server.service.ports import UserStore
from tys_server.store.database import (
    DeviceConflict,
    DeviceLimit,
    StoreError,
    UsernameConflict,
)
from tys_server.store.users import StoredUser

log = logging.getLogger(__name__)


class Registration(NamedTuple):
    """A user's device after register(); added is False when it was theirs already."""

    added: bool
    username: str
    email: str
    ip: str
    mac: str


class Registrar:
    """register() of the Service: memory's answer, the write, and the read-back."""

    def __init__(self, settings: Settings, state: State, store: UserStore,
                 lookup: Callable[[str], Awaitable[str]],
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.state = state
        self.store = store
        self._lookup = lookup  # ip → the device (MAC as stored): the Service's look-up
        self.clock = clock

    def email_for(self, username: str) -> str:
        """username@email_domain, unless the username is an address itself."""
        if "@" in username:
            return username
        return f"{username}@{self.settings.registration.email_domain}"

    async def register(self, username: str, ip: str, add_device: bool = False,
                       team: str | None = None) -> Registration:
        """Service.register, which says what it does and raises."""
        mac = await self._lookup(ip)
        known = self._registered(username, ip, mac, add_device)
        if known is not None:
            return known
        user = self.state.user(username)
        email = self.email_for(username) if user is None else user.email
        username = username if user is None else user.username
        profile = Profile(team, self.clock() if team is not None else None)
        try:
            if user is None:
                await _stored(self.store.add_user(email, username, mac, profile))
            else:
                await _stored(self.store.add_device(
                    email, mac, self.settings.registration.max_devices_per_user))
        except (DeviceOwned, UsernameTaken, LimitReached):
            # Memory let it through, the database refused: it holds rows memory lacks (a
            # request beside this one, or a COMMIT whose answer was lost). Learn them.
            await self._recall(username, mac)
            known = self._registered(username, ip, mac, add_device)
            if known is not None:
                return known
            raise
        self._remember(StoredUser(email, username, (mac,), profile))
        log.info("registered (%d users, %d devices)", len(self.state.users),
                 self.state.device_count())
        return Registration(True, username, email, ip, mac)

    def _registered(self, username: str, ip: str, mac: str,
                    add_device: bool) -> Registration | None:
        """Memory's answer: the device is the user's already, a refusal, or None (write it)."""
        user = self.state.user(username)
        owner = self.state.owner(mac)
        if owner is not None:
            if owner is user:
                return Registration(False, owner.username, owner.email, ip, mac)
            raise DeviceOwned()
        if user is not None:
            if not add_device:
                raise UsernameTaken()
            if len(user.macs) >= self.settings.registration.max_devices_per_user:
                raise LimitReached()
        elif self._alias_of_another(username):
            raise UsernameTaken()
        return None

    def _alias_of_another(self, username: str) -> bool:
        """True when username is (casefolded) another user's alias."""
        holder = self.state.name_owner(username)
        return holder is not None and holder.alias is not None \
            and name_key(holder.alias) == name_key(username)

    async def _recall(self, username: str, mac: str) -> None:
        """Memory learns what the database holds for this username and this device."""
        try:
            for stored in await self.store.registrations(username, mac):
                self._remember(stored)
        except StoreError as exc:
            log.warning("registrations not read back: %s", exc)

    def _remember(self, stored: StoredUser) -> None:
        """Memory holds a user and devices the database holds; each once, whoever came first."""
        user = self.state.user(stored.username)
        for mac in stored.macs:
            if self.state.owner(mac) is not None:
                continue
            if user is None:
                user = self.state.add_user(stored.email, stored.username, mac, self.clock())
                self.state.set_profile(user, stored.profile)
            elif user.email == stored.email:
                self.state.add_device(user, mac, self.clock())


async def _stored(write: Awaitable[None]) -> None:
    """Await a registration's database write, its conflicts read as the domain's."""
    try:
        await write
    except DeviceConflict:
        raise DeviceOwned() from None
    except UsernameConflict:
        raise UsernameTaken() from None
    except DeviceLimit:
        raise LimitReached() from None
    except StoreError as exc:
        log.warning("registration not stored: %s", exc)
        raise StorageFailed() from exc
