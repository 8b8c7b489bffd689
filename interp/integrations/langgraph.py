"""interp as the sandbox of langgraph-codeact: ``make_eval_fn(ci)`` is the
``eval_fn(code, _locals) -> (output, new_vars)`` that ``create_codeact``
takes::

    agent = create_codeact(model, tools, make_eval_fn(ci, timeout=30)).compile()

The code runs in an interp context, which keeps its variables between steps
(objects changed in place too). Callables in ``_locals`` (the agent's tools)
run here, on the host, called from the code through
:mod:`interp.integrations.hosttools`, so closures and host state work in a
sandbox too. Other values in ``_locals`` are sent in when they differ from
what the context last reported (as JSON, or pickled for the worker to load;
values that can be neither are left out). ``new_vars`` holds the context's
public variables that are JSON values (so the graph's checkpoints can keep
them; tuples come back as lists). Needs ``pip install 'interp[langgraph]'``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import pickle
from typing import Any, Callable, Dict, Optional, Tuple

from .. import _jsonlimits
from ._framework import require
from ._run import model_text, run, state_lost
from .hosttools import HostTools

require("langgraph_codeact", "langgraph", "langgraph")

__all__ = ["make_eval_fn"]

EvalFn = Callable[[str, Dict[str, Any]], Tuple[str, Dict[str, Any]]]

#: Bounds on the variables reported back: one value's JSON, and all of them.
MAX_VALUE = 256 * 1024
MAX_VARS = 4 * 1024 * 1024
#: Bound on one value sent into the context (characters of JSON or base64).
MAX_SENT = 8 * 1024 * 1024
_MARK = "\x00interp-vars\x00"

# Runs in the worker before a step: the values of _locals it does not hold
# yet. The worker unpickles what the host sends; the host never unpickles
# anything from the worker.
_LOAD = r'''
def _interp_load(g, values, pickles, notes):
    import base64, json, pickle, sys
    g.update(json.loads(values))
    for name, data in pickles.items():
        try:
            g[name] = pickle.loads(base64.b64decode(data))
        except Exception as exc:
            notes.append("%s: %s: %s" % (name, type(exc).__name__, exc))
    for note in notes:
        print("(not sent into the context: %s)" % note, file=sys.stderr)

_interp_load(globals(), __JSON__, __PICKLES__, __NOTES__)
del _interp_load
'''

# Runs in the worker after each step: its public JSON variables, on one line.
_REPORT = r'''
def _interp_report(g, skip, mark, max_value, max_vars):
    import json, sys, types
    out, total = {}, 0
    for name, value in list(g.items()):
        if name.startswith("_") or name in skip or isinstance(value, (types.ModuleType, type)) or callable(value):
            continue
        try:
            text = json.dumps(value, allow_nan=False)
        except (TypeError, ValueError, RecursionError):
            continue
        if len(text) <= max_value and total + len(text) <= max_vars:
            out[name] = value
            total += len(text)
    sys.__stdout__.write(mark + json.dumps(out) + "\n")
    sys.__stdout__.flush()

_interp_report(globals(), set(__SKIP__), __MARK__, __MAX_VALUE__, __MAX_VARS__)
del _interp_report
'''


def make_eval_fn(ci: Any, *, timeout: Optional[float] = 60, context: Any = None) -> EvalFn:
    """The ``eval_fn`` for langgraph-codeact's ``create_codeact``, running
    the code on the interpreter ``ci`` (a CodeInterpreter or
    RemoteCodeInterpreter; it stays yours to close) in ``context``, each step
    stopped after ``timeout`` seconds (the model is told so)."""
    known: Dict[str, str] = {}  # name -> fingerprint of the value the context holds

    def eval_fn(code: str, _locals: Dict[str, Any]) -> Tuple[str, Dict[str, Any]]:
        tools = {name: value for name, value in _locals.items() if callable(value) and name.isidentifier()}
        host = HostTools(tools)
        prelude = _send_values({name: value for name, value in _locals.items() if name not in tools}, known)
        notes = ""
        if prelude:
            sent = run(ci, prelude, context=context, timeout=timeout)
            if sent.error is not None:
                known.clear()
                return model_text(sent), {}
            notes = sent.stderr  # values left out: the model should know
        result = run(ci, code, tools=host, context=context, timeout=timeout)
        if state_lost(result):
            known.clear()  # a fresh worker: send every value again next step
        report = run(ci, _REPORT.replace("__SKIP__", repr(sorted(tools))).replace("__MARK__", repr(_MARK))
                     .replace("__MAX_VALUE__", str(MAX_VALUE)).replace("__MAX_VARS__", str(MAX_VARS)),
                     context=context, timeout=timeout)
        new_vars = _reported(report.stdout)
        for name, value in new_vars.items():
            known[name] = _fingerprint(value) or ""
        return notes + model_text(result), new_vars

    return eval_fn


def _fingerprint(value: Any) -> Optional[str]:
    """What tells whether the context already holds ``value``: its JSON, or
    a digest of its pickle; None if it can be neither."""
    try:
        return "j" + json.dumps(value, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        pass
    try:
        return "p" + hashlib.sha256(pickle.dumps(value)).hexdigest()
    except Exception:
        return None


def _send_values(values: Dict[str, Any], known: Dict[str, str]) -> str:
    """Source that sets the values the context does not hold yet. A value
    the worker cannot load (its class is not importable there), or larger
    than MAX_SENT, is left out with a note on stderr; the step still runs."""
    as_json: Dict[str, Any] = {}
    as_pickle: Dict[str, str] = {}
    notes = []
    for name, value in values.items():
        mark = _fingerprint(value) or "u%d" % id(value)
        if not name.isidentifier() or known.get(name) == mark:
            continue
        known[name] = mark
        if mark.startswith("u"):
            notes.append("%s: a %s is neither JSON nor picklable" % (name, type(value).__name__))
            continue
        data = json.dumps(value) if mark.startswith("j") else base64.b64encode(pickle.dumps(value)).decode("ascii")
        if len(data) > MAX_SENT:
            notes.append("%s: %d characters, more than %d" % (name, len(data), MAX_SENT))
        elif mark.startswith("j"):
            as_json[name] = value
        else:
            as_pickle[name] = data
    if not (as_json or as_pickle or notes):
        return ""
    return _LOAD.replace("__JSON__", repr(json.dumps(as_json))).replace("__PICKLES__", repr(as_pickle)) \
        .replace("__NOTES__", repr(notes))


def _reported(stdout: str) -> Dict[str, Any]:
    """The variables the report printed (bounded JSON); {} if none came."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(_MARK) and len(line) <= MAX_VARS * 2:
            try:
                found = _jsonlimits.loads(line[len(_MARK):].encode("utf-8", "surrogatepass"),
                                          max_depth=100, max_int_digits=4300)
            except ValueError:
                return {}
            return found if isinstance(found, dict) else {}
    return {}
