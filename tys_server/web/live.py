"""The front-end API, /live/*: parse, call the service, write JSON."""

from __future__ import annotations

from typing import Any

from tys_server.service import ApiError, Reply, Service
from tys_server.web.base import BaseHandler


class LiveHandler(BaseHandler):
    """Base of the /live/* endpoints; subclasses name the use case."""

    service: Service

    async def call(self, body: Any) -> Reply:
        raise NotImplementedError

    async def post(self) -> None:
        try:
            reply = await self.call(self.json_body())
        except ApiError as error:
            self.send_api_error(error)
            return
        self.write_json(reply.status, reply.body)


class RegisterHandler(LiveHandler):
    async def call(self, body: Any) -> Reply:
        return await self.service.register(body)


class DeleteHandler(LiveHandler):
    async def call(self, body: Any) -> Reply:
        return await self.service.delete(body)


class UsernameDataHandler(LiveHandler):
    async def call(self, body: Any) -> Reply:
        return self.service.dashboard(body)


class LeaderboardHandler(LiveHandler):
    async def call(self, body: Any) -> Reply:
        if body is None and not self.request.body.strip():
            body = {}  # an empty POST asks for the default board
        return self.service.leaderboard(body)


class IpUsernameHandler(LiveHandler):
    async def call(self, body: Any) -> Reply:
        return await self.service.ip_username(body)
