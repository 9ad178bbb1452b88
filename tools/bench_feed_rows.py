"""Only the feed rows of tools/bench.py: ``python tools/bench_feed_rows.py [--quick] [--runs N]``.

The same functions as the full bench (tools/bench_feeds.py, its sizes and reads), for
work on the feeds without running every other row. Each run prints its rows and how busy
the machine was with other processes during the ingest (cores, from /proc/stat less
TYS's and this process's CPU); ``--json FILE`` saves every run.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: python tools/bench_feed_rows.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tools import bench_env as env  # noqa: E402
from tools.bench import Sizes, read_bodies  # noqa: E402
from tools.bench_feeds import feed_rows  # noqa: E402
from tools.bench_report import feed_rows as table_rows  # noqa: E402
from tools.bench_report import print_table  # noqa: E402


def other_cores(feeds: dict[str, Any]) -> float:
    """Cores other processes kept busy during the ingest's reads."""
    reads = feeds["tys"]["reads"]
    return round(reads["machine_cpu"] - reads["server_cpu"] - reads["client_cpu"], 2)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the feed rows `--runs` times; print each run's table."""
    parser = argparse.ArgumentParser(prog="python tools/bench_feed_rows.py",
                                     description=__doc__)
    parser.add_argument("--quick", action="store_true", help="the quick bench's sizes")
    parser.add_argument("--lines", type=int, help="Firehose lines (default: the sizes')")
    parser.add_argument("--rounds", type=int, help="TYS ingests a run (default: the sizes')")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write results here")
    parser.add_argument("--dsn", help="a PostgreSQL where the bench may create databases")
    args = parser.parse_args(argv)
    sizes = Sizes(args.quick)
    if args.lines:
        sizes.firehose_lines = args.lines
    if args.rounds:
        sizes.firehose_rounds = args.rounds

    def say(text: str) -> None:
        print(f"[bench] {text}", file=sys.stderr, flush=True)

    results = []
    with env.postgres(args.dsn) as pg, tempfile.TemporaryDirectory(prefix="tys-bench-") as tmp:
        for run in range(args.runs):
            workdir = Path(tmp) / f"run{run}"
            workdir.mkdir()
            feeds = feed_rows(sizes, pg, workdir, read_bodies(sizes), say)
            feeds["other_load_cores"] = other_cores(feeds)
            results.append(feeds)
            print_table(table_rows(feeds), verdicts=not args.quick)
            reads = feeds["tys"]["reads"]
            print(f"run {run + 1}: TYS / bare reader by round {feeds['ratios']}; "
                  f"bare reader {[b['per_s'] for b in feeds['bare']]} lines/s, "
                  f"{[b['cpu_us_per_line'] for b in feeds['bare']]} us CPU/line; TYS "
                  f"{feeds['tys']['cpu_us_per_line']} us CPU/line (reads included); "
                  f"read p99 {reads['p99_ms']} ms during the ingest ({reads['during_ingest']} "
                  f"reads), {reads['p99_outside_ms']} ms outside it; other processes kept "
                  f"{feeds['other_load_cores']} cores busy", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
