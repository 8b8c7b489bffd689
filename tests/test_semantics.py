"""Beyond the seed (issue 3): results and display, execution counts, stdin,
interrupt and restart, top-level await, completion."""

from __future__ import annotations

import base64
import importlib.util
import os
import textwrap
import threading
import time

import pytest

from helpers import process_exists, wait_until
from interp import (CodeInterpreter, ContextNotFoundError, ContextRestartedError, ExecutionResult, InterpTimeoutError,
                    Result, RunCancelledError)

RICH = textwrap.dedent("""
    class Rich:
        def __repr__(self):
            return "Rich()"
        def _repr_html_(self):
            return "<b>rich</b>"
        def _repr_markdown_(self):
            return "**rich**"
        def _repr_svg_(self):
            return "<svg/>"
        def _repr_png_(self):
            return b"\\x89PNG-bytes"
        def _repr_jpeg_(self):
            return b"\\xff\\xd8jpeg"
        def _repr_latex_(self):
            return "$x$"
        def _repr_json_(self):
            return {"a": [1, 2]}
        def _repr_javascript_(self):
            return "alert(1)"

    class Broken:
        def __repr__(self):
            return "Broken()"
        def _repr_html_(self):
            raise RuntimeError("formatter bug")
        def _repr_markdown_(self):
            return 42  # not a string: ignored

    class Bundle:
        def _repr_mimebundle_(self, include=None, exclude=None):
            return {"text/plain": "bundle!", "application/vnd.custom+json": {"k": 1},
                    "text/html": "<i>b</i>"}, {}
""")


# -- 1. results and display ------------------------------------------------------------


def test_last_expression_is_the_main_result(ci):
    result = ci.run_code("2 + 2")
    assert result.text == "4"
    assert result.results == [Result(text="4", is_main_result=True)]
    assert result.stdout == ""


def test_only_the_last_statement_counts(ci):
    assert ci.run_code("1\n2\nx = 3").results == []
    assert ci.run_code("x\nx + 1").text == "4"
    assert ci.run_code("None").results == []
    assert ci.run_code("print('p')").results == []  # print returns None
    assert ci.run_code("for i in range(3):\n    i").results == []


def test_trailing_semicolon_suppresses(ci):
    assert ci.run_code("5;").results == []
    assert ci.run_code("5 ;  # comment").results == []
    assert ci.run_code("5  # comment;").text == "5"
    assert ci.run_code("s = 'a;'\ns").text == "'a;'"


def test_underscore_holds_the_last_value(ci):
    ci.run_code("21 * 2")
    assert ci.run_code("print(_)").stdout == "42\n"


def test_mime_bundle_from_repr_methods(ci):
    ci.run_code(RICH)
    result = ci.run_code("Rich()").results[0]
    assert result.is_main_result
    assert (result.text, result.html, result.markdown, result.svg) == ("Rich()", "<b>rich</b>", "**rich**", "<svg/>")
    assert base64.b64decode(result.png) == b"\x89PNG-bytes"
    assert base64.b64decode(result.jpeg) == b"\xff\xd8jpeg"
    assert (result.latex, result.json, result.javascript) == ("$x$", {"a": [1, 2]}, "alert(1)")
    assert result.formats() == ["text", "html", "markdown", "svg", "png", "jpeg", "latex", "json",
                                "javascript"]


def test_failing_formatters_are_skipped(ci):
    ci.run_code(RICH)
    result = ci.run_code("Broken()")
    assert result.error is None
    assert result.results == [Result(text="Broken()", is_main_result=True)]


def test_repr_mimebundle_and_extra(ci):
    ci.run_code(RICH)
    result = ci.run_code("Bundle()").results[0]
    assert (result.text, result.html) == ("bundle!", "<i>b</i>")
    assert result.extra == {"application/vnd.custom+json": {"k": 1}}
    assert result.formats() == ["text", "html", "application/vnd.custom+json"]


