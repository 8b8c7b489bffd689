"""``python -m interp.mcp``: the same as ``python -m interp mcp``."""

import sys

from . import main

sys.exit(main())
