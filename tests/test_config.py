"""Configuration: YAML + TYS_* environment → validated settings, one clear line on error."""

from __future__ import annotations

from pathlib import Path

import pytest

from tys_server.config import ConfigError, env_name, load_settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tys.yaml"
    path.write_text(text)
    return path


def config_error(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> str:
    """The one line of the ConfigError that loading this file and environment raises."""
    with pytest.raises(ConfigError) as raised:
        load_settings(write(tmp_path, text), environ=environ or {})
    message = str(raised.value)
    assert "\n" not in message
    return message


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


def test_keys_of_issue_12_have_their_defaults(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, ""), environ={})
    monitor = settings.auth.monitor
    assert (monitor.username, monitor.password) == ("monitor", "change-me-monitor")
    assert settings.cmx.down_for_s == 30.0
    assert settings.database.spill_dir == "var/spill"
    assert settings.tracking.max_devices == 2_000_000


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "database:\n  flush_interval_s: 5\n")
    settings = load_settings(path, environ={
        "TYS_DATABASE_FLUSH_INTERVAL_S": "2.5",
        "TYS_CMX_HOSTS": "cmx1.example.org, cmx2.example.org",
        "TYS_DATABASE_DSN": "postgresql://cmx@db/cmx",
        "TYS_SERVER_XHEADERS": "true",
        "TYS_LEADERBOARD_EXCLUDE_EMAIL_DOMAINS": "cisco.com",
        "TYS_CMX_DOWN_FOR_S": "0",
        "TYS_TRACKING_MAX_DEVICES": "5000",
    })
    assert settings.database.flush_interval_s == 2.5
    assert settings.cmx.hosts == ("cmx1.example.org", "cmx2.example.org")
    assert settings.database.dsn == "postgresql://cmx@db/cmx"
    assert settings.server.xheaders is True
    assert settings.leaderboard.exclude_email_domains == ("cisco.com",)
    assert settings.cmx.down_for_s == 0.0
    assert settings.tracking.max_devices == 5000


@pytest.mark.parametrize("value", [
    "abc #x", '"quoted"', "' spaced '", " leading space", "trailing space ", "1234", "0123",
    "null", "~", "true", "- item", "a: b", "[unclosed", "{x}", "&anchor", "",
])
def test_environment_strings_are_taken_verbatim(value: str) -> None:
    settings = load_settings(None, environ={"TYS_AUTH_API_PASSWORD": value,
                                            "TYS_REGISTRATION_WIFI_NAME": value})
    assert settings.auth.api.password == value
    assert settings.registration.wifi_name == value


def test_empty_environment_value_of_a_nullable_key_is_null() -> None:
    settings = load_settings("conf/tys.example.yaml", environ={
        "TYS_SERVER_HOST": "127.0.0.1", "TYS_DATABASE_DSN": "",
        "TYS_SERVER_TLS_CERT": "", "TYS_SERVER_TLS_KEY": ""})
    assert settings.database.dsn is None
    assert (settings.server.tls_cert, settings.server.tls_key) == (None, None)


@pytest.mark.parametrize(("value", "hosts"), [
    ("", ()),
    (" , ", ()),
    ("cmx1, cmx2,,cmx3 ", ("cmx1", "cmx2", "cmx3")),
    ("1234", ("1234",)),
    ("test", ("test",)),
])
def test_environment_lists_are_comma_separated(value: str, hosts: tuple[str, ...]) -> None:
    settings = load_settings(None, environ={"TYS_CMX_HOSTS": value})
    assert settings.cmx.hosts == hosts


