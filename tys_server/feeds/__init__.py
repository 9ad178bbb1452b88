"""What comes in from the venue's location services, turned into ``core`` events.

One module per feed (CMX notifications, the Cisco Spaces Firehose, Meraki's Scanning
API); each yields ``Movement``, ``ZoneVisit`` and ``IpSeen`` events into an event sink.
May import ``core`` and ``config``; never ``store``, ``lookup``, ``service`` or ``web``.
"""
