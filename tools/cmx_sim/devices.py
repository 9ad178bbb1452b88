"""The simulated Wi-Fi clients: IP and MAC per device, MAC hashing, the devices file."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
from pathlib import Path
from typing import Any, Literal

MacMode = Literal["test", "random"]
Kind = Literal["walker", "stationary"]

WALKER: Kind = "walker"
STATIONARY: Kind = "stationary"
MAC_MODES: tuple[MacMode, ...] = ("test", "random")
# 10.<floor>.<a>.<b> with b in 1..250 and a in 0..255: room for 64,000 devices per floor.
_HOSTS_PER_BLOCK = 250


@dataclasses.dataclass(frozen=True)
class Device:
    """One phone: where it starts, its address, and its raw (unhashed) MAC."""

    index: int
    kind: Kind
    floor: int  # 1-based floor it starts on
    ip: str
    mac: str  # raw lower-case colon form, as the Wi-Fi controller and CMX's v2 API see it


def cmx_test_mac(ip: str) -> str:
    """The MAC the server's CMX test mode gives an IPv4 a.b.c.d: 02:00:aa:bb:cc:dd."""
    return "02:00:" + ":".join(f"{int(octet):02x}" for octet in ip.split("."))


def hash_mac(mac: str, key: str) -> str:
    """CMX "MAC scrambling" (DESIGN 9): 00:00 + last 8 hex of SHA-1(hex digits + key)."""
    if not key:
        return mac
    digits = mac.lower().replace(":", "").replace("-", "")
    digest = hashlib.sha1((digits + key).encode("utf-8")).hexdigest()[-8:]
    return "00:00:" + ":".join(digest[i:i + 2] for i in range(0, 8, 2))


def _random_mac(rng: random.Random) -> str:
    octets = [rng.randrange(256) for _ in range(6)]
    octets[0] = (octets[0] | 0x02) & 0xFE  # locally administered unicast, as phones randomise
    return ":".join(f"{octet:02x}" for octet in octets)


def device_ip(index: int, floor: int) -> str:
    """A private address that is unique per device index: 10.<floor>.<a>.<b>."""
    block, host = divmod(index, _HOSTS_PER_BLOCK)
    if block > 255:
        raise ValueError(f"too many devices for the 10.<floor>.a.b plan: index {index}")
    return f"10.{floor}.{block}.{host + 1}"


def make_devices(attendees: int, stationary: int, floors: int, seed: int,
                 mac_mode: MacMode) -> list[Device]:
    """Walkers first, then stationary devices; the same arguments give the same devices."""
    if attendees < 0 or stationary < 0 or floors < 1:
        raise ValueError("attendees and stationary must be >= 0, floors >= 1")
    if mac_mode not in MAC_MODES:
        raise ValueError(f"mac_mode must be one of {MAC_MODES}, got {mac_mode!r}")
    rng = random.Random(f"devices-{seed}")  # independent of the movement RNG
    devices: list[Device] = []
    seen: set[str] = set()
    for index in range(attendees + stationary):
        kind = WALKER if index < attendees else STATIONARY
        floor = rng.randint(1, floors)
        ip = device_ip(index, floor)
        mac = cmx_test_mac(ip) if mac_mode == "test" else _random_mac(rng)
        while mac in seen:
            mac = _random_mac(rng)
        seen.add(mac)
        devices.append(Device(index, kind, floor, ip, mac))
    return devices


def save_devices(path: Path | str, devices: list[Device]) -> None:
    """Write the IP→MAC map (and kinds) for a standalone ``fake-cmx --devices-file``."""
    data = {"devices": [dataclasses.asdict(device) for device in devices]}
    Path(path).write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


def load_devices(path: Path | str) -> list[Device]:
    """Read a file written by save_devices; ValueError names what is wrong."""
    try:
        data: Any = json.loads(Path(path).read_text(encoding="utf-8"))
        return [Device(int(d["index"]), d["kind"], int(d["floor"]), str(d["ip"]), str(d["mac"]))
                for d in data["devices"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"cannot read devices file {path}: {exc}") from None
