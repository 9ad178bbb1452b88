"""Memory filled from what was stored: the database at start-up, then a spill file.

Pure: the store reads the rows, these functions put them into a State.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import groupby
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from tys_server.core.adaptive import JITTER_PRIOR_FT, WALKS, ZIG_PRIOR, settles
from tys_server.core.snapshot import Loaded, Unflushed
from tys_server.core.tracking import NO_FLOOR, Track
from tys_server.core.users import Profile, User, user_key

if TYPE_CHECKING:
    from tys_server.core.state import State

DayRows = Iterable[tuple[str, float, float | None]]  # mac, day start (epoch s), metres
# day start (epoch s), macs, their metres
DayGroups = Iterable[tuple[float, Sequence[str], Sequence[float]]]


def seed(state: State, loaded: Loaded) -> None:
    """Fill memory from the database so a restart never lowers a stored value."""
    by_email: dict[str, User] = {}
    for email, nickname, *profile in loaded.users:
        user = User(email, nickname or email)
        if profile:  # team, team_since_s, alias, hidden, disqualified
            user.take(Profile(*profile))
        by_email[email] = user
        state.users[user_key(user.username)] = user
        state.index_names(user)
    for mac, email in loaded.devices:
        owner = by_email.get(email)
        if owner is not None:
            owner.macs.append(mac)
            state.owners[mac] = owner
    track_seeder(state)(loaded.tracks)
    queue_walks(state)
    if loaded.days:
        day_seeder(state)(day_groups(loaded.days))
    for minute, users, devices, notifications in loaded.counts:
        state.notifications[int(minute)] = notifications
        state.registered[int(minute)] = (users, devices)
    _set_zones(state, loaded.zones)
    state.changed_users.update(state.users.values())


def track_seeder(state: State) -> Callable[[Iterable[tuple[Any, ...]]], None]:
    """A function adding stored track rows (Loaded.tracks' order) to memory, page by page.

    Call queue_walks after the last page.
    """
    # A million devices: one int object per floor, shared by every track on it.
    tracks = state.tracks
    floors: dict[int | None, int | None] = {}

    def add(rows: Iterable[tuple[Any, ...]]) -> None:
        for (mac, total_m, floor, x1, y1, x2, y2, pending_m, held_m, last_ts,
             walk, x0, y0, cand_x, cand_y, cand_ts, jitter_ft, run_x, run_y, run_m, zig) in rows:
            tracks[mac] = track_of(floors.setdefault(floor, floor), x1, y1, x2, y2,
                                   pending_m, held_m, last_ts, total_m,
                                   walk, x0, y0, cand_x, cand_y, cand_ts, jitter_ft,
                                   run_x, run_y, run_m, zig)

    return add


def queue_walks(state: State) -> None:
    """The settle continues where it stopped: queue the seeded tracks' walks (once)."""
    state.walking.add_walking(state.tracks)


def day_seeder(state: State) -> Callable[[DayGroups], None]:
    """A function adding stored day values to memory, a day start's group at a time
    (after seed's tracks).

    Each group goes into its day's array under the MAC strings the tracks hold; a value
    whose (mac, day) is already held is added to it (two starts of one local date
    after a time zone change, or a repeated row).
    """
    same_mac = {mac: mac for mac in state.tracks}.get  # freed with the function
    ordinals: dict[float, int] = {}
    days, calendar = state.days, state.calendar

    def add(groups: DayGroups) -> None:
        for start, macs, metres in groups:
            ordinal = ordinals.get(start)
            if ordinal is None:
                # Through the calendar: the leaderboards learn which days have distance.
                ordinal = ordinals[start] = calendar.ordinal_of_start(start)
            days.add_rows(ordinal, macs, metres, same_mac)

    return add


def day_groups(rows: DayRows) -> Iterator[tuple[float, list[str], list[float]]]:
    """Day rows as day_seeder takes them: (day start, macs, metres) of each run of rows
    with one day start; no metres (NULL) are 0."""
    for start, group in groupby(rows, key=itemgetter(1)):
        macs, _, metres = zip(*group, strict=True)
        yield start, list(macs), [0.0 if m is None else m for m in metres]


def apply_unflushed(state: State, unflushed: Unflushed) -> None:
    """Put back what a shutdown could not write: newer than the database's rows, and dirty."""
    dirty = state.dirty
    for (mac, total_m, floor, x1, y1, x2, y2, pending_m, held_m, last_ts,
         walk, x0, y0, cand_x, cand_y, cand_ts, jitter_ft, run_x, run_y, run_m,
         zig) in unflushed.tracks:
        state.tracks[mac] = track = track_of(floor, x1, y1, x2, y2, pending_m, held_m,
                                             last_ts, total_m, walk, x0, y0, cand_x, cand_y,
                                             cand_ts, jitter_ft, run_x, run_y, run_m, zig)
        if settles(track.walk):  # a walk under way, or a lone leg a stop would credit
            state.walking.add(mac, track.last_ts)
        dirty.tracks.add(mac)
        owner = state.owners.get(mac)
        if owner is not None:
            owner.revision += 1
            state.changed_users.add(owner)
    for mac, start, metres in unflushed.days:
        key = (mac, state.calendar.ordinal_of_start(start))
        state.days[key] = metres or 0.0
        dirty.days.add(key)
    for minute, users, devices, notifications in unflushed.counts:
        state.notifications[int(minute)] = notifications
        state.registered[int(minute)] = (users, devices)
        dirty.minutes.add(int(minute))
    _set_zones(state, unflushed.zones)
    dirty.zones.update((int(minute), name) for minute, name, _ in unflushed.zones)


def _set_zones(state: State, rows: Iterable[tuple[float, str, int]]) -> None:
    # Who was counted in those zones and minutes is not known any more: they take no
    # more visits, or a device seen before the restart would count twice.
    for minute, name, visits in rows:
        state.zones[(int(minute), name)] = visits
        state.visits.close(int(minute), name)


def track_of(floor: int | None, x1_ft: float | None, y1_ft: float | None,
             x2_ft: float | None, y2_ft: float | None, pending_m: float, held_m: float,
             last_ts: float | None, total_m: float, walk: int | None = 0,
             x0_ft: float | None = None, y0_ft: float | None = None,
             cand_x_ft: float | None = None, cand_y_ft: float | None = None,
             cand_ts: float | None = None, jitter_ft: float | None = None,
             run_x_ft: float | None = None, run_y_ft: float | None = None,
             run_m: float | None = 0.0, zig: float | None = None) -> Track:
    """A track from stored columns; a legacy row without a point restarts at its next fix.

    Rows from before the adaptive filter (its columns at their defaults) continue as
    tracks with no walk under way; rows from before rule D, with no run and the prior
    zig; a half-stored point is dropped, never guessed.
    """
    if x1_ft is None or y1_ft is None:
        return Track(NO_FLOOR, 0.0, 0.0, last_ts or 0.0, total_m)
    if x2_ft is None or y2_ft is None:
        x2_ft = y2_ft = None
    if x0_ft is None or y0_ft is None:
        x0_ft = y0_ft = None
    if cand_x_ft is None or cand_y_ft is None or cand_ts is None:
        cand_x_ft = cand_y_ft = cand_ts = None
    if run_x_ft is None or run_y_ft is None:
        run_x_ft = run_y_ft = None
    if walk not in WALKS or (settles(walk) and x2_ft is None):  # type: ignore[arg-type]
        walk = 0
    return Track.restore(floor, x1_ft, y1_ft, x2_ft, y2_ft, pending_m, held_m, last_ts or 0.0,
                         total_m, walk, x0_ft, y0_ft, cand_x_ft, cand_y_ft, cand_ts,  # type: ignore[arg-type]
                         # A value at its prior is the prior's one float object, not a
                         # million copies (0.0 too, by `or`).
                         JITTER_PRIOR_FT if jitter_ft is None or jitter_ft == JITTER_PRIOR_FT
                         else jitter_ft,
                         run_x_ft, run_y_ft, run_m or 0.0,
                         ZIG_PRIOR if zig is None or zig == ZIG_PRIOR else zig)
