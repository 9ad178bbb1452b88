"""Waiting for the stop signal of a fake served from the command line."""

from __future__ import annotations

import asyncio
import signal


async def until_stopped() -> None:
    """Return on SIGTERM or SIGINT; the handlers are removed again either way."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