@pytest.mark.parametrize(("name", "value", "read"), [
    ("TYS_SERVER_PORT", "8443", 8443),
    ("TYS_SERVER_PORT", " 8443 ", 8443),
    ("TYS_DATABASE_FLUSH_INTERVAL_S", "2", 2.0),
    ("TYS_DATABASE_FLUSH_INTERVAL_S", "0.25", 0.25),
    ("TYS_DATABASE_FLUSH_INTERVAL_S", ".5", 0.5),
    ("TYS_DATABASE_FLUSH_INTERVAL_S", "1e1", 10.0),
    ("TYS_SERVER_XHEADERS", "TRUE", True),
    ("TYS_SERVER_XHEADERS", "false", False),
])
def test_environment_numbers_and_booleans(name: str, value: str, read: object) -> None:
    settings = load_settings(None, environ={name: value})
    key = {"TYS_SERVER_PORT": settings.server.port,
           "TYS_DATABASE_FLUSH_INTERVAL_S": settings.database.flush_interval_s,
           "TYS_SERVER_XHEADERS": settings.server.xheaders}
    assert key[name] == read and type(key[name]) is type(read)


@pytest.mark.parametrize(("name", "value", "expected"), [
    ("TYS_SERVER_PORT", "0x1F90", "int"),
    ("TYS_SERVER_PORT", "8_080", "int"),
    ("TYS_SERVER_PORT", "8080 # web", "int"),
    ("TYS_SERVER_PORT", "8080.0", "int"),
    ("TYS_SERVER_PORT", "", "int"),
    ("TYS_DATABASE_FLUSH_INTERVAL_S", "nan", "float"),
    ("TYS_DATABASE_FLUSH_INTERVAL_S", ".inf", "float"),
    ("TYS_DATABASE_FLUSH_INTERVAL_S", "1e999", "float"),
    ("TYS_DATABASE_FLUSH_INTERVAL_S", "2,5", "float"),
    ("TYS_SERVER_XHEADERS", "yes", "bool (true or false)"),
    ("TYS_SERVER_XHEADERS", "on", "bool (true or false)"),
    ("TYS_SERVER_XHEADERS", "1", "bool (true or false)"),
])
def test_bad_environment_numbers_and_booleans_name_the_variable(
        tmp_path: Path, name: str, value: str, expected: str) -> None:
    message = config_error(tmp_path, "", {name: value})
    assert message == f"{name}: expected {expected}, got {value!r}"


@pytest.mark.parametrize(("text", "message"), [
    ("auth:\n  api:\n    password: 987654321\n",
     "auth.api.password: expected str, got int (value not shown: auth.api.password is a secret)"),
    ("cmx:\n  mac_hash_key: [987654321]\n",
     "cmx.mac_hash_key: expected str, got list (value not shown: cmx.mac_hash_key is a secret)"),
    ("database:\n  dsn: {password: 987654321}\n",
     "database.dsn: expected str, got dict (value not shown: database.dsn is a secret)"),
    ("auth:\n  api: '987654321'\n", "auth.api: expected a mapping, got str"),
    ('auth:\n  api:\n    password: "987654321\n',
     "is not valid YAML: found unexpected end of stream at line 4, column 1"),
])
def test_an_error_about_a_secret_never_shows_its_value(tmp_path: Path, text: str,
                                                       message: str) -> None:
    line = config_error(tmp_path, text)
    assert message in line
    assert "987654321" not in line


def test_env_names_follow_section_and_key() -> None:
    assert env_name(("auth", "api", "password")) == "TYS_AUTH_API_PASSWORD"
    assert env_name(("database", "dsn")) == "TYS_DATABASE_DSN"


