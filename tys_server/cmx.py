"""CMX client: asynchronous IP→MAC look-up, host fail-over, test mode, MAC hashing (DESIGN 9).

Decisions where DESIGN is silent:
- "Private" means RFC 1918 (10/8, 172.16/12, 192.168/16), RFC 6598 shared address space
  (100.64/10, used for carrier-grade NAT and by some venue Wi-Fi) and IPv6 ULA (fc00::/7).
  Loopback, link-local, documentation and public addresses are not private. An IPv4-mapped
  IPv6 address (``::ffff:10.0.0.1``, as dual-stack sockets report IPv4 peers) is read as
  its IPv4 address.
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
import hashlib
import ipaddress
import json
import logging
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest, HTTPResponse

from tys_server.config import CmxSettings, ConfigError

log = logging.getLogger(__name__)

TEST_HOST = "test"
USER_AGENT = "tys-server"

_PRIVATE_NETWORKS = tuple(ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",  # RFC 1918
    "100.64.0.0/10",  # RFC 6598 shared address space (CGNAT)
    "fc00::/7",  # RFC 4193 unique local addresses
))
# Colon or dash pairs (aa:bb:.. / AA-BB-..), bare 12 digits, or Cisco dotted quads.
_MAC_RE = re.compile(r"[0-9a-f]{2}([:-]?)(?:[0-9a-f]{2}\1){4}[0-9a-f]{2}"
                     r"|[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}", re.IGNORECASE)
_NOT_HEX = re.compile(r"[^0-9a-f]")
_MAC_KEYS = ("macAddress", "deviceId")  # v2 client record, v3 stored notification

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


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


def normalise_mac(value: object) -> str | None:
    """A MAC in lower-case colon form, or None when value is not a usable MAC."""
    if not isinstance(value, str) or not _MAC_RE.fullmatch(value.strip()):
        return None
    digits = _NOT_HEX.sub("", value.lower())
    if digits == "0" * 12:  # a placeholder, never a client
        return None
    return ":".join(digits[i:i + 2] for i in range(0, 12, 2))


def hash_mac(mac: str, key: str) -> str:
    """The MAC as stored: normalised, and scrambled the way CMX does when key is set."""
    normal = normalise_mac(mac)
    if normal is None:
        raise ValueError("not a MAC address")
    if not key:
        return normal
    digest = hashlib.sha1((normal.replace(":", "") + key).encode("utf-8")).hexdigest()[-8:]
    return "00:00:" + ":".join(digest[i:i + 2] for i in range(0, 8, 2))


def _address(text: object) -> IpAddress | None:
    if not isinstance(text, str) or len(text) > 64 or "%" in text:  # no IPv6 zone ids
        return None
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def parse_ip(text: object) -> str | None:
    """The canonical text of an IPv4 or IPv6 address given by an API caller, or None."""
    address = _address(text)
    return None if address is None else str(address)


def _is_private(address: IpAddress) -> bool:
    return any(address in network for network in _PRIVATE_NETWORKS
               if network.version == address.version)


def is_private_ip(ip: str) -> bool:
    """True for RFC 1918, 100.64/10 and IPv6 ULA addresses (module docstring)."""
    address = _address(ip)
    return address is not None and _is_private(address)


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
        try:
            settings.ip2mac_url.format(host="cmx.example", ip="10.0.0.1")
        except (KeyError, IndexError, ValueError):
            raise ConfigError("cmx.ip2mac_url: only {host} and {ip} may appear in braces, "
                              f"got {settings.ip2mac_url!r}") from None
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
        address = _address(ip)
        if address is None:
            return "not_private", None
        loopback = self._test_mode and address.is_loopback
        if not (loopback or _is_private(address)):
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
