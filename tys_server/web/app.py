"""make_app(settings, ...): the route table, the only place handlers get their context."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import tornado.web

from tys_server.config import Settings
from tys_server.core.events import Batch
from tys_server.ops.sources import HealthSource
from tys_server.service import Service
from tys_server.web import admin, board, live, meraki
from tys_server.web.base import BaseHandler, BasicAuth, HttpDate
from tys_server.web.limits import PathRule
from tys_server.web.notify import NotificationHandler
from tys_server.web.ops import HealthHandler, OpenApiHandler

access_log = logging.getLogger("tornado.access")

# /live/* and /admin/* bodies are a few hundred bytes; nobody needs to buffer more (DESIGN 13).
LIVE_MAX_BODY_BYTES = 64 * 1024


def log_request(handler: tornado.web.RequestHandler) -> None:
    """Only faults reach the log at INFO: no line per notification."""
    status = handler.get_status()
    if status >= 500:
        access_log.error("%d %s %.1fms", status, handler._request_summary(),
                         1000.0 * handler.request.request_time())
    elif access_log.isEnabledFor(logging.DEBUG):
        access_log.debug("%d %s %.1fms", status, handler._request_summary(),
                         1000.0 * handler.request.request_time())


def _logged_then(on_request: Callable[[tornado.web.RequestHandler], None]
                 ) -> Callable[[tornado.web.RequestHandler], None]:
    """log_request, then the on_request hook (metrics) for every finished request."""

    def log_function(handler: tornado.web.RequestHandler) -> None:
        log_request(handler)
        on_request(handler)

    return log_function


def make_app(settings: Settings, service: Service, health: HealthSource, *,
             clock: Callable[[], float] | None = None,
             on_batch: Callable[[Batch], None] | None = None,
             on_meraki_batch: Callable[[Batch], None] | None = None,
             on_request: Callable[[tornado.web.RequestHandler], None] | None = None,
             extra_routes: list[Any] | None = None) -> tornado.web.Application:
    """Build the Tornado application over an assembled service.

    on_batch sees each CMX batch applied, on_meraki_batch each Meraki POST's (metrics).
    """
    notify_auth = BasicAuth(settings.auth.notification)
    api_auth = BasicAuth(settings.auth.api)
    notify_ctx: dict[str, Any] = {"auth": notify_auth, "sink": service.state,
                                  "on_batch": on_batch}
    if clock is not None:
        notify_ctx["clock"] = clock
    feeds = settings.feeds
    routes: list[Any] = [
        *live.routes(settings, service, api_auth),
        (r"/healthz", HealthHandler, {"source": health}),
        (r"/openapi.yaml", OpenApiHandler),
    ]
    rules = [PathRule("/live", api_auth, min(LIVE_MAX_BODY_BYTES, settings.server.max_body_bytes),
                      below=True)]
    # The organisers' own pair: an API or monitoring password cannot export or erase.
    admin_auth = BasicAuth(settings.auth.admin)
    routes += admin.routes(settings, service, admin_auth)
    rules.append(PathRule("/admin", admin_auth,
                          min(LIVE_MAX_BODY_BYTES, settings.server.max_body_bytes), below=True))
    routes += board.routes(settings, service)  # the big screen; none when disabled
    rules += board.edge_rules(settings)
    if feeds.cmx.enabled:  # a Spaces- or Meraki-only site has no /notification to guard
        # First in the table: the busiest route is matched first.
        routes.insert(0, (r"/notification(/area)?/?", NotificationHandler, notify_ctx))
        rules += [PathRule("/notification", notify_auth),
                  PathRule("/notification/area", notify_auth)]
    if feeds.meraki.enabled:  # its secret is in the body: its own cap, checked first
        routes += meraki.routes(
            service.state, validator=feeds.meraki.validator, secret=feeds.meraki.secret,
            hash_key=settings.cmx.mac_hash_key, max_variance_m=feeds.meraki.max_variance_m,
            path=feeds.meraki.path, clock=clock, on_batch=on_meraki_batch)
        rules.append(PathRule(feeds.meraki.path, max_body_bytes=feeds.meraki.max_body_bytes))
    routes.extend(extra_routes or [])
    app = tornado.web.Application(
        routes, default_handler_class=NotFoundHandler,
        log_function=log_request if on_request is None else _logged_then(on_request),
        compress_response=False, xsrf_cookies=False, http_date=HttpDate(),
        security_headers=bool(settings.server.tls_cert and settings.server.tls_key),
        # What the HTTP server checks on the headers, before any body is read (web.limits).
        edge_rules=rules)
    app.in_flight = 0  # type: ignore[attr-defined]  # requests not finished yet (drain)
    return app


def in_flight(app: tornado.web.Application | None) -> int:
    """Requests started and not finished, for the graceful shutdown."""
    return getattr(app, "in_flight", 0)


class NotFoundHandler(BaseHandler):
    """Unknown paths get the JSON error shape too."""

    def prepare(self) -> None:
        self.send_json_error(404, "Not found")