def test_display_adds_results_in_order(ci):
    ci.run_code(RICH)
    streamed = []
    result = ci.run_code("print('before')\ndisplay(1, 'two')\ndisplay(Rich())\n[3]",
                         on_result=streamed.append)
    assert [(r.text, r.is_main_result) for r in result.results] == [
        ("1", False), ("'two'", False), ("Rich()", False), ("[3]", True)]
    assert streamed == result.results
    assert result.text == "[3]"
    assert result.stdout == "before\n"


def test_display_takes_ipython_keywords(ci):
    ci.run_code(RICH)
    result = ci.run_code(
        "display({'text/html': '<b>raw</b>', 'image/png': b'\\x89P', 'text/plain': 'raw'}, raw=True)\n"
        "display({'text/markdown': '*md*'}, raw=True, metadata={'x': 1})\n"
        "display(Rich(), include=['text/html'])\n"
        "display(Rich(), exclude=['image/png', 'image/svg+xml', 'image/jpeg'])\n"
        "display(Rich(), include=['application/x-nothing-it-has'])")  # no format left: nothing shown
    raw, markdown_only, included, excluded = result.results
    assert (raw.text, raw.html, raw.png) == ("raw", "<b>raw</b>", "iVA=")  # bytes became base64
    assert (markdown_only.text, markdown_only.markdown) == ("", "*md*")
    assert included.formats() == ["html"] and included.text is None  # as in IPython: text/plain not included
    assert {"png", "svg", "jpeg"}.isdisjoint(excluded.formats()) and "html" in excluded.formats()
    error = ci.run_code("display('not a bundle', raw=True)").error
    assert error.name == "TypeError" and "MIME bundles" in error.value


def test_results_stream_while_running(ci):
    seen = []
    start = time.monotonic()
    ci.run_code("import time\ndisplay('early')\ntime.sleep(3)",
                on_result=lambda r: seen.append(time.monotonic() - start))
    assert seen and seen[0] < time.monotonic() - start - 1.5


def test_display_is_a_builtin_in_new_contexts(ci):
    ctx = ci.create_context()
    assert ci.run_code("display('x')", context=ctx).results == [Result(text="'x'")]


def test_unrepresentable_value(ci):
    # the cell's value: the error is the run's, as Jupyter reports it (issue 25); display(): a placeholder
    result = ci.run_code("class R:\n    def __repr__(self):\n        raise ValueError('no repr')\nR()")
    assert result.error is not None and result.error.name == "ValueError" and result.results == []
    assert ci.run_code("display(R())").results[0].text == "<unrepresentable R object>"


def test_huge_bundles_are_cut_to_fit(ci):
    code = ("class Big:\n    def _repr_html_(self):\n        return 'x' * 40_000_000\n"
            "    def __repr__(self):\n        return 'Big()'\nBig()")
    result = ci.run_code(code, timeout=120).results[0]
    assert result.text == "Big()" and result.html is None
    assert result.extra == {"application/x-interp-dropped": ["text/html"]}


HUGE_KEYS = ("class B:\n    def _repr_mimebundle_(self, include=None, exclude=None):\n"
             "        return {'text/plain': 'keep me', 'x/' + 'k' * %d: 'v', 'y/' + 'k' * %d: 'w', 'z/short': 'z'}\n"
             "display(B())")


@pytest.mark.limit(120)
def test_a_bundle_past_the_results_budget_is_cut_keeping_its_text(ci):
    """Issue 21: a 22 MB bundle of huge MIME keys fits the worker's frame but
    not the parent's 16 MiB budget; it is cut as the worker cuts (largest
    formats first), keeping text/plain, not dropped whole."""
    seen = []
    result = ci.run_code(HUGE_KEYS % (11_000_000, 11_000_000), timeout=120, on_result=seen.append)
    assert result.error is None and result.truncated
    kept = result.results[0]
    assert kept.text == "keep me" and kept.extra["z/short"] == "z"
    dropped = kept.extra["application/x-interp-dropped"]
    assert len(dropped) == 1 and dropped[0][:5] in ("x/kkk", "y/kkk")
    assert len(dropped[0]) < 300  # the name is clipped
    assert len(seen[0].extra) == 3  # on_result received it whole


