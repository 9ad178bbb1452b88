"""systemd readiness: READY=1 / STOPPING=1 on $NOTIFY_SOCKET (a few lines of stdlib)."""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)


def notify(message: str, socket_path: str | None = None) -> bool:
    """Send one datagram to systemd; False (and nothing sent) outside systemd."""
    path = socket_path if socket_path is not None else os.environ.get("NOTIFY_SOCKET")
    if not path:
        return False
    if path.startswith("@"):
        path = "\0" + path[1:]  # abstract namespace socket
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(path)
            sock.sendall(message.encode())
    except OSError as exc:
        log.warning("cannot notify systemd: %s", exc)
        return False
    return True
