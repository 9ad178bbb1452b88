"""tools/cmx_sim/offline: the accuracy matrix through core State, without a server."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest

from tools.cmx_sim import accuracy, offline


def small(**changes: Any) -> accuracy.MatrixOptions:
    base = offline.parse_args(["--feeds", "cmx,meraki", "--noise", "correlated",
                               "--sigmas-ft", "10", "--minutes", "5", "--attendees", "20",
                               "--stationary", "10", "--jobs", "1"])
    return dataclasses.replace(base, **changes)


def test_a_cell_reports_the_walkers_and_the_still_phones_as_accuracy_does() -> None:
    rows = offline.run_matrix(small())
    assert [(row["feed"], row["sigma_ft"], row["minutes"]) for row in rows] == \
        [("cmx", 10.0, 5.0), ("meraki", 10.0, 5.0)]
    for row in rows:
        assert row["walkers"] == 20
        assert row["fixes"] > 20
        assert row["verdict"].startswith(("pass", "FAIL ("))
        assert set(row) >= {"median_error_pct", "p90_abs_error_pct", "stationary_pct"}


def test_the_same_seed_gives_the_same_rows_and_the_filter_mode_matters() -> None:
    adaptive = offline.run_matrix(small())
    assert offline.run_matrix(small()) == adaptive
    classic = offline.run_matrix(small(filter_mode="classic"))
    assert [row["median_error_pct"] for row in classic] != \
        [row["median_error_pct"] for row in adaptive]


def test_the_venue_variant_comes_from_the_command_line() -> None:
    opts = offline.parse_args(["--speed-mps", "0.7,1.2", "--pause-s", "5,60",
                               "--width-ft", "900", "--noise-corr-s", "60",
                               "--layout", "aisles", "--aisle-ft", "30"])
    assert (opts.venue.speed_mps, opts.venue.pause_s, opts.venue.width_ft,
            opts.venue.noise_corr_s) == ((0.7, 1.2), (5.0, 60.0), 900.0, 60.0)
    assert (opts.venue.layout, opts.venue.aisle_ft) == ("aisles", 30.0)
    assert opts.venue.depth_ft == 400.0  # the rest is the matrix's venue
    assert opts.venue.cross_aisle_ft == 120.0
    assert offline.parse_args([]).venue.layout == "open"
    for bad in (["--layout", "maze"], ["--aisle-ft", "0"], ["--cross-aisle-ft", "-5"]):
        with pytest.raises(SystemExit):
            offline.parse_args(bad)


class _KeptState(offline.State):
    """The cell's State, kept so the test can look at it after the cell is read."""

    kept: list[offline.State] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _KeptState.kept.append(self)


def _settled_after_the_read(monkeypatch: pytest.MonkeyPatch, quiet_s: float) -> int:
    """How many walks one noisy cell still had under way when its totals were read."""
    monkeypatch.setattr(offline, "State", _KeptState)
    monkeypatch.setattr(offline, "QUIET_S", quiet_s)
    _KeptState.kept = []
    opts = dataclasses.replace(small(), feeds=("cmx",), sigmas_ft=(20.0,), attendees=60,
                               stationary=20)
    offline.run_matrix(opts)
    (state,) = _KeptState.kept
    return state.settle(math.inf)


def test_every_walk_is_settled_before_the_totals_are_read(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Noise fixes late in the tail keep walks under way; without the quiet end (the phones
    # silent for settle_s + the settle's 90 s lateness) they are read before their settle.
    quiet_s = offline.QUIET_S
    assert quiet_s >= 60.0 + offline.SETTLE_LATENESS_S  # tracking.settle_s 60
    assert _settled_after_the_read(monkeypatch, 0.0) > 0
    assert _settled_after_the_read(monkeypatch, quiet_s) == 0