def test_results_cut_to_a_small_budget_and_stand_ins():
    with CodeInterpreter(max_output=1000) as ci:
        result = ci.run_code(HUGE_KEYS % (3000, 2000) + "\ndisplay('x' * 5000)")
        first, second = result.results
        assert first.text == "keep me" and first.extra["application/x-interp-dropped"][0].startswith("x/")
        assert "y/" + "k" * 2000 not in first.extra  # both huge keys went, largest first
        assert second.text.startswith("[interp: a result of ") and result.truncated


def test_results_are_bounded_in_count():
    """Issue 21 item 7: stand-ins count too; past MAX_KEPT_RESULTS one stand-in
    counts the rest, while on_result still receives every result."""
    from interp import core

    MAX_KEPT_RESULTS = getattr(core, "MAX_KEPT_RESULTS", 10_000)
    with CodeInterpreter(max_output=1000) as ci:
        received = []
        result = ci.run_code("for i in range(%d): display(i)" % (MAX_KEPT_RESULTS + 2500),
                             on_result=lambda r: received.append(r.text), timeout=60)
        assert len(received) == MAX_KEPT_RESULTS + 2500 and received[-1] == str(MAX_KEPT_RESULTS + 2499)
        assert len(result.results) == MAX_KEPT_RESULTS + 1 and result.truncated
        assert result.results[0].text == "0"
        assert result.results[-2].text.startswith("[interp: a result of ")
        assert result.results[-1].text.startswith("[interp: 2500 more results (")
        assert ci.run_code("display(1)").results[0].text == "1"  # the next run starts afresh
    with CodeInterpreter(max_output=None) as ci:  # unlimited means unlimited
        assert len(ci.run_code("for i in range(%d): display(i)" % (MAX_KEPT_RESULTS + 5)).results) == \
            MAX_KEPT_RESULTS + 5


@pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None, reason="matplotlib not installed")
@pytest.mark.limit(120)
def test_matplotlib_figures_become_png_results(ci):
    result = ci.run_code("import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.show()\n"
                         "print(plt.get_backend(), len(plt.get_fignums()))", timeout=120)
    assert result.error is None
    assert result.stdout.lower() == "agg 0\n"  # shown figures are closed
    assert len(result.results) == 1
    figure = result.results[0]
    assert not figure.is_main_result and figure.text.startswith("<Figure")
    assert base64.b64decode(figure.png).startswith(b"\x89PNG\r\n\x1a\n")
    # figures left open at the end of a run are emitted the same way
    result = ci.run_code("fig, ax = plt.subplots()\nax.bar([1], [2]);")
    assert [r.formats() for r in result.results] == [["text", "png", "chart"]]  # chart: issue 22
    assert ci.run_code("len(plt.get_fignums())").text == "0"
    assert ci.run_code("fig").results[0].png  # a Figure value renders as PNG too


# -- 2. execution counts ---------------------------------------------------------------


def test_execution_count(ci):
    assert ci.run_code("1").execution_count == 1
    assert ci.run_code("1/0").execution_count == 2
    assert ci.run_code("syntax error here").execution_count == 3
    ci.complete("pri")  # completion is not a run
    assert ci.run_code("1").execution_count == 4
    other = ci.create_context()
    assert ci.run_code("1", context=other).execution_count == 1
    ci.restart_context()
    assert ci.run_code("1").execution_count == 1


# -- 3. stdin ------------------------------------------------------------------------


def test_on_input_can_interrupt_the_codes_input(ci):
    """InputInterrupted from on_input: input() (and sys.stdin.readline())
    raise KeyboardInterrupt in the code, which may catch it; the run goes on."""
    from interp.commands import InputInterrupted

    def interrupt(prompt):
        raise InputInterrupted

    code = ("import sys\nfor name, read in (('input', input), ('readline', sys.stdin.readline)):\n"
            "    try:\n        read()\n    except KeyboardInterrupt:\n        print('caught', name)\n"
            "print(input('again? '))")
    answers = iter([InputInterrupted, InputInterrupted, "yes"])

    def answer(prompt):
        value = next(answers)
        if value is InputInterrupted:
            raise value
        return value

    result = ci.run_code(code, on_input=answer)
    assert result.error is None and result.stdout == "caught input\ncaught readline\nyes\n"
    error = ci.run_code("input()", on_input=interrupt).error
    assert error.name == "KeyboardInterrupt" and "input()" in error.traceback


