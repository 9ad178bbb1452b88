"""IP → device as the feeds saw it (DESIGN 12.1): a bounded map with an age limit.

Every private IPv4 in a feed's event (an ``IpSeen``) records which device held it and
when. Registration asks here first: a sighting younger than ``lookup.observed_ttl_s``
answers without any network call. DHCP hands an address to another phone sooner or
later, so an old sighting proves nothing; the newest one for an IP wins. The map is
bounded by entries (the oldest are forgotten first), so a feed that sprays addresses
cannot grow it without limit.
"""

from __future__ import annotations

from collections import OrderedDict

from tys_server.core.addresses import parse_ip
from tys_server.core.events import IpSeen

DEFAULT_MAX_ENTRIES = 1_000_000


class ObservedIps:
    """The newest device seen at each IP, forgotten after ttl_s."""

    def __init__(self, ttl_s: float, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        # ip → (mac, ts), oldest sighting first (a new sighting moves its IP to the end).
        self._seen: OrderedDict[str, tuple[str, float]] = OrderedDict()

    def saw(self, event: IpSeen) -> None:
        """Record one sighting; an older one than already known for that IP is ignored."""
        seen, ip = self._seen, event.ip
        # Keys are canonical: an IP already known needs no parse (a feed repeats the
        # same few addresses on every event, so this is its usual path).
        known = seen.get(ip)
        if known is None:
            ip = parse_ip(ip)
            if ip is None:
                return
            known = seen.get(ip)
        if known is not None:
            if known[1] > event.ts:
                return
            seen.move_to_end(ip)
        seen[ip] = (event.mac, event.ts)
        if known is None and len(seen) > self.max_entries:
            seen.popitem(last=False)

    def device_at(self, ip: str, now_s: float) -> str | None:
        """The device (MAC as stored) seen at ip within ttl_s before now_s, or None."""
        known = self._seen.get(ip)
        if known is None:
            return None
        if now_s - known[1] > self.ttl_s:
            del self._seen[ip]
            return None
        return known[0]

    def forget_old(self, now_s: float) -> None:
        """Drop the expired sightings at the old end of the map (called periodically)."""
        seen = self._seen
        while seen:
            ip, (_, ts) = next(iter(seen.items()))
            if now_s - ts <= self.ttl_s:
                return
            del seen[ip]

    def __len__(self) -> int:
        return len(self._seen)
