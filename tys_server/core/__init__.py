"""The pure domain: the distance filter, the in-memory state, rankings, feed events.

Nothing here does I/O or reads a clock: times and tunings come in as plain values.
``core`` imports only the standard library and itself: no other ``tys_server``
package (not even ``config``), and no tornado, aiopg, psycopg2 or pycurl.
"""
