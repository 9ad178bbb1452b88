"""Bodies over server.max_body_bytes: a 413 in the JSON error shape, before reading them.

Tornado's own max_body_size answers a bare 400 and closes. This wrapper sits
between the HTTP server and the application and looks at the declared
Content-Length as soon as the headers are in: one header look-up per request,
so the notification fast path pays nothing else. A chunked body (no length
declared) is still cut by Tornado's limit (400 and close).

A path may have its own cap (``path_caps``, e.g. /meraki: Meraki's secret is in the
body and a large network posts megabytes): it replaces max_body_bytes for that path,
in this check and in Tornado's own limit for the request (set_max_body_size).
"""

from __future__ import annotations

import datetime as dt
import socket
import time
from collections.abc import Awaitable, Iterable, Mapping

import tornado.web
from tornado import gen, httputil, iostream

from tys_server.web.base import error_body

TOO_LARGE = "Request body too large"
# After the 413, read and drop what the client is still sending for at most this
# long: closing a socket with unread data makes the kernel send a reset, which
# can destroy the 413 before the client reads it (nginx's "lingering close").
LINGER_S = 2.0
_MAX_LENGTH_DIGITS = 19  # beyond this no length fits; int() of 5,000 digits would raise


def declared_length(headers: httputil.HTTPHeaders) -> int | None:
    """The Content-Length the client declared, None when absent or unreadable."""
    value = headers.get("Content-Length")
    if value is None:
        return None
    first = value.split(",", 1)[0].strip()  # proxies may repeat the header
    if not (first.isascii() and first.isdigit()):
        return None  # Tornado answers 400 itself
    if len(first) > _MAX_LENGTH_DIGITS:
        return 1 << 63
    return int(first)


class BodyLimit(httputil.HTTPServerConnectionDelegate):
    """Wraps the application; a declared body over max_body_bytes is answered 413."""

    def __init__(self, app: tornado.web.Application, max_body_bytes: int,
                 extra_headers: Iterable[tuple[str, str]] = (),
                 path_caps: Mapping[str, int] | None = None) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        # Keys without a trailing slash: routes take "/meraki" and "/meraki/" alike.
        self.path_caps = {path.rstrip("/"): cap for path, cap in (path_caps or {}).items()}
        body = error_body(TOO_LARGE)  # written raw: this runs before the application
        lines = [b"HTTP/1.1 413 Payload Too Large", b"Content-Type: application/json",
                 b"Content-Length: %d" % len(body), b"Connection: close"]
        lines += [f"{name}: {value}".encode("latin-1") for name, value in extra_headers]
        self.response = b"\r\n".join(lines) + b"\r\n\r\n" + body

    def start_request(self, server_conn: object,
                      request_conn: httputil.HTTPConnection) -> httputil.HTTPMessageDelegate:
        return _Guard(self, self.app.start_request(server_conn, request_conn), request_conn)

    def on_close(self, server_conn: object) -> None:
        self.app.on_close(server_conn)


class _Guard(httputil.HTTPMessageDelegate):
    """One request: refused on its headers, or passed through untouched."""

    __slots__ = ("limit", "delegate", "conn", "refused")

    def __init__(self, limit: BodyLimit, delegate: httputil.HTTPMessageDelegate,
                 conn: httputil.HTTPConnection) -> None:
        self.limit = limit
        self.delegate = delegate
        self.conn = conn
        self.refused = False

    def headers_received(self, start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
                         headers: httputil.HTTPHeaders) -> Awaitable[None] | None:
        cap = self.limit.max_body_bytes
        if self.limit.path_caps:  # one look-up more, only when some path has its own cap
            path = start_line.path.split("?", 1)[0].rstrip("/")  # type: ignore[union-attr]
            path_cap = self.limit.path_caps.get(path)
            if path_cap is not None:
                cap = path_cap
                self.conn.set_max_body_size(cap)  # type: ignore[attr-defined]  # HTTP1Connection
        length = declared_length(headers)
        if length is not None and length > cap:
            self.refused = True
            return self._refuse()
        return self.delegate.headers_received(start_line, headers)

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        return self.delegate.data_received(chunk)

    def finish(self) -> None:
        self.delegate.finish()

    def on_connection_close(self) -> None:
        if not self.refused:  # a refused request never reached the application
            self.delegate.on_connection_close()

    async def _refuse(self) -> None:
        stream = self.conn.detach()  # type: ignore[attr-defined]  # HTTP1Connection
        try:
            await stream.write(self.limit.response)
            if not isinstance(stream, iostream.SSLIOStream):
                stream.socket.shutdown(socket.SHUT_WR)  # the client sees the end of the reply
            deadline = time.monotonic() + LINGER_S
            while (left_s := deadline - time.monotonic()) > 0:
                await gen.with_timeout(dt.timedelta(seconds=left_s),
                                       stream.read_bytes(65536, partial=True),
                                       quiet_exceptions=iostream.StreamClosedError)
        except (iostream.StreamClosedError, TimeoutError, OSError):
            pass  # the client closed (it read the 413), or lingered too long
        finally:
            stream.close()