@pytest.mark.parametrize(("text", "environ", "message"), [
    ("server:\n  prot: 80\n", {}, "server.prot: unknown key"),
    ("colour: blue\n", {}, "colour: unknown key"),
    ("database:\n  flush_interval_s: soon\n", {},
     "database.flush_interval_s: expected float, got 'soon'"),
    ("database:\n  flush_interval_s: .inf\n", {},
     "database.flush_interval_s: expected a finite float, got inf"),
    ("server:\n  port: 70000\n", {}, "server.port: must be 1-65535, got 70000"),
    ("database:\n  flush_interval_s: 0\n", {}, "database.flush_interval_s: must be greater than 0"),
    ("tracking:\n  max_devices: 0\n", {}, "tracking.max_devices: must be greater than 0"),
    ("cmx:\n  down_for_s: -1\n", {}, "cmx.down_for_s: must be 0 or more, got -1.0"),
    ("tracking:\n  timezone: Mars/Olympus\n", {}, "tracking.timezone: unknown time zone"),
    ("server:\n  port: true\n", {}, "server.port: expected int, got True"),
    ("logging:\n  level: LOUD\n", {}, "logging.level: must be one of"),
    ("server:\n  tls_cert: /x.pem\n", {}, "server.tls_cert / server.tls_key: set both"),
    ("", {"TYS_SERVER_PORT": "abc"}, "TYS_SERVER_PORT: expected int, got 'abc'"),
    ("auth:\n  api:\n    username: cmx\n    password: change-me-cmx\n", {},
     "auth.api: must differ from auth.notification"),
    ("auth:\n  monitor:\n    username: frontend\n    password: change-me-api\n", {},
     "auth.monitor: must differ from auth.api"),
    ("auth:\n  monitor:\n    username: ''\n", {}, "auth.monitor.username: required"),
    ("cmx:\n  ip2mac_url: 'ftp://{host}/clients?ip={ip}'\n", {},
     "cmx.ip2mac_url: must be an http:// or https:// URL"),
    ("cmx:\n  ip2mac_url: 'https://{host}/clients?ip={ip}&v={ip.packed}'\n", {},
     "cmx.ip2mac_url: only {host} and {ip} may appear in braces"),
    ("- a list\n", {}, "config: expected a mapping"),
    ("server: [1, 2\n", {}, "is not valid YAML: expected ',' or ']', but got '<stream end>' "
                            "at line 2, column 1"),
])
def test_bad_values_stop_with_one_line_naming_the_key(tmp_path: Path, text: str,
                                                      environ: dict[str, str],
                                                      message: str) -> None:
    assert message in config_error(tmp_path, text, environ)


def test_a_site_without_cmx_hosts_is_valid(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, "cmx:\n  hosts: []\n"), environ={})
    assert settings.cmx.hosts == ()


@pytest.mark.parametrize(("password", "what"), [
    ("", "empty"), ("change-me-monitor", "the shipped example")])
def test_monitor_password_is_refused_off_loopback_like_the_others(
        tmp_path: Path, password: str, what: str) -> None:
    environ = {"TYS_SERVER_HOST": "0.0.0.0", "TYS_AUTH_NOTIFICATION_PASSWORD": "s1",
               "TYS_AUTH_API_PASSWORD": "s2", "TYS_AUTH_MONITOR_PASSWORD": password,
               "TYS_AUTH_ADMIN_PASSWORD": "s4"}
    message = config_error(tmp_path, "", environ)
    assert message.startswith(f"auth.monitor.password: {what}, refused with server.host")
    assert "TYS_AUTH_MONITOR_PASSWORD" in message
    environ["TYS_AUTH_MONITOR_PASSWORD"] = "s3"
    assert load_settings(write(tmp_path, ""), environ=environ).auth.monitor.password == "s3"


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(tmp_path / "nope.yaml", environ={})


def test_keys_of_issue_13_have_their_defaults(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, ""), environ={})
    firehose, meraki = settings.feeds.spaces_firehose, settings.feeds.meraki
    assert (firehose.enabled, firehose.api_key, firehose.coordinate_unit) == (False, "", "FEET")
    assert firehose.url == "https://partners.ciscospaces.io/api/partners/v1/firehose/events"
    assert (firehose.resume_overlap_s, firehose.stall_timeout_s) == (60.0, 45.0)
    assert (meraki.enabled, meraki.validator, meraki.secret) == (False, "", "")
    assert (meraki.max_variance_m, meraki.max_body_bytes, meraki.path) == \
        (25.0, 16 * 1024 * 1024, "/meraki")
    assert settings.feeds.cmx.enabled is True
    assert {settings.feeds.cmx.quiet_after_s, firehose.quiet_after_s,
            meraki.quiet_after_s} == {300.0}
    assert settings.lookup.observed_ttl_s == 1800.0
    assert (settings.tracking.gate_ft, settings.tracking.max_uncertainty_ft) == (None, 82.0)
    assert settings.gate_ft() == 50.0
    assert settings.enabled_feeds() == ("cmx",)


