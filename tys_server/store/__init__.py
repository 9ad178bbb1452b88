"""PostgreSQL: the pool, the schema, the start-up load, the flush, the embedded server.

The only package with SQL. May import ``core`` and ``config``; never ``feeds``,
``lookup``, ``service`` or ``web``.
"""
