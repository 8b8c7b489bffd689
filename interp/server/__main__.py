"""``python -m interp.server``: the same as ``python -m interp serve``."""

import sys

from . import main

sys.exit(main())
