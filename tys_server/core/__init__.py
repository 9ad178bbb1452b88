"""The pure domain: the distance filter, the in-memory state, rankings, feed events.

Nothing here does I/O or reads a clock: times and tunings come in as plain values.
``core`` imports only the standard library and itself: no other ``tys_server``
package (not even ``config``), and no tornado, aiopg, psycopg2, pycurl or yaml
(import-linter contract ``pure-core``). Every other layer may import it.

- ``events``: what the feeds produce and the state consumes (Movement, Fix, ZoneVisit,
  IpSeen, DeviceExit, Batch); ``snapshot``: what memory is restored from.
- ``tracking``: the per-device distance filter (DESIGN 6); ``adaptive``: its adaptive
  mode; ``settling``: the walks the adaptive settle may end; ``gate``: fixes of the
  feeds without a movement trigger → movements.
- ``state``: the in-memory aggregate and its ingest loop; ``registry``: its users;
  ``days``: its distance per device per day; ``dirty``: its flush bookkeeping;
  ``zones``: zone visits per open minute;
  ``restore``: memory filled from the database or a spill file.
- ``users``: User and Profile; ``ranking``: places; ``leaderboard``: the boards kept
  current; ``groups``: team and company boards.
- ``calendar``: event days; ``units``; ``macs``: the MAC normaliser and hash;
  ``addresses``: IP addresses and the private ranges.
"""
