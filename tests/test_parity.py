"""Jupyter parity (issue 25): the text/plain IPython's pretty printer gives,
a library's ``sys.displayhook`` still giving the run's result, pandas sized
as in a Jupyter kernel, and the magics notebooks use. The printer is checked
against fixed texts and, where IPython is installed, against IPython's own on
thousands of random structures; everything else runs in real workers."""

from __future__ import annotations

import collections
import os
import random
import re
import sys
import time
import types

import pytest

from interp import CodeInterpreter
from interp._worker.pretty import pretty


@pytest.fixture(scope="module")
def ci():
    with CodeInterpreter() as interpreter:
        yield interpreter


def run(ci: CodeInterpreter, code: str, **options):
    result = ci.run_code(code, **options)
    assert result.error is None, result.error.traceback
    return result


def text_of(ci: CodeInterpreter, code: str) -> str:
    result = run(ci, code)
    assert len(result.results) == 1, result.results
    return result.results[0].text


# -- the pretty printer, in process ------------------------------------------------------


class Plain:
    pass


class Lines:
    def __repr__(self) -> str:
        return "line1\nline2"


class Custom:
    def _repr_pretty_(self, p, cycle):
        with p.group(2, "C(", ")"):
            p.text("a,")
            p.breakable()
            p.text("b")


def signature_of(a, b=2, *rest, **options):
    pass


def test_types_functions_and_plain_objects_as_ipython_names_them():
    assert pretty(int) == "int"
    assert pretty(Plain) == "test_parity.Plain"
    assert re.fullmatch(r"<test_parity\.Plain at 0x[0-9a-f]+>", pretty(Plain()))
    assert re.fullmatch(r"<object at 0x[0-9a-f]+>", pretty(object()))
    assert pretty(len) == "<function len(obj, /)>"
    assert pretty(signature_of) == "<function test_parity.signature_of(a, b=2, *rest, **options)>"
    assert pretty(ValueError("x", 1)) == "ValueError('x', 1)"
    assert pretty(re.compile(r"\d+", re.I)) == r"re.compile(r'\d+', re.IGNORECASE|re.UNICODE)"


def test_sets_sorted_dicts_in_insertion_order():
    assert pretty({3, 1, 2}) == "{1, 2, 3}"
    assert pretty({"b", 10, 9, "A"}) == "{10, 9, 'A', 'b'}"  # not comparable: sorted by str
    assert pretty(frozenset()) == "frozenset()"
    assert pretty({"b": 1, "a": 2}) == "{'b': 1, 'a': 2}"
    assert pretty(collections.Counter("abracadabra")) == "Counter({'a': 5, 'b': 2, 'r': 2, 'c': 1, 'd': 1})"
    assert pretty(collections.defaultdict(list, {1: [2]})) == "defaultdict(list, {1: [2]})"
    assert pretty(collections.deque([1, 2], maxlen=3)) == "deque([1, 2], maxlen=3)"
    assert pretty(types.SimpleNamespace(a=1)) == "namespace(a=1)"
    assert pretty((1,)) == "(1,)"


def test_breaks_at_79_columns_with_ipython_indentation():
    assert pretty(dict(zip(range(3), "abc"))) == "{0: 'a', 1: 'b', 2: 'c'}"
    assert pretty(list(range(30))).splitlines()[:3] == ["[0,", " 1,", " 2,"]
    nested = pretty({"k": [list(range(12)), list(range(25))]})
    assert nested.splitlines()[:3] == ["{'k': [[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],", "  [0,", "   1,"]
    assert pretty(["x" * 100, 1]) == "['" + "x" * 100 + "',\n 1]"
    assert all(len(line) <= 79 for line in pretty([{"a": "x" * 30, "b": "y" * 30}] * 3).splitlines())


def test_repr_pretty_multiline_reprs_cycles_and_long_sequences():
    assert pretty(Custom()) == "C(a, b)"
    assert pretty([Lines(), Lines()]) == "[line1\n line2,\n line1\n line2]"
    loop: list = [1]
    loop.append(loop)
    assert pretty(loop) == "[1, [...]]"
    text = pretty(list(range(1100)))
    assert text.endswith(" 999,\n ...]")


