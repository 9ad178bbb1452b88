"""Use cases of the front-end API: register, delete, dashboard, leaderboard, ip→username.

The service speaks the domain: typed arguments in, results out, and refusals as the
exceptions below (no status code, no reply text). ``web/`` reads requests into those
arguments and maps each exception to its HTTP status and text, endpoint by endpoint.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple, Protocol

import orjson

from tys_server.config import Settings
from tys_server.core.addresses import is_private, read_address
from tys_server.core.leaderboard import Board, Boards
from tys_server.core.ranking import Ranking
from tys_server.core.state import State, User
from tys_server.core.units import km, miles, steps

# The look-up's refusals pass through register() and ip_username() as they are.
from tys_server.lookup.cmx_api import LocationUnavailable as LocationUnavailable
from tys_server.lookup.cmx_api import NotOnWifi as NotOnWifi
from tys_server.store.database import DeviceConflict, DeviceLimit, StoreError, UsernameConflict
from tys_server.store.users import StoredUser

log = logging.getLogger(__name__)

# Dashboards kept for users read again (about 2 KB each for 5 days): bounded, and
# forgotten all at once when full, which costs one recomputation per user.
DASHBOARD_CACHE_USERS = 4096
DATE_FORMAT = "%m/%d/%Y"  # dates in replies, and the leaderboard's `date`


class ServiceError(Exception):
    """A use case refused: an expected outcome for the caller to answer, not a fault."""


class UsernameTaken(ServiceError):
    """Another user already has this username (usernames are unique case-insensitively)."""


class DeviceOwned(ServiceError):
    """The device at this IP is registered to another user."""


class LimitReached(ServiceError):
    """The user already owns registration.max_devices_per_user devices."""


class UserNotFound(ServiceError):
    """No user has this username."""


class NoDevices(ServiceError):
    """The user owns no device (seen in legacy data): there is nothing to show."""


class DeviceNotRegistered(ServiceError):
    """The device at this IP belongs to nobody."""


class StorageFailed(ServiceError):
    """The database did not take the change; memory is left as it was."""


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

    async def add_user(self, email: str, username: str, mac: str) -> None: ...

    async def add_device(self, email: str, mac: str, max_devices: int) -> None: ...

    async def delete_user(self, email: str) -> bool: ...

    async def registrations(self, username: str, mac: str) -> list[StoredUser]: ...

    async def registration_history(self, days: int) -> list[tuple[float, int]]: ...


class Registration(NamedTuple):
    """A user's device after register(); added is False when it was theirs already."""

    added: bool
    username: str
    email: str
    ip: str
    mac: str


