"""Refusals on the headers: 401 without a path's credentials, 413 over its body cap.

Tornado reads a whole body before a handler's prepare() can look at the
Authorization header, and its own max_body_size answers a bare 400. This wrapper
sits between the HTTP server and the application and looks at the request as soon
as its headers are in, so a client without the right pair, or announcing more
than the cap, is answered at once in the JSON error shape (with
``Connection: close``) and none of its body is buffered.

Each ``PathRule`` names a path (or, with ``below``, every path under it), the
Basic pair it takes and its own body cap; other paths get ``max_body_bytes`` and no
check here (their handlers still check their pair). A chunked body has no length
to look at: it is counted as it arrives and refused with the same 413 once it
passes the cap. The notification fast path pays one dictionary look-up and the
pair check its handler would make anyway.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import socket
import sys
import time
from collections.abc import Awaitable, Iterable, Mapping

import tornado.web
from tornado import gen, httputil, iostream

from tys_server.web.base import BasicAuth, error_body

TOO_LARGE = "Request body too large"
UNAUTHORIZED = "Unauthorized"
# After a refusal, read and drop what the client is still sending for at most this
# long: closing a socket with unread data makes the kernel send a reset, which
# can destroy the reply before the client reads it (nginx's "lingering close").
LINGER_S = 2.0
_MAX_LENGTH_DIGITS = 19  # beyond this no length fits; int() of 5,000 digits would raise
# A chunked body is counted here, so Tornado's own limit (a bare 400) must not trip first.
_COUNTED_HERE = sys.maxsize


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


@dataclasses.dataclass(frozen=True)
class PathRule:
    """What a request to path must show in its headers before its body is read."""

    path: str  # "/notification/area": with or without a trailing slash
    auth: BasicAuth | None = None  # without this pair: 401 at once
    max_body_bytes: int | None = None  # replaces the server's cap for this path
    below: bool = False  # every path under path too ("/live" covers "/live/anything")


@dataclasses.dataclass(frozen=True)
class _Refusal:
    head: bytes
    body: bytes

    def for_method(self, method: str) -> bytes:
        return self.head if method == "HEAD" else self.head + self.body


def _refusal(status: str, text: str, headers: Iterable[tuple[str, str]]) -> _Refusal:
    body = error_body(text)  # written raw: this runs before the application
    lines = [f"HTTP/1.1 {status}", "Content-Type: application/json",
             f"Content-Length: {len(body)}", "Connection: close", *headers]
    return _Refusal("\r\n".join(lines).encode("latin-1") + b"\r\n\r\n", body)


class BodyLimit(httputil.HTTPServerConnectionDelegate):
    """Wraps the application; refuses on the headers by the rule of the request's path."""

    def __init__(self, app: tornado.web.Application, max_body_bytes: int,
                 extra_headers: Iterable[tuple[str, str]] = (),
                 path_caps: Mapping[str, int] | None = None,
                 rules: Iterable[PathRule] = ()) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        every = [*rules, *(PathRule(path, max_body_bytes=cap)
                           for path, cap in (path_caps or {}).items())]
        # Keys without a trailing slash: routes take "/meraki" and "/meraki/" alike.
        self.exact = {rule.path.rstrip("/"): rule for rule in every}
        self.prefixes = tuple((rule.path.rstrip("/") + "/", rule) for rule in every
                              if rule.below)
        extra = [f"{name}: {value}" for name, value in extra_headers]
        self.too_large = _refusal("413 Payload Too Large", TOO_LARGE, extra)
        self.unauthorized = _refusal("401 Unauthorized", UNAUTHORIZED,
                                     ['WWW-Authenticate: Basic realm="TYS"', *extra])

    def rule_for(self, target: str) -> PathRule | None:
        """The rule of a request target's path, None when it has none."""
        path = target.split("?", 1)[0]
        rule = self.exact.get(path.rstrip("/"))
        if rule is None:
            for prefix, candidate in self.prefixes:
                if path.startswith(prefix):
                    return candidate
        return rule

    def start_request(self, server_conn: object,
                      request_conn: httputil.HTTPConnection) -> httputil.HTTPMessageDelegate:
        return _Guard(self, self.app.start_request(server_conn, request_conn), request_conn)

    def on_close(self, server_conn: object) -> None:
        self.app.on_close(server_conn)


class _Guard(httputil.HTTPMessageDelegate):
    """One request: refused on its headers (or its chunked body), or passed through."""

    __slots__ = ("limit", "delegate", "conn", "passed", "body_left", "method")

    def __init__(self, limit: BodyLimit, delegate: httputil.HTTPMessageDelegate,
                 conn: httputil.HTTPConnection) -> None:
        self.limit = limit
        self.delegate = delegate
        self.conn = conn
        self.passed = False  # the application has seen the headers
        self.body_left: int | None = None  # bytes a chunked body may still bring
        self.method = ""

    def headers_received(self, start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
                         headers: httputil.HTTPHeaders) -> Awaitable[None] | None:
        limit = self.limit
        assert isinstance(start_line, httputil.RequestStartLine)
        self.method = start_line.method
        cap = limit.max_body_bytes
        rule = limit.rule_for(start_line.path) if (limit.exact or limit.prefixes) else None
        if rule is not None:
            if rule.auth is not None and not rule.auth.allows(headers.get("Authorization")):
                return self._refuse(limit.unauthorized)
            if rule.max_body_bytes is not None:
                cap = rule.max_body_bytes
        length = declared_length(headers)
        if length is not None:
            if length > cap:
                return self._refuse(limit.too_large)
            if cap > limit.max_body_bytes:
                self.conn.set_max_body_size(cap)  # type: ignore[attr-defined]  # HTTP1Connection
        elif "Transfer-Encoding" in headers:
            self.body_left = cap
            self.conn.set_max_body_size(_COUNTED_HERE)  # type: ignore[attr-defined]
        self.passed = True
        return self.delegate.headers_received(start_line, headers)

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        if self.body_left is not None:
            self.body_left -= len(chunk)
            if self.body_left < 0:
                self.body_left = None
                return self._refuse(self.limit.too_large)
        return self.delegate.data_received(chunk)

    def finish(self) -> None:
        self.delegate.finish()

    def on_connection_close(self) -> None:
        if self.passed:  # a request refused on its headers never reached the application
            self.delegate.on_connection_close()

    async def _refuse(self, refusal: _Refusal) -> None:
        # On the headers the stream is taken from Tornado; in the middle of a chunked
        # body it is closed under it instead (its next read then ends the request quietly).
        http1 = self.conn
        stream = http1.stream if self.passed else http1.detach()  # type: ignore[attr-defined]
        try:
            await stream.write(refusal.for_method(self.method))
            if not isinstance(stream, iostream.SSLIOStream):
                stream.socket.shutdown(socket.SHUT_WR)  # the client sees the end of the reply
            deadline = time.monotonic() + LINGER_S
            while (left_s := deadline - time.monotonic()) > 0:
                await gen.with_timeout(dt.timedelta(seconds=left_s),
                                       stream.read_bytes(65536, partial=True),
                                       quiet_exceptions=iostream.StreamClosedError)
        except (iostream.StreamClosedError, TimeoutError, OSError):
            pass  # the client closed (it read the reply), or lingered too long
        finally:
            stream.close()
