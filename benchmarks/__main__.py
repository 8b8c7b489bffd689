import sys

if sys.argv[1:2] == ["parity"]:  # Jupyter parity on real notebooks (benchmarks/parity)
    from .parity.run import main as parity

    raise SystemExit(parity(sys.argv[2:]))

from .run import main

raise SystemExit(main())
