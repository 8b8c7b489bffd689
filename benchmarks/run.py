"""interp benchmarks: every figure beside floors and the Jupyter peer
measured in the same run.

Run from the repository root: ``python3 -m benchmarks`` or
``python3 benchmarks/run.py``. ``--quick`` takes under a minute; ``--only``
picks benchmarks; the figures also go to a JSON file. Absolute times drift
on a shared machine: compare the ratios, which come from the same run.
See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
import traceback
from typing import List, Optional

_HERE = os.path.dirname(os.path.abspath(__file__))
if __package__ in (None, ""):  # run as a script: make ``benchmarks`` and ``interp`` importable
    sys.path.insert(0, os.path.dirname(_HERE))

from benchmarks import jupyter_peer, report  # noqa: E402
from benchmarks.common import Results, Settings, log  # noqa: E402
from benchmarks.interp_figures import BENCHMARKS  # noqa: E402

DEFAULT_JSON = os.path.join(_HERE, "results", "latest.json")


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python3 -m benchmarks", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="fewer repetitions, 200 contexts for scale, no 1M lines (< 1 minute)")
    parser.add_argument("--only", metavar="NAME[,NAME]",
                        help="run only these benchmarks: %s" % ", ".join(BENCHMARKS))
    parser.add_argument("--json", metavar="FILE", default=DEFAULT_JSON,
                        help="where to write the figures (default: benchmarks/results/latest.json)")
    parser.add_argument("--repeat-scale", type=float, default=1.0, metavar="X",
                        help="multiply repetition counts by X (e.g. 0.01 for a smoke test)")
    parser.add_argument("--no-peer", action="store_true", help="do not measure the Jupyter peer")
    args = parser.parse_args(argv)
    if args.repeat_scale <= 0:
        parser.error("--repeat-scale must be > 0")
    names = list(BENCHMARKS)
    if args.only:
        names = [name.strip() for name in args.only.split(",") if name.strip()]
        unknown = [name for name in names if name not in BENCHMARKS]
        if unknown:
            parser.error("unknown benchmark(s) %s; choose from %s" % (", ".join(unknown), ", ".join(BENCHMARKS)))
    args.names = names
    return args


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    settings = Settings(quick=args.quick, repeat_scale=args.repeat_scale, peer=not args.no_peer)
    results = Results()
    peer = None
    if args.no_peer:
        results.skipped.append("jupyter peer: skipped: --no-peer")
    else:
        reason = jupyter_peer.unavailable()
        if reason:
            results.skipped.append("jupyter peer: skipped: %s (see benchmarks/README.md to install it)"
                                   % reason)
        else:
            peer = jupyter_peer.JupyterPeer()
    for line in results.skipped:
        log(line)
    began = time.perf_counter()
    try:
        for name in args.names:
            log("[%6.1fs] %s" % (time.perf_counter() - began, name))
            try:
                BENCHMARKS[name](results, settings, peer)
            except Exception as exc:
                traceback.print_exc()
                results.errors.append("%s: %s: %s" % (name, type(exc).__name__, exc))
    finally:
        if peer is not None:
            peer.close()
    elapsed = time.perf_counter() - began
    log("[%6.1fs] done" % elapsed)

    report.print_table(results, sys.stdout)
    meta = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "argv": sys.argv[1:] if argv is None else list(argv),
        "quick": args.quick,
        "repeat_scale": args.repeat_scale,
        "benchmarks": args.names,
        "elapsed_s": elapsed,
    }
    report.write_json(results, meta, args.json)
    print("figures written to %s (%.1fs)" % (os.path.relpath(args.json), elapsed))
    return 1 if results.errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
