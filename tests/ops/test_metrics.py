"""GET /metrics: Prometheus text after known traffic; the Metrics hooks on their own."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import API_AUTH, CMX_AUTH, MONITOR_AUTH
from tests.support.clock import Clock
from tests.web.test_notify import movement
from tools.cmx_sim import fake_firehose, meraki_poster
from tools.cmx_sim.fake_firehose import FakeFirehose
from tools.cmx_sim.meraki_poster import Sighting
from tys_server.core.events import Batch
from tys_server.core.state import State
from tys_server.core.tracking import FilterParams
from tys_server.ops.feeds import FeedBoard, ReceiverWatch
from tys_server.ops.metrics import Metrics

MACS = ("00:11:22:33:44:01", "00:11:22:33:44:02", "00:11:22:33:44:03")
USERNAME = "metrics_walker"
PRIVATE_VALUE = re.compile(
    r"([0-9a-f]{2}[:-]){5}[0-9a-f]{2}|[0-9a-f]{12}|\d{1,3}(\.\d{1,3}){3}|walker", re.I)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """{(sample name, sorted labels): value} of a scrape, parsed as Prometheus would."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(scrape: dict[Any, float], name: str, **labels: str) -> float:
    return scrape[(name, tuple(sorted(labels.items())))]


@pytest.mark.gen_test
async def test_metrics_need_the_monitor_pair(post: Any) -> None:
    for pair in (None, CMX_AUTH, API_AUTH, (MONITOR_AUTH[0], API_AUTH[1])):
        assert (await post("/metrics", method="GET", auth=pair)).code == 401, pair
    ok = await post("/metrics", method="GET", auth=MONITOR_AUTH)
    assert ok.code == 200
    assert ok.headers["Content-Type"].startswith("text/plain; version=")


@pytest.mark.gen_test(timeout=30)
async def test_scrape_counts_known_traffic_without_private_labels(post: Any,
                                                                  runtime: Any) -> None:
    now_ms = int(time.time() * 1000)
    batch = [movement(mac, 10.0, 20.0, now_ms) for mac in MACS]
    batch.append(movement("not-a-mac", 1.0, 2.0, now_ms))
    reply = await post("/notification", {"notifications": batch}, auth=CMX_AUTH)
    assert reply.code == 200
    registered = await post("/live/register_username", {"username": USERNAME,
                                                        "ip": "10.0.0.7"})
    assert registered.code == 201
    assert await runtime.flusher.flush_once()
    unauthorised = await post("/metrics", method="GET", auth=None)
    assert unauthorised.code == 401

    text = (await post("/metrics", method="GET", auth=MONITOR_AUTH)).body.decode()
    scrape = samples(text)

    assert value(scrape, "tys_notifications_total", type="movement", outcome="accepted") == 3
    assert value(scrape, "tys_notifications_total", type="movement", outcome="rejected") == 1
    assert value(scrape, "tys_http_requests_total", handler="NotificationHandler",
                 status="200") == 1
    assert value(scrape, "tys_http_requests_total", handler="RegisterHandler",
                 status="201") == 1
    assert value(scrape, "tys_http_requests_total", handler="MetricsHandler",
                 status="401") == 1
    assert value(scrape, "tys_http_request_duration_seconds_count",
                 handler="NotificationHandler") == 1
    assert value(scrape, "tys_http_request_duration_seconds_bucket",
                 handler="NotificationHandler", le="+Inf") == 1
    assert value(scrape, "tys_cmx_lookups_total", outcome="test") == 1
    assert value(scrape, "tys_cmx_lookup_duration_seconds_count") == 1
    assert value(scrape, "tys_flush_duration_seconds_count") == 1
    # 3 tracks and at least one minute of counters (two if the minute turned meanwhile)
    assert value(scrape, "tys_flush_rows_written_total") >= 4
    assert value(scrape, "tys_flush_failures_total") == 0
    assert value(scrape, "tys_devices_tracked") == 3
    assert value(scrape, "tys_users_registered") == 1
    assert value(scrape, "tys_devices_registered") == 1
    assert value(scrape, "tys_flush_backlog_keys") == 0
    assert value(scrape, "tys_database_up") == 1
    assert 0 <= value(scrape, "tys_flush_last_success_age_seconds") < 30
    assert value(scrape, "tys_cmx_hosts", status="up") == 1

    # prometheus-client also exports each counter's and histogram's *_created gauge
    families = {f.name: f.type for f in text_string_to_metric_families(text)
                if not f.name.endswith("_created")}
    for name, kind in families.items():
        assert name.startswith("tys_"), name
        if kind == "counter":
            assert f"{name}_total" in text, name
        if "duration" in name:
            assert kind == "histogram" and name.endswith("_seconds"), name
    for _, labels in scrape:
        for _, label_value in labels:
            assert not PRIVATE_VALUE.search(label_value), label_value
    for private in (*MACS, "02:00:0a:00:00:07", "10.0.0.7", USERNAME):
        assert private not in text