def test_gate_follows_the_cmx_trigger_distance_unless_set(tmp_path: Path) -> None:
    moved = load_settings(write(tmp_path, "cmx:\n  movement_distance_ft: 30\n"), environ={})
    assert moved.gate_ft() == 30.0
    own = load_settings(write(tmp_path, "cmx:\n  movement_distance_ft: 30\n"
                                        "tracking:\n  gate_ft: 0\n"), environ={})
    assert own.gate_ft() == 0.0  # 0 is a gate that passes every fix, not "unset"


FEED_ENV = {
    "TYS_FEEDS_SPACES_FIREHOSE_ENABLED": "true",
    "TYS_FEEDS_SPACES_FIREHOSE_URL": "https://partners.ciscospaces.eu/api/partners/v1/firehose/events",
    "TYS_FEEDS_SPACES_FIREHOSE_API_KEY": " key #with 'quotes' ",
    "TYS_FEEDS_SPACES_FIREHOSE_COORDINATE_UNIT": "METERS",
    "TYS_FEEDS_SPACES_FIREHOSE_RESUME_OVERLAP_S": "90",
    "TYS_FEEDS_SPACES_FIREHOSE_STALL_TIMEOUT_S": "30",
    "TYS_FEEDS_SPACES_FIREHOSE_QUIET_AFTER_S": "120",
    "TYS_FEEDS_MERAKI_ENABLED": "true",
    "TYS_FEEDS_MERAKI_VALIDATOR": "da6a17c407bb11dfeec7392a5042be0a4cc034b6",
    "TYS_FEEDS_MERAKI_SECRET": "s3cret #1",
    "TYS_FEEDS_MERAKI_MAX_VARIANCE_M": "10.5",
    "TYS_FEEDS_MERAKI_MAX_BODY_BYTES": "1048576",
    "TYS_FEEDS_MERAKI_PATH": "/meraki-7f3a9c",
    "TYS_FEEDS_MERAKI_QUIET_AFTER_S": "600",
    "TYS_FEEDS_CMX_ENABLED": "false",
    "TYS_FEEDS_CMX_QUIET_AFTER_S": "900",
    "TYS_LOOKUP_OBSERVED_TTL_S": "600",
    "TYS_TRACKING_GATE_FT": "40",
    "TYS_TRACKING_MAX_UNCERTAINTY_FT": "80",
}


def test_every_feed_key_is_read_from_the_environment() -> None:
    settings = load_settings(None, environ=FEED_ENV)
    firehose, meraki = settings.feeds.spaces_firehose, settings.feeds.meraki
    assert firehose.enabled is True
    assert firehose.url.startswith("https://partners.ciscospaces.eu/")
    assert firehose.api_key == " key #with 'quotes' "  # verbatim, like every secret
    assert (firehose.coordinate_unit, firehose.resume_overlap_s, firehose.stall_timeout_s,
            firehose.quiet_after_s) == ("METERS", 90.0, 30.0, 120.0)
    assert (meraki.enabled, meraki.secret, meraki.path) == (True, "s3cret #1", "/meraki-7f3a9c")
    assert meraki.validator == "da6a17c407bb11dfeec7392a5042be0a4cc034b6"
    assert (meraki.max_variance_m, meraki.max_body_bytes, meraki.quiet_after_s) == \
        (10.5, 1048576, 600.0)
    assert (settings.feeds.cmx.enabled, settings.feeds.cmx.quiet_after_s) == (False, 900.0)
    assert settings.lookup.observed_ttl_s == 600.0
    assert (settings.gate_ft(), settings.tracking.max_uncertainty_ft) == (40.0, 80.0)
    assert settings.enabled_feeds() == ("spaces_firehose", "meraki")


