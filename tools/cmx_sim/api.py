"""A small client of the TYS server: notification POSTs and the ``/live/*`` API."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

import orjson

from tools.cmx_sim.httpclient import HttpConnection, basic_auth, encode_request

T = TypeVar("T")
R = TypeVar("R")


class ApiError(Exception):
    """The server answered something the simulator cannot use."""


class LiveApi:
    """POST JSON to ``<server>/live/<name>`` with the API Basic-auth pair, over a few
    keep-alive connections."""

    def __init__(self, server: str, username: str, password: str, connections: int = 8,
                 timeout_s: float = 10.0) -> None:
        self.server = server.rstrip("/")
        self.headers = basic_auth(username, password)
        self._pool: asyncio.Queue[HttpConnection] = asyncio.Queue()
        self._all = [HttpConnection(self.server, timeout_s) for _ in range(connections)]
        for conn in self._all:
            self._pool.put_nowait(conn)

    async def call(self, name: str, payload: dict[str, Any]) -> tuple[int, Any]:
        """(status, decoded JSON body) of one API call; HttpError when no answer came."""
        raw = encode_request("POST", f"{self.server}/live/{name}", self.headers,
                             orjson.dumps(payload))
        conn = await self._pool.get()
        try:
            status, body = await conn.request(raw)
        finally:
            self._pool.put_nowait(conn)
        try:
            return status, orjson.loads(body) if body else None
        except orjson.JSONDecodeError:
            raise ApiError(f"/live/{name}: HTTP {status} with a body that is not JSON") from None

    async def register(self, username: str, ip: str) -> tuple[int, Any]:
        """register_username: 201 new, 200 already registered with that MAC, else an error."""
        return await self.call("register_username", {"username": username, "ip": ip})

    async def total_km(self, username: str) -> float | None:
        """Sum of total_kilometres over the user's devices; None when the user is unknown."""
        status, data = await self.call("username_data", {"username": username, "days": 1})
        if status == 404:
            return None
        if status != 200 or not isinstance(data, list):
            raise ApiError(f"username_data {username}: HTTP {status} {data!r:.200}")
        return sum(float(device.get("total_kilometres", 0.0)) for device in data)

    async def leaderboard(self, number_leaders: int) -> dict[str, Any]:
        """The event leaderboard as the server returns it."""
        status, data = await self.call("leaderboard", {"number_leaders": number_leaders})
        if status != 200 or not isinstance(data, dict):
            raise ApiError(f"leaderboard: HTTP {status} {data!r:.200}")
        return data

    async def map(self, func: Callable[[T], Awaitable[R]], items: Iterable[T]) -> list[R]:
        """func over items, as many at once as there are connections, results in order."""
        return await asyncio.gather(*(func(item) for item in items))

    async def aclose(self) -> None:
        """Close every connection."""
        for conn in self._all:
            await conn.aclose()

