"""python -m tys_server.admin: the tys-admin command line."""

import sys

from tys_server.admin.cli import main

sys.exit(main())