@pytest.mark.parametrize(("missing", "enabled"), [
    ("TYS_FEEDS_SPACES_FIREHOSE_API_KEY", "TYS_FEEDS_SPACES_FIREHOSE_ENABLED"),
    ("TYS_FEEDS_MERAKI_SECRET", "TYS_FEEDS_MERAKI_ENABLED"),
    ("TYS_FEEDS_MERAKI_VALIDATOR", "TYS_FEEDS_MERAKI_ENABLED"),
])
def test_a_feed_enabled_without_its_secret_stops_start_up_with_one_line(
        tmp_path: Path, missing: str, enabled: str) -> None:
    environ = {name: value for name, value in FEED_ENV.items() if name != missing}
    key = missing.removeprefix("TYS_FEEDS_").lower()
    feed, _, name = ("spaces_firehose", "", key.removeprefix("spaces_firehose_")) \
        if key.startswith("spaces_firehose") else ("meraki", "", key.removeprefix("meraki_"))
    message = config_error(tmp_path, "", environ)
    assert message == f"feeds.{feed}.{name}: required with feeds.{feed}.enabled; set {missing}"
    environ[enabled] = "false"  # a disabled feed needs no secret
    load_settings(write(tmp_path, ""), environ=environ)


@pytest.mark.parametrize(("text", "message"), [
    ("feeds:\n  spaces_firehose:\n    api_key: 987654321\n",
     "feeds.spaces_firehose.api_key: expected str, got int (value not shown: "
     "feeds.spaces_firehose.api_key is a secret)"),
    ("feeds:\n  meraki:\n    secret: [987654321]\n",
     "feeds.meraki.secret: expected str, got list (value not shown"),
    ("feeds:\n  meraki:\n    validator: {v: 987654321}\n",
     "feeds.meraki.validator: expected str, got dict (value not shown"),
    ("feeds:\n  meraki:\n    path: 987654321\n",
     "feeds.meraki.path: expected str, got int (value not shown"),
    ("feeds:\n  meraki:\n    path: meraki-987654321\n",
     "feeds.meraki.path: must be a path below / without ?, #, % or spaces (value not shown"),
    ("feeds:\n  meraki:\n    path: /m?k=987654321\n", "feeds.meraki.path: must be a path"),
])
def test_feed_secrets_and_the_meraki_path_are_never_echoed(tmp_path: Path, text: str,
                                                           message: str) -> None:
    line = config_error(tmp_path, text)
    assert message in line
    assert "987654321" not in line


