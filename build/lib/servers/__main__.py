"""``python -m servers serve NAME``: the serving CLI without the host (how child servers start)."""

import sys

from servers.core.cli import main

sys.exit(main())
