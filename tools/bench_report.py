"""The bench's verdict: one row per figure, with its target, printed as one table."""

from __future__ import annotations

import dataclasses
from typing import Any

LATENCY_P99_MS = 25.0
FLUSH_S = 3.0
STALL_MS = 50.0
RSS_MIB = 1024.0
BYTES_PER_DEVICE = 1024
RELOAD_S = 20.0
DAY_BOARD_RATIO = 0.25
FIREHOSE_RATIO = 0.5
MERAKI_POST_MS = 100.0


@dataclasses.dataclass
class Row:
    """One figure: TYS's value, the reference's, their ratio, the target and the verdict."""

    name: str
    unit: str
    tys: float
    reference: float | None = None
    ratio: float | None = None
    target: str = ""
    passed: bool | None = None  # None: for information, no target

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _ratio_row(name: str, unit: str, row: dict[str, Any], least: float | None,
               other: str = "reference") -> Row:
    """Median rates of each side; the ratio is the median of the back-to-back round pairs."""
    tys, ref = float(row["tys"]["per_s_median"]), float(row[other]["per_s_median"])
    ratio = float(row[other]["ratio"])
    if least is None:
        return Row(name, unit, tys, ref, ratio)
    return Row(name, unit, tys, ref, ratio, f">= {least:.2f} x ref", ratio >= least)


def _below(name: str, unit: str, value: float, limit: float, ref: float | None = None) -> Row:
    return Row(name, unit, value, ref, None, f"< {limit:g} {unit}", value < limit)


def rows_from(results: dict[str, Any]) -> list[Row]:
    """Every row of the table, from bench.run()'s results."""
    http, flush, memory = results["http"], results["flush"], results["memory"]
    sizes = results["sizes"]
    users = f"{sizes['users']:,} users, 500 notif/s"

    lat, reads = http["latency"], http["read_latency"]
    rows = [
        _ratio_row(f"single-notification POSTs ({sizes['macs']:,} MACs)", "POST/s",
                   http["single"], 0.90),
        _ratio_row("  reference without TYS's server timeouts (bare Tornado)", "POST/s",
                   http["single"], None, other="bare"),
        Row("  latency p50 at 1,000 notif/s", "ms", lat["tys"]["p50_ms"],
            lat["reference"]["p50_ms"]),
        _below("  latency p99 at 1,000 notif/s", "ms", lat["tys"]["p99_ms"], LATENCY_P99_MS,
               lat["reference"]["p99_ms"]),
        _ratio_row("50-notification batches", "notif/s", http["batch"], 0.60),
    ]
    for name in ("leaderboard", "username_data"):
        rows.append(_ratio_row(f"{name} ({users})", "req/s", http[name], 0.90))
    team = http["team_board"]
    rows.append(_ratio_row(f"team leaderboard ({sizes['users']:,} users in {team['teams']:,} "
                           "teams, 500 notif/s)", "req/s", team, 0.90))
    rows.append(_below("  read p99 at 300 reads/s + 500 notif/s", "ms",
                       reads["tys"]["p99_ms"], LATENCY_P99_MS, reads["reference"]["p99_ms"]))
    devices = f"{flush['logged']['devices']:,}"
    for phase, label in (("insert", "new rows"), ("update", "updates")):
        logged, unlogged = flush["logged"][phase], flush["unlogged"][phase]
        rows.append(_below(f"flush {devices} dirty devices ({label})", "s",
                           logged["seconds"], FLUSH_S))
        rows.append(_below("  longest loop stall during it", "ms",
                           logged["longest_stall_ms"], STALL_MS))
        rows.append(Row("  same flush, unlogged tables (ratio: unlogged / logged)", "s",
                        unlogged["seconds"], None,
                        round(unlogged["seconds"] / logged["seconds"], 3)
                        if logged["seconds"] else None))
    count = f"{memory['devices']:,}"
    rows += [
        _below(f"resident memory with {count} devices", "MiB", memory["rss_mib"], RSS_MIB),
        _below("  per device", "bytes", memory["bytes_per_device"], BYTES_PER_DEVICE),
        _below(f"start-up reload of {count} devices", "s", memory["reload_s"], RELOAD_S),
    ]
    board = results["leaderboard"]
    ratio = float(board["ratio"])
    rows += [
        # The reference here is the overall board's rate in the same process: a date
        # cycle that rebuilt boards would be thousands of times slower, not a bit.
        Row(f"day leaderboard, {board['dates']} dates cycled (ref: the overall board)",
            "req/s", board["day_per_s"], board["overall_per_s"], ratio,
            f">= {DAY_BOARD_RATIO:.2f} x ref", ratio >= DAY_BOARD_RATIO),
        _below(f"  one day-board build over {board['users']:,} users", "ms",
               board["build_ms"], STALL_MS),
    ]
    return rows + feed_rows(results["feeds"])


