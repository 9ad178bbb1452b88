"""The in-memory aggregate: event days, zone visits, dirty keys (no I/O)."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

import pytest

from tys_server.core.events import Batch, DeviceExit, Event, Fix, IpSeen, Movement, ZoneVisit
from tys_server.core.gate import GateParams
from tys_server.core.snapshot import Loaded
from tys_server.core.state import Dirty, State
from tys_server.core.tracking import NO_FLOOR, FilterParams
from tys_server.core.zones import AHEAD_S, BEHIND_S
from tys_server.store.flush_rows import flush_chunks

MAC = "00:11:22:33:44:55"
LA = zoneinfo.ZoneInfo("America/Los_Angeles")


def flushed(state: State, dirty: Dirty) -> dict[str, list[tuple[Any, ...]]]:
    """The rows a flush of dirty writes, table by table (columns zipped back into rows)."""
    rows: dict[str, list[tuple[Any, ...]]] = {"tracks": [], "days": [], "counts": [], "zones": []}
    for chunk in flush_chunks(state, dirty):
        rows["tracks"] += zip(*chunk.tracks, strict=True)
        rows["days"] += zip(*chunk.days, strict=True)
        rows["counts"] += chunk.counts
        rows["zones"] += chunk.zones
    return rows


def batch(*events: Event | object) -> Batch:
    return Batch(list(events), len(events), 0, 0, {})


def walk(start_s: float, points: int) -> list[Movement]:
    """A straight line, 50 ft and 15 s between points."""
    return [Movement(MAC, 1, 50.0 * i, 0.0, 50.0, start_s + 15 * i) for i in range(points)]


def test_walk_across_midnight_splits_between_event_days() -> None:
    state = State(FilterParams(), "America/Los_Angeles")
    midnight = dt.datetime(2026, 11, 28, tzinfo=LA).timestamp()
    # Credits happen at points 2..9 (ts of the point that confirms a leg);
    # points 0-4 are before local midnight, 5-9 after.
    moves = walk(midnight - 5 * 15 + 1, 10)
    state.ingest(batch(*moves), midnight + 200)
    nov27 = dt.date(2026, 11, 27).toordinal()
    nov28 = dt.date(2026, 11, 28).toordinal()
    assert state.day_m(MAC, nov27) == pytest.approx(3 * 15.24)
    assert state.day_m(MAC, nov28) == pytest.approx(5 * 15.24)
    assert state.total_m(MAC) == pytest.approx(8 * 15.24)
    rows = flushed(state, state.take_dirty())
    starts = sorted(start for start, _, _ in rows["days"])
    assert starts == [dt.datetime(2026, 11, 27, tzinfo=LA).timestamp(), midnight]


def test_same_walk_in_utc_stays_on_one_day() -> None:
    state = State(FilterParams(), "UTC")
    noon = dt.datetime(2026, 11, 28, 12, tzinfo=dt.UTC).timestamp()
    state.ingest(batch(*walk(noon, 10)), noon + 200)
    assert state.day_m(MAC, dt.date(2026, 11, 28).toordinal()) == pytest.approx(8 * 15.24)


def test_zone_visit_counts_once_per_device_and_minute() -> None:
    state = State(FilterParams(), "UTC")
    minute = 1_795_000_020.0
    state.ingest(batch(ZoneVisit(MAC, "Hall A", minute), ZoneVisit(MAC, "Hall A", minute + 30),
                       ZoneVisit("00:11:22:33:44:66", "Hall A", minute + 10),
                       ZoneVisit(MAC, "Hall B", minute + 5),
                       ZoneVisit(MAC, "Hall A", minute + 60)), minute + 61)
    start = int(minute) // 60 * 60
    assert state.zones[(start, "Hall A")] == 2
    assert state.zones[(start, "Hall B")] == 1
    assert state.zones[(start + 60, "Hall A")] == 1


def test_failed_flush_puts_its_keys_back() -> None:
    state = State(FilterParams(), "UTC")
    now = 1_795_000_000.0
    state.ingest(batch(*walk(now - 200, 4)), now)
    dirty = state.take_dirty()
    assert not state.dirty
    state.ingest(batch(Movement("00:11:22:33:44:77", 1, 0.0, 0.0, None, now)), now)
    state.dirty.merge(dirty)
    assert state.dirty.tracks == {MAC, "00:11:22:33:44:77"}
    rows = flushed(state, state.dirty)
    (walker_total_m,) = [total_m for mac, total_m, *_ in rows["tracks"] if mac == MAC]
    assert walker_total_m == pytest.approx(2 * 15.24)
    assert sum(n for _, _, _, n in rows["counts"]) == 5


def test_stale_notification_changes_nothing() -> None:
    state = State(FilterParams(), "UTC")
    now = 1_795_000_000.0
    state.ingest(batch(*walk(now - 200, 3)), now)
    state.take_dirty()
    state.ingest(batch(Movement(MAC, 1, 500.0, 0.0, 50.0, now - 1000)), now)
    assert MAC not in state.dirty.tracks


LEG_M = 50 * 0.3048
NOW_S = 1_795_000_020.0
MINUTE = int(NOW_S) // 60 * 60


def test_zone_visit_older_than_memory_is_stale_and_never_overwrites_the_stored_count() -> None:
    state = State(FilterParams(), "UTC")
    old = MINUTE - 2 * 3600  # stored by an earlier run: 7 devices in Hall A that minute
    state.seed(Loaded(users=[], devices=[], tracks=[], days=[], counts=[],
                      zones=[(float(old), "Hall A", 7)]))
    state.ingest(batch(ZoneVisit(MAC, "Hall A", old + 30)), NOW_S)
    state.forget_old(NOW_S + 3 * 3600)  # and once memory has forgotten that minute
    state.ingest(batch(ZoneVisit(MAC, "Hall A", old + 40)), NOW_S + 3 * 3600)
    assert flushed(state, state.take_dirty())["zones"] == []  # 7 stays: nothing written
    assert state.stale_visits == 2
    assert state.zones.get((old, "Hall A")) in (7, None)


def test_device_seen_again_in_an_older_open_minute_counts_once() -> None:
    state = State(FilterParams(), "UTC")
    state.ingest(batch(ZoneVisit(MAC, "Hall A", MINUTE + 5)), NOW_S)
    state.take_dirty()
    state.forget_old(NOW_S + 240)  # flushes do not trim who was counted
    late = NOW_S + 240
    state.ingest(batch(ZoneVisit(MAC, "Hall A", MINUTE + 50),
                       ZoneVisit("00:11:22:33:44:66", "Hall A", MINUTE + 55)), late)
    assert state.zones[(MINUTE, "Hall A")] == 2
    assert flushed(state, state.take_dirty())["zones"] == [(float(MINUTE), "Hall A", 2)]
    assert state.stale_visits == 0


def test_zone_minutes_are_open_from_ten_minutes_behind_to_five_ahead() -> None:
    state = State(FilterParams(), "UTC")
    edges = [MINUTE - BEHIND_S, MINUTE - BEHIND_S - 60, MINUTE + AHEAD_S,
             MINUTE + AHEAD_S + 60]
    state.ingest(batch(*(ZoneVisit(MAC, "Hall A", m + 1) for m in edges)), NOW_S)
    assert sorted(m for m, _ in state.zones) == [MINUTE - BEHIND_S, MINUTE + AHEAD_S]
    assert state.stale_visits == 2
    # The floor only rises: a clock that steps back does not reopen a closed minute.
    state.ingest(batch(ZoneVisit(MAC, "Hall B", MINUTE - BEHIND_S - 60)), NOW_S - 120)
    assert state.stale_visits == 3


def test_zone_counts_loaded_from_the_database_take_no_more_visits() -> None:
    state = State(FilterParams(), "UTC")
    ahead = MINUTE + AHEAD_S  # a count stored a few minutes ahead blocks nothing else
    state.seed(Loaded(users=[], devices=[], tracks=[], days=[], counts=[],
                      zones=[(float(MINUTE), "Hall A", 3), (float(ahead), "Hall A", 1)]))
    # Who made those 3 is not known any more: a device among them must not count twice.
    state.ingest(batch(ZoneVisit(MAC, "Hall A", MINUTE + 30),
                       ZoneVisit(MAC, "Hall B", MINUTE + 30),
                       ZoneVisit(MAC, "Hall A", MINUTE + 60)), NOW_S + 60)
    assert state.zones == {(MINUTE, "Hall A"): 3, (ahead, "Hall A"): 1, (MINUTE, "Hall B"): 1,
                           (MINUTE + 60, "Hall A"): 1}
    assert state.stale_visits == 1
    assert sorted(flushed(state, state.take_dirty())["zones"]) == [
        (float(MINUTE), "Hall B", 1), (float(MINUTE + 60), "Hall A", 1)]


def fixes(mac: str, xs: list[float], start_s: float) -> list[Fix]:
    return [Fix(mac, 1, x, 0.0, 5.0, start_s + 10 * i) for i, x in enumerate(xs)]


def test_fixes_go_through_the_gate_then_the_filter() -> None:
    state = State(FilterParams(), "UTC", gate=GateParams(gate_ft=50.0, max_uncertainty_ft=20.0))
    # Every 10 ft on a timer: the gate passes one fix per 50 ft, so the filter sees
    # 0, 50, 100, 150, 200 ft: three legs credited.
    state.ingest(batch(*fixes(MAC, [10.0 * i for i in range(21)], NOW_S - 300)), NOW_S)
    assert state.total_m(MAC) == pytest.approx(3 * LEG_M)
    assert state.tracks[MAC].x2_ft == 200.0
    uncertain = Fix(MAC, 1, 400.0, 0.0, 25.0, NOW_S - 50)
    state.ingest(batch(uncertain), NOW_S)
    assert state.tracks[MAC].x2_ft == 200.0


def test_stale_fixes_and_movements_are_counted_and_change_nothing() -> None:
    state = State(FilterParams(), "UTC")
    state.ingest(batch(*walk(NOW_S - 300, 4)), NOW_S)
    before = state.tracks[MAC].as_row()
    state.take_dirty()
    state.ingest(batch(Movement(MAC, 1, 900.0, 0.0, 50.0, NOW_S - 400),
                       Fix(MAC, 1, 900.0, 0.0, None, NOW_S - 400),
                       Movement(MAC, 1, 150.0, 0.0, None, NOW_S)), NOW_S)  # a repeat
    assert state.stale_movements == 2
    assert state.tracks[MAC].as_row() == before
    assert not state.dirty.tracks


def test_ip_sightings_go_to_the_lookup_and_unknown_events_are_ignored() -> None:
    seen: list[IpSeen] = []
    state = State(FilterParams(), "UTC", on_ip_seen=seen.append)
    sighting = IpSeen("10.0.0.7", MAC, NOW_S)
    state.ingest(batch(sighting, object(), *walk(NOW_S - 100, 3)), NOW_S)
    assert seen == [sighting]
    assert state.tracks[MAC].x2_ft == 100.0  # the rest of the batch was applied
    State(FilterParams(), "UTC").ingest(batch(sighting), NOW_S)  # nobody listening: fine


def test_device_exit_ends_the_track_without_crediting_or_losing() -> None:
    state = State(FilterParams(), "UTC")
    state.ingest(batch(*walk(NOW_S - 300, 4)), NOW_S)  # 2 legs credited, 1 pending
    state.take_dirty()
    state.ingest(batch(DeviceExit(MAC, NOW_S - 200)), NOW_S)
    track = state.tracks[MAC]
    assert (track.floor, track.total_m, track.pending_m) == (NO_FLOOR, pytest.approx(2 * LEG_M),
                                                             0.0)
    assert state.dirty.tracks == {MAC}
    # Back later, far away: a new track on the same total, no leg across the absence.
    state.ingest(batch(*(Movement(MAC, 1, 5000.0 + 50 * i, 0.0, 50.0, NOW_S - 100 + 15 * i)
                         for i in range(3))), NOW_S)
    assert state.total_m(MAC) == pytest.approx(3 * LEG_M)
    # A fix from before the exit, arriving late, does not restart the track.
    state.ingest(batch(Movement(MAC, 1, 0.0, 0.0, 50.0, NOW_S - 250)), NOW_S)
    assert state.tracks[MAC].floor == 1 and state.stale_movements == 1
    State(FilterParams(), "UTC").ingest(batch(DeviceExit(MAC, NOW_S)), NOW_S)  # unknown: fine


def test_new_devices_past_max_devices_are_refused_and_the_rest_is_kept() -> None:
    state = State(FilterParams(), "UTC", max_devices=2)
    known = ["02:00:00:00:00:01", "02:00:00:00:00:02"]
    state.ingest(batch(*(Movement(m, 1, 0.0, 0.0, None, NOW_S - 60) for m in known)), NOW_S)
    newcomers = [Movement(f"02:00:00:00:01:{i:02x}", 1, 0.0, 0.0, None, NOW_S) for i in range(3)]
    steps = [Movement(m, 1, 50.0, 0.0, 50.0, NOW_S - 30) for m in known]
    state.ingest(batch(newcomers[0], steps[0], *newcomers[1:],
                       Fix("02:00:00:00:02:00", 1, 0.0, 0.0, None, NOW_S), steps[1]), NOW_S)
    assert sorted(state.tracks) == known
    assert [state.tracks[m].x2_ft for m in known] == [50.0, 50.0]
    assert state.refused_devices == 4
    assert state.dirty.tracks == set(known)


# -- the adaptive filter in the state (docs/accuracy.md) ----------------------------------

ADAPTIVE = FilterParams(mode="adaptive")
STOP_M = 0.4 * 50 * 0.3048  # what a stop adds past a CMX walker's last fix, by default


class CountingTracks(dict[str, Any]):
    """A tracks dict that counts look-ups and refuses to be scanned."""

    looked_up = 0

    def get(self, key: str, default: Any = None) -> Any:
        self.looked_up += 1
        return super().get(key, default)

    def __iter__(self) -> Any:
        raise AssertionError("the settle scanned every track")

    def items(self) -> Any:
        raise AssertionError("the settle scanned every track")

    def values(self) -> Any:
        raise AssertionError("the settle scanned every track")


def test_the_settle_visits_only_the_walks_under_way_never_every_track() -> None:
    state = State(ADAPTIVE, "UTC")
    state.tracks = tracks = CountingTracks()
    still = [Movement(f"02:00:00:00:{i >> 8:02x}:{i & 255:02x}", 1, 5.0 * i, 0.0, None,
                      NOW_S - 900) for i in range(5000)]
    walkers = [Movement(f"02:00:00:01:00:{w:02x}", 1, 50.0 * i, 100.0 * w, 50.0,
                        NOW_S - 900 + 15 * i) for i in range(6) for w in range(3)]
    state.ingest(batch(*still, *walkers), NOW_S)
    assert len(state.walking) == 3  # queued once each, however many fixes they had
    tracks.looked_up = 0
    assert state.settle(NOW_S) == 3
    assert tracks.looked_up == 3
    assert state.total_m("02:00:00:01:00:00") == pytest.approx(5 * LEG_M + STOP_M)
    tracks.looked_up = 0
    assert state.settle(NOW_S + 3600) == 0
    assert tracks.looked_up == 0


def test_a_walk_that_went_on_is_queued_again_not_settled() -> None:
    state = State(ADAPTIVE, "UTC")
    state.ingest(batch(*walk(NOW_S - 300, 4)), NOW_S)  # queued at its 4th fix (ts −255)
    state.ingest(batch(*walk(NOW_S - 300, 8)[4:]), NOW_S)  # on until ts −195
    assert state.settle(NOW_S - 255 + 60) == 0  # its queued time is due, its walk is not
    assert len(state.walking) == 1
    assert state.settle(NOW_S - 195 + 60) == 1
    assert state.total_m(MAC) == pytest.approx(7 * LEG_M + STOP_M)


def test_a_stop_belongs_to_the_day_of_the_fix_before_it_whoever_credits_it() -> None:
    midnight = dt.datetime(2026, 11, 28, tzinfo=LA).timestamp()
    nov27, nov28 = dt.date(2026, 11, 27).toordinal(), dt.date(2026, 11, 28).toordinal()
    moves = walk(midnight - 140, 10)  # the last fix at 23:59:55 local
    after_midnight = Movement(MAC, 1, 470.0, 30.0, 50.0, midnight + 300)  # slow: a stop
    by_settle = State(ADAPTIVE, "America/Los_Angeles")
    by_settle.ingest(batch(*moves), midnight)
    assert by_settle.settle(midnight + 120) == 1  # after midnight
    by_settle.ingest(batch(after_midnight), midnight + 300)
    by_fix = State(ADAPTIVE, "America/Los_Angeles")
    by_fix.ingest(batch(*moves, after_midnight), midnight + 300)
    for state in (by_settle, by_fix):
        assert state.day_m(MAC, nov27) == pytest.approx(9 * LEG_M + STOP_M)
        assert state.day_m(MAC, nov28) == 0.0
    assert by_settle.days == by_fix.days


def test_device_exit_settles_a_walk_at_once_in_the_adaptive_mode() -> None:
    state = State(ADAPTIVE, "UTC")
    state.ingest(batch(*walk(NOW_S - 300, 4)), NOW_S)  # 3 legs, walking
    state.take_dirty()
    state.ingest(batch(DeviceExit(MAC, NOW_S - 250)), NOW_S)
    assert state.total_m(MAC) == pytest.approx(3 * LEG_M + STOP_M)
    assert state.tracks[MAC].floor == NO_FLOOR
    assert state.dirty.tracks == {MAC}
    last_fix_day = dt.datetime.fromtimestamp(NOW_S - 255, dt.UTC).date().toordinal()
    assert state.dirty.days == {(MAC, last_fix_day)}
    assert state.settle(NOW_S + 3600) == 0  # nothing left to settle


def floor_walk(start_s: float) -> list[Fix]:
    """Eight fixes 60 ft apart (past the gate) on floor 1, then eight on floor 2, 15 s apart."""
    return [Fix(MAC, 1 + i // 8, 60.0 * i, 0.0, None, start_s + 15 * i) for i in range(16)]


@pytest.mark.parametrize("params", [FilterParams(), ADAPTIVE], ids=["classic", "adaptive"])
@pytest.mark.parametrize("exited", [False, True], ids=["walking", "exited"])
def test_a_replayed_fix_older_than_the_track_is_stale_whatever_its_floor(
        params: FilterParams, exited: bool) -> None:
    """A Firehose resume replays fixes from before a floor change or an exit (DESIGN 12.2):
    taken as a new floor, they started the track again and credited the walk twice."""
    state = State(params, "UTC")
    stream = floor_walk(NOW_S - 300)
    state.ingest(batch(*stream, *([DeviceExit(MAC, NOW_S - 30)] if exited else [])), NOW_S)
    before = (repr(state.tracks[MAC]), dict(state.days))
    last_ts = state.tracks[MAC].last_ts
    replay = stream[4:]  # four fixes on floor 1, eight on floor 2
    state.ingest(batch(*replay), NOW_S)
    assert (repr(state.tracks[MAC]), dict(state.days)) == before
    assert state.stale_movements == sum(fix.ts < last_ts for fix in replay)


def test_the_adaptive_gate_s_state_is_flushed_even_when_no_fix_passes() -> None:
    state = State(ADAPTIVE, "UTC", gate=GateParams(gate_ft=50.0, max_uncertainty_ft=82.0))
    state.ingest(batch(*fixes(MAC, [0.0, 3.0], NOW_S - 300)), NOW_S)
    state.take_dirty()
    state.ingest(batch(*fixes(MAC, [1.0], NOW_S - 280)), NOW_S)  # jitter: nothing passes
    assert state.tracks[MAC].x2_ft is None
    assert state.dirty.tracks == {MAC}
    (chunk, _) = flush_chunks(state, state.take_dirty())
    assert chunk.adaptive[3:6] == ([1.0], [0.0], [NOW_S - 280])  # the gate's candidate


def test_a_restart_continues_walks_and_their_settle() -> None:
    first = State(ADAPTIVE, "UTC")
    first.ingest(batch(*walk(NOW_S - 300, 6)), NOW_S)
    rows = [(mac, t.total_m, *t.as_row()[:-1], *t.adaptive_row())
            for mac, t in first.tracks.items()]
    second = State(ADAPTIVE, "UTC")
    second.seed(Loaded(users=[], devices=[], tracks=rows, days=[], counts=[], zones=[]))
    for state in (first, second):
        assert state.settle(NOW_S) == 1
    assert second.tracks[MAC].as_row() == first.tracks[MAC].as_row()
    assert second.total_m(MAC) == pytest.approx(5 * LEG_M + STOP_M)


def test_a_credited_owner_is_listed_for_the_boards_once_between_takes() -> None:
    state = State(FilterParams(), "UTC")
    start_s = dt.datetime(2026, 11, 28, 12, tzinfo=dt.UTC).timestamp()
    owner = state.add_user("a@example.org", "a", MAC, start_s)
    assert state.take_changed_users() == {owner}  # the registration
    moves = walk(start_s, 9)
    state.ingest(batch(*moves[:4]), start_s + 60)  # credits at the third and fourth points
    assert state.take_changed_users() == {owner}
    assert state.take_changed_users() == set()
    revision = owner.revision
    state.ingest(batch(*moves[4:]), start_s + 200)  # five more credits
    assert owner.revision == revision + 5  # a bump per credit, one listing for the boards
    assert state.take_changed_users() == {owner}


def test_forgetting_devices_drops_their_tracks_days_and_dirty_keys_only() -> None:
    state = State(FilterParams(), "America/Los_Angeles")
    midnight = dt.datetime(2026, 11, 28, tzinfo=LA).timestamp()
    other = "00:11:22:33:44:66"
    state.ingest(batch(*walk(midnight - 5 * 15 + 1, 10)), midnight + 200)  # two days
    state.ingest(batch(*[Movement(other, 1, 50.0 * i, 0.0, 50.0, midnight + 15 * i)
                         for i in range(6)]), midnight + 200)
    owner = state.add_user("a@example.org", "a", MAC, midnight)
    revision = owner.revision
    state.take_changed_users()
    assert len([key for key in state.days if key[0] == MAC]) == 2

    assert state.forget_devices({MAC, "00:00:00:00:00:01"}) == 1  # one had a track
    assert MAC not in state.tracks and all(mac != MAC for mac, _ in state.days)
    assert MAC not in state.dirty.tracks and all(mac != MAC for mac, _ in state.dirty.days)
    assert state.total_m(other) == pytest.approx(4 * 15.24)  # nobody else loses anything
    assert other in state.dirty.tracks
    assert owner.revision > revision and state.take_changed_users() == {owner}  # boards follow
    rows = flushed(state, state.take_dirty())
    assert {row[0] for row in rows["tracks"]} == {other}


def test_a_forgotten_device_seen_again_starts_from_zero() -> None:
    state = State(FilterParams(), "UTC")
    state.ingest(batch(*walk(1_795_000_000.0, 6)), 1_795_000_200.0)
    state.forget_devices([MAC])
    state.ingest(batch(*walk(1_795_000_300.0, 4)), 1_795_000_400.0)
    assert state.total_m(MAC) == pytest.approx(2 * 15.24)
