"""The worker: the program that runs inside every context's child process.

It speaks the framed protocol of :mod:`protocol` over the stdin/stdout it was
started with, so it can run behind any command that gives a byte stream. At
start-up it moves that channel to private descriptors and rebuilds the
standard descriptors for user code:

* fd 0 reads ``/dev/null``: user code sees EOF and can never read the protocol;
* fd 1 and fd 2 are pipes that a relay thread reads and forwards as ``out``
  frames, so ``print``, ``os.write(1, ...)``, ``os.system`` and subprocesses
  are all captured, in the order their bytes were written.

The main thread reads one ``run`` command at a time, executes it in one
``__main__`` namespace that persists between runs, and answers ``done``.

This module imports only the standard library and, besides that, only
:mod:`protocol`, so that it can be loaded by path into any Python >= 3.9.
"""

import builtins
import code
import codecs
import io
import linecache
import os
import select
import signal
import sys
import threading
import traceback
import types

try:
    from . import protocol
except ImportError:  # loaded by path, see process.BOOTSTRAP
    import _interp_protocol as protocol

CHUNK = 65536


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


class Channel:
    """The framed byte channel to the parent. ``send`` is thread-safe."""

    def __init__(self, rfd, wfd):
        self.rfd = rfd
        self.wfd = wfd
        self.lock = threading.Lock()
        self._decoder = protocol.FrameDecoder(max_frame=0xFFFFFFFF)  # the parent is trusted
        self._inbox = []

    def send(self, message):
        with self.lock:
            _write_all(self.wfd, protocol.encode(message))

    def send_locked(self, message):
        """Send while the caller already holds ``lock``."""
        _write_all(self.wfd, protocol.encode(message))

    def recv(self):
        """Block for the next command; raise EOFError when the parent is gone."""
        while not self._inbox:
            data = os.read(self.rfd, 1 << 20)
            if not data:
                raise EOFError
            self._inbox.extend(self._decoder.feed(data))
        return self._inbox.pop(0)


class Relay(threading.Thread):
    """Forwards the capture pipes to the channel; watches for parent death.

    Reading a pipe and sending its frame happen under the channel lock, so
    :meth:`drain` (called by the main thread at the end of a run) can be
    sure that every byte written before it was called has been sent before
    the ``done`` frame that follows it.
    """

    def __init__(self, channel, pipes):
        super().__init__(name="interp-relay", daemon=True)
        self.channel = channel
        self.pipes = dict(pipes)  # read fd -> stream name
        self.decoders = {fd: codecs.getincrementaldecoder("utf-8")("replace") for fd in self.pipes}
        for fd in self.pipes:
            os.set_blocking(fd, False)

    def run(self):
        poller = select.poll()
        for fd in self.pipes:
            poller.register(fd, select.POLLIN)
        # Registered with no events: poll still reports POLLHUP/POLLERR, i.e.
        # the parent closed its end (it exited or was killed).
        poller.register(self.channel.rfd, 0)
        try:
            while True:
                for fd, events in poller.poll():
                    if fd == self.channel.rfd:
                        _orphaned()
                    with self.channel.lock:
                        if not self._pump(fd):
                            poller.unregister(fd)
        except OSError:  # the channel broke: the parent is gone
            _orphaned()

    def _pump(self, fd, drain=False):
        """Forward what one pipe holds; return False once it is at EOF.

        Reads once, or with ``drain`` until the pipe is empty, in which case
        an incomplete trailing UTF-8 sequence is flushed as U+FFFD.
        """
        while True:
            try:
                data = os.read(fd, CHUNK)
                is_open = bool(data)
            except BlockingIOError:
                data, is_open = b"", True
            except OSError:  # user code closed or replaced our read end
                data, is_open = b"", False
            idle = not data
            text = self.decoders[fd].decode(data, final=not is_open or (drain and idle))
            if text:
                self.channel.send_locked({"t": "out", "s": self.pipes[fd], "d": text})
            if idle or not drain:
                return is_open

    def drain(self):
        """Send everything the pipes hold now (call with all writers flushed)."""
        with self.channel.lock:
            for fd in self.pipes:
                self._pump(fd, drain=True)


def _orphaned():
    """The parent is gone (or closed the channel): take down this process and
    everything it started. Never returns."""
    if os.getpgrp() == os.getpid():
        os.killpg(os.getpid(), signal.SIGKILL)
    os._exit(1)


