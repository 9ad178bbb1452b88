"""GET/POST /meraki: Meraki's Scanning API v3 receiver (DESIGN 12.3 and 13).

Meraki GETs the URL once when it is saved and expects the validator as plain text;
then it POSTs about once a minute. A slow answer makes Meraki drop data for 15-20
minutes and failed POSTs are not resent, so the POST is read, answered and applied in
one IOLoop callback: the reply (its counts need the whole body read) is written before
the state takes the events, and nothing else runs in between, so a flush or a shutdown
sees a POST either not answered or answered and applied. The secret is in the body, so
the route has its own body cap (``body_caps`` for ``BodyLimit``) and may live on an
unguessable path.
"""

from __future__ import annotations

import gc
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import orjson

from tys_server.core.events import Batch, EventSink
from tys_server.feeds import meraki
from tys_server.web.base import BaseHandler

DEFAULT_PATH = "/meraki"
DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024  # a large network posts megabytes
BAD_BODY = "Expecting a Scanning API v3 JSON object with secret, version, type and data"
WRONG_SECRET = "Wrong secret"
BAD_VERSION = "Only Scanning API version 3 is supported"
_TEXT_TYPE = "text/plain; charset=utf-8"


class MerakiHandler(BaseHandler):
    """The validator on GET; a POST's observations into the sink, counts in the reply."""

    sink: EventSink
    validator: str
    secret: str
    hash_key: str = ""
    max_variance_m: float = meraki.DEFAULT_MAX_VARIANCE_M
    clock: Callable[[], float] = time.time
    on_batch: Callable[[Batch], None] | None = None
    known_ips: dict[str, str | None]  # the route's, across POSTs (feeds.meraki.read_post)

    def get(self, *_: Any) -> None:
        self.set_header("Content-Type", _TEXT_TYPE)
        self.finish(self.validator.encode())

    def post(self, *_: Any) -> None:
        with _collector_paused():
            self._receive()

    def _receive(self) -> None:
        try:
            body = orjson.loads(self.request.body)
        except orjson.JSONDecodeError:
            body = None
        now_s = self.clock()
        try:
            batch = meraki.read_post(body, now_s, secret=self.secret, hash_key=self.hash_key,
                                     max_variance_m=self.max_variance_m,
                                     known_ips=self.known_ips)
        except meraki.WrongSecret:
            self.send_json_error(403, WRONG_SECRET)
            return
        except meraki.UnsupportedVersion:
            self.send_json_error(400, BAD_VERSION)
            return
        except meraki.BadBody:
            self.send_json_error(400, BAD_BODY)
            return
        self.write_json(200, {"accepted": batch.accepted, "ignored": batch.ignored,
                              "rejected": batch.rejected})
        self.sink.ingest(batch, now_s)
        if self.on_batch is not None:
            self.on_batch(batch)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off for one POST's callback (back on after it).

    A POST of 1,000 clients x 5 fixes makes ~39,000 containers (33,000 of parsed JSON, 6,000
    events), alive for the whole callback: young collections inside it would promote them
    all, and every other POST would end in a full collection of the server's heap (13-28
    ms with the bench's 10,000 users, more in a bigger one). JSON and the events hold no
    cycles, so reference counting frees them when the callback ends.
    """
    if not gc.isenabled():  # start-up's load turns it off: leave that alone
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def routes(sink: EventSink, *, validator: str, secret: str, hash_key: str = "",
           max_variance_m: float = meraki.DEFAULT_MAX_VARIANCE_M, path: str = DEFAULT_PATH,
           clock: Callable[[], float] | None = None,
           on_batch: Callable[[Batch], None] | None = None) -> list[Any]:
    """The route of the receiver at path (taken with or without a trailing slash)."""
    if not path.startswith("/") or path.rstrip("/") == "":
        raise ValueError(f"feeds.meraki.path must be a path below /, got {path!r}")
    context: dict[str, Any] = {"sink": sink, "validator": validator, "secret": secret,
                               "hash_key": hash_key, "max_variance_m": max_variance_m,
                               "on_batch": on_batch, "known_ips": {}}
    if clock is not None:
        context["clock"] = clock
    return [(re.escape(path.rstrip("/")) + "/?", MerakiHandler, context)]


def body_caps(path: str = DEFAULT_PATH,
              max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> dict[str, int]:
    """The receiver's entry in BodyLimit's path_caps."""
    return {path.rstrip("/"): max_body_bytes}
