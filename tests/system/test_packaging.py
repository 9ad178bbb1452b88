"""`pip install .` ships what the server reads at run time: SQL, templates, openapi.yaml."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
import zipfile

import pytest

from tests.support.procserver import ROOT

pytestmark = pytest.mark.slow

# Read through importlib.resources (store/database.py, web/status.py, web/ops.py).
PACKAGE_DATA = {
    "tys_server/store/sql": ("schema.sql", "logged.sql", "unlogged.sql"),
    "tys_server/web/templates": ("status.html",),
    "tys_server/web": ("openapi.yaml",),
}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    """The wheel pip builds, from a copy of the source (setuptools writes build/ in-tree)."""
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "tys_server", source / "tys_server",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = tmp_path_factory.mktemp("wheel")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--disable-pip-version-check", "--quiet", "--wheel-dir", str(out), str(source)],
        capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    [built] = out.glob("tys_server-*.whl")
    return zipfile.ZipFile(built)


def test_wheel_carries_the_sql_templates_and_openapi(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    for folder, files in PACKAGE_DATA.items():
        for file in files:
            path = f"{folder}/{file}"
            assert path in names, path
            # The packaged file is the one in the tree (sql/ and docs/ link to them).
            assert wheel.read(path) == (ROOT / path).read_bytes(), path


def test_wheel_carries_every_module_and_no_tests(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    modules = {str(p.relative_to(ROOT)) for p in (ROOT / "tys_server").rglob("*.py")}
    assert modules <= names
    assert not [name for name in names if name.startswith(("tests/", "tools/"))]


def test_wheel_declares_the_tys_server_and_tys_admin_console_scripts(
        wheel: zipfile.ZipFile) -> None:
    [entry_points] = [n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt")]
    parser = configparser.ConfigParser()
    parser.read_string(wheel.read(entry_points).decode())
    assert dict(parser["console_scripts"]) == {"tys-server": "tys_server.server:main",
                                               "tys-admin": "tys_server.admin.cli:main"}
