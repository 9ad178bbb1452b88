"""The ground-truth report: each device's true distance against what the server credited."""

from __future__ import annotations

import dataclasses
import math
import statistics
from typing import Any

from tools.cmx_sim.devices import STATIONARY, WALKER

# Issue 14's accuracy targets (required for location noise up to 20 ft, DESIGN 14).
MEDIAN_ERROR_TARGET_PCT = 5.0
P90_ABS_ERROR_TARGET_PCT = 12.0
STATIONARY_TARGET_PCT = 2.0
_MIN_TRUE_M = 1.0  # a walker who barely moved has no meaningful relative error


@dataclasses.dataclass(frozen=True)
class Row:
    """One evaluated device; server_m is the server's total for it during the run."""

    username: str
    kind: str
    device_id: str  # the MAC as notified (hashed when a hash key is set)
    true_m: float
    server_m: float

    @property
    def error_pct(self) -> float | None:
        """(server - true) / true in percent; None when the true distance is ~0."""
        if self.true_m < _MIN_TRUE_M:
            return None
        return (self.server_m - self.true_m) / self.true_m * 100


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1]


def build_report(rows: list[Row], scenario: dict[str, Any],
                 traffic: dict[str, Any]) -> dict[str, Any]:
    """Summary figures, target checks and every row, ready for JSON."""
    walkers = [r for r in rows if r.kind == WALKER]
    errors = [e for r in walkers if (e := r.error_pct) is not None]
    fixed = [r for r in rows if r.kind == STATIONARY]
    report: dict[str, Any] = {"scenario": scenario, "traffic": traffic}
    mean_walker_m = statistics.fmean(r.true_m for r in walkers) if walkers else 0.0
    walker_part: dict[str, Any] = {"evaluated": len(walkers), "with_error": len(errors)}
    if walkers:
        walker_part |= {
            "mean_true_m": round(mean_walker_m, 1),
            "mean_server_m": round(statistics.fmean(r.server_m for r in walkers), 1),
        }
    if errors:
        worst = max((r for r in walkers if r.error_pct is not None),
                    key=lambda r: abs(r.error_pct or 0.0))
        walker_part |= {
            "median_error_pct": round(statistics.median(errors), 1),
            "median_abs_error_pct": round(statistics.median(abs(e) for e in errors), 1),
            "p90_abs_error_pct": round(_percentile([abs(e) for e in errors], 90), 1),
            "worst_error_pct": round(worst.error_pct or 0.0, 1),
            "worst_username": worst.username,
        }
    report["walkers"] = walker_part
    fixed_part: dict[str, Any] = {"evaluated": len(fixed)}
    if fixed:
        mean_fixed_m = statistics.fmean(r.server_m for r in fixed)
        fixed_part |= {"mean_credited_m": round(mean_fixed_m, 2),
                       "max_credited_m": round(max(r.server_m for r in fixed), 2)}
        if mean_walker_m > 0:
            fixed_part["share_of_mean_walker_pct"] = round(mean_fixed_m / mean_walker_m * 100, 2)
    report["stationary"] = fixed_part
    targets: dict[str, bool] = {}
    if "median_error_pct" in walker_part:
        targets["median_walker_error_within_5pct"] = (
            abs(walker_part["median_error_pct"]) <= MEDIAN_ERROR_TARGET_PCT)
        targets["p90_abs_walker_error_within_12pct"] = (
            walker_part["p90_abs_error_pct"] <= P90_ABS_ERROR_TARGET_PCT)
    if "share_of_mean_walker_pct" in fixed_part:
        targets["stationary_under_2pct_of_walker"] = (
            fixed_part["share_of_mean_walker_pct"] < STATIONARY_TARGET_PCT)
    report["targets"] = targets
    report["devices"] = [dataclasses.asdict(r) | {"error_pct": r.error_pct} for r in rows]
    return report


