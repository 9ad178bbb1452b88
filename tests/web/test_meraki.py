"""GET/POST /meraki through Tornado's test server: a small app from routes(), a recording sink.

Bodies come from the fake poster (tools/cmx_sim/meraki_poster.py), as the simulator sends
them. Time is a fixed clock handed to the handler, never the wall clock.
"""

from __future__ import annotations

import gc
import time
from typing import Any

import orjson
import pytest
import tornado.httpserver
import tornado.web

from tests.support import rawhttp
from tools.cmx_sim import meraki_poster
from tools.cmx_sim.meraki_poster import MerakiPoster, Quirks, Sighting
from tys_server.core.events import Batch, Fix, IpSeen
from tys_server.core.units import M_PER_FT
from tys_server.web import meraki
from tys_server.web.base import HttpDate
from tys_server.web.limits import TOO_LARGE, BodyLimit

SECRET = "s3cret in the body"
VALIDATOR = "da6a17c407bb11dfeec7392a5042be0a4cc034b6"
NOW_S = 1_800_000_000.0  # the handler's clock: fixed, whatever the wall clock says
PATH = "/meraki"
DEFAULT_CAP = 64 * 1024  # server.max_body_bytes in these tests: /meraki has its own cap
USUAL = Quirks()


class RecordingSink:
    """The state's place in these tests: every batch handed over, and when."""

    def __init__(self) -> None:
        self.tracks: set[str] = set()
        self.batches: list[tuple[Batch, float]] = []

    def ingest(self, batch: Batch, now_s: float) -> None:
        self.batches.append((batch, now_s))

    def events(self) -> list[Any]:
        return [event for batch, _ in self.batches for event in batch.events]


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture
def meraki_cap() -> int:
    return meraki.DEFAULT_MAX_BODY_BYTES


@pytest.fixture
def app(sink: RecordingSink, meraki_cap: int) -> BodyLimit:
    """The receiver's route behind the body limit, /meraki with its own cap."""
    application = tornado.web.Application(
        meraki.routes(sink, validator=VALIDATOR, secret=SECRET, path=PATH,
                      clock=lambda: NOW_S),
        http_date=HttpDate())
    return BodyLimit(application, DEFAULT_CAP, path_caps=meraki.body_caps(PATH, meraki_cap))


@pytest.fixture
def http_server(io_loop: Any, _unused_port: Any, app: BodyLimit) -> Any:
    """pytest-tornado's server, with the body limit Runtime.listen gives the real one."""
    server = tornado.httpserver.HTTPServer(app, max_body_size=DEFAULT_CAP)
    server.add_socket(_unused_port[0])
    yield server
    server.stop()
    io_loop.run_sync(server.close_all_connections)


@pytest.fixture
def port(http_server: Any, http_port: int) -> int:
    """The port of the test server (http_port alone does not start it)."""
    return http_port


@pytest.fixture
def poster(http_server: Any, base_url: str) -> Any:
    poster = MerakiPoster(base_url + PATH, SECRET)
    yield poster


def sighting(i: int, j: int = 0) -> Sighting:
    """Client i's j-th fix: 20 ft apart, 10 s apart, ending a minute before NOW_S."""
    return Sighting(f"02:00:0a:00:{i // 256:02x}:{i % 256:02x}", f"10.0.{i // 250}.{i % 250 + 1}",
                    1, 10.0 + 20.0 * j, 30.0, NOW_S - 60.0 + 10.0 * j)


async def send(http_client: Any, base_url: str, body: Any, *, path: str = PATH,
               raw: bytes | None = None) -> Any:
    return await http_client.fetch(base_url + path, method="POST", raise_error=False,
                                   body=raw if raw is not None else orjson.dumps(body),
                                   headers={"Content-Type": "application/json"})


def replied(response: Any) -> Any:
    assert response.headers["Content-Type"] == "application/json"
    return orjson.loads(response.body)


