"""Headless Chromium driven over the DevTools protocol: open a page, read it, photograph it.

`--dump-dom` gives the markup only; a page's computed styles and scroll sizes need the
browser's own answers. DevTools' Runtime.evaluate runs outside the page's CSP, so a
page that forbids scripts can still be measured. One browser process per `Browser`,
talked to over one WebSocket (Tornado's client), with flat sessions per tab.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import shutil
from pathlib import Path
from typing import Any

from tornado.websocket import WebSocketClientConnection, websocket_connect

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--remote-debugging-port=0")
_LISTENING = re.compile(rb"DevTools listening on (ws://\S+)")
START_TIMEOUT_S = 60.0


def binary() -> str | None:
    """The Chromium on PATH, or None."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


class DevToolsError(Exception):
    """The browser refused a command."""


class Browser:
    """One headless Chromium process and its DevTools connection."""

    def __init__(self, process: asyncio.subprocess.Process, ws: WebSocketClientConnection,
                 drain: asyncio.Future[bytes]) -> None:
        self.process = process
        self.ws = ws
        self._drain = drain
        self._next_id = 0
        self._events: list[dict[str, Any]] = []

    @classmethod
    async def start(cls, path: str, user_data: Path, width: int, height: int) -> Browser:
        """Start Chromium with a window of width x height and connect to it."""
        process = await asyncio.create_subprocess_exec(
            path, *FLAGS, f"--user-data-dir={user_data}", f"--window-size={width},{height}",
            "about:blank", stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        assert process.stderr is not None
        try:
            url = await asyncio.wait_for(_devtools_url(process.stderr), START_TIMEOUT_S)
            ws = await websocket_connect(url, max_message_size=64 << 20)
        except BaseException:
            process.kill()
            await process.wait()
            raise
        # The browser logs on stderr all along: keep reading, or a full pipe stalls it.
        drain = asyncio.ensure_future(process.stderr.read())
        return cls(process, ws, drain)

    async def call(self, method: str, session: str | None = None, **params: Any) -> Any:
        """Send one command (to a tab's session) and return its result."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session is not None:
            message["sessionId"] = session
        await self.ws.write_message(json.dumps(message))
        while True:
            reply = await self._read()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise DevToolsError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self._events.append(reply)

    async def event(self, method: str, session: str) -> dict[str, Any]:
        """Wait for an event of a tab (one already received counts)."""
        while True:
            for index, event in enumerate(self._events):
                if event.get("method") == method and event.get("sessionId") == session:
                    return self._events.pop(index)
            self._events.append(await self._read())

    async def _read(self) -> dict[str, Any]:
        raw = await self.ws.read_message()
        if raw is None:
            raise DevToolsError("the browser closed the DevTools connection")
        return json.loads(raw)  # type: ignore[no-any-return]

    async def open(self, url: str, width: int, height: int) -> Tab:
        """The first tab, showing url at width x height CSS pixels, once it has loaded."""
        targets = (await self.call("Target.getTargets"))["targetInfos"]
        target = next(t["targetId"] for t in targets if t["type"] == "page")
        session = (await self.call("Target.attachToTarget", targetId=target,
                                   flatten=True))["sessionId"]
        await self.call("Page.enable", session)
        await self.call("Emulation.setDeviceMetricsOverride", session, width=width,
                        height=height, deviceScaleFactor=1, mobile=False)
        await self.call("Page.navigate", session, url=url)
        await self.event("Page.loadEventFired", session)
        return Tab(self, session)

    async def close(self) -> None:
        """Close the browser and wait for its process."""
        try:
            await self.call("Browser.close")
        except DevToolsError:
            pass  # it closed the connection while closing: that is the answer
        finally:
            self.ws.close()
            await self.process.wait()
            await self._drain


class Tab:
    """One loaded page."""

    def __init__(self, browser: Browser, session: str) -> None:
        self.browser = browser
        self.session = session

    async def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression in the page (outside its CSP)."""
        result = await self.browser.call("Runtime.evaluate", self.session,
                                         expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise DevToolsError(f"evaluate: {result['exceptionDetails']}")
        return result["result"]["value"]

    async def screenshot(self) -> bytes:
        """A PNG of the viewport."""
        data = await self.browser.call("Page.captureScreenshot", self.session, format="png")
        return base64.b64decode(data["data"])


async def _devtools_url(stderr: asyncio.StreamReader) -> str:
    """The browser's DevTools WebSocket URL, from the line it prints once listening."""
    while line := await stderr.readline():
        found = _LISTENING.search(line)
        if found:
            return found.group(1).decode()
    raise DevToolsError("Chromium exited before its DevTools server listened")
