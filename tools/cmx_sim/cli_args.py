"""Argument types and shared options of the simulator's command line."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from tools.cmx_sim.devices import MAC_MODES
from tools.cmx_sim.venue import LAYOUTS, VenueConfig

Formatter = argparse.ArgumentDefaultsHelpFormatter


def env(name: str, default: str) -> str:
    """Defaults follow the server's TYS_* overrides, so one environment serves both."""
    return os.environ.get(name, default)


def secret(value: str | None, env_name: str, fallback: str) -> str:
    """A password or key: the option, else the server's environment variable, else fallback.

    Never an argparse default, so ``--help`` cannot print a secret from the environment.
    """
    return value if value is not None else os.environ.get(env_name, fallback)


def share(text: str) -> float:
    """A share: a float in 0..1."""
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def non_negative(text: str) -> float:
    """A float >= 0."""
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def positive(text: str) -> float:
    """A float > 0."""
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def positive_int(text: str) -> int:
    """An int >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def host_port(text: str) -> tuple[str, int]:
    """[HOST:]PORT, HOST 127.0.0.1 by default."""
    host, _, port = text.rpartition(":")
    try:
        return host or "127.0.0.1", int(port)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected [HOST:]PORT, got {text!r}") from None


def device_options() -> argparse.ArgumentParser:
    """The options that make the simulated devices (a parent parser)."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("simulated devices (same values = same IPs and MACs)")
    group.add_argument("--attendees", type=int, default=200, help="walking attendees")
    group.add_argument("--stationary", type=int, default=100,
                       help="devices that never move (laptops, displays, a phone on a desk)")
    group.add_argument("--floors", type=positive_int, default=3, help="venue floors")
    group.add_argument("--seed", type=int, default=1, help="random seed of the whole scenario")
    group.add_argument("--mac-mode", choices=MAC_MODES, default="test",
                       help="test: MAC 02:00:<IP octets>, as the server's CMX test mode "
                            "answers; random: random MACs, served by fake-cmx")
    return parent


def add_layout(group: Any) -> None:
    """The venue's layout options (VenueConfig.layout, aisle_ft, cross_aisle_ft)."""
    d = VenueConfig()
    group.add_argument("--layout", choices=LAYOUTS, default=d.layout,
                       help="open: straight from waypoint to waypoint; aisles: an exhibition "
                            "hall, booth to booth along aisles, 90° turns at the crossings")
    group.add_argument("--aisle-ft", type=positive, default=d.aisle_ft,
                       help="aisles: the booth aisles' spacing")
    group.add_argument("--cross-aisle-ft", type=positive, default=d.cross_aisle_ft,
                       help="aisles: the cross aisles' spacing")


def layout(args: argparse.Namespace) -> dict[str, Any]:
    """VenueConfig's layout fields from add_layout's options."""
    return {"layout": args.layout, "aisle_ft": args.aisle_ft,
            "cross_aisle_ft": args.cross_aisle_ft}


def save_json(path: str | None, data: dict[str, Any]) -> None:
    """Write data as indented JSON to path (nothing when path is None)."""
    if path:
        Path(path).write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