def wifi_body(*sightings: Sighting, quirks: Quirks = USUAL, secret: str = SECRET) -> Any:
    observations = [meraki_poster.observation(s.mac, s.ip, [meraki_poster.location(s, 2.2,
                                                                                   quirks)],
                                              quirks) for s in sightings]
    return meraki_poster.body(observations, secret, quirks)


# -- the validator --------------------------------------------------------------------------


@pytest.mark.gen_test
@pytest.mark.parametrize("path", [PATH, PATH + "/"])
async def test_get_answers_the_validator_as_plain_text(http_client: Any, base_url: str,
                                                        path: str) -> None:
    response = await http_client.fetch(base_url + path)
    assert response.code == 200
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert response.body == VALIDATOR.encode()


# -- secret and version ---------------------------------------------------------------------


@pytest.mark.gen_test
async def test_wrong_secret_is_403_and_nothing_applied(http_client: Any, base_url: str,
                                                       sink: RecordingSink) -> None:
    response = await send(http_client, base_url, wifi_body(sighting(1), secret="guess"))
    assert response.code == 403
    assert replied(response) == {"error": meraki.WRONG_SECRET}
    assert sink.batches == []


@pytest.mark.gen_test
async def test_version_2_is_400_and_nothing_applied(http_client: Any, base_url: str,
                                                    sink: RecordingSink) -> None:
    response = await send(http_client, base_url,
                          wifi_body(sighting(1), quirks=Quirks(version="2.0")))
    assert response.code == 400
    assert replied(response) == {"error": meraki.BAD_VERSION}
    assert sink.batches == []


@pytest.mark.gen_test
async def test_version_3_1_is_accepted(http_client: Any, base_url: str,
                                       sink: RecordingSink) -> None:
    response = await send(http_client, base_url,
                          wifi_body(sighting(1), quirks=Quirks(version="3.1")))
    assert (response.code, replied(response)) == (200, {"accepted": 1, "ignored": 0,
                                                        "rejected": 0})
    assert [type(e) for e in sink.events()] == [Fix, IpSeen]


@pytest.mark.gen_test
@pytest.mark.parametrize("raw", [b"", b"not json", b"[]", b'"x"', b'{"secret": 1}',
                                 b'{"secret": "s3cret in the body", "version": "3.0"}',
                                 b"[" * 10_000 + b"]" * 10_000])
async def test_body_that_is_no_scanning_api_post_is_400(http_client: Any, base_url: str,
                                                        sink: RecordingSink, raw: bytes) -> None:
    response = await send(http_client, base_url, None, raw=raw)
    assert response.code == 400
    assert replied(response) == {"error": meraki.BAD_BODY}
    assert sink.batches == []


# -- what is applied -------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_wifi_fixes_go_to_the_sink_in_feet_at_the_receive_time(
        http_client: Any, base_url: str, sink: RecordingSink) -> None:
    response = await send(http_client, base_url, wifi_body(sighting(1, 0), sighting(2, 3)))
    assert replied(response) == {"accepted": 2, "ignored": 0, "rejected": 0}
    ((batch, now_s),) = sink.batches
    assert now_s == NOW_S
    first = batch.events[0]
    assert isinstance(first, Fix)
    assert (first.mac, round(first.x_ft, 6), first.ts) == ("02:00:0a:00:00:01", 10.0,
                                                            NOW_S - 60.0)
    assert first.uncertainty_ft == 2.2 / M_PER_FT
    assert IpSeen("10.0.0.3", "02:00:0a:00:00:02", NOW_S - 30.0) in batch.events


@pytest.mark.gen_test
async def test_bluetooth_post_is_200_and_nothing_applied(http_client: Any, base_url: str,
                                                         sink: RecordingSink) -> None:
    body = wifi_body(sighting(1), sighting(2)) | {"type": "Bluetooth"}
    response = await send(http_client, base_url, body)
    assert (response.code, replied(response)) == (200, {"accepted": 0, "ignored": 2,
                                                        "rejected": 0})
    assert sink.events() == []
    assert sink.batches[0][0].by_type == {("bluetooth", "ignored"): 2}


