"""Every failure to start is one line on stderr and exit status 2, and nothing is left running.

`python -m tys_server` as systemd runs it (systemd/tys-server.service does not restart
exit status 2). Each case checks the exit status, that stderr is exactly one line
`tys_server: <what>: <detail>` naming the problem (logging at WARNING, so start-up's
INFO lines stay out of it), no traceback, and no secret. The embedded PostgreSQL cases
also check that no postgres process of that data directory survives the exit.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from psycopg2.extensions import make_dsn

from tests.conftest import TestDatabase
from tests.support.procserver import ROOT, STARTUP_TIMEOUT_S, clean_environment, free_port
from tools import pg_admin
from tys_server.store.embedded import EmbeddedPostgres

DSN_PASSWORD = "dsn-s3cret-4711"


def start(workdir: Path, *, config: str = "conf/tys.yaml", port: int | None = None,
          **env: str) -> subprocess.CompletedProcess[str]:
    """Run the server until it exits (every case here must make it exit)."""
    argv = [sys.executable, "-m", "tys_server", "--config", config,
            "--port", str(port if port is not None else free_port())]
    environ = clean_environment(**{"TYS_LOGGING_LEVEL": "WARNING",
                                   "TYS_DATABASE_EMBEDDED_DIR": str(workdir / "pgdata"),
                                   "TYS_DATABASE_SPILL_DIR": str(workdir / "spill"), **env})
    return subprocess.run(argv, cwd=ROOT, env=environ, capture_output=True, text=True,
                          timeout=4 * STARTUP_TIMEOUT_S, check=False)


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    """The single stderr line of a failed start (asserting exit 2 and nothing else said)."""
    assert result.returncode == 2, result
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("tys_server: "), lines[0]
    return lines[0]


def postgres_processes(data_dir: Path) -> list[psutil.Process]:
    """Running postgres processes started on data_dir."""
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if proc.info["name"] == "postgres" and str(data_dir.resolve()) in cmdline:
            found.append(proc)
    return found


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port something else already listens on."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield other.getsockname()[1]


@pytest.fixture
def scratch_database(postgres: TestDatabase) -> Iterator[str]:
    """A database of its own (a schema case may break it); its name."""
    name = f"tys_startup_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    pg_admin.create_database(postgres.admin_dsn, name)
    yield name
    pg_admin.drop_database(postgres.admin_dsn, name)


# -- configuration ---------------------------------------------------------------------


def test_bad_ip2mac_url_is_one_line_and_exit_2(workdir: Path) -> None:
    line = one_line(start(workdir, TYS_CMX_IP2MAC_URL="https://{host}/clients?ip={address}"))
    assert line.startswith("tys_server: configuration error: cmx.ip2mac_url: ")
    assert not (workdir / "pgdata").exists()  # nothing was started


def test_yaml_syntax_error_is_one_line_naming_the_file(workdir: Path) -> None:
    config = workdir / "tys.yaml"
    config.write_text("server:\n  port: [8080\nauth:\n  api: {password: x}\n")
    line = one_line(start(workdir, config=str(config)))
    assert line.startswith(f"tys_server: configuration error: config file {config} is not "
                           "valid YAML")


# -- files -----------------------------------------------------------------------------


def test_missing_tls_file_stops_start_up_before_the_database(workdir: Path) -> None:
    cert = workdir / "cert.pem"
    cert.write_text("not used")
    missing = workdir / "missing-key.pem"
    line = one_line(start(workdir, TYS_SERVER_TLS_CERT=str(cert),
                          TYS_SERVER_TLS_KEY=str(missing)))
    assert line == (f"tys_server: TLS: cannot read server.tls_key {missing}: "
                    "No such file or directory")
    assert not (workdir / "pgdata").exists()  # the embedded database was never started


def test_tls_files_that_are_no_certificate_and_key_are_one_line(workdir: Path) -> None:
    cert, key = workdir / "cert.pem", workdir / "key.pem"
    cert.write_text("-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")
    key.write_text("nope\n")
    line = one_line(start(workdir, TYS_SERVER_TLS_CERT=str(cert), TYS_SERVER_TLS_KEY=str(key)))
    assert line.startswith(f"tys_server: TLS: server.tls_cert {cert} with server.tls_key {key}:"
                           " not a PEM certificate and its key")
    assert not (workdir / "pgdata").exists()


def test_unwritable_spill_dir_stops_start_up_before_the_database(workdir: Path) -> None:
    blocker = workdir / "a-file"
    blocker.write_text("")
    spill_dir = blocker / "spill"
    line = one_line(start(workdir, TYS_DATABASE_SPILL_DIR=str(spill_dir)))
    assert line == f"tys_server: database.spill_dir {spill_dir}: Not a directory"
    assert not (workdir / "pgdata").exists()


def test_log_file_that_cannot_be_opened_is_one_line(workdir: Path) -> None:
    log_file = workdir / "no-such-dir" / "tys.log"
    line = one_line(start(workdir, TYS_LOGGING_FILE=str(log_file)))
    assert line == f"tys_server: logging.file {log_file}: No such file or directory"
    assert not (workdir / "pgdata").exists()


# -- the database ----------------------------------------------------------------------


@pytest.mark.parametrize("dsn", [
    pytest.param(f"host=127.0.0.1 port={free_port()} user=tys password={DSN_PASSWORD} "
                 "connect_timeout=2", id="nothing_listens"),
    pytest.param(f"postgresql://tys:{DSN_PASSWORD}@[::1/tys", id="unreadable_uri"),
    pytest.param(f"host=127.0.0.1 password {DSN_PASSWORD}", id="unreadable_key_values"),
])
def test_unreachable_database_is_one_line_without_the_dsn_password(workdir: Path,
                                                                   dsn: str) -> None:
    line = one_line(start(workdir, TYS_DATABASE_DSN=dsn))
    assert line.startswith("tys_server: database: ")
    assert "connect" in line or "invalid dsn" in line, line
    assert DSN_PASSWORD not in line


@pytest.mark.db
def test_table_with_a_conflicting_definition_is_one_line(workdir: Path, postgres: TestDatabase,
                                                         scratch_database: str) -> None:
    dsn = pg_admin.database_dsn(postgres.admin_dsn, scratch_database)
    with pg_admin.cursor(dsn) as cur:
        cur.execute("CREATE TABLE users (email text PRIMARY KEY)")  # no nickname column
    line = one_line(start(workdir, TYS_DATABASE_DSN=dsn))
    assert line == 'tys_server: database: column "nickname" does not exist'


@pytest.mark.db
def test_database_the_role_cannot_write_is_one_line(workdir: Path, postgres: TestDatabase,
                                                    scratch_database: str) -> None:
    role = f"tys_reader_{uuid.uuid4().hex[:8]}"
    admin = pg_admin.database_dsn(postgres.admin_dsn, scratch_database)
    with pg_admin.cursor(admin) as cur:
        cur.execute(f"CREATE ROLE {role} LOGIN")  # owns nothing, may create nothing
        cur.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    try:
        line = one_line(start(workdir, TYS_DATABASE_DSN=make_dsn(admin, user=role)))
        assert line == "tys_server: database: permission denied for schema public"
    finally:
        with pg_admin.cursor(postgres.admin_dsn) as cur:
            cur.execute(f"DROP ROLE {role}")


@pytest.mark.db
def test_port_in_use_is_one_line(workdir: Path, db: TestDatabase, busy_port: int) -> None:
    line = one_line(start(workdir, port=busy_port, TYS_DATABASE_DSN=db.dsn))
    assert line == f"tys_server: cannot listen on 127.0.0.1:{busy_port}: Address already in use"


# -- the embedded database is stopped on every exit path --------------------------------


@pytest.mark.slow
def test_port_in_use_stops_the_embedded_database(workdir: Path, busy_port: int) -> None:
    data_dir = workdir / "pgdata"
    line = one_line(start(workdir, port=busy_port))
    assert line == f"tys_server: cannot listen on 127.0.0.1:{busy_port}: Address already in use"
    assert (data_dir / "PG_VERSION").exists()  # it was started, schema and all
    assert postgres_processes(data_dir) == []
    assert not (data_dir / "postmaster.pid").exists()


@pytest.mark.slow
def test_schema_error_stops_the_embedded_database(workdir: Path) -> None:
    data_dir = workdir / "pgdata"
    embedded = EmbeddedPostgres(data_dir)
    embedded.start()
    try:
        embedded.ensure_database()
        with pg_admin.cursor(embedded.dsn()) as cur:
            cur.execute("CREATE TABLE devices (mac text PRIMARY KEY)")  # no owner column
    finally:
        embedded.stop()
    assert postgres_processes(data_dir) == []
    line = one_line(start(workdir))
    assert line == 'tys_server: database: column "owner" does not exist'
    assert postgres_processes(data_dir) == []
    assert not (data_dir / "postmaster.pid").exists()


@pytest.mark.slow
def test_embedded_database_that_cannot_start_is_one_line_naming_its_log(workdir: Path) -> None:
    data_dir = workdir / "pgdata"
    data_dir.mkdir()
    (data_dir / "PG_VERSION").write_text("18\n")  # looks initialised, holds nothing
    line = one_line(start(workdir))
    log_path = data_dir.resolve() / "log"
    assert line.startswith(f"tys_server: embedded PostgreSQL in {data_dir.resolve()}: "
                           "pg_ctl exited 1: ")
    assert line.endswith(f"(log: {log_path})")
    assert "postgresql.conf" in line  # what the server's log said
    assert postgres_processes(data_dir) == []
