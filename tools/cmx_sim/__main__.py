"""CLI: ``python -m tools.cmx_sim {fake-cmx,walk,load} [options]`` (see --help of each)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tools.cmx_sim import fake_cmx, fake_firehose, load, report, walk
from tools.cmx_sim.cadence import FEEDS
from tools.cmx_sim.devices import MAC_MODES, load_devices, make_devices
from tools.cmx_sim.venue import NOISE_MODELS, VenueConfig

_Formatter = argparse.ArgumentDefaultsHelpFormatter


def _env(name: str, default: str) -> str:
    """Defaults follow the server's TYS_* overrides, so one environment serves both."""
    return os.environ.get(name, default)


def _secret(value: str | None, env_name: str, fallback: str) -> str:
    """A password or key: the option, else the server's environment variable, else fallback.

    Never an argparse default, so ``--help`` cannot print a secret from the environment.
    """
    return value if value is not None else os.environ.get(env_name, fallback)


def _share(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def _non_negative(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def _host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    try:
        return host or "127.0.0.1", int(port)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected [HOST:]PORT, got {text!r}") from None


def _device_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("simulated devices (same values = same IPs and MACs)")
    group.add_argument("--attendees", type=int, default=200, help="walking attendees")
    group.add_argument("--stationary", type=int, default=100,
                       help="devices that never move (laptops, displays, a phone on a desk)")
    group.add_argument("--floors", type=_positive_int, default=3, help="venue floors")
    group.add_argument("--seed", type=int, default=1, help="random seed of the whole scenario")
    group.add_argument("--mac-mode", choices=MAC_MODES, default="test",
                       help="test: MAC 02:00:<IP octets>, as the server's CMX test mode "
                            "answers; random: random MACs, served by fake-cmx")
    return parent


def _add_fake_cmx(sub: Any, devices: argparse.ArgumentParser) -> None:
    p = sub.add_parser("fake-cmx", parents=[devices], formatter_class=_Formatter,
                       help="serve the CMX location API for the simulated devices",
                       description="Serve GET /api/location/v2/clients?ipAddress= (records "
                       "with macAddress, 204 when unknown) and /api/location/v3/clients"
                       "?ipAddress= (notifications with deviceId, [] when unknown). Point the "
                       "server at it: cmx.hosts [HOST:PORT], cmx.ip2mac_url "
                       "http://{host}/api/location/v2/clients?ipAddress={ip}.")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=int, default=8181, help="port to listen on")
    p.add_argument("--username", default=_env("TYS_CMX_USERNAME", ""),
                   help="Basic-auth user required of callers (empty: no auth)")
    p.add_argument("--password", help="its password (default: $TYS_CMX_PASSWORD)")
    p.add_argument("--latency-ms", type=_non_negative, default=0.0, help="delay every answer")
    p.add_argument("--fail-rate", type=_share, default=0.0, help="share answered HTTP 500")
    p.add_argument("--garbage-rate", type=_share, default=0.0,
                   help="share answered 200 with a body that is not JSON")
    p.add_argument("--devices-file", help="IP/MAC map written by walk --devices-file "
                   "(instead of generating the devices from --seed etc.)")


def _add_fake_firehose(sub: Any, devices: argparse.ArgumentParser) -> None:
    p = sub.add_parser("fake-firehose", parents=[devices], formatter_class=_Formatter,
                       help="serve a Cisco Spaces Firehose stream of the simulated devices",
                       description=fake_firehose.__doc__)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=int, default=8282, help="port to listen on")
    p.add_argument("--api-key", help="X-API-KEY required of callers "
                   "(default: $TYS_FEEDS_SPACES_FIREHOSE_API_KEY, else fake-firehose-key)")
    p.add_argument("--keepalive-s", type=_non_negative, default=15.0)
    p.add_argument("--interval-s", type=float, default=15.0,
                   help="Spaces reports each device's location this often")
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


