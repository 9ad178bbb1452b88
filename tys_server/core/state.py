"""In-memory aggregate: tracks, day totals, users, devices, counters, dirty sets."""

from __future__ import annotations

from dataclasses import dataclass, field

from tys_server.core.calendar import EventCalendar
from tys_server.core.events import Batch, Movement, ZoneVisit
from tys_server.core.snapshot import Loaded
from tys_server.core.tracking import FilterParams, Track, advance

MINUTE_S = 60
# Counters older than this are dropped from memory after they are flushed.
RECENT_S = 3 * 3600


class User:
    """A registered visitor and the MACs (as stored) of their devices."""

    __slots__ = ("email", "username", "macs", "revision")

    def __init__(self, email: str, username: str, macs: list[str] | None = None) -> None:
        self.email = email
        self.username = username
        self.macs: list[str] = macs if macs is not None else []
        # Bumped whenever the user's devices or their distance change: what was worked
        # out from them before (a dashboard) is stale once it moved.
        self.revision = 0


def user_key(username: str) -> str:
    """Usernames are unique case-insensitively."""
    return username.lower()


@dataclass
class Dirty:
    """Keys changed since the last successful flush."""

    tracks: set[str] = field(default_factory=set)
    days: set[tuple[str, int]] = field(default_factory=set)
    minutes: set[int] = field(default_factory=set)
    zones: set[tuple[int, str]] = field(default_factory=set)

    def __len__(self) -> int:
        return len(self.tracks) + len(self.days) + len(self.minutes) + len(self.zones)

    def merge(self, other: Dirty) -> None:
        """Put back keys of a flush that failed."""
        self.tracks |= other.tracks
        self.days |= other.days
        self.minutes |= other.minutes
        self.zones |= other.zones


