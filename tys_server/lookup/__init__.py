"""IP → device: the IPs the feeds saw, the CMX v2/v3 location API, and test mode.

May import ``core`` and ``config`` (and tornado's curl client for the CMX hosts);
never ``store``, ``feeds``, ``service`` or ``web``.
"""
