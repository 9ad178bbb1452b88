"""conf/tys.example.yaml: loads, and documents every setting with its config.ini origin."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml

from tys_server.config import ConfigError, Settings, load_settings

EXAMPLE = Path(__file__).resolve().parents[1] / "conf" / "tys.example.yaml"

# DESIGN section 4: every key of the original config.ini has a home.
CONFIG_INI_KEYS = [
    "LOGFILE", "LOG_LEVEL", "NOTIFICATION_USER", "NOTIFICATION_PASSWORD", "API_USER_PASSWORD",
    "HOST", "DBNAME", "DB_USERNAME", "DB_PASSWORD", "CMX_USERNAME", "CMX_PASSWORD",
    "CMX_IP2MAC_URL", "CMX_HOST", "CMX_TIMEOUT", "CMX_MOVEMENT_DISTANCE", "CMX_MAC_HASH",
    "MAX_REGISTERED_DEVICES", "MAX_MTRS_SEC", "MAX_MOVING_ANGLE", "APP_SECRET_KEY",
]


def leaf_keys(cls: type, prefix: str = "") -> set[str]:
    """Dotted names of every leaf setting of a settings dataclass."""
    keys = set()
    for name, kind in typing.get_type_hints(cls).items():
        if dataclasses.is_dataclass(kind):
            keys |= leaf_keys(kind, f"{prefix}{name}.")  # type: ignore[arg-type]
        else:
            keys.add(prefix + name)
    return keys


def yaml_leaves(node: Any, prefix: str = "") -> set[str]:
    if not isinstance(node, dict):
        return {prefix.rstrip(".")}
    keys = set()
    for name, value in node.items():
        keys |= yaml_leaves(value, f"{prefix}{name}.")
    return keys


# What /etc/tys/tys.env holds in production (docs/deployment.md).
TYS_ENV = {
    "TYS_DATABASE_DSN": "postgresql://cmx:s3cret@127.0.0.1:5432/cmx",
    "TYS_AUTH_NOTIFICATION_PASSWORD": "cmx-secret",
    "TYS_AUTH_API_PASSWORD": "1234",
    "TYS_AUTH_MONITOR_PASSWORD": "monitor #1",
    "TYS_AUTH_ADMIN_PASSWORD": "admin secret",
    "TYS_CMX_PASSWORD": "api-secret",
    "TYS_CMX_MAC_HASH_KEY": "listening",
}


def test_example_loads_as_a_production_config_with_the_secrets_of_tys_env() -> None:
    settings = load_settings(EXAMPLE, environ=TYS_ENV)
    assert settings.database.dsn == "postgresql://cmx:s3cret@127.0.0.1:5432/cmx"
    assert settings.auth.api.password == "1234"  # stays a string
    assert settings.auth.monitor.password == "monitor #1"  # verbatim, "#" and all
    assert settings.cmx.down_for_s == 30.0
    assert settings.cmx.mac_hash_key == "listening"
    assert "test" not in settings.cmx.hosts
    assert settings.server.tls_cert and settings.server.tls_key
    assert settings.tracking.timezone != "UTC"


@pytest.mark.parametrize("missing", [
    "TYS_AUTH_NOTIFICATION_PASSWORD", "TYS_AUTH_API_PASSWORD", "TYS_AUTH_MONITOR_PASSWORD",
    "TYS_AUTH_ADMIN_PASSWORD"])
def test_example_without_a_secret_refuses_to_start(missing: str) -> None:
    environ = {name: value for name, value in TYS_ENV.items() if name != missing}
    with pytest.raises(ConfigError, match=missing):
        load_settings(EXAMPLE, environ=environ)


def test_example_dsn_carries_no_password() -> None:
    raw = yaml.safe_load(EXAMPLE.read_text())
    assert raw["database"]["dsn"] == "postgresql://cmx@127.0.0.1:5432/cmx"


def test_example_sets_every_key_of_the_settings() -> None:
    assert yaml_leaves(yaml.safe_load(EXAMPLE.read_text())) == leaf_keys(Settings)


def test_example_names_every_config_ini_key() -> None:
    text = EXAMPLE.read_text()
    missing = [key for key in CONFIG_INI_KEYS if key not in text]
    assert not missing


def test_example_turns_each_feed_on_with_its_secrets_from_tys_env() -> None:
    environ = {**TYS_ENV, "TYS_FEEDS_SPACES_FIREHOSE_ENABLED": "true",
               "TYS_FEEDS_SPACES_FIREHOSE_API_KEY": "spaces-key",
               "TYS_FEEDS_MERAKI_ENABLED": "true", "TYS_FEEDS_MERAKI_SECRET": "meraki-secret",
               "TYS_FEEDS_MERAKI_VALIDATOR": "validator-1"}
    settings = load_settings(EXAMPLE, environ=environ)
    assert settings.enabled_feeds() == ("cmx", "spaces_firehose", "meraki")
    assert settings.feeds.spaces_firehose.api_key == "spaces-key"
    assert settings.feeds.meraki.secret == "meraki-secret"
    raw = yaml.safe_load(EXAMPLE.read_text())["feeds"]
    assert raw["spaces_firehose"]["api_key"] == raw["meraki"]["secret"] == ""  # not in the file
