"""python -m tys_server [--config PATH] [--port N]"""

import sys

from tys_server.server import main

sys.exit(main())
