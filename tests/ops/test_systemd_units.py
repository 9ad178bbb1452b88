"""systemd/: the unit files say what DESIGN section 10 promises; READY=1 reaches systemd."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tys_server.config import DatabaseSettings, ServerSettings
from tys_server.ops import sdnotify
from tys_server.server import FINAL_FLUSH_ATTEMPTS, final_flush_pause_s

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "systemd"
INSTALL_PREFIX = "/opt/tys"

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
    unit: Unit = {}
    section: dict[str, list[str]] | None = None
    for number, raw in enumerate(path.read_text().splitlines(), 1):
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


@pytest.fixture(scope="module")
def server_unit() -> Unit:
    return parse_unit(UNITS / "tys-server.service")


@pytest.fixture(scope="module")
def backup_unit() -> Unit:
    return parse_unit(UNITS / "tys-backup.service")


def test_server_unit_is_type_notify_with_the_production_command(server_unit: Unit) -> None:
    service = server_unit["Service"]
    assert one(server_unit, "Service", "Type") == "notify"
    assert one(server_unit, "Service", "NotifyAccess") == "main"
    exec_start = one(server_unit, "Service", "ExecStart")
    assert exec_start == (f"{INSTALL_PREFIX}/.venv/bin/python -m tys_server "
                          "--config /etc/tys/tys.yaml")
    assert one(server_unit, "Service", "WorkingDirectory") == INSTALL_PREFIX
    assert service["EnvironmentFile"] == ["-/etc/tys/tys.env"]
    assert one(server_unit, "Service", "User") == "tys"
    assert one(server_unit, "Service", "Group") == "tys"
    assert one(server_unit, "Service", "StateDirectory") == "tys"
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


@pytest.mark.parametrize("unit_name", ["tys-server.service", "tys-backup.service"])
def test_units_are_hardened(unit_name: str) -> None:
    unit = parse_unit(UNITS / unit_name)
    for key, expected in HARDENING.items():
        assert one(unit, "Service", key) == expected, key
    assert unit["Service"]["EnvironmentFile"] == ["-/etc/tys/tys.env"]


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
    """The units as installed at this checkout, so that every ExecStart= exists."""
    out = tmp_path / "units"
    out.mkdir()
    for unit in UNITS.iterdir():
        text = unit.read_text().replace(f"{INSTALL_PREFIX}/.venv/bin/python", sys.executable)
        (out / unit.name).write_text(text.replace(INSTALL_PREFIX, str(ROOT)))
    return out


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze not installed (apt-get install systemd)")
@pytest.mark.skipif(" " in str(ROOT), reason="checkout path has a space: ExecStart would split")
def test_systemd_analyze_verify_is_silent(tmp_path: Path) -> None:
    units = installed_copy(tmp_path)
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
