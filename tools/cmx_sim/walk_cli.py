"""The ``walk`` and ``accuracy`` subcommands: their arguments, options and runs."""

from __future__ import annotations

import argparse
import asyncio
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tools.cmx_sim import accuracy, fake_firehose, report, walk
from tools.cmx_sim.cadence import FEEDS
from tools.cmx_sim.cli_args import (
    Formatter,
    add_layout,
    env,
    host_port,
    layout,
    non_negative,
    positive_int,
    save_json,
    secret,
    share,
)
from tools.cmx_sim.venue import NOISE_MODELS, VenueConfig


def add_walk(sub: Any, devices: argparse.ArgumentParser) -> None:
    d = VenueConfig()
    p = sub.add_parser("walk", parents=[devices], formatter_class=Formatter,
                       help="simulate a venue against a server and report accuracy",
                       description=walk.__doc__)
    p.add_argument("--server", default="http://127.0.0.1:8080", help="TYS server base URL")
    p.add_argument("--feed", choices=FEEDS, default="cmx",
                   help="cmx: POST /notification; firehose: serve a fake Cisco Spaces "
                        "Firehose the server reads; meraki: POST Scanning API v3 to /meraki")
    p.add_argument("--notify-user", default=env("TYS_AUTH_NOTIFICATION_USERNAME", "cmx"))
    p.add_argument("--notify-password", help="default: $TYS_AUTH_NOTIFICATION_PASSWORD, "
                   "else change-me-cmx (the server's default)")
    p.add_argument("--api-user", default=env("TYS_AUTH_API_USERNAME", "frontend"))
    p.add_argument("--api-password", help="default: $TYS_AUTH_API_PASSWORD, "
                   "else change-me-api (the server's default)")
    g = p.add_argument_group("venue and movement")
    g.add_argument("--width-ft", type=float, default=d.width_ft)
    g.add_argument("--depth-ft", type=float, default=d.depth_ft)
    g.add_argument("--speed-mps", type=float, nargs=2, default=d.speed_mps, metavar=("MIN", "MAX"))
    g.add_argument("--pause-s", type=float, nargs=2, default=d.pause_s, metavar=("MIN", "MAX"),
                   help="pause at each waypoint")
    g.add_argument("--floor-change-prob", type=share, default=d.floor_change_prob,
                   help="chance of changing floor at a waypoint")
    add_layout(g)
    g = p.add_argument_group("location engine (CMX, Spaces or Meraki)")
    g.add_argument("--noise", choices=NOISE_MODELS, default=d.noise_model,
                   help="independent: a fresh error per estimate; correlated: an error that "
                        "drifts (Ornstein-Uhlenbeck per axis)")
    g.add_argument("--noise-ft", type=non_negative, default=d.noise_ft,
                   help="standard deviation per axis of the location error")
    g.add_argument("--noise-corr-s", type=float, default=d.noise_corr_s,
                   help="correlation time of --noise correlated")
    g.add_argument("--outlier-rate", type=share, default=d.outlier_rate,
                   help="share of estimates that jump away")
    g.add_argument("--outlier-ft", type=non_negative, default=d.outlier_ft,
                   help="a jump lands between half this and this far away")
    g.add_argument("--compute-interval-s", type=float, default=d.compute_interval_s,
                   help="CMX re-computes each device's location this often (Spaces: 2-6 s, "
                        "Meraki: 5-15 s)")
    g.add_argument("--movement-distance-ft", type=float,
                   default=float(env("TYS_CMX_MOVEMENT_DISTANCE_FT", "50")),
                   help="notify when the estimate moved this far (cmx.movement_distance_ft)")
    g.add_argument("--hash-key", help="send MACs hashed with this salt, as CMX does "
                   "(cmx.mac_hash_key; default: $TYS_CMX_MAC_HASH_KEY, else no hashing)")
    g.add_argument("--batch-size", type=positive_int, default=50,
                   help="at most this many notifications per POST")
    g.add_argument("--batch-interval-s", type=float, default=1.0,
                   help="simulated seconds between POSTs")
    g = p.add_argument_group("run")
    g.add_argument("--duration-min", type=float, default=30.0, help="simulated minutes")
    g.add_argument("--tail-s", type=non_negative, default=walk.WalkOptions.tail_s,
                   help="after the session nobody walks and the feed reports on this long "
                        "(simulated): a filter that credits a last leg once its walker is "
                        "still gets its chance")
    g.add_argument("--quiet-s", type=non_negative, default=walk.WalkOptions.quiet_s,
                   help="then the phones fall silent this long (simulated) while a probe "
                        "runs the feed's clock on, so every walk's settle is due")
    g.add_argument("--settle-wait-s", type=non_negative,
                   default=walk.WalkOptions.settle_wait_s,
                   help="then wait up to this long (real) for the server's periodic settle "
                        "to show in the totals (0 with tracking.filter classic)")
    g.add_argument("--speedup", type=non_negative, default=30.0,
                   help="simulated seconds per real second (0: as fast as possible)")
    g.add_argument("--as-fast-as-possible", action="store_const", const=0.0, dest="speedup",
                   help="same as --speedup 0")
    g.add_argument("--register-share", type=share, default=1.0,
                   help="share of devices registered through /live/register_username "
                        "(only these are evaluated)")
    g.add_argument("--user-prefix", default="sim", help="usernames are PREFIX-<mac hex>")
    g.add_argument("--serve-cmx", type=host_port, metavar="[HOST:]PORT",
                   help="run a fake CMX in this process for the server's IP->MAC look-ups")
    g.add_argument("--cmx-username", default=env("TYS_CMX_USERNAME", ""),
                   help="Basic auth the in-process fake CMX requires (empty: none)")
    g.add_argument("--cmx-password", help="default: $TYS_CMX_PASSWORD")
    g.add_argument("--devices-file", help="also write the IP/MAC map here (for fake-cmx)")
    g = p.add_argument_group("Firehose and Meraki feeds")
    g.add_argument("--serve-firehose", type=host_port, default=("127.0.0.1", 8282),
                   metavar="[HOST:]PORT", help="--feed firehose: serve the fake Firehose here "
                   "(the server's feeds.spaces_firehose.url is http://HOST:PORT"
                   f"{fake_firehose.PATH})")
    g.add_argument("--firehose-api-key", help="the X-API-KEY it requires (default: "
                   "$TYS_FEEDS_SPACES_FIREHOSE_API_KEY, else fake-firehose-key)")
    g.add_argument("--meraki-url", help="--feed meraki: where to POST (default: "
                   "SERVER + $TYS_FEEDS_MERAKI_PATH, else SERVER/meraki)")
    g.add_argument("--meraki-secret", help="the secret in each POST (default: "
                   "$TYS_FEEDS_MERAKI_SECRET)")
    g.add_argument("--progress-s", type=non_negative, default=5.0,
                   help="real seconds between progress lines (0: none)")
    g.add_argument("--leaderboard", type=int, default=0, metavar="N",
                   help="print the server's top-N leaderboard at the end")
    g.add_argument("--table-rows", type=int, default=10,
                   help="walkers listed in the report, largest errors first (0: every device)")
    g.add_argument("--json", metavar="FILE", help="save the report (every device) as JSON")
    g.add_argument("--fail-on-target-miss", action="store_true",
                   help="exit 1 when an accuracy target is missed")
    g.add_argument("--timeout-s", type=float, default=10.0, help="per HTTP request")


