"""CMX client: asynchronous IP→MAC look-up, host fail-over, test mode, MAC hashing (DESIGN 9).

Fail-over (DESIGN 13): a host that failed is skipped for ``cmx.down_for_s`` while
another host answers, so a dead primary does not cost every look-up its timeout. A host
not known to be up (never asked, or down) gets one request at a time, a *probe*: other
look-ups meanwhile go on to the next host, and wait for the probe's verdict only when
no other host answered. When every host is in its down time, they are all tried anyway,
in order: a look-up never answers "unavailable" without asking.

Decisions where DESIGN is silent:
- Only private addresses are looked up (``core.addresses`` says which those are).
- Test mode (a host named ``test``) also accepts loopback (127/8, ::1) so a developer on
  localhost can register; loopback is only ever answered by the test host, never sent to
  a real CMX. ``test`` is a pseudo-host in the list, tried in its place like the others.
- 401/403 (wrong cmx.username / cmx.password) mark the host down like a timeout; a
  status change is logged once, not per look-up.
- With ``cmx.username`` empty no Authorization header is sent.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import logging
import math
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from tys_server.config import CmxSettings
from tys_server.core.addresses import IpAddress, is_private, read_address
from tys_server.core.macs import hash_mac
from tys_server.lookup.cmx_reply import HostDown, mac_from_reply

log = logging.getLogger(__name__)

TEST_HOST = "test"
USER_AGENT = "tys-server"


class NotOnWifi(Exception):
    """The IP is not a private address, or the CMX hosts that answered do not know it."""


class LocationUnavailable(Exception):
    """No CMX host answered."""


@dataclasses.dataclass
class HostState:
    """What look-ups have learned about one CMX host, for the status page and /healthz."""

    host: str
    status: str  # "unknown" until first asked, then "up" or "down"
    last_change_s: float  # epoch seconds of the last status change (start-up at first)
    last_error: str | None = None


class _Host:
    """A host's state, until when it is skipped, and the verdict of its probe in flight."""

    __slots__ = ("state", "skip_until_s", "probe")

    def __init__(self, state: HostState) -> None:
        self.state = state
        self.skip_until_s = -math.inf  # on the client's clock
        # Set while a request to a host not known to be up is in flight: True once the
        # host answered, False when it failed (or the asking look-up was cancelled).
        self.probe: asyncio.Future[bool] | None = None


def configure_http_client(max_clients: int) -> None:
    """Make curl the AsyncHTTPClient implementation; call once, before any client exists."""
    AsyncHTTPClient.configure("tornado.curl_httpclient.CurlAsyncHTTPClient",
                              max_clients=max_clients)
    # curl's DEBUG output includes the request headers, Authorization among them.
    logging.getLogger("tornado.curl_httpclient").setLevel(logging.INFO)


def _test_mac(address: IpAddress) -> str | None:
    if not isinstance(address, ipaddress.IPv4Address):
        return None
    return "02:00:" + ":".join(f"{octet:02x}" for octet in address.packed)