def test_each_server_has_its_own_registry() -> None:
    board, cmx = FeedBoard(), ReceiverWatch(300.0)
    board.add("cmx", cmx)
    first = Metrics(State(FilterParams(), "UTC"), feeds=board)
    second = Metrics(State(FilterParams(), "UTC"))  # same names: no "Duplicated timeseries"
    cmx.observe(Batch([], 2, 0, 0, {("movement", "accepted"): 2}))
    assert value(samples(first.exposition().decode()), "tys_notifications_total",
                 type="movement", outcome="accepted") == 2
    assert ("tys_notifications_total", (("outcome", "accepted"), ("type", "movement"))) \
        not in samples(second.exposition().decode())


def test_failed_flush_counts_a_failure_and_no_rows() -> None:
    metrics = Metrics(State(FilterParams(), "UTC"))
    metrics.observe_flush(0.02, 500, False)
    metrics.observe_flush(0.01, 7, True)
    scrape = samples(metrics.exposition().decode())
    assert value(scrape, "tys_flush_failures_total") == 1
    assert value(scrape, "tys_flush_rows_written_total") == 7
    assert value(scrape, "tys_flush_duration_seconds_count") == 2
    assert value(scrape, "tys_flush_duration_seconds_sum") == pytest.approx(0.03)


def test_request_children_are_made_once_per_label_set() -> None:
    metrics = Metrics(State(FilterParams(), "UTC"))
    for _ in range(1000):
        metrics.observe_request("NotificationHandler", 200, 0.0003)
    metrics.observe_request("NotificationHandler", 400, 0.0002)
    assert len(metrics._request_children) == 2
    scrape = samples(metrics.exposition().decode())
    assert value(scrape, "tys_http_requests_total", handler="NotificationHandler",
                 status="200") == 1000
    assert value(scrape, "tys_http_request_duration_seconds_bucket",
                 handler="NotificationHandler", le="0.0005") == 1001


