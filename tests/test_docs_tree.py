"""The module tree that README's Development section and docs/architecture.md show.

Both say it is generated from the source; this keeps it so: every package and module
is listed with the first line of its docstring, and nothing gone is left listed.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "tys_server"


def _first_line(path: Path) -> str:
    return (ast.get_docstring(ast.parse(path.read_text())) or "").split("\n")[0]


def _expected() -> set[str]:
    lines = set()
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE)
        if len(relative.parts) == 1:
            lines.add(f"  {path.name:<22}{_first_line(path)}")
        elif path.name == "__init__.py":
            lines.add(f"  {relative.parts[0] + '/':<22}{_first_line(path)}")
        else:
            lines.add(f"    {path.name:<20}{_first_line(path)}")
    return lines


def _shown(doc: Path) -> set[str]:
    text = doc.read_text()
    start = text.index("```\ntys_server/\n") + len("```\ntys_server/\n")
    block = text[start:text.index("```", start)]
    return {line for line in block.splitlines() if re.match(r" +[\w.]+(\.py|/) ", line)
            and line.split()[0] not in ("templates/", "sql/")}


@pytest.mark.parametrize("doc", ["README.md", "docs/architecture.md"])
def test_the_tree_shown_is_the_tree_of_the_source(doc: str) -> None:
    shown, expected = _shown(ROOT / doc), _expected()
    assert (sorted(expected - shown), sorted(shown - expected)) == ([], [])
