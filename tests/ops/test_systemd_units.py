"""systemd/: the unit files say what DESIGN section 10 promises; READY=1 reaches systemd.

tys-server@.service (DESIGN 15, several events on one host) is held to everything
tys-server.service is, with the event's own configuration, secrets and state.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.test_example_config import EXAMPLE, TYS_ENV
from tys_server.config import DatabaseSettings, ServerSettings, env_name, load_settings
from tys_server.ops import sdnotify
from tys_server.runtime import FINAL_FLUSH_ATTEMPTS, final_flush_pause_s

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "systemd"
INSTALL_PREFIX = "/opt/tys"
# Each server unit and the name of its files in /etc/tys: tys.yaml, or the instance's.
SERVER_UNITS = {"tys-server.service": "tys", "tys-server@.service": "%i"}
# What a template may set otherwise than the plain unit: the event's own files and state.
INSTANCE_KEYS = {("Unit", "Description"), ("Service", "EnvironmentFile"),
                 ("Service", "ExecStart"), ("Service", "StateDirectory"),
                 ("Service", "LogsDirectory"), ("Service", "RuntimeDirectory"),
                 ("Service", "Environment")}
EVENTS = ("clus-emea", "clus-us")

HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectControlGroups": "yes",
    "RestrictNamespaces": "yes",
    "LockPersonality": "yes",
    "RestrictRealtime": "yes",
    "SystemCallArchitectures": "native",
    "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
    "CapabilityBoundingSet": "",
}

Unit = dict[str, dict[str, list[str]]]


def parse_unit(path: Path) -> Unit:
    """Sections → key → every value (systemd keys may repeat), comments dropped."""
    return parse_text(path, path.read_text())


def parse_text(path: Path, text: str) -> Unit:
    """parse_unit of a unit's text."""
    unit: Unit = {}
    section: dict[str, list[str]] | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = unit.setdefault(line[1:-1], {})
            continue
        key, sep, value = line.partition("=")
        assert sep and section is not None, f"{path.name}:{number}: not key=value: {raw!r}"
        assert not value.endswith("\\"), f"{path.name}:{number}: keep directives on one line"
        section.setdefault(key.strip(), []).append(value.strip())
    return unit


def one(unit: Unit, section: str, key: str) -> str:
    values = unit.get(section, {}).get(key)
    assert values, f"[{section}] {key}= missing"
    assert len(values) == 1, f"[{section}] {key}= set {len(values)} times"
    return values[0]


