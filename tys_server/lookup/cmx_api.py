"""CMX client: asynchronous IP→MAC look-up, host fail-over, test mode, MAC hashing (DESIGN 9).

Decisions where DESIGN is silent:
- Only private addresses are looked up (``core.addresses`` says which those are).
- Test mode (a host named ``test``) also accepts loopback (127/8, ::1) so a developer on
  localhost can register; loopback is only ever answered by the test host, never sent to
  a real CMX. ``test`` is a pseudo-host in the list, tried in its place like the others.
- Redirects are not followed (credentials stay with the configured host): a 3xx, like any
  status other than 2xx, 204 and 404, marks the host down. So do 401/403 (wrong
  cmx.username / cmx.password), logged as a warning once per status change.
- With ``cmx.username`` empty no Authorization header is sent.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest, HTTPResponse

from tys_server.config import CmxSettings
from tys_server.core.addresses import IpAddress, is_private, read_address
from tys_server.core.macs import hash_mac, normalise_mac

log = logging.getLogger(__name__)

TEST_HOST = "test"
USER_AGENT = "tys-server"
_MAC_KEYS = ("macAddress", "deviceId")  # v2 client record, v3 stored notification


class NotOnWifi(Exception):
    """The IP is not a private address, or the CMX hosts that answered do not know it."""


class LocationUnavailable(Exception):
    """No CMX host answered."""


class _HostDown(Exception):
    """One host failed to answer usefully; the text says why (never credentials)."""


@dataclasses.dataclass
class HostState:
    """What look-ups have learned about one CMX host, for the status page and /healthz."""

    host: str
    status: str  # "unknown" until first asked, then "up" or "down"
    last_change_s: float  # epoch seconds of the last status change (start-up at first)
    last_error: str | None = None


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


def _mac_from_reply(response: HTTPResponse) -> str | None:
    """The MAC in one host's reply, None when it answered "unknown"; _HostDown otherwise."""
    code = response.code
    if code in (401, 403):
        raise _HostDown(f"HTTP {code}: CMX rejected cmx.username / cmx.password")
    if code in (204, 404):
        return None
    if not 200 <= code < 300:
        raise _HostDown(f"HTTP {code}")
    try:
        data = json.loads(response.body or b"")
    except (ValueError, RecursionError):
        raise _HostDown(f"HTTP {code} with a body that is not JSON") from None
    if isinstance(data, dict) and isinstance(data.get("notifications"), list):
        data = data["notifications"]  # the notification envelope, as CMX POSTs it
    records: list[Any] = [data] if isinstance(data, dict) else data
    if not isinstance(records, list):
        raise _HostDown("unexpected JSON shape")
    for record in records:
        if isinstance(record, dict):
            for key in _MAC_KEYS:
                mac = normalise_mac(record.get(key))
                if mac is not None:
                    return mac
    if not all(isinstance(r, dict) and any(k in r for k in _MAC_KEYS) for r in records):
        raise _HostDown("unexpected JSON shape")
    return None  # [] or records without a usable MAC: the host does not know the IP


class CmxClient:
    """IP→MAC through the configured CMX hosts, tried in order."""

    def __init__(self, settings: CmxSettings, *, http: AsyncHTTPClient | None = None,
                 on_lookup: Callable[[str, float], None] | None = None) -> None:
        self._settings = settings
        self._http = http
        self._on_lookup = on_lookup
        self._test_mode = TEST_HOST in settings.hosts
        now = time.time()
        self._states = [HostState(host, "unknown", now) for host in settings.hosts]

    @property
    def hosts(self) -> list[HostState]:
        """A snapshot of every host's state, in configured order."""
        return [dataclasses.replace(state) for state in self._states]

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
        text = str(address)
        answered = False
        for state in self._states:
            if state.host == TEST_HOST:
                mac, outcome = _test_mac(address), "test"
            elif loopback:
                continue  # only the test host can know a developer's localhost
            else:
                try:
                    mac, outcome = await self._ask(state.host, text), "found"
                except _HostDown as down:
                    self._set_status(state, "down", str(down))
                    continue
            self._set_status(state, "up", None)
            answered = True
            if mac is not None:
                log.debug("CMX %s: %s is %s", state.host, text, mac)
                return outcome, mac
            log.debug("CMX %s does not know %s", state.host, text)
        return ("not_found" if answered else "unavailable"), None

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
            raise _HostDown(exc.message or f"HTTP {exc.code}") from None
        except OSError as exc:  # what a non-curl client raises for a refused connection
            raise _HostDown(exc.strerror or type(exc).__name__) from None
        return _mac_from_reply(response)

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
