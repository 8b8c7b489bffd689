"""Fds 0, 1 and 2 as user code sees them: /dev/null (or this run's stdin)
and the capture pipes, the Python streams over them, and their repair."""

from __future__ import annotations

import base64
import builtins
import io
import os
import select
import sys
import threading
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from . import flushing, native
from .channel import Channel, Relay, identity, write_all
from .signals import start_thread


#: Bytes sys.stdout / sys.stderr hold before they write (see flushing.py for when they flush).
OUTPUT_BUFFER = 65536
#: Writes to a pipe of at most this many bytes are atomic (POSIX PIPE_BUF on Linux).
PIPE_BUF = 4096
_write = os.write  # not the flushing os.write user code gets (flushing.py): the buffer calls this


class LineAlignedPipe(io.RawIOBase):
    """fd 1 or 2 under the output buffer: each write is at most PIPE_BUF
    bytes, cut after its last newline where it has one. Such a write is
    atomic in a pipe, so a process writing to the same pipe meanwhile lands
    between two lines, never inside one (of up to PIPE_BUF bytes), as with
    one write per line."""

    def __init__(self, fd: int) -> None:
        super().__init__()
        self._fd = fd

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._fd

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        if len(view) > PIPE_BUF:
            view = view[:PIPE_BUF]
            cut = bytes(view).rfind(b"\n") + 1
            if cut:
                view = view[:cut]
        # A KeyboardInterrupt raised between the write and the return would
        # make the buffer write these bytes again: the worker's SIGINT handler
        # defers it while this is set (see in_write).
        _in_write[0] = threading.get_ident()
        try:
            return _write(self._fd, view)
        finally:
            _in_write[0] = 0


_in_write = [0]  # the thread between a write to fd 1/2 and its return, or 0


def in_write() -> bool:
    """True while the main thread is inside a buffered write to fd 1 or 2
    (where an exception would lose track of what was written)."""
    return _in_write[0] == threading.main_thread().ident


def text_stream(fd: int, mode: str) -> io.TextIOWrapper:
    """A text stream over ``fd`` for sys.stdin (``"r"``) or sys.stdout/err (``"w"``)."""
    if mode == "r":
        return io.TextIOWrapper(io.BufferedReader(io.FileIO(fd, mode, closefd=False)), encoding="utf-8",
                                errors="replace")
    # Buffered as python's own over a pipe, and flushed before any other
    # writer and every few milliseconds (flushing.py), so a line costs a copy
    # and the bytes still reach the pipe in the order they were written.
    stream = io.TextIOWrapper(io.BufferedWriter(LineAlignedPipe(fd), OUTPUT_BUFFER), encoding="utf-8",
                              errors="backslashreplace")
    # Text goes straight into the byte buffer (not a text chunk of its own),
    # so writes to sys.stdout.buffer keep their place among print()s.
    stream._CHUNK_SIZE = 1  # type: ignore[attr-defined]
    return stream


#: The streams set_stream installed over the capture pipes (and stdin).
_ours: Dict[str, Any] = {}


def set_stream(name: str, stream: Any) -> None:
    """Make ``stream`` sys.<name> and sys.__<name>__ (both: code that restores
    one from the other gets ours)."""
    setattr(sys, name, stream)
    setattr(sys, "__%s__" % name, stream)
    _ours[name] = stream


_builtin_print = builtins.print


def whole_line_print(*objects: object, sep: Optional[str] = " ", end: Optional[str] = "\n",
                     file: Any = None, flush: bool = False) -> None:
    """print(): to the capture streams, the whole text of one call (objects,
    separators and ``end``) goes out in one write, so another writer (os.write,
    a subprocess, a flush by the ticker) never lands between a line and its
    newline. Other files get the built-in print."""
    stream: Any = sys.stdout if file is None else file
    if stream is None:
        return
    if stream is not _ours.get("stdout") and stream is not _ours.get("stderr"):
        _builtin_print(*objects, sep=sep, end=end, file=stream, flush=flush)
        return
    if end is None:
        end = "\n"
    elif not isinstance(end, str):
        raise TypeError("end must be None or a string, not %s" % type(end).__name__)
    writer: Any = stream  # (one of ours)
    if len(objects) == 1 and (sep is None or isinstance(sep, str)):  # the common case, quickly
        writer.write(str(objects[0]) + end)
    else:
        if sep is None:
            sep = " "
        elif not isinstance(sep, str):
            raise TypeError("sep must be None or a string, not %s" % type(sep).__name__)
        writer.write(sep.join([str(obj) for obj in objects]) + end)
    if flush:
        writer.flush()


