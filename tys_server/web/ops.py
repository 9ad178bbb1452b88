"""Operations endpoints: /healthz and /openapi.yaml."""

from __future__ import annotations

import importlib.resources

from tys_server.ops.sources import HealthSource
from tys_server.web.base import BaseHandler

OPENAPI = importlib.resources.files("tys_server.web") / "openapi.yaml"

class HealthHandler(BaseHandler):
    """200 while the database keeps up, 503 once it has been gone a while; no data.

    The body also holds each enabled feed's state (ops.feeds.Health); a feed's state
    never changes the status code (docs/operations.md says why).
    """

    source: HealthSource

    def get(self) -> None:
        ok, details = self.source.health()
        self.set_header("Cache-Control", "no-store")
        self.write_json(200 if ok else 503, {"status": "ok" if ok else "degraded", **details})

    head = get


class OpenApiHandler(BaseHandler):
    """The API description, as written in docs/openapi.yaml."""

    def get(self) -> None:
        try:
            text = OPENAPI.read_bytes()
        except OSError:
            self.send_json_error(404, "No API description installed")
            return
        self.set_header("Content-Type", "application/yaml")
        self.finish(text)
