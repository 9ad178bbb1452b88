"""/healthz and /status show every enabled feed's state; only the database makes a 503.

The feeds' clock is the test's (Runtime(clock=...)): "quiet" is reached by moving it,
never by waiting. The Firehose is the simulator's fake, refusing the configured key.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.conftest import CMX_AUTH, MONITOR_AUTH, json_of
from tests.support.clock import Clock
from tests.web.test_notify import straight_walk
from tools.cmx_sim import fake_firehose
from tools.cmx_sim.fake_firehose import FakeFirehose
from tys_server.server import Runtime

pytestmark = pytest.mark.clock  # feeds' quiet states

NOW_S = 1_800_000_000.0  # the feeds' and the service's clock: moved by hand
QUIET_S = 300.0
SECRET, VALIDATOR = "meraki s3cret", "validator-6f1e"
gen_test = pytest.mark.gen_test(timeout=30)  # a hang guard, never a duration bound


async def until(predicate: Callable[[], bool]) -> None:
    """Consumer states have no event to await: poll the loop briefly."""
    while not predicate():
        await asyncio.sleep(0.005)


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW_S)


@pytest.fixture
def runtime_clock(clock: Clock) -> Clock:
    return clock


async def health(post: Any) -> tuple[int, dict[str, Any]]:
    reply = await post("/healthz", method="GET", auth=None)
    return reply.code, json_of(reply)


async def status_page(post: Any) -> str:
    reply = await post("/status", method="GET", auth=MONITOR_AUTH)
    assert reply.code == 200
    return str(reply.body.decode())


@gen_test
async def test_quiet_cmx_shows_on_healthz_and_status_after_the_start_up_grace(
        post: Any, clock: Clock, runtime: Runtime) -> None:
    code, body = await health(post)
    assert (code, body["status"], body["database"], body["feeds"]) == \
        (200, "ok", "up", {"cmx": "ok"})  # nothing yet, but the server just started
    clock.now_s += QUIET_S  # no notification since start-up, for quiet_after_s
    code, body = await health(post)
    assert (code, body["status"], body["feeds"]) == (200, "ok", {"cmx": "quiet"})
    page = await status_page(post)
    assert '<tr class="feed"><th>CMX notifications</th>' in page
    assert '<span class="status quiet">quiet</span>' in page
    assert "last event: never" in page

    walk = straight_walk("00:11:22:33:44:55", int((NOW_S - 600) * 1000), points=3)
    assert (await post("/notification", {"notifications": walk}, auth=CMX_AUTH)).code == 200
    assert (await health(post))[1]["feeds"] == {"cmx": "ok"}
    clock.now_s += QUIET_S - 1
    assert (await health(post))[1]["feeds"] == {"cmx": "ok"}
    clock.now_s += 1
    assert (await health(post))[1]["feeds"] == {"cmx": "quiet"}


class TestMeraki:
    @pytest.fixture
    def overrides(self) -> dict[str, Any]:
        return {"feeds.cmx.enabled": False, "feeds.meraki.enabled": True,
                "feeds.meraki.secret": SECRET, "feeds.meraki.validator": VALIDATOR}

    @gen_test
    async def test_meraki_is_ok_while_it_posts_and_quiet_after(self, post: Any,
                                                               clock: Clock) -> None:
        clock.now_s += QUIET_S + 60
        assert (await health(post))[1]["feeds"] == {"meraki": "quiet"}
        body = {"version": "3.0", "secret": SECRET, "type": "WiFi",
                "data": {"networkId": "N_1", "observations": []}}
        assert (await post("/meraki", body, auth=None)).code == 200
        assert (await health(post))[1]["feeds"] == {"meraki": "ok"}
        wrong = await post("/meraki", {**body, "secret": "guess"}, auth=None)
        assert wrong.code == 403
        clock.now_s += QUIET_S  # a refused POST is no sign of Meraki
        code, reply = await health(post)
        assert (code, reply["feeds"]) == (200, {"meraki": "quiet"})


class TestFirehoseUnauthorized:
    @pytest.fixture
    def firehose(self, io_loop: Any) -> Iterator[tuple[FakeFirehose, str]]:
        fake = FakeFirehose(api_key="the key Spaces issued")
        server, url = fake_firehose.start(fake)
        yield fake, url
        server.stop()
        io_loop.run_sync(server.close_all_connections)

    @pytest.fixture
    def overrides(self, firehose: tuple[FakeFirehose, str]) -> dict[str, Any]:
        return {"feeds.spaces_firehose.enabled": True, "feeds.spaces_firehose.url": firehose[1],
                "feeds.spaces_firehose.api_key": "a key that was revoked"}

    @gen_test
    async def test_a_firehose_401_shows_unauthorized_on_healthz_and_status(
            self, post: Any, runtime: Runtime, firehose: tuple[FakeFirehose, str]) -> None:
        fake, _ = firehose
        consumer = runtime.firehose
        assert consumer is not None
        await until(lambda: consumer.state == "unauthorized")
        assert [(c.number, c.status) for c in fake.connections] == [(1, 401)]
        code, body = await health(post)
        assert (code, body["status"]) == (200, "ok")  # a feed never makes /healthz 503
        assert body["feeds"] == {"cmx": "ok", "spaces_firehose": "unauthorized"}
        page = await status_page(post)
        assert "<th>Cisco Spaces Firehose</th>" in page
        assert '<span class="status unauthorized">unauthorized</span>' in page
        assert "HTTP 401" in page
        assert "a key that was revoked" not in page and "the key Spaces issued" not in page
