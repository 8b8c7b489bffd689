"""How MCP tool calls run: on threads of their own (the stdio server) or as
tasks on an event loop (``/mcp`` of the HTTP server, on the server's loop).

A tool call is written once, as a generator of the steps that wait (see
interp.mcp.calls): it yields :class:`Submit` (run code), :class:`Blocking`
(a call that starts or kills workers, or touches files) or :class:`Wait`
(until an :class:`Event` is set), and gets each step's value back (or its
exception thrown in). A runner performs the steps: the thread runner by
calling and waiting, the loop runner by awaiting, so no tool call holds a
thread on the server's loop.
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Any, Callable, Dict, Generator, List, NamedTuple, Optional, Tuple, Union

from ..errors import RunCancelledError

if TYPE_CHECKING:
    from ..aio import AsyncCodeInterpreter
    from ..api import CodeInterpreter


class Event(threading.Event):
    """A threading.Event that also calls back (on the thread that sets it)
    those who asked with :meth:`when_set`, so an event loop can wait for it."""

    def __init__(self) -> None:
        super().__init__()
        self._callbacks: List[Callable[[], None]] = []
        self._callbacks_lock = threading.Lock()

    def set(self) -> None:
        super().set()
        with self._callbacks_lock:
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()

    def when_set(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` once set (now, if it is); returns a function that cancels that."""
        with self._callbacks_lock:
            if not self.is_set():
                self._callbacks.append(callback)
                return lambda: self._forget(callback)
        callback()
        return lambda: None

    def _forget(self, callback: Callable[[], None]) -> None:
        with self._callbacks_lock:
            if callback in self._callbacks:
                self._callbacks.remove(callback)


class Submit(NamedTuple):
    """Run a validated command on a context (the engine's id); the step's value is the ExecutionResult."""
    engine_id: str
    command: Dict[str, Any]
    seconds: Optional[float]
    callbacks: Dict[str, Callable[[Any], Any]]
    cancel: Event
    queued: Callable[[], None]


class Blocking(NamedTuple):
    """Call ``function(*args)``, which may block (start or kill workers, file I/O)."""
    function: Callable[..., Any]
    args: Tuple[Any, ...] = ()


class Wait(NamedTuple):
    """Wait until ``event`` is set."""
    event: Event


Step = Union[Submit, Blocking, Wait]
#: A tool call: yields steps, returns its outcome.
Steps = Generator[Step, Any, Any]
#: Called with the outcome, or with the exception the call raised.
Done = Callable[[Any, Optional[BaseException]], None]


def _advance(steps: Steps, done: Done, value: Any, error: Optional[BaseException]) -> Optional[Step]:
    """Resume a tool call with its last step's value (or exception): its next
    step, or None once it ended (then ``done`` has its outcome)."""
    try:
        return steps.send(value) if error is None else steps.throw(error)
    except StopIteration as stop:
        done(stop.value, None)
    except Exception as exc:
        done(None, exc)
    return None


class ThreadRunner:
    """Each tool call on a thread of its own (the stdio server)."""

    def __init__(self, interpreter: CodeInterpreter) -> None:
        self._interpreter = interpreter

    def start(self, steps: Steps, done: Done, name: str) -> None:
        """Run the call; RuntimeError if no thread can start."""
        threading.Thread(target=self._drive, args=(steps, done), daemon=True, name="interp-mcp-" + name).start()

    def later(self, seconds: float, function: Callable[[], None]) -> None:
        timer = threading.Timer(seconds, function)
        timer.daemon = True
        timer.start()

    def wait_queued(self, event: Event) -> None:
        """Wait until a run has its place in its context's line (so the next
        message read cannot overtake it)."""
        event.wait()

    def _drive(self, steps: Steps, done: Done) -> None:
        step = _advance(steps, done, None, None)
        while step is not None:
            try:
                value = self._perform(step)
            except Exception as exc:
                step = _advance(steps, done, None, exc)
            else:
                step = _advance(steps, done, value, None)

    def _perform(self, step: Step) -> Any:
        if isinstance(step, Submit):
            return self._interpreter._submit(step.engine_id, step.command, step.seconds, step.callbacks,
                                             step.cancel, queued=step.queued)
        if isinstance(step, Blocking):
            return step.function(*step.args)
        step.event.wait()
        return None


class LoopRunner:
    """Each tool call as a task on an event loop, its runs driven there; only
    blocking calls go to the loop's executor. Its methods are called on the loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, interpreter: AsyncCodeInterpreter) -> None:
        self._loop = loop
        self._interpreter = interpreter
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self, steps: Steps, done: Done, name: str) -> None:
        task = self._loop.create_task(self._drive(steps, done))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def later(self, seconds: float, function: Callable[[], None]) -> None:
        self._loop.call_later(seconds, function)

    def wait_queued(self, event: Event) -> None:
        """Nothing to wait for: tasks start in the order they were made."""

    async def _drive(self, steps: Steps, done: Done) -> None:
        step = _advance(steps, done, None, None)
        while step is not None:
            try:
                value = await self._perform(step)
            except Exception as exc:
                step = _advance(steps, done, None, exc)
            else:
                step = _advance(steps, done, value, None)

    async def _perform(self, step: Step) -> Any:
        loop = self._loop
        if isinstance(step, Blocking):
            return await loop.run_in_executor(None, step.function, *step.args)
        if isinstance(step, Wait):
            ready = loop.create_future()
            forget = step.event.when_set(lambda: _resolve_threadsafe(loop, ready))
            try:
                await ready
            finally:
                forget()
            return None
        if step.cancel.is_set():
            raise RunCancelledError("the run was cancelled before it started")
        me = asyncio.current_task()
        assert me is not None
        forget = step.cancel.when_set(lambda: _call_threadsafe(loop, me.cancel))
        try:
            return await self._interpreter._submit(step.engine_id, step.command, step.seconds, step.callbacks,
                                                   queued=step.queued)
        except asyncio.CancelledError:
            if not step.cancel.is_set():
                raise  # the server is stopping
            if hasattr(me, "uncancel"):  # Python 3.11+: this cancellation is handled
                me.uncancel()
            raise RunCancelledError("the run was cancelled") from None
        finally:
            forget()


def _call_threadsafe(loop: asyncio.AbstractEventLoop, function: Callable[[], Any]) -> None:
    try:
        loop.call_soon_threadsafe(function)
    except RuntimeError:  # the loop is closed: nothing runs there any more
        pass


def _resolve_threadsafe(loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any]) -> None:
    def resolve() -> None:
        if not future.done():
            future.set_result(None)
    _call_threadsafe(loop, resolve)