def _add_walk(sub: Any, devices: argparse.ArgumentParser) -> None:
    d = VenueConfig()
    p = sub.add_parser("walk", parents=[devices], formatter_class=_Formatter,
                       help="simulate a venue against a server and report accuracy",
                       description=walk.__doc__)
    p.add_argument("--server", default="http://127.0.0.1:8080", help="TYS server base URL")
    p.add_argument("--feed", choices=FEEDS, default="cmx",
                   help="cmx: POST /notification; firehose: serve a fake Cisco Spaces "
                        "Firehose the server reads; meraki: POST Scanning API v3 to /meraki")
    p.add_argument("--notify-user", default=_env("TYS_AUTH_NOTIFICATION_USERNAME", "cmx"))
    p.add_argument("--notify-password", help="default: $TYS_AUTH_NOTIFICATION_PASSWORD, "
                   "else change-me-cmx (the server's default)")
    p.add_argument("--api-user", default=_env("TYS_AUTH_API_USERNAME", "frontend"))
    p.add_argument("--api-password", help="default: $TYS_AUTH_API_PASSWORD, "
                   "else change-me-api (the server's default)")
    g = p.add_argument_group("venue and movement")
    g.add_argument("--width-ft", type=float, default=d.width_ft)
    g.add_argument("--depth-ft", type=float, default=d.depth_ft)
    g.add_argument("--speed-mps", type=float, nargs=2, default=d.speed_mps, metavar=("MIN", "MAX"))
    g.add_argument("--pause-s", type=float, nargs=2, default=d.pause_s, metavar=("MIN", "MAX"),
                   help="pause at each waypoint")
    g.add_argument("--floor-change-prob", type=_share, default=d.floor_change_prob,
                   help="chance of changing floor at a waypoint")
    g = p.add_argument_group("location engine (CMX, Spaces or Meraki)")
    g.add_argument("--noise", choices=NOISE_MODELS, default=d.noise_model,
                   help="independent: a fresh error per estimate; correlated: an error that "
                        "drifts (Ornstein-Uhlenbeck per axis)")
    g.add_argument("--noise-ft", type=_non_negative, default=d.noise_ft,
                   help="standard deviation per axis of the location error")
    g.add_argument("--noise-corr-s", type=float, default=d.noise_corr_s,
                   help="correlation time of --noise correlated")
    g.add_argument("--outlier-rate", type=_share, default=d.outlier_rate,
                   help="share of estimates that jump away")
    g.add_argument("--outlier-ft", type=_non_negative, default=d.outlier_ft,
                   help="a jump lands between half this and this far away")
    g.add_argument("--compute-interval-s", type=float, default=d.compute_interval_s,
                   help="CMX re-computes each device's location this often (Spaces: 2-6 s, "
                        "Meraki: 5-15 s)")
    g.add_argument("--movement-distance-ft", type=float,
                   default=float(_env("TYS_CMX_MOVEMENT_DISTANCE_FT", "50")),
                   help="notify when the estimate moved this far (cmx.movement_distance_ft)")
    g.add_argument("--hash-key", help="send MACs hashed with this salt, as CMX does "
                   "(cmx.mac_hash_key; default: $TYS_CMX_MAC_HASH_KEY, else no hashing)")
    g.add_argument("--batch-size", type=_positive_int, default=50,
                   help="at most this many notifications per POST")
    g.add_argument("--batch-interval-s", type=float, default=1.0,
                   help="simulated seconds between POSTs")
    g = p.add_argument_group("run")
    g.add_argument("--duration-min", type=float, default=30.0, help="simulated minutes")
    g.add_argument("--speedup", type=_non_negative, default=30.0,
                   help="simulated seconds per real second (0: as fast as possible)")
    g.add_argument("--as-fast-as-possible", action="store_const", const=0.0, dest="speedup",
                   help="same as --speedup 0")
    g.add_argument("--register-share", type=_share, default=1.0,
                   help="share of devices registered through /live/register_username "
                        "(only these are evaluated)")
    g.add_argument("--user-prefix", default="sim", help="usernames are PREFIX-<mac hex>")
    g.add_argument("--serve-cmx", type=_host_port, metavar="[HOST:]PORT",
                   help="run a fake CMX in this process for the server's IP->MAC look-ups")
    g.add_argument("--cmx-username", default=_env("TYS_CMX_USERNAME", ""),
                   help="Basic auth the in-process fake CMX requires (empty: none)")
    g.add_argument("--cmx-password", help="default: $TYS_CMX_PASSWORD")
    g.add_argument("--devices-file", help="also write the IP/MAC map here (for fake-cmx)")
    g = p.add_argument_group("Firehose and Meraki feeds")
    g.add_argument("--serve-firehose", type=_host_port, default=("127.0.0.1", 8282),
                   metavar="[HOST:]PORT", help="--feed firehose: serve the fake Firehose here "
                   "(the server's feeds.spaces_firehose.url is http://HOST:PORT"
                   f"{fake_firehose.PATH})")
    g.add_argument("--firehose-api-key", help="the X-API-KEY it requires (default: "
                   "$TYS_FEEDS_SPACES_FIREHOSE_API_KEY, else fake-firehose-key)")
    g.add_argument("--meraki-url", help="--feed meraki: where to POST (default: "
                   "SERVER + $TYS_FEEDS_MERAKI_PATH, else SERVER/meraki)")
    g.add_argument("--meraki-secret", help="the secret in each POST (default: "
                   "$TYS_FEEDS_MERAKI_SECRET)")
    g.add_argument("--progress-s", type=_non_negative, default=5.0,
                   help="real seconds between progress lines (0: none)")
    g.add_argument("--leaderboard", type=int, default=0, metavar="N",
                   help="print the server's top-N leaderboard at the end")
    g.add_argument("--table-rows", type=int, default=10,
                   help="walkers listed in the report, largest errors first (0: every device)")
    g.add_argument("--json", metavar="FILE", help="save the report (every device) as JSON")
    g.add_argument("--fail-on-target-miss", action="store_true",
                   help="exit 1 when an accuracy target is missed")
    g.add_argument("--timeout-s", type=float, default=10.0, help="per HTTP request")


