"""The in-memory aggregate and its ingest loop: tracks, day totals, counters, visits.

Its users are ``registry``'s half of State, its flush bookkeeping ``dirty``'s.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable

from tys_server.core import restore
from tys_server.core.adaptive import advance as adaptive_advance
from tys_server.core.adaptive import settles
from tys_server.core.calendar import EventCalendar
from tys_server.core.days import DayTotals
from tys_server.core.dirty import Dirty, FlushBook
from tys_server.core.events import Batch, DeviceExit, Event, Fix, IpSeen, Movement, ZoneVisit
from tys_server.core.gate import GateParams, adaptive_gate
from tys_server.core.gate import gate as classic_gate
from tys_server.core.registry import Registry
from tys_server.core.settling import SettleQueue
from tys_server.core.snapshot import Loaded
from tys_server.core.tracking import NO_FLOOR, FilterParams, Track, advance, settle
from tys_server.core.units import MINUTE_S
from tys_server.core.users import User as User  # re-exported: State's users
from tys_server.core.zones import VisitWindow

DEFAULT_MAX_DEVICES = 2_000_000


class State(Registry, FlushBook):
    """Everything the server knows, kept in memory and flushed as absolute values."""

    def __init__(self, params: FilterParams, timezone: str, *, gate: GateParams | None = None,
                 max_devices: int = DEFAULT_MAX_DEVICES,
                 on_ip_seen: Callable[[IpSeen], None] | None = None) -> None:
        self.params = params
        self.gate = gate if gate is not None else GateParams()
        # Route by tracking.filter. The adaptive filter sizes a gated leg's stop
        # extension by the device's gate, a CMX leg's by params.trigger_ft.
        self._gate = adaptive_gate if params.adaptive else classic_gate
        self.gated_params = dataclasses.replace(
            params, gated=True, gate_min_ft=self.gate.gate_min_ft,
            gate_max_ft=self.gate.gate_ft) if params.adaptive else params
        self.walking = SettleQueue()  # adaptive: the walks the settle may end
        self.max_devices = max_devices  # tracks at most: memory stays bounded
        self.on_ip_seen = on_ip_seen
        self.calendar = EventCalendar(timezone)
        self.tracks: dict[str, Track] = {}
        self.days = DayTotals()                       # (mac, day ordinal) → metres
        self.notifications: dict[int, int] = {}       # minute → notifications received
        self.registered: dict[int, tuple[int, int]] = {}  # minute → (users, devices)
        self.zones: dict[tuple[int, str], int] = {}   # (minute, zone) → devices seen
        self.visits = VisitWindow()                   # who was counted, per open minute
        self.users: dict[str, User] = {}              # user_key(username) → user
        self.names: dict[str, User] = {}              # name_key(username or alias) → user
        self.owners: dict[str, User] = {}             # stored MAC → owner
        self.dirty = Dirty()
        # Users whose distance, devices or profile changed since the boards last looked.
        self.changed_users: set[User] = set()
        # For metrics: movements of new devices refused past max_devices, fixes older
        # than their track's last one, zone visits outside the open minutes.
        self.refused_devices = 0
        self.stale_movements = 0
        self.stale_visits = 0

    # -- notifications ------------------------------------------------------------

    def ingest(self, batch: Batch, now_s: float) -> None:
        """Apply one parsed batch of any feed."""
        minute = int(now_s) // MINUTE_S * MINUTE_S
        received = batch.accepted + batch.ignored + batch.rejected
        self.notifications[minute] = self.notifications.get(minute, 0) + received
        self.dirty.minutes.add(minute)
        if minute != self.visits.now_minute_s:
            self.visits.move_to(minute)
        # The per-event loop is the ingest hot path: names are bound once per batch, a
        # fix is gated and an IP sighting handed on inline, and a credit is booked inline
        # rather than through a method call.
        tracks, params, dirty_tracks = self.tracks, self.params, self.dirty.tracks
        days, dirty_days, owners, day_of = self.days, self.dirty.days, self.owners, \
            self.calendar.day_of
        columns, by_day = days.columns, days.by_day
        gated_params, adaptive, walking = self.gated_params, params.adaptive, self.walking
        queued, gate, gate_params, on_ip_seen = walking.queued, self._gate, self.gate, \
            self.on_ip_seen
        # An existing track goes straight to its mode's filter: tracking.advance's own
        # dispatch only adds a call per event.
        advance_known = adaptive_advance if adaptive else advance
        for event in batch.events:
            kind = type(event)
            if kind is Fix:
                mac = event.mac
                known = tracks.get(mac)
                # Older than the track's newest point: stale whatever its floor (DESIGN 6
                # rule 2 before rule 1). A Firehose resume replays fixes from before a
                # floor change or an exit; taken as a new floor, they would restart the
                # track and the rest of the replay would credit the walk again (12.2).
                if known is not None and event.ts < known.last_ts:
                    self.stale_movements += 1
                    continue
                fix_ts = event.ts
                event = gate(known, event, gate_params)  # type: ignore[arg-type]
                if known is not None and known.cand_ts == fix_ts:
                    dirty_tracks.add(mac)  # the adaptive gate took it as its candidate
                if event is None:
                    continue
                event_params = gated_params
            elif kind is Movement:
                mac = event.mac
                known = tracks.get(mac)
                event_params = params
            else:
                if kind is IpSeen:
                    if on_ip_seen is not None:
                        on_ip_seen(event)  # type: ignore[arg-type]
                else:
                    self._other(event)
                continue
            if known is None:
                if len(tracks) >= self.max_devices:
                    self.refused_devices += 1
                    continue
                before_ts = event.ts
                track, credited_m, changed = advance(known, event, event_params)
            else:
                before_ts = known.last_ts
                track, credited_m, changed = advance_known(
                    known, event, event_params)  # type: ignore[arg-type]
            if not changed:
                if known is not None and event.ts < known.last_ts:
                    self.stale_movements += 1
                continue
            if track is not known:
                tracks[mac] = track
            dirty_tracks.add(mac)
            # A walker stays queued until the settle pops it: test that first.
            if adaptive and mac not in queued and settles(track.walk):
                walking.add(mac, track.last_ts)
            if credited_m > 0.0:
                # An adaptive credit that ended a walk is its stop (rule S): it belongs
                # to the time of the fix before, as when the settle credits it.
                ordinal = day_of(event.ts if not adaptive or track.walk & 1 else before_ts)
                column = columns.get(mac)
                cells = by_day.get(ordinal)
                if column is None or cells is None \
                        or (held_m := cells[column]) != held_m:  # NaN: none that day yet
                    days.add(mac, ordinal, credited_m)
                else:
                    cells[column] = held_m + credited_m
                dirty_days.add((mac, ordinal))
                owner = owners.get(mac)
                if owner is not None:
                    owner.revision += 1
                    self.changed_users.add(owner)

    def _other(self, event: Event) -> None:
        """A zone visit or an exit; a kind this state does not know (a newer feed's) is ignored."""
        kind = type(event)
        if kind is ZoneVisit:
            self._visit(event)  # type: ignore[arg-type]
        elif kind is DeviceExit:
            self._exit(event)  # type: ignore[arg-type]

    def _visit(self, visit: ZoneVisit) -> None:
        minute = int(visit.ts) // MINUTE_S * MINUTE_S
        first = self.visits.admit(minute, visit.zone, visit.mac)
        if first is None:
            self.stale_visits += 1
        elif first:
            key = (minute, visit.zone)
            self.zones[key] = self.zones.get(key, 0) + 1
            self.dirty.zones.add(key)

    def _exit(self, event: DeviceExit) -> None:
        track = self.tracks.get(event.mac)
        if track is None or track.floor == NO_FLOOR:
            return
        if event.ts < track.last_ts:
            self.stale_movements += 1  # it came back after that exit
            return
        if settles(track.walk):  # adaptive: the walker walked out; they stopped
            self._credit(event.mac, track.last_ts, settle(track, math.inf, self.params))
        track.end(event.ts)  # the pending and held legs were never walked on: not credited
        self.dirty.tracks.add(event.mac)

    def settle(self, now_s: float) -> int:
        """Adaptive mode: stop every walk with no fix since now_s − settle_s (rule S).

        now_s is a time before which no more fixes can arrive: the feeds' clock less
        their lateness (background.py). Only queued walks are visited. Devices settled.
        """
        settled = 0
        for mac, track in self.walking.pop_due(self.tracks, now_s, self.params.settle_s):
            self._credit(mac, track.last_ts, settle(track, now_s, self.params))
            self.dirty.tracks.add(mac)
            settled += 1
        return settled

    def _credit(self, mac: str, ts: float, credited_m: float) -> None:
        """Book a credit outside ingest's loop to the event day of ts."""
        if credited_m > 0.0:
            ordinal = self.calendar.day_of(ts)
            self.days.add(mac, ordinal, credited_m)
            self.dirty.days.add((mac, ordinal))
            owner = self.owners.get(mac)
            if owner is not None:
                owner.revision += 1
                self.changed_users.add(owner)

    # -- distance queries ---------------------------------------------------------------

    def total_m(self, mac: str) -> float:
        """A device's credited distance over the whole event."""
        track = self.tracks.get(mac)
        return track.total_m if track is not None else 0.0

    def day_m(self, mac: str, ordinal: int) -> float:
        """A device's credited distance on one event day."""
        return self.days.get((mac, ordinal), 0.0)

    def forget_devices(self, macs: Iterable[str]) -> int:
        """Drop the tracks and day totals of erased or purged devices, dirty keys included.

        The database rows are gone already (the caller holds the flusher off meanwhile).
        A device seen again is tracked anew from its next fix. Day values and dirty day
        keys are probed per day (the days held; calendar.days_named, the days stored
        distance can be on), never by a scan of every day row. Returns the devices that
        had a track.
        """
        ordinals = tuple(self.calendar.days_named)
        tracks, dirty = self.tracks, self.dirty
        macs = list(macs)
        self.days.forget(macs)
        forgotten = 0
        for mac in macs:
            if tracks.pop(mac, None) is not None:
                forgotten += 1
            dirty.tracks.discard(mac)
            for ordinal in ordinals:
                dirty.days.discard((mac, ordinal))
            owner = self.owners.get(mac)
            if owner is not None:
                owner.revision += 1
                self.changed_users.add(owner)
        return forgotten

    # -- start-up -------------------------------------------------------------------

    def seed(self, loaded: Loaded) -> None:
        """Fill memory from the database so a restart never lowers a stored value."""
        restore.seed(self, loaded)

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
        return self.days.total_of(ordinal, user.macs)
