"""/meraki answers before the state takes the POST: what it answered is applied and kept.

The handler writes its 200 and then applies the events in the same IOLoop callback
(web/meraki.py), so nothing can run between the two. These tests show it on a started
Runtime over the real database, through real HTTP: right after the 200 the walk is in
the state and the feed's metrics, a flush writes it, and a shutdown right after the 200
keeps all of it (lost 0 m) while the same POST sent again after a restart credits
nothing more (doubled 0 m).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from tests.conftest import TestDatabase, with_overrides
from tests.support.procserver import free_port
from tools.cmx_sim.meraki_poster import MerakiPoster, Sighting
from tys_server.config import Settings
from tys_server.core.macs import hash_mac
from tys_server.server import Runtime

KEY = "listening"
SECRET = "meraki s3cret"
RAW_MAC = "00:52:bf:74:0b:01"
MAC = hash_mac(RAW_MAC, KEY)
POINTS = 10
LEG_FT = 60.0  # above the gate (50 ft): every fix reaches the filter
MERAKI_ONLY = {"cmx.hosts": (), "cmx.mac_hash_key": KEY, "feeds.cmx.enabled": False,
               "feeds.meraki.enabled": True, "feeds.meraki.secret": SECRET,
               "feeds.meraki.validator": "v",
               "database.flush_interval_s": 3600.0}  # no flush but the ones a test asks for
gen_test = pytest.mark.gen_test(timeout=30)  # a hang guard, never a duration bound


def walk_body(start_s: float) -> bytes:
    """One POST of a straight walk: POINTS fixes LEG_FT apart, 15 s apart, from start_s."""
    poster = MerakiPoster("http://127.0.0.1:1/meraki", SECRET)
    for i in range(POINTS):
        poster.add(Sighting(RAW_MAC, "10.20.0.5", 1, 10.0 + LEG_FT * i, 20.0, start_s + 15 * i))
    [body] = poster.take_bodies(start_s + 15 * POINTS)
    return body


async def send(runtime: Runtime, body: bytes) -> dict[str, Any]:
    """POST body to the runtime's /meraki; its 200 reply."""
    poster = MerakiPoster(f"http://127.0.0.1:{runtime.settings.server.port}/meraki", SECRET)
    try:
        status, reply = await poster.post(body)
    finally:
        await poster.aclose()
    assert status == 200, reply
    return dict(orjson.loads(reply))


async def listening(settings: Settings) -> Runtime:
    runtime = Runtime(settings)
    await runtime.start()
    runtime.listen()
    return runtime


def stored_m(db: TestDatabase) -> tuple[float, float]:
    """The MAC's distance row and the sum of its distance_history rows, in metres."""
    [(total,)] = db.query("SELECT mtrs FROM distance WHERE mac = %s", (MAC,))
    [(days,)] = db.query("SELECT sum(mtrs) FROM distance_history WHERE mac = %s", (MAC,))
    return float(total), float(days)


@pytest.fixture
def meraki_site(settings: Settings) -> Iterator[Settings]:
    """The Meraki-only settings on a port of their own (each test starts its runtimes)."""
    yield with_overrides(settings, **MERAKI_ONLY, **{"server.port": free_port()})


@gen_test
async def test_an_answered_post_is_applied_counted_and_flushed(meraki_site: Settings,
                                                               db: TestDatabase) -> None:
    runtime = await listening(meraki_site)
    try:
        reply = await send(runtime, walk_body(time.time() - 600))
        track = runtime.state.tracks[MAC]  # read before anything else runs on the loop
        meraki = runtime.background.meraki_feed
        assert meraki is not None
        assert reply == {"accepted": POINTS, "ignored": 0, "rejected": 0}
        assert track.total_m > 0.0
        assert meraki.by_type[("fix", "accepted")] == POINTS
        flusher = runtime.flusher
        assert flusher is not None
        assert await flusher.flush_once()
        assert stored_m(db) == pytest.approx((track.total_m, track.total_m), abs=1e-3)
    finally:
        await runtime.stop()


@gen_test
async def test_a_shutdown_right_after_the_answer_loses_and_doubles_nothing(
        meraki_site: Settings, db: TestDatabase) -> None:
    body = walk_body(time.time() - 600)
    first = await listening(meraki_site)
    try:
        await send(first, body)
        answered_m = first.state.tracks[MAC].total_m
    finally:
        assert await first.stop()  # the very next step after the 200: no flush in between
    assert answered_m > 0.0
    assert stored_m(db) == pytest.approx((answered_m, answered_m), abs=1e-3)  # lost: 0 m

    second = await listening(meraki_site)
    try:
        assert second.state.tracks[MAC].total_m == pytest.approx(answered_m, abs=1e-3)
        await send(second, body)  # Meraki's repeat of the same fixes
        assert second.state.tracks[MAC].total_m == pytest.approx(answered_m, abs=1e-3)
    finally:
        assert await second.stop()
    assert stored_m(db) == pytest.approx((answered_m, answered_m), abs=1e-3)  # doubled: 0 m
