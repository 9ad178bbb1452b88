"""Each shortcut taken for speed decides exactly as the plain code it stands in for."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tys_server.config import Settings
from tys_server.core.events import Movement
from tys_server.core.leaderboard import Boards
from tys_server.core.ranking import Entry, Ranking
from tys_server.core.state import State
from tys_server.core.tracking import FilterParams, Track, _angle_deg, _walks_on
from tys_server.feeds import cmx as notifications
from tys_server.feeds.cmx import parse_envelope
from tys_server.service import Service
from tys_server.store.flush_rows import flush_chunks
from tys_server.store.flush_sql import _array_literal

NOW_S = 1_795_000_000.0
FLOOR = 723413320329068590

numbers = (st.floats(allow_nan=True, allow_infinity=True) | st.integers(-(2**70), 2**70)
           | st.booleans() | st.none() | st.sampled_from(["12.5", "", "x", "1e400"]))
macs = st.sampled_from(["02:10:00:00:00:01", "02:10:00:00:00:0g", "02:10:00:00:00:01 ",
                        "02-10-00-00-00-01", "0210.0000.0001", "02:10:00:00:00:1", "", 7])
entries = st.fixed_dictionaries(
    {"notificationType": st.sampled_from(["movement", "locationupdate", "Movement", 3])},
    optional={
        "deviceId": macs,
        "locationCoordinate": st.fixed_dictionaries(
            {}, optional={"x": numbers, "y": numbers,
                          "unit": st.sampled_from(["FEET", "METERS", "feet", None, 5])})
        | numbers,
        "floorId": numbers | st.sampled_from([FLOOR, -FLOOR, 2**63, str(FLOOR)]),
        "floorRefId": st.sampled_from([None, "", str(FLOOR)]),
        "moveDistanceInFt": numbers,
        "timestamp": numbers | st.sampled_from([1_795_000_000_123, 1_795_000_000,
                                                2_000_000_000_000, -5, 0]),
        "lastSeen": st.sampled_from(["2026-11-18T10:00:00.000+0000", "", "garbage"]),
    })


@settings(max_examples=600, deadline=None)
@given(st.lists(entries, max_size=6))
def test_plain_movement_shortcut_reads_every_entry_like_the_general_path(
        batch: list[dict[str, Any]]) -> None:
    body = {"notifications": batch}
    fast = parse_envelope(body, NOW_S)
    original = notifications._plain_movement
    notifications._plain_movement = lambda *_: None  # type: ignore[assignment]
    try:
        general = parse_envelope(body, NOW_S)
    finally:
        notifications._plain_movement = original
    assert fast.events == general.events
    assert (fast.accepted, fast.ignored, fast.rejected) == \
        (general.accepted, general.ignored, general.rejected)
    assert fast.by_type == general.by_type
    # MACs already tracked skip the pattern: the outcome must not change.
    tracked = {e.mac for e in general.events}
    assert parse_envelope(body, NOW_S, tracked) == fast


coordinates = st.floats(-1e6, 1e6, allow_nan=False)


@settings(max_examples=2000, deadline=None)
@given(st.tuples(*[coordinates] * 6), st.floats(0, 180))
def test_cosine_turn_test_agrees_with_the_angle_in_degrees(
        points: tuple[float, ...], max_angle_deg: float) -> None:
    params = FilterParams(4.42, max_angle_deg)
    assert _walks_on(*points, params) == (_angle_deg(*points) >= max_angle_deg)


@pytest.mark.parametrize("max_angle_deg", [0.0, 90.0, 105.0, 180.0])
def test_cosine_turn_test_agrees_on_exact_right_angles_and_lines(max_angle_deg: float) -> None:
    params = FilterParams(4.42, max_angle_deg)
    for points in [(0, 0, 50, 0, 100, 0), (0, 0, 50, 0, 50, 50), (0, 0, 50, 0, 0, 0),
                   (0, 0, 0, 0, 5, 5), (3, 4, 0, 0, -4, 3)]:
        assert _walks_on(*points, params) == (_angle_deg(*points) >= max_angle_deg), points


def test_ranking_moved_one_user_at_a_time_equals_a_fresh_one() -> None:
    rng = random.Random(11)
    names = [f"user{i}" for i in range(300)] + ["Straße", "STRASSE", "Émile", "émile"]
    live = Ranking()
    totals: dict[str, float] = {}
    for _ in range(3000):
        name = rng.choice(names)
        if rng.random() < 0.1:
            live.remove(name)
            totals.pop(name, None)
        else:
            total = rng.choice([0.0, rng.uniform(0, 1000), float(rng.randrange(5))])
            live.set(name, total)
            totals[name] = total
    fresh = Ranking(totals.items())
    assert live.top(500) == fresh.top(500)
    assert [live.place(n) for n in names] == [fresh.place(n) for n in names]
    assert len(live) == len(fresh) == len(totals)


def test_live_ranking_keeps_places_distinct_and_zeros_off_the_board() -> None:
    ranking = Ranking([("b", 1.0), ("a", 1.0)])
    ranking.set("c", 5.0)
    ranking.set("a", 0.0)
    assert ranking.top(5) == [Entry(1, "c", 5.0), Entry(2, "b", 1.0)]
    assert [ranking.place(n) for n in ("c", "b", "a")] == [1, 2, 3]


def boards_state() -> tuple[State, Service]:
    state = State(FilterParams(), "UTC")
    for i in range(20):
        mac = f"02:10:00:00:00:{i:02x}"
        state.add_user(f"u{i}@x", f"u{i}", mac, NOW_S)
        state.tracks[mac] = Track(FLOOR, 0.0, 0.0, NOW_S - 100, float(i))
    return state, Service(Settings(), state, None, None)  # type: ignore[arg-type]


def test_board_follows_distance_registrations_and_deletions() -> None:
    state, service = boards_state()
    boards = Boards(state, service.is_ranked, refresh_interval_s=0.0)
    assert boards.overall().ranking.top(1)[0].username == "u19"
    state.tracks["02:10:00:00:00:03"].total_m = 100.0
    state.changed_users.add(state.owners["02:10:00:00:00:03"])
    state.remove_user(state.users["u19"], NOW_S)
    state.add_user("new@x", "u19", "02:10:00:00:00:99", NOW_S)  # the freed name, taken again
    board = boards.overall()
    fresh = Ranking((u.username, state.user_total_m(u)) for u in state.users.values())
    assert board.ranking.top(30) == fresh.top(30)
    assert board.registered_m == pytest.approx(sum(state.user_total_m(u)
                                                   for u in state.users.values()))


def test_board_waits_for_the_refresh_interval() -> None:
    state, service = boards_state()
    clock = [0.0]
    boards = Boards(state, service.is_ranked, refresh_interval_s=0.5, clock=lambda: clock[0])
    boards.overall()
    clock[0] = 1.0
    boards.overall()  # catches up now: the next change waits half a second
    state.tracks["02:10:00:00:00:00"].total_m = 1000.0
    state.changed_users.add(state.owners["02:10:00:00:00:00"])
    clock[0] = 1.2
    assert boards.overall().ranking.top(1)[0].username == "u19"
    clock[0] = 1.6
    assert boards.overall().ranking.top(1)[0].username == "u0"


def test_flush_chunks_carry_the_state_s_values_whatever_their_size() -> None:
    state = State(FilterParams(), "UTC")
    moves = [Movement(f"02:10:00:00:{i >> 8:02x}:{i & 255:02x}", FLOOR if i % 3 else None,
                      50.0 * step, 0.5 * i, 50.0, NOW_S - 300 + 5 * step)
             for step in range(3) for i in range(700)]
    state.ingest(notifications.Batch(moves, len(moves), 0, 0, {}), NOW_S)
    dirty = state.take_dirty()
    whole = list(flush_chunks(state, dirty, chunk_devices=len(dirty)))
    chunks = list(flush_chunks(state, dirty, chunk_devices=256))
    # At most 256 devices a chunk, each device's day rows with its track row.
    assert max(len(c.tracks[0]) for c in chunks if c.tracks) <= 256
    assert all(set(c.days[1]) <= set(c.tracks[0]) for c in chunks if c.days)
    for part in ("tracks", "days"):
        merged, one = ([row for c in parts if getattr(c, part)
                        for row in zip(*getattr(c, part), strict=True)]
                       for parts in (chunks, whole))
        assert sorted(merged) == sorted(one)
    tracks = [row for c in chunks if c.tracks for row in zip(*c.tracks, strict=True)]
    assert sorted(tracks) == sorted(
        (mac, t.total_m, t.floor, t.x1_ft, t.y1_ft, t.x2_ft, t.y2_ft, t.pending_m, t.held_m,
         t.last_ts) for mac, t in state.tracks.items())
    assert sum(len(c) for c in chunks) == len(dirty)


def test_array_literals_keep_every_float_exact(db: Any) -> None:
    values = [0.1, 1e-300, 1.7976931348623157e308, -2.5, 289.56000000000006, 1e16, 1e-5, None]
    text = _array_literal(values)
    assert text.startswith("{") and text.endswith("}")
    [(stored,)] = db.query("SELECT %s::float8[]", (text,))  # PostgreSQL's own array_in
    assert stored == values
    [(floors,)] = db.query("SELECT %s::bigint[]", (_array_literal([FLOOR, None, -1]),))
    assert floors == [FLOOR, None, -1]
    macs = ["00:00:a9:3e:a7:3a", "02:10:00:00:10:59"]
    [(texts,)] = db.query("SELECT %s::macaddr[]::text[]", (_array_literal(macs),))
    assert texts == macs


def test_array_literals_spell_out_what_json_cannot() -> None:
    # JSON has no NaN or infinity (orjson writes null): PostgreSQL must not read NULL.
    text = _array_literal([1.5, math.inf, None, -math.inf, math.nan])
    assert text == "{1.5,inf,NULL,-inf,nan}"


def test_plain_movement_shortcut_takes_what_cmx_usually_sends() -> None:
    entry = {"notificationType": "movement", "deviceId": "00:00:a9:3e:a7:3a",
             "locationCoordinate": {"x": 47.92146, "y": 57, "z": 0.0, "unit": "FEET"},
             "floorId": FLOOR, "moveDistanceInFt": 10000.0, "timestamp": 1795000000241}
    assert notifications._plain_movement(entry, True, ()) == \
        Movement("00:00:a9:3e:a7:3a", FLOOR, 47.92146, 57.0, 10000.0, 1795000000.241)
    assert notifications._plain_movement({**entry, "deviceId": "00:00:A9:3E:A7:3A"}, True,
                                         ()) is None  # the general path normalises it
