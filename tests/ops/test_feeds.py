"""ops/feeds: each feed's state and counts as /healthz, /status and the metrics read them."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.clock import Clock
from tys_server.core.events import Batch, Fix, IpSeen
from tys_server.ops.feeds import (
    FIREHOSE_STATES,
    SETTLE_LATENESS_S,
    FeedBoard,
    FeedClock,
    FirehoseWatch,
    Health,
    ReceiverWatch,
)

pytestmark = pytest.mark.clock  # quiet states and the feeds' clocks

NOW_S = 1_800_000_000.0
QUIET_S = 300.0


def batch(*events: Any, future_ts: int = 0) -> Batch:
    return Batch(list(events), len(events), 0, 0, {("fix", "accepted"): len(events)} if events
                 else {}, future_ts)


def test_a_receiver_is_ok_through_the_start_up_grace_then_quiet() -> None:
    clock = Clock(NOW_S)
    watch = ReceiverWatch(QUIET_S, clock=clock)
    assert watch.state == "ok"  # nothing yet, but the server only just started
    clock.now_s += QUIET_S - 1
    assert watch.state == "ok"
    clock.now_s += 1
    assert watch.state == "quiet"


def test_a_batch_wakes_a_quiet_receiver_until_quiet_after_s_passes_again() -> None:
    clock = Clock(NOW_S)
    watch = ReceiverWatch(QUIET_S, clock=clock)
    clock.now_s += 2 * QUIET_S
    assert watch.state == "quiet"
    watch.observe(batch())  # a POST with nothing in it still says the feed is there
    assert watch.state == "ok"
    clock.now_s += QUIET_S
    assert watch.state == "quiet"


def test_a_receiver_counts_types_future_times_and_the_lag_of_the_newest_event() -> None:
    clock = Clock(NOW_S)
    watch = ReceiverWatch(QUIET_S, clock=clock)
    assert (watch.lag_s, watch.last_event_age_s) == (None, None)
    fix = Fix("00:11:22:33:44:55", 1, 0.0, 0.0, None, NOW_S - 30.0)
    watch.observe(batch(fix, IpSeen("10.0.0.1", fix.mac, NOW_S - 12.5), future_ts=1))
    clock.now_s += 5
    watch.observe(batch(fix))
    assert watch.by_type == {("fix", "accepted"): 3}
    assert watch.future_ts == 1
    clock.now_s += 2
    assert watch.last_event_age_s == 2.0
    assert watch.lag_s == 35.0  # received 5 s later than the first time, same event time
    assert (watch.reconnects, watch.bad_lines, watch.last_error) == (None, None, None)


class FakeConsumer:
    """The attributes of a FirehoseConsumer that the watch reads."""

    class Reader:
        future_ts = 4

    reader = Reader()
    state = "backing_off"
    by_type = {("DEVICE_LOCATION_UPDATE", "accepted"): 9}
    lag_s = 2.5
    reconnects = 3
    bad_lines = 1
    last_error = "HTTP 503"

    def status(self) -> dict[str, object]:
        return {"state": self.state, "last_event_age_s": 12.0}


def test_the_firehose_watch_reads_the_consumer_and_its_reader() -> None:
    watch = FirehoseWatch(FakeConsumer())
    assert (watch.state, watch.future_ts, watch.reconnects, watch.bad_lines) == \
        ("backing_off", 4, 3, 1)
    assert (watch.lag_s, watch.last_event_age_s, watch.last_error) == (2.5, 12.0, "HTTP 503")
    assert watch.by_type == FakeConsumer.by_type
    assert watch.states == FIREHOSE_STATES and "unauthorized" in watch.states


class DatabaseDown:
    def health(self) -> tuple[bool, dict[str, Any]]:
        return False, {"database": "down", "last_flush_age_s": 40.0, "backlog": 7}


def test_health_adds_every_feed_state_and_leaves_the_verdict_to_the_database() -> None:
    clock = Clock(NOW_S)
    board = FeedBoard()
    board.add("cmx", ReceiverWatch(QUIET_S, clock=clock))
    board.add("spaces_firehose", FirehoseWatch(FakeConsumer()))
    clock.now_s += QUIET_S
    ok, details = Health(DatabaseDown(), board).health()
    assert ok is False
    assert details == {"database": "down", "last_flush_age_s": 40.0, "backlog": 7,
                       "feeds": {"cmx": "quiet", "spaces_firehose": "backing_off"}}
    assert [name for name, _ in board] == ["cmx", "spaces_firehose"]
    assert board.get("meraki") is None


# -- the feeds' event clocks: the adaptive filter's settle time (docs/accuracy.md) --------


def test_a_feed_clock_runs_from_its_newest_event_only_while_the_feed_is_live() -> None:
    mono = Clock(100.0)
    clock = FeedClock(monotonic=mono)
    assert clock.now_s(True) is None  # no event yet
    clock.saw(NOW_S)
    mono.now_s += 10
    assert clock.now_s(True) == NOW_S + 10
    mono.now_s += 20
    assert clock.now_s(False) == NOW_S + 10  # went down: those 20 s do not count
    mono.now_s += 30
    assert clock.now_s(True) == NOW_S + 10  # back: counting again from here
    mono.now_s += 5
    assert clock.now_s(True) == NOW_S + 15
    clock.saw(NOW_S - 60)  # an older event moves nothing
    assert clock.now_s(True) == NOW_S + 15
    clock.saw(NOW_S + 12)  # a newer one starts the run again from its own time
    assert clock.now_s(True) == NOW_S + 12


def test_a_receiver_s_clock_follows_the_newest_event_of_its_batches_while_ok() -> None:
    clock, mono = Clock(NOW_S), Clock(0.0)
    watch = ReceiverWatch(QUIET_S, clock=clock, monotonic=mono)
    assert watch.event_time_s() is None
    newest = Fix("00:11:22:33:44:55", 1, 0.0, 0.0, None, NOW_S - 20.0)
    watch.observe(batch(newest, IpSeen("10.0.0.1", newest.mac, NOW_S - 45.0)))  # any order
    clock.now_s += 60
    mono.now_s += 60
    assert watch.event_time_s() == NOW_S + 40
    clock.now_s += QUIET_S
    mono.now_s += QUIET_S
    assert watch.state == "quiet"
    assert watch.event_time_s() == NOW_S + 40  # quiet: its late events may still come


def test_the_firehose_clock_starts_at_its_resume_point_and_runs_while_connected() -> None:
    consumer, mono = FakeConsumer(), Clock(0.0)
    consumer.last_event_ts = None  # type: ignore[attr-defined]
    watch = FirehoseWatch(consumer, monotonic=mono, resume_ts=NOW_S)
    mono.now_s += 100
    assert watch.event_time_s() == NOW_S  # backing off: the replay is still to come
    consumer.state = "connected"  # type: ignore[misc]
    watch.event_time_s()
    mono.now_s += 10
    assert watch.event_time_s() == NOW_S + 10
    consumer.last_event_ts = NOW_S + 30  # type: ignore[attr-defined]
    assert watch.event_time_s() == NOW_S + 30


def test_the_settle_time_is_the_earliest_feed_clock_less_the_lateness() -> None:
    clock, mono = Clock(NOW_S), Clock(0.0)
    board = FeedBoard()
    cmx = ReceiverWatch(QUIET_S, clock=clock, monotonic=mono)
    meraki = ReceiverWatch(QUIET_S, clock=clock, monotonic=mono)
    board.add("cmx", cmx)
    board.add("meraki", meraki)
    assert board.settle_time_s() is None
    cmx.observe(batch(Fix("00:11:22:33:44:55", 1, 0.0, 0.0, None, NOW_S)))
    # Meraki has delivered nothing since start-up: no late event of its to wait for.
    assert board.settle_time_s() == NOW_S - SETTLE_LATENESS_S == NOW_S - 90.0
    meraki.observe(batch(Fix("00:11:22:33:44:66", 2, 0.0, 0.0, None, NOW_S - 50)))
    mono.now_s += 5
    assert board.settle_time_s() == NOW_S - 50 + 5 - 90.0  # Meraki's, a minute behind
