"""tys-admin against a real server: each command, its output, and its one-line errors.

The server is the app over a started runtime (pytest-tornado's HTTP server); the CLI
runs in a thread (it is a blocking urllib client) so the loop keeps serving it, or as
`python -m tys_server.admin` in a subprocess.
"""

from __future__ import annotations

import asyncio
import csv
import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support import event
from tests.support.event import ADMIN_AUTH, DAY_S, NOW_S, YESTERDAY, mac_of, walk
from tests.support.procserver import free_port
from tys_server.admin import cli
from tys_server.server import Runtime

runtime_clock = event.noon_clock
overrides = event.board_overrides


@pytest.fixture
def environ(http_server: Any, base_url: str) -> dict[str, str]:
    """What an operator's shell holds, with the server (the app) serving at the URL."""
    return {"TYS_ADMIN_URL": base_url, "TYS_AUTH_ADMIN_USERNAME": ADMIN_AUTH[0],
            "TYS_AUTH_ADMIN_PASSWORD": ADMIN_AUTH[1]}


async def tys_admin(environ: dict[str, str], *argv: str) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of one run, in a thread beside the server."""
    out, err = io.StringIO(), io.StringIO()
    status = await asyncio.to_thread(cli.main, list(argv), environ=environ, stdout=out,
                                     stderr=err)
    return status, out.getvalue(), err.getvalue()


# -- each command -------------------------------------------------------------------------


@pytest.mark.gen_test(timeout=30)
async def test_export_writes_the_servers_csv_to_stdout_or_a_file(
        post: Any, runtime: Runtime, environ: dict[str, str], tmp_path: Path) -> None:
    await event.six_walkers(post, runtime)
    status, out, err = await tys_admin(environ, "export")
    assert (status, err) == (0, "")
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["place", "username", "email", "team", "km", "miles", "steps"]
    assert [row[1] for row in rows[1:]] == ["dave@acme.example", "frank", "alice",
                                            "carol@acme.example", "bob"]
    target = tmp_path / "teams.csv"
    status, out, err = await tys_admin(environ, "export", "--by", "team", "--date",
                                       YESTERDAY, "--output", str(target))
    assert (status, out, err) == (0, f"wrote 1 team to {target}\n", "")
    teams = list(csv.reader(io.StringIO(target.read_text("utf-8"))))
    assert [row[:3] for row in teams] == [["place", "team", "members"],
                                          ["1", "Night Owls", "3"]]


@pytest.mark.gen_test(timeout=30)
async def test_disqualify_requalify_and_erase_say_what_the_server_did(
        post: Any, runtime: Runtime, environ: dict[str, str]) -> None:
    await event.six_walkers(post, runtime)
    assert await tys_admin(environ, "disqualify", "BOB") == (0, "bob: disqualified\n", "")
    assert runtime.state.user("bob").disqualified
    assert await tys_admin(environ, "requalify", "bob") == (0, "bob: requalified\n", "")
    assert not runtime.state.user("bob").disqualified
    status, out, err = await tys_admin(environ, "erase", "alice")
    assert (status, err) == (0, "")
    assert out == "erased alice (alice@cmxtrackyoursteps.com) with their devices' data\n"
    assert runtime.state.user("alice") is None
    assert mac_of("10.0.0.1") not in runtime.state.tracks


@pytest.mark.gen_test(timeout=30)
async def test_purge_reports_the_devices_purged(runtime: Runtime,
                                                environ: dict[str, str]) -> None:
    walk(runtime, "10.0.9.1", 5, NOW_S - 10 * DAY_S)
    walk(runtime, "10.0.9.2", 5, NOW_S - DAY_S)
    assert await tys_admin(environ, "purge", "--older-than-days", "7") == (
        0, "purged 1 unregistered device\n", "")
    assert set(runtime.state.tracks) == {mac_of("10.0.9.2")}


# -- errors: one line each ----------------------------------------------------------------


@pytest.mark.gen_test(timeout=30)
async def test_a_refusal_exits_1_with_the_servers_error_text(
        runtime: Runtime, environ: dict[str, str]) -> None:
    assert await tys_admin(environ, "erase", "ghost") == (
        1, "", "tys-admin: Username not found (HTTP 404)\n")
    assert await tys_admin(environ, "export", "--date", "2026-11-18") == (
        1, "", "tys-admin: date must be a day as MM/DD/YYYY. (HTTP 400)\n")


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("pair", [("frontend", "change-me-api"), ("admin", "wrong")])
async def test_a_wrong_pair_exits_1_naming_the_variables(
        runtime: Runtime, environ: dict[str, str], pair: tuple[str, str]) -> None:
    environ.update(TYS_AUTH_ADMIN_USERNAME=pair[0], TYS_AUTH_ADMIN_PASSWORD=pair[1])
    status, out, err = await tys_admin(environ, "disqualify", "bob")
    assert (status, out) == (1, "")
    assert err == ("tys-admin: Unauthorized (check TYS_AUTH_ADMIN_USERNAME and "
                   "TYS_AUTH_ADMIN_PASSWORD) (HTTP 401)\n")
    assert pair[1] not in err


@pytest.mark.gen_test(timeout=30)
async def test_a_server_that_is_not_there_exits_1_naming_the_url(
        environ: dict[str, str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    status, out, err = await tys_admin(environ, "--url", url, "purge",
                                       "--older-than-days", "1")
    assert (status, out) == (1, "")
    assert err == (f"tys-admin: cannot reach {url}: connection refused "
                   "(is the server running there?)\n")


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize(("argv", "start"), [
    ((), "tys-admin: the following arguments are required: COMMAND"),
    (("export", "--by", "domain"), "tys-admin: argument --by: invalid choice: 'domain'"),
    (("purge",), "tys-admin: the following arguments are required: --older-than-days"),
    (("purge", "--older-than-days", "-3"), "tys-admin: argument --older-than-days: must be"),
    (("erase",), "tys-admin: the following arguments are required: username"),
    (("--url", "127.0.0.1:8080", "erase", "bob"), "tys-admin: --url must be an http://"),
])
async def test_a_wrong_command_line_exits_2_in_one_line(
        runtime: Runtime, environ: dict[str, str], argv: tuple[str, ...],
        start: str) -> None:
    status, out, err = await tys_admin(environ, *argv)
    assert (status, out) == (2, "")
    assert err.startswith(start) and err.count("\n") == 1, err
    assert runtime.state.user("bob") is None  # nothing was sent


@pytest.mark.gen_test(timeout=30)
async def test_without_the_admin_password_it_exits_2_before_calling(
        environ: dict[str, str]) -> None:
    del environ["TYS_AUTH_ADMIN_PASSWORD"]
    assert await tys_admin(environ, "erase", "bob") == (
        2, "", "tys-admin: TYS_AUTH_ADMIN_PASSWORD is not set: the password of auth.admin\n")


# -- as a program ---------------------------------------------------------------------------


def test_help_names_every_command_and_the_environment() -> None:
    done = subprocess.run([sys.executable, "-m", "tys_server.admin", "--help"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    for word in ("export", "disqualify", "requalify", "erase", "purge", "--url",
                 "TYS_ADMIN_URL", "TYS_AUTH_ADMIN_USERNAME", "TYS_AUTH_ADMIN_PASSWORD"):
        assert word in done.stdout, word
    export = subprocess.run([sys.executable, "-m", "tys_server.admin", "export", "--help"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert "--by {user,team}" in export.stdout and "MM/DD/YYYY" in export.stdout


@pytest.mark.gen_test(timeout=60)
async def test_python_m_tys_server_admin_reads_the_url_and_pair_from_the_environment(
        post: Any, runtime: Runtime, environ: dict[str, str]) -> None:
    await event.six_walkers(post, runtime)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tys_server.admin", "disqualify", "frank", env=environ,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await process.communicate()
    assert (process.returncode, out, err) == (0, b"frank: disqualified\n", b"")
    assert runtime.state.user("frank").disqualified
