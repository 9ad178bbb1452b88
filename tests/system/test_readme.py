"""The README's examples, run as written against a real server.

"A whole event, step by step" is one test; the reference sections' examples (REFERENCE, in
README order, as one event too) another. A section's commands run in order in one bash
(curl, the walk function, tys-admin) against `make run`'s server in a subprocess, on the
test database, its clock pinned to the run the README's replies come from; each reply the
README shows is compared with the real one. Only the host and port are replaced
(http://127.0.0.1:8080 in commands, TYS_ADMIN_URL for tys-admin): the pairs are the
shipped conf/tys.yaml's, which the README shows.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import TestDatabase
from tests.support.procserver import ROOT, ServerProcess, clean_environment
from tests.support.readme import Shell, Step, steps

HEADING = "A whole event, step by step"
REFERENCE = ("Notifications in", "The API (`/live/*`)", "The big screen", "Administration",
             "Privacy")
README_URL = "http://127.0.0.1:8080"
# The README's replies are of a run at this time (the walks are of 26 and 27 November).
README_NOW = "2026-11-27T21:00:00Z"
# Reads that may show a change up to leaderboard.refresh_interval_s late: polled until they
# match, for at most this long. Nothing else is run twice.
READS = re.compile(r"/live/(leaderboard|username_data|ip_username)|/admin/export|/board"
                   r"|tys-admin export")
POLL_FOR_S = 10.0  # /board is built at most every 5 s
POLL_EVERY_S = 0.05
ERASED = ("02:00:0a:00:00:0a", "02:00:0a:00:00:14")  # carol's phone, and the unregistered one
ALICE = "02:00:0a:00:00:07"


def walkthrough() -> list[Step]:
    """The section's steps."""
    return steps((ROOT / "README.md").read_text(), HEADING)


@pytest.fixture
def server(db: TestDatabase, workdir: Path) -> Iterator[ServerProcess]:
    """What `make run` starts (conf/tys.yaml), on the test database, at README_NOW."""
    running = ServerProcess(workdir, "readme", module="tests.support.pinned_server",
                            env={"TYS_DATABASE_DSN": db.dsn, "TYS_TEST_NOW": README_NOW})
    try:
        running.wait_for("READY=1")
        yield running
    finally:
        running.close()


@pytest.fixture
def shell(server: ServerProcess) -> Iterator[Shell]:
    """A bash in the checkout, as the README's reader has one, pointed at the server."""
    bash = Shell(ROOT, clean_environment(TYS_ADMIN_URL=server.url, LC_ALL="C.UTF-8"))
    try:
        yield bash
    finally:
        bash.close()


def shown(step: Step, stdout: str, stderr: str) -> bool:
    """Whether the command printed the reply the README shows under it (stdout, or stderr
    when stdout is empty: tys-admin's errors). JSON compares as JSON, anything else (CSV,
    tys-admin's lines, the board as text) line by line."""
    printed = (stdout or stderr).replace("\r\n", "\n").rstrip("\n")
    expected = "\n".join(step.reply)
    if expected[:1] in "{[" and expected:
        try:
            return json.loads(printed) == json.loads(expected)
        except ValueError:
            return False
    return [line.rstrip() for line in printed.split("\n")] == \
        [line.rstrip() for line in step.reply]


def run_step(bash: Shell, step: Step, url: str) -> None:
    """Run one step; assert the reply the README shows (polling a read, within bounds)."""
    command = step.command.replace(README_URL, url)
    deadline = time.monotonic() + (POLL_FOR_S if READS.search(command) else 0.0)
    while True:
        status, stdout, stderr = bash.run(command)
        if not step.reply or shown(step, stdout, stderr):
            return
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"README line {step.line}: {step.command}\nshows:\n" + "\n".join(step.reply)
                + f"\nprinted (exit {status}):\n{stdout or stderr}")
        time.sleep(POLL_EVERY_S)  # a read polled until the boards' refresh shows a change


def test_walkthrough_starts_with_make_run_which_serves_the_shipped_config() -> None:
    first = walkthrough()[0]
    assert first.command.split("#")[0].strip() == "make run"
    makefile = (ROOT / "Makefile").read_text()
    assert "CONFIG ?= conf/tys.yaml\n" in makefile
    assert "\nrun: venv\n\t$(PY) -m tys_server --config $(CONFIG)\n" in makefile


def test_walkthrough_covers_the_whole_event() -> None:
    """Register with teams, walk, the boards, alias, hidden, disqualify, export, /board,
    erase, purge (issue 15's check): each is a step with a reply shown."""
    commands = [step.command for step in walkthrough() if step.reply]
    assert any("/notification" in step.command for step in walkthrough())  # walk's
    needed = [r"register_username .*\"team\"", r"^walk ", r"username_data",
              r"leaderboard .*\"by\": \"team\"", r"leaderboard .*\"by\": \"domain\"",
              r"leaderboard .*\"date\"", r"profile .*\"alias\"", r"profile .*\"hidden\": true",
              r"/admin/disqualify", r"/admin/requalify", r"/admin/export .*\"date\"",
              r"tys-admin export", r"/board", r"delete_username .*\"erase\": true",
              r"tys-admin erase", r"tys-admin purge"]
    for pattern in needed:
        assert any(re.search(pattern, c) for c in commands), pattern


def test_readme_event_replies_as_shown(server: ServerProcess, shell: Shell,
                                       db: TestDatabase) -> None:
    for step in walkthrough()[1:]:  # the first, make run, is the server fixture
        run_step(shell, step, server.url)
    assert server.terminate() == 0, server.log()
    # Erased and purged in the database too, after the final flush; alice's walk is there.
    for table in ("distance", "distance_history", "devices"):
        macs = db.query(f"SELECT DISTINCT mac::text FROM {table} ORDER BY 1")
        assert ALICE in [mac for (mac,) in macs], table
        assert not {mac for (mac,) in macs} & set(ERASED), table


def test_reference_examples_reply_as_shown(server: ServerProcess, shell: Shell) -> None:
    text = (ROOT / "README.md").read_text()
    examples = [step for heading in REFERENCE for step in steps(text, heading)]
    assert sum(1 for step in examples if step.reply) >= 28  # the sections still show them
    for step in examples:
        run_step(shell, step, server.url)
