"""AsyncRemoteCodeInterpreter: the asyncio twin, over a protocol of its own
(asyncio is imported only when it is used: importing interp stays quick)."""

from __future__ import annotations

import inspect
import socket
import ssl
import time
import uuid
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Dict, List, Mapping, Optional

from ..commands import completion_command, run_command
from ..engine import DEFAULT_MAX_OUTPUT, ContextRef
from ..errors import (
    InterpError,
    RemoteError,
)
from ..types import ExecutionResult, InterpreterContext
from . import core as rc
from . import files as rf
from . import steps as st
from .fs import AsyncRemoteFileSystem
from .client import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_IO_TIMEOUT,
    DEFAULT_KEEP_ALIVE,
    READ_SIZE,
    T,
    _check_cwd,
    _IdleConnections,
    _RemoteClient,
    _unreachable,
)

if TYPE_CHECKING:
    import asyncio


# -- asyncio ----------------------------------------------------------------------------

class _Stream:
    """The asyncio protocol of one connection: the bytes that came, kept
    until read (also those that came before the connection broke: a server
    may answer an upload and close before it read it all, and the reset
    that follows must not hide its answer), and flow control both ways."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: Any = None
        self.data = bytearray()
        self.ended = False  # EOF, or the connection was lost
        self.error: Optional[BaseException] = None  # why it was lost, raised once the data is read
        self.reading_paused = False
        self.writing_paused = False
        self._waiter: Optional[asyncio.Future[None]] = None  # a read or a drain waiting

    # -- the protocol -------------------------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.data += data
        if len(self.data) >= READ_SIZE and not self.reading_paused:
            self.reading_paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self.ended = True
        self._wake()
        return False  # then close

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        self.ended = True
        self.error = exc
        self._wake()

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        self._wake()

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _wait(self, timeout: Optional[float]) -> None:
        """Until the protocol wakes us; socket.timeout after ``timeout`` seconds."""
        if timeout is not None and timeout <= 0:
            raise socket.timeout("timed out")
        waiter = self._waiter = self.loop.create_future()
        timer = None if timeout is None else self.loop.call_later(timeout, _time_out, waiter)
        try:
            await waiter
        finally:
            if timer is not None:
                timer.cancel()

    # -- for the connection -------------------------------------------------------------

    async def read(self, deadline: Optional[float]) -> bytes:
        """The next bytes (at most READ_SIZE), b"" at EOF; what broke the
        connection once everything before it was read."""
        while not self.data and not self.ended:
            await self._wait(None if deadline is None else deadline - time.monotonic())
        if not self.data:
            if self.error is not None:
                raise self.error
            return b""
        chunk = bytes(self.data[:READ_SIZE])
        del self.data[:READ_SIZE]
        if self.reading_paused and not self.ended:
            self.reading_paused = False
            self.transport.resume_reading()
        return chunk

    async def write(self, data: bytes, deadline: float, answers: bool = False) -> int:
        """Queue ``data`` and wait while the transport holds too much
        (socket.timeout past ``deadline``); with ``answers``, not once an
        answer waits. Returns how many bytes went (all: the transport keeps them)."""
        if self.ended or self.transport.is_closing():
            raise self.error or BrokenPipeError("the server closed the connection")
        self.transport.write(data)
        while self.writing_paused and not self.ended and not (answers and self.data):
            await self._wait(deadline - time.monotonic())
        if self.ended and self.error is not None:
            raise self.error
        return len(data)


def _time_out(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(socket.timeout("timed out"))


class _AsyncConnection:
    def __init__(self, stream: _Stream) -> None:
        self.stream = stream
        self.reused = False
        self.idle_since = 0.0
        self.idle_limit = DEFAULT_KEEP_ALIVE

    def usable(self, now: float) -> bool:
        """Kept alive, and not spoken to since (bytes an idle connection got
        are no answer to the next request: a proxy's 408, say)."""
        return (now - self.idle_since < self.idle_limit and not self.answered()
                and not self.stream.transport.is_closing())

    def answered(self) -> bool:
        """Bytes (or the end) wait to be read now."""
        return bool(self.stream.data) or self.stream.ended

    async def send(self, data: bytes, deadline: float, answers: bool = False) -> int:
        return await self.stream.write(data, deadline, answers)

    async def recv(self, deadline: Optional[float]) -> bytes:
        return await self.stream.read(deadline)

    def close(self) -> None:
        transport = self.stream.transport
        try:
            if transport.get_extra_info("sslcontext") is not None or transport.get_write_buffer_size():
                # no close_notify round trip the loop might not live to see; nor a wait
                # for a server that no longer reads to take what is left of a request
                transport.abort()
            else:
                transport.close()
        except (OSError, RuntimeError):  # RuntimeError: its event loop is closed
            pass


class _AsyncPool(_IdleConnections["_AsyncConnection"]):
    async def get(self) -> _AsyncConnection:
        import asyncio

        conn = self._reuse()
        if conn is not None:
            return conn
        loop = asyncio.get_running_loop()
        protocol: Any = lambda: _Stream(loop)  # noqa: E731  # a protocol by its methods (asyncio loads lazily)
        try:
            transport, stream = await asyncio.wait_for(
                loop.create_connection(protocol, self.address.host, self.address.port,
                                       ssl=self.tls, server_hostname=self.address.host if self.tls else None),
                self.connect_timeout)
        except (OSError, asyncio.TimeoutError) as exc:
            raise _unreachable(self.address, exc) from None
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return _AsyncConnection(stream)


class AsyncRemoteCodeInterpreter(_RemoteClient):
    """The asyncio twin of :class:`RemoteCodeInterpreter`, with the API of
    :class:`interp.AsyncCodeInterpreter`: methods are coroutines, callbacks
    may be plain or coroutine functions (awaited in order), and cancelling a
    ``run_code`` task closes its stream, which stops the run on the server as
    a timeout would, then re-raises CancelledError. An instance belongs to
    the event loop it is first used in."""

    _pool: _AsyncPool

    def __init__(self, url: str, token: Optional[str] = None, *,
                 max_output: Optional[int] = DEFAULT_MAX_OUTPUT, io_timeout: float = DEFAULT_IO_TIMEOUT,
                 connect_timeout: float = DEFAULT_CONNECT_TIMEOUT, max_event: int = rc.DEFAULT_MAX_EVENT,
                 delete_on_close: bool = True, ssl_context: Optional[ssl.SSLContext] = None) -> None:
        super().__init__(url, token, max_output, io_timeout, connect_timeout, max_event, delete_on_close,
                         ssl_context)
        self._pool = _AsyncPool(self._address, self._connect_timeout, self._tls)
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        #: Files in and out, as coroutines: see :class:`interp.remote.fs.AsyncRemoteFileSystem`.
        self.fs = AsyncRemoteFileSystem(self)

    async def __aenter__(self) -> AsyncRemoteCodeInterpreter:
        self._check_open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def _check_open(self) -> None:
        import asyncio

        super()._check_open()
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif self._loop is not loop:
            raise InterpError("this AsyncRemoteCodeInterpreter belongs to another event loop; create one per loop")

    async def _perform(self, steps: st.Steps[T]) -> T:
        """Carry out a request's steps (see interp.remote.steps) with awaits."""
        import asyncio

        value: Any = None
        error: Optional[BaseException] = None
        while True:
            try:
                step = steps.send(value) if error is None else steps.throw(error)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            except st.Escape as escape:
                raise escape.args[0] from None
            value = error = None
            try:
                kind = step[0]
                if kind == st.RECEIVE:
                    value = await step[1].recv(step[2])
                elif kind == st.SEND:
                    value = await step[1].send(*step[2:])
                elif kind == st.CALL:
                    value = step[1](step[2])
                    if inspect.isawaitable(value):
                        value = await value
                elif kind == st.CONNECT:
                    value = await self._pool.get()
                elif kind == st.ANSWERED:
                    value = step[1].answered()
                else:  # the local file is read in a thread, a chunk at a time
                    value = await asyncio.to_thread(st.next_chunk, step[1])
            except StopIteration as exc:
                error = st.Escape(exc)
            except BaseException as exc:  # thrown in where the step was asked for (cancellation too)
                error = exc

    async def _call(self, call: rc.Call[T]) -> T:
        return await self._perform(st.call(self, call))

    async def _transfer(self, transfer: rf.Transfer, body: Optional[rf.Body],
                        sink: Optional[Callable[[bytes], Awaitable[None]]]) -> None:
        await self._perform(st.transfer(self, transfer, body, sink))

    async def run_code(self, code: str, *, context: ContextRef = None,
                       on_stdout: Optional[Callable[[Any], Any]] = None,
                       on_stderr: Optional[Callable[[Any], Any]] = None,
                       on_error: Optional[Callable[[Any], Any]] = None,
                       on_result: Optional[Callable[[Any], Any]] = None,
                       on_input: Optional[Callable[[str], Any]] = None,
                       stdin: Optional[str] = None,
                       envs: Optional[Mapping[str, str]] = None,
                       timeout: Optional[float] = None) -> ExecutionResult:
        """See :meth:`RemoteCodeInterpreter.run_code`."""
        callbacks: Dict[str, Any] = {"stdout": on_stdout, "stderr": on_stderr, "error": on_error,
                                     "result": on_result, "input": on_input}
        command, seconds = run_command(code, envs=envs, timeout=timeout, stdin=stdin, on_input=on_input,
                                       callbacks=callbacks)
        return await self._perform(st.run(self, rc.context_id(context), command, seconds, callbacks))

    async def complete(self, code: str, cursor: Optional[int] = None, context: ContextRef = None) -> List[str]:
        """See :meth:`interp.CodeInterpreter.complete`."""
        command = completion_command(code, cursor)
        return await self._call(rc.complete_call(rc.context_id(context), command["code"], command["cursor"]))

    async def interrupt(self, context: ContextRef = None) -> None:
        """See :meth:`interp.CodeInterpreter.interrupt`."""
        await self._call(rc.interrupt_call(rc.context_id(context)))

    async def restart_context(self, context: ContextRef = None) -> InterpreterContext:
        """See :meth:`interp.CodeInterpreter.restart_context`."""
        return await self._call(rc.restart_call(rc.context_id(context)))

    async def create_context(self, cwd: Optional[str] = None) -> InterpreterContext:
        """See :meth:`RemoteCodeInterpreter.create_context`."""
        ctx = str(uuid.uuid4())
        context = await self._call(rc.create_call(ctx, _check_cwd(cwd)))
        self._created[ctx] = None
        return context

    async def list_contexts(self) -> List[InterpreterContext]:
        """See :meth:`RemoteCodeInterpreter.list_contexts`."""
        return await self._call(rc.list_call())

    async def delete_context(self, context: ContextRef) -> None:
        """See :meth:`RemoteCodeInterpreter.delete_context`."""
        if context is None:
            raise TypeError("delete_context needs a context (or its id)")
        ctx = rc.context_id(context)
        try:
            await self._call(rc.delete_call(ctx))
        finally:
            self._created.pop(ctx, None)

    async def close(self) -> None:
        """See :meth:`RemoteCodeInterpreter.close`."""
        if self._closed:
            return
        try:
            for ctx in list(self._created) if self._delete_on_close else []:
                try:
                    await self.delete_context(ctx)
                except RemoteError:
                    break
                except InterpError:
                    pass
        finally:
            self._closed = True
            self._pool.close()


__all__ = ["AsyncRemoteCodeInterpreter"]
