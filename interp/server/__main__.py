"""``python -m interp.server``: the same as ``python -m interp serve``."""

import sys

from . import main

if __name__ == "__main__":
    sys.exit(main())
