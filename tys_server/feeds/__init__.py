"""What comes in from the venue's location services, turned into ``core`` events.

One reader per feed, each pure (bytes or JSON in, a ``core.events.Batch`` out):
``cmx`` (CMX notification envelopes, with ``cmx_fields`` for single field values and
``legacy_mse`` for the old MSE envelopes), ``spaces_events`` (Cisco Spaces Firehose
lines, with ``spaces_fields`` for units, times and opaque ids) and ``meraki`` (Meraki
Scanning API v3 posts). The Firehose is the one feed TYS connects out to:
``spaces_firehose`` is its consumer, over ``lines`` (a chunked stream → lines),
``slices`` (lines applied a slice per loop turn), ``reconnect`` (the back-off) and
``transfer`` (ending a libcurl stream from outside). The feeds that POST to TYS are
received by ``web`` (notify, meraki).

May import ``core`` and ``config`` (and tornado's curl client, for the Firehose);
never ``store``, ``lookup``, ``ops``, ``service`` or ``web``.
"""
