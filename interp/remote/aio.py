"""AsyncRemoteCodeInterpreter: the asyncio twin, over asyncio streams (asyncio
is imported only when it is used: importing interp stays quick)."""

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
    RemoteProtocolError,
    RemoteServerError,
)
from ..types import ExecutionResult, InterpreterContext
from . import core as rc
from . import files as rf
from .fs import AsyncRemoteFileSystem
from .client import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_IO_TIMEOUT,
    DEFAULT_KEEP_ALIVE,
    READ_SIZE,
    T,
    _check_cwd,
    _IdleConnections,
    _input_value,
    _lost,
    _RemoteClient,
    _unreachable,
)

if TYPE_CHECKING:
    import asyncio


# -- asyncio ----------------------------------------------------------------------------

class _AsyncConnection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.reused = False
        self.idle_since = 0.0
        self.idle_limit = DEFAULT_KEEP_ALIVE

    def usable(self, now: float) -> bool:
        return (now - self.idle_since < self.idle_limit and not self.reader.at_eof()
                and not self.writer.is_closing())

    async def send(self, data: bytes, deadline: float) -> None:
        import asyncio

        self.writer.write(data)
        await asyncio.wait_for(self.writer.drain(), max(0.001, deadline - time.monotonic()))

    async def recv(self, deadline: Optional[float]) -> bytes:
        import asyncio

        if deadline is None:
            return await self.reader.read(READ_SIZE)
        wait = deadline - time.monotonic()
        if wait <= 0:
            raise socket.timeout("timed out")
        try:
            return await asyncio.wait_for(self.reader.read(READ_SIZE), wait)
        except asyncio.TimeoutError:
            raise socket.timeout("timed out") from None

    def close(self) -> None:
        try:
            if self.writer.get_extra_info("sslcontext") is not None:
                self.writer.transport.abort()  # no close_notify round trip the loop might not live to see
            else:
                self.writer.close()
        except (OSError, RuntimeError):  # RuntimeError: its event loop is closed
            pass


class _AsyncPool(_IdleConnections["_AsyncConnection"]):
    async def get(self) -> _AsyncConnection:
        import asyncio

        conn = self._reuse()
        if conn is not None:
            return conn
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self.address.host, self.address.port, limit=READ_SIZE, ssl=self.tls,
                                        server_hostname=self.address.host if self.tls else None),
                self.connect_timeout)
        except (OSError, asyncio.TimeoutError) as exc:
            raise _unreachable(self.address, exc) from None
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return _AsyncConnection(reader, writer)


