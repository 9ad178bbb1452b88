"""python -m tys_server as a real subprocess, for fault tests (SIGTERM, kill -9, restart).

Readiness is the READY=1 datagram on a notify socket of ours, as under systemd;
requests go through http.client, so nothing here shares the test's event loop.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_S = 30.0


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def basic_header(pair: tuple[str, str]) -> str:
    """Authorization header value of a Basic pair."""
    return "Basic " + base64.b64encode(":".join(pair).encode()).decode()


def clean_environment(**extra: str) -> dict[str, str]:
    """os.environ without the developer's TYS_* settings or NOTIFY_SOCKET, plus extra."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TYS_")}
    env.pop("NOTIFY_SOCKET", None)
    env.update(extra)
    return env


class ServerProcess:
    """One server process on a free port; `name` keeps the files of restarts apart."""

    def __init__(self, workdir: Path, name: str, *, env: dict[str, str],
                 config: str = "conf/tys.yaml") -> None:
        self.port = free_port()
        self.log_path = workdir / f"{name}.log"
        notify_path = workdir / f"{name}.sock"  # short: a socket path fits in 108 bytes
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(str(notify_path))
        full_env = clean_environment(NOTIFY_SOCKET=str(notify_path), **env)
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tys_server", "--config", config,
                 "--port", str(self.port)],
                cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT)

    def log(self) -> str:
        """Everything the server wrote so far."""
        return self.log_path.read_text(errors="replace")

    def wait_for(self, message: str, timeout_s: float = STARTUP_TIMEOUT_S) -> None:
        """Block until the server sends `message` (READY=1, STOPPING=1) on the notify socket."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.notify.settimeout(0.25)  # wake now and then to notice an early exit
            try:
                got = self.notify.recv(4096).decode()
            except TimeoutError:
                if self.proc.poll() is not None:
                    raise AssertionError(f"server exited {self.proc.returncode} before "
                                         f"{message}:\n{self.log()}") from None
                continue
            if got == message:
                return
        raise AssertionError(f"no {message} within {timeout_s} s:\n{self.log()}")

    def connection(self, timeout_s: float = 10.0) -> http.client.HTTPConnection:
        """A keep-alive connection to the server."""
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout_s)

    def request(self, method: str, path: str, body: Any = None, *,
                auth: tuple[str, str] | None = None) -> tuple[int, Any]:
        """One request on a fresh connection: (status, decoded JSON body)."""
        conn = self.connection()
        try:
            headers = {"Content-Type": "application/json"}
            if auth is not None:
                headers["Authorization"] = basic_header(auth)
            payload = json.dumps(body).encode() if body is not None else None
            conn.request(method, path, body=payload, headers=headers)
            reply = conn.getresponse()
            return reply.status, json.loads(reply.read())
        finally:
            conn.close()

    def terminate(self, timeout_s: float = 30.0) -> int:
        """SIGTERM, STOPPING=1, and the exit status once the process is gone."""
        self.proc.send_signal(signal.SIGTERM)
        self.wait_for("STOPPING=1")
        return self.proc.wait(timeout=timeout_s)

    def kill(self) -> None:
        """kill -9: no drain, no final flush."""
        self.proc.kill()
        self.proc.wait(timeout=10)

    def close(self) -> None:
        """Make sure nothing is left running."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.notify.close()
