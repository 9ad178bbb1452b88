"""A fixed-day event for the board, profile, admin and erase tests.

The runtime's clock is noon UTC of a fixed day (no day edge near). Walks go straight
into the runtime's state; `six_walkers` registers the same six people over HTTP.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from tests.support.clock import Clock
from tys_server.core.events import Batch, Movement
from tys_server.server import Runtime

NOW_S = dt.datetime(2026, 11, 18, 12, 0, tzinfo=dt.UTC).timestamp()
TODAY = "11/18/2026"
YESTERDAY = "11/17/2026"
DAY_S = 86_400
LEG_M = 15.24  # one 50 ft leg
ADMIN_AUTH = ("admin", "change-me-admin")
# The boards follow every change; staff are off them.
BOARD_OVERRIDES = {"leaderboard.refresh_interval_s": 0.0,
                   "leaderboard.exclude_email_domains": ("staff.example",)}


@pytest.fixture
def noon_clock() -> Clock:
    """The runtime's clock: NOW_S. A module uses it as `runtime_clock = noon_clock`."""
    return Clock(NOW_S)


@pytest.fixture
def board_overrides() -> dict[str, Any]:
    """BOARD_OVERRIDES. A module uses it as `overrides = board_overrides`."""
    return dict(BOARD_OVERRIDES)


def mac_of(ip: str) -> str:
    """CMX test mode: a.b.c.d → 02:00:aa:bb:cc:dd."""
    return "02:00:" + ":".join(f"{int(octet):02x}" for octet in ip.split("."))


def walk(runtime: Runtime, ip: str, legs: int, start_s: float = NOW_S - 1800,
         now_s: float = NOW_S) -> None:
    """A straight walk crediting `legs` 50 ft legs to the device at ip, from start_s."""
    moves = [Movement(mac_of(ip), 1, 50.0 * i, 0.0, 50.0, start_s + 15 * i)
             for i in range(legs + 2)]
    runtime.state.ingest(Batch(list(moves), len(moves), 0, 0), now_s)


def km(legs: float) -> float:
    return round(legs * LEG_M / 1000, 1)


def miles(legs: float) -> float:
    return round(legs * LEG_M / 1609.344, 1)


async def six_walkers(post: Any, runtime: Runtime) -> None:
    """Six walkers in two teams and two companies, one of them staff, one walked yesterday.

    Legs: dave 60, frank 50 (yesterday), alice 40, carol 30, bob 10; erin (staff) 100.
    """
    people = [("alice", "10.0.0.1", "Night Owls", 40), ("bob", "10.0.0.2", "night owls", 10),
              ("carol@acme.example", "10.0.0.3", "Larks", 30),
              ("dave@acme.example", "10.0.0.4", None, 60),
              ("erin@staff.example", "10.0.0.5", "Larks", 100),
              ("frank", "10.0.0.6", "NIGHT OWLS", 50)]
    for username, ip, team, legs in people:
        body = {"username": username, "ip": ip} | ({} if team is None else {"team": team})
        assert (await post("/live/register_username", body)).code == 201
        walk(runtime, ip, legs, NOW_S - (DAY_S if username == "frank" else 1800))
