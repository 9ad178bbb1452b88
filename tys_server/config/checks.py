"""Checks across settings (ranges, pairs, loopback-only defaults), and secrets kept out of errors.

Every error is one line naming the key and what is wrong; the value is shown only when the
key is not a secret (see ``is_secret``).
"""

from __future__ import annotations

import ipaddress
import zoneinfo
from typing import Any
from urllib.parse import urlsplit

from tys_server.config.settings import FILTER_MODES, ConfigError, Settings

# Keys whose value must be positive; a zero or negative value is a config error.
_POSITIVE = (
    "server.port", "server.max_body_bytes", "server.body_timeout_s",
    "server.idle_connection_timeout_s", "server.drain_timeout_s",
    "database.flush_interval_s", "database.statement_timeout_s",
    "database.connect_timeout_s", "database.pool_size", "cmx.timeout_s",
    "cmx.movement_distance_ft", "cmx.max_clients", "registration.max_devices_per_user",
    "tracking.max_speed_mps", "tracking.step_length_ft", "tracking.max_devices",
    "tracking.settle_s",
    "leaderboard.refresh_interval_s", "lookup.observed_ttl_s", "feeds.cmx.quiet_after_s",
    "feeds.spaces_firehose.stall_timeout_s", "feeds.spaces_firehose.quiet_after_s",
    "feeds.meraki.max_variance_m", "feeds.meraki.max_body_bytes", "feeds.meraki.quiet_after_s",
)
# Keys that may be 0: cmx.down_for_s 0 asks every host on every look-up; a gate of 0
# passes every fix on; no resume overlap trusts the cursor to the millisecond; a minimum
# speed of 0 takes no leg as a stop for its speed; a stop extension of 0 credits a
# stopped walker's last leg only.
_STOP_EXT_SHARES = ("tracking.stop_ext_share", "tracking.cmx_stop_ext_share")
_NOT_NEGATIVE = ("cmx.down_for_s", "feeds.spaces_firehose.resume_overlap_s",
                 "tracking.gate_min_ft", "tracking.min_speed_mps", *_STOP_EXT_SHARES)
# Keys that may be null (None), else positive or at least 0 as above.
_POSITIVE_OR_NULL = ("tracking.max_uncertainty_ft",)
_NOT_NEGATIVE_OR_NULL = ("tracking.gate_ft", "privacy.retain_unregistered_days")
# Each feed's secrets: required when the feed is enabled (a feed without them can only fail).
_FEED_SECRETS = {"spaces_firehose": ("api_key",), "meraki": ("secret", "validator")}
_COORDINATE_UNITS = ("FEET", "METERS")
# Paths of TYS's own routes, which feeds.meraki.path may not shadow.
_OWN_PATHS = ("/notification", "/live", "/healthz", "/metrics", "/status", "/openapi.yaml",
              "/board", "/admin")
# board.title: one line a 1080p screen can show in large type.
BOARD_TITLE_MAX_CHARS = 80
_LOG_LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}
# The Basic pairs: each must differ from the others, none may be empty off loopback.
_PAIRS = ("notification", "api", "monitor", "admin")
# The example passwords of conf/tys.yaml (and the defaults): good for loopback only.
SHIPPED_PASSWORDS = frozenset({"change-me-cmx", "change-me-api", "change-me-monitor",
                               "change-me-admin"})
# A key whose last part holds one of these words is a secret: its value is never shown.
# A DSN may carry the database password.
# feeds.meraki.path: an unguessable path is what keeps strangers off the receiver.
_SECRET_WORDS = ("password", "secret", "key", "validator", "token", "dsn", "path")


def is_secret(key: str) -> bool:
    """True when the value of this dotted key (or TYS_* name) must never be printed."""
    last = key.rstrip(".").rsplit(".", 1)[-1].lower()
    return any(word in last for word in _SECRET_WORDS)


def describe(key: str, value: Any) -> str:
    """The value for an error line: its repr, or only its type when the key is a secret."""
    if is_secret(key):
        return f"{type(value).__name__} (value not shown: {key.rstrip('.')} is a secret)"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _value(settings: Settings, key: str) -> Any:
    value: Any = settings
    for part in key.split("."):
        value = getattr(value, part)
    return value


