"""Leaderboard and places (DESIGN section 7), as plain functions."""

from __future__ import annotations

import random

import pytest

from tys_server.core.ranking import Entry, Ranking


def test_users_are_ordered_by_total_descending() -> None:
    ranking = Ranking([("carol", 10.0), ("alice", 30.0), ("bob", 20.0)])
    assert ranking.top(3) == [Entry(1, "alice", 30.0), Entry(2, "bob", 20.0),
                              Entry(3, "carol", 10.0)]


def test_ties_are_broken_by_username_ignoring_case() -> None:
    ranking = Ranking([("carol", 5.0), ("Bob", 5.0), ("alice", 5.0), ("dave", 9.0)])
    assert [entry.username for entry in ranking.top(4)] == ["dave", "alice", "Bob", "carol"]


def test_places_are_distinct_even_for_equal_totals() -> None:
    ranking = Ranking([("b", 1.0), ("a", 1.0), ("c", 1.0)])
    assert [ranking.place(name) for name in ("a", "b", "c")] == [1, 2, 3]


def test_place_lookup_ignores_case() -> None:
    ranking = Ranking([("Alice", 1.0), ("BOB", 2.0)])
    assert ranking.place("alice") == 2
    assert ranking.place("ALICE") == 2
    assert ranking.place("bob") == 1


def test_place_of_an_unranked_user_is_none() -> None:
    assert Ranking([("alice", 1.0)]).place("mallory") is None


def test_users_without_distance_get_places_after_everybody_who_walked() -> None:
    ranking = Ranking([("zero", 0.0), ("walker", 0.5), ("also_zero", 0.0)])
    assert [ranking.place(name) for name in ("walker", "also_zero", "zero")] == [1, 2, 3]


def test_top_leaves_out_users_without_distance() -> None:
    ranking = Ranking([("zero", 0.0), ("walker", 0.5)])
    assert ranking.top(5) == [Entry(1, "walker", 0.5)]
    assert len(ranking) == 2


@pytest.mark.parametrize("n", [0, -3])
def test_top_of_nothing_is_empty(n: int) -> None:
    assert Ranking([("alice", 1.0)]).top(n) == []


def test_top_takes_the_first_n() -> None:
    ranking = Ranking((f"user{i:02}", float(i)) for i in range(1, 11))
    assert [entry.place for entry in ranking.top(3)] == [1, 2, 3]
    assert [entry.username for entry in ranking.top(3)] == ["user10", "user09", "user08"]


def test_total_is_the_sum_over_ranked_users() -> None:
    ranking = Ranking([("a", 0.1), ("b", 0.2), ("c", 0.0), ("d", 1e6)])
    assert ranking.total_m == pytest.approx(1e6 + 0.3)


def test_empty_ranking() -> None:
    ranking = Ranking([])
    assert (len(ranking), ranking.total_m, ranking.top(5), ranking.place("x")) == (0, 0.0, [],
                                                                                   None)


def test_username_is_shown_as_given() -> None:
    assert Ranking([("ÉMILE", 3.0)]).top(1)[0].username == "ÉMILE"
    assert Ranking([("Straße", 3.0)]).place("STRASSE") == 1  # casefold, not lower


def test_thirty_thousand_users_rank_like_a_sort() -> None:
    # How fast is the benchmark's business (tools/bench.py), not a timed unit test.
    rng = random.Random(7)
    totals = [(f"user{i}", rng.choice([0.0, rng.uniform(0, 50_000)])) for i in range(30_000)]
    ranking = Ranking(totals)
    ordered = sorted(totals, key=lambda t: (-t[1], t[0].casefold(), t[0]))
    assert ranking.top(100) == [
        Entry(place, name, total) for place, (name, total) in enumerate(ordered[:100], 1)
        if total > 0
    ]
    assert all(ranking.place(name) == place for place, (name, _) in enumerate(ordered, 1))


def test_exact_place_names_the_name_as_ranked_only() -> None:
    ranking = Ranking([("Alice", 1.0), ("BOB", 2.0)])
    assert (ranking.exact_place("Alice"), ranking.exact_place("BOB")) == (2, 1)
    assert ranking.exact_place("alice") is None
    ranking.remove("BOB")
    assert (ranking.exact_place("Alice"), ranking.exact_place("BOB")) == (1, None)
