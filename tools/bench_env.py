"""The benchmark's surroundings: PostgreSQL, seeded users, server subprocesses, the machine."""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2
import psycopg2.extensions

from tools import pg_admin
from tools.cmx_sim.load import load_mac
from tys_server.store.database import sql_text

ROOT = Path(__file__).resolve().parents[1]
CMX_AUTH = ("cmx", "change-me-cmx")          # conf/tys.yaml's pairs
API_AUTH = ("frontend", "change-me-api")
EMAIL_DOMAIN = "cmxtrackyoursteps.com"
START_TIMEOUT_S = 60.0
QUIESCE_TIMEOUT_S = 120.0  # Postgres.quiesce: at most this long, then the row runs anyway
QUIESCE_POLL_S = 0.5


class Postgres:
    """Where the bench's databases live: an embedded server in a temp dir, or --dsn's."""

    def __init__(self, admin_dsn: str | None, workdir: Path) -> None:
        self.embedded: Any = None
        if admin_dsn is None:
            from tys_server.store.embedded import EmbeddedPostgres

            self.embedded = EmbeddedPostgres(workdir / "pgdata")
            self.embedded.start()
            admin_dsn = self.embedded.dsn("postgres")
        self.admin_dsn = admin_dsn
        self.created: list[str] = []

    def create_database(self, purpose: str) -> str:
        """A fresh database of this run; returns its DSN."""
        name = f"tys_bench_{purpose}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        self.created.append(name)
        return pg_admin.create_database(self.admin_dsn, name)

    def drop(self, dsn: str) -> None:
        """Drop a database of this run that no row needs any more (its DSN)."""
        name = psycopg2.extensions.parse_dsn(dsn)["dbname"]
        pg_admin.drop_database(self.admin_dsn, name)
        self.created.remove(name)

    def quiesce(self, timeout_s: float = QUIESCE_TIMEOUT_S) -> dict[str, Any]:
        """Wait (up to timeout_s) until no autovacuum worker and no query of this run's
        databases is running, then CHECKPOINT: the next row starts on a PostgreSQL at rest,
        not beside the vacuum and checkpoint of the rows before it. What it waited."""
        started = time.monotonic()
        busy = -1
        while time.monotonic() - started < timeout_s:
            [(busy,)] = pg_admin.query(
                self.admin_dsn,
                "SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND "
                "(backend_type = 'autovacuum worker' OR "
                "(state = 'active' AND datname = ANY(%s)))", (self.created,))
            if not busy:
                break
            time.sleep(QUIESCE_POLL_S)
        with contextlib.suppress(psycopg2.Error), pg_admin.cursor(self.admin_dsn) as cur:
            cur.execute("CHECKPOINT")  # a superuser's (or pg_checkpoint's); else skipped
        return {"waited_s": round(time.monotonic() - started, 1), "busy_at_end": busy}

    def version(self) -> str:
        """PostgreSQL's server_version."""
        [(version,)] = pg_admin.query(self.admin_dsn, "SHOW server_version")
        return str(version)

    def close(self) -> None:
        """Drop every database of this run; stop the embedded server."""
        for name in self.created:
            with contextlib.suppress(psycopg2.Error):
                pg_admin.drop_database(self.admin_dsn, name)
        if self.embedded is not None:
            self.embedded.stop()


@contextlib.contextmanager
def postgres(admin_dsn: str | None) -> Iterator[Postgres]:
    """A Postgres for the run, cleaned up afterwards (with its temp dir)."""
    workdir = Path(tempfile.mkdtemp(prefix="tys-bench-"))
    pg = None
    try:
        pg = Postgres(admin_dsn, workdir)
        yield pg
    finally:
        if pg is not None:
            pg.close()
        shutil.rmtree(workdir, ignore_errors=True)


def apply_schema(dsn: str, *, unlogged: bool = False) -> None:
    """The server's own schema files, applied before the server starts."""
    with pg_admin.cursor(dsn, autocommit=False) as cur:
        cur.execute(sql_text("schema.sql"))
        cur.execute(sql_text("unlogged.sql" if unlogged else "logged.sql"))


def username(index: int) -> str:
    """The index-th registered user of the bench."""
    return f"bench{index}"