@pytest.mark.gen_test
async def test_client_with_no_locations_is_ignored_but_its_ip_is_seen(
        http_client: Any, base_url: str, sink: RecordingSink) -> None:
    body = meraki_poster.body([meraki_poster.observation("02:00:0a:00:00:07", "/10.0.0.7", [])],
                              SECRET)
    response = await send(http_client, base_url, body)
    assert replied(response) == {"accepted": 0, "ignored": 1, "rejected": 0}
    assert sink.events() == [IpSeen("10.0.0.7", "02:00:0a:00:00:07", NOW_S)]


@pytest.mark.gen_test
async def test_string_coordinates_are_numbers_in_feet(http_client: Any, base_url: str,
                                                      sink: RecordingSink) -> None:
    body = wifi_body(sighting(1))
    entry = body["data"]["observations"][0]["locations"][0]
    entry["x"], entry["y"] = "1.5", "3"
    response = await send(http_client, base_url, body)
    assert replied(response)["accepted"] == 1
    fix = sink.events()[0]
    assert (fix.x_ft, fix.y_ft) == (1.5 / M_PER_FT, 3 / M_PER_FT)


@pytest.mark.gen_test
@pytest.mark.parametrize("x", ["NaN", "Infinity", "-inf", "nan"])
async def test_nan_coordinate_is_refused_and_the_rest_kept(http_client: Any, base_url: str,
                                                           sink: RecordingSink, x: str) -> None:
    body = wifi_body(sighting(1), sighting(2))
    body["data"]["observations"][0]["locations"][0]["x"] = x
    response = await send(http_client, base_url, body)
    assert (response.code, replied(response)) == (200, {"accepted": 1, "ignored": 0,
                                                        "rejected": 1})
    assert [e.mac for e in sink.events() if isinstance(e, Fix)] == ["02:00:0a:00:00:02"]


@pytest.mark.gen_test
async def test_the_collector_is_off_while_a_post_is_applied_and_on_after_it(
        http_client: Any, base_url: str, sink: RecordingSink,
        monkeypatch: pytest.MonkeyPatch) -> None:
    collecting: list[bool] = []
    monkeypatch.setattr(sink, "ingest", lambda batch, now_s: collecting.append(gc.isenabled()))
    applied = await send(http_client, base_url, wifi_body(sighting(1)))
    refused = await send(http_client, base_url, None, raw=b"not json")
    assert (applied.code, refused.code, collecting) == (200, 400, [False])
    assert gc.isenabled()


@pytest.mark.gen_test
async def test_a_collector_already_off_stays_off_after_a_post(http_client: Any, base_url: str,
                                                              sink: RecordingSink) -> None:
    gc.disable()
    try:
        response = await send(http_client, base_url, wifi_body(sighting(1)))
        assert (response.code, gc.isenabled()) == (200, False)
    finally:
        gc.enable()
    assert len(sink.batches) == 1


# -- the poster, with its quirks -------------------------------------------------------------


@pytest.mark.gen_test
async def test_poster_sends_the_fixes_since_the_last_post_once_a_minute(
        poster: MerakiPoster, sink: RecordingSink) -> None:
    for j in range(3):
        poster.add(sighting(1, j))
    assert poster.due(NOW_S)
    assert [status for status, _ in await poster.flush(NOW_S)] == [200]
    assert not poster.due(NOW_S + 59.0)
    poster.add(sighting(1, 4))
    assert poster.due(NOW_S + 60.0)
    await poster.flush(NOW_S + 60.0)
    await poster.aclose()
    assert [[e.x_ft for e in b.events if isinstance(e, Fix)] for b, _ in sink.batches] == \
        [[10.0, 30.0, 50.0], [90.0]]
    assert (poster.tally["posts"], poster.tally["accepted"], poster.tally["post_errors"]) == \
        (2, 4, 0)


