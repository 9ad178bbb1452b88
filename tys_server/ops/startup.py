"""A failed start-up, told in one line: `tys_server: <what>: <detail>`, never a secret.

systemd shows stderr in the journal and does not restart exit status 2
(RestartPreventExitStatus=2): the line must say what to fix, without a traceback
and without the value of any secret setting (a password, a key, the DSN).
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from tys_server.config import Settings, is_secret

PREFIX = "tys_server: "
_MASK = "***"
# libpq quotes parts of a DSN it cannot parse, the password included.
_INVALID_DSN = "invalid dsn"
# password=... in a key/value DSN, user:password@ in a URI.
_DSN_PASSWORDS = (re.compile(r"password\s*=\s*'((?:[^'\\]|\\.)*)'"),
                  re.compile(r"password\s*=\s*([^\s']+)"),
                  re.compile(r"://[^:/@\s]*:([^@\s]*)@"))
_LOG_TAIL_BYTES = 16_384
# Secret by name (config.is_secret) but a file path: shown, so the operator knows which file.
_PATHS = frozenset({"server.tls_key."})


class StartupError(Exception):
    """Start-up cannot go on: what failed and why, one line for the operator."""

    def __init__(self, what: str, detail: str) -> None:
        super().__init__(f"{what}: {detail}")


def check_writable_dir(key: str, path: Path | str) -> None:
    """The directory exists (made if missing) and takes a new file, else StartupError."""
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".tys-write-check-"):
            pass
    except OSError as exc:
        raise StartupError(f"{key} {path}", exc.strerror or str(exc)) from None


def first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's text (psycopg2 adds hints below it)."""
    for line in str(exc).splitlines():
        if line.strip():
            return line.strip()
    return type(exc).__name__


def failure_line(exc: BaseException, settings: Settings, *, doing: str = "start-up") -> str:
    """The line to print for exc: StartupError as it is, other faults named by their type."""
    if isinstance(exc, StartupError):
        text = str(exc)
    elif isinstance(exc, OSError) and exc.strerror:
        where = f" {exc.filename}" if exc.filename else ""
        text = f"{doing}:{where}: {exc.strerror}" if where else f"{doing}: {exc.strerror}"
    else:
        text = f"{doing} failed: {type(exc).__name__}: {first_line(exc)}"
    return PREFIX + scrub(text, settings)


def scrub(text: str, settings: Settings) -> str:
    """text with every secret setting's value (and the DSN's password) masked."""
    if _INVALID_DSN in text:
        # Whatever libpq quoted may be the password: keep the reason, drop the quote.
        text = (text.split('"', 1)[0].rstrip(" :")
                + " ... (value not shown: database.dsn is a secret)")
    for secret in sorted(secret_values(settings), key=len, reverse=True):
        text = text.replace(secret, _MASK)
    return " ".join(text.split())  # one line, whatever the detail held


def secret_values(settings: Settings) -> set[str]:
    """Every non-empty value of a secret key, and the password inside database.dsn."""
    found: set[str] = set()
    _collect(settings, "", found)
    dsn = settings.database.dsn or ""
    for pattern in _DSN_PASSWORDS:
        found.update(match for match in pattern.findall(dsn) if match)
    return found


def _collect(node: Any, key: str, found: set[str]) -> None:
    if dataclasses.is_dataclass(node):
        for field in dataclasses.fields(node):
            _collect(getattr(node, field.name), f"{key}{field.name}.", found)
    elif key in _PATHS:
        return
    elif isinstance(node, str) and node and is_secret(key):
        found.add(node)
    elif isinstance(node, tuple | list) and is_secret(key):
        found.update(item for item in node if isinstance(item, str) and item)


def embedded_failure(exc: subprocess.SubprocessError, data_dir: Path | str) -> StartupError:
    """pg_ctl could not start the embedded server: what its log said last, and where it is."""
    log_path = Path(data_dir).resolve() / "log"
    why = "pg_ctl timed out" if isinstance(exc, subprocess.TimeoutExpired) else (
        f"pg_ctl exited {getattr(exc, 'returncode', '?')}")
    said = last_words(log_path)
    detail = f"{why}: {said}" if said else why
    return StartupError(f"embedded PostgreSQL in {Path(data_dir).resolve()}",
                        f"{detail} (log: {log_path})")


def last_words(log_path: Path) -> str | None:
    """The server log's last FATAL message, else its last line; None when unreadable."""
    try:
        with log_path.open("rb") as log:
            size = log.seek(0, 2)
            log.seek(max(0, size - _LOG_TAIL_BYTES))
            tail = log.read().decode("utf-8", "replace")
    except OSError:
        return None
    lines = [line.strip() for line in tail.splitlines() if line.strip()]
    fatal = [line for line in lines if "FATAL:" in line]
    if fatal:
        return fatal[-1].split("FATAL:", 1)[1].strip()
    return lines[-1] if lines else None
