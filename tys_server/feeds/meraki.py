"""Meraki Scanning API v3 POST bodies → typed events (DESIGN 12.3). Pure: no I/O.

Meraki POSTs about once a minute per network: ``{"version": "3.0", "secret", "type":
"WiFi", "data": {"networkId", "observations": [...]}}``, one observation per client
with ``clientMac``, ``ipv4`` and ``locations``: the client's fixes since the previous
POST. Facts from Meraki's documentation (developer.cisco.com/meraki/scanning-api/3-0)
and open-source receivers (PlaceOS/drivers ``cisco/meraki/scanning_api.cr``, an early
v3 capture in a quicktype model):

- The secret is compared in constant time before anything else is read, so a caller
  without it learns nothing of the body's other rules.
- ``version``: a string or number of major 3 (``"3"``, ``"3.0"``, ``"3.1"``, ``3``).
- ``type``: ``WiFi`` is applied; ``Bluetooth``/``BLE`` is counted and ignored, as is any
  other type (a new one must not make Meraki see errors); matched case-insensitively.
- ``clientMac`` is the raw MAC: normalised leniently and hashed with ``cmx.mac_hash_key``
  (stored raw when no key is set).
- ``ipv4`` may be null; v2 wrote ``"host/10.0.0.5"`` or ``"/10.0.0.5"``: the text after
  the last ``/`` is read. A private IPv4 yields an ``IpSeen`` at the newest fix's time.
  Meraki sends the same clients' IPs every minute: the caller may keep the texts read
  (``known_ips``, at most ``MAX_KNOWN_IPS``) across POSTs, which saves a quarter of a read.
- ``locations[]``: ``x``/``y`` in metres, often strings (``"1.5"``; ``"NaN"`` seen) →
  feet; ``variance`` (early v3: ``unc``) in metres, over ``max_variance_m`` dropped;
  ``floorPlanId`` (early v3: ``floorplanId``) → floor ``meraki:<id>``, keyed like an odd
  CMX floorId; ``time`` ISO-8601 (epoch seconds or ms accepted), sorted per client.
  A fix without a time is rejected: it could not be ordered among its neighbours.
- Fixes are repeated in later POSTs: a repeat yields the same event, which the state
  drops as not newer than its track (DESIGN 6 rule 2), so nothing is kept here.

Counts are per fix; an observation with no fix counts once. ``by_type`` labels are
bounded (safe as Prometheus labels): ``fix`` accepted / ignored (variance too large) /
rejected (unreadable); ``observation`` ignored (``locations: []``) / rejected (bad MAC,
not an object); ``bluetooth`` and ``other`` ignored, one per observation.
"""

from __future__ import annotations

import hmac
import math
from operator import attrgetter

from tys_server.core.addresses import private_ipv4
from tys_server.core.events import Batch, Event, Fix, IpSeen
from tys_server.core.macs import hash_mac, normalise_mac
from tys_server.core.units import M_PER_FT
from tys_server.feeds.cmx import MAX_COORDINATE_FT
from tys_server.feeds.cmx_fields import (
    FUTURE_TOLERANCE_S,
    Malformed,
    epoch_s,
    floor_key,
    read_number,
)

DEFAULT_MAX_VARIANCE_M = 25.0
MAX_KNOWN_IPS = 1 << 16  # ipv4 texts kept across POSTs: about 10 MB at most
FLOOR_NAMESPACE = "meraki:"
_MAJOR_VERSION = "3"
_WIFI = "wifi"
_BLUETOOTH = frozenset({"bluetooth", "ble"})
_FIX_TIME = attrgetter("ts")


class PostError(ValueError):
    """The POST is refused as a whole: nothing of it is applied."""


class BadBody(PostError):
    """Not a Scanning API body (a JSON object with secret, version, type, data.observations)."""


class WrongSecret(PostError):
    """The body's secret is not ours."""


class UnsupportedVersion(PostError):
    """A version whose major is not 3 (v2 bodies have another shape)."""


def read_post(body: object, now_s: float, *, secret: str, hash_key: str = "",
              max_variance_m: float = DEFAULT_MAX_VARIANCE_M,
              known_ips: dict[str, str | None] | None = None) -> Batch:
    """Read a decoded POST body received at now_s; raises a PostError when it is refused.

    known_ips: ipv4 texts read by earlier POSTs (text → private IPv4 or None), filled here.
    """
    if type(body) is not dict:
        raise BadBody("body is not a JSON object")
    sent = body.get("secret")
    if not isinstance(sent, str):
        raise BadBody('no "secret" string')
    if not hmac.compare_digest(_utf8(sent), _utf8(secret)):
        raise WrongSecret("wrong secret")
    _check_version(body.get("version"))
    kind = body.get("type")
    data = body.get("data")
    observations = data.get("observations") if isinstance(data, dict) else None
    if not isinstance(kind, str) or not isinstance(observations, list):
        raise BadBody('no "type" string or no "data.observations" list')
    label = kind.strip().lower()
    if label != _WIFI:
        label = "bluetooth" if label in _BLUETOOTH else "other"
        count = len(observations)
        return Batch([], 0, count, 0, {(label, "ignored"): count} if count else {})
    reader = _WifiReader(now_s, hash_key, max_variance_m, {} if known_ips is None else known_ips)
    for observation in observations:
        reader.observation(observation)
    return reader.batch()


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")  # a lone surrogate must not raise


def _check_version(version: object) -> None:
    if type(version) is int or type(version) is float:
        version = repr(version)
    if not isinstance(version, str):
        raise BadBody('no "version"')
    if version.strip().split(".", 1)[0] != _MAJOR_VERSION:
        raise UnsupportedVersion("only version 3 is read")


