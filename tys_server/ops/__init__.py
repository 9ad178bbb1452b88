"""The operator's plumbing: Prometheus metrics and systemd's readiness protocol.

May import ``core`` and ``config``; never ``service`` or ``web``.
"""
