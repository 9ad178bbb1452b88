"""The settings of TYS as typed, frozen dataclasses, with their defaults (DESIGN section 4).

One dataclass per YAML section; a field's type is what the loader (config.load) accepts
for it. Nothing here reads a file or the environment.
"""

from __future__ import annotations

import dataclasses


class ConfigError(Exception):
    """A configuration problem, described in one line that names the key."""


@dataclasses.dataclass(frozen=True)
class ServerSettings:
    """Where and how the HTTP server listens."""

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
    """Log destination and level."""

    file: str | None = None
    level: str = "INFO"


@dataclasses.dataclass(frozen=True)
class Credentials:
    """One HTTP Basic pair."""

    username: str = ""
    password: str = ""


@dataclasses.dataclass(frozen=True)
class AuthSettings:
    """The Basic pairs of CMX notifications, the front-end API and monitoring."""

    notification: Credentials = Credentials("cmx", "change-me-cmx")
    api: Credentials = Credentials("frontend", "change-me-api")
    # /metrics and /status: a monitoring password cannot call the API (DESIGN 13).
    monitor: Credentials = Credentials("monitor", "change-me-monitor")


@dataclasses.dataclass(frozen=True)
class DatabaseSettings:
    """PostgreSQL, the flush, and where a shutdown without the database spills."""

    dsn: str | None = None
    embedded_dir: str = "var/pgdata"
    flush_interval_s: float = 5.0
    unlogged: bool = False
    statement_timeout_s: float = 10.0
    connect_timeout_s: float = 3.0
    pool_size: int = 4
    spill_dir: str = "var/spill"


@dataclasses.dataclass(frozen=True)
class CmxSettings:
    """The CMX location API used for IP→MAC look-ups (DESIGN section 9)."""

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
    # A host that just failed is skipped this long while another one answers.
    down_for_s: float = 30.0


@dataclasses.dataclass(frozen=True)
class RegistrationSettings:
    """Who may register how many devices, and the texts that name the venue."""

    max_devices_per_user: int = 1
    email_domain: str = "cmxtrackyoursteps.com"
    wifi_name: str = "#clus"


@dataclasses.dataclass(frozen=True)
class TrackingSettings:
    """The distance filter, event days and the bound on tracked devices."""

    max_speed_mps: float = 4.42
    max_moving_angle_deg: float = 105.0
    timezone: str = "UTC"
    step_length_ft: float = 2.5
    max_devices: int = 2_000_000


@dataclasses.dataclass(frozen=True)
class LeaderboardSettings:
    """Who stays off the boards, and how often they move."""

    exclude_email_domains: tuple[str, ...] = ()
    refresh_interval_s: float = 0.5


@dataclasses.dataclass(frozen=True)
class Settings:
    """Every setting of TYS."""

    server: ServerSettings = ServerSettings()
    logging: LoggingSettings = LoggingSettings()
    auth: AuthSettings = AuthSettings()
    database: DatabaseSettings = DatabaseSettings()
    cmx: CmxSettings = CmxSettings()
    registration: RegistrationSettings = RegistrationSettings()
    tracking: TrackingSettings = TrackingSettings()
    leaderboard: LeaderboardSettings = LeaderboardSettings()
