"""GET /board, the big screen: over HTTP, on the real server's edge, and in headless Chromium.

The runtime's clock is the test's (noon of a fixed day, no day edge near); walks go
straight into the runtime's state and the boards follow every change (refresh 0 s).
"""

from __future__ import annotations

import os
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import API_AUTH, CMX_AUTH, MONITOR_AUTH, json_of
from tests.support import chromium, event, rawhttp
from tests.support.clock import Clock
from tests.support.event import LEG_M, NOW_S, TODAY, walk
from tests.support.procserver import free_port
from tests.web.test_live import register
from tys_server.server import Runtime
from tys_server.web.board import CACHE_S, CONTENT_SECURITY_POLICY, REFRESH_S, BigScreen

PROFILE = "/live/profile"
STEPS_PER_LEG = 20  # a 50 ft leg of 2.5 ft steps
DOCS = Path(__file__).resolve().parents[2] / "docs"
# What people type, and what the page must show as text: markup, ampersands, quotes,
# right-to-left script, and the longest name of the widest letter.
SCRIPT = "<script>alert(1)</script>"
TEAM_AMP = "Fish & \"Chips\" <b>"
ALIAS_QUOTE = "O'Brien & <i>Co</i>"
RTL = "مريم العذراء"
LONG = "W" * 64


runtime_clock = event.noon_clock


@pytest.fixture
def overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Boards that follow every change and staff off them, plus a test's own (indirect)."""
    extra = dict(getattr(request, "param", {}))
    if extra.get("server.port") == "free":
        extra["server.port"] = free_port()  # taken now, not when the tests were collected
    return {"leaderboard.refresh_interval_s": 0.0,
            "leaderboard.exclude_email_domains": ("staff.example",), **extra}


async def walker(post: Any, runtime: Runtime, username: str, number: int, legs: int, *,
                 team: str | None = None, start_s: float = NOW_S - 1800,
                 **profile: Any) -> None:
    """Register username on 10.0.0.<number> (in team), set its profile, walk it."""
    ip = f"10.0.0.{number}"
    extra = {} if team is None else {"team": team}
    assert (await register(post, username, ip, **extra)).code == 201
    if profile:
        assert (await post(PROFILE, {"username": username, **profile})).code == 200
    walk(runtime, ip, legs, start_s)


async def hall(post: Any, runtime: Runtime) -> None:
    """Walkers with hostile names, an alias, a hidden one, a cheat and staff; one walked
    only yesterday. Legs: cheat 500, hidey 300, staff 200, script 90, alice 80, long 70,
    rtl 60, yesterday 50, amp 40, zero 0."""
    await walker(post, runtime, "cheat", 1, 500, team="Larks")
    assert runtime.service is not None
    await runtime.service.set_disqualified("cheat", True)
    await walker(post, runtime, "hidey", 2, 300, team="Larks", hidden=True)
    await walker(post, runtime, "erin@staff.example", 3, 200, team="Larks")
    await walker(post, runtime, SCRIPT, 4, 90, team=TEAM_AMP)
    await walker(post, runtime, "alice.smith", 5, 80, team="Larks", alias=ALIAS_QUOTE)
    await walker(post, runtime, LONG, 6, 70, team=LONG)
    await walker(post, runtime, RTL, 7, 60, team="فريق المشي")
    await walker(post, runtime, "yesterday", 8, 50, team="Larks", start_s=NOW_S - 86400)
    await walker(post, runtime, "amp&co", 9, 40, team=TEAM_AMP)
    await walker(post, runtime, "zero", 10, 0, team="Idle")


