"""The front-end API, /live/*: parse, call the service, map its refusals, write JSON."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tys_server.config import Settings
from tys_server.service import (
    AliasTaken,
    DeviceNotRegistered,
    DeviceOwned,
    LimitReached,
    LocationUnavailable,
    NoDevices,
    NotOnWifi,
    Service,
    StorageFailed,
    UsernameTaken,
    UserNotFound,
)
from tys_server.web import requests
from tys_server.web.base import BaseHandler, BasicAuth

# A refusal of the service → the status and error text its endpoint promises (DESIGN 7).
ErrorReplies = Mapping[type[Exception], tuple[int, str]]
Answer = tuple[int, Any]  # status and JSON body (a value, or bytes already encoded)

ADDED = "Username added with device"
NOTHING_TO_DO = "Username already registered with that mac, nothing to do"
DELETED = "Username and associated devices deleted"
ALIAS_TAKEN = "alias is already another user's username or alias."


class LiveHandler(BaseHandler):
    """Base of the /live/* endpoints: a subclass answers one use case."""

    service: Service
    errors: ErrorReplies

    async def answer(self, body: Any) -> Answer:
        """Read the body, call the service, and say what to reply."""
        raise NotImplementedError

    async def post(self) -> None:
        try:
            status, reply = await self.answer(self.json_body())
        except requests.BadRequest as error:
            self.send_json_error(400, error.text)
            return
        except Exception as error:
            known = self.errors.get(type(error))
            if known is None:
                raise  # a fault, not a refusal: write_error's 500, logged with its stack
            self.send_json_error(*known)
            return
        self.reply(status, reply)

    def reply(self, status: int, reply: Any) -> None:
        """Finish with the answer: JSON here (an admin export writes CSV)."""
        self.write_json(status, reply)


class RegisterHandler(LiveHandler):
    async def answer(self, body: Any) -> Answer:
        args = requests.register_args(body)  # the seed's 400 first, then the team's
        done = await self.service.register(*args, team=requests.team_arg(body))
        head = {"success": ADDED} if done.added else {"info": NOTHING_TO_DO}
        return (201 if done.added else 200), {**head, "username": done.username,
                                              "email": done.email, "ip": done.ip,
                                              "mac": done.mac}


class DeleteHandler(LiveHandler):
    async def answer(self, body: Any) -> Answer:
        username = requests.delete_args(body)  # the seed's 400 first, then erase's
        user = await self.service.delete(username, erase=requests.erase_arg(body))
        return 200, {"success": DELETED, "username": user.username, "email": user.email}


class UsernameDataHandler(LiveHandler):
    async def answer(self, body: Any) -> Answer:
        return 200, self.service.dashboard(*requests.dashboard_args(body))


class LeaderboardHandler(LiveHandler):
    async def answer(self, body: Any) -> Answer:
        if body is None and not self.request.body.strip():
            body = {}  # an empty POST asks for the default board
        count, ordinal = requests.leaderboard_args(body)
        by, rank = requests.board_kind_args(body)
        return 200, self.service.leaderboard(count, ordinal, by, rank)


class ProfileHandler(LiveHandler):
    async def answer(self, body: Any) -> Answer:
        user = await self.service.profile(*requests.profile_args(body))
        return 200, {"username": user.username, "team": user.team, "alias": user.alias,
                     "hidden": user.hidden}


class IpUsernameHandler(LiveHandler):
    async def answer(self, body: Any) -> Answer:
        ip = requests.ip_args(body)
        return 200, {"ip": ip, "username": await self.service.ip_username(ip)}


def routes(settings: Settings, service: Service, auth: BasicAuth) -> list[Any]:
    """The /live/* entries of the route table, each with the replies to its refusals."""
    lookup: ErrorReplies = {
        NotOnWifi: (404, f"Connect to {settings.registration.wifi_name} WiFi first"),
        LocationUnavailable: (503, "Location service unavailable"),
    }
    register: ErrorReplies = {
        **lookup,
        DeviceOwned: (409, "Device already registered with another username."),
        UsernameTaken: (409, "Username already registered"),
        LimitReached: (409, "Maximum number of devices registered"),
        StorageFailed: (500, "Database error adding user"),
    }
    delete: ErrorReplies = {
        UserNotFound: (404, "Username not found"),
        StorageFailed: (500, "Could not delete user from database"),
    }
    dashboard: ErrorReplies = {
        UserNotFound: (404, "Username not found"),
        NoDevices: (500, "Could not get device for username"),
    }
    ip_username: ErrorReplies = {**lookup, DeviceNotRegistered: (404, "Device not registered")}
    profile: ErrorReplies = {
        UserNotFound: (404, "Username not found"),
        AliasTaken: (400, ALIAS_TAKEN),
        StorageFailed: (500, "Could not update profile in database"),
    }

    def entry(path: str, handler: type[LiveHandler], errors: ErrorReplies) -> Any:
        return (path, handler, {"auth": auth, "service": service, "errors": errors})

    return [
        entry(r"/live/register_username/?", RegisterHandler, register),
        entry(r"/live/delete_username/?", DeleteHandler, delete),
        entry(r"/live/username_data/?", UsernameDataHandler, dashboard),
        entry(r"/live/leaderboard/?", LeaderboardHandler, {}),
        entry(r"/live/ip_username/?", IpUsernameHandler, ip_username),
        entry(r"/live/profile/?", ProfileHandler, profile),
    ]