def random_structure(rng: random.Random, depth: int = 0):
    if depth > 3 or rng.random() < 0.3:
        return rng.choice([rng.randint(-10 ** rng.randint(0, 12), 10 ** rng.randint(0, 12)),
                           "w" * rng.randint(0, 40), 1.25, None, b"ab", Plain, len])
    size = rng.randint(0, 12)
    kind = rng.choice(["list", "tuple", "dict", "set"])
    if kind == "set":
        return {rng.randint(0, 10 ** rng.randint(0, 9)) for _ in range(size)}
    items = [random_structure(rng, depth + 1) for _ in range(size)]
    if kind == "dict":
        return {"k%d" % rng.randint(0, 10 ** rng.randint(0, 6)): item for item in items}
    return items if kind == "list" else tuple(items)


def test_the_same_text_as_ipythons_printer():
    ipython = pytest.importorskip("IPython.lib.pretty")
    rng = random.Random(25)
    samples = [random_structure(rng) for _ in range(1500)]
    samples += [Custom(), [Custom()] * 30, [Lines(), Lines()], {Plain: signature_of},
                collections.OrderedDict(a=[1] * 40), types.SimpleNamespace(a=1, b=[1] * 40),
                set(range(1100)), [[1, [2, [3, "y" * 80]]]], [1, 2, "x" * 100]]
    different = [sample for sample in samples if pretty(sample) != ipython.pretty(sample)]
    assert not different, (pretty(different[0]), ipython.pretty(different[0]))


# -- results in a worker ---------------------------------------------------------------------


def test_results_carry_ipythons_text(ci):
    assert text_of(ci, "type(1)") == "int"
    assert re.fullmatch(r"<__main__\.A at 0x[0-9a-f]+>", text_of(ci, "class A: pass\nA()"))
    assert text_of(ci, "{i: 'x' * 10 for i in range(8)}").count("\n") == 7
    assert text_of(ci, "{'b', 'a'}") == "{'a', 'b'}"


def test_a_repr_that_raises_is_the_runs_error_and_the_context_stays_healthy(ci):
    error = ci.run_code("class Bad:\n    def __repr__(self): raise ValueError('no')\nBad()").error
    assert error is not None and error.name == "ValueError" and "__repr__" in error.traceback
    assert run(ci, "x = Bad()\ndisplay(x)").results[0].text == "<unrepresentable Bad object>"
    assert text_of(ci, "1 + 1") == "2"


def test_ipythons_own_printer_once_ipython_is_imported():
    pytest.importorskip("IPython.lib.pretty")
    with CodeInterpreter() as ci:
        run(ci, "import IPython.lib.pretty as p\np.pretty = lambda obj, **options: 'from IPython'")
        assert text_of(ci, "[1]") == "from IPython"


# -- a library's sys.displayhook -------------------------------------------------------------

HOOK = """
import sys, builtins
def library_hook(value):
    if value is not None:
        builtins._ = value
        print('<<%r>>' % (value,))
sys.displayhook = library_hook
"""


def test_a_replaced_displayhook_gives_the_result_not_stdout():
    with CodeInterpreter() as ci:
        result = run(ci, HOOK + "41 + 1")  # the same cell that installs it
        assert [r.text for r in result.results] == ["<<42>>"] and result.stdout == ""
        result = run(ci, "print('out')\n[1, 2]")
        assert [r.text for r in result.results] == ["<<[1, 2]>>"] and result.stdout == "out\n"
        assert text_of(ci, "_") == "<<[1, 2]>>"  # the library's hook kept _ as it does
        assert run(ci, "None").results == []
        run(ci, "sys.displayhook = sys.__displayhook__")  # back to Python's: interp's again
        assert text_of(ci, "type(1)") == "int"


def test_a_displayhook_that_raises_is_the_runs_error():
    with CodeInterpreter() as ci:
        run(ci, "import sys\ndef hook(value): raise RuntimeError('hook broke')\nsys.displayhook = hook")
        error = ci.run_code("1").error
        assert error is not None and error.name == "RuntimeError"
        run(ci, "sys.displayhook = sys.__displayhook__")
        assert text_of(ci, "2") == "2"


def test_sympy_init_printing_gives_results():
    pytest.importorskip("sympy")
    with CodeInterpreter() as ci:
        result = run(ci, "from sympy import symbols, init_printing\ninit_printing()\nx = symbols('x')\nx**2")
        assert result.stdout == ""
        assert result.results[0].text == " 2\nx "
        assert result.results[0].latex == "$\\displaystyle x^{2}$"
        assert result.results[0].png is not None or not matplotlib_installed()  # mathtext's PNG, as in a kernel
        assert text_of(ci, "type(x)") == "sympy.core.symbol.Symbol"  # not sympy's: IPython's text, as in a kernel
        assert text_of(ci, "'text'") == "'text'"
        assert run(ci, "[x, 1]").results[0].text == "[x, 1]"


