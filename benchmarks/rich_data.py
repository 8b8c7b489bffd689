"""What charts and tables as data (issue 22) add to showing a figure or a frame.

    python3 -m benchmarks.rich_data

Measured in this process with the worker's own functions, each beside the
format the user already pays for in the same run: a figure's chart against
its PNG (``figure_png``), a frame's table against its HTML (``_repr_html_``).
Medians of several runs; the ratio is what matters (machines here are noisy).
Needs matplotlib and pandas; says so and exits 0 when they are missing.
"""

from __future__ import annotations

import statistics
import sys
import time
from typing import Any, Callable, List, Tuple


def _median(work: Callable[[], Any], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main() -> int:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import numpy as np
        import pandas as pd
    except ImportError as exc:
        print("skipped: %s (install matplotlib and pandas)" % exc)
        return 0
    from interp._worker.charts import figure_chart
    from interp._worker.figures import figure_png
    from interp._worker.tables import frame_table

    figures: List[Tuple[str, Any]] = []
    fig, ax = plt.subplots()
    x = np.linspace(0, 10, 1000)
    ax.plot(x, np.sin(x), label="sin")
    ax.plot(x, np.cos(x), label="cos")
    figures.append(("line, 2 x 1,000 points", fig))
    fig, ax = plt.subplots()
    ax.bar(["a", "b", "c", "d"], [1, 2, 3, 4])
    figures.append(("bar, 4 bars", fig))
    fig, ax = plt.subplots()
    ax.plot(np.arange(1_000_000), np.arange(1_000_000) % 7)
    figures.append(("line, 1,000,000 points", fig))
    fig, ax = plt.subplots()
    ax.boxplot([np.random.randn(1000) for _ in range(5)])
    figures.append(("boxplot, 5 boxes", fig))

    print("%-28s %12s %12s %8s" % ("figure", "PNG ms", "chart ms", "chart/PNG"))
    for name, figure in figures:
        png = _median(lambda: figure_png(figure), 5)
        chart = _median(lambda: figure_chart(figure), 5)
        print("%-28s %12.2f %12.2f %8.3f" % (name, png * 1e3, chart * 1e3, chart / png))

    frames = [("10 x 3", pd.DataFrame({"a": range(10), "b": 1.5, "c": "text"})),
              ("100,000 x 10", pd.DataFrame(np.random.randn(100_000, 10))),
              ("1,000 x 1,000", pd.DataFrame(np.random.randn(1000, 1000))),
              ("500 rows of 10 kB strings", pd.DataFrame({"s": ["x" * 10_000] * 500}))]
    print()
    print("%-28s %12s %12s %8s" % ("frame", "HTML ms", "table ms", "table/HTML"))
    for name, frame in frames:
        html = _median(frame._repr_html_, 5)
        table = _median(lambda: frame_table(frame), 5)
        print("%-28s %12.2f %12.2f %8.3f" % (name, html * 1e3, table * 1e3, table / html))
    return 0


if __name__ == "__main__":
    sys.exit(main())
