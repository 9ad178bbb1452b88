"""/live/* request bodies read into the service's typed arguments (DESIGN 7).

Each reader takes the decoded JSON body (None when it was not JSON) and returns the
arguments of one use case, or raises BadRequest with the 400 text that endpoint promises.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any, TypeVar

from tys_server.core.addresses import parse_ip
from tys_server.core.groups import GROUPINGS, RANKS
from tys_server.core.users import ProfileChanges
from tys_server.service import DATE_FORMAT

USERNAME_MAX = 64
NAME_MAX = 64  # teams and aliases
DEFAULT_DAYS = 5
DEFAULT_LEADERS = 5
_DATE_SHAPE = re.compile(r"[0-9]{2}/[0-9]{2}/[0-9]{4}")
T = TypeVar("T")

BAD_REGISTER = "Not a POST request or no application/json headers with username and ip"
BAD_DELETE = "Expecting keyname username to delete."
NOT_JSON = "No data"
BAD_DASHBOARD = "Expecting key name username to get data for."
BAD_BOARD = "Expecting a JSON object with number_leaders."
BAD_LEADERS = "number_leaders must be an integer from 1 to 100."
BAD_DATE = "date must be a day as MM/DD/YYYY."
BAD_IP = "Expecting key name ip."
BAD_BY = "by must be one of user, team, domain."
BAD_RANK = "rank must be total or average."
BAD_PROFILE = "Expecting a JSON object with username."
BAD_TEAM = ("team must be 1 to 64 printable characters without leading or trailing "
            "spaces, or null.")
BAD_ALIAS = ("alias must be 1 to 64 printable characters without leading or trailing "
             "spaces, or null.")
BAD_HIDDEN = "hidden must be true or false."


class BadRequest(Exception):
    """A body the endpoint cannot take; text is the error its 400 carries."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def valid_username(value: object) -> str | None:
    """1–64 printable characters, not starting with '@'; None otherwise."""
    if not isinstance(value, str) or not 1 <= len(value) <= USERNAME_MAX:
        return None
    if value.startswith("@") or not value.isprintable() or value.strip() != value:
        return None
    return value


def valid_name(value: object) -> str | None:
    """A team or alias: 1–64 printable characters, no leading or trailing space; None otherwise."""
    if not isinstance(value, str) or not 1 <= len(value) <= NAME_MAX:
        return None
    if not value.isprintable() or value.strip() != value:
        return None
    return value


def json_int(value: object, low: int, high: int) -> int | None:
    """A JSON integer within [low, high]; "5", 2.5 and true are not."""
    if type(value) is not int or not low <= value <= high:
        return None
    return value


def date_ordinal(value: object) -> int | None:
    """The day of a "MM/DD/YYYY" text as a date ordinal; None otherwise."""
    # strptime alone would also take "1/2/2024"; the contract is MM/DD/YYYY.
    if not isinstance(value, str) or not _DATE_SHAPE.fullmatch(value):
        return None
    try:
        return dt.datetime.strptime(value, DATE_FORMAT).date().toordinal()
    except ValueError:
        return None


def _required(body: Any, key: str, read: Callable[[object], T | None], bad: str) -> T:
    """body[key] as read() reads it, or BadRequest(bad) (no object, no key, or unreadable)."""
    value = read(body.get(key)) if isinstance(body, dict) else None
    if value is None:
        raise BadRequest(bad)
    return value


def register_args(body: Any) -> tuple[str, str, bool]:
    """register_username: (username, ip, add_device)."""
    if not isinstance(body, dict):
        raise BadRequest(BAD_REGISTER)
    username = valid_username(body.get("username"))
    ip = parse_ip(body.get("ip"))
    add_device = body.get("add_device", False)
    if username is None or ip is None or not isinstance(add_device, bool):
        raise BadRequest(BAD_REGISTER)
    return username, ip, add_device


def team_arg(body: dict[str, Any]) -> str | None:
    """register_username's optional team (after register_args took the body)."""
    return _optional_name(body, "team", BAD_TEAM)


def _optional_name(body: dict[str, Any], key: str, bad: str) -> str | None:
    """A team or alias that may be absent or null (None), or BadRequest(bad)."""
    value = body.get(key)
    if value is None:
        return None
    name = valid_name(value)
    if name is None:
        raise BadRequest(bad)
    return name


def profile_args(body: Any) -> tuple[str, ProfileChanges]:
    """profile: (username, the fields given: team and alias (None clears), hidden)."""
    username = _required(body, "username", valid_username, BAD_PROFILE)
    changes: ProfileChanges = {}
    if "team" in body:
        changes["team"] = _optional_name(body, "team", BAD_TEAM)
    if "alias" in body:
        changes["alias"] = _optional_name(body, "alias", BAD_ALIAS)
    if "hidden" in body:
        if not isinstance(body["hidden"], bool):
            raise BadRequest(BAD_HIDDEN)
        changes["hidden"] = body["hidden"]
    return username, changes


def delete_args(body: Any) -> str:
    """delete_username: the username."""
    return _required(body, "username", valid_username, BAD_DELETE)


def erase_arg(body: dict[str, Any]) -> bool:
    """delete_username's optional erase (a JSON boolean), after delete_args took the body."""
    erase = body.get("erase", False)
    if not isinstance(erase, bool):
        raise BadRequest(BAD_DELETE)
    return erase


def dashboard_args(body: Any) -> tuple[str, int]:
    """username_data: (username, days)."""
    if not isinstance(body, dict):
        raise BadRequest(NOT_JSON)
    username = valid_username(body.get("username"))
    days = json_int(body.get("days", DEFAULT_DAYS), 1, 366)
    if username is None or days is None:
        raise BadRequest(BAD_DASHBOARD)
    return username, days


def leaderboard_args(body: Any) -> tuple[int, int | None]:
    """leaderboard: (number_leaders, the date's ordinal or None for the overall board)."""
    if not isinstance(body, dict):
        raise BadRequest(BAD_BOARD)
    count = json_int(body.get("number_leaders", DEFAULT_LEADERS), 1, 100)
    if count is None:
        raise BadRequest(BAD_LEADERS)
    date = body.get("date")
    if date is None:
        return count, None
    ordinal = date_ordinal(date)
    if ordinal is None:
        raise BadRequest(BAD_DATE)
    return count, ordinal


def board_kind_args(body: dict[str, Any]) -> tuple[str, str]:
    """leaderboard's (by: user, team or domain; rank: total or average), after
    leaderboard_args took the body."""
    by, rank = body.get("by", "user"), body.get("rank", "total")
    if not isinstance(by, str) or by not in ("user", *GROUPINGS):
        raise BadRequest(BAD_BY)
    if not isinstance(rank, str) or rank not in RANKS:
        raise BadRequest(BAD_RANK)
    return by, rank


def ip_args(body: Any) -> str:
    """ip_username: the IP, in its canonical text."""
    return _required(body, "ip", parse_ip, BAD_IP)
