"""python -m tests.support.pinned_server ARGS: python -m tys_server ARGS with "now" pinned.

A server in a subprocess reads the machine's clock, which no test can move. This launcher
moves it first: TYS_TEST_NOW (ISO-8601 in UTC, as tests/conftest.py reads it) becomes the
process's time.time() and datetime.now(), ticking on from there (time-machine), before the
server is imported. Monotonic clocks (the event loop's, the feeds' settle) are left alone.
Without TYS_TEST_NOW it is python -m tys_server.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from collections.abc import Mapping

import time_machine

NOW_ENV = "TYS_TEST_NOW"


def pinned_now(environ: Mapping[str, str]) -> dt.datetime | None:
    """TYS_TEST_NOW as an aware UTC time, or None when unset; ValueError when not UTC."""
    text = environ.get(NOW_ENV)
    if not text:
        return None
    now = dt.datetime.fromisoformat(text)
    if now.utcoffset() != dt.timedelta(0):
        raise ValueError(f"{NOW_ENV}={text!r}: give it in UTC (a Z suffix)")
    return now


def main() -> int:
    """Run the server, its clock pinned to TYS_TEST_NOW when set."""
    now = pinned_now(os.environ)
    if now is None:
        from tys_server.server import main as serve
        return serve()
    with time_machine.travel(now, tick=True):
        from tys_server.server import main as serve
        return serve()


if __name__ == "__main__":
    sys.exit(main())
