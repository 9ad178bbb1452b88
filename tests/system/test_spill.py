"""A shutdown with PostgreSQL down, against a real server process: the spill file.

The database is cut through tests.support.pgproxy (on a thread of its own); notifications
are accepted meanwhile; SIGTERM; the final flush fails and the state goes to the spill
file; the database comes back; the next start writes everything and removes the file.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import API_AUTH, CMX_AUTH, TestDatabase
from tests.support.clock import wall_clock_s
from tests.support.procserver import CLASSIC_FILTER, ServerProcess
from tests.system.test_faults_process import (
    ThreadedProxy,
    notification,
    reference_m,
    stored_notifications,
)
from tys_server.store.spill import FILE_NAME

pytestmark = pytest.mark.slow

MACS = ("02:5b:00:00:00:01", "02:5b:00:00:00:02", "02:5b:00:00:00:03")


def post_walk(server: ServerProcess, points: range, base_ms: int) -> None:
    body = {"notifications": [notification(mac, k, base_ms, phase)
                              for k in points for phase, mac in enumerate(MACS)]}
    assert server.request("POST", "/notification", body, auth=CMX_AUTH) == \
        (200, {"accepted": len(body["notifications"]), "ignored": 0, "rejected": 0})


def test_sigterm_with_the_database_down_loses_nothing(db: TestDatabase, workdir: Path) -> None:
    spill_dir = workdir / "spill"
    proxy = ThreadedProxy(db.dsn)
    env = {**CLASSIC_FILTER,
           "TYS_DATABASE_FLUSH_INTERVAL_S": "3600", "TYS_DATABASE_CONNECT_TIMEOUT_S": "1",
           "TYS_DATABASE_STATEMENT_TIMEOUT_S": "1", "TYS_DATABASE_SPILL_DIR": str(spill_dir)}
    first = ServerProcess(workdir, "first", env={
        **env, "TYS_DATABASE_DSN": proxy.proxy.proxied_dsn()})
    second: ServerProcess | None = None
    base_ms = int(wall_clock_s() * 1000) - 3600 * 1000
    try:
        first.wait_for("READY=1")
        status, _ = first.request("POST", "/live/register_username",
                                  {"username": "Alice", "ip": "10.0.0.9"}, auth=API_AUTH)
        assert status == 201
        post_walk(first, range(0, 12), base_ms)
        proxy.call(proxy.proxy.down())
        post_walk(first, range(12, 30), base_ms)  # accepted while PostgreSQL is gone

        assert first.terminate() == 0, first.log()  # nothing lost: spilled
        assert "unflushed rows" in first.log()
        assert (spill_dir / FILE_NAME).exists()
        assert db.query("SELECT count(*) FROM distance") == [(0,)]

        proxy.call(proxy.proxy.up())
        second = ServerProcess(workdir, "second", env={**env, "TYS_DATABASE_DSN": db.dsn})
        second.wait_for("READY=1")  # the spill is written before the server is ready
        assert not (spill_dir / FILE_NAME).exists()
        assert second.terminate() == 0, second.log()
    finally:
        first.close()
        if second is not None:
            second.close()
        proxy.close()
    rows = dict(db.query("SELECT mac::text, mtrs FROM distance"))
    days = dict(db.query("SELECT mac::text, sum(mtrs) FROM distance_history GROUP BY mac"))
    expected = {mac: reference_m(range(30), base_ms, phase) for phase, mac in enumerate(MACS)}
    assert rows == pytest.approx(expected, rel=1e-6)
    assert days == pytest.approx(expected, rel=1e-6)
    assert stored_notifications(db) == 30 * len(MACS)
    assert db.query("SELECT nickname FROM users") == [("Alice",)]


def test_a_corrupt_spill_file_stops_start_up_in_one_line(db: TestDatabase,
                                                         workdir: Path) -> None:
    spill_dir = workdir / "spill"
    spill_dir.mkdir()
    (spill_dir / FILE_NAME).write_bytes(b'{"format": "tys-spill", "version": 1, "tracks": [')
    server = ServerProcess(workdir, "corrupt", env={
        "TYS_DATABASE_DSN": db.dsn, "TYS_DATABASE_SPILL_DIR": str(spill_dir)})
    try:
        assert server.proc.wait(timeout=30) == 2
    finally:
        server.close()
    lines = [line for line in server.log().splitlines() if FILE_NAME in line]
    assert len(lines) == 1 and "unusable" in lines[0], server.log()
    assert "Traceback" not in server.log()
    assert (spill_dir / FILE_NAME).exists()
