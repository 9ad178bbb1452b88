"""``offline``: the accuracy matrix without a server, for tuning the filter and checking it on
other venues (``python -m tools.cmx_sim.offline``).

The walk scenario's venue and feeds (the same seeded walkers, cadences, repeats, late
Firehose events and Meraki's one POST a minute) are fed straight into core ``State`` (the
gate, the filter, the settle every 5 s at the feeds' time less 90 s, as the server runs
it), and judged by the same report as ``accuracy``. No HTTP, no database, no parsing: a
whole matrix takes seconds, and its figures mostly come within a few tenths of a point of
``accuracy``'s (the real server's; Meraki's 5-minute cells up to 2 points: the real
poster's timing differs). The venue's options make the variants the filter must also
hold on (other speeds, pauses, geometry, noise). Use ``accuracy`` for the record.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from tools.cmx_sim import accuracy, report
from tools.cmx_sim.cadence import FEEDS, LateDelivery, for_feed
from tools.cmx_sim.cli_args import add_layout, layout
from tools.cmx_sim.devices import make_devices
from tools.cmx_sim.venue import NOISE_MODELS, Fix, Venue, VenueConfig
from tys_server.core.events import Batch, Event, Movement
from tys_server.core.events import Fix as CoreFix
from tys_server.core.gate import GateParams
from tys_server.core.state import State
from tys_server.core.tracking import FilterParams

EPOCH_S = 1_700_000_000.0  # simulated t = 0 (a whole second, as the walk's)
TAIL_S = 180.0  # the walk's tail: nobody walks, the phones stay
QUIET_S = 160.0  # then the phones are silent while the settle's clock runs on (walk's quiet_s)
SETTLE_EVERY_S = 5.0
SETTLE_LATENESS_S = 90.0
MERAKI_POST_S = 60.0
GATE = GateParams(gate_ft=50.0, max_uncertainty_ft=82.0, gate_min_ft=30.0)  # conf/tys.yaml


def _events(fixes: Sequence[Fix], macs: Sequence[str], feed: str) -> list[Event]:
    if feed == "cmx":
        return [Movement(macs[f.device], f.floor, f.x_ft, f.y_ft, f.move_ft, EPOCH_S + f.t_s)
                for f in fixes]
    whole = feed == "meraki"  # Meraki's times are whole seconds
    return [CoreFix(macs[f.device], f.floor, f.x_ft, f.y_ft, None,
                    EPOCH_S + (round(f.t_s) if whole else f.t_s)) for f in fixes]


def run_cell(cell: accuracy.Cell, opts: accuracy.MatrixOptions) -> dict[str, Any]:
    """One cell of the matrix through core State; its row, as accuracy.summary makes it."""
    cfg = dataclasses.replace(opts.venue, noise_ft=cell.sigma_ft, noise_model=cell.noise_model)
    devices = make_devices(opts.attendees, opts.stationary, cfg.floors, opts.seed, "test")
    macs = [d.mac for d in devices]
    venue = Venue(devices, for_feed(cfg, cell.feed), opts.seed)
    params = FilterParams(mode=opts.filter_mode or "adaptive")
    state = State(params, "UTC", gate=GATE)
    late = LateDelivery(opts.seed) if cell.feed == "firehose" else None
    held: list[Fix] = []
    seen: set[int] = set()
    before: list[float] | None = None
    duration_s, t_s, sent = cell.minutes * 60, 0.0, 0

    def deliver(fixes: Sequence[Fix]) -> None:
        nonlocal sent
        if fixes:
            sent += len(fixes)
            state.ingest(Batch(_events(fixes, macs, cell.feed), len(fixes), 0, 0), EPOCH_S)

    while t_s < duration_s + TAIL_S + QUIET_S:
        t_s += 1.0
        if t_s == duration_s + 1.0:
            venue.stop_walking(duration_s)  # the truth ends with the session
        fixes = venue.step(t_s) if t_s <= duration_s + TAIL_S else []
        seen.update(f.device for f in fixes)
        if late is not None:
            late.add(fixes)
            deliver(late.due(t_s))
        elif cell.feed == "meraki":
            held += fixes
            if t_s % MERAKI_POST_S == 0:
                deliver(held)
                held = []
        else:
            deliver(fixes)
        if before is None and (cell.feed == "cmx" or len(seen) == len(devices)):
            before = [state.total_m(mac) for mac in macs]  # when the walk registers them
        if params.adaptive and t_s % SETTLE_EVERY_S == 0:
            state.settle(EPOCH_S + t_s - SETTLE_LATENESS_S)
    deliver(late.rest() if late is not None else held)
    if params.adaptive:
        state.settle(EPOCH_S + t_s - SETTLE_LATENESS_S + 6.0)  # the walk's settle wait
    assert before is not None
    rows = [report.Row(mac, d.kind, mac, round(venue.reported_distance_m(d.index), 1),
                       round(state.total_m(mac) - before[d.index], 1))
            for d, mac in zip(devices, macs, strict=True)]
    result = report.build_report(rows, {}, {"notifications": sent, "registered": len(rows)})
    return accuracy.summary(cell, result, 0.0)


def _run(args: tuple[accuracy.Cell, accuracy.MatrixOptions]) -> dict[str, Any]:
    return run_cell(*args)


def run_matrix(opts: accuracy.MatrixOptions) -> list[dict[str, Any]]:
    """Every cell of opts, opts.jobs at a time; the rows in matrix order."""
    work = [(cell, opts) for cell in accuracy.cells(opts)]
    if opts.jobs <= 1:
        return [_run(item) for item in work]
    with ProcessPoolExecutor(max_workers=opts.jobs) as pool:
        return list(pool.map(_run, work))


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(part) for part in text.split(","))


def parse_args(argv: Sequence[str] | None = None) -> accuracy.MatrixOptions:
    """The matrix and the venue variant from the command line."""
    venue = VenueConfig()
    ap = argparse.ArgumentParser(prog="python -m tools.cmx_sim.offline", description=__doc__,
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--feeds", default=",".join(FEEDS))
    ap.add_argument("--noise", default=",".join(NOISE_MODELS))
    ap.add_argument("--sigmas-ft", type=_floats, default=accuracy.SIGMAS_FT)
    ap.add_argument("--minutes", type=_floats, default=accuracy.SESSION_MIN)
    ap.add_argument("--attendees", type=int, default=200)
    ap.add_argument("--stationary", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--filter", choices=("adaptive", "classic"), default="adaptive")
    ap.add_argument("--speed-mps", type=_floats, default=venue.speed_mps, help="LOW,HIGH")
    ap.add_argument("--pause-s", type=_floats, default=venue.pause_s, help="LOW,HIGH")
    ap.add_argument("--width-ft", type=float, default=venue.width_ft)
    ap.add_argument("--depth-ft", type=float, default=venue.depth_ft)
    ap.add_argument("--noise-corr-s", type=float, default=venue.noise_corr_s)
    ap.add_argument("--outlier-rate", type=float, default=venue.outlier_rate)
    add_layout(ap)
    ap.add_argument("--jobs", type=int, default=2)
    a = ap.parse_args(argv)
    variant = dataclasses.replace(
        venue, speed_mps=(a.speed_mps[0], a.speed_mps[-1]), pause_s=(a.pause_s[0], a.pause_s[-1]),
        width_ft=a.width_ft, depth_ft=a.depth_ft, noise_corr_s=a.noise_corr_s,
        outlier_rate=a.outlier_rate, **layout(a))
    return accuracy.MatrixOptions(
        feeds=tuple(a.feeds.split(",")), noise_models=tuple(a.noise.split(",")),
        sigmas_ft=a.sigmas_ft, minutes=a.minutes, attendees=a.attendees,
        stationary=a.stationary, seed=a.seed, venue=variant, filter_mode=a.filter, jobs=a.jobs)


def main(argv: Sequence[str] | None = None) -> int:
    """Print the matrix; 1 when a required cell misses a target."""
    rows = run_matrix(parse_args(argv))
    print(accuracy.format_matrix(rows))
    required = [row for row in rows if row["verdict"] != "reported"]
    met = sum(row["verdict"] == "pass" for row in required)
    print(f"{met} of {len(required)} required cells meet every target")
    return 0 if met == len(required) else 1


if __name__ == "__main__":
    sys.exit(main())
