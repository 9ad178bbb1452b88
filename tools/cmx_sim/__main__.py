"""CLI: ``python -m tools.cmx_sim {fake-cmx,fake-firehose,walk,accuracy,load} [options]``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tools.cmx_sim import fake_cmx, fake_firehose, load
from tools.cmx_sim.cadence import for_feed
from tools.cmx_sim.cli_args import (
    Formatter,
    device_options,
    env,
    non_negative,
    positive_int,
    save_json,
    secret,
    share,
)
from tools.cmx_sim.devices import load_devices, make_devices
from tools.cmx_sim.venue import VenueConfig
from tools.cmx_sim.walk_cli import add_accuracy, add_walk, run_accuracy_command, run_walk_command


def _add_fake_cmx(sub: Any, devices: argparse.ArgumentParser) -> None:
    p = sub.add_parser("fake-cmx", parents=[devices], formatter_class=Formatter,
                       help="serve the CMX location API for the simulated devices",
                       description="Serve GET /api/location/v2/clients?ipAddress= (records "
                       "with macAddress, 204 when unknown) and /api/location/v3/clients"
                       "?ipAddress= (notifications with deviceId, [] when unknown). Point the "
                       "server at it: cmx.hosts [HOST:PORT], cmx.ip2mac_url "
                       "http://{host}/api/location/v2/clients?ipAddress={ip}.")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=int, default=8181, help="port to listen on")
    p.add_argument("--username", default=env("TYS_CMX_USERNAME", ""),
                   help="Basic-auth user required of callers (empty: no auth)")
    p.add_argument("--password", help="its password (default: $TYS_CMX_PASSWORD)")
    p.add_argument("--latency-ms", type=non_negative, default=0.0, help="delay every answer")
    p.add_argument("--fail-rate", type=share, default=0.0, help="share answered HTTP 500")
    p.add_argument("--garbage-rate", type=share, default=0.0,
                   help="share answered 200 with a body that is not JSON")
    p.add_argument("--devices-file", help="IP/MAC map written by walk --devices-file "
                   "(instead of generating the devices from --seed etc.)")


def _add_fake_firehose(sub: Any, devices: argparse.ArgumentParser) -> None:
    p = sub.add_parser("fake-firehose", parents=[devices], formatter_class=Formatter,
                       help="serve a Cisco Spaces Firehose stream of the simulated devices",
                       description=fake_firehose.__doc__)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=int, default=8282, help="port to listen on")
    p.add_argument("--api-key", help="X-API-KEY required of callers "
                   "(default: $TYS_FEEDS_SPACES_FIREHOSE_API_KEY, else fake-firehose-key)")
    p.add_argument("--keepalive-s", type=non_negative, default=15.0)
    p.add_argument("--interval-s", type=float, default=None,
                   help="report each device's location exactly this often (default: "
                        "Spaces' cadence, every 2-6 s with some repeats)")
    g = p.add_argument_group("quirks of real output")
    g.add_argument("--split-lines", action="store_true", help="each line in three chunks")
    g.add_argument("--bad-line-every", type=int, default=0, metavar="N",
                   help="a truncated line after every N-th event")
    g.add_argument("--repeat-every", type=int, default=0, metavar="N",
                   help="every N-th event sent twice")
    g.add_argument("--reorder-window", type=int, default=0, metavar="N",
                   help="events go out in groups of N, newest first")
    g.add_argument("--fail-connect", action="append", default=[], metavar="N:STATUS",
                   help="answer the N-th connection with STATUS (401, 429, 500, ...)")
    g.add_argument("--retry-after", help="Retry-After header of a 429")
    g.add_argument("--stall-connect", action="append", type=int, default=[], metavar="N",
                   help="the N-th connection goes silent without closing")
    g.add_argument("--ipv4", choices=("plain", "empty", "not_applicable"), default="plain")
    g.add_argument("--unpadded-macs", action="store_true", help='"00:52:bf:74:b:00"')
    g = p.add_argument_group("benchmark stream")
    g.add_argument("--prebuilt", metavar="FILE", help="send this NDJSON file whole to each "
                   "connection (then KEEP_ALIVEs), instead of the simulated venue")
    g.add_argument("--hold", action="store_true",
                   help="with --prebuilt: each stream waits for POST /fake/release")


def _add_load(sub: Any) -> None:
    p = sub.add_parser("load", formatter_class=Formatter,
                       help="send movement notifications at a rate, report latency",
                       description=load.__doc__)
    p.add_argument("--server", default="http://127.0.0.1:8080", help="TYS server base URL")
    p.add_argument("--user", default=env("TYS_AUTH_NOTIFICATION_USERNAME", "cmx"))
    p.add_argument("--password", help="default: $TYS_AUTH_NOTIFICATION_PASSWORD, "
                   "else change-me-cmx")
    p.add_argument("--rate", type=non_negative, default=0.0,
                   help="POSTs per second, open loop (0: as fast as possible, closed loop)")
    p.add_argument("--connections", type=positive_int, default=16, help="keep-alive connections")
    p.add_argument("--batch", type=positive_int, default=10, help="notifications per POST")
    p.add_argument("--macs", type=positive_int, default=1000, help="distinct MACs")
    stop = p.add_mutually_exclusive_group()
    stop.add_argument("--duration", type=float, default=None, help="seconds (default 10)")
    stop.add_argument("--requests", type=positive_int, default=None, help="number of POSTs")
    p.add_argument("--pool", type=positive_int, default=None,
                   help="distinct pre-encoded bodies (default: --requests, capped at ~64 MB)")
    p.add_argument("--json", metavar="FILE", help="save the summary as JSON")


def build_parser() -> argparse.ArgumentParser:
    """The argparse tree of all subcommands."""
    parser = argparse.ArgumentParser(prog="python -m tools.cmx_sim", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    devices = device_options()
    _add_fake_cmx(sub, devices)
    _add_fake_firehose(sub, devices)
    add_walk(sub, devices)
    add_accuracy(sub, devices)
    _add_load(sub)
    return parser


def _run_fake_cmx(args: argparse.Namespace) -> int:
    if args.devices_file:
        devices = load_devices(args.devices_file)
    else:
        devices = make_devices(args.attendees, args.stationary, args.floors, args.seed,
                               args.mac_mode)
    password = secret(args.password, "TYS_CMX_PASSWORD", "")
    fake = fake_cmx.FakeCmx.serving(devices, username=args.username, password=password,
                                    delay_s=args.latency_ms / 1000, fail_rate=args.fail_rate,
                                    garbage_rate=args.garbage_rate, seed=args.seed)
    print(f"fake CMX on http://{args.host}:{args.port} with {len(devices)} devices",
          file=sys.stderr, flush=True)
    asyncio.run(fake_cmx.serve_forever(args.host, args.port, fake))
    return 0


def _run_fake_firehose(args: argparse.Namespace) -> int:
    devices = make_devices(args.attendees, args.stationary, args.floors, args.seed,
                           args.mac_mode)
    fails = {}
    for item in args.fail_connect:
        number, _, status = item.partition(":")
        fails[int(number)] = int(status)
    prebuilt = Path(args.prebuilt).read_bytes() if args.prebuilt else b""
    fake = fake_firehose.FakeFirehose(
        secret(args.api_key, "TYS_FEEDS_SPACES_FIREHOSE_API_KEY", fake_firehose.API_KEY),
        args.keepalive_s, args.split_lines, args.bad_line_every, args.repeat_every,
        args.reorder_window, fail_connects=fails, retry_after=args.retry_after,
        stall_connects=frozenset(args.stall_connect), prebuilt=prebuilt, hold=args.hold)
    if prebuilt:
        devices = []  # the stream is the file's
    quirks = fake_firehose.Quirks(args.ipv4, args.unpadded_macs)
    venue = for_feed(VenueConfig(floors=args.floors), "firehose")
    if args.interval_s is not None:
        venue = VenueConfig(floors=args.floors, compute_interval_s=args.interval_s)
    print(f"fake Firehose on http://{args.host}:{args.port}{fake_firehose.PATH} with "
          f"{len(devices)} devices", file=sys.stderr, flush=True)
    asyncio.run(fake_firehose.serve_forever(args.host, args.port, fake, devices, venue,
                                            args.seed, quirks))
    return 0


def _run_load(args: argparse.Namespace) -> int:
    duration = args.duration if args.duration is not None or args.requests else 10.0
    auth = (args.user, secret(args.password, "TYS_AUTH_NOTIFICATION_PASSWORD", "change-me-cmx"))
    summary = asyncio.run(load.run(args.server, auth, rate=args.rate,
                                   connections=args.connections, batch=args.batch,
                                   macs=args.macs, duration_s=duration,
                                   requests=args.requests, pool=args.pool))
    print(load.format_summary(summary))
    save_json(args.json, summary)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments and run one subcommand; the exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    runners = {"fake-cmx": _run_fake_cmx, "fake-firehose": _run_fake_firehose,
               "walk": run_walk_command, "accuracy": run_accuracy_command,
               "load": _run_load}
    try:
        return runners[args.command](args)
    except KeyboardInterrupt:
        return 130
    except ValueError as exc:
        print(f"{args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
