"""GET /status: auth, caching, escaping, and the page as headless Chromium draws it."""

from __future__ import annotations

import asyncio
import shutil
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import API_AUTH, CMX_AUTH, MONITOR_AUTH
from tests.support.clock import Clock
from tests.web.test_notify import straight_walk
from tys_server.core.units import steps
from tys_server.store.database import StoreError
from tys_server.web.status import StatusPage, step_series

LEG_M = 15.24  # one 50 ft leg
# (username, IP, points walked): CMX test mode maps 10.0.0.x to MAC 02:00:0a:00:00:0x.
WALKERS = (("alice", "10.0.0.1", 70), ("<b>eve&co</b>", "10.0.0.3", 40), ("bob", "10.0.0.2", 20))
ZONES = {"Venue>Hall>Keynote": 3, "Venue>Hall>Expo": 2, "Venue>Lobby>Coffee": 1}
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--window-size=1280,1600")


def test_step_series_holds_each_value_until_the_next_point() -> None:
    points = [(100.0, 1.0), (160.0, 3.0), (130.0, 2.0)]
    assert step_series(points, 100.0, 190.0, 4) == [1.0, 2.0, 3.0, 3.0]
    assert step_series(points, 0.0, 90.0, 2) == [1.0, 1.0]  # before the first: first
    assert step_series([], 0.0, 1.0, 5) == []


@pytest.mark.gen_test
async def test_status_needs_the_monitor_pair(post: Any) -> None:
    for pair in (None, CMX_AUTH, API_AUTH, (MONITOR_AUTH[0], API_AUTH[1])):
        assert (await post("/status", method="GET", auth=pair)).code == 401, pair
    ok = await post("/status", method="GET", auth=MONITOR_AUTH)
    assert ok.code == 200
    assert ok.headers["Content-Type"] == "text/html; charset=UTF-8"
    assert b'<meta http-equiv="refresh" content="10">' in ok.body
    assert b"<script" not in ok.body and b"http://" not in ok.body.replace(
        b'xmlns="http://www.w3.org/2000/svg"', b"")


class FakeHealth:
    def __init__(self, database: str = "up") -> None:
        self.database = database

    def health(self) -> tuple[bool, dict[str, Any]]:
        return self.database == "up", {"database": self.database, "last_flush_age_s": 3.0,
                                       "backlog": 12}


class BrokenStore:
    calls = 0

    async def registration_history(self, since_s: float) -> list[tuple[float, int]]:
        self.calls += 1
        raise StoreError("connection refused")


