"""tools/bench.py --quick runs end to end and reports every row (no timed assertions)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
    "username_data (",
    "  read p99 at 300 reads/s",
    "flush 2,000 dirty devices (new rows)",
    "flush 2,000 dirty devices (updates)",
    "  longest loop stall during it",
    "  same flush, unlogged tables",
    "resident memory with 20,000 devices",
    "  per device",
    "start-up reload of 20,000 devices",
)


@pytest.mark.db
@pytest.mark.slow
def test_quick_bench_produces_every_row(postgres: TestDatabase, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "tools/bench.py", "--quick", "--json", str(out),
         "--dsn", postgres.admin_dsn],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert done.stdout.startswith("machine: ")
    results = json.loads(out.read_text())
    names = [row["name"] for row in results["rows"]]
    for expected in ROWS:
        assert any(name.startswith(expected) for name in names), (expected, names)
    for row in results["rows"]:
        assert row["tys"] >= 0 and row["name"] in done.stdout
        if row["target"]:
            assert row["passed"] in (True, False)
    for key in ("cores", "python", "postgresql"):
        assert results["machine"][key]
    assert results["http"]["single"]["tys"]["requests"] > 0
    assert results["http"]["batch"]["tys"]["errors"] == 0
    assert results["flush"]["logged"]["insert"]["ok"]
    assert results["flush"]["unlogged"]["update"]["ok"]