def venue_config(args: argparse.Namespace) -> VenueConfig:
    """The venue of walk's (or accuracy's) arguments."""
    return VenueConfig(
        floors=args.floors, width_ft=args.width_ft, depth_ft=args.depth_ft,
        speed_mps=tuple(args.speed_mps), pause_s=tuple(args.pause_s),
        floor_change_prob=args.floor_change_prob, noise_ft=args.noise_ft,
        outlier_rate=args.outlier_rate, outlier_ft=args.outlier_ft,
        compute_interval_s=args.compute_interval_s,
        movement_distance_ft=args.movement_distance_ft, noise_model=args.noise,
        noise_corr_s=args.noise_corr_s, **layout(args))


def walk_options(args: argparse.Namespace) -> walk.WalkOptions:
    meraki_url = args.meraki_url or (args.server.rstrip("/")
                                     + env("TYS_FEEDS_MERAKI_PATH", "/meraki"))
    return walk.WalkOptions(
        server=args.server,
        notify_auth=(args.notify_user, secret(args.notify_password,
                                               "TYS_AUTH_NOTIFICATION_PASSWORD",
                                               "change-me-cmx")),
        api_auth=(args.api_user, secret(args.api_password, "TYS_AUTH_API_PASSWORD",
                                         "change-me-api")),
        attendees=args.attendees, stationary=args.stationary, seed=args.seed,
        mac_mode=args.mac_mode, hash_key=secret(args.hash_key, "TYS_CMX_MAC_HASH_KEY", ""),
        venue=venue_config(args), duration_s=args.duration_min * 60, speedup=args.speedup,
        batch_size=args.batch_size, batch_interval_s=args.batch_interval_s,
        register_share=args.register_share, user_prefix=args.user_prefix,
        serve_cmx=args.serve_cmx,
        cmx_auth=(args.cmx_username, secret(args.cmx_password, "TYS_CMX_PASSWORD", "")),
        devices_file=args.devices_file, progress_s=args.progress_s,
        leaderboard=args.leaderboard, table_rows=args.table_rows, timeout_s=args.timeout_s,
        feed=args.feed, serve_firehose=args.serve_firehose, tail_s=args.tail_s,
        quiet_s=args.quiet_s, settle_wait_s=args.settle_wait_s,
        firehose_api_key=secret(args.firehose_api_key, "TYS_FEEDS_SPACES_FIREHOSE_API_KEY",
                                 fake_firehose.API_KEY),
        meraki_url=meraki_url,
        meraki_secret=secret(args.meraki_secret, "TYS_FEEDS_MERAKI_SECRET", ""))


