"""The organisers' API, /admin/*: export, disqualify, requalify, erase, purge (DESIGN 15).

POST with a JSON body and the admin pair (auth.admin), like /live/*; every reply is
JSON but the export's CSV. Each call is logged at INFO with who (the admin username
and client address), what (the action and its target) and when (the line's time),
never a secret. tys-admin (tys_server/admin) is the command line over it.
"""

from __future__ import annotations

import csv
import io
import logging
from typing import Any

from tys_server.config import Settings
from tys_server.service import Service, StorageFailed, UserNotFound
from tys_server.service.export import EXPORTS, Table
from tys_server.web import requests
from tys_server.web.base import BasicAuth
from tys_server.web.live import DELETED, Answer, ErrorReplies, LiveHandler

log = logging.getLogger(__name__)

CSV_TYPE = "text/csv; charset=utf-8"
BAD_USERNAME = "Expecting a JSON object with username."
BAD_EXPORT = "Expecting a JSON object with by and an optional date."
BAD_EXPORT_BY = "by must be user or team."
MAX_PURGE_DAYS = 36_500
BAD_PURGE = "unregistered_older_than_days must be an integer from 0 to 36500."
# A spreadsheet runs a cell starting with one of these as a formula (CSV injection): a
# username or team typed as "=HYPERLINK(...)" is written as text, after a quote.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def username_arg(body: Any) -> str:
    """disqualify, requalify, erase: the username."""
    username = requests.valid_username(body.get("username")) if isinstance(body, dict) else None
    if username is None:
        raise requests.BadRequest(BAD_USERNAME)
    return username


def export_args(body: Any) -> tuple[str, int | None, str | None]:
    """export: (by, the date's ordinal or None for the whole event, the date as given)."""
    if not isinstance(body, dict):
        raise requests.BadRequest(BAD_EXPORT)
    by = body.get("by", "user")
    if not isinstance(by, str) or by not in EXPORTS:
        raise requests.BadRequest(BAD_EXPORT_BY)
    date = body.get("date")
    if date is None:
        return by, None, None
    ordinal = requests.date_ordinal(date)
    if ordinal is None:
        raise requests.BadRequest(requests.BAD_DATE)
    return by, ordinal, date


def purge_args(body: Any) -> int:
    """purge: unregistered_older_than_days."""
    days = (requests.json_int(body.get("unregistered_older_than_days"), 0, MAX_PURGE_DAYS)
            if isinstance(body, dict) else None)
    if days is None:
        raise requests.BadRequest(BAD_PURGE)
    return days


def csv_bytes(table: Table) -> bytes:
    """The table as RFC 4180 CSV in UTF-8: a header row, figures to 3 decimals."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(table.columns)
    writer.writerows([_cell(value) for value in row] for row in table.rows)
    return out.getvalue().encode("utf-8")


def _cell(value: Any) -> Any:
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


class AdminHandler(LiveHandler):
    """Base of /admin/*: a /live/* handler whose every call is logged."""

    admin: str  # the admin pair's username: who called, once the pair was checked
    action = ""
    target = ""  # what the call named (a username, a board, a period)

    def on_finish(self) -> None:
        status = self.get_status()
        who = self.admin if status != 401 else "someone without the admin pair"
        log.info("admin %s from %s: %s %s -> %d", who, self.request.remote_ip, self.action,
                 self.target or "-", status)
        super().on_finish()


class ExportHandler(AdminHandler):
    action = "export"

    async def answer(self, body: Any) -> Answer:
        if body is None and not self.request.body.strip():
            body = {}  # an empty POST asks for the whole event by user
        by, ordinal, date = export_args(body)
        self.target = f"by {by}, {date or 'overall'}"
        period = "overall" if date is None else date.replace("/", "-")
        self.filename = f"tys-{by}s-{period}.csv"
        return 200, self.service.export(by, ordinal)

    def reply(self, status: int, reply: Any) -> None:
        self.set_status(status)
        self.set_header("Content-Type", CSV_TYPE)
        self.set_header("Content-Disposition", f'attachment; filename="{self.filename}"')
        self.set_header("Cache-Control", "no-store")  # e-mail addresses
        self.finish(csv_bytes(reply))


class DisqualifyHandler(AdminHandler):
    action = "disqualify"
    disqualified = True

    async def answer(self, body: Any) -> Answer:
        self.target = username_arg(body)
        user = await self.service.set_disqualified(self.target, self.disqualified)
        return 200, {"username": user.username, "disqualified": user.disqualified}


class RequalifyHandler(DisqualifyHandler):
    action = "requalify"
    disqualified = False


class EraseHandler(AdminHandler):
    action = "erase"

    async def answer(self, body: Any) -> Answer:
        self.target = username_arg(body)
        user = await self.service.delete(self.target, erase=True)
        return 200, {"success": DELETED, "username": user.username, "email": user.email}


class PurgeHandler(AdminHandler):
    action = "purge"

    async def answer(self, body: Any) -> Answer:
        days = purge_args(body)
        self.target = f"unregistered older than {days} days"
        return 200, {"purged_devices": await self.service.purge_unregistered(days)}


def routes(settings: Settings, service: Service, auth: BasicAuth) -> list[Any]:
    """The /admin/* entries of the route table, each with the replies to its refusals."""
    not_found = (404, "Username not found")
    update: ErrorReplies = {UserNotFound: not_found,
                            StorageFailed: (500, "Could not update user in database")}
    erase: ErrorReplies = {UserNotFound: not_found,
                           StorageFailed: (500, "Could not delete user from database")}
    purge: ErrorReplies = {StorageFailed: (500, "Could not purge devices from database")}
    admin = settings.auth.admin.username

    def entry(path: str, handler: type[AdminHandler], errors: ErrorReplies) -> Any:
        return (path, handler, {"auth": auth, "service": service, "errors": errors,
                                "admin": admin})

    return [
        entry(r"/admin/export/?", ExportHandler, {}),
        entry(r"/admin/disqualify/?", DisqualifyHandler, update),
        entry(r"/admin/requalify/?", RequalifyHandler, update),
        entry(r"/admin/erase/?", EraseHandler, erase),
        entry(r"/admin/purge/?", PurgeHandler, purge),
    ]