class _WifiReader:
    """The observations of one WiFi POST, read into events and counts."""

    def __init__(self, now_s: float, hash_key: str, max_variance_m: float,
                 known_ips: dict[str, str | None]) -> None:
        self.now_s = now_s
        self.hash_key = hash_key
        self.max_variance_m = max_variance_m
        self.known_ips = known_ips
        self.events: list[Event] = []
        self.counts: dict[tuple[str, str], int] = {}
        self.floors: dict[str, int] = {}  # floorPlanId → key: a POST names few floors
        self.times: dict[str, float] = {}  # time text → epoch seconds
        self.future_ts = 0  # fix times over 5 minutes ahead, replaced by now_s

    def batch(self) -> Batch:
        counts = self.counts

        def total(outcome: str) -> int:
            return sum(n for (_, result), n in counts.items() if result == outcome)

        return Batch(self.events, total("accepted"), total("ignored"), total("rejected"), counts,
                     self.future_ts)

    def count(self, label: str, outcome: str, n: int = 1) -> None:
        if n:
            key = (label, outcome)
            self.counts[key] = self.counts.get(key, 0) + n

    def observation(self, observation: object) -> None:
        """One client: its fixes in time order, then its IP sighting."""
        if type(observation) is not dict:
            self.count("observation", "rejected")
            return
        mac = normalise_mac(observation.get("clientMac"))
        locations = observation.get("locations")
        if locations is None:
            locations = []
        if mac is None or not isinstance(locations, list):
            self.count("observation", "rejected")
            return
        device = hash_mac(mac, self.hash_key) if self.hash_key else mac
        if not locations:  # heard by fewer than 3 APs: no position, still an IP
            self.count("observation", "ignored")
        fixes: list[Fix] = []
        read_fix = self.fix
        for location in locations:
            try:
                fix = read_fix(device, location)
            except Malformed:
                self.count("fix", "rejected")
                continue
            if fix is None:
                self.count("fix", "ignored")
            else:
                fixes.append(fix)
        fixes.sort(key=_FIX_TIME)  # Meraki lists them oldest first, but does not say so
        self.count("fix", "accepted", len(fixes))
        self.events.extend(fixes)
        ipv4 = observation.get("ipv4")
        ip = self.ip(ipv4) if isinstance(ipv4, str) else None
        if ip is not None:
            self.events.append(IpSeen(ip, device, fixes[-1].ts if fixes else self.now_s))

    def fix(self, device: str, location: object) -> Fix | None:
        """One entry of locations[]; None when its variance is too large; raises Malformed."""
        if type(location) is not dict:
            raise Malformed
        # The usual types first (x/y strings, a float variance), read_number for the rest;
        # the range checks below also refuse NaN and infinities.
        get = location.get
        x, y = get("x"), get("y")
        if type(x) is str and type(y) is str:
            try:
                x_ft, y_ft = float(x) / M_PER_FT, float(y) / M_PER_FT
            except ValueError:
                raise Malformed from None
        else:
            x_ft, y_ft = read_number(x) / M_PER_FT, read_number(y) / M_PER_FT
        if not (abs(x_ft) <= MAX_COORDINATE_FT and abs(y_ft) <= MAX_COORDINATE_FT):
            raise Malformed
        variance = get("variance")
        if variance is None:
            variance = get("unc")
        uncertainty_ft = None
        if variance is not None:
            variance_m = variance if type(variance) is float else read_number(variance)
            if not 0.0 <= variance_m < math.inf:
                raise Malformed
            if variance_m > self.max_variance_m:
                return None
            uncertainty_ft = variance_m / M_PER_FT
        stamp = get("time")
        times = self.times
        if type(stamp) is str:  # whole seconds: the clients of a POST share a few dozen
            ts = times.get(stamp)
            if ts is None:
                ts = times[stamp] = self.time(stamp)
        else:
            ts = self.time(stamp)
        if ts > self.now_s + FUTURE_TOLERANCE_S:
            # One bad clock must not freeze the device as "stale" for hours: replaced, counted.
            ts = self.now_s
            self.future_ts += 1
        plan = get("floorPlanId")
        floor = self.floors.get(plan) if type(plan) is str else None  # a floor seen before
        if floor is None:
            floor = self.floor(location)
        return Fix(device, floor, x_ft, y_ft, uncertainty_ft, ts)

    def ip(self, text: str) -> str | None:
        """The private IPv4 of "10.0.0.5", "/10.0.0.5" or "host/10.0.0.5", else None."""
        known = self.known_ips
        if text in known:
            return known[text]
        if len(known) >= MAX_KNOWN_IPS:
            known.clear()  # a bound, not an LRU: the next POST fills it again
        ip = known[text] = private_ipv4(text.rpartition("/")[2])
        return ip

    def time(self, stamp: object) -> float:
        """A fix's time in epoch seconds, as sent (fix() replaces a future one); Malformed."""
        ts = None if stamp is None else epoch_s(stamp)
        if ts is None:
            raise Malformed
        return ts

    def floor(self, location: dict[str, object]) -> int | None:
        plan = location.get("floorPlanId")
        if plan is None:
            plan = location.get("floorplanId")
        if plan is None or plan == "":
            return None
        if type(plan) is int:
            plan = str(plan) if abs(plan) < 1 << 64 else None
        if not isinstance(plan, str):
            raise Malformed
        key = self.floors.get(plan)
        if key is None:
            key = self.floors[plan] = floor_key(FLOOR_NAMESPACE + plan.strip())
        return key
