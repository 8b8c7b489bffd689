"""Jupyter parity (issue 25): the text/plain IPython's pretty printer gives,
a library's ``sys.displayhook`` still giving the run's result, pandas sized
as in a Jupyter kernel, and the magics notebooks use. The printer is checked
against fixed texts and, where IPython is installed, against IPython's own on
thousands of random structures; everything else runs in real workers."""

from __future__ import annotations

import collections
import random
import re
import types

import pytest

from interp import CodeInterpreter
from interp._worker.pretty import pretty


@pytest.fixture(scope="module")
def ci():
    with CodeInterpreter() as interpreter:
        yield interpreter


def run(ci: CodeInterpreter, code: str):
    result = ci.run_code(code)
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


def test_a_repr_that_raises_leaves_the_context_healthy(ci):
    result = run(ci, "class Bad:\n    def __repr__(self): raise ValueError('no')\nBad()")
    assert result.results[0].text == "<unrepresentable Bad object>"
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
