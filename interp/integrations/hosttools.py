"""Host tools: functions that run in the agent's process, called from code
that runs in a worker (possibly sandboxed).

The worker gets one stub per tool name. A stub sends its call as JSON over
the run's input channel (an ``input()`` prompt that starts with a marker the
caller's ``on_input`` recognises); :class:`HostTools` answers it on the
thread (or event loop) driving the run, with the tool's JSON result or the
error it raised, which the stub raises in the code. The worker is untrusted,
so a request is bounded in size and depth, is JSON only, names one of the
tools given (nothing else is callable), and anything wrong in it becomes an
exception in the code, never on the host. A tool's own exception is returned
the same way; only BaseExceptions that are not Exceptions (KeyboardInterrupt)
pass through. Tools may be async (awaited on the caller's loop).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import keyword
from typing import Any, Callable, Collection, Dict, Mapping, Optional

from .. import _jsonlimits

#: What a tool call's prompt starts with (other input() calls get EOF).
MARK = "\x00interp-host-tool\x00"
#: Bounds on a request from the worker and on a reply to it (characters).
MAX_REQUEST = 1024 * 1024
MAX_REPLY = 8 * 1024 * 1024
MAX_DEPTH = 64

# Runs in the worker before each run: (re)defines the stubs. Stdlib only.
_STUBS = r'''
def _interp_host_tools(names, coroutines, mark):
    import builtins as _b, json as _j
    ask = _b.input  # the worker's input(), bound to this run's on_input

    class FinalAnswerException(BaseException):
        """Ends the run: a final tool (final_answer) was called."""

    class HostToolError(Exception):
        """A host tool failed with an exception that is not a built-in one."""

    def make(name):
        def tool(*args, **kwargs):
            try:
                request = _j.dumps({"tool": name, "args": args, "kwargs": kwargs}, allow_nan=False)
            except (TypeError, ValueError) as exc:
                raise TypeError("%s() takes JSON values only: %s" % (name, exc)) from None
            try:
                reply = _j.loads(ask(mark + request))
            except EOFError:
                raise RuntimeError("%s() is a host tool: it answers only in runs its agent makes, "
                                   "on the cell's main thread" % name) from None
            if "error" in reply:
                kind, message = reply["error"]
                cls = getattr(_b, kind, None)
                try:
                    error = cls(message) if isinstance(cls, type) and issubclass(cls, Exception) else None
                except Exception:  # a built-in that wants other arguments (UnicodeDecodeError)
                    error = None
                raise error or HostToolError("%s: %s" % (kind, message))
            if reply.get("final"):
                raise FinalAnswerException(name)
            return reply["ok"]
        if name in coroutines:  # an async tool: its stub is awaited, like the tool
            call = tool

            async def tool(*args, **kwargs):
                return call(*args, **kwargs)
        tool.__name__ = tool.__qualname__ = name
        tool.__doc__ = "Calls the host tool %r (its arguments and result are JSON values)." % name
        return tool

    return {name: make(name) for name in names}

globals().update(_interp_host_tools(__NAMES__, __COROUTINES__, __MARK__))
del _interp_host_tools
'''

Tool = Callable[..., Any]


def tool_name(tool: Any) -> str:
    """The name a tool is called by in the code: its ``name`` (LangChain,
    smolagents), ``metadata.name`` (LlamaIndex) or ``__name__``."""
    name = getattr(tool, "name", None) or getattr(getattr(tool, "metadata", None), "name", None) \
        or getattr(tool, "__name__", None)
    if not isinstance(name, str):
        raise TypeError("cannot tell the name of tool %r: give tools as a {name: function} mapping" % (tool,))
    return name


class HostTools:
    """Tools by name, callable from code in a worker. Pass :attr:`setup_code`
    (run it before the code, each run: a restarted worker forgets it) and use
    :meth:`answer` (or :meth:`aanswer` with an async interpreter) as the
    run's ``on_input``. A call to a tool named in ``final`` (once it has
    returned) ends the run with a ``FinalAnswerException`` in the code."""

    def __init__(self, tools: Mapping[str, Tool], *, final: Collection[str] = (),
                 coroutines: Optional[Collection[str]] = None) -> None:
        for name, function in tools.items():
            if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name) \
                    or name.startswith("_interp_"):
                raise ValueError("a tool name must be a Python identifier (not starting with _interp_), not %r"
                                 % (name,))
            if not callable(function):
                raise TypeError("tool %r is not callable: %r" % (name, function))
        self.tools: Dict[str, Tool] = dict(tools)
        self.final = frozenset(final)
        #: The tools whose stubs are async (default: the coroutine functions).
        self.coroutines = frozenset(name for name, function in self.tools.items()
                                    if inspect.iscoroutinefunction(function)) if coroutines is None \
            else frozenset(coroutines)

    def __bool__(self) -> bool:
        return bool(self.tools)

    @property
    def setup_code(self) -> str:
        """Python source defining a stub for each tool in the worker."""
        if not self.tools:
            return ""
        return _STUBS.replace("__NAMES__", repr(sorted(self.tools))) \
            .replace("__COROUTINES__", repr(sorted(self.coroutines))) \
            .replace("__MARK__", repr(MARK))

    def answer(self, prompt: str) -> str:
        """``on_input`` for a sync run: call the tool the prompt asks for (an
        async tool runs to completion here) and return the reply. Any other
        prompt is ``input()`` of the code itself: EOFError (no stdin)."""
        call = self._parse(prompt)
        if isinstance(call, str):
            return call
        name, function, args, kwargs = call
        try:
            value = function(*args, **kwargs)
            if inspect.isawaitable(value):
                value = _run_awaitable(value)
        except Exception as exc:
            return _error(exc)
        return self._reply(name, value)

    async def aanswer(self, prompt: str) -> str:
        """``on_input`` for an async run: async tools are awaited, plain ones
        run in the loop's default executor (they must not block the loop)."""
        call = self._parse(prompt)
        if isinstance(call, str):
            return call
        name, function, args, kwargs = call
        try:
            if inspect.iscoroutinefunction(function):
                value = await function(*args, **kwargs)
            else:
                value = await asyncio.get_running_loop().run_in_executor(None, lambda: function(*args, **kwargs))
                if inspect.isawaitable(value):
                    value = await value
        except Exception as exc:
            return _error(exc)
        return self._reply(name, value)

    def _parse(self, prompt: str) -> Any:
        """(name, function, args, kwargs), or the error reply (a str) for a bad request."""
        if not prompt.startswith(MARK):
            raise EOFError("the code has no standard input here")
        if len(prompt) > MAX_REQUEST:
            return _error(ValueError("a tool call of more than %d characters" % MAX_REQUEST))
        try:
            request = _jsonlimits.loads(prompt[len(MARK):].encode("utf-8", "surrogatepass"),
                                        max_depth=MAX_DEPTH, max_int_digits=4300)
        except ValueError as exc:
            return _error(ValueError("a tool call that %s" % exc))
        if not isinstance(request, dict):
            return _error(ValueError("a tool call must be a JSON object"))
        name, args, kwargs = request.get("tool"), request.get("args"), request.get("kwargs")
        if not isinstance(name, str) or name not in self.tools:
            return _error(NameError("no host tool named %r" % (name,)))
        if not isinstance(args, list) or not isinstance(kwargs, dict):
            return _error(TypeError("a tool call's args must be a list and its kwargs an object"))
        return name, self.tools[name], args, kwargs

    def _reply(self, name: str, value: Any) -> str:
        if name in self.final:
            return json.dumps({"ok": None, "final": True})  # the adapter's tool keeps the value itself
        try:
            reply = json.dumps({"ok": value}, allow_nan=False)
        except (TypeError, ValueError) as exc:
            return _error(TypeError("the tool returned %s, which is not a JSON value (%s)"
                                    % (type(value).__name__, exc)))
        except RecursionError:
            return _error(ValueError("the tool returned a value nested too deep for JSON"))
        if len(reply) > MAX_REPLY:
            return _error(ValueError("the tool returned more than %d characters of JSON" % MAX_REPLY))
        return reply


def _error(exc: BaseException) -> str:
    return json.dumps({"error": [type(exc).__name__, str(exc)[:MAX_REPLY // 2]]})


def _run_awaitable(value: Any) -> Any:
    """Run an async tool's awaitable from sync code (not on a running loop)."""
    async def wait() -> Any:
        return await value
    return asyncio.run(wait())

