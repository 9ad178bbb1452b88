"""A stream's lines applied a slice per IOLoop turn, with back-pressure on their transfer.

A chunk of the Spaces Firehose (``spaces_firehose``) can complete thousands of lines, and
Tornado's streaming buffer hands over up to a megabyte at once: applied in the callback
that receives them, they would hold every API request queued behind them for tens of
milliseconds. So received lines wait in a ``Backlog``, and a task applies them in order,
``step_lines`` at a time (one call of ``apply``), yielding to the IOLoop once a turn has
run ``turn_s``: a request waits about one turn, however fast the stream comes.

Over ``high_water_bytes`` waiting, the transfer is paused (``TransferCut.pause``) until
the backlog is down to ``low_water_bytes``: memory stays bounded whatever the stream's
rate, and the server's TCP window slows the sender. Applying counts as activity for the
stall clock, so a paused transfer that is being worked off is not cut as stalled.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from tys_server.feeds.lines import Backlog
from tys_server.feeds.transfer import TransferCut

# 64-line steps and 0.3 ms turns (one step a turn) cost 0.15 us a line less in-process,
# but the API reads' p99 during the bench's ingest rose from 10-17 to 16-26 ms, and the
# server's CPU a line did not measurably fall (docs/benchmarks.md).
STEP_LINES = 32  # lines per apply (one read, one sink.ingest): ~0.2 ms on the bench machine
TURN_S = 0.0005  # work per IOLoop turn before yielding
HIGH_WATER_BYTES = 1 << 20  # lines waiting past this: pause the transfer...
LOW_WATER_BYTES = 1 << 18  # ...until they are down to this


class SlicedApplier:
    """Lines → ``apply(lines)`` in order, a slice per loop turn; one transfer at a time.

    Per transfer: ``begin()``, then a task running ``run()``; ``add`` the lines as they
    come; ``finish()`` once the transfer is over (``run`` applies what is left, then
    returns) or ``stop()`` (``run`` returns after the step under way; the rest is dropped).
    """

    def __init__(self, apply: Callable[[list[bytes]], None], transfer: TransferCut, *,
                 step_lines: int = STEP_LINES, turn_s: float = TURN_S,
                 high_water_bytes: int = HIGH_WATER_BYTES,
                 low_water_bytes: int = LOW_WATER_BYTES) -> None:
        self.apply = apply
        self.transfer = transfer
        self.step_lines, self.turn_s = step_lines, turn_s
        self.high_water_bytes, self.low_water_bytes = high_water_bytes, low_water_bytes
        self.backlog = Backlog()
        self.pauses = 0  # times the backlog went over high water (for tests and debugging)
        self._ready = asyncio.Event()  # lines were added, or the transfer is over
        self._finished = True
        self._stopped = False

    def begin(self) -> None:
        """A transfer starts; its lines come next."""
        self._finished = self._stopped = False
        self._ready.clear()

    def add(self, lines: list[bytes]) -> None:
        """Lines to apply after those waiting; over high water, the transfer pauses."""
        if self._stopped or not lines:
            return
        backlog = self.backlog
        backlog.add(lines)
        self._ready.set()
        if backlog.bytes > self.high_water_bytes:
            if not self.transfer.paused:
                self.pauses += 1
            self.transfer.pause()  # every time: Tornado may have unpaused it

    def finish(self) -> None:
        """The transfer is over: no more lines come; ``run`` ends once all are applied."""
        self._finished = True
        self._ready.set()

    def stop(self) -> None:
        """End ``run`` after the step under way; the lines still waiting are dropped."""
        self._stopped = True
        self._ready.set()

    async def run(self) -> None:
        """Apply the backlog, a slice per loop turn, until finished and empty or stopped."""
        backlog = self.backlog
        while not self._stopped:
            if not backlog:
                if self._finished:
                    return
                self._ready.clear()
                await self._ready.wait()
                continue
            turn_ends = time.perf_counter() + self.turn_s
            while backlog and not self._stopped:
                self.apply(backlog.take(self.step_lines))
                if time.perf_counter() >= turn_ends:
                    break
            self.transfer.touch()  # working off the backlog is no stall, even paused
            if backlog.bytes <= self.low_water_bytes:
                self.transfer.resume()
            await asyncio.sleep(0)  # API requests and the transfer run between slices
        backlog.clear()  # the cursor does not cover these: a restart replays them
