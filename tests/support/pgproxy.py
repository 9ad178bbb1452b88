"""A TCP proxy in front of the test PostgreSQL, to cut or stall the database on demand.

Stopping the shared test server would disturb every other test; cutting the
proxy gives the service the same faults (refused connections, dropped
connections, connections that hang, a COMMIT whose outcome the client never
learns) on a database of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg2.extensions

# Untyped requests a client may send before its StartupMessage (PostgreSQL protocol 3.0).
_PRE_STARTUP_CODES = (80877103, 80877104)  # SSLRequest, GSSENCRequest


def _target(dsn: str) -> tuple[str | None, str | None, int]:
    """(unix socket path, tcp host, port) of the server a DSN names."""
    params = psycopg2.extensions.parse_dsn(dsn)
    host = params.get("host", "/tmp")
    port = int(params.get("port", 5432))
    if host.startswith("/"):
        return f"{host}/.s.PGSQL.{port}", None, port
    return None, host, port


class Messages:
    """Splits a client's byte stream into protocol messages (the startup ones untyped)."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._started = False

    def feed(self, data: bytes) -> list[bytes]:
        """The whole messages completed by data, in order; a partial one waits for more."""
        self._buffer += data
        messages = []
        while True:
            if self._started:
                if len(self._buffer) < 5:
                    break
                size = 1 + int.from_bytes(self._buffer[1:5], "big")
            else:
                if len(self._buffer) < 8:
                    break
                size = int.from_bytes(self._buffer[:4], "big")
            if len(self._buffer) < size:
                break
            message = bytes(self._buffer[:size])
            del self._buffer[:size]
            if not self._started:
                self._started = int.from_bytes(message[4:8], "big") not in _PRE_STARTUP_CODES
            messages.append(message)
        return messages


def query_text(message: bytes) -> bytes | None:
    """The SQL of a simple Query message ('Q'), None for any other message."""
    if message[:1] != b"Q":
        return None
    return message[5:].rstrip(b"\0")


def is_commit(sql: bytes) -> bool:
    """True for a bare COMMIT statement (what Store._run sends)."""
    return sql.strip().rstrip(b";").strip().upper() in (b"COMMIT", b"END")


@dataclass
class CommitCut:
    """An armed cut: which COMMIT to cut, and whether the server gets it first."""

    delivered: bool
    after: bytes
    then_down: bool


@dataclass
class _Link:
    """One client connection and its upstream connection."""

    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter
    messages: Messages = field(default_factory=Messages)
    matched: bool = False       # the open transaction ran a statement holding `after`
    cut_on_reply: CommitCut | None = None  # the COMMIT went through: cut before its answer


class PgProxy:
    """Forwards 127.0.0.1:<port> to PostgreSQL; `down()` refuses, `stall()` hangs.

    `cut_at_commit()` loses one COMMIT's answer: the client sees its connection drop
    at COMMIT and cannot tell whether the transaction was committed.
    """

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._socket_path, self._host, self._port = _target(dsn)
        self._server: asyncio.AbstractServer | None = None
        self._pipes: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._commit_cut: CommitCut | None = None
        self._flowing = asyncio.Event()  # cleared while stalled: the pipes await it
        self._flowing.set()
        self.commits_cut = 0  # COMMITs cut since the proxy started
        self.port = 0

    async def start(self) -> None:
        """Listen on a free loopback port."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    def proxied_dsn(self) -> str:
        """The DSN to give the service: same database, through this proxy."""
        params = psycopg2.extensions.parse_dsn(self.dsn)
        # In clear: the proxy reads the client's messages to find its COMMITs.
        params.update(host="127.0.0.1", port=str(self.port), sslmode="disable")
        params.pop("hostaddr", None)
        return psycopg2.extensions.make_dsn(**params)

    def cut_at_commit(self, *, delivered: bool, after: str = "", then_down: bool = False) -> None:
        """Cut the connection of the next COMMIT (of a transaction that ran `after`).

        delivered=True: the server receives the COMMIT and commits; its answer is
        dropped and both sides are closed. delivered=False: the COMMIT never reaches
        the server, which rolls the transaction back when its side closes. Either
        way the client's COMMIT fails with a lost connection. One COMMIT only.
        then_down: at that moment the database goes away as with `down()`, so the
        client cannot read back what happened either.
        """
        self._commit_cut = CommitCut(delivered, after.encode(), then_down)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.stalled:
            self._writers.add(writer)  # keep it open and silent
            return
        try:
            if self._socket_path:
                up_reader, up_writer = await asyncio.open_unix_connection(self._socket_path)
            else:
                assert self._host is not None
                up_reader, up_writer = await asyncio.open_connection(self._host, self._port)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))
        link = _Link(writer, up_writer)
        for pipe in (self._pipe(reader, up_writer, lambda data: self._to_server(link, data)),
                     self._pipe(up_reader, writer, lambda data: self._to_client(link, data))):
            task = asyncio.create_task(pipe)
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)

    def _to_server(self, link: _Link, data: bytes) -> bytes | None:
        """What of the client's bytes goes on; None cuts the link."""
        forwarded = bytearray()
        for message in link.messages.feed(data):
            sql = query_text(message)
            if sql is not None:
                cut = self._commit_cut
                if is_commit(sql) and cut is not None and (link.matched or not cut.after):
                    self._commit_cut = None
                    self.commits_cut += 1
                    if not cut.delivered:
                        self._cut(cut)
                        return None
                    link.cut_on_reply = cut
                elif sql.strip().upper().startswith(b"BEGIN"):
                    link.matched = False
                elif cut is not None and cut.after and cut.after in sql:
                    link.matched = True
            forwarded += message
        return bytes(forwarded)

    def _to_client(self, link: _Link, data: bytes) -> bytes | None:
        """What of the server's bytes goes on; None cuts the link."""
        # The client waits for each answer before its next message, so what comes
        # after a cut COMMIT is that COMMIT's answer: the transaction is committed.
        if link.cut_on_reply is None:
            return data
        self._cut(link.cut_on_reply)
        return None

    def _cut(self, cut: CommitCut) -> None:
        if cut.then_down:
            # Now, not in a task: the client must not reach the database in between.
            self._refuse()
            for writer in self._writers:
                writer.close()

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter,
                    through: Callable[[bytes], bytes | None]) -> None:
        try:
            while True:
                data = await src.read(65536)
                if not data:
                    break
                await self._flowing.wait()
                passed = through(data)
                if passed is None:
                    break
                dst.write(passed)
                await dst.drain()
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            dst.close()
            with contextlib.suppress(OSError, asyncio.CancelledError):
                await dst.wait_closed()

    async def down(self) -> None:
        """PostgreSQL gone: close every connection and refuse new ones."""
        self._refuse()
        await self._drop_all()

    def _refuse(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    async def up(self) -> None:
        """PostgreSQL back on the same port."""
        self._flowing.set()
        if self._server is None:
            await self.start()

    def stall(self) -> None:
        """Connections hang: bytes are held, new connections get no answer."""
        self._flowing.clear()

    @property
    def stalled(self) -> bool:
        """True while connections hang (stall() until up() or close())."""
        return not self._flowing.is_set()

    async def _drop_all(self) -> None:
        pipes = list(self._pipes)
        for task in pipes:
            task.cancel()
        writers = list(self._writers)
        self._writers.clear()
        for writer in writers:
            writer.close()
        # Sockets are really closed only once the loop has run their close callbacks.
        await asyncio.gather(*pipes, *(w.wait_closed() for w in writers),
                             return_exceptions=True)

    async def close(self) -> None:
        """Stop everything."""
        self._flowing.set()
        await self.down()

