"""YAML + environment → typed, validated settings (DESIGN section 4)."""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import types
import typing
import zoneinfo
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

DEFAULT_CONFIG = Path("conf/tys.yaml")
ENV_PREFIX = "TYS_"


class ConfigError(Exception):
    """A configuration problem, described in one line that names the key."""


@dataclasses.dataclass(frozen=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    tls_cert: str | None = None
    tls_key: str | None = None
    xheaders: bool = False
    max_body_bytes: int = 4 * 1024 * 1024
    body_timeout_s: float = 30.0
    idle_connection_timeout_s: float = 120.0
    drain_timeout_s: float = 10.0


@dataclasses.dataclass(frozen=True)
class LoggingSettings:
    file: str | None = None
    level: str = "INFO"


@dataclasses.dataclass(frozen=True)
class Credentials:
    username: str = ""
    password: str = ""


@dataclasses.dataclass(frozen=True)
class AuthSettings:
    notification: Credentials = Credentials("cmx", "change-me-cmx")
    api: Credentials = Credentials("frontend", "change-me-api")


@dataclasses.dataclass(frozen=True)
class DatabaseSettings:
    dsn: str | None = None
    embedded_dir: str = "var/pgdata"
    flush_interval_s: float = 5.0
    unlogged: bool = False
    statement_timeout_s: float = 10.0
    connect_timeout_s: float = 3.0
    pool_size: int = 4


@dataclasses.dataclass(frozen=True)
class CmxSettings:
    hosts: tuple[str, ...] = ("test",)
    username: str = ""
    password: str = ""
    ip2mac_url: str = "https://{host}/api/location/v2/clients?ipAddress={ip}"
    timeout_s: float = 3.0
    movement_distance_ft: float = 50.0
    mac_hash_key: str = ""
    verify_tls: bool = True
    ca_file: str | None = None
    max_clients: int = 10


@dataclasses.dataclass(frozen=True)
class RegistrationSettings:
    max_devices_per_user: int = 1
    email_domain: str = "cmxtrackyoursteps.com"
    wifi_name: str = "#clus"


@dataclasses.dataclass(frozen=True)
class TrackingSettings:
    max_speed_mps: float = 4.42
    max_moving_angle_deg: float = 105.0
    timezone: str = "UTC"
    step_length_ft: float = 2.5


@dataclasses.dataclass(frozen=True)
class LeaderboardSettings:
    exclude_email_domains: tuple[str, ...] = ()
    refresh_interval_s: float = 0.5


@dataclasses.dataclass(frozen=True)
class Settings:
    server: ServerSettings = ServerSettings()
    logging: LoggingSettings = LoggingSettings()
    auth: AuthSettings = AuthSettings()
    database: DatabaseSettings = DatabaseSettings()
    cmx: CmxSettings = CmxSettings()
    registration: RegistrationSettings = RegistrationSettings()
    tracking: TrackingSettings = TrackingSettings()
    leaderboard: LeaderboardSettings = LeaderboardSettings()


# Keys whose value must be positive; a zero or negative value is a config error.
_POSITIVE = {
    "server.port", "server.max_body_bytes", "server.body_timeout_s",
    "server.idle_connection_timeout_s", "server.drain_timeout_s",
    "database.flush_interval_s", "database.statement_timeout_s",
    "database.connect_timeout_s", "database.pool_size", "cmx.timeout_s",
    "cmx.movement_distance_ft", "cmx.max_clients", "registration.max_devices_per_user",
    "tracking.max_speed_mps", "tracking.step_length_ft", "leaderboard.refresh_interval_s",
}
_LOG_LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}
# The example passwords of conf/tys.yaml (and the defaults): good for loopback only.
SHIPPED_PASSWORDS = frozenset({"change-me-cmx", "change-me-api"})