def test_stdin_text_feeds_input_and_sys_stdin(ci):
    code = ("a = input()\nb = input('prompt: ')\nimport sys\nrest = sys.stdin.read()\n"
            "print(repr(a), repr(b), repr(rest))")
    result = ci.run_code(code, stdin="one\ntwo\nthree\nfour\n")
    assert result.stdout == "prompt: 'one' 'two' 'three\\nfour\\n'\n"
    assert ci.run_code("input()", stdin="").error.name == "EOFError"
    # the next run has no stdin again
    assert ci.run_code("input()").error.name == "EOFError"


def test_stdin_reaches_subprocesses_and_large_input(ci):
    result = ci.run_code("import subprocess\nsubprocess.run(['wc', '-l'])", stdin="a\nb\nc\n")
    assert result.stdout.strip() == "3"
    big = "line\n" * 100_000
    result = ci.run_code("import sys\nprint(len(sys.stdin.read()))", stdin=big)
    assert result.stdout == "%d\n" % len(big)
    result = ci.run_code("print(input())", stdin=big)  # most of it is never read
    assert result.stdout == "line\n"


def test_on_input_callback(ci):
    prompts, threads = [], set()

    def answer(prompt):
        prompts.append(prompt)
        threads.add(threading.get_ident())
        return "reply %d" % len(prompts)

    result = ci.run_code("a = input('first? ')\nb = input()\nprint(a, '|', b)", on_input=answer)
    assert result.stdout == "reply 1 | reply 2\n"  # prompts are not printed
    assert prompts == ["first? ", ""]
    assert threads == {threading.get_ident()}


def test_on_input_eof_and_errors(ci):
    def eof(prompt):
        raise EOFError

    assert ci.run_code("input('x')", on_input=eof).error.name == "EOFError"
    with pytest.raises(ValueError, match="callback"):
        ci.run_code("input()", on_input=lambda p: (_ for _ in ()).throw(ValueError("callback broke")))
    with pytest.raises(TypeError, match="on_input must return a str"):
        ci.run_code("input()", on_input=lambda p: 42)
    with pytest.raises(ValueError, match="not both"):
        ci.run_code("input()", stdin="x", on_input=lambda p: "y")
    with pytest.raises(TypeError):
        ci.run_code("1", on_input="not callable")
    assert ci.run_code("print('usable')").stdout == "usable\n"


def test_input_from_a_thread_gets_eof(ci):
    code = ("import threading\nout = []\n"
            "def read():\n    try:\n        input()\n    except EOFError:\n        out.append('eof')\n"
            "t = threading.Thread(target=read)\nt.start()\nt.join()\nprint(out)")
    assert ci.run_code(code, on_input=lambda p: "never").stdout == "['eof']\n"


def test_blocked_input_honours_timeout(ci):
    ci.run_code("kept = 1")
    # the worker waits for a line that a stdin pipe never delivers
    with pytest.raises(InterpTimeoutError) as info:
        ci.run_code("import os\nr, w = os.pipe()\nos.dup2(r, 0)\ninput()", timeout=0.5)
    assert info.value.result.error.name == "KeyboardInterrupt"
    assert ci.run_code("print(kept)").stdout == "1\n"


# -- 4. interrupt and restart ------------------------------------------------------------


def test_interrupt_from_another_thread(ci):
    ci.run_code("kept = 1")
    threading.Timer(0.5, ci.interrupt).start()
    result = ci.run_code("import time\nprint('working')\ntime.sleep(30)")
    assert result.error.name == "KeyboardInterrupt"
    assert result.stdout == "working\n"
    assert ci.run_code("print(kept)").stdout == "1\n"


def test_interrupt_reaches_child_processes(ci):
    ctx = ci.create_context()
    threading.Timer(0.5, ci.interrupt, (ctx,)).start()
    start = time.monotonic()
    result = ci.run_code("import subprocess\nsubprocess.run(['sleep', '30'])", context=ctx)
    assert result.error.name == "KeyboardInterrupt"
    assert time.monotonic() - start < 20