@pytest.mark.parametrize(("text", "message"), [
    ("feeds:\n  spaces_firehose:\n    coordinate_unit: YARDS\n",
     "feeds.spaces_firehose.coordinate_unit: must be FEET or METERS, got 'YARDS'"),
    ("feeds:\n  spaces_firehose:\n    url: partners.ciscospaces.io/x\n",
     "feeds.spaces_firehose.url: must be an http:// or https:// URL"),
    ("feeds:\n  spaces_firehose:\n    stall_timeout_s: 0\n",
     "feeds.spaces_firehose.stall_timeout_s: must be greater than 0"),
    ("feeds:\n  spaces_firehose:\n    resume_overlap_s: -1\n",
     "feeds.spaces_firehose.resume_overlap_s: must be 0 or more"),
    ("feeds:\n  meraki:\n    max_body_bytes: 0\n", "feeds.meraki.max_body_bytes: must be greater"),
    ("feeds:\n  meraki:\n    max_variance_m: -2\n", "feeds.meraki.max_variance_m: must be greater"),
    ("feeds:\n  meraki:\n    path: /live/meraki\n",
     "feeds.meraki.path: must not be /live or below it"),
    ("feeds:\n  meraki:\n    path: /notification/\n",
     "feeds.meraki.path: must not be /notification or below it"),
    ("feeds:\n  meraki:\n    path: /\n", "feeds.meraki.path: must be a path below /"),
    ("feeds:\n  cmx:\n    quiet_after_s: 0\n", "feeds.cmx.quiet_after_s: must be greater than 0"),
    ("feeds:\n  cmx:\n    enabled: 'no'\n", "feeds.cmx.enabled: expected bool, got 'no'"),
    ("feeds:\n  zigbee: {}\n", "feeds.zigbee: unknown key"),
    ("lookup:\n  observed_ttl_s: 0\n", "lookup.observed_ttl_s: must be greater than 0"),
    ("tracking:\n  gate_ft: -1\n", "tracking.gate_ft: must be 0 or more (or null), got -1.0"),
    ("tracking:\n  max_uncertainty_ft: 0\n",
     "tracking.max_uncertainty_ft: must be greater than 0 (or null), got 0.0"),
])
def test_bad_feed_values_stop_with_one_line_naming_the_key(tmp_path: Path, text: str,
                                                           message: str) -> None:
    assert message in config_error(tmp_path, text)


def test_an_empty_environment_value_clears_the_gate_to_its_default(tmp_path: Path) -> None:
    path = write(tmp_path, "tracking:\n  gate_ft: 20\n")
    assert load_settings(path, environ={}).gate_ft() == 20.0
    assert load_settings(path, environ={"TYS_TRACKING_GATE_FT": ""}).gate_ft() == 50.0


def test_the_filter_keys_of_issue_14_have_their_defaults(tmp_path: Path) -> None:
    tracking = load_settings(write(tmp_path, ""), environ={}).tracking
    assert (tracking.filter, tracking.gate_min_ft, tracking.min_speed_mps, tracking.settle_s,
            tracking.stop_ext_share, tracking.cmx_stop_ext_share) == (
        "adaptive", 30.0, 0.3, 60.0, 0.55, 0.4)
    shipped = load_settings("conf/tys.yaml", environ={}).tracking
    assert shipped.filter == "adaptive"
    classic = load_settings(write(tmp_path, ""), environ={"TYS_TRACKING_FILTER": "classic"})
    assert classic.tracking.filter == "classic"


@pytest.mark.parametrize(("text", "message"), [
    ("tracking:\n  filter: smooth\n",
     "tracking.filter: must be one of classic, adaptive, got 'smooth'"),
    ("tracking:\n  settle_s: 0\n", "tracking.settle_s: must be greater than 0, got 0.0"),
    ("tracking:\n  gate_min_ft: -5\n", "tracking.gate_min_ft: must be 0 or more, got -5.0"),
    ("tracking:\n  min_speed_mps: -0.1\n", "tracking.min_speed_mps: must be 0 or more"),
    ("tracking:\n  stop_ext_share: 1.5\n",
     "tracking.stop_ext_share: must be at most 1 (a share of the trigger distance), got 1.5"),
    ("tracking:\n  cmx_stop_ext_share: 2\n",
     "tracking.cmx_stop_ext_share: must be at most 1 (a share of the trigger distance), got 2.0"),
    ("tracking:\n  cmx_stop_ext_share: -0.1\n", "tracking.cmx_stop_ext_share: must be 0 or more"),
])
def test_bad_filter_values_stop_with_one_line_naming_the_key(tmp_path: Path, text: str,
                                                             message: str) -> None:
    assert message in config_error(tmp_path, text)


