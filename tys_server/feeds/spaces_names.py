"""What a Spaces device, floor and IP are in TYS, each read once and cached (DESIGN 12.2).

A venue's devices, floors and IPs repeat every few seconds, and reading one costs more
than its line's JSON: normalising and hashing a MAC, walking a location chain, parsing
an IP. ``SpacesNames`` keeps each reading in a dict the reader's hot path looks up
directly (``devices``, ``floors``, ``ips``), and fills it on a miss. Each dict is
cleared when full, so memory stays bounded. Pure: no I/O, no clock.
"""

from __future__ import annotations

from tys_server.core.addresses import private_ipv4
from tys_server.core.macs import hash_mac, normalise_mac
from tys_server.feeds.cmx_fields import Malformed, floor_key
from tys_server.feeds.spaces_fields import floor_location_id, opaque_id_mac

FLOOR_NAMESPACE = "spaces:"
_FLOOR_CACHE_MAX = 4096
_CACHE_MAX = 1 << 18


class SpacesNames:
    """Device ids as stored, floor keys and private IPv4s of a Firehose's texts, cached."""

    def __init__(self, hash_key: str = "") -> None:
        self.hash_key = hash_key
        self.devices: dict[str, str] = {}  # macAddress or deviceId text → id as stored
        self.floors: dict[str, int] = {}  # a FLOOR level's locationId → floor key
        self.ips: dict[str, str | None] = {}  # ipv4 text → the private IPv4, or None
        # private IPv4 → (device, time) of the last sighting the reader told (bounded
        # like the others): spaces_events.RESIGHT_S
        self.sighted: dict[str, tuple[str, float]] = {}

    def private_ip(self, text: str) -> str | None:
        """The private IPv4 in a feed's ipv4 text, or None ("NOT APPLICABLE", public)."""
        if len(self.ips) >= _CACHE_MAX:
            self.ips.clear()
            self.sighted.clear()
        ip = self.ips[text] = private_ipv4(text)
        return ip

    def device(self, device: object) -> str:
        """The device's id as stored: its MAC (hashed with a key), else its deviceId's."""
        if type(device) is not dict:
            raise Malformed
        cache = self.devices
        text = device.get("macAddress")
        if type(text) is str and text:
            stored = cache.get(text)
            if stored is not None:
                return stored
            mac = normalise_mac(text)
            if mac is not None:
                return self._remember(text, mac)
        text = device.get("deviceId")
        if type(text) is not str or not text.strip():
            raise Malformed
        stored = cache.get(text)
        if stored is not None:
            return stored
        return self._remember(text, normalise_mac(text))

    def _remember(self, text: str, mac: str | None) -> str:
        """The stored id of a MAC (or, None, of an opaque deviceId), cached under text."""
        if mac is None:
            stored = opaque_id_mac(text.strip(), self.hash_key)
        else:
            stored = hash_mac(mac, self.hash_key) if self.hash_key else mac
        if len(self.devices) >= _CACHE_MAX:
            self.devices.clear()
        self.devices[text] = stored
        return stored

    def floor(self, location: object) -> int:
        """The key of the FLOOR level of the location chain; raises Malformed without one."""
        location_id = floor_location_id(location)
        key = self.floors.get(location_id)
        if key is None:
            if len(self.floors) >= _FLOOR_CACHE_MAX:
                self.floors.clear()
            key = floor_key(FLOOR_NAMESPACE + location_id.strip())
            self.floors[location_id] = key
        return key