def _add_load(sub: Any) -> None:
    p = sub.add_parser("load", formatter_class=_Formatter,
                       help="send movement notifications at a rate, report latency",
                       description=load.__doc__)
    p.add_argument("--server", default="http://127.0.0.1:8080", help="TYS server base URL")
    p.add_argument("--user", default=_env("TYS_AUTH_NOTIFICATION_USERNAME", "cmx"))
    p.add_argument("--password", help="default: $TYS_AUTH_NOTIFICATION_PASSWORD, "
                   "else change-me-cmx")
    p.add_argument("--rate", type=_non_negative, default=0.0,
                   help="POSTs per second, open loop (0: as fast as possible, closed loop)")
    p.add_argument("--connections", type=_positive_int, default=16, help="keep-alive connections")
    p.add_argument("--batch", type=_positive_int, default=10, help="notifications per POST")
    p.add_argument("--macs", type=_positive_int, default=1000, help="distinct MACs")
    stop = p.add_mutually_exclusive_group()
    stop.add_argument("--duration", type=float, default=None, help="seconds (default 10)")
    stop.add_argument("--requests", type=_positive_int, default=None, help="number of POSTs")
    p.add_argument("--pool", type=_positive_int, default=None,
                   help="distinct pre-encoded bodies (default: --requests, capped at ~64 MB)")
    p.add_argument("--json", metavar="FILE", help="save the summary as JSON")