def test_the_board_keys_of_issue_15_have_their_defaults(tmp_path: Path) -> None:
    board = load_settings(write(tmp_path, ""), environ={}).board
    assert (board.enabled, board.require_auth, board.title) == (True, False, "Step challenge")
    environ = {"TYS_BOARD_ENABLED": "false", "TYS_BOARD_REQUIRE_AUTH": "true",
               "TYS_BOARD_TITLE": " Cisco Live <EMEA> & friends "}
    board = load_settings(write(tmp_path, ""), environ=environ).board
    assert (board.enabled, board.require_auth, board.title) == (
        False, True, " Cisco Live <EMEA> & friends ")  # verbatim: the page escapes it


@pytest.mark.parametrize(("text", "message"), [
    ("board:\n  title: '   '\n", "board.title: must be printable text, not blank, got '   '"),
    ("board:\n  title: \"two\\nlines\"\n", "board.title: must be printable text"),
    ("board:\n  title: " + "x" * 81 + "\n", "board.title: at most 80 characters, got 81"),
    ("board:\n  enabled: yes please\n", "board.enabled: expected bool, got 'yes please'"),
    ("board:\n  require_auth: 1\n", "board.require_auth: expected bool, got 1"),
    ("feeds:\n  meraki:\n    path: /board\n", "feeds.meraki.path: must not be /board"),
])
def test_bad_board_values_stop_with_one_line_naming_the_key(tmp_path: Path, text: str,
                                                            message: str) -> None:
    assert message in config_error(tmp_path, text)


@pytest.mark.parametrize(("password", "what"), [
    ("", "empty"), ("change-me-admin", "the shipped example")])
def test_admin_password_is_refused_off_loopback_like_the_others(
        tmp_path: Path, password: str, what: str) -> None:
    environ = {"TYS_SERVER_HOST": "0.0.0.0", "TYS_AUTH_NOTIFICATION_PASSWORD": "s1",
               "TYS_AUTH_API_PASSWORD": "s2", "TYS_AUTH_MONITOR_PASSWORD": "s3",
               "TYS_AUTH_ADMIN_PASSWORD": password}
    message = config_error(tmp_path, "", environ)
    assert message.startswith(f"auth.admin.password: {what}, refused with server.host")
    assert "TYS_AUTH_ADMIN_PASSWORD" in message
    environ["TYS_AUTH_ADMIN_PASSWORD"] = "s4"
    assert load_settings(write(tmp_path, ""), environ=environ).auth.admin.password == "s4"


@pytest.mark.parametrize("other", ["notification", "api", "monitor"])
def test_admin_pair_must_differ_from_every_other_pair(tmp_path: Path, other: str) -> None:
    environ = {f"TYS_AUTH_{other.upper()}_USERNAME": "boss",
               f"TYS_AUTH_{other.upper()}_PASSWORD": "same",
               "TYS_AUTH_ADMIN_USERNAME": "boss", "TYS_AUTH_ADMIN_PASSWORD": "same"}
    message = config_error(tmp_path, "", environ)
    assert message.startswith(f"auth.admin: must differ from auth.{other}")
    assert "same" not in message  # a password is never echoed


def test_retention_of_unregistered_devices_is_kept_by_default_and_set_in_days(
        tmp_path: Path) -> None:
    assert load_settings(write(tmp_path, ""), environ={}).privacy.retain_unregistered_days \
        is None
    settings = load_settings(write(tmp_path, "privacy:\n  retain_unregistered_days: 30\n"),
                             environ={})
    assert settings.privacy.retain_unregistered_days == 30
    from_env = load_settings(write(tmp_path, ""),
                             environ={"TYS_PRIVACY_RETAIN_UNREGISTERED_DAYS": "7"})
    assert from_env.privacy.retain_unregistered_days == 7
    assert "privacy.retain_unregistered_days: must be 0 or more" in config_error(
        tmp_path, "privacy:\n  retain_unregistered_days: -1\n", {})
    assert "privacy.retain_unregistered_days: expected int" in config_error(
        tmp_path, "privacy:\n  retain_unregistered_days: 1.5\n", {})