class AsyncRemoteCodeInterpreter(_RemoteClient):
    """The asyncio twin of :class:`RemoteCodeInterpreter`, with the API of
    :class:`interp.AsyncCodeInterpreter`: methods are coroutines, callbacks
    may be plain or coroutine functions (awaited in order), and cancelling a
    ``run_code`` task closes its stream, which stops the run on the server as
    a timeout would, then re-raises CancelledError. An instance belongs to
    the event loop it is first used in."""

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

    async def _call(self, call: rc.Call[T]) -> T:
        """See RemoteCodeInterpreter._call."""
        self._check_open()
        data = rc.encode_request(call.request, self._address, self._token)
        for attempt in range(2):
            deadline = time.monotonic() + self._io_timeout
            conn = await self._pool.get()
            exchange = rc.CallExchange(call)
            sent = False
            try:
                await conn.send(data, deadline)
                sent = True
                while not exchange.done:
                    chunk = await conn.recv(deadline)
                    if not chunk:
                        exchange.eof()
                        break
                    exchange.feed(chunk)
            except (OSError, EOFError, RemoteProtocolError, TimeoutError) as exc:
                conn.close()
                if conn.reused and call.idempotent and attempt == 0 and exchange.parser.received == 0:
                    continue
                raise _lost(self._address, call.request, exc, sent=sent) from None
            except BaseException:
                conn.close()
                raise
            self._pool.put(conn, exchange.parser)
            return exchange.outcome()
        raise AssertionError("unreachable")  # pragma: no cover

    async def _transfer(self, transfer: rf.Transfer, body: Optional[rf.Body],
                        sink: Optional[Callable[[bytes], Awaitable[None]]]) -> None:
        """See RemoteCodeInterpreter._transfer (``sink`` is a coroutine function)."""
        import asyncio

        self._check_open()
        head = transfer.head(self._address, self._token)
        for attempt in range(2):
            transfer.restart()
            conn = await self._pool.get()
            sent = False
            broken: Optional[OSError] = None
            try:
                await conn.send(head, time.monotonic() + self._io_timeout)
                sent = True
                deadline = time.monotonic() + rf.EXPECT_WAIT
                while transfer.waiting:  # 100 Continue or a final answer, at most EXPECT_WAIT seconds
                    try:
                        if not await self._pump(conn, transfer, sink, deadline):
                            break
                    except socket.timeout:
                        transfer.go_ahead()
                if transfer.proceed and body is not None:
                    chunks = rf.local_chunks(body)
                    while True:  # the local file is read in a thread, a chunk at a time
                        chunk = await asyncio.to_thread(next, chunks, b"")
                        if not chunk:
                            break
                        try:
                            await conn.send(chunk, time.monotonic() + self._io_timeout)
                        except (OSError, asyncio.TimeoutError) as exc:
                            broken = exc if isinstance(exc, OSError) else TimeoutError(str(exc))
                            break
                while not transfer.done and await self._pump(conn, transfer, sink):
                    pass
            except rf.LocalError as exc:
                conn.close()
                raise exc.error from None
            except (OSError, EOFError, RemoteProtocolError, TimeoutError) as exc:
                conn.close()
                if conn.reused and attempt == 0 and transfer.parser.received == 0:
                    continue
                raise _lost(self._address, transfer.request, broken or exc, sent=sent) from None
            except BaseException:
                conn.close()
                raise
            self._pool.put(conn, transfer.parser)
            return transfer.outcome()
        raise AssertionError("unreachable")  # pragma: no cover

    async def _pump(self, conn: _AsyncConnection, transfer: rf.Transfer,
                    sink: Optional[Callable[[bytes], Awaitable[None]]], deadline: Optional[float] = None) -> bool:
        chunk = await conn.recv(time.monotonic() + self._io_timeout if deadline is None else deadline)
        if not chunk:
            transfer.eof()
            return False
        for piece in transfer.feed(chunk):
            if sink is not None:
                await sink(piece)
        return True

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
        ctx = rc.context_id(context)
        self._check_open()
        request = rc.run_request(ctx, command, seconds)
        run = rc.RunExchange(ctx, max_output=self._max_output, max_event=self._max_event)
        deadline = None if seconds is None else time.monotonic() + seconds + self._io_timeout
        conn = await self._pool.get()
        sent = False
        try:
            await conn.send(rc.encode_request(request, self._address, self._token),
                            time.monotonic() + self._io_timeout)
            sent = True
            while not run.done:
                chunk = await conn.recv(deadline)
                if not chunk:
                    run.eof()
                    break
                for kind, payload in run.feed(chunk):
                    await self._deliver(ctx, kind, payload, callbacks)
        except (OSError, EOFError, RemoteProtocolError, TimeoutError) as exc:
            conn.close()
            raise _lost(self._address, request, exc, sent=sent, run=run) from None
        except BaseException:
            conn.close()  # cancelled, or a callback raised: the server stops the run
            raise
        self._pool.put(conn, run.parser)
        if run.parser.status != 200:
            raise run.error_response()
        return run.outcome()

    async def _deliver(self, ctx: str, kind: str, payload: Any, callbacks: Mapping[str, Any]) -> None:
        callback = callbacks.get(kind)
        if kind != "input":
            if callback is not None:
                value = callback(payload)
                if inspect.isawaitable(value):
                    await value
            return
        number, prompt = payload
        answer, raised = None, None
        if callback is not None:
            try:
                answer = callback(prompt)
                if inspect.isawaitable(answer):
                    answer = await answer
            except EOFError as exc:
                raised = exc
        try:
            await self._call(rc.answer_call(ctx, number, _input_value(callback, answer, raised)))
        except RemoteServerError as exc:
            if exc.status != 409:
                raise

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
