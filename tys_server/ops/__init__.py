"""The operator's plumbing: health, metrics, feed states, start-up failures, TLS.

``metrics``: the Prometheus families (hooks and scrape-time gauges); ``feeds``: each
enabled feed's state, counts and event clock (``FeedBoard``, ``Health``);
``sources``: the protocols the operator's views read; ``sdnotify``: systemd's
readiness; ``startup``: a failed start-up told in one line, secrets masked; ``tls``:
the HTTPS server's TLS context.

May import ``core`` and ``config``; never ``store``, ``lookup``, ``feeds``, ``service``
or ``web``.
"""
