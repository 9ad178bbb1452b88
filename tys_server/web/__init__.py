"""Thin Tornado handlers, the app factory, and the HTML pages.

Handlers parse a request, call the service (or a feed's ingest), map domain errors to
HTTP statuses and write JSON; only this package knows status codes. ``app``: make_app
and the route table; ``base``: the one error writer, Basic auth, JSON bodies;
``limits``: refusals on the headers (401, 413) before a body is read; ``requests``:
/live/* bodies → the service's arguments; ``live``: /live/*; ``admin``: /admin/*;
``notify``: /notification (CMX); ``meraki``: the Meraki receiver; ``ops``: /healthz
and /openapi.yaml; ``status``: /metrics and /status; ``board``: /board; ``pages``:
the page templates (``templates/``); ``charts``: their inline SVG charts. The API
description, ``openapi.yaml``, ships here too.

May import every layer below it but ``store`` (no SQL here: contract ``no-sql-in-web``);
only ``runtime`` imports ``web`` (contract ``web-only-from-server``).
"""