def _table(rows: list[Row]) -> list[str]:
    lines = [f"  {'username':<22} {'kind':<10} {'true m':>9} {'server m':>9} {'error':>8}"]
    for r in rows:
        error = "" if r.error_pct is None else f"{r.error_pct:+.1f}%"
        lines.append(f"  {r.username:<22} {r.kind:<10} {r.true_m:>9.1f} {r.server_m:>9.1f} "
                     f"{error:>8}")
    return lines


def _traffic(feed: str, t: dict[str, Any]) -> str:
    """What went out through the feed, and what the server said of it."""
    sent = t.get("notifications", 0)
    if feed == "firehose":  # a stream: the server answers nothing per event
        return f"Traffic (firehose): {sent} location events streamed"
    what = "fixes" if feed == "meraki" else "notifications"
    return (f"Traffic ({feed}): {sent} {what} in {t.get('posts', 0)} POSTs, "
            f"{t.get('post_errors', 0)} failed; server accepted {t.get('accepted', 0)}, "
            f"ignored {t.get('ignored', 0)}, rejected {t.get('rejected', 0)}")


def format_report(report: dict[str, Any], table_rows: int = 10) -> str:
    """A readable summary: the worst walkers, the most-credited stationary devices, figures."""
    rows = [Row(d["username"], d["kind"], d["device_id"], d["true_m"], d["server_m"])
            for d in report["devices"]]
    walkers = sorted((r for r in rows if r.kind == WALKER),
                     key=lambda r: -abs(r.error_pct or 0.0))
    fixed = sorted((r for r in rows if r.kind == STATIONARY), key=lambda r: -r.server_m)
    if table_rows > 0:
        walkers, fixed = walkers[:table_rows], fixed[:max(1, table_rows // 2)]
    w, s, t = report["walkers"], report["stationary"], report["traffic"]
    out = ["", f"Ground truth vs server: {w['evaluated']} walkers, {s['evaluated']} stationary "
           f"devices evaluated" + (" (largest deviations first)" if table_rows > 0 else "")]
    out += _table(walkers + fixed)
    out.append(_traffic(report["scenario"].get("feed", "cmx"), t))
    if "median_error_pct" in w:
        out.append(f"Walkers: median error {w['median_error_pct']:+.1f}% (median |error| "
                   f"{w['median_abs_error_pct']:.1f}%, p90 |error| {w['p90_abs_error_pct']:.1f}%)"
                   f", worst {w['worst_error_pct']:+.1f}% ({w['worst_username']})")
        out.append(f"         mean true {w['mean_true_m']:.0f} m, mean server "
                   f"{w['mean_server_m']:.0f} m")
    if "mean_credited_m" in s:
        share = s.get("share_of_mean_walker_pct")
        share_text = "" if share is None else f" = {share:.1f}% of the mean walker's true distance"
        out.append(f"Stationary: mean credited {s['mean_credited_m']:.1f} m{share_text}, "
                   f"max {s['max_credited_m']:.1f} m")
    for name, ok in report["targets"].items():
        out.append(f"Target {name}: {'PASS' if ok else 'FAIL'}")
    return "\n".join(out)


def format_leaderboard(board: dict[str, Any]) -> str:
    """The server's leaderboard as a small table."""
    out = ["", "Leaderboard", f"  {'place':>5}  {'username':<22} {'km':>8} {'miles':>8} "
           f"{'steps':>8}"]
    for leader in board.get("leaders", []):
        out.append(f"  {leader.get('place', ''):>5}  {leader.get('username', ''):<22} "
                   f"{leader.get('kilometres', 0):>8} {leader.get('miles', 0):>8} "
                   f"{leader.get('steps', 0):>8}")
    out.append(f"  total: {board.get('total_kilometres', 0)} km, "
               f"{board.get('total_miles', 0)} miles")
    if "error" in board:
        out.append(f"  ({board['error']})")
    return "\n".join(out)
