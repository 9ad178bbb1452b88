"""The server as systemd runs it: a real subprocess, READY=1/STOPPING=1, SIGTERM, exit codes."""

from __future__ import annotations

import base64
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CMX_AUTH, TestDatabase

ROOT = Path(__file__).resolve().parents[2]
FLOOR = 723413320329068590
STARTUP_TIMEOUT_S = 30.0
AUTH_HEADER = "Basic " + base64.b64encode(":".join(CMX_AUTH).encode()).decode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(**extra: str) -> dict[str, str]:
    """This environment without any TYS_* setting of the developer's, plus extra."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TYS_")}
    env.pop("NOTIFY_SOCKET", None)
    env.update(extra)
    return env


class Server:
    """python -m tys_server in a subprocess, with a notify socket of ours."""

    def __init__(self, db: TestDatabase, workdir: Path) -> None:
        self.port = free_port()
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(str(workdir / "notify"))
        self.log_path = workdir / "server.log"
        env = server_env(TYS_DATABASE_DSN=db.dsn,
                         TYS_DATABASE_FLUSH_INTERVAL_S="3600",  # only the shutdown flush writes
                         NOTIFY_SOCKET=str(workdir / "notify"))
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tys_server", "--config", "conf/tys.yaml",
                 "--port", str(self.port)],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def expect_notify(self, message: str, timeout_s: float = STARTUP_TIMEOUT_S) -> None:
        """Block until the server sends `message` on the notify socket (or fail)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.notify.settimeout(0.5)  # wake up now and then to see whether it died
            try:
                got = self.notify.recv(4096).decode()
            except TimeoutError:
                if self.proc.poll() is not None:
                    pytest.fail(f"server exited {self.proc.returncode} before {message}:\n"
                                + self.log())
                continue
            assert got == message, f"expected {message!r}, got {got!r}"
            return
        pytest.fail(f"no {message} within {timeout_s} s:\n" + self.log())

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            payload = json.dumps(body).encode() if body is not None else None
            conn.request(method, path, body=payload, headers={
                "Authorization": AUTH_HEADER, "Content-Type": "application/json"})
            reply = conn.getresponse()
            return reply.status, json.loads(reply.read())
        finally:
            conn.close()

    def terminate(self) -> int:
        """SIGTERM, expect STOPPING=1, and return the exit status."""
        self.proc.send_signal(signal.SIGTERM)
        self.expect_notify("STOPPING=1")
        return self.proc.wait(timeout=30)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.notify.close()


@pytest.fixture
def workdir() -> Iterator[Path]:
    # Short: a Unix socket path must fit in 108 bytes (pytest's tmp_path may not).
    with tempfile.TemporaryDirectory(prefix="tys-") as path:
        yield Path(path)


@pytest.fixture
def server(db: TestDatabase, workdir: Path) -> Iterator[Server]:
    running = Server(db, workdir)
    try:
        running.expect_notify("READY=1")
        yield running
    finally:
        running.close()


def movement(mac: str, x_ft: float, ts_ms: int, move_ft: float) -> dict[str, Any]:
    return {"notificationType": "movement", "deviceId": mac, "floorId": FLOOR,
            "locationCoordinate": {"x": x_ft, "y": 20.0, "unit": "FEET"},
            "moveDistanceInFt": move_ft, "timestamp": ts_ms}


def test_sigterm_flushes_everything_and_exits_0(server: Server, db: TestDatabase) -> None:
    status, health = server.request("GET", "/healthz")
    assert (status, health["status"]) == (200, "ok")

    # A straight walk: 10 points 50 ft apart, 15 s apart, ending 15 s ago → 8 legs.
    start_ms = int(time.time() * 1000) - 150_000
    walk = [movement("00:11:22:33:44:55", 10.0 + 50.0 * i, start_ms + 15_000 * i,
                     10000.0 if i == 0 else 50.0) for i in range(10)]
    status, counts = server.request("POST", "/notification", {"notifications": walk})
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


def sigterm_while_posting(server: Server, db: TestDatabase) -> LoadResult:
    """Post 5-notification batches on a keep-alive connection; SIGTERM after 50 replies."""
    result = LoadResult()
    enough = threading.Event()

    def post_until_refused() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        try:
            for i in range(100_000):
                now_ms = int(time.time() * 1000)
                batch = [movement(f"02:00:00:00:{i % 256:02x}:{k:02x}", 5.0 * k, now_ms, 50.0)
                         for k in range(5)]
                try:
                    conn.request("POST", "/notification",
                                 body=json.dumps({"notifications": batch}),
                                 headers={"Authorization": AUTH_HEADER,
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
                    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
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


def test_sigterm_under_load_loses_no_acknowledged_notification(server: Server,
                                                               db: TestDatabase) -> None:
    load = sigterm_while_posting(server, db)
    assert load.stored >= load.acknowledged
    # At most the batches whose reply never came can have been applied on top.
    assert load.stored - load.acknowledged <= 5 * load.unanswered


def test_sigterm_under_load_counts_exactly_the_acknowledged(server: Server,
                                                            db: TestDatabase) -> None:
    load = sigterm_while_posting(server, db)
    assert load.stored == load.acknowledged


@pytest.mark.parametrize("setting", ["environment", "yaml"])
def test_config_error_exits_2_with_one_line_naming_the_key(setting: str, workdir: Path) -> None:
    if setting == "environment":
        config, env, key = "conf/tys.yaml", server_env(TYS_SERVER_PORT="abc"), "TYS_SERVER_PORT"
    else:
        bad = workdir / "tys.yaml"
        bad.write_text("server:\n  port: 8080\n  colour: blue\n")
        config, env, key = str(bad), server_env(), "server.colour"
    result = subprocess.run([sys.executable, "-m", "tys_server", "--config", config],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=30,
                            check=False)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert key in lines[0]
