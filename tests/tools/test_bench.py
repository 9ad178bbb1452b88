"""tools/bench.py --quick runs end to end and reports every row (no timed assertions).

Marked `bench`: deselected from `make test`, run by `make bench-quick` (CI runs both).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TestDatabase

ROOT = Path(__file__).resolve().parents[2]
ROWS = (
    "single-notification POSTs",
    "  reference without TYS's server timeouts",
    "  latency p50 at 1,000 notif/s",
    "  latency p99 at 1,000 notif/s",
    "50-notification batches",
    "leaderboard (",
    "team leaderboard (",
    "username_data (",
    "  read p99 at 300 reads/s",
    "flush 2,000 dirty devices (new rows)",
    "flush 2,000 dirty devices (updates)",
    "  longest loop stall during it",
    "  same flush, unlogged tables",
    "resident memory with 20,000 devices",
    "  per device",
    "start-up reload of 20,000 devices",
    "day leaderboard, 60 dates cycled",
    "  one day-board build over 300 users",
    "Firehose ingest, 20,000 events",
    "  API read p99 at 300 reads/s during the ingest",
    "Meraki POST of 200 observations x 5 fixes, median",
    "  same, p99 of 3 POSTs",
)


def row_kind(name: str) -> str:
    """The ROWS entry a reported row stands for (the one its name starts with)."""
    (kind,) = [expected for expected in ROWS if name.startswith(expected)]
    return kind


def check_verdict(row: dict[str, Any]) -> None:
    """The verdict is the row's own figures against its printed target."""
    target = row["target"]
    if not target:
        assert row["passed"] is None, row
        return
    comparison, bound, *_ = target.split()
    if comparison == ">=":  # ">= 0.90 x ref": TYS / reference, the median of round pairs
        assert math.isfinite(row["reference"]) and row["reference"] > 0, row
        assert math.isfinite(row["ratio"]) and row["ratio"] > 0, row
        assert row["passed"] is (row["ratio"] >= float(bound)), row
    else:  # "< 25 ms": TYS's own figure under a limit
        assert comparison == "<", row
        assert row["passed"] is (row["tys"] < float(bound)), row


@pytest.mark.bench
@pytest.mark.db
@pytest.mark.slow
def test_quick_bench_reports_every_row_with_a_verdict_from_its_figures(
        postgres: TestDatabase, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "tools/bench.py", "--quick", "--json", str(out),
         "--dsn", postgres.admin_dsn],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert done.stdout.startswith("machine: ")
    results = json.loads(out.read_text())
    rows = results["rows"]
    # Every kind of row, the flush ones once for new rows and once for updates.
    kinds = Counter(row_kind(row["name"]) for row in rows)
    assert set(kinds) == set(ROWS)
    assert kinds["  longest loop stall during it"] == kinds["  same flush, unlogged tables"] == 2
    assert len(rows) == len(ROWS) + 2
    for row in rows:
        assert row["name"] in done.stdout
        assert isinstance(row["tys"], float | int) and math.isfinite(row["tys"]), row
        assert row["tys"] > 0, row
        check_verdict(row)
    for key in ("cores", "python", "postgresql"):
        assert results["machine"][key]
    assert results["http"]["single"]["tys"]["requests"] > 0
    assert results["http"]["batch"]["tys"]["errors"] == 0
    assert results["flush"]["logged"]["insert"]["ok"]
    assert results["flush"]["unlogged"]["update"]["ok"]
    # The feed rows count only if TYS took the events (its own metrics say so).
    feeds = results["feeds"]
    assert feeds["tys"]["accepted"] == 20_000  # every location line; the rest: KEEP_ALIVEs
    assert feeds["meraki"]["accepted_fixes"] == 4 * 200 * 5  # a warm-up POST and 3 measured
    assert [run["lines"] for run in feeds["bare"]] == [20_002, 20_002]
