"""Charts as data (issue 22): matplotlib figures carry, beside their PNG,
``application/vnd.interp.chart+json`` in E2B's chart schema. The figures
are E2B's own chart tests' (python/tests/charts), run in a real worker, and
asserted the way those tests assert them, plus what they leave out."""

from __future__ import annotations

import datetime
import json
import os
import textwrap

import pytest

from helpers import worker_processes_of

pytest.importorskip("matplotlib")
np = pytest.importorskip("numpy")

from interp import CodeInterpreter  # noqa: E402

CHART = "application/vnd.interp.chart+json"
E2B_POINT_FIELDS = {"type", "title", "elements", "x_label", "y_label", "x_unit", "y_unit", "x_ticks",
                    "x_tick_labels", "x_scale", "y_ticks", "y_tick_labels", "y_scale"}


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One interpreter for the module (importing matplotlib costs a second per worker)."""
    interpreter = CodeInterpreter(cwd=str(tmp_path_factory.mktemp("charts")))
    try:
        yield interpreter
    finally:
        interpreter.close()
        assert worker_processes_of(os.getpid()) == []


def chart_of(ci, code: str):
    result = ci.run_code(textwrap.dedent(code))
    assert result.error is None, result.error
    assert len(result.results) == 1, result.results
    shown = result.results[0]
    assert shown.png, "a figure keeps its PNG"
    return shown.chart


def test_line_chart(shared):
    chart = chart_of(shared, """
        import numpy as np
        import matplotlib.pyplot as plt
        import datetime
        dates = [datetime.date(2023, 9, 1) + datetime.timedelta(seconds=i) for i in range(100)]
        x = np.linspace(0, 2 * np.pi, 100)
        plt.figure(figsize=(10, 6))
        plt.plot(dates, np.sin(x), label='sin(x)')
        plt.plot(dates, np.cos(x), label='cos(x)')
        plt.xlabel('Time (s)')
        plt.ylabel('Amplitude (Hz)')
        plt.title('Plot of sin(x) and cos(x)')
        plt.show()
        """)
    assert set(chart) == E2B_POINT_FIELDS
    assert chart["type"] == "line"
    assert chart["title"] == "Plot of sin(x) and cos(x)"
    assert (chart["x_label"], chart["y_label"]) == ("Time (s)", "Amplitude (Hz)")
    assert (chart["x_unit"], chart["y_unit"]) == ("s", "Hz")
    assert (chart["x_scale"], chart["y_scale"]) == ("datetime", "linear")
    assert all(isinstance(x, str) for x in chart["x_ticks"])
    assert isinstance(datetime.datetime.fromisoformat(chart["x_ticks"][0]), datetime.datetime)
    assert all(isinstance(y, float) for y in chart["y_ticks"])
    assert all(isinstance(label, str) for label in chart["x_tick_labels"] + chart["y_tick_labels"])
    first, second = chart["elements"]
    assert first["label"] == "sin(x)" and second["label"] == "cos(x)"
    assert len(first["points"]) == len(second["points"]) == 100
    assert all(isinstance(x, str) and isinstance(y, float) for x, y in first["points"])
    assert datetime.date.fromisoformat(first["points"][0][0]) == datetime.date(2023, 9, 1)
    assert first["points"][0][1] == 0.0 and second["points"][0][1] == 1.0


def test_log_chart(shared):
    chart = chart_of(shared, """
        import numpy as np
        import matplotlib.pyplot as plt
        x = np.linspace(0, 100, 100)
        plt.figure(figsize=(10, 6))
        plt.plot(x, np.exp(x), label='y = e^x')
        plt.yscale('log')
        plt.xlabel('X-axis')
        plt.ylabel('Y-axis (log scale)')
        plt.title('Chart with Log Scale on Y-axis')
        plt.legend()
        plt.grid(True)
        plt.show()
        """)
    assert chart["type"] == "line"
    assert chart["title"] == "Chart with Log Scale on Y-axis"
    assert (chart["x_unit"], chart["y_unit"]) == (None, "log scale")
    assert (chart["x_scale"], chart["y_scale"]) == ("linear", "log")
    assert all(isinstance(x, float) for x in chart["x_ticks"] + chart["y_ticks"])
    [line] = chart["elements"]
    assert line["label"] == "y = e^x" and len(line["points"]) == 100
    assert all(isinstance(x, float) and isinstance(y, float) for x, y in line["points"])


def test_scatter_chart(shared):
    chart = chart_of(shared, """
        import matplotlib.pyplot as plt
        import numpy as np
        N = 5
        plt.xlabel("A")
        plt.ylabel("B")
        plt.scatter(np.random.rand(N), np.random.rand(N), c='blue', label='Dataset 1')
        plt.scatter(np.random.rand(2 * N), np.random.rand(2 * N), c='red', label='Dataset 2')
        plt.show()
        """)
    assert set(chart) == E2B_POINT_FIELDS
    assert chart["type"] == "scatter" and chart["title"] is None
    assert (chart["x_label"], chart["y_label"]) == ("A", "B")
    assert (chart["x_scale"], chart["y_scale"]) == ("linear", "linear")
    assert all(isinstance(x, float) for x in chart["x_ticks"] + chart["y_ticks"])
    first, second = chart["elements"]
    assert (first["label"], len(first["points"])) == ("Dataset 1", 5)
    assert (second["label"], len(second["points"])) == ("Dataset 2", 10)
    assert all(len(point) == 2 and 0 <= point[0] <= 1 for point in first["points"])


def test_bar_chart(shared):
    chart = chart_of(shared, """
        import matplotlib.pyplot as plt
        authors = ['Author A', 'Author B', 'Author C', 'Author D']
        sales = [100, 200, 300, 400]
        plt.figure(figsize=(10, 6))
        plt.bar(authors, sales, label='Books Sold', color='blue')
        plt.xlabel('Authors')
        plt.ylabel('Number of Books Sold')
        plt.title('Book Sales by Authors')
        plt.tight_layout()
        plt.show()
        """)
    assert set(chart) == {"type", "title", "elements", "x_label", "y_label", "x_unit", "y_unit"}
    assert chart["type"] == "bar" and chart["title"] == "Book Sales by Authors"
    assert (chart["x_label"], chart["y_label"]) == ("Authors", "Number of Books Sold")
    assert (chart["x_unit"], chart["y_unit"]) == (None, None)
    assert [bar["value"] for bar in chart["elements"]] == [100, 200, 300, 400]
    assert [bar["label"] for bar in chart["elements"]] == ["Author A", "Author B", "Author C", "Author D"]
    assert [bar["group"] for bar in chart["elements"]] == ["Books Sold"] * 4


def test_horizontal_and_grouped_bars(shared):
    chart = chart_of(shared, """
        import matplotlib.pyplot as plt
        plt.barh(['x', 'y'], [3, 3])
        plt.xlabel('Count [n]')
        plt.ylabel('Letter')
        plt.show()
        """)
    # the category axis is x_label, as E2B turns horizontal bars
    assert (chart["x_label"], chart["y_label"], chart["y_unit"]) == ("Letter", "Count [n]", "n")
    assert [(bar["label"], bar["value"], bar["group"]) for bar in chart["elements"]] == \
        [("x", 3, "Group 0"), ("y", 3, "Group 0")]
    chart = chart_of(shared, """
        import numpy as np
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots()
        x = np.arange(3)
        ax.bar(x - 0.2, [1, 2, 3], 0.4, label='men')
        ax.bar(x + 0.2, [4, 5, -6], 0.4, label='women')
        ax.set_xticks(x, ['G1', 'G2', 'G3'])
        plt.show()
        """)
    assert [(bar["group"], bar["label"], bar["value"]) for bar in chart["elements"]] == [
        ("men", "G1", 1), ("men", "G2", 2), ("men", "G3", 3),
        ("women", "G1", 4), ("women", "G2", 5), ("women", "G3", -6)]


def test_pie_chart(shared):
    chart = chart_of(shared, """
        import matplotlib.pyplot as plt
        categories = ["No", "No, in blue"]
        fig, ax = plt.subplots(figsize=(8, 8))
        plt.xlabel("x")
        plt.ylabel("y")
        ax.pie([90, 10], labels=categories, autopct='%1.1f%%', startangle=90,
               colors=plt.cm.Pastel1.colors[:len(categories)])
        ax.axis('equal')
        plt.title('Will I wake up early tomorrow?')
        plt.show()
        """)
    assert set(chart) == {"type", "title", "elements"}
    assert chart["type"] == "pie" and chart["title"] == "Will I wake up early tomorrow?"
    assert chart["elements"] == [{"label": "No", "angle": 324, "radius": 1},
                                 {"label": "No, in blue", "angle": 36, "radius": 1}]


def test_box_and_whisker_chart(shared):
    chart = chart_of(shared, """
        import matplotlib.pyplot as plt
        data = {'Class A': [85, 90, 78, 92, 88], 'Class B': [95, 89, 76, 91, 84, 87],
                'Class C': [75, 82, 88, 79, 86]}
        fig, ax = plt.subplots(figsize=(10, 6))
        ax.boxplot(data.values(), tick_labels=data.keys())
        ax.set_title('Exam Scores Distribution')
        ax.set_xlabel('Class')
        ax.set_ylabel('Score')
        ax.boxplot(data.values(), tick_labels=data.keys(), patch_artist=True)
        plt.tight_layout()
        plt.show()
        """)
    assert chart["type"] == "box_and_whisker" and chart["title"] == "Exam Scores Distribution"
    assert (chart["x_label"], chart["y_label"], chart["x_unit"], chart["y_unit"]) == ("Class", "Score", None, None)
    assert len(chart["elements"]) == 3  # drawn twice, told once
    for box, values in zip(chart["elements"], ([85, 90, 78, 92, 88], [95, 89, 76, 91, 84, 87],
                                               [75, 82, 88, 79, 86])):
        q1, median, q3 = np.percentile(values, [25, 50, 75])
        assert (box["first_quartile"], box["median"], box["third_quartile"]) == \
            pytest.approx((q1, median, q3))
        assert all(isinstance(box[key], float) for key in ("min", "first_quartile", "median", "third_quartile", "max"))
    assert [box["label"] for box in chart["elements"]] == ["Class A", "Class B", "Class C"]
    b = chart["elements"][1]  # 76 is below q1 - 1.5 IQR
    assert (b["min"], b["max"], b["outliers"]) == (84, 95, [76])


def test_horizontal_boxes_with_outliers(shared):
    chart = chart_of(shared, """
        import matplotlib.pyplot as plt
        plt.boxplot([[1, 2, 3, 4, 5, 50], [2, 3, 4]], orientation='horizontal', tick_labels=['a', 'b'])
        plt.xlabel('Value')
        plt.show()
        """)
    a, b = chart["elements"]
    assert chart["x_label"] is None and chart["y_label"] == "Value"
    assert (a["label"], a["min"], a["median"], a["max"], a["outliers"]) == ("a", 1, 3.5, 5, [50])
    assert (b["label"], b["min"], b["median"], b["max"], b["outliers"]) == ("b", 2, 3, 4, [])


def test_superchart(shared):
    chart = chart_of(shared, """
        import matplotlib.pyplot as plt
        import numpy as np
        x1 = np.linspace(0, 10, 100)
        fig, axs = plt.subplots(1, 2, figsize=(10, 8))
        fig.suptitle('Multiple Charts Example', fontsize=16)
        axs[0].plot(x1, np.sin(x1), 'r')
        axs[0].set_title('Sine Wave')
        axs[0].grid(True)
        axs[1].scatter(np.random.rand(5), np.random.rand(5), c='blue', label='Dataset 1')
        axs[1].set_xlabel('X')
        axs[1].set_ylabel('Y')
        axs[1].set_title('Scatter Plot')
        axs[1].grid(True)
        plt.show()
        """)
    assert chart["type"] == "superchart" and chart["title"] == "Multiple Charts Example"
    first, second = chart["elements"]
    assert (first["type"], first["title"], first["x_label"], first["y_label"]) == ("line", "Sine Wave", None, None)
    assert len(first["elements"]) == 1 and len(first["elements"][0]["points"]) == 100
    assert first["elements"][0]["label"] == "Line 0"
    assert (second["type"], second["title"], second["x_label"], second["y_label"]) == \
        ("scatter", "Scatter Plot", "X", "Y")
    assert len(second["elements"]) == 1 and len(second["elements"][0]["points"]) == 5


def test_unknown_charts(shared):
    chart = chart_of(shared, """
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots()
        ax.add_artist(plt.Circle((0, 0), 1, color='blue', fill=False, linewidth=2))
        ax.add_artist(plt.Circle((0, 0), 2, color='red', fill=False, linewidth=2))
        ax.grid(True)
        plt.title('Two Concentric Circles')
        plt.show()
        """)
    assert chart == {"type": "unknown", "title": "Two Concentric Circles", "elements": []}
    for code in ("ax = plt.figure().add_subplot(projection='3d'); ax.plot([0, 1], [0, 1], [0, 1])",
                 "plt.imshow([[0, 1], [1, 0]])",
                 "plt.plot([0, 1]); plt.bar([0, 1], [1, 2])",  # a mix
                 "plt.fill_between([0, 1, 2], [0, 1, 0])"):
        chart = chart_of(shared, "import matplotlib.pyplot as plt\n%s\nplt.show()" % code)
        assert chart["type"] == "unknown", code


def test_scales(shared):
    chart = chart_of(shared, """
        import matplotlib.pyplot as plt
        plt.figure(figsize=(10, 6))
        plt.plot([1, 2, 3, 4, 5], ['A', 'B', 'C', 'D', 'E'])
        plt.show()
        """)
    assert (chart["x_scale"], chart["y_scale"]) == ("linear", "categorical")
    assert [point[1] for point in chart["elements"][0]["points"]] == ["A", "B", "C", "D", "E"]
    for scale in ("log", "symlog", "logit", "asinh"):
        chart = chart_of(shared, "import matplotlib.pyplot as plt\nplt.plot([0.1, 0.5, 0.9], [1, 2, 3])\n"
                                 "plt.xscale(%r)\nplt.show()" % scale)
        assert chart["x_scale"] == scale
    chart = chart_of(shared, """
        import numpy as np
        import matplotlib.pyplot as plt
        plt.plot(np.array(['2024-01-01', '2024-01-02', 'NaT'], dtype='datetime64[ns]'), [1, 2, 3])
        plt.show()
        """)
    assert chart["x_scale"] == "datetime"
    assert [x for x, _ in chart["elements"][0]["points"]] == ["2024-01-01T00:00:00", "2024-01-02T00:00:00", None]


def test_non_finite_numbers_are_null_and_the_json_is_strict(shared):
    result = shared.run_code("import matplotlib.pyplot as plt\n"
                             "plt.plot([0, 1, 2, 3], [1.0, float('nan'), float('inf'), -float('inf')])\nplt.show()")
    chart = result.results[0].chart
    assert [y for _, y in chart["elements"][0]["points"]] == [1.0, None, None, None]
    json.dumps(chart, allow_nan=False)


def test_a_blank_figure_has_no_chart_and_every_way_to_show_a_figure_has_one(shared):
    result = shared.run_code("import matplotlib.pyplot as plt\nfig, ax = plt.subplots()\nplt.show()")
    assert result.results[0].png and result.results[0].chart is None
    assert CHART not in result.results[0].formats() and "chart" not in result.results[0].formats()
    result = shared.run_code(textwrap.dedent("""
        import matplotlib.pyplot as plt
        fig = plt.figure(); plt.plot([1, 2], [3, 4]); display(fig)
        plt.figure(); plt.plot([5, 6], [7, 8])   # left open: captured at the end of the run
        fig
        """))
    shown = [(r.is_main_result, r.chart["elements"][0]["points"]) for r in result.results]
    assert shown[:2] == [(False, [[1.0, 3.0], [2.0, 4.0]]), (True, [[1.0, 3.0], [2.0, 4.0]])]
    assert shown[-1] == (False, [[5.0, 7.0], [6.0, 8.0]])  # open figures are captured at the end
    assert all(r.formats()[-1] == "chart" for r in result.results)


def test_include_and_exclude_work_on_the_chart(shared):
    result = shared.run_code(textwrap.dedent("""
        import matplotlib.pyplot as plt
        fig = plt.figure(); plt.plot([1, 2], [3, 4])
        display(fig, include=[%r])
        display(fig, exclude=[%r])
        plt.close(fig)
        """ % (CHART, CHART)))
    only, without = result.results
    assert only.formats() == ["chart"] and only.chart["type"] == "line"
    assert without.chart is None and without.png and without.text


def test_a_failing_extraction_keeps_the_png_and_the_run(shared):
    result = shared.run_code(textwrap.dedent("""
        import matplotlib.pyplot as plt
        fig = plt.figure(); plt.plot([1, 2], [3, 4])
        fig.get_axes = lambda: 1 / 0
        display(fig)
        fig2, (a, b) = plt.subplots(1, 2); a.plot([1, 2]); b.plot([3, 4])
        b.get_title = lambda *args: 1 / 0     # one Axes cannot be read: it is unknown
        display(fig2)
        plt.close('all')
        'still running'
        """))
    assert result.error is None and result.text == "'still running'"
    broken, half = result.results[:2]
    assert broken.png and broken.chart is None
    assert half.png and [c["type"] for c in half.chart["elements"]] == ["line", "unknown"]


def test_large_charts_are_thinned_and_say_so(shared):
    result = shared.run_code("import numpy as np, matplotlib.pyplot as plt\n"
                             "plt.plot(np.arange(300_000), np.arange(300_000) * 2)\n"
                             "plt.plot([0, 1], [5, 5], label='short')\nplt.show()")
    chart = result.results[0].chart
    assert chart["truncated"] is True
    long, short = chart["elements"]
    assert 10_000 < len(long["points"]) <= 20_000 and short["points"] == [[0.0, 5.0]]  # every k-th, one at least
    assert all(y == 2 * x for x, y in long["points"])
    assert long["points"][0] == [0.0, 0.0]
    result = shared.run_code("plt.plot(np.arange(20_000))\nplt.show()")
    chart = result.results[0].chart
    assert "truncated" not in chart and len(chart["elements"][0]["points"]) == 20_000


def test_bars_and_wedges_are_thinned_too():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from interp._worker.charts import figure_chart
    figure, (bars, pie) = plt.subplots(1, 2)
    try:
        bars.bar(range(300), 1)
        pie.pie([1] * 100)
        chart = figure_chart(figure, limit=80)
    finally:
        plt.close(figure)
    assert chart["truncated"] is True
    assert [len(element["elements"]) for element in chart["elements"]] == [60, 20]


def test_matplotlib_is_imported_only_by_user_code(shared):
    context = shared.create_context()
    result = shared.run_code(context=context, code="import sys\nclass Thing:\n    def __repr__(self): return 'thing'\n"
                         "display(Thing())\n[m for m in ('matplotlib', 'pandas', 'numpy') if m in sys.modules]")
    shared.delete_context(context)
    assert result.error is None and result.text == "[]"


def test_pandas_plots(shared):
    pytest.importorskip("pandas")
    chart = chart_of(shared, """
        import pandas as pd, matplotlib.pyplot as plt
        frame = pd.DataFrame({'v': [1.0, 2.0, 4.0]}, index=pd.date_range('2024-01-01', periods=3, freq='D'))
        frame.plot(title='daily')
        plt.show()
        """)
    assert chart["type"] == "line" and chart["title"] == "daily" and chart["x_scale"] == "datetime"
    assert chart["elements"] == [{"label": "v", "points": [["2024-01-01T00:00:00", 1.0], ["2024-01-02T00:00:00", 2.0],
                                                           ["2024-01-03T00:00:00", 4.0]]}]
    assert all(isinstance(tick, str) for tick in chart["x_ticks"])
    chart = chart_of(shared, """
        import pandas as pd, matplotlib.pyplot as plt
        pd.DataFrame({'a': [1, 2], 'b': [3, 4]}, index=['x', 'y']).plot.bar()
        plt.show()
        """)
    assert [(bar["group"], bar["label"], bar["value"]) for bar in chart["elements"]] == \
        [("a", "x", 1), ("a", "y", 2), ("b", "x", 3), ("b", "y", 4)]
    chart = chart_of(shared, "import numpy as np, matplotlib.pyplot as plt\n"
                             "plt.hist([1, 2, 2, 3, 3, 3], bins=[0.5, 1.5, 2.5, 3.5])\nplt.show()")
    assert [(bar["label"], bar["value"]) for bar in chart["elements"]] == [("1", 1), ("2", 2), ("3", 3)]


def test_e2b_classes_read_every_chart_unchanged(shared):
    """Where E2B's SDK is installed, its own Result turns each chart into its chart class."""
    e2b = pytest.importorskip("e2b_code_interpreter.models")
    codes = {"LineChart": "plt.plot([1, 2], [3, 4], label='a')", "ScatterChart": "plt.scatter([1], [2])",
             "BarChart": "plt.bar(['a', 'b'], [3, 4])", "PieChart": "plt.pie([1, 3], labels=['x', 'y'])",
             "BoxAndWhiskerChart": "plt.boxplot([[1, 2, 3, 4, 40]])", "Chart": "plt.imshow([[1]])",
             "SuperChart": "f, (a, b) = plt.subplots(1, 2); a.plot([1, 2]); b.bar(['q'], [1])"}
    for name, code in codes.items():
        chart = chart_of(shared, "import matplotlib.pyplot as plt\n%s\nplt.show()" % code)
        parsed = e2b.Result(chart=chart, is_main_result=False).chart
        assert type(parsed).__name__ == name and parsed.type.value == chart["type"]
        assert len(parsed.elements) == len(chart["elements"])