def feed_rows(feeds: dict[str, Any]) -> list[Row]:
    """The Firehose ingest (ref: a bare reader of the same stream) and the Meraki POSTs."""
    ingest, meraki = feeds["tys"], feeds["meraki"]
    ratio = float(feeds["ratio"])
    post = f"{feeds['meraki_observations']:,} observations x 5 fixes"
    rounds = len(feeds.get("rounds", [ingest]))
    median = f", median of {rounds} rounds" if rounds > 1 else ""
    return [
        Row(f"Firehose ingest, {feeds['events']:,} events (ref: bare split + orjson.loads)"
            f"{median}", "lines/s", ingest["per_s"], feeds["bare_per_s"], ratio,
            f">= {FIREHOSE_RATIO:.2f} x ref", ratio >= FIREHOSE_RATIO),
        _below("  API read p99 at 300 reads/s during the ingest" + (", worst round" if median
                                                                   else ""), "ms",
               feeds.get("read_p99_ms", ingest["reads"]["p99_ms"]), LATENCY_P99_MS),
        _below(f"Meraki POST of {post}, median", "ms", meraki["median_ms"], MERAKI_POST_MS),
        _below(f"  same, p99 of {meraki['posts']} POSTs", "ms", meraki["p99_ms"],
               MERAKI_POST_MS),
    ]


def other_load(results: dict[str, Any]) -> float:
    """Cores busy with other work while the reference ran (it has no database, no flush).

    The median over the reference's closed-loop rounds: well above zero means another
    process shared the machine and the figures are noisier than usual.
    """
    spare = []
    for key in ("single", "batch", "leaderboard", "username_data"):
        run = results["http"][key].get("reference", {})
        if run:
            spare.append(run["machine_cpu"] - run["server_cpu"] - run["client_cpu"])
    spare.sort()
    return round(spare[len(spare) // 2], 2) if spare else 0.0


def print_machine(machine: dict[str, Any]) -> None:
    """One line of what the figures were measured on."""
    print(f"machine: {machine['cores']} cores ({machine['cpu']}), {machine['memory_gib']} GiB, "
          f"{machine['os']}; Python {machine['python']}, Tornado {machine['tornado']}, "
          f"PostgreSQL {machine['postgresql']}")


def _figure(value: float | None) -> str:
    if value is None:
        return ""
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"


def print_table(rows: list[Row], *, verdicts: bool = True) -> None:
    """The one table: row, unit, TYS, reference, ratio, target, verdict."""
    header = ("row", "unit", "TYS", "reference", "TYS/ref", "target", "")
    lines = [header]
    for row in rows:
        verdict = "" if row.passed is None or not verdicts else (
            "pass" if row.passed else "FAIL")
        lines.append((row.name, row.unit, _figure(row.tys), _figure(row.reference),
                      "" if row.ratio is None else f"{row.ratio:.2f}", row.target, verdict))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for index, line in enumerate(lines):
        cells = [line[0].ljust(widths[0]), line[1].ljust(widths[1])]
        cells += [cell.rjust(width) for cell, width in zip(line[2:5], widths[2:5], strict=True)]
        cells += [line[5].ljust(widths[5]), line[6]]
        print("  ".join(cells).rstrip())
        if index == 0:
            print("  ".join("-" * w for w in widths))
