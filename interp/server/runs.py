"""The run routes: ``/execute`` streams a run's events as NDJSON, on the
event loop; a client that leaves cancels its run."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple

from ..commands import run_command
from ..engine import DEFAULT_CONTEXT_ID
from ..errors import (
    ContextNotFoundError,
    ContextRestartedError,
    InterpError,
    InterpTimeoutError,
    RunCancelledError,
    WorkerDiedError,
)
from ..types import ExecutionResult
from .checks import HTTPError, _json_object, result_json
from .connection import ClientGone
from .limits import MAX_TIMEOUT
from .streams import EventStream
from .table import _Entry

if TYPE_CHECKING:
    from .app import InterpHTTPServer
    from .connection import Connection

#: The fields of an execute request's body and their types.
_RUN_FIELDS: Dict[str, Tuple[type, ...]] = {
    "code": (str,), "envs": (dict, type(None)), "timeout": (int, float, type(None)),
    "stdin": (str, type(None)), "input": (bool, type(None))}

#: Seconds a stream's head may wait for the first event, so that a quick
#: run's whole answer leaves in one packet.
HEAD_DELAY = 0.005

#: Characters of each stream a run's result keeps in the server: every line
#: has gone to the client already (the result is read for its error and count).
KEPT_OUTPUT = 64 * 1024

#: The outcome label of a run that ended with an InterpError (see metrics.OUTCOMES).
_OUTCOMES: Dict[type, str] = {WorkerDiedError: "worker_died", ContextRestartedError: "restarted",
                              ContextNotFoundError: "deleted"}


def _ask(prompt: str) -> str:
    """Stands for the HTTP ``on_input`` while a request is checked."""
    raise EOFError


class RunRoutes:
    """``POST /execute`` and ``POST /contexts/{id}/execute``: RequestHandler's base."""

    if TYPE_CHECKING:  # what RequestHandler provides
        server: InterpHTTPServer
        conn: Connection
        _responded: bool
        chunked: bool
        close_connection: bool

        def begin(self, status: int, fields: List[Tuple[str, str]], length: Optional[int], *,
                  close: bool = False, headers: Optional[Dict[str, str]] = None, delay: float = 0.0) -> None: ...

        def _log_fault(self) -> None: ...

    async def _execute(self, body: bytes) -> None:
        fields = _json_object(body, dict(_RUN_FIELDS, context_id=(str, type(None))), ("code",))
        await self._stream_run(fields.get("context_id") or DEFAULT_CONTEXT_ID, fields)

    async def _execute_in(self, body: bytes, context_id: str) -> None:
        await self._stream_run(context_id, _json_object(body, _RUN_FIELDS, ("code",)))

    async def _stream_run(self, context_id: str, fields: Dict[str, Any]) -> None:
        """Run the fields of an execute request in a context, streaming its events."""
        timeout = fields.get("timeout")
        if timeout is None:
            timeout = self.server.default_timeout
        elif not 0 <= timeout <= MAX_TIMEOUT:
            raise HTTPError(400, "the field 'timeout' must be from 0 (no limit) to %d seconds, got %r"
                            % (MAX_TIMEOUT, timeout))
        wants_input = bool(fields.get("input"))
        try:  # the engine's own argument checks, while an error can still be a 400
            command, seconds = run_command(fields["code"], envs=fields.get("envs"), timeout=timeout,
                                           stdin=fields.get("stdin"), on_input=_ask if wants_input else None)
        except (TypeError, ValueError) as exc:
            raise HTTPError(400, str(exc)) from None
        with self.server.contexts.use(context_id) as entry:
            stream = EventStream(self.conn, chunked=self.chunked, stall=self.server.io_timeout)

            async def on_result(result: Any) -> None:
                await stream.send({"type": "result", **result_json(result)})

            async def on_error(error: Any) -> None:
                await stream.send({"type": "error", "name": error.name, "value": error.value,
                                   "traceback": error.traceback})

            callbacks: Dict[str, Callable[[Any], Any]] = {
                "stdout": lambda m: stream.send({"type": "stdout", "text": m.output}),
                "stderr": lambda m: stream.send({"type": "stderr", "text": m.output}),
                "result": on_result, "error": on_error}
            if wants_input:
                callbacks["input"] = self._asker(entry, stream)
            final = await self._run(stream, entry, context_id, command, seconds, callbacks)
        if not await stream.finish(final):
            self.close_connection = True

    def _asker(self, entry: _Entry, stream: EventStream) -> Callable[[str], Any]:
        """The run's ``on_input``: an ``input_request`` event, then wait for
        its answer (POST .../input), at most until the run's deadline (then EOF)."""
        table = self.server.contexts

        async def ask(prompt: str) -> str:
            number, slot = table.ask(entry)
            answered: asyncio.Future[None] = asyncio.get_running_loop().create_future()

            def wake() -> None:
                if not answered.done():
                    answered.set_result(None)
            slot.notify = wake
            try:
                await stream.send({"type": "input_request", "request": number, "prompt": prompt})
                left = None if stream.until is None else max(0.0, stream.until - time.monotonic())
                try:  # at most until the run's deadline, which then interrupts it
                    await asyncio.wait_for(answered, left)
                except asyncio.TimeoutError:
                    raise EOFError from None
            finally:
                table.forget(entry, number)
            if slot.value is None:
                raise EOFError
            return slot.value
        return ask

    async def _run(self, stream: EventStream, entry: _Entry, context_id: str, command: Dict[str, Any],
                   seconds: Optional[float], callbacks: Dict[str, Callable[[Any], Any]]) -> Optional[Dict[str, Any]]:
        """Run the command, streaming its events; return the final event (None
        when the client is gone). Before the stream has begun (an unknown
        context, say), errors propagate to become plain JSON error responses."""
        def begin() -> None:  # the run has its place in line: the 200 goes out now
            if seconds:
                stream.until = time.monotonic() + seconds
            self.begin(200, [("Content-Type", "application/x-ndjson"), ("Cache-Control", "no-store"),
                             ("X-Accel-Buffering", "no")], None, delay=HEAD_DELAY)
            stream.begun = True

        public = self.server.contexts.speaker(entry, context_id)  # messages name the context as the client does
        metrics = self.server.metrics
        started = time.monotonic()
        me = asyncio.current_task()
        assert me is not None
        left: List[bool] = []

        def cancel() -> None:  # the client left: cancel the run (this task, while it awaits the run)
            if not left:
                left.append(True)
                me.cancel()
        if self.conn.gone:  # before its run began: dropped, as a run waiting in line is (it would start first)
            metrics.run_ended("cancelled", 0.0)
            return None
        stop_watching = self.conn.on_gone(cancel)
        try:
            result: ExecutionResult = await self.server.aio._submit(entry.engine_id, command, seconds,
                                                                    callbacks, queued=begin, keep=KEPT_OUTPUT)
        except InterpTimeoutError as exc:
            metrics.run_ended("timeout", time.monotonic() - started, timed_out=True)
            return {"type": "timeout", "message": public(exc), "restarted": exc.restarted,
                    "execution_count": exc.result.execution_count}
        except (RunCancelledError, ClientGone):
            metrics.run_ended("cancelled", time.monotonic() - started)
            return None  # nobody reads it
        except asyncio.CancelledError:
            if not left:
                raise  # the server is stopping
            if hasattr(me, "uncancel"):  # Python 3.11+: this cancellation is handled
                me.uncancel()
            metrics.run_ended("cancelled", time.monotonic() - started)
            return None
        except Exception as exc:
            if not stream.begun:
                raise
            outcome = _OUTCOMES.get(type(exc), "failed")
            metrics.run_ended(outcome, time.monotonic() - started, died=isinstance(exc, WorkerDiedError))
            if not isinstance(exc, InterpError):
                self._log_fault()
            event: Dict[str, Any] = {"type": "interp_error", "name": type(exc).__name__, "message": public(exc)}
            if isinstance(exc, WorkerDiedError):
                event["returncode"] = exc.returncode
            partial = getattr(exc, "result", None)
            if isinstance(partial, ExecutionResult):
                event["execution_count"] = partial.execution_count
                if not stream.lines:  # output of a worker that died while idle: never streamed
                    event.update(stdout=partial.stdout, stderr=partial.stderr)
            return event
        finally:
            stop_watching()
        metrics.run_ended("ok" if result.error is None else "error", time.monotonic() - started)
        return {"type": "end", "execution_count": result.execution_count}
