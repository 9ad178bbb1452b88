"""tys-admin export | disqualify | requalify | erase | purge, over HTTP with the admin pair.

The pair comes from the environment, under the names the server reads for auth.admin
(TYS_AUTH_ADMIN_USERNAME, TYS_AUTH_ADMIN_PASSWORD), so the server's EnvironmentFile
serves both. Errors are one line on stderr: exit 2 for a wrong command line, 1 when the
server refused (its error text) or could not be reached (the URL).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO
from urllib.parse import urlsplit

PROG = "tys-admin"
ENV_URL = "TYS_ADMIN_URL"
ENV_USERNAME = "TYS_AUTH_ADMIN_USERNAME"
ENV_PASSWORD = "TYS_AUTH_ADMIN_PASSWORD"
DEFAULT_URL = "http://127.0.0.1:8080"
DEFAULT_USERNAME = "admin"  # auth.admin.username's default
TIMEOUT_S = 60.0  # an export of a large event takes a moment to build and send
USAGE_ERROR = 2
REFUSED = 1

DESCRIPTION = """\
The organisers' commands of a TYS server, sent to its /admin/* API.

The admin pair is read from the environment, under the names the server reads:
TYS_AUTH_ADMIN_USERNAME (default: admin) and TYS_AUTH_ADMIN_PASSWORD.
"""
EPILOG = """\
examples:
  tys-admin export --by user --output prizes.csv
  tys-admin export --by team --date 11/18/2026
  tys-admin disqualify bob
  tys-admin requalify bob
  tys-admin erase alice
  tys-admin purge --older-than-days 30