def _clip(text):
    limit = protocol.MAX_ERROR_CHARS
    if len(text) <= limit:
        return text
    return text[: limit // 2] + "\n... [%d characters clipped] ...\n" % (len(text) - limit) + text[-limit // 2:]


def _describe(exc):
    try:
        return str(exc)
    except BaseException:
        return "<unprintable %s object>" % type(exc).__name__


class Interpreter(code.InteractiveInterpreter):
    """Runs whole cells (``exec`` mode) and records errors instead of printing them."""

    def __init__(self, namespace):
        super().__init__(namespace)
        self.count = 0
        self.error = None
        self.in_user_code = False

    def execute(self, source, filename=None):
        """Run ``source``; return None or an error dict for the ``done`` frame."""
        self.count += 1
        self.error = None
        filename = filename or "<cell-%d>" % self.count
        # Keep the source so tracebacks can quote it, now and in later runs.
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        try:
            compiled = compile(source, filename, "exec", dont_inherit=True)
        except (SyntaxError, ValueError, OverflowError, MemoryError) as exc:
            if not isinstance(exc, SyntaxError):  # e.g. NUL bytes on older Pythons
                exc = SyntaxError(_describe(exc))
            self._record(exc, None)
            return self.error
        self.runcode(compiled)
        return self.error

    def runcode(self, compiled):
        try:
            self.in_user_code = True
            exec(compiled, self.locals)
            self.in_user_code = False
        except SystemExit as exc:
            self.in_user_code = False
            if exc.code is not None and exc.code != 0:
                self._record(exc, exc.__traceback__.tb_next)
        except BaseException as exc:
            self.in_user_code = False
            self._record(exc, exc.__traceback__.tb_next)

    def _record(self, exc, tb):
        sys.last_type, sys.last_value, sys.last_traceback = type(exc), exc, tb
        try:
            report = traceback.TracebackException(type(exc), exc, tb)
            _hide_engine_frames(report, set())
            text = "".join(report.format())
        except BaseException:
            text = "%s: %s\n" % (type(exc).__name__, _describe(exc))
        value = _describe(exc.code) if isinstance(exc, SystemExit) else _describe(exc)
        self.error = {"name": type(exc).__name__, "value": _clip(value), "traceback": _clip(text)}


_ENGINE_FILES = {os.path.normcase(os.path.abspath(__file__)),
                 os.path.normcase(os.path.abspath(protocol.__file__))}


def _hide_engine_frames(report, seen):
    """Drop this module's frames (e.g. the SIGINT handler) from a report and its chain."""
    if report is None or id(report) in seen:
        return
    seen.add(id(report))
    report.stack = traceback.StackSummary.from_list(
        [frame for frame in report.stack
         if os.path.normcase(os.path.abspath(frame.filename)) not in _ENGINE_FILES])
    _hide_engine_frames(report.__cause__, seen)
    _hide_engine_frames(report.__context__, seen)
    for sub in getattr(report, "exceptions", None) or ():
        _hide_engine_frames(sub, seen)


def _text_stream(fd, mode):
    raw = io.FileIO(fd, mode, closefd=False)
    if mode == "r":
        return io.TextIOWrapper(io.BufferedReader(raw), encoding="utf-8", errors="replace")
    # Unbuffered like ``python -u``: bytes reach the pipe at once, so a
    # partial line is never stuck in this process and ordering with
    # os.write / subprocess output is preserved.
    return io.TextIOWrapper(raw, encoding="utf-8", errors="backslashreplace", write_through=True)


def _flush_everything():
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            stream.flush()
        except BaseException:
            pass
    # Output buffered by C code's stdio (printf in an extension module).
    ctypes = sys.modules.get("ctypes")
    if ctypes is not None:
        try:
            ctypes.CDLL(None).fflush(None)
        except BaseException:
            pass


def _restore_environ(saved):
    for key in list(os.environ):
        if key not in saved:
            del os.environ[key]
    for key, value in saved.items():
        if os.environ.get(key) != value:
            os.environ[key] = value


def setup_descriptors(capture=None):
    """Move the channel off fds 0/1 and rebuild fds 0, 1, 2 for user code.

    ``capture`` is ``(stdout_r, stdout_w, stderr_r, stderr_w)``: pipes the
    launcher made (it keeps copies of the read ends to recover what is left
    in them if this process dies). Without it the worker makes its own.
    Returns ``(channel, relay)``.
    """
    rfd = os.dup(0)  # os.dup makes non-inheritable copies: subprocesses never see them
    wfd = os.dup(1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    if capture is None:
        capture = os.pipe() + os.pipe()
    pipes = {}
    for fd, name, read_end, write_end in ((1, "stdout") + tuple(capture[:2]),
                                          (2, "stderr") + tuple(capture[2:])):
        os.dup2(write_end, fd)  # inheritable, so children write to the same pipe
        os.close(write_end)
        os.set_inheritable(read_end, False)
        pipes[read_end] = name
    sys.stdin = sys.__stdin__ = _text_stream(0, "r")
    sys.stdout = sys.__stdout__ = _text_stream(1, "w")
    sys.stderr = sys.__stderr__ = _text_stream(2, "w")
    channel = Channel(rfd, wfd)
    return channel, Relay(channel, pipes)


def main(capture=None):
    """Entry point of a worker process (its stdin/stdout are the channel).

    ``capture``: optional capture pipes made by the launcher, see
    :func:`setup_descriptors`.
    """
    channel, relay = setup_descriptors(capture)
    namespace = types.ModuleType("__main__")
    namespace.__builtins__ = builtins
    sys.modules["__main__"] = namespace
    sys.argv = [""]
    interp = Interpreter(namespace.__dict__)

    def on_sigint(signum, frame):
        # Only user code is interruptible: a KeyboardInterrupt inside the
        # engine could cut a frame in half.
        if interp.in_user_code:
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_sigint)
    relay.start()
    channel.send({"t": "ready", "pid": os.getpid()})
    try:
        while True:
            command = channel.recv()
            if command.get("t") == "run":
                error = _run(interp, command)
                _flush_everything()
                relay.drain()
                channel.send({"t": "done", "error": error})
    except (EOFError, OSError):  # the channel broke: the parent is gone
        pass
    _orphaned()


def _run(interp, command):
    envs = command.get("envs")
    saved = dict(os.environ) if envs is not None else None
    try:
        if envs:
            os.environ.update(envs)
        if sys.stdin is None or sys.stdin.closed:  # e.g. after exit(), which closes it
            sys.stdin = sys.__stdin__ = _text_stream(0, "r")
        return interp.execute(command["code"], command.get("filename"))
    finally:
        if saved is not None:
            _restore_environ(saved)