def matplotlib_installed() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


# -- pandas as in Jupyter ----------------------------------------------------------------------


def test_pandas_wraps_wide_frames_as_jupyter_does():
    pytest.importorskip("pandas")
    with CodeInterpreter() as ci:
        run(ci, "import pandas as pd")
        assert text_of(ci, "pd.get_option('display.max_columns'), pd.get_option('display.width')") == "(20, 80)"
        frame = text_of(ci, "pd.DataFrame([[1000 * i for i in range(20)]] * 3)")
        assert "..." not in frame and frame.splitlines()[0].endswith("\\")
        run(ci, "pd.set_option('display.max_columns', 4)")  # the user's choice stands
        assert "..." in text_of(ci, "pd.DataFrame([[1000 * i for i in range(20)]] * 3)")


# -- figures as the inline backend shows them ------------------------------------------------


def test_figures_in_order_of_last_use_none_for_an_empty_one_and_drawing_errors_reported():
    pytest.importorskip("matplotlib")
    with CodeInterpreter() as ci:
        result = run(ci, "import matplotlib.pyplot as plt\nplt.figure(figsize=(2, 2)); plt.plot([1])\n"
                         "plt.figure(figsize=(3, 3)); plt.plot([2])\nplt.figure(1); plt.title('again');")
        assert [(r.text, r.png is not None) for r in result.results] == [
            ("<Figure size 300x300 with 1 Axes>", True), ("<Figure size 200x200 with 1 Axes>", True)]
        result = run(ci, "plt.figure();")
        assert [(r.text, r.png) for r in result.results] == [("<Figure size 640x480 with 0 Axes>", None)]
        result = ci.run_code("fig, ax = plt.subplots()\nax.text(0.5, 0.5, r'$\\frac{$');")
        assert result.error is not None and result.error.name == "ValueError"
        assert "frac" in result.error.traceback
        assert run(ci, "plt.get_fignums()").results[0].text == "[]"  # closed all the same


def test_config_inline_backend_figure_format():
    pytest.importorskip("matplotlib")
    with CodeInterpreter() as ci:
        run(ci, "%config InlineBackend.figure_format = 'svg'\nimport matplotlib.pyplot as plt")
        shown = run(ci, "plt.plot([1, 2]);").results[0]
        assert shown.svg is not None and shown.svg.lstrip().startswith("<?xml") and shown.png is None
        run(ci, "%config InlineBackend.figure_format = 'retina'")
        retina = run(ci, "plt.plot([1, 2]);").results[0]
        run(ci, "%config InlineBackend.figure_formats = ['png']")
        plain = run(ci, "plt.plot([1, 2]);").results[0]
        assert retina.png is not None and plain.png is not None and len(retina.png) > 2 * len(plain.png)
        run(ci, "%config Completer.use_jedi = False")  # other settings: accepted
        error = ci.run_code("%config InlineBackend.figure_format = 'gif'").error
        assert error is not None and error.name == "UsageError" and "gif" in error.value
        assert ci.run_code("%config junk").error.name == "UsageError"


# -- magics ------------------------------------------------------------------------------------


def test_file_xmode_prun_and_load_ext(tmp_path):
    with CodeInterpreter() as ci:
        ctx = ci.create_context(cwd=str(tmp_path))
        assert run(ci, "%%file note.txt\nhello\n", context=ctx).stdout == "Writing note.txt\n"
        assert (tmp_path / "note.txt").read_text() == "hello\n"
        assert run(ci, "%xmode Verbose", context=ctx).stdout == "Exception reporting mode: Verbose\n"
        assert run(ci, "%xmode", context=ctx).stdout == "Exception reporting mode: Minimal\n"
        assert "Valid modes" in run(ci, "%xmode bogus", context=ctx).stderr
        assert run(ci, "%pdb on", context=ctx).stdout == "Automatic pdb calling has been turned ON\n"
        assert run(ci, "%pdb", context=ctx).stdout == "Automatic pdb calling has been turned OFF\n"
        profiled = run(ci, "def work():\n    return sum(range(1000))\n%prun -l 5 work()", context=ctx)
        assert "function calls" in profiled.stdout and "work" in profiled.stdout
        assert "Ordered by: cumulative time" in run(ci, "%%prun -s cumulative\nwork()", context=ctx).stdout
        assert run(ci, "stats = %prun -q -r work()\ntype(stats).__name__", context=ctx).results[0].text == "'Stats'"
        assert run(ci, "%load_ext json", context=ctx).stdout == "The json module is not an IPython extension.\n"
        assert ci.run_code("%load_ext no_such_module_here", context=ctx).error.name == "ModuleNotFoundError"
        (tmp_path / "fake_extension.py").write_text("def load_ipython_extension(ip):\n    pass\n")
        error = ci.run_code("%load_ext fake_extension", context=ctx).error
        assert error.name == "UsageError" and "IPython's shell" in error.value
        assert ci.run_code("%autoreload 2", context=ctx).error.name == "UsageError"  # not loaded yet