class Page(HTMLParser):
    """The page as a screen shows it: title, totals, and each board's rows of cell texts."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.title = ""
        self.totals: dict[str, str] = {}
        self.boards: dict[str, list[list[str]]] = {}
        self.empty: dict[str, str] = {}
        self.tags_in_cells: list[str] = []
        self._board = ""
        self._total = ""
        self._text: list[str] | None = None
        self._into = ""
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if self._into == "td":
            self.tags_in_cells.append(tag)
        if tag == "section":
            self._board = attributes.get("id") or ""
            self.boards[self._board] = []
        elif tag == "li" and (attributes.get("id") or "").startswith("total-"):
            self._total = (attributes.get("id") or "")[len("total-"):]
        elif tag == "tr" and attributes.get("class") == "row":
            self.boards[self._board].append([])
        elif tag in ("td", "h1") or (tag == "span" and attributes.get("class") == "value") \
                or (tag == "p" and attributes.get("class") == "empty"):
            self._text, self._into = [], tag

    def handle_endtag(self, tag: str) -> None:
        if self._text is None or tag != self._into:
            return
        text = "".join(self._text).strip()
        if tag == "td":
            self.boards[self._board][-1].append(text)
        elif tag == "h1":
            self.title = text
        elif tag == "span":
            self.totals[self._total] = text
        else:
            self.empty[self._board] = text
        self._text, self._into = None, ""

    def handle_data(self, data: str) -> None:
        if self._text is not None:
            self._text.append(data)


def steps_text(legs: int) -> str:
    return f"{legs * STEPS_PER_LEG:,}"


# -- HTTP ---------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_board_is_public_html_with_no_script_and_nothing_loaded(post: Any) -> None:
    reply = await post("/board", method="GET", auth=None)
    assert reply.code == 200
    assert reply.headers["Content-Type"] == "text/html; charset=UTF-8"
    assert reply.headers["Content-Security-Policy"] == \
        "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'" \
        == CONTENT_SECURITY_POLICY
    assert reply.headers["Cache-Control"] == f"public, max-age={CACHE_S:.0f}"
    assert CACHE_S < REFRESH_S  # each refresh finds the browser's copy stale
    body = reply.body.decode()
    assert f'<meta http-equiv="refresh" content="{REFRESH_S}">' in body
    assert "<script" not in body.lower()
    assert re.search(r"https?://|//[a-z]|url\(|@import|<link|<img|src=", body, re.I) is None
    page = Page(body)
    assert page.title == "Step challenge"
    assert set(page.boards) == {"overall", "today", "teams"}
    assert page.empty == {"overall": "Nobody has walked yet",
                          "today": "Nobody has walked today yet",
                          "teams": "No team has walked yet"}
    assert page.totals == {"km": "0.0", "miles": "0.0", "steps": "0", "walkers": "0"}
    assert (await post("/board/", method="GET", auth=None)).code == 200


@pytest.mark.gen_test
async def test_board_shows_the_apis_rankings_under_aliases(post: Any, runtime: Runtime) -> None:
    await hall(post, runtime)
    page = Page((await post("/board", method="GET", auth=None)).body.decode())
    api = {name: json_of(await post("/live/leaderboard", body))["leaders"]
           for name, body in (("overall", {"number_leaders": 10}),
                              ("today", {"number_leaders": 10, "date": TODAY}),
                              ("teams", {"number_leaders": 10, "by": "team"}))}
    for name in ("overall", "today"):
        assert page.boards[name] == [
            [str(e["place"]), e["username"], f"{e['steps']:,}"] for e in api[name]
            if e["steps"] > 0], name  # zero: a place on the dashboard, no line on the screen
    assert page.boards["teams"] == [[str(e["place"]), e["team"], f"{e['steps']:,}"]
                                    for e in api["teams"]]
    assert page.boards["overall"] == [
        ["1", SCRIPT, steps_text(90)], ["2", ALIAS_QUOTE, steps_text(80)],
        ["3", LONG, steps_text(70)], ["4", RTL, steps_text(60)],
        ["5", "yesterday", steps_text(50)], ["6", "amp&co", steps_text(40)]]
    assert [row[1] for row in page.boards["today"]] == [SCRIPT, ALIAS_QUOTE, LONG, RTL, "amp&co"]
    assert page.boards["teams"] == [
        ["1", TEAM_AMP, steps_text(130)], ["2", "Larks", steps_text(130)],
        ["3", LONG, steps_text(70)], ["4", "فريق المشي", steps_text(60)]]


@pytest.mark.gen_test
async def test_hidden_disqualified_and_real_names_behind_aliases_never_appear(
        post: Any, runtime: Runtime) -> None:
    await hall(post, runtime)
    body = (await post("/board", method="GET", auth=None)).body.decode()
    for absent in ("cheat", "hidey", "erin", "alice.smith", "zero"):
        assert absent not in body, absent


@pytest.mark.gen_test
async def test_every_name_users_typed_is_escaped(post: Any, runtime: Runtime) -> None:
    await hall(post, runtime)
    body = (await post("/board", method="GET", auth=None)).body.decode()
    assert "<script" not in body.lower() and "<b>" not in body and "<i>" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "Fish &amp; &quot;Chips&quot; &lt;b&gt;" in body
    assert "O&#x27;Brien &amp; &lt;i&gt;Co&lt;/i&gt;" in body
    assert "amp&amp;co" in body
    page = Page(body)
    assert page.tags_in_cells == []  # every name stayed text
    rtl_cell = re.search(r'<td class="name" dir="auto">مريم العذراء</td>', body)
    assert rtl_cell is not None  # its own direction, isolated from the numbers beside it


@pytest.mark.gen_test
async def test_totals_are_the_events_without_the_disqualified(post: Any,
                                                              runtime: Runtime) -> None:
    await hall(post, runtime)
    page = Page((await post("/board", method="GET", auth=None)).body.decode())
    api = json_of(await post("/live/leaderboard", {}))
    # hidey (hidden) and erin (staff) walked and count; cheat does not.
    legs = 300 + 200 + 90 + 80 + 70 + 60 + 50 + 40
    assert page.totals == {"km": f"{api['total_kilometres']:,.1f}",
                           "miles": f"{api['total_miles']:,.1f}",
                           "steps": steps_text(legs), "walkers": "9"}
    assert page.totals["km"] == f"{legs * LEG_M / 1000:,.1f}"


@pytest.mark.gen_test
async def test_the_title_is_the_events_and_escaped(post: Any, runtime: Runtime) -> None:
    screen = BigScreen(runtime.service, "Cisco Live <EMEA> & \"friends\"")  # type: ignore[arg-type]
    body = screen.html().decode()
    assert "<title>Cisco Live &lt;EMEA&gt; &amp; &quot;friends&quot;</title>" in body
    assert Page(body).title == "Cisco Live <EMEA> & \"friends\""


@pytest.mark.gen_test
async def test_the_page_is_built_at_most_every_cache_s(post: Any, runtime: Runtime) -> None:
    monotonic = Clock(1000.0)
    screen = BigScreen(runtime.service, "Hall", monotonic=monotonic)  # type: ignore[arg-type]
    first = screen.html()
    await walker(post, runtime, "late", 1, 30)
    for _ in range(100):  # a hundred screens within the cache time share one build
        assert screen.html() is first
    monotonic.now_s += CACHE_S - 0.01
    assert screen.html() is first
    monotonic.now_s += 0.01
    again = screen.html()
    assert Page(again.decode()).boards["overall"] == [["1", "late", steps_text(30)]]
    assert screen.html() is again


@pytest.mark.gen_test
@pytest.mark.parametrize("overrides", [{"tracking.timezone": "America/Los_Angeles"}],
                         indirect=True)
async def test_today_is_the_event_day_in_the_event_time_zone(post: Any, runtime: Runtime,
                                                             runtime_clock: Clock) -> None:
    runtime_clock.now_s = NOW_S + 15 * 3600  # 03:00 UTC on the 19th: 19:00 on the 18th there
    evening = NOW_S + 14 * 3600  # 18:00 there, 02:00 UTC on the 19th
    for username, number, legs, start_s in (("evening", 1, 30, evening),
                                            ("morning", 2, 20, NOW_S - 3 * 3600),
                                            ("day_before", 3, 40, NOW_S - 86400)):
        assert (await register(post, username, f"10.0.0.{number}")).code == 201
        walk(runtime, f"10.0.0.{number}", legs, start_s, runtime_clock.now_s)
    page = Page((await post("/board", method="GET", auth=None)).body.decode())
    assert [row[1] for row in page.boards["today"]] == ["evening", "morning"]
    assert [row[1] for row in page.boards["overall"]] == ["day_before", "evening", "morning"]
    assert "Wed 18 Nov · 19:00" in (await post("/board", method="GET", auth=None)).body.decode()


@pytest.mark.gen_test
@pytest.mark.parametrize("overrides", [{"board.enabled": False}], indirect=True)
async def test_board_is_404_when_disabled(post: Any, runtime: Runtime) -> None:
    for auth in (None, MONITOR_AUTH):
        reply = await post("/board", method="GET", auth=auth)
        assert (reply.code, json_of(reply)) == (404, {"error": "Not found"})


@pytest.mark.gen_test
@pytest.mark.parametrize("overrides", [{"board.require_auth": True,
                                        "board.title": "Private hall"}], indirect=True)
async def test_require_auth_wants_the_monitor_pair(post: Any, runtime: Runtime) -> None:
    for pair in (None, API_AUTH, CMX_AUTH, (MONITOR_AUTH[0], API_AUTH[1])):
        reply = await post("/board", method="GET", auth=pair)
        assert (reply.code, json_of(reply)) == (401, {"error": "Unauthorized"}), pair
        assert reply.headers["WWW-Authenticate"] == 'Basic realm="TYS"'
    ok = await post("/board", method="GET", auth=MONITOR_AUTH)
    assert ok.code == 200
    assert Page(ok.body.decode()).title == "Private hall"
    assert ok.headers["Cache-Control"] == f"private, max-age={CACHE_S:.0f}"


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("overrides", [{"board.require_auth": True, "server.port": "free"}],
                         indirect=True)
async def test_require_auth_refuses_on_the_headers_of_the_real_server(
        runtime: Runtime) -> None:
    runtime.listen()
    port = runtime.settings.server.port
    # A body announced and never sent: only a refusal on the headers can answer this.
    head = rawhttp.request_bytes("GET", "/board", length=1000)
    reply = await rawhttp.exchange(port, head)
    assert (reply.status, reply.json()) == (401, {"error": "Unauthorized"})
    ok = await rawhttp.exchange(port, rawhttp.request_bytes("GET", "/board", auth=MONITOR_AUTH))
    assert ok.status == 200 and ok.headers["content-type"] == "text/html; charset=UTF-8"


# -- headless Chromium --------------------------------------------------------------

SCREEN_W, SCREEN_H = 1920, 1080
MEASURE = """(() => {
  const name = document.querySelector('#overall td.name');
  const style = getComputedStyle(name);
  const texts = [...document.querySelectorAll('body *')]
    .filter(e => e.children.length === 0 && e.textContent.trim());
  const right = Math.max(...[...document.querySelectorAll('td, h1, .total')]
    .map(e => e.getBoundingClientRect().right));
  const long = [...document.querySelectorAll('td.name')]
    .find(e => e.textContent.startsWith('WWWW'));
  return {
    html: document.documentElement.outerHTML, scripts: document.scripts.length,
    nameFontPx: parseFloat(style.fontSize), nameColor: style.color,
    background: getComputedStyle(document.body).backgroundColor,
    smallestFontPx: Math.min(...texts.map(e => parseFloat(getComputedStyle(e).fontSize))),
    lightestWeight: Math.min(...texts.map(e => parseInt(getComputedStyle(e).fontWeight))),
    scrollWidth: document.documentElement.scrollWidth,
    scrollHeight: document.documentElement.scrollHeight,
    innerWidth: window.innerWidth, innerHeight: window.innerHeight, right: right,
    longCut: long.scrollWidth > long.clientWidth,
  };
})()"""


def luminance(css_rgb: str) -> float:
    """WCAG relative luminance of a computed "rgb(r, g, b)"."""
    channels = [int(part) / 255 for part in re.findall(r"\d+", css_rgb)[:3]]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(one: str, two: str) -> float:
    high, low = sorted((luminance(one), luminance(two)), reverse=True)
    return (high + 0.05) / (low + 0.05)


async def full_hall(post: Any, runtime: Runtime) -> None:
    """The hostile hall, and enough walkers today in enough teams for ten rows each."""
    await hall(post, runtime)
    for number in range(11, 19):
        await walker(post, runtime, f"walker {number}", number, 56 - number,
                     team=f"Team {number}")  # 45 to 38 legs: below the hostile names


@pytest.mark.slow
@pytest.mark.gen_test(timeout=240)
async def test_board_in_headless_chromium_on_a_1080p_screen(post: Any, runtime: Runtime,
                                                            http_port: int,
                                                            tmp_path: Path) -> None:
    path = chromium.binary()
    if path is None:
        pytest.skip("no chromium binary on PATH (Debian: apt-get install chromium)")
    await full_hall(post, runtime)
    browser = await chromium.Browser.start(path, tmp_path / "profile", SCREEN_W, SCREEN_H)
    try:
        tab = await browser.open(f"http://127.0.0.1:{http_port}/board", SCREEN_W, SCREEN_H)
        seen = await tab.evaluate(MEASURE)
        png = await tab.screenshot()
    finally:
        await browser.close()

    page = Page(seen["html"])
    assert page.title == "Step challenge"
    assert {name: len(rows) for name, rows in page.boards.items()} == \
        {"overall": 10, "today": 10, "teams": 10}
    assert page.boards["overall"][0] == ["1", SCRIPT, steps_text(90)]
    assert page.boards["today"][:2] == [["1", SCRIPT, steps_text(90)],
                                        ["2", ALIAS_QUOTE, steps_text(80)]]
    assert page.boards["teams"][0] == ["1", TEAM_AMP, steps_text(130)]
    assert page.totals["walkers"] == "17"
    assert page.tags_in_cells == [] and seen["scripts"] == 0
    # Readable from 10 m: large, bold, light on dark.
    assert seen["nameFontPx"] >= 40
    assert seen["smallestFontPx"] >= 24 and seen["lightestWeight"] >= 600
    assert contrast(seen["nameColor"], seen["background"]) >= 7  # WCAG AAA
    # One 16:9 screen, no scrolling either way; the longest name is cut, not spilled.
    assert (seen["innerWidth"], seen["innerHeight"]) == (SCREEN_W, SCREEN_H)
    assert seen["scrollWidth"] <= SCREEN_W and seen["scrollHeight"] <= SCREEN_H
    assert seen["right"] <= SCREEN_W
    assert seen["longCut"] is True

    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    size = (int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big"))
    assert size == (SCREEN_W, SCREEN_H)
    (tmp_path / "board.png").write_bytes(png)
    if os.environ.get("TYS_UPDATE_SCREENSHOTS") == "1":  # the README's picture, on request
        (DOCS / "board.png").write_bytes(png)


# -- HEAD ----------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_head_answers_the_gets_status_and_headers_without_a_body(post: Any) -> None:
    got = await post("/board", method="GET", auth=None)
    head = await post("/board", method="HEAD", auth=None)
    assert (head.code, head.body) == (200, b"")
    for name in ("Content-Type", "Content-Security-Policy", "Cache-Control", "Content-Length"):
        assert head.headers[name] == got.headers[name], name
    assert int(head.headers["Content-Length"]) == len(got.body)


@pytest.mark.gen_test
@pytest.mark.parametrize("overrides", [{"board.require_auth": True}], indirect=True)
async def test_head_wants_the_monitor_pair_like_get(post: Any, runtime: Runtime) -> None:
    assert (await post("/board", method="HEAD", auth=None)).code == 401
    assert (await post("/board", method="HEAD", auth=MONITOR_AUTH)).code == 200


@pytest.mark.gen_test
@pytest.mark.parametrize("overrides", [{"board.enabled": False}], indirect=True)
async def test_head_is_404_when_disabled(post: Any, runtime: Runtime) -> None:
    assert (await post("/board", method="HEAD", auth=None)).code == 404