whole_line_print.__name__ = whole_line_print.__qualname__ = "print"
whole_line_print.__doc__ = _builtin_print.__doc__


def flush_streams() -> None:
    """Flush the worker's own sys.stdout and sys.stderr (whatever user code
    did to them; never raises): before another writer, or on a tick."""
    for name in ("stdout", "stderr"):
        stream = _ours.get(name)
        try:
            if stream is not None:
                stream.flush()
        except BaseException:
            pass


def flush_everything() -> None:
    """Flush whatever user code may have buffered: Python streams, C stdio."""
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except BaseException:
            pass
    native.fflush_all()


def setup_descriptors(capture: Optional[Sequence[int]] = None) -> Tuple[Channel, Relay]:
    """Move the channel off fds 0/1 and rebuild fds 0, 1, 2 for user code.

    ``capture`` is ``(stdout_r, stdout_w, stderr_r, stderr_w)``: pipes the
    launcher made (it keeps copies of the read ends to recover what is left
    in them if this process dies). Without it the worker makes its own.
    """
    rfd = os.dup(0)  # os.dup makes non-inheritable copies: subprocesses never see them
    wfd = os.dup(1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    if capture is None:
        capture = os.pipe() + os.pipe()
    pipes = {}
    for fd, name, read_end, write_end in ((1, "stdout", capture[0], capture[1]),
                                          (2, "stderr", capture[2], capture[3])):
        os.dup2(write_end, fd)  # inheritable, so children write to the same pipe
        os.close(write_end)
        os.set_inheritable(read_end, False)
        pipes[read_end] = name
    channel = Channel(rfd, wfd)
    return channel, Relay(channel, pipes)


class Plumbing:
    """Fds 0, 1, 2 as set up for user code, and how to put them back.

    User code may close or replace them (``os.close(1)``, ``os.dup2``) or
    break the Python streams over them (``sys.stdout = None``,
    ``sys.stdout.close()``); :meth:`repair`, called before each run, undoes
    that so one bad cell does not silence every later one.
    """

    def __init__(self) -> None:
        """What does not depend on the descriptors themselves (a zygote
        builds it once, before it forks): the streams over fds 0 (which
        reads /dev/null, here as in every worker), 1 and 2, and the flushing
        hooks. :meth:`start` takes the process's own fds."""
        self.saved: Dict[int, int] = {}
        self.ids: Dict[int, Optional[Tuple[int, int]]] = {}
        set_stream("stdin", text_stream(0, "r"))
        set_stream("stdout", text_stream(1, "w"))
        set_stream("stderr", text_stream(2, "w"))
        flushing.install(flush_streams)
        self.ticker = flushing.Ticker(flush_streams)

    def start(self) -> None:
        """Take fds 0, 1 and 2 as they are now (see setup_descriptors) as the
        ones to put back, and start the ticker (in the process that runs the code)."""
        self.saved = {fd: os.dup(fd) for fd in (0, 1, 2)}  # private, non-inheritable copies
        self.ids = {fd: identity(fd) for fd in (0, 1, 2)}
        flushing.flush_before_fork(flush_streams)
        self.ticker.start()

    def reset_stdin(self) -> None:
        """fd 0 reads /dev/null again; sys.stdin is a fresh reader over it."""
        if identity(0) != self.ids[0]:
            os.dup2(self.saved[0], 0)
        set_stream("stdin", text_stream(0, "r"))

    def repair(self) -> None:
        for fd in (1, 2):
            if identity(fd) != self.ids[fd]:
                os.dup2(self.saved[fd], fd)
        if identity(0) != self.ids[0] or _broken(sys.stdin):
            self.reset_stdin()
        if _broken(sys.stdout):
            set_stream("stdout", text_stream(1, "w"))
        if _broken(sys.stderr):
            set_stream("stderr", text_stream(2, "w"))


def _broken(stream: Any) -> bool:
    """True unless ``stream`` looks like an open stream; never raises, whatever
    object user code put in sys.std*."""
    try:
        return stream is None or getattr(stream, "closed", True) is True
    except BaseException:
        return True


def attach_stdin(text: str) -> None:
    """Make fd 0 (and sys.stdin) read ``text`` then EOF, for this run."""
    data = text.encode("utf-8", "surrogateescape")
    read_end, write_end = os.pipe()
    os.dup2(read_end, 0)
    os.close(read_end)

    def feed() -> None:
        try:
            write_all(write_end, data)
        except OSError:  # nobody read it all: the run ended
            pass
        finally:
            os.close(write_end)

    if len(data) <= 16384:  # fits the pipe buffer: no thread needed
        feed()
    else:
        start_thread(feed)
    set_stream("stdin", text_stream(0, "r"))


class StreamedStdin:
    """fd 0 of one run as a pipe the parent fills with its own stdin (the
    command line's), chunk by chunk as the code reads: ``sys.stdin`` is a
    real stream over it (``.buffer``, partial reads, bytes as they were) and
    subprocesses inherit it. A thread takes the channel for the run: it asks
    for a chunk (``stdin_more``), writes the ``stdin`` frame's bytes into the
    pipe and asks again; :meth:`stop` ends it before the run's ``done``."""

    def __init__(self, channel: Channel) -> None:
        self._channel = channel
        read_end, self._write_end = os.pipe()
        os.set_blocking(self._write_end, False)
        os.dup2(read_end, 0)
        os.close(read_end)
        set_stream("stdin", text_stream(0, "r"))
        self._stop_r, self._stop_w = os.pipe()
        self._ended = threading.Lock()
        self._ended.acquire()
        start_thread(self._feed)

    def stop(self) -> None:
        """End the thread (the run is over) and give the channel back."""
        os.write(self._stop_w, b"!")
        self._ended.acquire()
        os.close(self._stop_r)
        os.close(self._stop_w)

    def _feed(self) -> None:
        try:
            self._channel.send({"t": "stdin_more"})
            while True:
                message = self._next()
                if message is None or message.get("eof"):
                    return
                if not self._write(base64.b64decode(str(message.get("d", "")))):
                    return
                self._channel.send({"t": "stdin_more"})
        except (OSError, ValueError):  # the channel broke, or the code closed fd 0's pipe
            pass
        finally:
            os.close(self._write_end)  # the code reads EOF
            self._ended.release()

    def _next(self) -> Optional[Dict[str, Any]]:
        """The next ``stdin`` frame, or None once stopped (another frame is
        left for the main loop)."""
        channel = self._channel
        if not channel.has_message():
            ready, _, _ = select.select([channel.rfd, self._stop_r], [], [])
            if self._stop_r in ready:
                return None
        message = channel.recv()
        if message.get("t") != "stdin":
            channel.unread(message)
            return None
        return message

    def _write(self, data: bytes) -> bool:
        """Put ``data`` into the pipe as the code makes room; False if stopped."""
        view = memoryview(data)
        while view:
            _, writable, _ = select.select([self._stop_r], [self._write_end], [])
            if not writable:
                return False
            try:
                view = view[os.write(self._write_end, view):]
            except BlockingIOError:
                pass
        return True


class CallbackStdin(io.TextIOBase):
    """sys.stdin for a run with an input callback: each line is asked for."""

    def __init__(self, ask: Callable[[str], str]) -> None:
        self._ask = ask
        self._eof = False

    def readable(self) -> bool:
        return True

    def readline(self, size: Optional[int] = -1) -> str:  # type: ignore[override]
        if self._eof:
            return ""
        try:
            line = self._ask("")
        except EOFError:
            self._eof = True
            return ""
        return line if line.endswith("\n") else line + "\n"

    def read(self, size: Optional[int] = -1) -> str:
        chunks: List[str] = []
        while True:
            line = self.readline()
            if not line:
                return "".join(chunks)
            chunks.append(line)
