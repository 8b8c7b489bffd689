"""``python -m interp.mcp``: the same as ``python -m interp mcp``."""

import sys

from . import main

if __name__ == "__main__":
    sys.exit(main())
