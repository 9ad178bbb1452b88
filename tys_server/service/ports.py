"""What the service needs of its neighbours, as protocols.

The CMX look-up, the feeds' sightings, the store, and the flusher's lock.
"""

from __future__ import annotations

from collections.abc import Collection
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from tys_server.core.users import NO_PROFILE, Profile, ProfileChanges
from tys_server.store.users import StoredUser


class MacLookup(Protocol):
    """What the service needs of the CMX client."""

    async def lookup_mac(self, ip: str) -> str:
        """The MAC as stored for this IP; raises NotOnWifi or LocationUnavailable."""
        ...


class SeenDevices(Protocol):
    """What the service needs of the IPs the feeds saw (lookup.observed.ObservedIps)."""

    def device_at(self, ip: str, now_s: float) -> str | None:
        """The device seen at ip (canonical text) recently enough, or None."""
        ...


class UserStore(Protocol):
    """What the service needs of the database."""

    async def add_user(self, email: str, username: str, mac: str,
                       profile: Profile = NO_PROFILE) -> None: ...

    async def add_device(self, email: str, mac: str, max_devices: int) -> None: ...

    async def delete_user(self, email: str) -> bool: ...

    async def registrations(self, username: str, mac: str) -> list[StoredUser]: ...

    async def registration_history(self, since_s: float) -> list[tuple[float, int]]: ...

    async def update_profile(self, email: str, changes: ProfileChanges,
                             now_s: float) -> Profile | None: ...

    async def set_disqualified(self, email: str, disqualified: bool) -> Profile | None: ...

    async def erase_user(self, email: str, macs: Collection[str]) -> list[str]: ...

    async def purge_devices(self, macs: Collection[str]) -> list[str]: ...


class FlushGate(Protocol):
    """What erasure and retention need of the flusher (store.flusher.Flusher)."""

    def paused(self) -> AbstractAsyncContextManager[None]:
        """No flush runs, and none starts, while this is held."""
        ...

    def forget_devices(self, macs: Collection[str]) -> None:
        """The next flush does not write these devices once more."""
        ...