class Service:
    """The API's use cases over memory, the database and CMX."""

    def __init__(self, settings: Settings, state: State, store: UserStore, cmx: MacLookup,
                 clock: Callable[[], float] = time.time, *,
                 observed: SeenDevices | None = None,
                 on_lookup: Callable[[str], None] | None = None) -> None:
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
        self._dates: dict[int, str] = {}  # ordinal → "MM/DD/YYYY"
        # user → ((revision, days, today, place), encoded reply): a dashboard read again
        # before the user's distance or place moved is served as it was.
        self._dashboards: dict[User, tuple[tuple[int, int, int, int | None], bytes]] = {}

    # -- helpers --------------------------------------------------------------------

    def email_for(self, username: str) -> str:
        """username@email_domain, unless the username is an address itself."""
        if "@" in username:
            return username
        return f"{username}@{self.settings.registration.email_domain}"

    def is_ranked(self, user: User) -> bool:
        """Staff (excluded e-mail domains) stay off the leaderboard."""
        return not user.email.lower().endswith(self._excluded) if self._excluded else True

    def ranking(self) -> Ranking:
        """Overall ranking, at most refresh_interval_s behind the latest distance."""
        return self.boards.overall().ranking

    def day_ranking(self, ordinal: int) -> Ranking:
        """One day's ranking, kept like the overall one."""
        return self.boards.day(ordinal).ranking

    def _date_text(self, ordinal: int) -> str:
        text = self._dates.get(ordinal)
        if text is None:
            if len(self._dates) > 1024:
                self._dates.clear()
            text = self._dates[ordinal] = dt.date.fromordinal(ordinal).strftime(DATE_FORMAT)
        return text

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

    async def register(self, username: str, ip: str, add_device: bool = False) -> Registration:
        """The device at ip becomes the user's: a new user, or (add_device) one more device.

        Raises NotOnWifi, LocationUnavailable, DeviceOwned, UsernameTaken, LimitReached
        or StorageFailed.
        """
        mac = await self._lookup(ip)
        known = self._registered(username, ip, mac, add_device)
        if known is not None:
            return known
        user = self.state.user(username)
        email = self.email_for(username) if user is None else user.email
        username = username if user is None else user.username
        try:
            if user is None:
                await _stored(self.store.add_user(email, username, mac))
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
        self._remember(StoredUser(email, username, (mac,)))
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
        return None

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
            elif user.email == stored.email:
                self.state.add_device(user, mac, self.clock())

    async def delete(self, username: str) -> User:
        """Forget a user and its devices (distance stays with the MACs); the user forgotten.

        Raises UserNotFound or StorageFailed.
        """
        user = self.state.user(username)
        if user is None:
            raise UserNotFound()
        try:
            await self.store.delete_user(user.email)
        except StoreError as exc:
            log.warning("user not deleted: %s", exc)
            raise StorageFailed() from exc
        self.state.remove_user(user, self.clock())
        self._dashboards.pop(user, None)
        log.info("user deleted (%d users)", len(self.state.users))
        return user

    def dashboard(self, username: str, days: int) -> bytes:
        """Per-device totals and the last `days` days, as username_data's encoded reply.

        Encoded here, not in web: the reply is kept per user and served again until the
        user's revision, the day or the user's place moves, which only the service sees.
        Raises UserNotFound or NoDevices.
        """
        user = self.state.user(username)
        if user is None:
            raise UserNotFound()
        if not user.macs:
            raise NoDevices()
        place = self.ranking().place(user.username) if self.is_ranked(user) else None
        today = self.state.calendar.day_of(self.clock())
        key = (user.revision, days, today, place)
        cached = self._dashboards.get(user)
        if cached is None or cached[0] != key:
            if len(self._dashboards) >= DASHBOARD_CACHE_USERS:
                self._dashboards.clear()
            encoded = orjson.dumps(self._device_rows(user, days, today, place))
            cached = self._dashboards[user] = (key, encoded)
        return cached[1]

    def _device_rows(self, user: User, days: int, today: int,
                     place: int | None) -> list[dict[str, Any]]:
        """username_data's devices: their totals and the last `days` days."""
        step_ft = self.settings.tracking.step_length_ft
        day_m = self.state.days.get  # a read per day asked for: skip State.day_m's call
        devices = []
        for mac in user.macs:
            history = []
            for ordinal in range(today - days + 1, today + 1):
                metres = day_m((mac, ordinal), 0.0)
                if metres > 0.0:
                    history.append({
                        "date": self._dates.get(ordinal) or self._date_text(ordinal),
                        "km": round(km(metres), 3), "miles": round(miles(metres), 3),
                        "steps": steps(metres, step_ft)})
            total = self.state.total_m(mac)
            devices.append({
                "distance_day": history, "mac": mac, "place": place,
                "total_kilometres": round(km(total), 3), "total_miles": round(miles(total), 3),
                "total_steps": steps(total, step_ft), "username": user.username})
        return devices

    def leaderboard(self, count: int, ordinal: int | None = None) -> bytes:
        """The top `count` overall, or of the day `ordinal`, as the encoded reply.

        Encoded once per board update and number_leaders (Board.replies), then served as
        it is: the board knows when it moved, the web layer does not.
        """
        board = self.boards.overall() if ordinal is None else self.boards.day(ordinal)
        reply = board.replies.get(count)
        if reply is None:
            reply = board.replies[count] = orjson.dumps(self._leaderboard_reply(board, count))
        return reply

    def _leaderboard_reply(self, board: Board, count: int) -> dict[str, Any]:
        step_ft = self.settings.tracking.step_length_ft
        leaders = [{"place": e.place, "username": e.username,
                    "kilometres": round(km(e.total_m), 1), "miles": round(miles(e.total_m), 1),
                    "steps": steps(e.total_m, step_ft)} for e in board.ranking.top(count)]
        total = board.registered_m
        reply: dict[str, Any] = {"leaders": leaders, "total_kilometres": round(km(total), 1),
                                 "total_miles": round(miles(total), 1)}
        if not leaders:
            reply["error"] = "No data to display for the leader board"
        return reply

    async def registration_history(self, days: int,
                                   timeout_s: float) -> list[tuple[float, float]] | None:
        """(epoch s, registered users) per hour of the last days; None when unreadable."""
        try:
            rows = await asyncio.wait_for(self.store.registration_history(days), timeout_s)
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
