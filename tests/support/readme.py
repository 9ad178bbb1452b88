"""The README's walkthrough as steps: each command it shows, and the reply under it.

A section's code blocks are read in order. A line that starts a command (curl, walk,
tys-admin, export, make, NAME=..., a function definition) begins a step; a command goes on
over lines while a single quote is open, a line ends in a backslash, or a function's body
is not closed; the lines under it, up to the next command, are its reply. Blank lines and
comment lines are neither. The steps run in one bash, as a person pastes them into a
terminal (variables and functions carry on), through ``Shell``.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

FUNCTION = re.compile(r"[A-Za-z_][\w-]*\(\) *\{")
COMMAND = re.compile(rf"(curl |walk |tys-admin[ (]|export |make |{FUNCTION.pattern}|[A-Z_]+=)")
FENCE = re.compile(r"^```(\w*)\s*$")


@dataclass
class Step:
    """One command of the README and the reply it shows (no lines: none shown)."""

    line: int  # where the command starts in the README, 1-based
    command: str
    reply: list[str] = field(default_factory=list)


def section(text: str, heading: str) -> tuple[int, list[str]]:
    """The lines of the ``## heading`` section, and the README line number of its first."""
    lines = text.splitlines()
    start = lines.index(f"## {heading}") + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("## ")), len(lines))
    return start + 1, lines[start:end]


def blocks(first_line: int, lines: list[str]) -> list[tuple[int, list[str]]]:
    """The fenced code blocks among lines: (README line of each block's first line, lines)."""
    found: list[tuple[int, list[str]]] = []
    inside: list[str] | None = None
    for i, line in enumerate(lines):
        if FENCE.match(line):
            if inside is None:
                inside, start = [], first_line + i + 1
            else:
                found.append((start, inside))
                inside = None
        elif inside is not None:
            inside.append(line)
    return found


def _open(command: str) -> bool:
    """Whether a command goes on over the next line."""
    if FUNCTION.match(command):
        last = re.sub(r"\s#.*$", "", command.rsplit("\n", 1)[-1])  # a comment after it
        return not last.rstrip().endswith("}")
    return _quote_open(command) or command.endswith("\\")


def _quote_open(command: str) -> bool:
    """Whether a quote is still open at the end (a comment's quotes do not count)."""
    quote, comment = "", False
    for i, char in enumerate(command):
        if comment:
            comment = char != "\n"
        elif quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or command[i - 1].isspace()):
            comment = True
    return bool(quote)


def steps(text: str, heading: str) -> list[Step]:
    """The section's commands, in order, each with the reply shown under it."""
    found: list[Step] = []
    for start, block in blocks(*section(text, heading)):
        current: Step | None = None
        for i, line in enumerate(block):
            if current is not None and _open(current.command):
                current.command += "\n" + line
            elif COMMAND.match(line):
                current = Step(start + i, line)
                found.append(current)
            elif line.strip() and not line.lstrip().startswith("#"):
                if current is None:
                    raise ValueError(f"README line {start + i}: a reply without a command")
                current.reply.append(line)
    return found


class Shell:
    """One bash process, fed one command at a time; its output kept per command."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="tys-readme-")
        self._out = Path(self._dir.name) / "out"
        self._err = Path(self._dir.name) / "err"
        self.proc = subprocess.Popen(["bash", "--norc", "--noprofile"], cwd=cwd, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def run(self, command: str) -> tuple[int, str, str]:
        """(exit status, stdout, stderr) of command, run in this shell."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"{{\n{command}\n}} >{self._out} 2>{self._err}\n"
                              f"echo \"done $?\"\n")
        self.proc.stdin.flush()
        status = self.proc.stdout.readline()
        if not status.startswith("done "):
            raise AssertionError(f"bash ended while running:\n{command}")
        return (int(status.split()[1]), self._out.read_text(errors="replace"),
                self._err.read_text(errors="replace"))

    def close(self) -> None:
        """End the shell, and remove its files."""
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._dir.cleanup()