def test_autoreload_reloads_a_changed_module(tmp_path):
    with CodeInterpreter() as ci:
        ctx = ci.create_context(cwd=str(tmp_path))
        (tmp_path / "mymodule.py").write_text("VALUE = 1\n")
        run(ci, "%load_ext autoreload\n%autoreload 2\nimport mymodule", context=ctx)
        assert "already loaded" in run(ci, "%load_ext autoreload", context=ctx).stdout
        assert run(ci, "mymodule.VALUE", context=ctx).results[0].text == "1"
        (tmp_path / "mymodule.py").write_text("VALUE = 2\n")
        os.utime(tmp_path / "mymodule.py", (time.time() + 5, time.time() + 5))
        result = run(ci, "mymodule.VALUE", context=ctx)
        assert result.results[0].text == "2"
        (tmp_path / "mymodule.py").write_text("VALUE = (\n")  # a broken edit: reported, the cell runs
        os.utime(tmp_path / "mymodule.py", (time.time() + 10, time.time() + 10))
        result = run(ci, "mymodule.VALUE", context=ctx)
        assert "[autoreload of mymodule failed: SyntaxError" in result.stderr and result.results[0].text == "2"


def test_aliases_and_automagic(tmp_path):
    with CodeInterpreter() as ci:
        ctx = ci.create_context(cwd=str(tmp_path))
        (tmp_path / "data.txt").write_text("one\ntwo\n")
        assert run(ci, "cat data.txt", context=ctx).stdout == "one\ntwo\n"
        assert "data.txt" in run(ci, "ls", context=ctx).stdout
        assert run(ci, "pwd", context=ctx).results[0].text == repr(str(tmp_path))
        run(ci, "mkdir sub", context=ctx)
        assert (tmp_path / "sub").is_dir()
        # not automagic: a Python name in use, an assignment, or more than one line
        assert run(ci, "pwd = 'mine'\npwd", context=ctx).results[0].text == "'mine'"
        assert run(ci, "pwd", context=ctx).results[0].text == "'mine'"
        assert run(ci, "cat = 1", context=ctx).results == []
        assert ci.run_code("x = 1\ncat data.txt", context=ctx).error.name == "SyntaxError"
        assert run(ci, "len", context=ctx).results[0].text == "<function len(obj, /)>"  # a builtin stays itself


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# -- the corpus harness's comparison (the harness itself is a benchmark, not a test) ------------


def test_parity_harness_compares_records_by_cause():
    sys.path.insert(0, ROOT)
    from benchmarks.parity.run import compare, stable_cells

    def record(stdout="", error=False, text="1", image=False):
        return {"error": error, "stdout": stdout, "shown": [{"main": True, "text": text, "image": image}]}

    jupyter = {"notebooks": {"nb": {"failed": None, "cells": [
        record("a\r\n"), record(text="<A at 0x7f00aa00bb00>"), record(error=True), record(image=True),
        record(text="2"), record(stdout="clock 1")]}}}
    again = {"notebooks": {"nb": {"failed": None, "cells": [
        record("a\r\n"), record(text="<A at 0x7f11cc00dd00>"), record(error=True), record(image=True),
        record(text="2"), record(stdout="clock 2")]}}}
    interp = {"notebooks": {"nb": {"failed": None, "cells": [
        record("a\n"), record(text="<A at 0x7f22ee00ff00>"), record(), record(), record(text="3"), record()]}}}
    stable = stable_cells(jupyter, again)
    assert stable[("nb", 5)] is False  # not the same twice in Jupyter: not counted
    agree, total, differences = compare(interp, jupyter, stable)
    assert (agree, total) == (2, 5)
    assert [d["cause"] for d in differences] == ["error status (no error in interp)", "image present", "text/plain"]
