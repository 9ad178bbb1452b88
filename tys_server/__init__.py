"""TYS, the Track Your Steps back-end: walked distance from a venue's location feeds.

The packages are the layers of DESIGN section 2 (docs/architecture.md draws them); each
``__init__`` lists its modules and says what they may import. From the top:

- ``__main__`` and ``server``: the start-up chain ending in ``main``; ``runtime``: the
  assembled server (database, state, flusher, service, app, HTTP); ``background``: the
  feeds and periodic tasks beside the HTTP server.
- ``web`` (thin handlers) → ``service`` (the use cases) → ``store``, ``lookup``,
  ``feeds``, ``ops`` (independent of one another) → ``core`` (the pure domain).
- ``config``: a leaf every layer but ``core`` may import. ``admin``: tys-admin, an HTTP
  client that imports no layer of the server.

The arrows are import-linter contracts in pyproject.toml: ``make lint`` fails on a wrong
one.
"""
