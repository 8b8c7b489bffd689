"""Tables as data (issue 22): a pandas DataFrame or Series shown as a result
carries ``application/vnd.dataresource+json``, the Frictionless table pandas
writes; big frames are cut and say so, odd frames keep their other formats."""

from __future__ import annotations

import json
import os
import textwrap

import pytest

from helpers import worker_processes_of

pytest.importorskip("pandas")

from interp import CodeInterpreter

TABLE = "application/vnd.dataresource+json"
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One interpreter for the module (importing pandas costs a second per worker)."""
    interpreter = CodeInterpreter(cwd=str(tmp_path_factory.mktemp("tables")))
    interpreter.run_code("import pandas as pd, numpy as np, datetime")
    try:
        yield interpreter
    finally:
        interpreter.close()
        assert worker_processes_of(os.getpid()) == []


def shown(ci, code: str, html: bool = True):
    result = ci.run_code(textwrap.dedent(code))
    assert result.error is None, result.error
    [main] = [r for r in result.results if r.is_main_result]
    assert main.text and (main.html or not html), "the other formats are always there"
    return main


def names(table):
    return [field["name"] for field in table["schema"]["fields"]]


def test_a_dataframe_is_a_frictionless_table(shared):
    data = shown(shared, "pd.DataFrame({'a': [1, 2, 3], 'b': ['x', 'y', 'z']})").data
    assert [(field["name"], field["type"]) for field in data["schema"]["fields"]] == \
        [("index", "integer"), ("a", "integer"), ("b", "string")]
    assert data["schema"]["primaryKey"] == ["index"]
    assert data["data"] == [{"index": 0, "a": 1, "b": "x"}, {"index": 1, "a": 2, "b": "y"},
                            {"index": 2, "a": 3, "b": "z"}]
    assert "truncated" not in data and "total_rows" not in data
    # what pandas itself writes
    assert data == json.loads(shared.run_code("pd.DataFrame({'a': [1, 2, 3], 'b': ['x', 'y', 'z']})"
                                              ".to_json(orient='table')").text.strip("'"))


def test_a_series_and_an_empty_frame(shared):
    data = shown(shared, "pd.Series([1.5, 2.5], name='price', index=['a', 'b'])", html=False).data
    assert names(data) == ["index", "price"]
    assert data["data"] == [{"index": "a", "price": 1.5}, {"index": "b", "price": 2.5}]
    assert names(shown(shared, "pd.Series([1, 2])", html=False).data) == ["index", "values"]
    assert shown(shared, "pd.DataFrame()").data["data"] == []


def test_nan_nat_and_infinities_are_null(shared):
    data = shown(shared, """
        pd.DataFrame({'f': [1.0, np.nan, np.inf], 'd': pd.to_datetime(['2024-01-02', None, '2024-01-03']),
                      'n': pd.array([1, None, 3], dtype='Int64')})
        """).data
    assert [row["f"] for row in data["data"]] == [1.0, None, None]
    assert [row["d"] for row in data["data"]] == ["2024-01-02T00:00:00.000", None, "2024-01-03T00:00:00.000"]
    assert [row["n"] for row in data["data"]] == [1, None, 3]
    json.dumps(data, allow_nan=False)


def test_odd_frames_keep_their_other_formats(shared):
    # objects pandas cannot write become their str()
    data = shown(shared, "class Odd:\n    def __str__(self): return 'odd!'\n"
                         "pd.DataFrame({'o': [Odd(), 1 + 2j], 'p': pd.period_range('2020-01', periods=2, freq='M')})"
                 ).data
    assert [row["o"] for row in data["data"]] == ["odd!", "(1+2j)"]
    assert [row["p"] for row in data["data"]] == ["2020-01", "2020-02"]
    # no table, the rest is there
    for code in ("pd.DataFrame([[1, 2]], columns=['a', 'a'])",  # duplicate columns would lose values
                 "pd.DataFrame([[1, 2]], columns=pd.MultiIndex.from_tuples([('a', 'b'), ('a', 'c')]))",
                 "pd.DataFrame({'index': [1]})",  # a column named like the index
                 "pd.DataFrame({'b': [b'\\xff']})"):  # bytes that are not text
        result = shown(shared, code)
        assert result.data is None and TABLE not in result.formats(), code
    # an object whose str() raises: pandas' own repr fails too, which (as in Jupyter) is the run's error
    run = shared.run_code("class Bad:\n    def __str__(self): raise RuntimeError('no')\n"
                          "pd.DataFrame({'x': [Bad()]})")
    assert run.error is not None and run.error.name == "RuntimeError" and run.results == []
    # a MultiIndex on the rows is a compound primary key
    data = shown(shared, "pd.DataFrame({'v': [1, 2]}, index=pd.MultiIndex.from_tuples([('a', 1), ('a', 2)]))").data
    assert data["schema"]["primaryKey"] == ["level_0", "level_1"]
    assert data["data"][1] == {"level_0": "a", "level_1": 2, "v": 2}


def test_large_frames_are_cut_to_1000_rows_and_1_MiB(shared):
    data = shown(shared, "pd.DataFrame({'n': range(5000)})").data
    assert len(data["data"]) == 1000 and data["data"][-1]["n"] == 999
    assert data["truncated"] is True and data["total_rows"] == 5000
    data = shown(shared, "pd.DataFrame({'s': ['x' * 10_000] * 500})").data
    size = len(json.dumps({k: data[k] for k in ("schema", "data")}, separators=(",", ":")))
    assert 900 * 1024 < size <= MiB and 0 < len(data["data"]) < 500
    assert data["truncated"] is True and data["total_rows"] == 500
    data = shown(shared, "pd.DataFrame({'s': ['x' * (2 * 1024 * 1024)]})").data  # one row too big
    assert data["data"] == [] and data["truncated"] is True and data["total_rows"] == 1
    result = shown(shared, "pd.DataFrame(np.zeros((1, 100_000)))")  # the schema alone is too big
    assert result.data is None


def test_include_and_exclude_work_on_the_table(shared):
    result = shared.run_code("df = pd.DataFrame({'a': [1]})\ndisplay(df, include=[%r])\ndisplay(df, exclude=[%r])"
                             % (TABLE, TABLE))
    only, without = result.results
    assert only.formats() == ["data"] and only.data["data"] == [{"index": 0, "a": 1}]
    assert without.data is None and without.html


def test_pandas_and_matplotlib_stay_apart(shared):
    context = shared.create_context()
    try:
        result = shared.run_code(context=context, code="import sys, pandas as pd\n"
                                 "display(pd.DataFrame({'a': [1]}))\n'matplotlib' in sys.modules")
        assert result.text == "False" and result.results[0].data
        pytest.importorskip("matplotlib")
        other = shared.create_context()
        try:
            result = shared.run_code(context=other, code="import sys, matplotlib.pyplot as plt\nplt.plot([1])\n"
                                     "plt.show()\n'pandas' in sys.modules")
            assert result.text == "False" and result.results[0].chart
        finally:
            shared.delete_context(other)
    finally:
        shared.delete_context(context)