class State:
    """Everything the server knows, kept in memory and flushed as absolute values."""

    def __init__(self, params: FilterParams, timezone: str) -> None:
        self.params = params
        self.calendar = EventCalendar(timezone)
        self.tracks: dict[str, Track] = {}
        self.days: dict[tuple[str, int], float] = {}
        self.notifications: dict[int, int] = {}       # minute → notifications received
        self.registered: dict[int, tuple[int, int]] = {}  # minute → (users, devices)
        self.zones: dict[tuple[int, str], int] = {}   # (minute, zone) → devices seen
        self._zone_seen: set[tuple[int, str, str]] = set()
        self.users: dict[str, User] = {}              # user_key(username) → user
        self.owners: dict[str, User] = {}             # stored MAC → owner
        self.dirty = Dirty()
        # Users whose distance or devices changed since the leaderboards last looked.
        self.changed_users: set[User] = set()

    # -- notifications ------------------------------------------------------------

    def ingest(self, batch: Batch, now_s: float) -> None:
        """Apply one parsed CMX batch."""
        minute = int(now_s) // MINUTE_S * MINUTE_S
        received = batch.accepted + batch.ignored + batch.rejected
        self.notifications[minute] = self.notifications.get(minute, 0) + received
        self.dirty.minutes.add(minute)
        # The per-movement loop is the ingest hot path: names are bound once per batch,
        # and a credit is booked inline rather than through a method call.
        tracks, params, dirty_tracks = self.tracks, self.params, self.dirty.tracks
        days, dirty_days, owners, day_of = self.days, self.dirty.days, self.owners, \
            self.calendar.day_of
        for event in batch.events:
            if type(event) is not Movement:
                self._visit(event)  # type: ignore[arg-type]
                continue
            mac = event.mac
            known = tracks.get(mac)
            track, credited_m, changed = advance(known, event, params)
            if not changed:
                continue
            if track is not known:
                tracks[mac] = track
            dirty_tracks.add(mac)
            if credited_m > 0.0:
                key = (mac, day_of(event.ts))
                days[key] = days.get(key, 0.0) + credited_m
                dirty_days.add(key)
                owner = owners.get(mac)
                if owner is not None:
                    owner.revision += 1
                    self.changed_users.add(owner)

    def _visit(self, visit: ZoneVisit) -> None:
        minute = int(visit.ts) // MINUTE_S * MINUTE_S
        seen = (minute, visit.zone, visit.mac)
        if seen in self._zone_seen:
            return
        self._zone_seen.add(seen)
        key = (minute, visit.zone)
        self.zones[key] = self.zones.get(key, 0) + 1
        self.dirty.zones.add(key)

    # -- users ----------------------------------------------------------------------

    def user(self, username: str) -> User | None:
        """The user registered under that name (any case), or None."""
        return self.users.get(user_key(username))

    def owner(self, mac: str) -> User | None:
        """Who registered that (stored) MAC, or None."""
        return self.owners.get(mac)

    def add_user(self, email: str, username: str, mac: str, now_s: float) -> User:
        """Record a registration that the database has accepted."""
        user = User(email, username, [mac])
        self.users[user_key(username)] = user
        self.owners[mac] = user
        self._registrations_changed(now_s, user)
        return user

    def add_device(self, user: User, mac: str, now_s: float) -> None:
        """Record one more device of a user (already in the database)."""
        user.macs.append(mac)
        self.owners[mac] = user
        self._registrations_changed(now_s, user)

    def remove_user(self, user: User, now_s: float) -> None:
        """Forget a deleted user; distance stays with the MACs."""
        self.users.pop(user_key(user.username), None)
        for mac in user.macs:
            self.owners.pop(mac, None)
        self._registrations_changed(now_s, user)

    def device_count(self) -> int:
        """Registered devices."""
        return len(self.owners)

    def _registrations_changed(self, now_s: float, user: User) -> None:
        minute = int(now_s) // MINUTE_S * MINUTE_S
        self.registered[minute] = (len(self.users), len(self.owners))
        self.dirty.minutes.add(minute)
        user.revision += 1
        self.changed_users.add(user)

    def is_registered(self, user: User) -> bool:
        """True while user is the one registered under its username."""
        return self.users.get(user_key(user.username)) is user

    def take_changed_users(self) -> set[User]:
        """Users changed since the last call (the leaderboards' change feed)."""
        changed, self.changed_users = self.changed_users, set()
        return changed

    # -- distance queries ---------------------------------------------------------------

    def total_m(self, mac: str) -> float:
        """A device's credited distance over the whole event."""
        track = self.tracks.get(mac)
        return track.total_m if track is not None else 0.0

    def day_m(self, mac: str, ordinal: int) -> float:
        """A device's credited distance on one event day."""
        return self.days.get((mac, ordinal), 0.0)

    # -- flush ----------------------------------------------------------------------

    def take_dirty(self) -> Dirty:
        """Hand the dirty keys to a flush; new changes collect in a fresh set."""
        dirty, self.dirty = self.dirty, Dirty()
        return dirty

    def forget_old(self, now_s: float) -> None:
        """Drop per-minute counters older than the status page shows (already flushed)."""
        horizon = int(now_s) - RECENT_S
        for minute in [m for m in self.notifications if m < horizon]:
            if minute not in self.dirty.minutes:
                del self.notifications[minute]
        for key in [k for k in self.zones if k[0] < horizon]:
            if key not in self.dirty.zones:
                del self.zones[key]
        current = int(now_s) // MINUTE_S * MINUTE_S
        self._zone_seen = {s for s in self._zone_seen if s[0] >= current - MINUTE_S}
        if len(self.registered) > 1:
            latest = max(self.registered)
            for minute in [m for m in self.registered if m < horizon and m != latest]:
                if minute not in self.dirty.minutes:
                    del self.registered[minute]

    # -- start-up -------------------------------------------------------------------

    def seed(self, loaded: Loaded) -> None:
        """Fill memory from the database so a restart never lowers a stored value."""
        by_email: dict[str, User] = {}
        for email, nickname in loaded.users:
            user = User(email, nickname or email)
            by_email[email] = user
            self.users[user_key(user.username)] = user
        for mac, email in loaded.devices:
            owner = by_email.get(email)
            if owner is not None:
                owner.macs.append(mac)
                self.owners[mac] = owner
        # A million devices: one int object per floor and one string per MAC, shared by
        # every track and day row that names them (about 100 bytes a device).
        tracks = self.tracks
        floors: dict[int | None, int | None] = {}
        for mac, total_m, floor, x1, y1, x2, y2, pending_m, held_m, last_ts in loaded.tracks:
            tracks[mac] = _restore(floors.setdefault(floor, floor), x1, y1, x2, y2,
                                   pending_m, held_m, last_ts, total_m)
        same_mac = {mac: mac for mac in tracks} if loaded.days else {}
        days = self.days
        ordinals: dict[float, int] = {}
        for mac, start, metres in loaded.days:
            ordinal = ordinals.get(start)
            if ordinal is None:
                ordinal = ordinals[start] = self.calendar.ordinal_of_start(start)
            key = (same_mac.get(mac, mac), ordinal)
            days[key] = days.get(key, 0.0) + (metres or 0.0)
        del same_mac
        for minute, users, devices, notifications in loaded.counts:
            self.notifications[int(minute)] = notifications
            self.registered[int(minute)] = (users, devices)
        for minute, name, visits in loaded.zones:
            self.zones[(int(minute), name)] = visits
        self.changed_users.update(self.users.values())

    def user_total_m(self, user: User) -> float:
        """The sum of a user's devices' totals."""
        tracks = self.tracks
        total = 0.0
        for mac in user.macs:
            track = tracks.get(mac)
            if track is not None:
                total += track.total_m
        return total

    def user_day_m(self, user: User, ordinal: int) -> float:
        """The sum of a user's devices' distance on one day."""
        days = self.days
        return sum(days.get((mac, ordinal), 0.0) for mac in user.macs)


# A stored track without a first point (legacy rows) restarts at its next fix:
# no real floorId is the smallest bigint.
NO_FLOOR = -(2**63)


def _restore(floor: int | None, x1_ft: float | None, y1_ft: float | None, x2_ft: float | None,
             y2_ft: float | None, pending_m: float, held_m: float, last_ts: float | None,
             total_m: float) -> Track:
    if x1_ft is None or y1_ft is None:
        return Track(NO_FLOOR, 0.0, 0.0, last_ts or 0.0, total_m)
    if x2_ft is None or y2_ft is None:
        x2_ft = y2_ft = None
    return Track.restore(floor, x1_ft, y1_ft, x2_ft, y2_ft, pending_m, held_m, last_ts or 0.0,
                         total_m)