class CmxClient:
    """IP→MAC through the configured CMX hosts, tried in order, skipping those just down."""

    def __init__(self, settings: CmxSettings, *, http: AsyncHTTPClient | None = None,
                 on_lookup: Callable[[str, float], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._settings = settings
        self._http = http
        self._on_lookup = on_lookup
        self._clock = clock  # measures cmx.down_for_s
        self._test_mode = TEST_HOST in settings.hosts
        now = time.time()
        self._hosts = [_Host(HostState(host, "unknown", now)) for host in settings.hosts]

    @property
    def hosts(self) -> list[HostState]:
        """A snapshot of every host's state, in configured order."""
        return [dataclasses.replace(host.state) for host in self._hosts]

    async def lookup_mac(self, ip: str) -> str:
        """The MAC as stored for this IP; raises NotOnWifi or LocationUnavailable."""
        started = time.perf_counter()
        outcome, mac = await self._find(ip)
        if self._on_lookup is not None:
            self._on_lookup(outcome, time.perf_counter() - started)
        if mac is not None:
            return hash_mac(mac, self._settings.mac_hash_key)
        if outcome == "unavailable":
            raise LocationUnavailable()
        raise NotOnWifi()

    async def _find(self, ip: str) -> tuple[str, str | None]:
        address = read_address(ip)
        if address is None:
            return "not_private", None
        loopback = self._test_mode and address.is_loopback
        if not (loopback or is_private(address)):
            return "not_private", None
        now = self._clock()
        asked: set[_Host] = set()
        answered = False
        # First the hosts outside their down time; if none of them answered, the rest.
        for skip_down in (True, False):
            waiting: list[tuple[_Host, asyncio.Future[bool]]] = []
            for host in self._hosts:
                if host in asked or (loopback and host.state.host != TEST_HOST):
                    continue  # only the test host can know a developer's localhost
                if skip_down and host.skip_until_s > now:
                    continue
                if host.probe is not None:
                    waiting.append((host, host.probe))  # another look-up is probing it
                    continue
                asked.add(host)
                known, outcome, mac = await self._ask_host(host, address)
                answered |= known
                if mac is not None:
                    return outcome, mac
            while waiting:
                done, _ = await asyncio.wait([probe for _, probe in waiting],
                                             return_when=asyncio.FIRST_COMPLETED)
                for host, probe in [pair for pair in waiting if pair[1] in done]:
                    waiting.remove((host, probe))
                    asked.add(host)
                    if not probe.result():
                        continue  # it failed during this look-up: counts as asked
                    known, outcome, mac = await self._ask_host(host, address)
                    answered |= known
                    if mac is not None:
                        return outcome, mac
            if answered:
                break
        return ("not_found" if answered else "unavailable"), None

    async def _ask_host(self, host: _Host, address: IpAddress) -> tuple[bool, str, str | None]:
        """(the host answered, outcome, the MAC it knows); a failure marks it down."""
        state = host.state
        if state.host == TEST_HOST:
            self._set_status(state, "up", None)
            return True, "test", _test_mac(address)
        text = str(address)
        probe = None
        if state.status != "up":
            probe = host.probe = asyncio.get_running_loop().create_future()
        try:
            mac = await self._ask(state.host, text)
            self._set_status(state, "up", None)
            host.skip_until_s = -math.inf
        except HostDown as down:
            self._set_status(state, "down", str(down))
            host.skip_until_s = self._clock() + self._settings.down_for_s
            return False, "unavailable", None
        finally:
            if probe is not None:  # the look-ups waiting for this verdict go on
                host.probe = None
                probe.set_result(state.status == "up")
        if mac is None:
            log.debug("CMX %s does not know %s", state.host, text)
        else:
            log.debug("CMX %s: %s is %s", state.host, text, mac)
        return True, "found", mac

    async def _ask(self, host: str, ip: str) -> str | None:
        settings = self._settings
        auth: dict[str, Any] = {}
        if settings.username:
            auth = {"auth_username": settings.username, "auth_password": settings.password,
                    "auth_mode": "basic"}
        request = HTTPRequest(
            settings.ip2mac_url.format(host=host, ip=quote(ip, safe="")),
            headers={"Accept": "application/json"}, user_agent=USER_AGENT,
            connect_timeout=settings.timeout_s, request_timeout=settings.timeout_s,
            follow_redirects=False, validate_cert=settings.verify_tls,
            ca_certs=settings.ca_file, **auth)
        if self._http is None:
            self._http = AsyncHTTPClient()  # the shared one configure_http_client set up
        try:
            response = await self._http.fetch(request, raise_error=False)
        except HTTPClientError as exc:  # 599: timeout, refused, TLS or DNS failure
            raise HostDown(exc.message or f"HTTP {exc.code}") from None
        except OSError as exc:  # what a non-curl client raises for a refused connection
            raise HostDown(exc.strerror or type(exc).__name__) from None
        return mac_from_reply(response)

    def _set_status(self, state: HostState, status: str, error: str | None) -> None:
        state.last_error = error
        if state.status == status:
            return
        previous, state.status, state.last_change_s = state.status, status, time.time()
        if status == "down":
            log.warning("CMX host %s is down: %s", state.host, error)
        elif previous == "down":
            log.info("CMX host %s is up again", state.host)
        else:
            log.info("CMX host %s is up", state.host)