def load_settings(path: Path | str | None = None,
                  environ: Mapping[str, str] | None = None) -> Settings:
    """Read the YAML file (if any), apply TYS_* overrides, validate."""
    raw: Any = {}
    if path is not None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
        if raw is None:
            raw = {}
    settings = _build(Settings, raw, "")
    settings = _apply_environment(settings, os.environ if environ is None else environ)
    _validate(settings)
    return settings


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _build(cls: type, raw: Any, prefix: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{prefix or 'config'}: expected a mapping, got {_show(raw)}")
    hints = _hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in names:
            where = f"{prefix}{key}"
            raise ConfigError(f"{where}: unknown key")
    values = {}
    for name in names & raw.keys():
        values[name] = _convert(hints[name], raw[name], f"{prefix}{name}")
    return cls(**values)


def _convert(kind: Any, value: Any, key: str) -> Any:
    if dataclasses.is_dataclass(kind):
        return _build(kind, value if value is not None else {}, key + ".")
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(kind) if a is not type(None)]
        if value is None:
            return None
        return _convert(options[0], value, key)
    if origin is tuple:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list, got {_show(value)}")
        return tuple(_convert(str, item, f"{key}[{i}]") for i, item in enumerate(value))
    if kind is bool:
        if isinstance(value, bool):
            return value
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif kind is str:
        if isinstance(value, str):
            return value
    raise ConfigError(f"{key}: expected {kind.__name__}, got {_show(value)}")


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _leaves(cls: type, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    out = []
    for name, kind in _hints(cls).items():
        if dataclasses.is_dataclass(kind):
            out.extend(_leaves(kind, path + (name,)))
        else:
            out.append((path + (name,), kind))
    return out


def env_name(path: tuple[str, ...]) -> str:
    """TYS_<SECTION>_<KEY>, e.g. ('auth', 'api', 'password') → TYS_AUTH_API_PASSWORD."""
    return ENV_PREFIX + "_".join(path).upper()


def _apply_environment(settings: Settings, environ: Mapping[str, str]) -> Settings:
    for path, kind in _leaves(Settings):
        name = env_name(path)
        if name not in environ:
            continue
        value = _parse_env(kind, environ[name], name)
        settings = _replace_path(settings, path, value)
    return settings


def _parse_env(kind: Any, text: str, name: str) -> Any:
    try:
        parsed = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError:
        parsed = text
    base = [a for a in typing.get_args(kind) if a is not type(None)]
    target = base[0] if base else kind
    if target is str and not isinstance(parsed, str):
        parsed = text  # a password like "1234" stays a string
    if typing.get_origin(kind) is tuple and isinstance(parsed, str):
        parsed = [part.strip() for part in parsed.split(",") if part.strip()]
    if parsed is None and target is not str and not base:
        raise ConfigError(f"{name}: empty value")
    return _convert(kind, parsed, name)


def _replace_path(obj: Any, path: tuple[str, ...], value: Any) -> Any:
    if len(path) == 1:
        return dataclasses.replace(obj, **{path[0]: value})
    child = getattr(obj, path[0])
    return dataclasses.replace(obj, **{path[0]: _replace_path(child, path[1:], value)})


def _validate(settings: Settings) -> None:
    for path, _kind in _leaves(Settings):
        key = ".".join(path)
        value: Any = settings
        for part in path:
            value = getattr(value, part)
        if key in _POSITIVE and not value > 0:
            raise ConfigError(f"{key}: must be greater than 0, got {value!r}")
    if not 1 <= settings.server.port <= 65535:
        raise ConfigError(f"server.port: must be 1-65535, got {settings.server.port}")
    if settings.logging.level.upper() not in _LOG_LEVELS:
        raise ConfigError(f"logging.level: must be one of {sorted(_LOG_LEVELS)}, "
                          f"got {settings.logging.level!r}")
    if not 0 < settings.tracking.max_moving_angle_deg <= 180:
        raise ConfigError("tracking.max_moving_angle_deg: must be in (0, 180], "
                          f"got {settings.tracking.max_moving_angle_deg}")
    try:
        zoneinfo.ZoneInfo(settings.tracking.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"tracking.timezone: unknown time zone "
                          f"{settings.tracking.timezone!r}") from None
    if not settings.cmx.hosts:
        raise ConfigError("cmx.hosts: needs at least one host (or 'test')")
    _validate_ip2mac_url(settings.cmx.ip2mac_url)
    if bool(settings.server.tls_cert) != bool(settings.server.tls_key):
        raise ConfigError("server.tls_cert / server.tls_key: set both or neither")
    for section in ("notification", "api"):
        creds = getattr(settings.auth, section)
        if not creds.username:
            raise ConfigError(f"auth.{section}.username: required")
    if settings.auth.notification == settings.auth.api:
        raise ConfigError("auth.api: must differ from auth.notification "
                          "(the CMX pair may not call the API)")
    if not is_loopback(settings.server.host):
        for section in ("notification", "api"):
            password = getattr(settings.auth, section).password
            if not password or password in SHIPPED_PASSWORDS:
                what = "empty" if not password else "the shipped example"
                raise ConfigError(
                    f"auth.{section}.password: {what}, refused with server.host "
                    f"{settings.server.host!r} (not loopback); set "
                    f"{env_name(('auth', section, 'password'))} to a secret of your own")


def _validate_ip2mac_url(url: str) -> None:
    if "{host}" not in url or "{ip}" not in url:
        raise ConfigError(f"cmx.ip2mac_url: must contain {{host}} and {{ip}}, got {url!r}")
    try:
        url.format(host="cmx.example", ip="10.0.0.1")
    except (KeyError, IndexError, ValueError):
        raise ConfigError("cmx.ip2mac_url: only {host} and {ip} may appear in braces, "
                          f"got {url!r}") from None


def is_loopback(host: str) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1; "" and 0.0.0.0 mean every interface."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
