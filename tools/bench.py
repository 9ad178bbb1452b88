"""TYS against the framework's ceiling: ``python tools/bench.py [--quick] [--json FILE]``.

One run, one machine: the TYS server (``python -m tys_server``, on a database of its own)
and the reference Tornado app (tools/bench_reference.py: parse the same JSON, fixed
reply) are driven the same way by the cmx_sim load generator core, alternating; the
flush, memory, reload and day-leaderboard rows run the server's code in a process of
their own (tools/bench_inproc.py); the feed rows (Firehose ingest against a bare reader,
Meraki POSTs) are tools/bench_feeds.py's. Prints the machine, then one table: absolute
figures, the ratio TYS / reference where it applies, the target and pass/fail. See
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: python tools/bench.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import orjson  # noqa: E402

from tools import bench_env as env  # noqa: E402
from tools.bench_feeds import feed_rows  # noqa: E402
from tools.bench_http import (  # noqa: E402
    API_HEADERS,
    NOTIFY_HEADERS,
    BackgroundFlow,
    BodyPool,
    Driver,
    team_board_rounds,
)
from tools.bench_report import (  # noqa: E402
    Row,
    other_load,
    print_machine,
    print_table,
    rows_from,
)
from tools.cmx_sim.load import STEP_S, build_bodies  # noqa: E402

BATCH = 50
TEAMS = 500  # the team board row's teams (a twentieth of the users with --quick)
MAX_LAPS = 40  # replays of a pool with later timestamps (see BodyPool)


class Sizes:
    """How big and how long: the full run (about 5 min on 2 cores) or --quick (seconds)."""

    def __init__(self, quick: bool) -> None:
        self.quick = quick
        # Many short rounds rather than a few long ones: on a shared 2-core machine the
        # speed drifts within seconds, and the median of many pairs shrugs that off.
        self.rounds = 1 if quick else 12
        self.seconds = 0.5 if quick else 1.5
        self.warmup_s = 0.3 if quick else 1.0
        self.latency_s = 1.0 if quick else 10.0
        self.macs = 200 if quick else 5000
        self.users = 300 if quick else 10_000
        self.flush_devices = 2000 if quick else 100_000
        self.memory_devices = 20_000 if quick else 1_000_000
        # Base pools (replayed with later timestamps when a run needs more, see BodyPool).
        self.single_pool = 2_000 if quick else 20_000
        self.batch_pool = 200 if quick else 1_000
        self.background_pool = 1_000 if quick else 10_000
        # The modern feeds (tools/bench_feeds.py).
        self.firehose_lines = 20_000 if quick else 200_000
        self.firehose_rounds = 1 if quick else 3  # TYS ingests, each between bare readers
        self.feed_read_s = 1.5 if quick else 12.0  # reads at 300/s during the ingest
        self.meraki_observations = 200 if quick else 1_000
        self.meraki_posts = 3 if quick else 10


def build_pools(sizes: Sizes) -> dict[str, BodyPool]:
    """Singles, 50-batches and background bodies on consecutive time windows ending now.

    Every MAC's notifications go forward in time across the pools and their replays, in
    the order the bench uses them, so TYS does its full work on each (a repeat would be
    stale, and cheaper). Each pool's window leaves room for MAX_LAPS replays.
    """
    plan = [("single", 1, sizes.single_pool), ("batch", BATCH, sizes.batch_pool),
            ("background", 1, sizes.background_pool)]
    end_s = time.time()
    pools = {}
    for name, batch, pool in reversed(plan):
        span_s = (-(-pool * batch // sizes.macs) + 1) * STEP_S
        first_lap_end_s = end_s - (MAX_LAPS - 1) * span_s
        pools[name] = BodyPool(build_bodies(sizes.macs, batch, pool, now_s=first_lap_end_s),
                               round(span_s * 1000))
        end_s -= MAX_LAPS * span_s
    return pools


def read_bodies(sizes: Sizes) -> dict[str, list[bytes]]:
    """leaderboard (top 10) and username_data (5 days) of random registered users."""
    rng = random.Random(5)
    names = [env.username(rng.randrange(sizes.users)) for _ in range(2000)]
    return {"leaderboard": [orjson.dumps({"number_leaders": 10})],
            "username_data": [orjson.dumps({"username": n, "days": 5}) for n in names]}


def capture_replies(tys: env.Process, reads: dict[str, list[bytes]], path: Path) -> None:
    """TYS's answer to one read of each kind: the reference answers exactly those bytes."""
    import urllib.request

    replies = {}
    for name, bodies in reads.items():
        request = urllib.request.Request(tys.base_url + f"/live/{name}", data=bodies[0],
                                         headers={**API_HEADERS,
                                                  "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as reply:
            replies[name] = reply.read().decode()
    path.write_text(json.dumps(replies))


async def http_rows(sizes: Sizes, tys: env.Process, reference: env.Process, bare: env.Process,
                    reads: dict[str, list[bytes]], pools: dict[str, BodyPool],
                    say: Any) -> dict[str, Any]:
    """Every row measured over HTTP, in the order the pools were planned for."""
    driver = Driver(tys, reference, rounds=sizes.rounds, seconds=sizes.seconds,
                    warmup_s=sizes.warmup_s)
    single, batch = pools["single"], pools["batch"]
    out: dict[str, Any] = {}

    def from_pool(pool: BodyPool, per_s: float) -> Any:
        return (lambda _process, seconds: pool.ahead(int(per_s * seconds) + 64),
                lambda process, result: pool.use(result) if process is tys else None)

    say("single-notification POSTs, closed loop")
    bodies_for, used = from_pool(single, 8000)
    out["single"] = await driver.closed_rounds("/notification", NOTIFY_HEADERS, bodies_for, used,
                                               extra=(bare,))
    say("latency at 1,000 notifications/s")
    out["latency"] = {}
    for process in (tys, reference):
        bodies = single.ahead(int(1000 * sizes.latency_s) + 64)
        run = await driver.open_rate(process, "/notification", NOTIFY_HEADERS, bodies,
                                     1000, sizes.latency_s)
        if process is tys:
            single.use(run.result)
        out["latency"][process.name] = run.digest()
    say("50-notification batches, closed loop")
    bodies_for, used = from_pool(batch, 2500)
    out["batch"] = await driver.closed_rounds("/notification", NOTIFY_HEADERS, bodies_for,
                                              used, per_request=BATCH)
    background = pools["background"]
    background_pools = {tys.name: background,
                        reference.name: BodyPool(background.bodies, background.span_ms)}
    flow = BackgroundFlow(background_pools, 500)
    for name, bodies in reads.items():
        say(f"{name} with {sizes.users} users while 500 notifications/s flow")
        out[name] = await driver.closed_rounds(
            f"/live/{name}", API_HEADERS, lambda _p, _s, b=bodies: b, lambda _p, _r: None,
            background=flow)
    say("read latency at 300 reads/s while 500 notifications/s flow")
    out["read_latency"] = {}
    for process in (tys, reference):

        async def mixed(process: env.Process = process) -> Any:
            runs = await asyncio.gather(*(driver.open_rate(
                process, f"/live/{name}", API_HEADERS, bodies, 150, sizes.latency_s)
                for name, bodies in reads.items()))
            merged = runs[0].result
            for other in runs[1:]:
                merged.latencies_s.extend(other.result.latencies_s)
                merged.requests += other.result.requests
                merged.ok += other.result.ok
                merged.connection_errors += other.result.connection_errors
            return merged

        run = await flow.around(process, sizes.latency_s, mixed)
        out["read_latency"][process.name] = run.digest()
    out["background_per_s"] = [round(r, 1) for r in flow.achieved]
    out["pool_laps"] = {name: pool.laps for name, pool in pools.items()}
    return out


def team_count(sizes: Sizes) -> int:
    """How many teams the seeded users are in."""
    return max(1, sizes.users // 20) if sizes.quick else TEAMS


async def team_board_row(sizes: Sizes, tys: env.Process, pools: dict[str, BodyPool],
                         workdir: Path, say: Any) -> dict[str, Any]:
    """The top 10 teams (DESIGN 15) against a reference answering TYS's own team board."""
    say(f"team leaderboard with {sizes.users} users in {team_count(sizes)} teams "
        "while 500 notifications/s flow")
    body = orjson.dumps({"number_leaders": 10, "by": "team"})
    folder = workdir / "team_board"
    folder.mkdir()
    capture_replies(tys, {"leaderboard": [body]}, folder / "replies.json")
    reference = env.start_reference(folder / "replies.json", folder)
    try:
        row = await team_board_rounds(tys, reference, pools["background"], body,
                                      rounds=sizes.rounds, seconds=sizes.seconds,
                                      warmup_s=sizes.warmup_s)
    finally:
        reference.stop()
    return {**row, "teams": team_count(sizes)}


def inproc(row: str, *args: str) -> dict[str, Any]:
    """One in-process row in a fresh interpreter; its JSON line."""
    done = subprocess.run([sys.executable, "-m", "tools.bench_inproc", row, *args],
                          cwd=env.ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"bench_inproc {row} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(sizes: Sizes, admin_dsn: str | None, say: Any) -> dict[str, Any]:
    """The whole bench; the JSON document it reports."""
    started = time.perf_counter()
    with env.postgres(admin_dsn) as pg, tempfile.TemporaryDirectory(prefix="tys-bench-") as tmp:
        workdir = Path(tmp)
        machine = env.machine(pg.version())
        say(f"seeding {sizes.users} registered users; building notification bodies")
        http_dsn = pg.create_database("http")
        env.apply_schema(http_dsn)
        env.seed_users(http_dsn, sizes.users)
        env.seed_teams(http_dsn, team_count(sizes))
        pools = build_pools(sizes)
        reads = read_bodies(sizes)
        tys = env.start_tys(http_dsn, workdir)
        references: list[env.Process] = []
        try:
            capture_replies(tys, reads, workdir / "replies.json")
            references.append(env.start_reference(workdir / "replies.json", workdir))
            references.append(env.start_reference(workdir / "replies.json", workdir, bare=True))
            http = asyncio.run(http_rows(sizes, tys, *references, reads, pools, say))
            http["team_board"] = asyncio.run(team_board_row(sizes, tys, pools, workdir, say))
        finally:
            tys.stop()
            for process in references:
                process.stop()
        del pools
        say(f"flush of {sizes.flush_devices} dirty devices (logged, then unlogged tables)")
        done_dsns = {phase: pg.create_database(name)
                     for phase, name in (("logged", "flush"), ("unlogged", "flushu"),
                                         ("memory", "memory"))}
        flush = {phase: inproc("flush", "--dsn", done_dsns[phase],
                               "--devices", str(sizes.flush_devices), *extra)
                 for phase, extra in (("logged", ()), ("unlogged", ("--unlogged",)))}
        say(f"memory and reload with {sizes.memory_devices} devices")
        memory = inproc("memory", "--dsn", done_dsns["memory"],
                        "--devices", str(sizes.memory_devices))
        # The rows above wrote millions of rows: their databases go, and the feed rows
        # wait for PostgreSQL's vacuum and checkpoint of them (else they run beside it).
        for dsn in done_dsns.values():
            pg.drop(dsn)
        say("waiting for PostgreSQL to come to rest")
        quiesced = pg.quiesce()
        feeds = feed_rows(sizes, pg, workdir, reads, say)
        feeds["quiesced_before"] = quiesced
    say(f"day leaderboards: 60 dates cycled, {sizes.users} users")
    leaderboard = inproc("leaderboard", "--users", str(sizes.users))
    results = {"machine": machine, "quick": sizes.quick, "http": http, "flush": flush,
               "memory": memory, "leaderboard": leaderboard, "feeds": feeds,
               "sizes": {k: v for k, v in vars(sizes).items()},
               "elapsed_s": round(time.perf_counter() - started, 1)}
    results["rows"] = [row.as_dict() for row in rows_from(results)]
    results["other_load_cores"] = other_load(results)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """Run, print the machine and the table; 0 when every target is met."""
    parser = argparse.ArgumentParser(prog="python tools/bench.py", description=__doc__)
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes, seconds: checks that every row runs (no verdict)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write results here")
    parser.add_argument("--dsn", help="a PostgreSQL where the bench may create and drop "
                                      "databases of its own (default: embedded, temp dir)")
    args = parser.parse_args(argv)

    def say(text: str) -> None:
        print(f"[bench] {text}", file=sys.stderr, flush=True)

    results = run(Sizes(args.quick), args.dsn, say)
    rows = [Row(**row) for row in results["rows"]]
    print_machine(results["machine"])
    print_table(rows, verdicts=not args.quick)
    if results["other_load_cores"] > 0.25:
        print(f"note: other processes kept about {results['other_load_cores']} cores busy "
              "during the run; the figures are noisier than usual")
    if max(results["http"]["pool_laps"].values()) > MAX_LAPS:
        print(f"note: a notification pool was replayed more than {MAX_LAPS} times; its "
              f"last laps ran into the next pool's times: {results['http']['pool_laps']}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    if args.quick:
        return 0  # sizes too small for a verdict: the smoke run only checks every row runs
    return 0 if all(row.passed is not False for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
