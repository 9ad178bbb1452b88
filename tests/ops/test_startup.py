"""ops/startup: the one line of a failed start-up, with every secret masked."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import with_overrides
from tys_server.config import Credentials, Settings
from tys_server.ops.startup import (
    StartupError,
    check_writable_dir,
    embedded_failure,
    failure_line,
    last_words,
    scrub,
)

SECRETS = {"auth.api": Credentials("frontend", "api-s3cret"),
           "auth.monitor": Credentials("monitor", "mon-s3cret"),
           "cmx.password": "cmx-s3cret", "cmx.mac_hash_key": "hash-s3cret",
           "server.tls_cert": "/etc/tys/cert.pem", "server.tls_key": "/etc/tys/key.pem"}


def settings_with(dsn: str | None = None) -> Settings:
    return with_overrides(Settings(), **{**SECRETS, "database.dsn": dsn})


def test_every_secret_setting_is_masked_and_file_paths_are_kept() -> None:
    settings = settings_with("host=db password=dsn-s3cret dbname=tys")
    text = ("api-s3cret mon-s3cret cmx-s3cret hash-s3cret dsn-s3cret in "
            "host=db password=dsn-s3cret dbname=tys; files /etc/tys/key.pem /etc/tys/cert.pem")
    assert scrub(text, settings) == (
        "*** *** *** *** *** in ***; files /etc/tys/key.pem /etc/tys/cert.pem")


@pytest.mark.parametrize("dsn", ["postgresql://tys:dsn-s3cret@db:5432/tys",
                                 "host=db password='dsn-s3cret' user=tys",
                                 "host=db password = dsn-s3cret user=tys"])
def test_the_dsn_password_is_masked_wherever_it_appears(dsn: str) -> None:
    line = scrub('FATAL: password "dsn-s3cret" for user tys is wrong', settings_with(dsn))
    assert line == 'FATAL: password "***" for user tys is wrong'


def test_a_dsn_libpq_cannot_read_is_never_quoted() -> None:
    dsn = "postgresql://tys:dsn s3cret@[db/tys"
    text = f'invalid dsn: end of string reached in URI: "{dsn}"'
    assert scrub(text, settings_with(dsn)) == (
        "invalid dsn: end of string reached in URI ... "
        "(value not shown: database.dsn is a secret)")


def test_failure_line_is_one_line_whatever_the_error_says() -> None:
    settings = settings_with()
    assert failure_line(StartupError("TLS", "bad\nfile"), settings) == "tys_server: TLS: bad file"
    assert failure_line(ValueError("bad api-s3cret\n\tHINT: more"), settings) == (
        "tys_server: start-up failed: ValueError: bad ***")
    missing = FileNotFoundError(2, "No such file or directory", "/var/spill/x")
    assert failure_line(missing, settings, doing="stopping") == (
        "tys_server: stopping: /var/spill/x: No such file or directory")


def test_writable_dir_is_made_when_missing_and_refused_under_a_file(tmp_path: Path) -> None:
    check_writable_dir("database.spill_dir", tmp_path / "a" / "b")
    assert (tmp_path / "a" / "b").is_dir()
    assert list((tmp_path / "a" / "b").iterdir()) == []  # the probe file is gone
    (tmp_path / "file").write_text("")
    with pytest.raises(StartupError) as refused:
        check_writable_dir("database.spill_dir", tmp_path / "file" / "spill")
    assert str(refused.value) == (
        f"database.spill_dir {tmp_path / 'file' / 'spill'}: Not a directory")


def test_the_server_log_says_its_last_fatal_line_else_its_last_line(tmp_path: Path) -> None:
    log = tmp_path / "log"
    assert last_words(log) is None
    log.write_text("LOG:  starting\nFATAL:  lock file exists\nHINT:  another server?\n")
    assert last_words(log) == "lock file exists"
    log.write_text('postgres: could not access "postgresql.conf"\n\n')
    assert last_words(log) == 'postgres: could not access "postgresql.conf"'
    failure = embedded_failure(subprocess.CalledProcessError(1, ["pg_ctl"]), tmp_path)
    assert str(failure) == (f'embedded PostgreSQL in {tmp_path}: pg_ctl exited 1: postgres: '
                            f'could not access "postgresql.conf" (log: {log})')
