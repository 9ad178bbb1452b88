"""Configuration: YAML + TYS_* environment → validated settings, one clear line on error."""

from __future__ import annotations

from pathlib import Path

import pytest

from tys_server.config import ConfigError, env_name, load_settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tys.yaml"
    path.write_text(text)
    return path


def test_shipped_default_is_the_zero_config_setup() -> None:
    settings = load_settings("conf/tys.yaml", environ={})
    assert settings.server.host == "127.0.0.1"
    assert settings.server.port == 8080
    assert settings.database.dsn is None
    assert settings.database.embedded_dir == "var/pgdata"
    assert settings.cmx.hosts == ("test",)
    assert settings.tracking.max_speed_mps == 4.42
    assert settings.tracking.max_moving_angle_deg == 105.0
    assert settings.registration.max_devices_per_user == 1


def test_empty_file_gives_defaults(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, ""), environ={})
    assert settings.database.flush_interval_s == 5.0
    assert settings.registration.wifi_name == "#clus"


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "database:\n  flush_interval_s: 5\n")
    settings = load_settings(path, environ={
        "TYS_DATABASE_FLUSH_INTERVAL_S": "2.5",
        "TYS_AUTH_API_PASSWORD": "1234",
        "TYS_CMX_HOSTS": "cmx1.example.org, cmx2.example.org",
        "TYS_DATABASE_DSN": "postgresql://cmx@db/cmx",
        "TYS_SERVER_XHEADERS": "true",
        "TYS_LEADERBOARD_EXCLUDE_EMAIL_DOMAINS": "cisco.com",
    })
    assert settings.database.flush_interval_s == 2.5
    assert settings.auth.api.password == "1234"  # a numeric secret stays a string
    assert settings.cmx.hosts == ("cmx1.example.org", "cmx2.example.org")
    assert settings.database.dsn == "postgresql://cmx@db/cmx"
    assert settings.server.xheaders is True
    assert settings.leaderboard.exclude_email_domains == ("cisco.com",)


def test_env_names_follow_section_and_key() -> None:
    assert env_name(("auth", "api", "password")) == "TYS_AUTH_API_PASSWORD"
    assert env_name(("database", "dsn")) == "TYS_DATABASE_DSN"


@pytest.mark.parametrize(("text", "environ", "message"), [
    ("server:\n  prot: 80\n", {}, "server.prot: unknown key"),
    ("colour: blue\n", {}, "colour: unknown key"),
    ("database:\n  flush_interval_s: soon\n", {},
     "database.flush_interval_s: expected float, got 'soon'"),
    ("server:\n  port: 70000\n", {}, "server.port: must be 1-65535, got 70000"),
    ("database:\n  flush_interval_s: 0\n", {}, "database.flush_interval_s: must be greater than 0"),
    ("tracking:\n  timezone: Mars/Olympus\n", {}, "tracking.timezone: unknown time zone"),
    ("cmx:\n  hosts: []\n", {}, "cmx.hosts: needs at least one host"),
    ("server:\n  port: true\n", {}, "server.port: expected int, got True"),
    ("logging:\n  level: LOUD\n", {}, "logging.level: must be one of"),
    ("server:\n  tls_cert: /x.pem\n", {}, "server.tls_cert / server.tls_key: set both"),
    ("", {"TYS_SERVER_PORT": "abc"}, "TYS_SERVER_PORT: expected int, got 'abc'"),
    ("auth:\n  api:\n    username: cmx\n    password: change-me-cmx\n", {},
     "auth.api: must differ from auth.notification"),
    ("- a list\n", {}, "config: expected a mapping"),
    ("server: [1, 2\n", {}, "is not valid YAML"),
])
def test_bad_values_stop_with_one_line_naming_the_key(tmp_path: Path, text: str,
                                                      environ: dict[str, str],
                                                      message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(write(tmp_path, text), environ=environ)
    assert message in str(raised.value)
    if "YAML" not in message:
        assert "\n" not in str(raised.value)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(tmp_path / "nope.yaml", environ={})