def test_markers_reference_lines_error_bars_and_colorbars(shared):
    chart = chart_of(shared, "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3], [4, 5, 6], 'o')\n"
                             "plt.axhline(5)\nplt.axvline(2)\nplt.show()")
    assert chart["type"] == "line"  # markers only are points too; axhline/axvline are no data
    assert chart["elements"] == [{"label": "Line 0", "points": [[1.0, 4.0], [2.0, 5.0], [3.0, 6.0]]}]
    chart = chart_of(shared, "import matplotlib.pyplot as plt\n"
                             "plt.bar(['a', 'b'], [3, 4], yerr=[0.5, 1], capsize=3)\nplt.show()")
    assert chart["type"] == "bar" and [bar["value"] for bar in chart["elements"]] == [3, 4]
    chart = chart_of(shared, "import matplotlib.pyplot as plt\n"
                             "plt.errorbar([1, 2], [3, 4], yerr=[0.1, 0.2], label='m')\nplt.show()")
    assert chart["type"] == "line" and chart["elements"][0] == {"label": "m", "points": [[1.0, 3.0], [2.0, 4.0]]}
    chart = chart_of(shared, "import matplotlib.pyplot as plt\n"
                             "points = plt.scatter([1, 2], [3, 4], c=[5, 6])\nplt.colorbar(points)\nplt.show()")
    assert chart["type"] == "scatter" and len(chart["elements"][0]["points"]) == 2
    chart = chart_of(shared, "import matplotlib.pyplot as plt\nplt.errorbar([1, 2], [3, 4], yerr=1, fmt='none')\n"
                             "plt.scatter([1, 2], [3, 4])\nplt.show()")
    assert chart["type"] == "scatter"
    assert chart["elements"] == [{"label": "Series 0", "points": [[1.0, 3.0], [2.0, 4.0]]}]


@pytest.mark.parametrize("options", ["", "notch=True", "showmeans=True, meanline=True",
                                     "patch_artist=True, showmeans=True, meanline=True",
                                     "orientation='horizontal', notch=True", "whis=(0, 100)"])
def test_box_variants_give_the_same_statistics(shared, options):
    chart = chart_of(shared, "import matplotlib.pyplot as plt\n"
                             "plt.boxplot([[1, 2, 3, 4, 10, 11, 12, 30], [5, 6, 7, 8, 9, 50]], %s)\nplt.show()"
                             % options)
    whole = options == "whis=(0, 100)"  # whiskers reach the extremes: no outliers
    assert [(b["min"], b["first_quartile"], b["median"], b["third_quartile"], b["max"], b["outliers"])
            for b in chart["elements"]] == [(1, 2.75, 7, 11.25, 30 if whole else 12, [] if whole else [30]),
                                            (5, 6.25, 7.5, 8.75, 50 if whole else 9, [] if whole else [50])]
