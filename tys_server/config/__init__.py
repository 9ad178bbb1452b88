"""Configuration: YAML and TYS_* environment → typed, checked settings (DESIGN 4).

``settings``: the typed settings and their defaults; ``load``: reading the file and the
environment; ``checks``: the checks across settings, with secrets kept out of errors.

A leaf: imports nothing else of the project, and every layer but ``core`` may import it
(import-linter contract ``config-leaf``). Callers import from here.
"""

from tys_server.config.checks import SHIPPED_PASSWORDS, is_loopback, is_secret
from tys_server.config.load import DEFAULT_CONFIG, ENV_PREFIX, env_name, load_settings
from tys_server.config.settings import (
    AuthSettings,
    BoardSettings,
    CmxFeedSettings,
    CmxSettings,
    ConfigError,
    Credentials,
    DatabaseSettings,
    FeedsSettings,
    LeaderboardSettings,
    LoggingSettings,
    LookupSettings,
    MerakiSettings,
    PrivacySettings,
    RegistrationSettings,
    ServerSettings,
    Settings,
    SpacesFirehoseSettings,
    TrackingSettings,
)

__all__ = [
    "DEFAULT_CONFIG", "ENV_PREFIX", "SHIPPED_PASSWORDS", "AuthSettings", "BoardSettings",
    "CmxFeedSettings", "CmxSettings", "ConfigError", "Credentials", "DatabaseSettings",
    "FeedsSettings", "LeaderboardSettings", "LoggingSettings", "LookupSettings", "MerakiSettings",
    "PrivacySettings", "RegistrationSettings", "ServerSettings", "Settings",
    "SpacesFirehoseSettings", "TrackingSettings", "env_name", "is_loopback", "is_secret",
    "load_settings",
]
