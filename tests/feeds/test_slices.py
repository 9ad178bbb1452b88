"""Lines applied a slice per loop turn (feeds/slices.py), alone and inside the consumer."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop

from tests.support.clock import Clock
from tools.cmx_sim import fake_firehose
from tys_server.core.events import Batch, Fix
from tys_server.feeds.lines import Backlog
from tys_server.feeds.slices import SlicedApplier
from tys_server.feeds.spaces_firehose import FirehoseConsumer, FirehoseOptions

NOW_S = 1_800_000_000.0
T0_MS = int(NOW_S * 1000) - 600_000
gen_test = pytest.mark.gen_test(timeout=20)  # a hang guard, never a duration bound


class FakeTransfer:
    """What the applier asks of the transfer, recorded with the backlog's bytes then."""

    def __init__(self) -> None:
        self.paused = False
        self.calls: list[tuple[str, int]] = []
        self.backlog: Backlog | None = None

    def touch(self) -> None:
        pass

    def pause(self) -> None:
        self.paused = True
        self.calls.append(("pause", self.backlog.bytes if self.backlog else -1))

    def resume(self) -> None:
        if self.paused:
            self.paused = False
            self.calls.append(("resume", self.backlog.bytes if self.backlog else -1))


def numbered(first: int, count: int) -> list[bytes]:
    """Lines b"0000\\n" ... of 4 digits: 5 bytes each with the newline (as LineSplitter's)."""
    return [b"%04d\n" % i for i in range(first, first + count)]


def sliced(applied: list[list[bytes]], **options: float) -> tuple[SlicedApplier, FakeTransfer]:
    transfer = FakeTransfer()
    applier = SlicedApplier(applied.append, transfer, **options)  # type: ignore[arg-type]
    transfer.backlog = applier.backlog
    return applier, transfer


@gen_test
async def test_a_big_chunk_is_applied_in_slices_with_the_loop_turning_between() -> None:
    applied: list[list[bytes]] = []
    applier, _ = sliced(applied, step_lines=10, turn_s=0.0)
    seen_by_callback: list[int] = []

    def apply(lines: list[bytes]) -> None:
        applied.append(lines)
        if len(applied) == 1:  # scheduled while the chunk is being applied
            asyncio.get_running_loop().call_soon(
                lambda: seen_by_callback.append(sum(map(len, applied))))

    applier.apply = apply
    applier.begin()
    run = asyncio.ensure_future(applier.run())
    applier.add(numbered(0, 100))
    applier.finish()
    await run
    assert seen_by_callback == [10]  # it ran after the first slice, 90 lines before the end
    assert [len(step) for step in applied] == [10] * 10
    assert [line for step in applied for line in step] == numbered(0, 100)


@gen_test
async def test_lines_arriving_while_slices_run_keep_their_order() -> None:
    applied: list[list[bytes]] = []
    applier, _ = sliced(applied, step_lines=7, turn_s=0.0)
    chunks = [numbered(first, 25) for first in range(25, 200, 25)]

    def apply(lines: list[bytes]) -> None:
        applied.append(lines)
        if chunks:  # the next chunk arrives between two slices
            asyncio.get_running_loop().call_soon(applier.add, chunks.pop(0))
        elif len(applied) > 1 and not applier.backlog:
            applier.finish()

    applier.apply = apply
    applier.begin()
    run = asyncio.ensure_future(applier.run())
    applier.add(numbered(0, 25))
    await run
    assert [line for step in applied for line in step] == numbered(0, 200)
    assert max(len(step) for step in applied) == 7


@gen_test
async def test_a_backlog_over_high_water_pauses_the_transfer_until_it_is_low() -> None:
    applied: list[list[bytes]] = []
    applier, transfer = sliced(applied, step_lines=4, turn_s=0.0, high_water_bytes=100,
                               low_water_bytes=20)
    applier.begin()
    run = asyncio.ensure_future(applier.run())
    applier.add(numbered(0, 19))  # 95 bytes: under high water
    applier.add(numbered(19, 2))  # 105 bytes
    assert transfer.calls == [("pause", 105)]
    applier.add(numbered(21, 3))  # still over: paused again (Tornado may have unpaused it)
    assert transfer.calls == [("pause", 105), ("pause", 120)]
    applier.finish()
    await run
    # resumed after the slice that brought the backlog to 20 bytes or less, and not before
    assert transfer.calls == [("pause", 105), ("pause", 120), ("resume", 20)]
    assert applier.pauses == 1
    assert [line for step in applied for line in step] == numbered(0, 24)


@gen_test
async def test_stop_ends_after_the_step_under_way_and_drops_the_rest() -> None:
    applied: list[list[bytes]] = []
    applier, _ = sliced(applied, step_lines=10, turn_s=0.0)

    def apply(lines: list[bytes]) -> None:
        applied.append(lines)
        applier.stop()

    applier.apply = apply
    applier.begin()
    run = asyncio.ensure_future(applier.run())
    applier.add(numbered(0, 50))
    await run
    assert applied == [numbered(0, 10)]
    assert (len(applier.backlog), applier.backlog.bytes) == (0, 0)
    applier.add(numbered(50, 5))  # stopped: nothing more is kept
    assert len(applier.backlog) == 0


# --- inside the consumer, on a real stream -----------------------------------------------

