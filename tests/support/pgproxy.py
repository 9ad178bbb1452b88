"""A TCP proxy in front of the test PostgreSQL, to cut or stall the database on demand.

Stopping the shared test server would disturb every other test; cutting the
proxy gives the service the same faults (refused connections, dropped
connections, connections that hang) on a database of its own.
"""

from __future__ import annotations

import asyncio
import contextlib

import psycopg2.extensions


def _target(dsn: str) -> tuple[str | None, str | None, int]:
    """(unix socket path, tcp host, port) of the server a DSN names."""
    params = psycopg2.extensions.parse_dsn(dsn)
    host = params.get("host", "/tmp")
    port = int(params.get("port", 5432))
    if host.startswith("/"):
        return f"{host}/.s.PGSQL.{port}", None, port
    return None, host, port


class PgProxy:
    """Forwards 127.0.0.1:<port> to PostgreSQL; `down()` refuses, `stall()` hangs."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._socket_path, self._host, self._port = _target(dsn)
        self._server: asyncio.AbstractServer | None = None
        self._pipes: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.stalled = False
        self.port = 0

    async def start(self) -> None:
        """Listen on a free loopback port."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    def proxied_dsn(self) -> str:
        """The DSN to give the service: same database, through this proxy."""
        params = psycopg2.extensions.parse_dsn(self.dsn)
        params.update(host="127.0.0.1", port=str(self.port))
        params.pop("hostaddr", None)
        return psycopg2.extensions.make_dsn(**params)

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
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(src, dst))
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while True:
                data = await src.read(65536)
                if not data:
                    break
                while self.stalled:
                    await asyncio.sleep(0.05)
                dst.write(data)
                await dst.drain()
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            dst.close()
            with contextlib.suppress(OSError, asyncio.CancelledError):
                await dst.wait_closed()

    async def down(self) -> None:
        """PostgreSQL gone: close every connection and refuse new ones."""
        if self._server is not None:
            self._server.close()
            self._server = None
        await self._drop_all()

    async def up(self) -> None:
        """PostgreSQL back on the same port."""
        self.stalled = False
        if self._server is None:
            await self.start()

    def stall(self) -> None:
        """Connections hang: bytes are held, new connections get no answer."""
        self.stalled = True

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
        self.stalled = False
        await self.down()

