"""IP → device: the IPs the feeds saw, the CMX v2/v3 location API, and test mode.

``observed``: the sightings the feeds reported (asked first, no network call);
``cmx_api``: the CMX client (asynchronous curl, host fail-over, test mode, MAC hashing);
``cmx_reply``: what one host's reply means.

May import ``core`` and ``config`` (and tornado's curl client for the CMX hosts);
never ``store``, ``feeds``, ``ops``, ``service`` or ``web``.
"""
