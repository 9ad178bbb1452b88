"""PostgreSQL: the pool, the schema, the start-up load, the flush, the embedded server.

The only package with SQL (the schema files in ``sql/`` ship with it). ``database``:
the Store, every operation as one unit of work; ``pool``: how a unit of work runs,
retries and fails; ``load``: the start-up load; ``users`` and ``privacy``: the
statements of the user transactions and of erasure and purge; ``flush_rows`` and
``flush_sql``: what a flush writes and as which statements; ``flusher``: the periodic
flush with back-off and health; ``spill``: the file a shutdown without a database
writes; ``embedded``: the embedded PostgreSQL of the zero-config default.

May import ``core`` and ``config``; never ``feeds``, ``lookup``, ``ops``, ``service``
or ``web``.
"""
