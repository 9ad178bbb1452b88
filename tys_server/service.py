"""Use cases of the front-end API: register, delete, dashboard, leaderboard, ip→username."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
import time
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

import orjson

from tys_server.config import Settings
from tys_server.core.addresses import parse_ip
from tys_server.core.leaderboard import Board, Boards
from tys_server.core.ranking import Ranking
from tys_server.core.state import State, User
from tys_server.core.units import km, miles, steps
from tys_server.lookup.cmx_api import LocationUnavailable, NotOnWifi
from tys_server.store.database import DeviceConflict, StoreError, UsernameConflict

log = logging.getLogger(__name__)

USERNAME_MAX = 64
# Dashboards kept for users read again (about 2 KB each for 5 days): bounded, and
# forgotten all at once when full, which costs one recomputation per user.
DASHBOARD_CACHE_USERS = 4096
_DATE_SHAPE = re.compile(r"[0-9]{2}/[0-9]{2}/[0-9]{4}")
DATE_FORMAT = "%m/%d/%Y"


class ApiError(Exception):
    """A reply the API promises: status code and the exact error text."""

    status = 400

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


class BadRequest(ApiError):
    status = 400


class NotFound(ApiError):
    status = 404


class Conflict(ApiError):
    status = 409


class Failed(ApiError):
    status = 500


class Unavailable(ApiError):
    status = 503


class MacLookup(Protocol):
    """What the service needs of the CMX client."""

    async def lookup_mac(self, ip: str) -> str: ...


class UserStore(Protocol):
    """What the service needs of the database."""

    async def add_user(self, email: str, username: str, mac: str) -> None: ...

    async def add_device(self, email: str, mac: str) -> None: ...

    async def delete_user(self, email: str) -> bool: ...

    async def registration_history(self, days: int) -> list[tuple[float, int]]: ...


class Reply(NamedTuple):
    """Status and JSON body of a successful call (a tuple: cheap for every request).

    body is a JSON value, or (bytes) one already encoded because it is served many times.
    """

    status: int
    body: Any


def valid_username(value: object) -> str | None:
    """1–64 printable characters, not starting with '@'; None otherwise."""
    if not isinstance(value, str) or not 1 <= len(value) <= USERNAME_MAX:
        return None
    if value.startswith("@") or not value.isprintable() or value.strip() != value:
        return None
    return value


def json_int(value: object, low: int, high: int) -> int | None:
    """A JSON integer within [low, high]; "5", 2.5 and true are not."""
    if type(value) is not int or not low <= value <= high:
        return None
    return value


class Service:
    """The API's use cases over memory, the database and CMX."""

    def __init__(self, settings: Settings, state: State, store: UserStore, cmx: MacLookup,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.state = state
        self.store = store
        self.cmx = cmx
        self.clock = clock
        self.not_on_wifi = f"Connect to {settings.registration.wifi_name} WiFi first"
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

    async def _lookup(self, ip: str) -> str:
        try:
            return await self.cmx.lookup_mac(ip)
        except NotOnWifi:
            raise NotFound(self.not_on_wifi) from None
        except LocationUnavailable:
            raise Unavailable("Location service unavailable") from None

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

    # -- use cases ------------------------------------------------------------------

    async def register(self, body: Any) -> Reply:
        """register_username: username + ip (+ add_device) → a device of that user."""
        text = "Not a POST request or no application/json headers with username and ip"
        if not isinstance(body, dict):
            raise BadRequest(text)
        username = valid_username(body.get("username"))
        ip = parse_ip(body.get("ip"))
        add_device = body.get("add_device", False)
        if username is None or ip is None or not isinstance(add_device, bool):
            raise BadRequest(text)
        mac = await self._lookup(ip)
        reply = {"username": username, "email": self.email_for(username), "ip": ip, "mac": mac}
        user = self.state.user(username)
        owner = self.state.owner(mac)
        if owner is not None:
            if owner is user:
                return Reply(200, {"info": "Username already registered with that mac, "
                                           "nothing to do", **reply,
                                   "username": owner.username, "email": owner.email})
            raise Conflict("Device already registered with another username.")
        if user is not None:
            if not add_device:
                raise Conflict("Username already registered")
            if len(user.macs) >= self.settings.registration.max_devices_per_user:
                raise Conflict("Maximum number of devices registered")
            await self._write(self.store.add_device(user.email, mac))
            self.state.add_device(user, mac, self.clock())
            log.info("device added to a user (%d devices)", len(user.macs))
            return Reply(201, {"success": "Username added with device", **reply,
                               "username": user.username, "email": user.email})
        await self._write(self.store.add_user(reply["email"], username, mac))
        self.state.add_user(reply["email"], username, mac, self.clock())
        log.info("user registered (%d users)", len(self.state.users))
        return Reply(201, {"success": "Username added with device", **reply})

    async def _write(self, operation: Any) -> None:
        try:
            await operation
        except DeviceConflict:
            raise Conflict("Device already registered with another username.") from None
        except UsernameConflict:
            raise Conflict("Username already registered") from None
        except StoreError as exc:
            log.warning("registration not stored: %s", exc)
            raise Failed("Database error adding user") from None

    async def delete(self, body: Any) -> Reply:
        """delete_username: forget a user and its devices (distance stays with the MACs)."""
        username = valid_username(body.get("username")) if isinstance(body, dict) else None
        if username is None:
            raise BadRequest("Expecting keyname username to delete.")
        user = self.state.user(username)
        if user is None:
            raise NotFound("Username not found")
        try:
            await self.store.delete_user(user.email)
        except StoreError as exc:
            log.warning("user not deleted: %s", exc)
            raise Failed("Could not delete user from database") from None
        self.state.remove_user(user, self.clock())
        self._dashboards.pop(user, None)
        log.info("user deleted (%d users)", len(self.state.users))
        return Reply(200, {"success": "Username and associated devices deleted",
                           "username": user.username, "email": user.email})

    def dashboard(self, body: Any) -> Reply:
        """username_data: per-device totals and the last `days` days."""
        if not isinstance(body, dict):
            raise BadRequest("No data")
        username = valid_username(body.get("username"))
        days = json_int(body.get("days", 5), 1, 366)
        if username is None or days is None:
            raise BadRequest("Expecting key name username to get data for.")
        user = self.state.user(username)
        if user is None:
            raise NotFound("Username not found")
        if not user.macs:
            raise Failed("Could not get device for username")
        place = self.ranking().place(user.username) if self.is_ranked(user) else None
        today = self.state.calendar.day_of(self.clock())
        key = (user.revision, days, today, place)
        cached = self._dashboards.get(user)
        if cached is None or cached[0] != key:
            if len(self._dashboards) >= DASHBOARD_CACHE_USERS:
                self._dashboards.clear()
            body = orjson.dumps(self._device_rows(user, days, today, place))
            cached = self._dashboards[user] = (key, body)
        return Reply(200, cached[1])

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

    def leaderboard(self, body: Any) -> Reply:
        """leaderboard: top N overall, or of one day with `date` MM/DD/YYYY."""
        if not isinstance(body, dict):
            raise BadRequest("Expecting a JSON object with number_leaders.")
        count = json_int(body.get("number_leaders", 5), 1, 100)
        if count is None:
            raise BadRequest("number_leaders must be an integer from 1 to 100.")
        date = body.get("date")
        if date is None:
            board = self.boards.overall()
        else:
            ordinal = _parse_date(date)
            if ordinal is None:
                raise BadRequest("date must be a day as MM/DD/YYYY.")
            board = self.boards.day(ordinal)
        reply = board.replies.get(count)
        if reply is None:  # encoded once per board update, then served as it is
            reply = board.replies[count] = orjson.dumps(self._leaderboard_reply(board, count))
        return Reply(200, reply)

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

    async def ip_username(self, body: Any) -> Reply:
        """ip_username: which username registered the device at this IP."""
        ip = parse_ip(body.get("ip")) if isinstance(body, dict) else None
        if ip is None:
            raise BadRequest("Expecting key name ip.")
        mac = await self._lookup(ip)
        owner = self.state.owner(mac)
        if owner is None:
            raise NotFound("Device not registered")
        return Reply(200, {"ip": ip, "username": owner.username})


def _parse_date(value: object) -> int | None:
    # strptime alone would also take "1/2/2024"; the contract is MM/DD/YYYY.
    if not isinstance(value, str) or not _DATE_SHAPE.fullmatch(value):
        return None
    try:
        return dt.datetime.strptime(value, DATE_FORMAT).date().toordinal()
    except ValueError:
        return None