def build_parser() -> argparse.ArgumentParser:
    """The argparse tree of all subcommands."""
    parser = argparse.ArgumentParser(prog="python -m tools.cmx_sim", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    devices = _device_options()
    _add_fake_cmx(sub, devices)
    _add_fake_firehose(sub, devices)
    _add_walk(sub, devices)
    _add_load(sub)
    return parser


def venue_config(args: argparse.Namespace) -> VenueConfig:
    """The venue of walk's (or accuracy's) arguments."""
    return VenueConfig(
        floors=args.floors, width_ft=args.width_ft, depth_ft=args.depth_ft,
        speed_mps=tuple(args.speed_mps), pause_s=tuple(args.pause_s),
        floor_change_prob=args.floor_change_prob, noise_ft=args.noise_ft,
        outlier_rate=args.outlier_rate, outlier_ft=args.outlier_ft,
        compute_interval_s=args.compute_interval_s,
        movement_distance_ft=args.movement_distance_ft, noise_model=args.noise,
        noise_corr_s=args.noise_corr_s)


def _walk_options(args: argparse.Namespace) -> walk.WalkOptions:
    meraki_url = args.meraki_url or (args.server.rstrip("/")
                                     + _env("TYS_FEEDS_MERAKI_PATH", "/meraki"))
    return walk.WalkOptions(
        server=args.server,
        notify_auth=(args.notify_user, _secret(args.notify_password,
                                               "TYS_AUTH_NOTIFICATION_PASSWORD",
                                               "change-me-cmx")),
        api_auth=(args.api_user, _secret(args.api_password, "TYS_AUTH_API_PASSWORD",
                                         "change-me-api")),
        attendees=args.attendees, stationary=args.stationary, seed=args.seed,
        mac_mode=args.mac_mode, hash_key=_secret(args.hash_key, "TYS_CMX_MAC_HASH_KEY", ""),
        venue=venue_config(args), duration_s=args.duration_min * 60, speedup=args.speedup,
        batch_size=args.batch_size, batch_interval_s=args.batch_interval_s,
        register_share=args.register_share, user_prefix=args.user_prefix,
        serve_cmx=args.serve_cmx,
        cmx_auth=(args.cmx_username, _secret(args.cmx_password, "TYS_CMX_PASSWORD", "")),
        devices_file=args.devices_file, progress_s=args.progress_s,
        leaderboard=args.leaderboard, table_rows=args.table_rows, timeout_s=args.timeout_s,
        feed=args.feed, serve_firehose=args.serve_firehose,
        firehose_api_key=_secret(args.firehose_api_key, "TYS_FEEDS_SPACES_FIREHOSE_API_KEY",
                                 fake_firehose.API_KEY),
        meraki_url=meraki_url,
        meraki_secret=_secret(args.meraki_secret, "TYS_FEEDS_MERAKI_SECRET", ""))


def _save_json(path: str | None, data: dict[str, Any]) -> None:
    if path:
        Path(path).write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


def _run_fake_cmx(args: argparse.Namespace) -> int:
    if args.devices_file:
        devices = load_devices(args.devices_file)
    else:
        devices = make_devices(args.attendees, args.stationary, args.floors, args.seed,
                               args.mac_mode)
    password = _secret(args.password, "TYS_CMX_PASSWORD", "")
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
        _secret(args.api_key, "TYS_FEEDS_SPACES_FIREHOSE_API_KEY", fake_firehose.API_KEY),
        args.keepalive_s, args.split_lines, args.bad_line_every, args.repeat_every,
        args.reorder_window, fail_connects=fails, retry_after=args.retry_after,
        stall_connects=frozenset(args.stall_connect), prebuilt=prebuilt, hold=args.hold)
    if prebuilt:
        devices = []  # the stream is the file's
    quirks = fake_firehose.Quirks(args.ipv4, args.unpadded_macs)
    venue = VenueConfig(floors=args.floors, compute_interval_s=args.interval_s)
    print(f"fake Firehose on http://{args.host}:{args.port}{fake_firehose.PATH} with "
          f"{len(devices)} devices", file=sys.stderr, flush=True)
    asyncio.run(fake_firehose.serve_forever(args.host, args.port, fake, devices, venue,
                                            args.seed, quirks))
    return 0


def _run_walk(args: argparse.Namespace) -> int:
    result = asyncio.run(walk.run_walk(_walk_options(args)))
    if "leaderboard" in result:
        print(report.format_leaderboard(result["leaderboard"]))
    print(report.format_report(result, args.table_rows))
    _save_json(args.json, result)
    missed = not all(result["targets"].values())
    return 1 if args.fail_on_target_miss and missed else 0


def _run_load(args: argparse.Namespace) -> int:
    duration = args.duration if args.duration is not None or args.requests else 10.0
    auth = (args.user, _secret(args.password, "TYS_AUTH_NOTIFICATION_PASSWORD", "change-me-cmx"))
    summary = asyncio.run(load.run(args.server, auth, rate=args.rate,
                                   connections=args.connections, batch=args.batch,
                                   macs=args.macs, duration_s=duration,
                                   requests=args.requests, pool=args.pool))
    print(load.format_summary(summary))
    _save_json(args.json, summary)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments and run one subcommand; the exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    runners = {"fake-cmx": _run_fake_cmx, "fake-firehose": _run_fake_firehose,
               "walk": _run_walk, "load": _run_load}
    try:
        return runners[args.command](args)
    except KeyboardInterrupt:
        return 130
    except ValueError as exc:
        print(f"{args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