def validate(settings: Settings) -> None:
    """Raise ConfigError for the first setting that is out of range or inconsistent."""
    for key in _POSITIVE:
        if not _value(settings, key) > 0:
            raise ConfigError(f"{key}: must be greater than 0, got {_value(settings, key)!r}")
    for key in _NOT_NEGATIVE:
        if _value(settings, key) < 0:
            raise ConfigError(f"{key}: must be 0 or more, got {_value(settings, key)!r}")
    for key in _POSITIVE_OR_NULL:
        value = _value(settings, key)
        if value is not None and not value > 0:
            raise ConfigError(f"{key}: must be greater than 0 (or null), got {value!r}")
    for key in _NOT_NEGATIVE_OR_NULL:
        value = _value(settings, key)
        if value is not None and value < 0:
            raise ConfigError(f"{key}: must be 0 or more (or null), got {value!r}")
    if not 1 <= settings.server.port <= 65535:
        raise ConfigError(f"server.port: must be 1-65535, got {settings.server.port}")
    if settings.logging.level.upper() not in _LOG_LEVELS:
        raise ConfigError(f"logging.level: must be one of {sorted(_LOG_LEVELS)}, "
                          f"got {settings.logging.level!r}")
    if not 0 < settings.tracking.max_moving_angle_deg <= 180:
        raise ConfigError("tracking.max_moving_angle_deg: must be in (0, 180], "
                          f"got {settings.tracking.max_moving_angle_deg}")
    if settings.tracking.filter not in FILTER_MODES:
        raise ConfigError(f"tracking.filter: must be one of {', '.join(FILTER_MODES)}, "
                          f"got {settings.tracking.filter!r}")
    for key in _STOP_EXT_SHARES:
        share = getattr(settings.tracking, key.split(".", 1)[1])
        if share > 1:
            raise ConfigError(f"{key}: must be at most 1 (a share of the trigger distance), "
                              f"got {share}")
    try:
        zoneinfo.ZoneInfo(settings.tracking.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"tracking.timezone: unknown time zone "
                          f"{settings.tracking.timezone!r}") from None
    _check_ip2mac_url(settings.cmx.ip2mac_url)
    if bool(settings.server.tls_cert) != bool(settings.server.tls_key):
        raise ConfigError("server.tls_cert / server.tls_key: set both or neither")
    _check_pairs(settings)
    _check_feeds(settings)
    _check_board_title(settings.board.title)


def _check_board_title(title: str) -> None:
    """A title the screen can show: one line, not blank, not too long for large type."""
    if not title.strip() or not title.isprintable():
        raise ConfigError(f"board.title: must be printable text, not blank, got {title!r}")
    if len(title) > BOARD_TITLE_MAX_CHARS:
        raise ConfigError(f"board.title: at most {BOARD_TITLE_MAX_CHARS} characters, "
                          f"got {len(title)}")


def _check_feeds(settings: Settings) -> None:
    """An enabled feed has its secrets; the Firehose URL, unit and the Meraki path are sane."""
    for feed, secrets in _FEED_SECRETS.items():
        if not getattr(settings.feeds, feed).enabled:
            continue
        for name in secrets:
            if not getattr(getattr(settings.feeds, feed), name):
                key = f"feeds.{feed}.{name}"
                raise ConfigError(f"{key}: required with feeds.{feed}.enabled; set "
                                  f"TYS_{key.replace('.', '_').upper()}")
    firehose = settings.feeds.spaces_firehose
    if firehose.coordinate_unit.strip().upper() not in _COORDINATE_UNITS:
        raise ConfigError("feeds.spaces_firehose.coordinate_unit: must be FEET or METERS, "
                          f"got {firehose.coordinate_unit!r}")
    parts = urlsplit(firehose.url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError("feeds.spaces_firehose.url: must be an http:// or https:// URL, "
                          f"got {firehose.url!r}")
    path = settings.feeds.meraki.path.rstrip("/")
    # The value is not shown: an unguessable path is the receiver's first secret.
    if not path.startswith("/") or any(c in path for c in "?#% \t\r\n"):
        raise ConfigError("feeds.meraki.path: must be a path below / without ?, #, % or "
                          "spaces (value not shown: it may be unguessable on purpose)")
    for own in _OWN_PATHS:
        if path == own or path.startswith(own + "/"):
            raise ConfigError(f"feeds.meraki.path: must not be {own} or below it "
                              "(a route of TYS)")


def _check_pairs(settings: Settings) -> None:
    auth = settings.auth
    for index, section in enumerate(_PAIRS):
        creds = getattr(auth, section)
        if not creds.username:
            raise ConfigError(f"auth.{section}.username: required")
        for earlier in _PAIRS[:index]:
            if creds == getattr(auth, earlier):
                raise ConfigError(f"auth.{section}: must differ from auth.{earlier} "
                                  "(one pair may not do the other's job)")
    if is_loopback(settings.server.host):
        return
    for section in _PAIRS:
        password = getattr(auth, section).password
        if not password or password in SHIPPED_PASSWORDS:
            what = "empty" if not password else "the shipped example"
            raise ConfigError(
                f"auth.{section}.password: {what}, refused with server.host "
                f"{settings.server.host!r} (not loopback); set "
                f"TYS_AUTH_{section.upper()}_PASSWORD to a secret of your own")


def _check_ip2mac_url(url: str) -> None:
    if "{host}" not in url or "{ip}" not in url:
        raise ConfigError(f"cmx.ip2mac_url: must contain {{host}} and {{ip}}, got {url!r}")
    try:
        example = url.format(host="cmx.example", ip="10.0.0.1")
    except (KeyError, IndexError, ValueError, AttributeError, TypeError):
        raise ConfigError("cmx.ip2mac_url: only {host} and {ip} may appear in braces, "
                          f"got {url!r}") from None
    parts = urlsplit(example)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"cmx.ip2mac_url: must be an http:// or https:// URL, got {url!r}")


def is_loopback(host: str) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1; "" and 0.0.0.0 mean every interface."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
