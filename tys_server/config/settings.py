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
    """The Basic pairs of CMX notifications, the front-end API, monitoring and administration."""

    notification: Credentials = Credentials("cmx", "change-me-cmx")
    api: Credentials = Credentials("frontend", "change-me-api")
    # /metrics and /status: a monitoring password cannot call the API (DESIGN 13).
    monitor: Credentials = Credentials("monitor", "change-me-monitor")
    # /admin/* and tys-admin: exports with e-mails, disqualify, erase, purge (DESIGN 15).
    admin: Credentials = Credentials("admin", "change-me-admin")


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


# tracking.filter: DESIGN 6 + 12.1 as first shipped, or the filter of docs/accuracy.md.
FILTER_MODES = ("classic", "adaptive")


@dataclasses.dataclass(frozen=True)
class TrackingSettings:
    """The distance filter, event days and the bound on tracked devices."""

    max_speed_mps: float = 4.42
    max_moving_angle_deg: float = 105.0
    timezone: str = "UTC"
    step_length_ft: float = 2.5
    max_devices: int = 2_000_000
    filter: str = "adaptive"  # FILTER_MODES (docs/accuracy.md)
    # The gate of feeds without a movement trigger (DESIGN 12.1): None → the CMX trigger
    # distance, cmx.movement_distance_ft (Settings.gate_ft() reads it). The classic gate;
    # the adaptive gate's maximum.
    gate_ft: float | None = None
    gate_min_ft: float = 30.0  # the adaptive gate's minimum (capped at gate_ft)
    # Meraki's variance cut (feeds.meraki.max_variance_m, 25 m) in feet; None: no cut-off.
    max_uncertainty_ft: float | None = 82.0
    # The adaptive filter: a leg slower than min_speed_mps, or after settle_s without a
    # fix, began with a stop; a walker who stops is credited a share of a trigger
    # distance past the last fix: stop_ext_share of the device's gate (Spaces, Meraki),
    # cmx_stop_ext_share of CMX's trigger (its noise brings the trigger forward).
    min_speed_mps: float = 0.3
    settle_s: float = 60.0
    stop_ext_share: float = 0.55
    cmx_stop_ext_share: float = 0.4


@dataclasses.dataclass(frozen=True)
class LeaderboardSettings:
    """Who stays off the boards, and how often they move."""

    exclude_email_domains: tuple[str, ...] = ()
    refresh_interval_s: float = 0.5


@dataclasses.dataclass(frozen=True)
class BoardSettings:
    """The big screen in the hall, GET /board (DESIGN 15)."""

    enabled: bool = True  # false: /board is 404
    require_auth: bool = False  # true: only with the monitoring pair, auth.monitor
    title: str = "Step challenge"  # the event's name, at the top of the screen


@dataclasses.dataclass(frozen=True)
class PrivacySettings:
    """How long data of devices nobody registered is kept (DESIGN 15; README "Privacy")."""

    # Devices without an owner, their last activity older than this, are purged (their
    # track, totals and day rows), hourly and at start-up; None keeps them.
    retain_unregistered_days: int | None = None


@dataclasses.dataclass(frozen=True)
class LookupSettings:
    """IP → device learned from the feeds (DESIGN 12.1)."""

    observed_ttl_s: float = 1800.0  # a sighting older than this proves nothing (DHCP)


@dataclasses.dataclass(frozen=True)
class CmxFeedSettings:
    """CMX POSTing notifications to /notification (DESIGN 5)."""

    enabled: bool = True  # false (a Spaces- or Meraki-only site): /notification is 404
    quiet_after_s: float = 300.0  # no notification this long → "quiet" on /healthz


@dataclasses.dataclass(frozen=True)
class SpacesFirehoseSettings:
    """The Cisco Spaces Firehose stream TYS reads (DESIGN 12.2)."""

    enabled: bool = False
    url: str = "https://partners.ciscospaces.io/api/partners/v1/firehose/events"
    api_key: str = ""  # secret: TYS_FEEDS_SPACES_FIREHOSE_API_KEY
    coordinate_unit: str = "FEET"  # FEET or METERS: not documented by Cisco, check it
    resume_overlap_s: float = 60.0  # a reconnect asks this much before the cursor again
    stall_timeout_s: float = 45.0  # no byte this long → reconnect (KEEP_ALIVE every ~15 s)
    quiet_after_s: float = 300.0  # connected, no device event this long → "quiet"


@dataclasses.dataclass(frozen=True)
class MerakiSettings:
    """The Meraki Scanning API v3 receiver (DESIGN 12.3)."""

    enabled: bool = False
    validator: str = ""  # secret: TYS_FEEDS_MERAKI_VALIDATOR (shown by the Dashboard)
    secret: str = ""  # secret: TYS_FEEDS_MERAKI_SECRET (set in the Dashboard)
    max_variance_m: float = 25.0  # fixes less certain than this are dropped
    max_body_bytes: int = 16 * 1024 * 1024  # a large network posts megabytes
    path: str = "/meraki"  # where Meraki POSTs; an unguessable path hides the receiver
    quiet_after_s: float = 300.0  # no accepted POST this long → "quiet" (Meraki posts ~1/min)


@dataclasses.dataclass(frozen=True)
class FeedsSettings:
    """Where positions come from: CMX, Cisco Spaces Firehose, Meraki (DESIGN 12)."""

    cmx: CmxFeedSettings = CmxFeedSettings()
    spaces_firehose: SpacesFirehoseSettings = SpacesFirehoseSettings()
    meraki: MerakiSettings = MerakiSettings()


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
    board: BoardSettings = BoardSettings()
    privacy: PrivacySettings = PrivacySettings()
    lookup: LookupSettings = LookupSettings()
    feeds: FeedsSettings = FeedsSettings()

    def gate_ft(self) -> float:
        """tracking.gate_ft, or the CMX trigger distance when it is not set."""
        gate_ft = self.tracking.gate_ft
        return self.cmx.movement_distance_ft if gate_ft is None else gate_ft

    def enabled_feeds(self) -> tuple[str, ...]:
        """The names of the enabled feeds, as /healthz and the metrics label them."""
        feeds = self.feeds
        return tuple(name for name, on in (("cmx", feeds.cmx.enabled),
                                           ("spaces_firehose", feeds.spaces_firehose.enabled),
                                           ("meraki", feeds.meraki.enabled)) if on)
