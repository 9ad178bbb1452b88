"""One streaming libcurl transfer, ended from outside: after a stall, or when asked.

libcurl cannot cancel one transfer of a multi handle from outside, and calls no progress
callback on an idle socket. So a cut shuts the transfer's socket down
(``CURLINFO_ACTIVESOCKET``): the transfer then ends at once as a transport error (599),
and the reason given to the cut tells it from a real one. Used by ``spaces_firehose``,
whose stream never ends by itself.

``pause``/``resume`` are its back-pressure: a paused transfer reads nothing from its
socket, so the lines waiting to be applied stay bounded (libcurl's ``curl_easy_pause``).
"""

from __future__ import annotations

import asyncio
import os
import socket

import pycurl

_ABORT_RETRY_S = 0.05  # still resolving or connecting: no socket to cut yet


class TransferCut:
    """Watches the transfer in flight: no byte for stall_timeout_s → cut; ``cut()`` on demand.

    Call ``begin`` before the fetch, ``touch`` on every header line and body chunk, and
    ``end`` once the fetch is over; give ``on_curl`` as its ``prepare_curl_callback``.
    """

    def __init__(self) -> None:
        self.curl: pycurl.Curl | None = None  # the transfer in flight
        self.reason: str | None = None  # why it was cut (None: it was not)
        self.paused = False  # by pause(), until resume()
        self._stall_timeout_s = 0.0
        self._last_byte = 0.0  # loop time of the newest byte of the transfer
        self._stall_timer: asyncio.TimerHandle | None = None
        self._cut_timer: asyncio.TimerHandle | None = None

    def begin(self, stall_timeout_s: float) -> None:
        """A fetch starts now: the stall clock starts with it."""
        loop = asyncio.get_running_loop()
        self.reason = None
        self._stall_timeout_s = stall_timeout_s
        self._last_byte = loop.time()
        self._stall_timer = loop.call_later(stall_timeout_s, self._check_stall)

    def on_curl(self, curl: pycurl.Curl) -> None:
        """The fetch's curl handle (its prepare_curl_callback)."""
        self.curl = curl

    def touch(self) -> None:
        """A byte arrived, or the consumer applied some: the transfer is not stalled."""
        self._last_byte = asyncio.get_running_loop().time()

    def pause(self) -> None:
        """Read nothing more from the socket until ``resume`` (idempotent).

        Called every time the backlog is over its bound, not once: Tornado's streaming
        buffer unpauses the transfer itself after a pause of its own.
        """
        if self.curl is not None:
            try:
                self.curl.pause(pycurl.PAUSE_RECV)
            except pycurl.error:  # the transfer failed meanwhile: it is ending anyway
                return
            self.paused = True

    def resume(self) -> None:
        """Read from the socket again (libcurl wakes the transfer through its timer)."""
        if not self.paused:
            return
        self.paused = False
        if self.curl is not None:
            try:
                self.curl.pause(pycurl.PAUSE_CONT)
            except pycurl.error:
                pass

    def end(self) -> None:
        """The fetch is over: nothing left to watch or cut."""
        self.curl, self.paused = None, False
        for timer in (self._stall_timer, self._cut_timer):
            if timer is not None:
                timer.cancel()
        self._stall_timer = self._cut_timer = None

    def _check_stall(self) -> None:
        loop = asyncio.get_running_loop()
        idle_s = loop.time() - self._last_byte
        stall_s = self._stall_timeout_s
        if idle_s >= stall_s:
            self._stall_timer = None
            self.cut(f"no byte for {stall_s:g} s")
        else:
            self._stall_timer = loop.call_later(stall_s - idle_s, self._check_stall)

    def cut(self, reason: str) -> None:
        """End the transfer in flight now, by shutting its socket down."""
        curl = self.curl
        if curl is None:
            return
        self.reason = reason
        try:
            fd = curl.getinfo(pycurl.ACTIVESOCKET)
        except pycurl.error:
            fd = -1
        if fd < 0:  # resolving or connecting; connect_timeout bounds the wait
            self._cut_timer = asyncio.get_running_loop().call_later(
                _ABORT_RETRY_S, self.cut, reason)
            return
        try:
            with socket.socket(fileno=os.dup(fd)) as sock:  # a duplicate: curl closes its own
                sock.shutdown(socket.SHUT_RDWR)
        except OSError:  # already closed by the peer: the transfer is ending anyway
            pass
        self.resume()  # a paused transfer reads nothing, so it would never see the cut