def seconds(value: str) -> float:
    """A systemd time span: 60, 90s, 2min, 1h, 2h 30min."""
    factors = {"": 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hr": 3600}
    total = 0.0
    for part in value.split():
        digits = part.rstrip("abcdefghijklmnopqrstuvwxyz")
        total += float(digits) * factors[part[len(digits):]]
    return total


@pytest.fixture(scope="module", params=sorted(SERVER_UNITS))
def server_name(request: pytest.FixtureRequest) -> str:
    """Each server unit: the plain one and the template."""
    return str(request.param)


@pytest.fixture(scope="module")
def server_unit(server_name: str) -> Unit:
    """The server unit as written (a template with %i and all)."""
    return parse_unit(UNITS / server_name)


def instance(name: str, event: str) -> Unit:
    """The template as systemd loads the event's instance: %i is the instance name."""
    text = (UNITS / name).read_text()
    directives = [line for line in text.splitlines() if not line.startswith("#")]
    assert "%I" not in "\n".join(directives)  # unescaped, clus-emea would be clus/emea
    path = Path(f"/nonexistent/{name.replace('@.', f'@{event}.')}")
    return parse_text(path, text.replace("%i", event))


def environment(unit: Unit) -> dict[str, str]:
    """The unit's Environment= assignments."""
    pairs = [item.partition("=") for line in unit["Service"].get("Environment", [])
             for item in line.split()]
    return {key: value for key, _, value in pairs}


@pytest.fixture(scope="module")
def backup_unit() -> Unit:
    return parse_unit(UNITS / "tys-backup.service")


def test_server_unit_is_type_notify_with_the_production_command(server_name: str,
                                                                 server_unit: Unit) -> None:
    service = server_unit["Service"]
    files = SERVER_UNITS[server_name]  # "tys", or the instance's name
    assert one(server_unit, "Service", "Type") == "notify"
    assert one(server_unit, "Service", "NotifyAccess") == "main"
    exec_start = one(server_unit, "Service", "ExecStart")
    assert exec_start == (f"{INSTALL_PREFIX}/.venv/bin/python -m tys_server "
                          f"--config /etc/tys/{files}.yaml")
    assert one(server_unit, "Service", "WorkingDirectory") == INSTALL_PREFIX
    assert service["EnvironmentFile"] == [f"-/etc/tys/{files}.env"]
    assert one(server_unit, "Service", "User") == "tys"
    assert one(server_unit, "Service", "Group") == "tys"
    assert one(server_unit, "Service", "StateDirectory") == \
        ("tys" if files == "tys" else f"tys/{files}")
    assert one(server_unit, "Install", "WantedBy") == "multi-user.target"


def test_server_unit_stops_gracefully_and_restarts_on_failure(server_unit: Unit) -> None:
    assert one(server_unit, "Service", "KillMode") == "mixed"
    stop_s = seconds(one(server_unit, "Service", "TimeoutStopSec"))
    db = DatabaseSettings()
    # Every try of the shutdown flush bounded by the database timeouts, plus the pauses.
    pauses_s = sum(map(final_flush_pause_s, range(1, FINAL_FLUSH_ATTEMPTS)))
    worst_flush_s = (FINAL_FLUSH_ATTEMPTS * (db.statement_timeout_s + db.connect_timeout_s)
                     + pauses_s)
    # No SIGKILL while the server still drains or tries to save what it accepted.
    assert stop_s > ServerSettings().drain_timeout_s + worst_flush_s
    assert seconds(one(server_unit, "Service", "TimeoutStartSec")) >= 120
    assert one(server_unit, "Service", "Restart") == "on-failure"
    assert seconds(one(server_unit, "Service", "RestartSec")) == 2
    # Exit status 2 = configuration error (tys_server.server.main): no restart loop.
    assert one(server_unit, "Service", "RestartPreventExitStatus") == "2"


@pytest.mark.parametrize("unit_name", ["tys-server.service", "tys-server@.service",
                                       "tys-backup.service"])
def test_units_are_hardened(unit_name: str) -> None:
    unit = parse_unit(UNITS / unit_name)
    for key, expected in HARDENING.items():
        assert one(unit, "Service", key) == expected, key
    files = "%i" if "@" in unit_name else "tys"
    assert unit["Service"]["EnvironmentFile"] == [f"-/etc/tys/{files}.env"]


def test_the_template_is_the_plain_unit_but_for_the_events_own_files() -> None:
    plain = parse_unit(UNITS / "tys-server.service")
    template = parse_unit(UNITS / "tys-server@.service")
    assert plain.keys() == template.keys()
    for section in plain:
        for key in plain[section].keys() | template[section].keys():
            if (section, key) not in INSTANCE_KEYS:
                assert template[section].get(key) == plain[section].get(key), (section, key)
    for section, key in INSTANCE_KEYS:
        assert all("%i" in value for value in template[section][key]), (section, key)


def test_each_event_reads_its_own_files_and_keeps_its_state_apart() -> None:
    seen: dict[str, set[str]] = {}
    for event in EVENTS:
        unit = instance("tys-server@.service", event)
        assert one(unit, "Service", "ExecStart").endswith(f" --config /etc/tys/{event}.yaml")
        assert unit["Service"]["EnvironmentFile"] == [f"-/etc/tys/{event}.env"]
        state = "/var/lib/" + one(unit, "Service", "StateDirectory")
        runtime = "/run/" + one(unit, "Service", "RuntimeDirectory")
        assert state == f"/var/lib/tys/{event}"
        unit_env = environment(unit)
        assert unit_env["XDG_RUNTIME_DIR"] == runtime
        # What the server reads: the shipped example with the secrets of its env file and
        # the unit's Environment=, as systemd passes them; its YAML paths are overridden.
        assert {env_name(("database", "embedded_dir")), env_name(("database", "spill_dir"))} \
            <= unit_env.keys()
        database = load_settings(EXAMPLE, environ={**TYS_ENV, **unit_env}).database
        for path in (database.embedded_dir, database.spill_dir):
            assert path.startswith(state + "/"), path  # writable, and this event's alone
        seen[event] = {database.embedded_dir, database.spill_dir, runtime}
    assert not seen[EVENTS[0]] & seen[EVENTS[1]]
    assert DatabaseSettings().spill_dir != DatabaseSettings().embedded_dir


def test_backup_runs_the_script_as_tys_from_a_persistent_daily_timer(backup_unit: Unit) -> None:
    assert one(backup_unit, "Service", "Type") == "oneshot"
    assert one(backup_unit, "Service", "User") == "tys"
    exec_start = one(backup_unit, "Service", "ExecStart").split()
    assert exec_start[0] == f"{INSTALL_PREFIX}/tools/backup.sh"
    assert "--config" in exec_start and "/etc/tys/tys.yaml" in exec_start
    timer = parse_unit(UNITS / "tys-backup.timer")
    assert one(timer, "Timer", "OnCalendar") == "daily"
    assert one(timer, "Timer", "Persistent") == "true"
    assert seconds(one(timer, "Timer", "RandomizedDelaySec")) > 0
    assert one(timer, "Timer", "Unit") == "tys-backup.service"
    assert one(timer, "Install", "WantedBy") == "timers.target"


def installed_copy(tmp_path: Path) -> Path:
    """The units as installed at this checkout, so that every ExecStart= exists; a
    template as an instance of it (tys-server@test.service), as .ci/run verifies it."""
    out = tmp_path / "units"
    out.mkdir()
    for unit in UNITS.iterdir():
        text = unit.read_text().replace(f"{INSTALL_PREFIX}/.venv/bin/python", sys.executable)
        name = unit.name.replace("@.", "@test.")
        (out / name).write_text(text.replace(INSTALL_PREFIX, str(ROOT)))
    return out


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze not installed (apt-get install systemd)")
@pytest.mark.skipif(" " in str(ROOT), reason="checkout path has a space: ExecStart would split")
def test_systemd_analyze_verify_is_silent(tmp_path: Path) -> None:
    units = installed_copy(tmp_path)
    assert (units / "tys-server@test.service").exists()
    result = subprocess.run(["systemd-analyze", "verify", *sorted(map(str, units.iterdir()))],
                            capture_output=True, text=True, timeout=60, check=False)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def bound_datagram_socket(address: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.settimeout(5)
    return sock


def test_ready_reaches_a_bound_datagram_socket() -> None:
    path = f"/tmp/tys-notify-{uuid.uuid4().hex[:12]}"  # Unix socket paths are short
    with bound_datagram_socket(path) as sock:
        try:
            assert sdnotify.notify("READY=1", path)
            assert sock.recv(4096) == b"READY=1"
            assert sdnotify.notify("STOPPING=1", path)
            assert sock.recv(4096) == b"STOPPING=1"
        finally:
            Path(path).unlink()


def test_ready_reaches_an_abstract_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"tys-notify-{uuid.uuid4().hex[:12]}"
    with bound_datagram_socket("\0" + name) as sock:
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)  # as systemd spells abstract names
        assert sdnotify.notify("READY=1")
        assert sock.recv(4096) == b"READY=1"


def test_notify_outside_systemd_is_a_no_op(monkeypatch: pytest.MonkeyPatch,
                                           tmp_path: Path) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert sdnotify.notify("READY=1") is False
    assert sdnotify.notify("READY=1", str(tmp_path / "nobody-listens")) is False