def test_interrupt_when_idle_is_a_no_op(ci):
    ci.interrupt()  # default context not even started
    ci.run_code("kept = 1")
    ci.interrupt()
    time.sleep(0.1)
    assert ci.run_code("print(kept)").stdout == "1\n"
    with pytest.raises(ContextNotFoundError):
        ci.interrupt("nope")


def test_restart_context(ci, tmp_path):
    ctx = ci.create_context()
    ci.run_code("kept = 1", context=ctx)
    old_pid = int(ci.run_code("import os; print(os.getpid())", context=ctx).stdout)
    child = int(ci.run_code("import subprocess\nprint(subprocess.Popen(['sleep', '1000']).pid)",
                            context=ctx).stdout)
    info = ci.restart_context(ctx)
    assert (info.id, info.cwd, info.active) == (ctx.id, str(tmp_path), True)
    assert ci.run_code("kept", context=ctx).error.name == "NameError"
    assert not process_exists(old_pid)
    assert wait_until(lambda: not process_exists(child))
    assert [c.id for c in ci.list_contexts()] == [ctx.id]


def test_restart_during_a_run(ci):
    seen = []
    threading.Timer(0.5, ci.restart_context).start()
    with pytest.raises(ContextRestartedError, match="restarted") as info:
        ci.run_code("import time\nprint('started')\ntime.sleep(30)", on_stdout=seen.append)
    assert info.value.result.stdout == "started\n"
    assert ci.run_code("print('fresh')").stdout == "fresh\n"


# -- 5. top-level await ---------------------------------------------------------------


def test_top_level_await(ci):
    result = ci.run_code("import asyncio\nawait asyncio.sleep(0.1)\nx = 1")
    assert result.error is None
    assert ci.run_code("print(x)").stdout == "1\n"
    assert ci.run_code("async def f():\n    return 7\nawait f()").text == "7"
    code = textwrap.dedent("""
        class Agen:
            def __aiter__(self):
                self.i = 0
                return self
            async def __anext__(self):
                self.i += 1
                if self.i > 3:
                    raise StopAsyncIteration
                return self.i
        class Actx:
            async def __aenter__(self):
                return 'entered'
            async def __aexit__(self, *a):
                return False
        total = 0
        async for v in Agen():
            total += v
        async with Actx() as got:
            pass
        (total, got)
    """)
    assert ci.run_code(code).text == "(6, 'entered')"


def test_asyncio_run_still_works(ci):
    assert ci.run_code("import asyncio\nasync def g():\n    return 9\nasyncio.run(g())").text == "9"
    ci.run_code("await asyncio.sleep(0)")
    assert ci.run_code("asyncio.run(g())").text == "9"


def test_await_errors_hide_the_engine(ci):
    error = ci.run_code("import asyncio\nawait asyncio.sleep(0)\n1 / 0").error
    assert error.name == "ZeroDivisionError"
    assert "asyncio" not in error.traceback and "worker.py" not in error.traceback
    assert 'line 3, in <module>' in error.traceback


def test_timeout_and_interrupt_while_awaiting(ci):
    ci.run_code("import asyncio\nkept = 1")
    with pytest.raises(InterpTimeoutError) as info:
        ci.run_code("await asyncio.sleep(30)", timeout=0.5)
    assert info.value.restarted is False
    threading.Timer(0.5, ci.interrupt).start()
    assert ci.run_code("await asyncio.sleep(30)").error.name == "KeyboardInterrupt"
    assert ci.run_code("print(kept)").stdout == "1\n"
    assert ci.run_code("await asyncio.sleep(0.01)\n'ok'").text == "'ok'"


# -- 6. completion --------------------------------------------------------------------


def test_completion_of_names_and_attributes(ci):
    ci.run_code("import os\nmy_variable = 1\nclass K:\n    attr_one = 1\n    attr_two = 2")
    assert {"os.path", "os.pardir"} <= set(ci.complete("import os; os.pa"))
    assert ci.complete("my_var") == ["my_variable"]
    assert "print" in ci.complete("pri")
    assert "while" in ci.complete("whi")
    assert ci.complete("K.attr_") == ["K.attr_one", "K.attr_two"]
    assert ci.complete("os.path.jo") == ["os.path.join"]
    assert ci.complete("x = my_var + 1", cursor=10) == ["my_variable"]
    assert ci.complete("nothing_like_this") == []
    assert ci.complete("missing.attr") == []
    assert "K.__init__" not in ci.complete("K.")
    assert "K.__init__" in ci.complete("K.__")