def seed_users(dsn: str, users: int, days: int = 5) -> None:
    """users registered users, each owning load_mac(i), with a total and `days` day rows."""
    macs = [load_mac(i) for i in range(users)]
    names = [username(i) for i in range(users)]
    emails = [f"{name}@{EMAIL_DOMAIN}" for name in names]
    with pg_admin.cursor(dsn, autocommit=False) as cur:
        cur.execute("INSERT INTO users (email, nickname, admin) "
                    "SELECT e, n, false FROM unnest(%s::text[], %s::text[]) AS r(e, n)",
                    (emails, names))
        cur.execute("INSERT INTO devices (mac, owner) "
                    "SELECT m, e FROM unnest(%s::macaddr[], %s::text[]) AS r(m, e)",
                    (macs, emails))
        cur.execute("INSERT INTO distance (mac, mtrs, time) "
                    "SELECT m, (random() * 20000)::real, now() - interval '1 hour' "
                    "FROM unnest(%s::macaddr[]) AS m", (macs,))
        cur.execute("INSERT INTO distance_history (time, mac, mtrs) "
                    "SELECT date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
                    " - d * interval '1 day', m, (random() * 5000)::real "
                    "FROM unnest(%s::macaddr[]) AS m, generate_series(0, %s - 1) AS d",
                    (macs, days))


def seed_teams(dsn: str, teams: int) -> None:
    """seed_users' user i joins "Team <i % teams>" (the team board row, DESIGN 15)."""
    with pg_admin.cursor(dsn, autocommit=False) as cur:
        cur.execute("UPDATE users SET team = 'Team ' || (substr(nickname, 6)::int %% %s), "
                    "team_since = now() WHERE nickname LIKE 'bench%%'", (teams,))


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_environment(**extra: str) -> dict[str, str]:
    """os.environ without the developer's TYS_* settings or NOTIFY_SOCKET, plus extra."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TYS_")}
    env.pop("NOTIFY_SOCKET", None)
    env.update(extra)
    return env


class Process:
    """An HTTP server in a subprocess of ours: started, polled until it answers, stopped."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_path: Path,
                 ready_path: str) -> None:
        self.name = name
        self.port = int(argv[argv.index("--port") + 1])
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        with log_path.open("wb") as log:
            self.proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log,
                                         stderr=subprocess.STDOUT)
        self._wait_ready(ready_path)

    def _wait_ready(self, path: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited {self.proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.base_url + path, timeout=2):
                    return
            except urllib.error.HTTPError:
                return  # it answers (GET on a POST route: 405)
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not answer within {START_TIMEOUT_S} s")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def cpu_s(self) -> float:
        """CPU seconds (user + system) the process has used so far."""
        with open(f"/proc/{self.pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        """SIGTERM, then wait (TYS flushes on the way out)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_tys(dsn: str, workdir: Path, env: dict[str, str] | None = None) -> Process:
    """python -m tys_server with the shipped config (and env's TYS_* overrides) on dsn."""
    port = free_port()
    env = clean_environment(TYS_DATABASE_DSN=dsn, **(env or {}))
    argv = [sys.executable, "-m", "tys_server", "--config", "conf/tys.yaml", "--port", str(port)]
    return Process("tys", argv, env, workdir / "tys.log", "/healthz")


def start_reference(replies_path: Path, workdir: Path, *, bare: bool = False) -> Process:
    """The reference Tornado app, answering the given fixed /live/ replies.

    With TYS's HTTP server settings, or (bare) with Tornado's defaults.
    """
    name = "bare" if bare else "reference"
    port = free_port()
    argv = [sys.executable, "-m", "tools.bench_reference", "--port", str(port),
            "--replies", str(replies_path), *(["--bare"] if bare else [])]
    return Process(name, argv, clean_environment(), workdir / f"{name}.log", "/notification")


def busy_cores_s() -> float:
    """CPU seconds the whole machine has spent busy (all processes), from /proc/stat."""
    with open("/proc/stat", encoding="ascii") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def machine(pg_version: str) -> dict[str, Any]:
    """What the figures were measured on."""
    import tornado

    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory_gib = 0.0
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_gib = int(line.split()[1]) / 1024 / 1024
    return {
        "cores": os.cpu_count(), "cpu": cpu, "memory_gib": round(memory_gib, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(), "tornado": tornado.version,
        "postgresql": pg_version,
    }