@pytest.mark.clock  # feeds' ages on the test's clock
class TestFeedFamilies:
    """Every feed at once (CMX, the fake Firehose, a Meraki POST), on the test's clock."""

    NOW_S = 1_800_000_000.0
    SECRET = "meraki s3cret"

    @pytest.fixture
    def clock(self) -> Clock:
        return Clock(self.NOW_S)

    @pytest.fixture
    def runtime_clock(self, clock: Clock) -> Clock:
        return clock

    @pytest.fixture
    def firehose(self, io_loop: Any) -> Iterator[tuple[FakeFirehose, str]]:
        fake = FakeFirehose(bad_line_every=3)  # a line cut short after every third event
        server, url = fake_firehose.start(fake)
        yield fake, url
        server.stop()
        io_loop.run_sync(server.close_all_connections)

    @pytest.fixture
    def overrides(self, firehose: tuple[FakeFirehose, str]) -> dict[str, Any]:
        return {"tracking.max_devices": 5,
                "feeds.spaces_firehose.enabled": True, "feeds.spaces_firehose.url": firehose[1],
                "feeds.spaces_firehose.api_key": fake_firehose.API_KEY,
                "feeds.meraki.enabled": True, "feeds.meraki.secret": self.SECRET,
                "feeds.meraki.validator": "v"}

    @pytest.mark.gen_test(timeout=30)
    async def test_feed_families_count_known_traffic_with_bounded_labels(
            self, post: Any, runtime: Any, clock: Clock,
            firehose: tuple[FakeFirehose, str]) -> None:
        now_ms = int(self.NOW_S * 1000)
        cmx = [{"notificationType": "inout", "deviceId": MACS[0], "timestamp": now_ms - 3600_000,
                "locationMapHierarchy": "Venue>Hall>Expo"},  # older than the zone window
               movement(MACS[0], 10.0, 20.0, now_ms - 30_000),
               movement(MACS[0], 90.0, 20.0, now_ms - 300_000),  # older than its track
               movement("not-a-mac", 1.0, 2.0, now_ms),
               movement("00:11:22:33:44:04", 1.0, 2.0, now_ms + 3600_000),  # clock skew
               movement(MACS[1], 10.0, 20.0, now_ms - 30_000),
               movement(MACS[2], 10.0, 20.0, now_ms - 30_000)]  # the newest, last
        assert (await post("/notification", {"notifications": cmx}, auth=CMX_AUTH)).code == 200

        fake, _ = firehose  # one device: the fifth and last one tracked (max_devices 5)
        await fake.wait_for(lambda fake: fake.open_streams == 1)
        fake.push(fake_firehose.location_update("00:52:bf:74:0b:01", 1, 10.0, 20.0,
                                                record_ms=now_ms - 20_000),
                  fake_firehose.location_update("00:52:bf:74:0b:01", 1, 70.0, 20.0,
                                                record_ms=now_ms - 10_000),
                  fake_firehose.device_exit("00:52:bf:74:0b:01", record_ms=now_ms - 5_000))
        consumer = runtime.firehose
        while consumer.bad_lines < 1:  # the cut line comes after the exit
            await asyncio.sleep(0.005)

        iso = meraki_poster.iso_time
        meraki = meraki_poster.body([
            meraki_poster.observation("00:52:bf:74:0b:02", "10.1.0.2", [  # a sixth: refused
                meraki_poster.location(Sighting("", "", 1, 10.0, 20.0, self.NOW_S - 40), 2.0),
                meraki_poster.location(Sighting("", "", 1, 90.0, 20.0, self.NOW_S + 3600), 2.0)]),
            meraki_poster.observation("zz", "10.1.0.3", [])], self.SECRET)
        assert iso(self.NOW_S + 3600) in str(meraki)
        assert (await post("/meraki", meraki, auth=None)).code == 200

        clock.now_s += 7  # every feed's newest event arrived 7 s ago
        text = (await post("/metrics", method="GET", auth=MONITOR_AUTH)).body.decode()
        scrape = samples(text)

        def feed(name: str, feed: str, **labels: str) -> float:
            return value(scrape, name, feed=feed, **labels)

        assert value(scrape, "tys_notifications_total", type="movement", outcome="accepted") == 5
        events = "tys_feed_events_total"
        assert feed(events, "cmx", type="movement", outcome="accepted") == 5
        assert feed(events, "cmx", type="movement", outcome="rejected") == 1
        assert feed(events, "cmx", type="inout", outcome="accepted") == 1
        assert feed(events, "spaces_firehose", type="DEVICE_LOCATION_UPDATE",
                    outcome="accepted") == 2
        assert feed(events, "spaces_firehose", type="DEVICE_EXIT", outcome="accepted") == 1
        assert feed(events, "meraki", type="fix", outcome="accepted") == 2
        assert feed(events, "meraki", type="observation", outcome="rejected") == 1
        future = "tys_feed_future_timestamps_total"
        assert [feed(future, name) for name in ("cmx", "spaces_firehose", "meraki")] == [1, 0, 1]
        lag = "tys_feed_lag_seconds"  # receive time - event time of the newest event
        assert [feed(lag, name) for name in ("cmx", "spaces_firehose", "meraki")] == [30, 5, 0]
        age = "tys_feed_last_event_age_seconds"
        assert [feed(age, name) for name in ("cmx", "spaces_firehose", "meraki")] == [7, 7, 7]
        assert feed("tys_feed_reconnects_total", "spaces_firehose") == 0
        assert feed("tys_feed_bad_lines_total", "spaces_firehose") == 1
        assert ("tys_feed_reconnects_total", (("feed", "cmx"),)) not in scrape  # not a stream
        states = {(dict(labels)["feed"], dict(labels)["state"]): sample
                  for (name, labels), sample in scrape.items() if name == "tys_feed_state"}
        assert {key for key, on in states.items() if on == 1} == {
            ("cmx", "ok"), ("spaces_firehose", "connected"), ("meraki", "ok")}
        assert len(states) == 2 + 6 + 2  # every known state of each feed, bounded
        assert value(scrape, "tys_devices_refused_total") == 2  # the sixth device's two fixes
        assert value(scrape, "tys_stale_movements_total") == 1
        assert value(scrape, "tys_stale_visits_total") == 1
        for _, labels in scrape:
            for label, label_value in labels:
                assert not PRIVATE_VALUE.search(label_value), label_value
                if label == "feed":
                    assert label_value in ("cmx", "spaces_firehose", "meraki")
        for private in ("00:52:bf:74:0b:01", "00:52:bf:74:0b:02", "10.1.0.2", *MACS):
            assert private not in text
