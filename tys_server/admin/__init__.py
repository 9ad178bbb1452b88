"""tys-admin, the organisers' command line: an HTTP client of /admin/* (DESIGN 15).

It runs beside the server (or anywhere that reaches it) and changes nothing itself: every
action is the server's, so memory and database never disagree. It imports nothing of
the server's layers (import-linter contract ``admin-is-a-client``): only the standard
library. ``cli`` holds the commands; ``python -m tys_server.admin`` and the console
script ``tys-admin`` run ``cli.main``.
"""