@pytest.mark.gen_test
async def test_poster_quirks_are_all_taken(http_client: Any, base_url: str,
                                           sink: RecordingSink) -> None:
    quirks = Quirks(early_v3=True, string_coordinates=False, ipv4="slash", idle_clients=True,
                    bluetooth=True, repeats=1)
    poster = MerakiPoster(base_url + PATH, SECRET, quirks=quirks)
    poster.add(sighting(1, 0))
    poster.add(sighting(2, 0))
    await poster.flush(NOW_S)
    poster.add(sighting(1, 1))
    replies = await poster.flush(NOW_S + 60.0)
    await poster.aclose()
    assert [orjson.loads(body) for _, body in replies] == [
        {"accepted": 2, "ignored": 1, "rejected": 0},  # a repeat and a new fix; 2 is idle
        {"accepted": 0, "ignored": 2, "rejected": 0}]  # the Bluetooth post
    second = sink.batches[2][0]
    assert [(e.mac[-2:], e.x_ft) for e in second.events if isinstance(e, Fix)] == \
        [("01", 10.0), ("01", 30.0)]
    assert IpSeen("10.0.0.3", "02:00:0a:00:00:02", NOW_S) in second.events


@pytest.mark.gen_test(timeout=60)
async def test_thousand_clients_with_five_fixes_each_are_accepted(
        poster: MerakiPoster, sink: RecordingSink) -> None:
    for i in range(1000):
        for j in range(5):
            poster.add(sighting(i, j))
    (raw,) = poster.take_bodies(NOW_S)
    started = time.perf_counter()
    status, reply = await poster.post(raw)
    elapsed_ms = 1000 * (time.perf_counter() - started)
    await poster.aclose()
    print(f"1,000 x 5 POST of {len(raw)} bytes answered in {elapsed_ms:.0f} ms")  # no bound
    assert (status, orjson.loads(reply)) == (200, {"accepted": 5000, "ignored": 0,
                                                   "rejected": 0})
    events = sink.events()
    assert (sum(isinstance(e, Fix) for e in events), sum(isinstance(e, IpSeen) for e in events)) \
        == (5000, 1000)


# -- the body cap ---------------------------------------------------------------------------


@pytest.mark.gen_test
@pytest.mark.parametrize("meraki_cap", [4096])
@pytest.mark.parametrize("path", [PATH, PATH + "/", PATH + "?network=1"])
async def test_declared_body_over_the_meraki_cap_is_413(port: int, sink: RecordingSink,
                                                        meraki_cap: int, path: str) -> None:
    head = rawhttp.request_bytes("POST", path, length=meraki_cap + 1)
    reply = await rawhttp.exchange(port, head)
    assert (reply.status, reply.json()) == (413, {"error": TOO_LARGE})
    assert sink.batches == []


@pytest.mark.gen_test
@pytest.mark.parametrize("meraki_cap", [4096])
async def test_chunked_body_over_the_meraki_cap_is_cut(port: int, sink: RecordingSink,
                                                       meraki_cap: int) -> None:
    head = rawhttp.request_bytes("POST", PATH).replace(b"Content-Length: 0",
                                                       b"Transfer-Encoding: chunked")
    chunk = orjson.dumps(wifi_body(sighting(1))) + b" " * 2 * meraki_cap  # a good POST
    reply = await rawhttp.exchange(port, head + b"%x\r\n%s\r\n0\r\n\r\n" % (len(chunk),
                                                                                   chunk))
    assert (reply.status, reply.json()) == (413, {"error": TOO_LARGE})  # counted as it came
    assert sink.batches == []


@pytest.mark.gen_test
async def test_meraki_cap_replaces_the_server_cap_on_its_path_only(
        http_client: Any, base_url: str, port: int, sink: RecordingSink) -> None:
    body = wifi_body(*(sighting(i) for i in range(300)))
    raw = orjson.dumps(body)
    assert DEFAULT_CAP < len(raw) < meraki.DEFAULT_MAX_BODY_BYTES
    response = await send(http_client, base_url, None, raw=raw)
    assert replied(response)["accepted"] == 300
    other = await rawhttp.exchange(port, rawhttp.request_bytes("POST", "/elsewhere", raw))
    assert (other.status, other.json()) == (413, {"error": TOO_LARGE})