def test_completion_does_not_run_code(ci):
    ci.run_code("class Trap:\n    def __getattr__(self, name):\n        raise SystemExit\ncalled = []\n"
                "def f():\n    called.append(1)\n    return Trap()\nt = Trap()")
    assert ci.complete("f().x") == []
    assert ci.complete("t.x") == []
    assert ci.run_code("print(called)").stdout == "[]\n"


def test_completion_arguments_and_busy_context(ci):
    with pytest.raises(TypeError):
        ci.complete(42)
    with pytest.raises(ValueError):
        ci.complete("abc", cursor=10)
    thread = threading.Thread(target=ci.run_code, args=("import time\ntime.sleep(2)",))
    ci.run_code("import time")
    thread.start()
    assert wait_until(lambda: ci._engine.resolve(None).busy)
    start = time.monotonic()
    assert ci.complete("ti") == []
    assert time.monotonic() - start < 1.5  # returned at once rather than after the run
    thread.join(30)
    assert "time" in ci.complete("ti")


def test_results_are_backwards_compatible():
    result = ExecutionResult("out", "err", None)
    assert (result.stdout, result.stderr, result.error, result.results, result.text) == (
        "out", "err", None, [], None)


# -- per-call cancellation (sync API; asyncio uses task cancellation) -------------------------


def test_cancel_event_stops_a_running_run(ci):
    ci.run_code("kept = 1")
    cancel = threading.Event()
    threading.Timer(0.4, cancel.set).start()
    with pytest.raises(RunCancelledError) as info:
        ci.run_code("import time\nprint('started')\ntime.sleep(30)", cancel=cancel)
    assert info.value.result.stdout == "started\n"
    assert ci.run_code("print(kept)").stdout == "1\n"  # interrupted, state kept


@pytest.mark.limit(60)
def test_cancel_event_stops_a_run_that_floods_output(ci):
    """The cancel event is seen while output keeps coming (a remote client
    once checked it only when the server fell silent)."""
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    started = time.monotonic()
    with pytest.raises(RunCancelledError):
        ci.run_code("while True:\n    print('x' * 100)", cancel=cancel, timeout=30)
    assert time.monotonic() - started < 15, "the cancel waited for the run's timeout"


def test_a_callback_that_raises_stop_iteration_raises_it_from_run_code(ci):
    def stop(line):
        raise StopIteration("enough")
    with pytest.raises(StopIteration, match="enough"):
        ci.run_code("print(1)", on_stdout=stop)
    assert ci.run_code("print(2)").stdout == "2\n"


def test_cancel_event_drops_a_queued_run(ci):
    ctx = ci.create_context()
    ci.run_code("ran = []", context=ctx)
    blocker = threading.Thread(target=ci.run_code, args=("import time\ntime.sleep(1)",),
                               kwargs={"context": ctx})
    blocker.start()
    assert wait_until(lambda: ci._engine._contexts[ctx.id].busy)
    cancel = threading.Event()
    errors = []

    def queued():
        try:
            ci.run_code("ran.append(1)", context=ctx, cancel=cancel)
        except RunCancelledError as exc:
            errors.append(exc)

    waiter = threading.Thread(target=queued)
    waiter.start()
    assert wait_until(lambda: len(ci._engine._contexts[ctx.id].run_lock._waiters) == 1)
    cancel.set()
    waiter.join(10)
    blocker.join(10)
    assert len(errors) == 1 and errors[0].result is None
    assert ci.run_code("print(ran)", context=ctx).stdout == "[]\n"
    already = threading.Event()
    already.set()
    with pytest.raises(RunCancelledError):
        ci.run_code("ran.append(2)", context=ctx, cancel=already)
    with pytest.raises(TypeError):
        ci.run_code("1", cancel=True)