class YieldWatchingSink:
    """Records batches; at the first one, schedules a callback that notes how many fixes
    had been applied when the loop ran it."""

    tracks: frozenset[str] = frozenset()

    def __init__(self, total: int) -> None:
        self.total = total
        self.batches: list[Batch] = []
        self.fixes_at_callback: list[int] = []
        self.all_in = asyncio.Event()

    def fixes(self) -> list[Fix]:
        return [e for b in self.batches for e in b.events if isinstance(e, Fix)]

    def ingest(self, batch: Batch, now_s: float) -> None:
        self.batches.append(batch)
        if len(self.batches) == 1:
            asyncio.get_running_loop().call_soon(
                lambda: self.fixes_at_callback.append(len(self.fixes())))
        if len(self.fixes()) == self.total:
            self.all_in.set()


@pytest.fixture
def fake_stream(io_loop: IOLoop) -> Iterator[tuple[fake_firehose.FakeFirehose, str]]:
    fake = fake_firehose.FakeFirehose(keepalive_s=3600.0, clock=Clock(NOW_S))
    server: HTTPServer
    server, url = fake_firehose.start(fake)
    yield fake, url
    server.stop()
    io_loop.run_sync(server.close_all_connections)



def numbered_updates(octet: str, total: int) -> list[dict[str, Any]]:
    """total location updates of as many devices (MACs 00:52:bf:<octet>:..), update i at
    x = i ft and T0_MS + i ms: the order they are applied in shows in the fixes' x."""
    return [fake_firehose.location_update(
        f"00:52:bf:{octet}:{i // 256:02x}:{i % 256:02x}", 1, float(i), 20.0,
        record_ms=T0_MS + i, uid=f"uid-{i}") for i in range(total)]


@gen_test
async def test_consumer_yields_to_the_loop_inside_one_write_and_loses_no_line(
        fake_stream: tuple[fake_firehose.FakeFirehose, str]) -> None:
    fake, url = fake_stream
    total = 300
    sink = YieldWatchingSink(total)
    consumer = FirehoseConsumer(FirehoseOptions(url=url, api_key=fake_firehose.API_KEY),
                                sink, clock=Clock(NOW_S), step_lines=10, turn_s=0.0)
    consumer.start()
    try:
        await fake.wait_for(lambda f: f.open_streams == 1)
        fake.push(*numbered_updates("74", total))  # one write
        await sink.all_in.wait()
        assert sink.fixes_at_callback[0] < total  # the loop ran before the write was applied
        assert [f.x_ft for f in sink.fixes()] == [float(i) for i in range(total)]
        assert max(b.accepted for b in sink.batches) <= 10
        assert consumer.cursor_for_flush() == T0_MS + total - 1
    finally:
        await consumer.stop()


@gen_test
async def test_consumer_paused_by_its_backlog_bound_resumes_and_loses_no_line(
        fake_stream: tuple[fake_firehose.FakeFirehose, str]) -> None:
    fake, url = fake_stream
    # ~1.6 KB each: one write of ~6 MB, more than curl and Tornado buffer, so the
    # transfer itself is paused against the 64 KB bound
    total = 4000
    sink = YieldWatchingSink(total)
    # A transfer left paused would go silent once its backlog is applied: the stall
    # detector would cut it, and the reconnect would show.
    options = FirehoseOptions(url=url, api_key=fake_firehose.API_KEY, stall_timeout_s=2.0)
    consumer = FirehoseConsumer(options, sink, clock=Clock(NOW_S), step_lines=10, turn_s=0.0)
    consumer._slices.high_water_bytes, consumer._slices.low_water_bytes = 65536, 16384
    consumer.start()
    try:
        await fake.wait_for(lambda f: f.open_streams == 1)
        fake.push(*numbered_updates("75", total))
        await sink.all_in.wait()
        assert consumer._slices.pauses > 0  # curl was paused, and resumed: all lines came
        assert [f.x_ft for f in sink.fixes()] == [float(i) for i in range(total)]
        assert (consumer.reconnects, consumer.state, consumer.bad_lines) == (0, "connected", 0)
    finally:
        await consumer.stop()


@gen_test
async def test_stop_while_the_transfer_is_paused_ends_it(
        fake_stream: tuple[fake_firehose.FakeFirehose, str]) -> None:
    fake, url = fake_stream
    sink = YieldWatchingSink(4000)
    consumer = FirehoseConsumer(FirehoseOptions(url=url, api_key=fake_firehose.API_KEY),
                                sink, clock=Clock(NOW_S), step_lines=10, turn_s=0.0)
    consumer._slices.high_water_bytes, consumer._slices.low_water_bytes = 65536, 16384
    paused = asyncio.Event()
    ingest = sink.ingest

    def ingest_and_watch(batch: Batch, now_s: float) -> None:
        ingest(batch, now_s)
        if consumer._transfer.paused:
            paused.set()

    sink.ingest = ingest_and_watch  # type: ignore[method-assign]
    consumer.start()
    try:
        await fake.wait_for(lambda f: f.open_streams == 1)
        fake.push(*numbered_updates("76", 4000))
        await paused.wait()
    finally:
        await consumer.stop()  # the cut reaches a paused transfer: stop returns
    # the transfer ended through the cut (a paused one never saw it: stop() hung until the
    # hang guard cancelled it, and the transfer never ended)
    assert (consumer.state, consumer.last_error) == ("stopped", "stopping")
    await fake.wait_for(lambda f: f.open_streams == 0)
    assert len(sink.fixes()) < 4000  # stopped while lines were still held back
