"""python -m tys_server [--config PATH] [--port N]"""

import sys

from .server import main

sys.exit(main())