exit status: 0 done; 1 the server refused (its error is shown) or could not be
reached; 2 a wrong command line or no admin password in the environment.
"""


class Failure(Exception):
    """One line for stderr, and the exit status."""

    def __init__(self, text: str, status: int = REFUSED) -> None:
        super().__init__(text)
        self.text = text
        self.status = status


class Parser(argparse.ArgumentParser):
    """argparse, with its errors in one line (and exit status 2)."""

    def error(self, message: str) -> NoReturn:
        raise Failure(f"{message} (see {PROG} --help)", USAGE_ERROR)


def build_parser(environ: Mapping[str, str]) -> Parser:
    """The command line: --url, then one subcommand."""
    parser = Parser(prog=PROG, description=DESCRIPTION, epilog=EPILOG,
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=environ.get(ENV_URL, DEFAULT_URL),
                        help=f"the server (default: ${ENV_URL}, else {DEFAULT_URL})")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    export = commands.add_parser("export", help="a board as CSV with e-mails, for prizes",
                                 description="The whole board, in place order, as CSV.")
    export.add_argument("--by", choices=("user", "team"), default="user",
                        help="users (place, username or alias, email, team, km, miles, "
                             "steps) or teams (with members and average_km); default user")
    export.add_argument("--date", metavar="MM/DD/YYYY",
                        help="that day's board (default: the whole event)")
    export.add_argument("--output", "-o", metavar="FILE", type=Path,
                        help="write the CSV there (default: standard output)")
    for name, text in (("disqualify", "take a user off every board and out of the totals "
                                      "(their data stays)"),
                       ("requalify", "put a disqualified user back on the boards"),
                       ("erase", "delete a user with their devices' distance, history and "
                                 "track (right to erasure)")):
        command = commands.add_parser(name, help=text, description=text[0].upper() + text[1:]
                                      + ".")
        command.add_argument("username", help="as registered (any letter case)")
    purge = commands.add_parser(
        "purge", help="purge devices nobody registered, idle for N days",
        description="Purge the distance of devices without an owner (never registered, or "
                    "their user deleted) whose last activity is older than N days.")
    purge.add_argument("--older-than-days", type=_days, required=True, metavar="N",
                       help="a whole number of days, 0 or more")
    return parser


def _days(text: str) -> int:
    if not text.strip().isdigit():
        raise argparse.ArgumentTypeError(f"must be a whole number of days, 0 or more: {text!r}")
    return int(text)


def request(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """The /admin/* path and JSON body of a parsed command line."""
    if args.command == "export":
        body: dict[str, Any] = {"by": args.by}
        if args.date is not None:
            body["date"] = args.date
        return "/admin/export", body
    if args.command == "purge":
        return "/admin/purge", {"unregistered_older_than_days": args.older_than_days}
    return f"/admin/{args.command}", {"username": args.username}


def call(url: str, path: str, body: dict[str, Any], username: str, password: str) -> bytes:
    """POST body to url + path with the pair; the reply's body. Raises Failure."""
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    outgoing = urllib.request.Request(
        url.rstrip("/") + path, data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Basic {token}"})
    try:
        with urllib.request.urlopen(outgoing, timeout=TIMEOUT_S) as reply:
            return bytes(reply.read())
    except urllib.error.HTTPError as refused:
        with refused:
            raise Failure(_refusal(refused.code, refused.read())) from None
    except urllib.error.URLError as unreachable:
        reason = unreachable.reason
        if isinstance(reason, ConnectionRefusedError):
            reason = "connection refused (is the server running there?)"
        raise Failure(f"cannot reach {url}: {reason}") from None
    except (TimeoutError, OSError) as failed:
        raise Failure(f"cannot reach {url}: {failed}") from None


def _refusal(status: int, body: bytes) -> str:
    """The server's error text (its JSON error shape) and status, in one line."""
    try:
        text = str(json.loads(body)["error"])
    except (ValueError, KeyError, TypeError):
        text = "no error text"
    if status == 401:
        text += f" (check {ENV_USERNAME} and {ENV_PASSWORD})"
    return f"{text} (HTTP {status})"


def report(args: argparse.Namespace, reply: bytes, stdout: TextIO) -> None:
    """Write what the server did: the CSV, or one line."""
    if args.command == "export":
        text = reply.decode("utf-8")
        if args.output is None:
            stdout.write(text)
            return
        try:
            args.output.write_bytes(reply)
        except OSError as exc:
            raise Failure(f"cannot write {args.output}: {exc.strerror or exc}") from None
        rows = max(text.count("\r\n") - 1, 0)
        print(f"wrote {rows} {args.by}{'' if rows == 1 else 's'} to {args.output}",
              file=stdout)
        return
    answer = json.loads(reply)
    if args.command == "purge":
        purged = answer["purged_devices"]
        print(f"purged {purged} unregistered device{'' if purged == 1 else 's'}", file=stdout)
    elif args.command == "erase":
        print(f"erased {answer['username']} ({answer['email']}) with their devices' data",
              file=stdout)
    else:
        state = "disqualified" if answer["disqualified"] else "requalified"
        print(f"{answer['username']}: {state}", file=stdout)


def main(argv: Sequence[str] | None = None, *, environ: Mapping[str, str] | None = None,
         stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """Run one command; the exit status."""
    environ = os.environ if environ is None else environ
    stdout = sys.stdout if stdout is None else stdout
    stderr = sys.stderr if stderr is None else stderr
    try:
        args = build_parser(environ).parse_args(argv)
        if urlsplit(args.url).scheme not in ("http", "https") or not urlsplit(args.url).netloc:
            raise Failure(f"--url must be an http:// or https:// URL, got {args.url!r}",
                          USAGE_ERROR)
        password = environ.get(ENV_PASSWORD)
        if not password:
            raise Failure(f"{ENV_PASSWORD} is not set: the password of auth.admin",
                          USAGE_ERROR)
        path, body = request(args)
        reply = call(args.url, path, body, environ.get(ENV_USERNAME) or DEFAULT_USERNAME,
                     password)
        report(args, reply, stdout)
    except Failure as failure:
        print(f"{PROG}: {failure.text}", file=stderr)
        return failure.status
    return 0
