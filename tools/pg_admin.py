"""Blocking PostgreSQL chores for tools and tests: databases of their own, one-off queries.

psycopg2, autocommit: for set-up, assertions and clean-up, never for the server's path
(that is aiopg, in tys_server.store).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg2
import psycopg2.extensions


@contextlib.contextmanager
def cursor(dsn: str, *, autocommit: bool = True) -> Iterator[Any]:
    """A cursor on a new connection, closed afterwards; else one transaction, committed."""
    conn = psycopg2.connect(dsn)
    try:
        if autocommit:
            conn.autocommit = True  # and no `with conn`: since 2.9 it opens a transaction
            with conn.cursor() as cur:
                yield cur
        else:
            with conn, conn.cursor() as cur:
                yield cur
    finally:
        conn.close()


def query(dsn: str, sql: str, args: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
    """Run one statement (autocommit); its rows, none for a statement without a result."""
    with cursor(dsn) as cur:
        cur.execute(sql, args)
        return cur.fetchall() if cur.description else []


def database_dsn(admin_dsn: str, name: str) -> str:
    """The DSN of database `name` on admin_dsn's server."""
    return psycopg2.extensions.make_dsn(admin_dsn, dbname=name)


def create_database(admin_dsn: str, name: str) -> str:
    """Create database `name` (a name of ours, never user input); returns its DSN."""
    query(admin_dsn, f'CREATE DATABASE "{name}"')
    return database_dsn(admin_dsn, name)


def drop_database(admin_dsn: str, name: str) -> None:
    """Drop database `name` if it exists, whoever is still connected."""
    query(admin_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def empty_tables(dsn: str, tables: Sequence[str]) -> None:
    """TRUNCATE those of `tables` that exist."""
    with cursor(dsn) as cur:
        cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        present = [name for (name,) in cur.fetchall() if name in tables]
        if present:
            cur.execute("TRUNCATE " + ", ".join(present))