def test_print_behaves_like_the_builtin_and_writes_each_call_at_once(ci):
    """print() to the captured streams writes a call's whole text in one
    write, so a concurrent writer (here a subprocess printing 'y' lines)
    never lands between a line and its newline; its results are the
    built-in's, arguments and errors included."""
    result = ci.run_code(
        "import sys, io\n"
        "print(1, None, 'a', sep='-', end='!\\n')\n"
        "print('err', file=sys.stderr, flush=True)\n"
        "print(); print(sep=None, end=None)\n"
        "buf = io.StringIO(); print('x', 2, file=buf); print(repr(buf.getvalue()))\n"
        "try:\n    print('x', sep=3)\nexcept TypeError as e:\n    print(e)\n"
        "print(print.__name__)")
    assert result.stdout == "1-None-a!\n\n\n'x 2\\n'\nsep must be None or a string, not int\nprint\n"
    assert result.stderr == "err\n"
    lines = ci.run_code(
        "import subprocess, sys\n"
        "noise = subprocess.Popen([sys.executable, '-c', 'import os\\nwhile True: os.write(1, b\"y\\\\n\")'])\n"
        "try:\n    for i in range(3000):\n        print('line-%d-' % i + 'z' * 200)\n"
        "finally:\n    noise.kill(); noise.wait()").stdout.splitlines()
    ours = [line for line in lines if line != "y"]
    assert ours == ["line-%d-" % i + "z" * 200 for i in range(3000)]


# -- buffered print() keeps the order of every writer (issue 20, streaming at 3x) -----------------

WRITERS = {
    "print": "print(TEXT)",
    "write": "sys.stdout.write(TEXT + '\\n')",
    "buffer": "sys.stdout.buffer.write(TEXT.encode() + b'\\n')",
    "os.write": "os.write(1, TEXT.encode() + b'\\n')",
    "os.system": "os.system('echo ' + TEXT)",
    "subprocess": "subprocess.run(['echo', TEXT])",
    "posix_spawn": "os.waitpid(os.posix_spawn('/bin/echo', ['echo', TEXT], os.environ), 0)",
    "fork+print": "pid = os.fork()\nif pid == 0:\n    print(TEXT)\n    os._exit(0)\nos.waitpid(pid, 0)",
    "C after flush": "sys.stdout.flush(); libc.write(1, TEXT.encode() + b'\\n', len(TEXT) + 1)",
}


@pytest.mark.limit(120)
def test_every_pair_of_writers_keeps_its_order(ci):
    """print() is buffered in the worker, flushed before any other writer can
    write to fd 1: for every ordered pair of writers, the first one's line
    comes first."""
    lines = []
    for first in WRITERS:
        for second in WRITERS:
            if first != second:
                for name in (first, second):
                    lines.append("%s:%s:%s" % (first, second, name))
    code = ["import os, sys, subprocess, ctypes", "libc = ctypes.CDLL(None)"]
    for line in lines:
        code.append(WRITERS[line.rsplit(":", 1)[1]].replace("TEXT", repr(line.replace(" ", "_"))))
    result = ci.run_code("\n".join(code), timeout=100)
    assert result.error is None, result.error.traceback
    assert result.stdout.splitlines() == [line.replace(" ", "_") for line in lines]


def test_stderr_writers_keep_their_order(ci):
    result = ci.run_code("import os, sys, subprocess\n"
                         "for i in range(3):\n"
                         "    print('p%d' % i, file=sys.stderr)\n"
                         "    os.write(2, b'w%d\\n' % i)\n"
                         "    sys.stderr.write('s%d\\n' % i)\n"
                         "    subprocess.run(['sh', '-c', 'echo c%d >&2' % i])\n")
    assert result.stderr.split() == ["%s%d" % (kind, i) for i in range(3) for kind in "pwsc"]


