"""The server as systemd runs it: a real subprocess, READY=1/STOPPING=1, SIGTERM, exit codes."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CMX_AUTH, TestDatabase, basic
from tests.support.clock import wall_clock_s
from tests.support.procserver import CLASSIC_FILTER, ROOT, ServerProcess, clean_environment

FLOOR = 723413320329068590


@pytest.fixture
def server(db: TestDatabase, workdir: Path) -> Iterator[ServerProcess]:
    """A ready server on the test database; only the shutdown flush writes."""
    running = ServerProcess(workdir, "server", env={
        **CLASSIC_FILTER, "TYS_DATABASE_DSN": db.dsn, "TYS_DATABASE_FLUSH_INTERVAL_S": "3600"})
    try:
        running.wait_for("READY=1")
        yield running
    finally:
        running.close()


def movement(mac: str, x_ft: float, ts_ms: int, move_ft: float) -> dict[str, Any]:
    return {"notificationType": "movement", "deviceId": mac, "floorId": FLOOR,
            "locationCoordinate": {"x": x_ft, "y": 20.0, "unit": "FEET"},
            "moveDistanceInFt": move_ft, "timestamp": ts_ms}


def test_sigterm_flushes_everything_and_exits_0(server: ServerProcess, db: TestDatabase) -> None:
    status, health = server.request("GET", "/healthz")
    assert (status, health["status"]) == (200, "ok")

    # A straight walk: 10 points 50 ft apart, 15 s apart, ending 15 s ago → 8 legs.
    start_ms = int(wall_clock_s() * 1000) - 150_000
    walk = [movement("00:11:22:33:44:55", 10.0 + 50.0 * i, start_ms + 15_000 * i,
                     10000.0 if i == 0 else 50.0) for i in range(10)]
    status, counts = server.request("POST", "/notification", {"notifications": walk},
                                    auth=CMX_AUTH)
    assert (status, counts) == (200, {"accepted": 10, "ignored": 0, "rejected": 0})
    assert db.query("SELECT count(*) FROM distance") == [(0,)]  # nothing flushed yet

    assert server.terminate() == 0, server.log()

    [(mtrs,)] = db.query("SELECT mtrs FROM distance WHERE mac = '00:11:22:33:44:55'")
    assert mtrs == pytest.approx(121.92, abs=1e-3)
    [(day_total,)] = db.query("SELECT sum(mtrs) FROM distance_history")
    assert day_total == pytest.approx(121.92, abs=1e-3)
    assert db.query("SELECT sum(notification_count) FROM count") == [(10,)]
    assert "final flush done" in server.log()


class LoadResult:
    """What a client posting in a loop saw while the server shut down, and what got stored."""

    def __init__(self) -> None:
        self.acknowledged = 0  # notifications in requests answered 200
        self.replies = 0       # requests answered 200
        self.unanswered = 0    # requests sent whose connection closed without a reply
        self.stored = 0        # sum(count.notification_count) after the exit


def sigterm_while_posting(server: ServerProcess, db: TestDatabase) -> LoadResult:
    """Post 5-notification batches on a keep-alive connection; SIGTERM after 50 replies."""
    result = LoadResult()
    enough = threading.Event()

    def post_until_refused() -> None:
        conn = server.connection()
        try:
            for i in range(100_000):
                now_ms = int(wall_clock_s() * 1000)
                batch = [movement(f"02:00:00:00:{i % 256:02x}:{k:02x}", 5.0 * k, now_ms, 50.0)
                         for k in range(5)]
                try:
                    conn.request("POST", "/notification",
                                 body=json.dumps({"notifications": batch}),
                                 headers={"Authorization": basic(CMX_AUTH),
                                          "Content-Type": "application/json"})
                    reply = conn.getresponse()
                    reply.read()
                except (OSError, http.client.HTTPException):
                    # Closed or reset by the shutting-down server: reconnect, or
                    # stop once it no longer listens.
                    result.unanswered += 1
                    conn.close()
                    if server.proc.poll() is not None:
                        return
                    conn = server.connection()
                    try:
                        conn.connect()
                    except OSError:
                        return
                    continue
                if reply.status == 200:
                    result.acknowledged += len(batch)
                    result.replies += 1
                if result.replies >= 50:
                    enough.set()
        finally:
            conn.close()
            enough.set()

    poster = threading.Thread(target=post_until_refused, daemon=True)
    poster.start()
    assert enough.wait(timeout=20), server.log()
    assert server.proc.poll() is None, server.log()
    assert server.terminate() == 0, server.log()
    poster.join(timeout=15)
    assert not poster.is_alive()
    assert result.replies >= 50
    [(result.stored,)] = db.query("SELECT coalesce(sum(notification_count), 0) FROM count")
    return result


def test_sigterm_under_load_loses_no_acknowledged_notification(server: ServerProcess,
                                                               db: TestDatabase) -> None:
    load = sigterm_while_posting(server, db)
    assert load.stored >= load.acknowledged
    # At most the batches whose reply never came can have been applied on top.
    assert load.stored - load.acknowledged <= 5 * load.unanswered


def test_sigterm_under_load_counts_exactly_the_acknowledged(server: ServerProcess,
                                                            db: TestDatabase) -> None:
    load = sigterm_while_posting(server, db)
    assert load.stored == load.acknowledged


@pytest.mark.parametrize("setting", ["environment", "yaml"])
def test_config_error_exits_2_with_one_line_naming_the_key(setting: str, workdir: Path) -> None:
    if setting == "environment":
        config, env = "conf/tys.yaml", clean_environment(TYS_SERVER_PORT="abc")
        key = "TYS_SERVER_PORT"
    else:
        bad = workdir / "tys.yaml"
        bad.write_text("server:\n  port: 8080\n  colour: blue\n")
        config, env, key = str(bad), clean_environment(), "server.colour"
    result = subprocess.run([sys.executable, "-m", "tys_server", "--config", config],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=30,
                            check=False)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert key in lines[0]