@pytest.mark.clock
@pytest.mark.gen_test
async def test_page_is_cached_and_drawn_without_the_database(runtime: Any) -> None:
    store = runtime.service.store = BrokenStore()
    clock = Clock(runtime.clock())  # still: "the last minute" cannot move on meanwhile
    page = StatusPage(runtime.service, FakeHealth(), runtime.cmx, clock=clock)
    first = await page.html()
    assert store.calls == 1
    runtime.state.notifications[int(clock()) // 60 * 60 - 60] = 4242
    assert await page.html() is first  # cached: the state change is not drawn yet
    page.cache_s = 0.0
    again = await page.html()
    assert b">4,242<" in again  # the "last minute" tile
    assert store.calls == 1  # the history is asked for once a minute at most
    down = StatusPage(runtime.service, FakeHealth("down"), runtime.cmx, clock=clock)
    body = await down.html()
    assert b'class="status down">down</span>' in body
    assert b"12 changed keys" in body


@pytest.mark.clock
@pytest.mark.gen_test
async def test_registered_users_chart_reaches_back_into_the_database(runtime: Any,
                                                                     db: Any) -> None:
    now_s = runtime.clock()  # the service's "now", which the history is read back from
    db.query("INSERT INTO count (time, user_count, device_count, notification_count) "
             "VALUES (to_timestamp(%s) AT TIME ZONE 'UTC', 5, 6, 7), "
             "(to_timestamp(%s) AT TIME ZONE 'UTC', 9, 9, 9)",
             (now_s - 2 * 86400, now_s - 8 * 86400))  # the second: before the 7 days
    history = await runtime.service.registration_history(7, 2.0)
    assert [users for _, users in history] == [5.0]  # what the page asks for: the row of then
    page = StatusPage(runtime.service, runtime.flusher, runtime.cmx, clock=runtime.clock)
    svg = page.view(now_s)["registered_svg"]
    assert 'text-anchor="end">5</text>' not in svg  # drawn from memory alone: 0 users
    await page.html()
    svg = page.view(now_s)["registered_svg"]
    assert 'text-anchor="end">5</text>' in svg  # the y axis reaches the 5 users of then
    weekdays = ("Mon ", "Tue ", "Wed ", "Thu ", "Fri ", "Sat ", "Sun ")
    assert sum(svg.count(f">{day}") for day in weekdays) == 3  # x labels span days


async def walk_and_register(post: Any) -> None:
    """Register the walkers, walk them (and one stranger), and visit three zones."""
    for username, ip, _ in WALKERS:
        reply = await post("/live/register_username", {"username": username, "ip": ip})
        assert reply.code == 201, reply.body
    start_ms = (int(time.time()) - 1200) * 1000
    entries = []
    for _, ip, points in WALKERS + (("stranger", "10.0.0.9", 30),):
        mac = "02:00:" + ":".join(f"{int(octet):02x}" for octet in ip.split("."))
        entries += straight_walk(mac, start_ms, points)
    now_ms = int(time.time() * 1000)
    for zone, devices in ZONES.items():
        entries += [{"notificationType": "inout", "deviceId": f"02:00:0a:00:00:0{i + 1}",
                     "locationMapHierarchy": zone, "timestamp": now_ms}
                    for i in range(devices)]
    for offset in range(0, len(entries), 25):
        reply = await post("/notification", {"notifications": entries[offset:offset + 25]},
                           auth=CMX_AUTH)
        assert reply.code == 200
        assert b'"rejected":0' in reply.body


class Dom(HTMLParser):
    """Just enough of the dumped DOM: the sections' SVG shapes and the leaderboard rows."""

    def __init__(self) -> None:
        super().__init__()
        self.section = ""
        self.shapes: dict[str, list[dict[str, str | None]]] = {}
        self.rows: list[list[str]] = []
        self.cell: list[str] | None = None
        self.tags_in_cells: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "section":
            self.section = attributes.get("id") or ""
        if tag in ("polyline", "rect", "svg"):
            self.shapes.setdefault(self.section, []).append({"tag": tag, **attributes})
        if tag == "tr" and attributes.get("class") == "leader":
            self.rows.append([])
        if tag == "td" and self.section == "leaderboard":
            self.cell = []
        elif self.cell is not None:
            self.tags_in_cells.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self.cell is not None:
            self.rows[-1].append("".join(self.cell).strip())
            self.cell = None

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)


async def chromium(binary: str, user_data: Path, *args: str) -> bytes:
    """Run headless Chromium without blocking the loop that serves the page."""
    process = await asyncio.create_subprocess_exec(
        binary, *CHROMIUM_FLAGS, f"--user-data-dir={user_data}", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    try:
        out, _ = await asyncio.wait_for(process.communicate(), 90)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode == 0
    return out


@pytest.mark.slow
@pytest.mark.gen_test(timeout=240)
async def test_status_page_in_headless_chromium_after_a_walk(post: Any, http_port: int,
                                                             tmp_path: Path) -> None:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        pytest.skip("no chromium binary on PATH (Debian: apt-get install chromium)")
    await walk_and_register(post)
    user, password = MONITOR_AUTH
    url = f"http://{user}:{password}@127.0.0.1:{http_port}/status"
    screenshot = tmp_path / "status.png"
    await chromium(binary, tmp_path / "profile", f"--screenshot={screenshot}", url)
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert screenshot.stat().st_size > 20_000  # a drawn page, not a blank or an error
    dom = Dom()
    dom.feed((await chromium(binary, tmp_path / "profile", "--dump-dom", url)).decode())

    (notifications,) = [s for s in dom.shapes["notifications"] if s["tag"] == "polyline"]
    assert notifications["data-points"] == "179"  # each complete minute memory still has
    (registered,) = [s for s in dom.shapes["registered"] if s["tag"] == "polyline"]
    assert registered["data-points"] == "120"
    bars = [s for s in dom.shapes["zones"] if s.get("class") == "bar"]
    assert [b["data-value"] for b in bars] == [str(n) for n in ZONES.values()]

    expected = [[str(place), username, f"{(points - 2) * LEG_M / 1000:.2f}",
                 f"{steps((points - 2) * LEG_M, 2.5):,}"]
                for place, (username, _, points) in enumerate(WALKERS, 1)]
    assert dom.rows == expected
    assert dom.tags_in_cells == []  # "<b>eve&co</b>" stayed text