def run_walk_command(args: argparse.Namespace) -> int:
    result = asyncio.run(walk.run_walk(walk_options(args)))
    if "leaderboard" in result:
        print(report.format_leaderboard(result["leaderboard"]))
    print(report.format_report(result, args.table_rows))
    save_json(args.json, result)
    missed = not all(result["targets"].values())
    return 1 if args.fail_on_target_miss and missed else 0


def _floats(text: str) -> tuple[float, ...]:
    """A comma-separated list of numbers."""
    try:
        return tuple(float(item) for item in text.split(",") if item.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers like 5,10,20, got {text!r}") from None


def _names(choices: tuple[str, ...]) -> Any:
    def parse(text: str) -> tuple[str, ...]:
        names = tuple(item.strip() for item in text.split(",") if item.strip())
        wrong = [name for name in names if name not in choices]
        if wrong or not names:
            raise argparse.ArgumentTypeError(f"expected some of {','.join(choices)}, "
                                             f"got {text!r}")
        return names
    return parse


def _setting(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.startswith("TYS_"):
        raise argparse.ArgumentTypeError(f"expected TYS_NAME=VALUE, got {text!r}")
    return name, value


def add_accuracy(sub: Any, devices: argparse.ArgumentParser) -> None:
    """The accuracy subcommand's arguments."""
    d = accuracy.MatrixOptions()
    p = sub.add_parser("accuracy", parents=[devices], formatter_class=Formatter,
                       help="the ground-truth matrix: every feed x noise x session length, "
                            "each through a real server", description=accuracy.__doc__)
    p.add_argument("--feeds", type=_names(FEEDS), default=d.feeds, metavar="LIST",
                   help=f"some of {','.join(FEEDS)}")
    p.add_argument("--noise", type=_names(NOISE_MODELS), default=d.noise_models,
                   metavar="LIST", help=f"noise models: some of {','.join(NOISE_MODELS)}")
    p.add_argument("--sigmas-ft", type=_floats, default=d.sigmas_ft, metavar="LIST",
                   help="location noise sigmas per axis")
    p.add_argument("--minutes", type=_floats, default=d.minutes, metavar="LIST",
                   help="session lengths (simulated minutes)")
    p.add_argument("--speedup", type=non_negative, default=d.speedup,
                   help="simulated seconds per real second (0: as fast as possible; the "
                        "figures do not depend on it, see docs/accuracy.md)")
    p.add_argument("--noise-corr-s", type=float, default=d.venue.noise_corr_s,
                   help="correlation time of the correlated noise")
    add_layout(p)
    p.add_argument("--filter", dest="filter_mode", metavar="MODE",
                   help="the server's tracking.filter (TYS_TRACKING_FILTER; default: the "
                        "server's own default: adaptive in conf/tys.yaml)")
    p.add_argument("--server-env", type=_setting, action="append", default=[],
                   metavar="TYS_NAME=VALUE", help="another setting of every server "
                   "(e.g. TYS_TRACKING_GATE_FT=40)")
    p.add_argument("--jobs", type=positive_int, default=d.jobs,
                   help="cells run at once (each its own server and walk process)")
    p.add_argument("--dsn", help="a PostgreSQL where databases may be created and dropped "
                                 "(default: an embedded one in a temp dir)")
    p.add_argument("--out", default="var/accuracy", help="where accuracy.md and "
                                                         "accuracy.json are written")


def run_accuracy_command(args: argparse.Namespace, argv: Sequence[str] | None = None) -> int:
    """Run the matrix of the arguments."""
    venue = VenueConfig(floors=args.floors, noise_corr_s=args.noise_corr_s, **layout(args))
    opts = accuracy.MatrixOptions(
        feeds=args.feeds, noise_models=args.noise, sigmas_ft=args.sigmas_ft,
        minutes=args.minutes, attendees=args.attendees, stationary=args.stationary,
        seed=args.seed, speedup=args.speedup, venue=venue, filter_mode=args.filter_mode,
        server_env=tuple(args.server_env), admin_dsn=args.dsn, jobs=args.jobs)
    words = list(sys.argv[1:] if argv is None else argv)
    command = " ".join(["python -m tools.cmx_sim", *(shlex.quote(w) for w in words)])
    return accuracy.main(opts, command, Path(args.out))
