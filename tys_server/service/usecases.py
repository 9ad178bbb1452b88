"""The Service: the API's use cases over memory, the database and the look-ups.

Register (``registration``), delete (or erase), profile, disqualify, dashboards,
boards, exports, purge, ip → username.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from tys_server.config import Settings
from tys_server.core.addresses import is_private, read_address
from tys_server.core.leaderboard import Boards
from tys_server.core.ranking import Ranking
from tys_server.core.state import State, User
from tys_server.core.users import Profile, ProfileChanges
from tys_server.lookup.cmx_api import NotOnWifi
from tys_server.service.errors import (
    AliasTaken,
    DeviceNotRegistered,
    NoDevices,
    StorageFailed,
    UserNotFound,
)
from tys_server.service.export import Table, board_table
from tys_server.service.ports import FlushGate, MacLookup, SeenDevices, UserStore
from tys_server.service.privacy import NoFlusher, Privacy
from tys_server.service.registration import Registrar, Registration
from tys_server.service.replies import Replies
from tys_server.store.database import AliasConflict, StoreError

log = logging.getLogger(__name__)


class Service:
    """The API's use cases over memory, the database and CMX."""

    def __init__(self, settings: Settings, state: State, store: UserStore, cmx: MacLookup,
                 clock: Callable[[], float] = time.time, *,
                 observed: SeenDevices | None = None,
                 on_lookup: Callable[[str], None] | None = None,
                 flush: FlushGate | None = None) -> None:
        self.settings = settings
        self.state = state
        self.store = store
        self.cmx = cmx
        self.clock = clock
        self.observed = observed  # IPs the feeds saw: asked before any CMX host
        self._on_lookup = on_lookup  # the outcome of a look-up no CMX host was asked for
        excluded = settings.leaderboard.exclude_email_domains
        self._excluded = tuple("@" + d.lower().lstrip("@") for d in excluded)
        self.boards = Boards(state, self.is_ranked, settings.leaderboard.refresh_interval_s)
        self.replies = Replies(state, self.boards, settings.tracking.step_length_ft,
                               self.is_ranked, clock)
        # Erasure and retention take turns with the flush (flush: the Flusher).
        self.privacy = Privacy(state, store, flush if flush is not None else NoFlusher(), clock)
        self.registrar = Registrar(settings, state, store, self._lookup, clock)

    # -- helpers --------------------------------------------------------------------

    def is_ranked(self, user: User) -> bool:
        """Hidden and disqualified users and staff (excluded e-mail domains) stay off boards."""
        if user.hidden or user.disqualified:
            return False
        return not user.email.lower().endswith(self._excluded) if self._excluded else True

    def ranking(self) -> Ranking:
        """Overall ranking, at most refresh_interval_s behind the latest distance."""
        return self.boards.overall().ranking

    def day_ranking(self, ordinal: int) -> Ranking:
        """One day's ranking, kept like the overall one."""
        return self.boards.day(ordinal).ranking

    async def _lookup(self, ip: str) -> str:
        """The device (MAC as stored) at ip: a feed's fresh sighting, else the CMX hosts.

        A sighting answers without any network call. With no CMX host configured (a Spaces-
        or Meraki-only site) and no sighting, the IP is not on the Wi-Fi: NotOnWifi (404),
        not LocationUnavailable (503), since no host was asked and none failed.
        Raises NotOnWifi or LocationUnavailable.
        """
        address = read_address(ip)
        if self.observed is not None and address is not None and is_private(address):
            mac = self.observed.device_at(str(address), self.clock())
            if mac is not None:
                self._looked_up("observed")
                return mac
        if not self.settings.cmx.hosts:
            self._looked_up("not_private" if address is None or not is_private(address)
                            else "not_found")
            raise NotOnWifi()
        return await self.cmx.lookup_mac(ip)

    def _looked_up(self, outcome: str) -> None:
        if self._on_lookup is not None:
            self._on_lookup(outcome)

    # -- use cases ------------------------------------------------------------------

    async def register(self, username: str, ip: str, add_device: bool = False,
                       team: str | None = None) -> Registration:
        """The device at ip becomes the user's: a new user, or (add_device) one more device.

        A new user joins `team` (an existing user keeps theirs: /live/profile changes it).
        Raises NotOnWifi, LocationUnavailable, DeviceOwned, UsernameTaken, LimitReached
        or StorageFailed.
        """
        return await self.registrar.register(username, ip, add_device, team)

    async def delete(self, username: str, erase: bool = False) -> User:
        """Forget a user and its devices; the user forgotten. The distance stays with the
        MACs (DESIGN 7), unless erase: then their distance, history and track go too.

        Raises UserNotFound or StorageFailed.
        """
        user = self.state.user(username)
        if user is None:
            raise UserNotFound()
        if erase:
            await self.privacy.erase(user)
        else:
            try:
                await self.store.delete_user(user.email)
            except StoreError as exc:
                log.warning("user not deleted: %s", exc)
                raise StorageFailed() from exc
            self.state.remove_user(user, self.clock())
            log.info("user deleted (%d users)", len(self.state.users))
        self.replies.forget(user)
        return user

    async def purge_unregistered(self, older_than_days: int) -> int:
        """Purge devices nobody owns, inactive for older_than_days; how many were purged.

        Raises StorageFailed.
        """
        return await self.privacy.purge(older_than_days)

    def export(self, by: str, ordinal: int | None = None) -> Table:
        """The whole board by user (with e-mails and teams) or by team, overall or a day."""
        return board_table(self.boards, by, ordinal, self.settings.tracking.step_length_ft)

    def dashboard(self, username: str, days: int) -> bytes:
        """Per-device totals and the last `days` days, as username_data's encoded reply.

        Raises UserNotFound or NoDevices.
        """
        user = self.state.user(username)
        if user is None:
            raise UserNotFound()
        if not user.macs:
            raise NoDevices()
        return self.replies.dashboard(user, days)

    def leaderboard(self, count: int, ordinal: int | None = None, by: str = "user",
                    rank: str = "total") -> bytes:
        """The top `count` users, teams ("team") or companies ("domain"), as the encoded
        reply: overall, or of the day `ordinal`; teams and companies by total or average."""
        return self.replies.leaderboard(count, ordinal, by, rank)

    async def profile(self, username: str, changes: ProfileChanges) -> User:
        """Set the given team, alias and hidden flag; the user with its profile.

        Raises UserNotFound, AliasTaken or StorageFailed; nothing changes on a refusal.
        """
        user = self.state.user(username)
        if user is None:
            raise UserNotFound()
        alias = changes.get("alias")
        if alias is not None and self.state.name_owner(alias) not in (None, user):
            raise AliasTaken()
        try:
            stored = await self.store.update_profile(user.email, changes, self.clock())
        except AliasConflict:
            raise AliasTaken() from None  # memory had not seen it yet: the database had
        except StoreError as exc:
            log.warning("profile not stored: %s", exc)
            raise StorageFailed() from exc
        return self._apply(user, stored)

    async def set_disqualified(self, username: str, disqualified: bool) -> User:
        """Take a user off every board and out of the totals, or put them back; the user.

        Their data stays. Raises UserNotFound or StorageFailed.
        """
        user = self.state.user(username)
        if user is None:
            raise UserNotFound()
        try:
            stored = await self.store.set_disqualified(user.email, disqualified)
        except StoreError as exc:
            log.warning("disqualification not stored: %s", exc)
            raise StorageFailed() from exc
        user = self._apply(user, stored)
        log.info("user %s", "disqualified" if disqualified else "requalified")
        return user

    def _apply(self, user: User, stored: Profile | None) -> User:
        """Memory takes the profile the database stored; UserNotFound if the user went."""
        if stored is None or not self.state.is_registered(user):
            raise UserNotFound()  # deleted meanwhile
        self.state.set_profile(user, stored)
        return user

    async def registration_history(self, days: int,
                                   timeout_s: float) -> list[tuple[float, float]] | None:
        """(epoch s, registered users) per hour of the last days; None when unreadable."""
        try:
            since_s = self.clock() - days * 86400.0  # the page's "now", not the database's
            rows = await asyncio.wait_for(self.store.registration_history(since_s), timeout_s)
        except (StoreError, TimeoutError) as exc:
            log.debug("no registration history: %s", exc)
            return None
        return [(at, float(users)) for at, users in rows]

    async def ip_username(self, ip: str) -> str:
        """The username that registered the device at ip.

        Raises NotOnWifi, LocationUnavailable or DeviceNotRegistered.
        """
        owner = self.state.owner(await self._lookup(ip))
        if owner is None:
            raise DeviceNotRegistered()
        return owner.username

