"""A tiny HTTP/1.1 client over asyncio streams, for requests no polite client sends.

Each exchange uses one connection with `Connection: close`; a server that drops
the connection without answering shows up as `Reply.closed` (no status line).
"""

from __future__ import annotations

import asyncio
import json
import ssl
from dataclasses import dataclass, field
from typing import Any

import orjson

from tests.conftest import basic

READ_TIMEOUT_S = 10.0


@dataclass
class Reply:
    """What came back: status 0 and closed=True when the server sent nothing."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    closed: bool = False

    def json(self) -> Any:
        assert self.headers.get("content-type", "").startswith("application/json"), self
        return orjson.loads(self.body)


def request_bytes(method: str, path: str, body: bytes = b"", *,
                  auth: tuple[str, str] | None = None, content_type: str = "application/json",
                  headers: dict[str, str] | None = None, length: int | None = None,
                  chunk_bytes: int | None = None) -> bytes:
    """The bytes of one request; `length` overrides the Content-Length sent, and with
    `chunk_bytes` the body goes chunked in pieces of that size (no length declared)."""
    lines = [f"{method} {path} HTTP/1.1", "Host: localhost", "Connection: close",
             f"Content-Type: {content_type}"]
    if chunk_bytes is None:
        lines.append(f"Content-Length: {len(body) if length is None else length}")
    else:
        lines.append("Transfer-Encoding: chunked")
        pieces = [body[at:at + chunk_bytes] for at in range(0, len(body), chunk_bytes)]
        body = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces) + b"0\r\n\r\n"
    if auth is not None:
        lines.append(f"Authorization: {basic(auth)}")
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return "\r\n".join(lines).encode("latin-1") + b"\r\n\r\n" + body


def parse(raw: bytes) -> Reply:
    """A reply read to EOF."""
    if not raw:
        return Reply(0, closed=True)
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Reply(int(status_line.split()[1]), headers, body)


async def exchange(port: int, data: bytes, *, context: ssl.SSLContext | None = None,
                   timeout_s: float = READ_TIMEOUT_S, until_close: bool = False) -> Reply:
    """Send data on a new connection and read one reply (by its Content-Length, as
    clients do, or with until_close to EOF: then the server must end the exchange)."""
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=context, server_hostname="localhost" if context else None)
    try:
        writer.write(data)
        await writer.drain()
        raw = await asyncio.wait_for(_read_reply(reader, until_close), timeout_s)
    except ConnectionResetError:
        raw = b""
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except (ConnectionError, ssl.SSLError):
            pass
    return parse(raw)


async def _read_reply(reader: asyncio.StreamReader, until_close: bool) -> bytes:
    if until_close:
        return await reader.read()
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as partial:
        return partial.partial  # closed before (or in the middle of) a reply
    reply = parse(head)
    if 100 <= reply.status < 200:
        return head  # an interim reply has no body
    length = reply.headers.get("content-length")
    if length is None:
        return head + await reader.read()
    return head + await reader.readexactly(int(length))


async def post(port: int, path: str, body: Any, *, auth: tuple[str, str] | None,
               raw: bytes | None = None, **kwargs: Any) -> Reply:
    """POST JSON (or raw bytes) and read the reply."""
    payload = raw if raw is not None else json.dumps(body).encode()  # big ints too
    return await exchange(port, request_bytes("POST", path, payload, auth=auth, **kwargs))


async def post_after_continue(port: int, path: str, body: bytes, *,
                              auth: tuple[str, str] | None) -> tuple[bool, Reply]:
    """POST with `Expect: 100-continue`, sending the body only once the server said 100:
    (whether it did, the final reply). A server that refuses on the headers answers at
    once, and the body is never sent."""
    head = request_bytes("POST", path, auth=auth, length=len(body),
                         headers={"Expect": "100-continue"})
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head)
        await writer.drain()
        first = await asyncio.wait_for(_read_reply(reader, until_close=False), READ_TIMEOUT_S)
        if parse(first).status != 100:
            return False, parse(first)
        writer.write(body)
        await writer.drain()
        return True, parse(await asyncio.wait_for(_read_reply(reader, until_close=False),
                                                  READ_TIMEOUT_S))
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except ConnectionError:
            pass
