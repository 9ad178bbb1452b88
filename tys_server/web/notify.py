"""POST /notification: CMX batches, through the CMX feed, into the in-memory state."""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import orjson

from tys_server.core.events import Batch, EventSink
from tys_server.feeds import cmx
from tys_server.web.base import BaseHandler

BAD_ENVELOPE = "Expecting a JSON object with a notifications list"


class NotificationHandler(BaseHandler):
    """Every entry of a batch is applied in order; malformed ones are counted."""

    sink: EventSink
    clock: Callable[[], float] = time.time
    on_batch: Callable[[Batch], None] | None = None

    def post(self, *_: Any) -> None:
        try:
            body = orjson.loads(self.request.body)
        except orjson.JSONDecodeError:
            body = None
        try:
            batch = cmx.ingest(self.sink, body, self.clock())
        except cmx.EnvelopeError:
            self.send_json_error(400, BAD_ENVELOPE)
            return
        if self.on_batch is not None:
            self.on_batch(batch)
        self.write_json(200, _counts_reply(batch.accepted, batch.ignored, batch.rejected))


@lru_cache(maxsize=1024)
def _counts_reply(accepted: int, ignored: int, rejected: int) -> bytes:
    """The reply to a batch: a few shapes (1/0/0 above all) encoded once, not per request."""
    return orjson.dumps({"accepted": accepted, "ignored": ignored, "rejected": rejected})
