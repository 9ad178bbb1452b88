"""Thin Tornado handlers, the app factory, and the status page with its charts.

Handlers parse a request, call the service (or a feed's ingest), map domain errors to
HTTP statuses and write JSON; only this package knows status codes. May import every
layer below it but ``store`` (no SQL here); only ``server`` imports ``web``.
"""
