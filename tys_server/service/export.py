"""A board as a table for prize-giving: every ranked user or team, with e-mails and teams.

The same board the leaderboard serves (overall or a day), so places and figures agree
with it; all of it, not the top N. web/admin.py writes it as CSV.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from tys_server.core.groups import team_key
from tys_server.core.leaderboard import Board, Boards
from tys_server.core.units import km, miles, steps

USER_COLUMNS = ("place", "username", "email", "team", "km", "miles", "steps")
TEAM_COLUMNS = ("place", "team", "members", "km", "miles", "steps", "average_km")
EXPORTS = ("user", "team")  # what /admin/export's `by` takes


class Table(NamedTuple):
    """A header and its rows, in place order."""

    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]


def board_table(boards: Boards, by: str, ordinal: int | None, step_ft: float) -> Table:
    """The overall board (ordinal None) or a day's, by user or by team (by total)."""
    board = boards.overall() if ordinal is None else boards.day(ordinal)
    if by == "team":
        return _team_table(boards, board, step_ft)
    return _user_table(boards, board, step_ft)


def _user_table(boards: Boards, board: Board, step_ft: float) -> Table:
    # Who the board ranks, at the place it gives them: hidden, disqualified and staff are
    # not placed, and a board shows nobody without distance.
    placed = []
    for user, total_m in board.totals.items():
        place = board.place(user) if total_m > 0.0 else None
        if place is not None:
            placed.append((place, user, total_m))
    placed.sort(key=lambda entry: entry[0])
    # A team as its board shows it (its earliest member's spelling), not as each typed it.
    team_names = boards.grouped(board, "team").membership.names
    return Table(USER_COLUMNS, [
        (place, user.shown_name, user.email, team_names.get(team_key(user) or "", ""),
         round(km(total_m), 3), round(miles(total_m), 3), steps(total_m, step_ft))
        for place, user, total_m in placed])


def _team_table(boards: Boards, board: Board, step_ft: float) -> Table:
    teams = boards.grouped(board, "team")
    return Table(TEAM_COLUMNS, [
        (entry.place, entry.name, entry.members, round(km(entry.total_m), 3),
         round(miles(entry.total_m), 3), steps(entry.total_m, step_ft),
         round(km(entry.average_m), 3))
        for entry in teams.top(len(teams))])
