"""A minimal HTTP/1.1 keep-alive client over asyncio streams, for pre-encoded requests.

Tornado's clients build every request from scratch; a load generator that must out-run
the server sends bytes prepared in advance on a connection it keeps open.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
from collections.abc import Mapping
from urllib.parse import urlsplit

_NO_BODY_STATUSES = (204, 304)


class HttpError(Exception):
    """No usable response: refused, reset, timed out, or not HTTP."""


def basic_auth(username: str, password: str) -> dict[str, str]:
    """The Authorization header of HTTP Basic auth."""
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return {"Authorization": f"Basic {token}"}


def encode_request(method: str, url: str, headers: Mapping[str, str] | None = None,
                   body: bytes = b"") -> bytes:
    """One complete HTTP/1.1 request (request line, headers, body) ready to write."""
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    lines = [f"{method} {target} HTTP/1.1", f"Host: {parts.netloc}",
             f"Content-Length: {len(body)}"]
    if body:
        lines.append("Content-Type: application/json")
    lines.extend(f"{name}: {value}" for name, value in (headers or {}).items())
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class HttpConnection:
    """One keep-alive connection to url's host; reconnects after a close or an error."""

    def __init__(self, url: str, timeout_s: float = 10.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"expected an http(s)://host[:port] URL, got {url!r}")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.ssl = ssl.create_default_context() if parts.scheme == "https" else None
        self.timeout_s = timeout_s
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        """Send one encoded request, return (status, body); HttpError when none came."""
        try:
            async with asyncio.timeout(self.timeout_s):
                if self._writer is None:
                    self._reader, self._writer = await asyncio.open_connection(
                        self.host, self.port, ssl=self.ssl)
                assert self._reader is not None
                self._writer.write(raw)
                return await self._read_response(self._reader, raw.startswith(b"HEAD "))
        except (OSError, EOFError, ValueError, TimeoutError, asyncio.IncompleteReadError,
                asyncio.LimitOverrunError) as exc:
            self.close()
            raise HttpError(f"{type(exc).__name__}: {exc}".rstrip(": ")) from None
        except BaseException:  # cancelled mid-exchange: the stream is out of step
            self.close()
            raise

    async def _read_response(self, reader: asyncio.StreamReader,
                             head_only: bool) -> tuple[int, bytes]:
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1."):
            raise ValueError("not an HTTP response")
        status = int(head[9:12])
        lower = head.lower()
        if head_only or status in _NO_BODY_STATUSES or 100 <= status < 200:
            body = b""
        elif b"\r\ntransfer-encoding: chunked" in lower:
            body = await self._read_chunked(reader)
        else:
            start = lower.find(b"\r\ncontent-length:")
            if start >= 0:
                end = lower.index(b"\r\n", start + 2)
                body = await reader.readexactly(int(lower[start + 17:end]))
            else:
                body = await reader.read()  # the body runs to the end of the connection
                self.close()
        if b"\r\nconnection: close" in lower:
            self.close()
        return status, body

    @staticmethod
    async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
        chunks = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
                    pass
                return b"".join(chunks)
            chunks.append(await reader.readexactly(size))
            await reader.readexactly(2)

    def close(self) -> None:
        """Drop the connection; the next request opens a new one."""
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None

    async def aclose(self) -> None:
        """Close and wait until the socket is released (at the end of a run)."""
        writer = self._writer
        self.close()
        if writer is not None:
            try:
                async with asyncio.timeout(1.0):
                    await writer.wait_closed()
            except (OSError, TimeoutError):
                pass
