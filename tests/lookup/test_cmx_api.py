"""CMX client against real fake-CMX Tornado servers on 127.0.0.1 (no mocks)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Iterator

import pytest
from tornado.curl_httpclient import CurlAsyncHTTPClient
from tornado.httpclient import AsyncHTTPClient
from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop, PeriodicCallback

from tests.support.clock import Clock
from tools.cmx_sim import fake_cmx
from tools.cmx_sim.fake_cmx import FakeCmx
from tys_server.config import CmxSettings, ConfigError, load_settings
from tys_server.core.addresses import is_private_ip, parse_ip
from tys_server.core.macs import hash_mac
from tys_server.lookup.cmx_api import (
    CmxClient,
    LocationUnavailable,
    NotOnWifi,
    configure_http_client,
)

V2_URL = "http://{host}/api/location/v2/clients?ipAddress={ip}"
V3_URL = "http://{host}/api/location/v3/clients?ipAddress={ip}"
TIMEOUT_S = 0.3
PHONE_IP = "10.20.30.40"
PHONE_MAC = "a4:5e:60:d1:22:e3"
OTHER_MAC = "3c:22:fb:00:11:22"

StartCmx = Callable[..., tuple[FakeCmx, str]]


def cmx_settings(*hosts: str, **overrides: object) -> CmxSettings:
    values: dict[str, object] = {
        "hosts": hosts, "username": fake_cmx.USERNAME, "password": fake_cmx.PASSWORD,
        "ip2mac_url": V2_URL, "timeout_s": TIMEOUT_S,
    }
    values.update(overrides)
    return CmxSettings(**values)  # type: ignore[arg-type]


@pytest.fixture
def http(io_loop: IOLoop) -> Iterator[CurlAsyncHTTPClient]:
    client = CurlAsyncHTTPClient(force_instance=True)
    yield client
    client.close()


@pytest.fixture
def start_cmx(io_loop: IOLoop) -> Iterator[StartCmx]:
    """start_cmx(**FakeCmx fields) → (fake, "127.0.0.1:port"); servers stop after the test."""
    servers: list[HTTPServer] = []

    def start(**behaviour: object) -> tuple[FakeCmx, str]:
        fake = FakeCmx(**behaviour)  # type: ignore[arg-type]
        server, host = fake_cmx.start(fake)
        servers.append(server)
        return fake, host

    yield start
    for server in servers:
        server.stop()
        io_loop.run_sync(server.close_all_connections)


def recorder() -> tuple[list[tuple[str, float]], Callable[[str, float], None]]:
    seen: list[tuple[str, float]] = []
    return seen, lambda outcome, seconds: seen.append((outcome, seconds))


# --- pure helpers ---------------------------------------------------------------------

def test_hash_matches_cmx_mac_scrambling() -> None:
    assert hash_mac("00:00:2a:01:00:3f", "listening") == "00:00:a9:3e:a7:3a"
    assert hash_mac("00-00-2A-01-00-3F", "listening") == "00:00:a9:3e:a7:3a"


def test_empty_hash_key_keeps_the_mac_normalised() -> None:
    assert hash_mac("A4-5E-60-D1-22-E3", "") == PHONE_MAC
    assert hash_mac("a45e.60d1.22e3", "") == PHONE_MAC


def test_hash_refuses_what_is_not_a_mac() -> None:
    with pytest.raises(ValueError):
        hash_mac("a4:5e:60:d1:22", "listening")


@pytest.mark.parametrize("ip", [
    "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1", "100.64.0.1",
    "100.127.255.254", "fd12:3456::1", "fc00::1", "::ffff:192.168.1.1",
])
def test_private_addresses(ip: str) -> None:
    assert is_private_ip(ip)


@pytest.mark.parametrize("ip", [
    "8.8.8.8", "172.32.0.1", "100.128.0.1", "127.0.0.1", "::1", "169.254.1.1",
    "fe80::1", "2001:db8::1", "2a00:1450::1", "0.0.0.0", "255.255.255.255", "nonsense", "",
])
def test_not_private_addresses(ip: str) -> None:
    assert not is_private_ip(ip)


@pytest.mark.parametrize(("text", "expected"), [
    ("10.0.0.1", "10.0.0.1"),
    (" 10.0.0.1 ", "10.0.0.1"),
    ("FD00:0:0::1", "fd00::1"),
    ("::ffff:10.0.0.1", "10.0.0.1"),
    ("999.1.1.1", None),
    ("010.0.0.1", None),
    ("fe80::1%eth0", None),
    ("10.0.0.1/24", None),
    ("", None),
    (167772161, None),
    (None, None),
    (["10.0.0.1"], None),
])
def test_parse_ip(text: object, expected: str | None) -> None:
    assert parse_ip(text) == expected


def test_url_with_unknown_placeholder_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="cmx.ip2mac_url"):
        load_settings(None, environ={
            "TYS_CMX_IP2MAC_URL": "https://{host}/{path}?ipAddress={ip}"})


# --- test mode ------------------------------------------------------------------------

@pytest.mark.gen_test
async def test_test_mode_maps_ipv4_octets_without_network(start_cmx: StartCmx) -> None:
    fake, host = start_cmx(clients={"10.1.2.3": PHONE_MAC})
    seen, on_lookup = recorder()
    client = CmxClient(cmx_settings("test", host), on_lookup=on_lookup)
    assert await client.lookup_mac("10.1.2.3") == "02:00:0a:01:02:03"
    assert await client.lookup_mac("192.168.200.17") == "02:00:c0:a8:c8:11"
    assert fake.requests == 0
    assert [outcome for outcome, _ in seen] == ["test", "test"]


@pytest.mark.gen_test
async def test_test_mode_accepts_loopback_but_not_public() -> None:
    seen, on_lookup = recorder()
    client = CmxClient(cmx_settings("test"), on_lookup=on_lookup)
    assert await client.lookup_mac("127.0.0.1") == "02:00:7f:00:00:01"
    with pytest.raises(NotOnWifi):
        await client.lookup_mac("8.8.8.8")
    with pytest.raises(NotOnWifi):
        await client.lookup_mac("fd00::1")  # IPv6 has no test mapping
    assert [outcome for outcome, _ in seen] == ["test", "not_private", "not_found"]


@pytest.mark.gen_test
async def test_loopback_is_not_private_outside_test_mode(
        start_cmx: StartCmx, http: CurlAsyncHTTPClient) -> None:
    fake, host = start_cmx(clients={"127.0.0.1": PHONE_MAC})
    with pytest.raises(NotOnWifi):
        await CmxClient(cmx_settings(host), http=http).lookup_mac("127.0.0.1")
    assert fake.requests == 0


@pytest.mark.gen_test
async def test_test_mode_hashes_when_a_key_is_set() -> None:
    client = CmxClient(cmx_settings("test", mac_hash_key="listening"))
    assert await client.lookup_mac("10.1.2.3") == hash_mac("02:00:0a:01:02:03", "listening")


# --- v2 and v3 replies ----------------------------------------------------------------

@pytest.mark.gen_test
async def test_v2_found(start_cmx: StartCmx, http: CurlAsyncHTTPClient) -> None:
    fake, host = start_cmx(clients={PHONE_IP: PHONE_MAC.upper()})
    seen, on_lookup = recorder()
    client = CmxClient(cmx_settings(host), http=http, on_lookup=on_lookup)
    started = time.perf_counter()
    assert await client.lookup_mac(PHONE_IP) == PHONE_MAC
    around_s = time.perf_counter() - started
    assert fake.seen_ips == [PHONE_IP]
    assert [outcome for outcome, _ in seen] == ["found"]
    assert 0 < seen[0][1] <= around_s  # the look-up's own seconds, within the call's


@pytest.mark.gen_test
async def test_v2_204_is_not_on_wifi(start_cmx: StartCmx, http: CurlAsyncHTTPClient) -> None:
    _, host = start_cmx()
    seen, on_lookup = recorder()
    with pytest.raises(NotOnWifi):
        await CmxClient(cmx_settings(host), http=http, on_lookup=on_lookup).lookup_mac(PHONE_IP)
    assert [outcome for outcome, _ in seen] == ["not_found"]


@pytest.mark.gen_test
async def test_v3_found(start_cmx: StartCmx, http: CurlAsyncHTTPClient) -> None:
    _, host = start_cmx(clients={PHONE_IP: PHONE_MAC})
    client = CmxClient(cmx_settings(host, ip2mac_url=V3_URL), http=http)
    assert await client.lookup_mac(PHONE_IP) == PHONE_MAC


@pytest.mark.gen_test
async def test_v3_empty_list_is_not_on_wifi(
        start_cmx: StartCmx, http: CurlAsyncHTTPClient) -> None:
    _, host = start_cmx(clients={"10.0.0.99": PHONE_MAC})
    with pytest.raises(NotOnWifi):
        await CmxClient(cmx_settings(host, ip2mac_url=V3_URL), http=http).lookup_mac(PHONE_IP)


@pytest.mark.gen_test
async def test_found_mac_is_hashed_with_the_key(
        start_cmx: StartCmx, http: CurlAsyncHTTPClient) -> None:
    _, host = start_cmx(clients={PHONE_IP: "00:00:2a:01:00:3f"})
    client = CmxClient(cmx_settings(host, mac_hash_key="listening"), http=http)
    assert await client.lookup_mac(PHONE_IP) == "00:00:a9:3e:a7:3a"


@pytest.mark.gen_test
async def test_ipv6_is_url_quoted_and_found(
        start_cmx: StartCmx, http: CurlAsyncHTTPClient) -> None:
    fake, host = start_cmx(clients={"fd00:1::5": PHONE_MAC})
    client = CmxClient(cmx_settings(host), http=http)
    assert await client.lookup_mac("FD00:1:0::5") == PHONE_MAC
    assert fake.seen_ips == ["fd00:1::5"]


@pytest.mark.gen_test
async def test_public_ip_is_not_on_wifi_without_asking(
        start_cmx: StartCmx, http: CurlAsyncHTTPClient) -> None:
    fake, host = start_cmx(clients={"8.8.8.8": PHONE_MAC})
    seen, on_lookup = recorder()
    client = CmxClient(cmx_settings(host), http=http, on_lookup=on_lookup)
    for ip in ("8.8.8.8", "not an ip"):
        with pytest.raises(NotOnWifi):
            await client.lookup_mac(ip)
    assert fake.requests == 0
    assert [outcome for outcome, _ in seen] == ["not_private", "not_private"]
    assert client.hosts[0].status == "unknown"


FOUND, UNKNOWN, DOWN = "found", "unknown", "down"


@pytest.mark.parametrize(("status", "body", "expected"), [
    (None, b'[{"macAddress": "A4-5E-60-D1-22-E3"}]', FOUND),
    (None, b'{"macAddress": "a4:5e:60:d1:22:e3"}', FOUND),
    (None, b'{"deviceId": "a45e.60d1.22e3"}', FOUND),
    (None, b'{"notifications": [{"deviceId": "a4:5e:60:d1:22:e3"}]}', FOUND),
    (None, b'[{"macAddress": "junk"}, {"macAddress": "a4:5e:60:d1:22:e3"}]', FOUND),
    (None, b'[{"macAddress": "00:00:00:00:00:00"}, {"deviceId": "a4:5e:60:d1:22:e3"}]', FOUND),
    (None, b"[]", UNKNOWN),
    (None, b'[{"macAddress": null}]', UNKNOWN),
    (404, b'{"error": "no such client"}', DOWN),
    (None, b"<html>Service Unavailable</html>", DOWN),
    (None, b"", DOWN),
    (None, b'{"error": "busy"}', DOWN),
    (None, b'"a4:5e:60:d1:22:e3"', DOWN),
    (None, b"[1, 2]", DOWN),
    (None, b'[{"ip": "10.20.30.40"}]', DOWN),
    (500, b"oops", DOWN),
    (502, b"", DOWN),
    (400, b"", DOWN),
    (403, b"", DOWN),
    (301, b"", DOWN),
])
@pytest.mark.gen_test
async def test_reply_shapes(start_cmx: StartCmx, http: CurlAsyncHTTPClient,
                            status: int | None, body: bytes, expected: str) -> None:
    _, host = start_cmx(status=status, body=body)
    client = CmxClient(cmx_settings(host), http=http)
    if expected == FOUND:
        assert await client.lookup_mac(PHONE_IP) == PHONE_MAC
    else:
        error = NotOnWifi if expected == UNKNOWN else LocationUnavailable
        with pytest.raises(error):
            await client.lookup_mac(PHONE_IP)
    assert client.hosts[0].status == ("down" if expected == DOWN else "up")


# --- auth -----------------------------------------------------------------------------

@pytest.mark.gen_test
async def test_basic_auth_is_sent(start_cmx: StartCmx, http: CurlAsyncHTTPClient) -> None:
    fake, host = start_cmx(clients={PHONE_IP: PHONE_MAC})
    assert await CmxClient(cmx_settings(host), http=http).lookup_mac(PHONE_IP) == PHONE_MAC
    assert fake.seen_users == [fake_cmx.USERNAME]


@pytest.mark.gen_test
async def test_rejected_credentials_mark_the_host_down_without_leaking(
        start_cmx: StartCmx, http: CurlAsyncHTTPClient,
        caplog: pytest.LogCaptureFixture) -> None:
    strict, strict_host = start_cmx(clients={PHONE_IP: OTHER_MAC}, password="other")
    _, good_host = start_cmx(clients={PHONE_IP: PHONE_MAC})
    # down_for_s 0: the strict host is asked by both look-ups, and warned about once.
    client = CmxClient(cmx_settings(strict_host, good_host, down_for_s=0.0), http=http)
    with caplog.at_level(logging.INFO, logger="tys_server.lookup.cmx_api"):
        assert await client.lookup_mac(PHONE_IP) == PHONE_MAC
        assert await client.lookup_mac(PHONE_IP) == PHONE_MAC
    first = client.hosts[0]
    assert first.status == "down"
    assert first.last_error is not None and "401" in first.last_error
    assert strict.requests == 2
    ours = [r for r in caplog.records if r.name == "tys_server.lookup.cmx_api"]
    warnings = [r for r in ours if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # once per status change, not per look-up
    assert strict_host in warnings[0].getMessage()
    text = "\n".join(r.getMessage() for r in ours) + repr(client.hosts)
    assert fake_cmx.PASSWORD not in text
    assert PHONE_MAC not in text and PHONE_IP not in text  # nothing personal at INFO


@pytest.mark.gen_test
async def test_no_username_sends_no_authorization(
        start_cmx: StartCmx, http: CurlAsyncHTTPClient) -> None:
    fake, host = start_cmx(clients={PHONE_IP: PHONE_MAC})
    with pytest.raises(LocationUnavailable):
        await CmxClient(cmx_settings(host, username=""), http=http).lookup_mac(PHONE_IP)
    assert fake.seen_users == [None]


# --- fail-over ------------------------------------------------------------------------

def _refused(start_cmx: StartCmx) -> tuple[FakeCmx | None, str]:
    return None, fake_cmx.refusing_host()


def _erroring(start_cmx: StartCmx) -> tuple[FakeCmx | None, str]:
    return start_cmx(status=500, body=b"Internal Server Error")


def _garbage(start_cmx: StartCmx) -> tuple[FakeCmx | None, str]:
    return start_cmx(body=b"\x00\xffnot json at all")


def _slow(start_cmx: StartCmx) -> tuple[FakeCmx | None, str]:
    return start_cmx(clients={PHONE_IP: OTHER_MAC}, delay_s=5.0)


@pytest.mark.parametrize("down_host", [_refused, _erroring, _garbage, _slow],
                         ids=["refused", "http-500", "garbage", "slow"])
@pytest.mark.gen_test
async def test_fails_over_to_the_next_host(
        start_cmx: StartCmx, http: CurlAsyncHTTPClient,
        down_host: Callable[[StartCmx], tuple[FakeCmx | None, str]]) -> None:
    down, first = down_host(start_cmx)
    second, second_host = start_cmx(clients={PHONE_IP: PHONE_MAC})
    seen, on_lookup = recorder()
    client = CmxClient(cmx_settings(first, second_host), http=http, on_lookup=on_lookup)
    assert await client.lookup_mac(PHONE_IP) == PHONE_MAC
    if down is not None:  # at most one timeout: the down host was asked once, not again
        assert down.requests == 1
    assert second.requests == 1
    assert [state.status for state in client.hosts] == ["down", "up"]
    assert client.hosts[0].last_error
    assert [outcome for outcome, _ in seen] == ["found"]


@pytest.mark.gen_test
async def test_first_host_that_knows_wins(start_cmx: StartCmx, http: CurlAsyncHTTPClient) -> None:
    first, first_host = start_cmx(clients={PHONE_IP: PHONE_MAC})
    second, second_host = start_cmx(clients={PHONE_IP: OTHER_MAC})
    client = CmxClient(cmx_settings(first_host, second_host), http=http)
    assert await client.lookup_mac(PHONE_IP) == PHONE_MAC
    assert (first.requests, second.requests) == (1, 0)
    assert [state.status for state in client.hosts] == ["up", "unknown"]


@pytest.mark.gen_test
async def test_host_that_does_not_know_passes_to_the_next(
        start_cmx: StartCmx, http: CurlAsyncHTTPClient) -> None:
    first, first_host = start_cmx()
    second, second_host = start_cmx(clients={PHONE_IP: OTHER_MAC}, delay_s=0.05)
    client = CmxClient(cmx_settings(first_host, second_host, ip2mac_url=V3_URL), http=http)
    assert await client.lookup_mac(PHONE_IP) == OTHER_MAC
    assert (first.requests, second.requests) == (1, 1)


@pytest.mark.gen_test
async def test_all_hosts_down_is_location_unavailable(
        start_cmx: StartCmx, http: CurlAsyncHTTPClient) -> None:
    seen, on_lookup = recorder()
    hosts = (fake_cmx.refusing_host(), _erroring(start_cmx)[1], _slow(start_cmx)[1])
    client = CmxClient(cmx_settings(*hosts), http=http, on_lookup=on_lookup)
    started = time.perf_counter()
    with pytest.raises(LocationUnavailable):
        await client.lookup_mac(PHONE_IP)
    around_s = time.perf_counter() - started
    assert [state.status for state in client.hosts] == ["down"] * 3
    assert [outcome for outcome, _ in seen] == ["unavailable"]
    assert TIMEOUT_S <= seen[0][1] <= around_s  # the slow host's timeout, within the call's


@pytest.mark.gen_test
async def test_one_down_one_unknown_is_not_on_wifi(
        start_cmx: StartCmx, http: CurlAsyncHTTPClient) -> None:
    seen, on_lookup = recorder()
    _, unknowing = start_cmx(clients={"10.9.9.9": PHONE_MAC})
    client = CmxClient(cmx_settings(fake_cmx.refusing_host(), unknowing),
                       http=http, on_lookup=on_lookup)
    with pytest.raises(NotOnWifi):
        await client.lookup_mac(PHONE_IP)
    assert [outcome for outcome, _ in seen] == ["not_found"]


@pytest.mark.gen_test
async def test_host_recovers(start_cmx: StartCmx, http: CurlAsyncHTTPClient) -> None:
    fake, host = start_cmx(clients={PHONE_IP: PHONE_MAC}, status=503)
    client = CmxClient(cmx_settings(host), http=http)
    initial = client.hosts[0]
    assert (initial.status, initial.last_error) == ("unknown", None)
    with pytest.raises(LocationUnavailable):
        await client.lookup_mac(PHONE_IP)
    down = client.hosts[0]
    assert (down.status, down.last_error) == ("down", "HTTP 503")
    assert down.last_change_s >= initial.last_change_s
    fake.status = None
    assert await client.lookup_mac(PHONE_IP) == PHONE_MAC
    up = client.hosts[0]
    assert (up.status, up.last_error) == ("up", None)
    assert up.last_change_s >= down.last_change_s


# --- a host that failed is skipped while another answers (DESIGN 13) ------------------

@pytest.mark.gen_test
async def test_wrong_ip2mac_url_is_down_with_an_error_naming_the_setting(
        start_cmx: StartCmx, http: CurlAsyncHTTPClient) -> None:
    fake, host = start_cmx(clients={PHONE_IP: PHONE_MAC})
    wrong_url = "http://{host}/api/location/v9/clients?ipAddress={ip}"  # Tornado's 404
    client = CmxClient(cmx_settings(host, ip2mac_url=wrong_url), http=http)
    with pytest.raises(LocationUnavailable):  # 503, never "Connect to WiFi first"
        await client.lookup_mac(PHONE_IP)
    state = client.hosts[0]
    assert (state.status, state.last_error) == (
        "down", "HTTP 404: no such API on this host, check cmx.ip2mac_url")
    assert fake.requests == 0  # the path is not the API's: its handler never ran


@pytest.mark.gen_test
async def test_404_host_is_down_and_the_next_host_answers(
        start_cmx: StartCmx, http: CurlAsyncHTTPClient) -> None:
    _, wrong_host = start_cmx(status=404, body=b'{"error": "Not Found"}')
    _, good_host = start_cmx(clients={PHONE_IP: PHONE_MAC})
    client = CmxClient(cmx_settings(wrong_host, good_host), http=http)
    assert await client.lookup_mac(PHONE_IP) == PHONE_MAC
    assert [(s.status, s.last_error) for s in client.hosts] == [
        ("down", "HTTP 404: no such API on this host, check cmx.ip2mac_url"), ("up", None)]


@pytest.mark.gen_test(timeout=20)
async def test_dead_first_host_is_asked_once_by_50_concurrent_lookups(
        start_cmx: StartCmx, http: CurlAsyncHTTPClient) -> None:
    ips = [f"10.0.1.{i}" for i in range(1, 51)]
    macs = [f"a4:5e:60:d1:22:{i:02x}" for i in range(1, 51)]
    # The dead host would answer after 5 s, far beyond timeout_s: a black hole to TYS.
    dead, dead_host = start_cmx(clients=dict(zip(ips, macs, strict=True)), delay_s=5.0)
    alive, alive_host = start_cmx(clients=dict(zip(ips, macs, strict=True)))
    client = CmxClient(cmx_settings(dead_host, alive_host), http=http)
    found = await asyncio.gather(*(client.lookup_mac(ip) for ip in ips))
    assert found == macs
    # One probe reached the dead host; the 49 look-ups that came while it was in flight
    # went on to the next host at once. Fifty requests here would mean fifty timeouts.
    assert dead.requests == 1
    assert alive.requests == 50
    assert [state.status for state in client.hosts] == ["down", "up"]
    # Within cmx.down_for_s the dead host is not asked again.
    assert await asyncio.gather(*(client.lookup_mac(ip) for ip in ips[:10])) == macs[:10]
    assert dead.requests == 1


@pytest.mark.gen_test
async def test_failed_host_is_skipped_for_down_for_s_then_asked_again(
        start_cmx: StartCmx, http: CurlAsyncHTTPClient) -> None:
    clock = Clock(1000.0)
    first, first_host = start_cmx(clients={PHONE_IP: PHONE_MAC}, status=503)
    second, second_host = start_cmx(clients={PHONE_IP: OTHER_MAC})
    client = CmxClient(cmx_settings(first_host, second_host, down_for_s=30.0), http=http,
                       clock=clock)
    assert await client.lookup_mac(PHONE_IP) == OTHER_MAC
    assert (first.requests, second.requests) == (1, 1)
    first.status = None  # it is back, but TYS does not know yet
    clock.now_s += 29.9
    assert await client.lookup_mac(PHONE_IP) == OTHER_MAC
    assert (first.requests, second.requests) == (1, 2)
    assert client.hosts[0].status == "down"
    clock.now_s += 0.2
    assert await client.lookup_mac(PHONE_IP) == PHONE_MAC
    assert (first.requests, second.requests) == (2, 2)
    assert [state.status for state in client.hosts] == ["up", "up"]


@pytest.mark.gen_test
async def test_skipped_host_is_not_asked_when_another_answers_unknown(
        start_cmx: StartCmx, http: CurlAsyncHTTPClient) -> None:
    first, first_host = start_cmx(clients={PHONE_IP: PHONE_MAC}, status=503)
    second, second_host = start_cmx()
    client = CmxClient(cmx_settings(first_host, second_host), http=http, clock=Clock(1000.0))
    for _ in range(2):
        with pytest.raises(NotOnWifi):
            await client.lookup_mac(PHONE_IP)
    assert (first.requests, second.requests) == (1, 2)


@pytest.mark.gen_test
async def test_hosts_all_in_their_down_time_are_still_tried_in_order(
        start_cmx: StartCmx, http: CurlAsyncHTTPClient) -> None:
    clock = Clock(1000.0)
    first, first_host = start_cmx(status=503)
    second, second_host = start_cmx(clients={PHONE_IP: OTHER_MAC}, status=503)
    client = CmxClient(cmx_settings(first_host, second_host), http=http, clock=clock)
    with pytest.raises(LocationUnavailable):
        await client.lookup_mac(PHONE_IP)
    second.status = None
    clock.now_s += 1.0
    assert await client.lookup_mac(PHONE_IP) == OTHER_MAC  # not a 503 without asking
    assert (first.requests, second.requests) == (2, 2)
    assert first.seen_ips == second.seen_ips == [PHONE_IP, PHONE_IP]


@pytest.mark.gen_test
async def test_concurrent_lookups_wait_for_the_probe_of_the_only_host(
        start_cmx: StartCmx, http: CurlAsyncHTTPClient) -> None:
    dead, dead_host = start_cmx(clients={PHONE_IP: PHONE_MAC}, delay_s=5.0)
    client = CmxClient(cmx_settings(dead_host), http=http)
    outcomes = await asyncio.gather(*(client.lookup_mac(PHONE_IP) for _ in range(5)),
                                    return_exceptions=True)
    assert [type(outcome) for outcome in outcomes] == [LocationUnavailable] * 5
    assert dead.requests == 1  # the others took the probe's verdict: one timeout in all

    slow, slow_host = start_cmx(clients={PHONE_IP: PHONE_MAC}, delay_s=0.05)
    client = CmxClient(cmx_settings(slow_host), http=http)
    assert await asyncio.gather(*(client.lookup_mac(PHONE_IP) for _ in range(5))) == \
        [PHONE_MAC] * 5  # after a good verdict each look-up asks the host itself
    assert slow.requests == 5


# --- the loop keeps running -----------------------------------------------------------

@pytest.mark.gen_test
async def test_loop_keeps_running_while_a_host_times_out(
        start_cmx: StartCmx, http: CurlAsyncHTTPClient) -> None:
    slow_fake, slow_host = _slow(start_cmx)
    _, fast_host = start_cmx(clients={PHONE_IP: PHONE_MAC})
    slow = CmxClient(cmx_settings(slow_host, fast_host), http=http)
    fast = CmxClient(cmx_settings(fast_host), http=http)

    ticks: list[float] = []
    ticker = PeriodicCallback(lambda: ticks.append(time.monotonic()), 10)
    ticker.start()
    try:
        pending = asyncio.ensure_future(slow.lookup_mac(PHONE_IP))
        while slow_fake is not None and slow_fake.requests == 0:  # no event to await: poll
            await asyncio.sleep(0.005)
        assert await fast.lookup_mac(PHONE_IP) == PHONE_MAC
        assert not pending.done()  # the fast look-up finished while the slow one waits
        ticks_before = len(ticks)
        assert await pending == PHONE_MAC
        ticks_while_waiting = len(ticks) - ticks_before
    finally:
        ticker.stop()
    # Order, not durations: the loop ran other callbacks while the slow host timed out
    # (a look-up that blocked the loop would let none run until it returned).
    assert ticks_while_waiting >= 1


def test_hosts_is_a_snapshot() -> None:
    client = CmxClient(cmx_settings("cmx-a.example", "cmx-b.example"))
    states = client.hosts
    assert [s.host for s in states] == ["cmx-a.example", "cmx-b.example"]
    states[0].status = "down"
    assert client.hosts[0].status == "unknown"
    assert dataclasses.asdict(client.hosts[0]).keys() == {
        "host", "status", "last_change_s", "last_error"}


def test_configure_http_client_picks_curl_and_quiets_its_debug_log() -> None:
    curl_log = logging.getLogger("tornado.curl_httpclient")
    saved, saved_level = AsyncHTTPClient._save_configuration(), curl_log.level
    try:
        configure_http_client(max_clients=7)
        assert AsyncHTTPClient.configured_class() is CurlAsyncHTTPClient
        assert AsyncHTTPClient._save_configuration()[1] == {"max_clients": 7}
        assert curl_log.getEffectiveLevel() == logging.INFO  # its DEBUG shows Authorization
    finally:
        AsyncHTTPClient._restore_configuration(saved)
        curl_log.setLevel(saved_level)