def test_buffered_output_arrives_within_milliseconds_and_before_an_exit(ci):
    """A line waits in the buffer only a few milliseconds (a partial one too),
    and os._exit flushes it first."""
    arrived = {}

    def on_stdout(message):
        arrived.setdefault(message.output.strip(), time.monotonic())

    result = ci.run_code("import time, sys\nprint('tick')\nsys.stdout.write('partial')\ntime.sleep(1.5)\n"
                         "print()\nprint('tock')", on_stdout=on_stdout)
    assert result.stdout == "tick\npartial\ntock\n"
    assert arrived["tock"] - arrived["tick"] > 1.0  # tick did not wait for the end of the sleep
    assert arrived["tock"] - arrived["partial"] > 1.0  # (a partial line: the parent's 0.1 s delay)


def test_background_output_precedes_the_next_runs_output(ci):
    """A thread's print() after a run, buffered, comes before what the next
    run prints, whether the ticker still ran (0.1 s after) or had stopped."""
    for delay in (0.1, 1.3):
        ci.run_code("import threading, time\n"
                    "def late():\n    time.sleep(%r)\n    print('background')\n"
                    "t = threading.Thread(target=late)\nt.start()" % delay)
        time.sleep(delay + 0.3)
        assert ci.run_code("print('next')").stdout == "background\nnext\n"


def _context_switches(pid):
    total = 0
    for task in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/status" % (pid, task)) as status:
            total += sum(int(line.split()[1]) for line in status
                         if line.startswith(("voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:")))
    return total


def test_an_idle_worker_sleeps_unless_threads_of_the_code_run(ci):
    """After a run that left no thread behind, the flush ticker stops at its
    next tick: 1,000 contexts each ticking every 5 ms for a second after its
    run kept both cores of a small machine busy. While a thread of the code
    runs, it goes on ticking (that thread may print; see above)."""
    pid = int(ci.run_code("import os; print(os.getpid())").stdout)
    time.sleep(0.1)
    before = _context_switches(pid)
    time.sleep(0.5)
    assert _context_switches(pid) - before <= 5
    ci.run_code("import threading, time\nthreading.Thread(target=time.sleep, args=(3,)).start()")
    before = _context_switches(pid)
    time.sleep(0.5)
    assert _context_switches(pid) - before > 20


def test_an_interrupt_during_a_flush_never_repeats_output(ci):
    """A KeyboardInterrupt raised just after a buffered write reached the
    pipe would make the buffer write it again: it is raised a moment later."""
    for _ in range(5):
        threading.Timer(0.3, ci.interrupt).start()
        result = ci.run_code("i = 0\nwhile True:\n    print(i, flush=True)\n    i += 1", timeout=30)
        assert result.error is not None and result.error.name == "KeyboardInterrupt"
        numbers = [int(line) for line in result.stdout.split()]
        assert numbers == list(range(len(numbers))) and numbers


def test_a_signal_handler_that_raises_during_a_flush_never_repeats_output(ci):
    """The same for user code's own handlers (a 1 kHz SIGALRM timer whose
    handler raises inside print()): numbers may be skipped, never printed
    twice."""
    code = ("import itertools, signal\n"
            "class Tick(Exception):\n    pass\n"
            "ticks = 0\n"
            "def tick(signum, frame):  # only inside print(), never between the cell's own lines\n"
            "    global ticks\n"
            "    if ticks < 300 and frame is not None and frame.f_code.co_name != '<module>':\n"
            "        ticks += 1\n"
            "        raise Tick\n"
            "signal.signal(signal.SIGALRM, tick)\n"
            "numbers = itertools.count()\n"
            "signal.setitimer(signal.ITIMER_REAL, 0.001, 0.001)\n"
            "def count():\n"
            "    while ticks < 300:\n"
            "        try:\n"
            "            print(next(numbers), flush=True)\n"
            "        except Tick:\n"
            "            pass\n"
            # a handler held while the worker's own code ran (see SignalGate) raises where user code goes on,
            # which may be between count()'s lines: count again
            "for attempt in range(1000):\n"
            "    try:\n"
            "        count()\n"
            "        break\n"
            "    except Tick:\n"
            "        pass\n"
            "signal.setitimer(signal.ITIMER_REAL, 0)\n")
    result = ci.run_code(code, timeout=60)
    assert result.error is None, result.error.traceback
    numbers = [int(line) for line in result.stdout.split()]
    assert len(numbers) > 300 and all(a < b for a, b in zip(numbers, numbers[1:]))
