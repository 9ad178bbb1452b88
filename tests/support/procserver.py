"""python -m tys_server as a real subprocess, as systemd runs it (SIGTERM, kill -9, restart).

free_port and clean_environment are the bench's (tools/bench_env.py): one of each.
Readiness is the READY=1 datagram on a notify socket of ours, as under systemd;
requests go through http.client, so nothing here shares the test's event loop.
"""

from __future__ import annotations

import http.client
import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.conftest import basic
from tools.bench_env import clean_environment, free_port

ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_S = 30.0
# For server processes of tests whose reference is DESIGN 6's arithmetic (the classic
# tracking.advance), as tests/conftest.py's settings fixture pins it in process; the
# shipped default, tracking.filter: adaptive, credits a stopped walker's last leg too.
CLASSIC_FILTER = {"TYS_TRACKING_FILTER": "classic"}


class ServerProcess:
    """One server process on a free port; `name` keeps the files of restarts apart.

    module: what runs it, python -m tys_server, or tests.support.pinned_server for a
    server whose clock TYS_TEST_NOW pins.
    """

    def __init__(self, workdir: Path, name: str, *, env: dict[str, str],
                 config: str = "conf/tys.yaml", module: str = "tys_server") -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / f"{name}.log"
        notify_path = workdir / f"{name}.sock"  # short: a socket path fits in 108 bytes
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(str(notify_path))
        full_env = clean_environment(NOTIFY_SOCKET=str(notify_path), **env)
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", module, "--config", config,
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
                headers["Authorization"] = basic(auth)
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
