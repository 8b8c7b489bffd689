"""The worker: the program that runs inside every context's child process.

It speaks the framed protocol of :mod:`protocol` over the stdin/stdout it was
started with, so it can run behind any command that gives a byte stream. At
start-up it moves that channel to private descriptors and rebuilds the
standard descriptors for user code:

* fd 0 reads ``/dev/null``: user code sees EOF and can never read the protocol;
* fd 1 and fd 2 are pipes that a relay thread forwards as output frames
  (raw bytes, spliced into the channel), so ``print``, ``os.write(1, ...)``, ``os.system`` and subprocesses
  are all captured, in the order their bytes were written.

The main thread reads one command at a time: ``setup`` (cwd, environment
and limits, for a worker the zygote forked ahead of need), ``run`` (execute
a cell in the ``__main__`` namespace that persists between runs; answer
``done``) or ``complete``. Sections below: the channel and the relay,
process trees, the interpreter, rich results, matplotlib, stdin,
completion, fds and streams, the main loop.

This module imports only the standard library and, besides that, only
:mod:`protocol`, so that it can be loaded by path into any Python >= 3.9.
"""

import ast
import base64
import builtins
import code
import collections
import fcntl
import io
import json
import keyword
import linecache
import os
import re
import select
import signal
import struct
import sys
import termios
import time
import threading
import _thread
import traceback
import types

try:
    from . import protocol
except ImportError:  # loaded by path, see process._LOADER
    import _interp_protocol as protocol

CHUNK = 65536
#: Characters of cell source kept for tracebacks (older cells are forgotten).
LINECACHE_BUDGET = 32 * 1024 * 1024


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

    def has_message(self):
        """True if a whole message is already decoded, waiting for recv()."""
        return bool(self._inbox)

    def recv(self):
        """Block for the next command; raise EOFError when the parent is gone."""
        while not self._inbox:
            data = os.read(self.rfd, 1 << 20)
            if not data:
                raise EOFError
            self._inbox.extend(self._decoder.feed(data))
        return self._inbox.pop(0)


class Relay:
    """Forwards the capture pipes to the channel; watches for parent death.

    Output is never held in this process's memory: it moves from a capture
    pipe into the channel inside the kernel (``splice``), after the header
    of its output frame. A worker that dies at any point therefore leaves
    each byte either in the channel (a frame the parent may find cut short)
    or still in the capture pipe, whose read end the parent keeps too.
    Without ``os.splice`` (Python 3.9, not Linux) bytes are read and sent
    in one write, and a crash in between loses them.

    Forwarding happens under the channel lock, so :meth:`drain` (called by
    the main thread at the end of a run) can be sure that every byte written
    before it was called has been sent before the ``done`` frame that
    follows it.
    """

    def __init__(self, channel, pipes):
        self.channel = channel
        self.pipes = dict(pipes)  # read fd -> stream name
        self.ids = {fd: _identity(fd) for fd in self.pipes}
        self.broken = False
        for fd in self.pipes:
            os.set_blocking(fd, False)

    def intact(self):
        """False once user code closed, replaced or stole from a capture pipe's read end."""
        self.broken = self.broken or any(_identity(fd) != self.ids[fd] for fd in self.pipes)
        return not self.broken

    def start(self):
        # A bare thread: threading.Thread.start would wait for it to be
        # scheduled, which costs a fresh worker a millisecond under load.
        _thread.start_new_thread(self.run, ())

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
                        moved = self._pump(fd, CHUNK)
                    # Nothing to read though poll says so: no writer is left
                    # (POLLHUP), or user code closed or replaced the fd.
                    if not moved and (not events & select.POLLIN or not self.intact()):
                        poller.unregister(fd)
        except BaseException:  # the channel broke (the parent is gone), or a bug:
            _orphaned()  # never live on without a relay; the parent salvages the output

    def _pump(self, fd, limit):
        """Forward up to ``limit`` bytes of what one pipe holds now, in frames
        of at most CHUNK bytes; return how many. Call with the lock held."""
        size = min(_waiting(fd), limit)
        if size < 0:  # user code closed or replaced our read end
            self.broken = True
            return 0
        for start in range(0, size, CHUNK):
            self._forward(fd, min(CHUNK, size - start))
        return size

    def _forward(self, fd, size):
        """Send one output frame of ``size`` bytes that the pipe ``fd`` holds."""
        stream, wfd = self.pipes[fd], self.channel.wfd
        if _splice is None:
            try:
                data = os.read(fd, size)
            except OSError:
                data = b""
            self.broken |= len(data) < size
            _write_all(wfd, protocol.output_frame(stream, data))
            return
        _write_all(wfd, protocol.output_header(stream, size))
        while size:
            try:
                moved = _splice(fd, wfd, size)
            except BlockingIOError:  # the channel is full, or the pipe empty
                moved = 0
            except OSError:  # our read end was closed or replaced
                moved = None
            if moved == 0 and _waiting(fd) > 0:
                select.select((), (wfd,), ())  # the channel is full: wait for the parent
                continue
            if not moved:
                # User code took the bytes this frame promised: complete it
                # and report the capture broken at the next run.
                self.broken = True
                _write_all(wfd, b"?" * size)
                return
            size -= moved

    def drain(self):
        """Send everything the pipes hold now (call with all writers flushed).

        Only what is there now: a writer that never stops (a ``yes``
        subprocess) must not keep the run from ending.
        """
        with self.channel.lock:
            for fd in self.pipes:
                self._pump(fd, _waiting(fd))


_splice = getattr(os, "splice", None) if sys.platform.startswith("linux") else None


def _waiting(fd):
    """Bytes waiting in a pipe (FIONREAD), or -1 if ``fd`` is not a pipe of ours any more."""
    try:
        return struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0]
    except (OSError, struct.error):
        return -1


def _orphaned():
    """The parent is gone (or closed the channel): take down this process and
    everything it started. Never returns."""
    kill_tree(os.getpid())
    if os.getpgrp() == os.getpid():
        os.killpg(os.getpid(), signal.SIGKILL)
    os._exit(1)


# -- process trees (also used by the parent, see process.py) ------------------------------

PR_SET_CHILD_SUBREAPER = 36


_libc = {}  # name -> C function, resolved once (in the zygote, before it forks)


def load_native():
    """Resolve the C functions the worker calls (prctl, fflush) via ctypes."""
    if _libc:
        return _libc
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        _libc.update(prctl=libc.prctl, fflush=libc.fflush, clearenv=libc.clearenv)
    except Exception:
        _libc["unavailable"] = True
    return _libc


def _become_subreaper():
    """Make orphaned descendants (daemons that setsid and double-fork) become
    children of this worker instead of init, so that kill_tree finds them."""
    if not sys.platform.startswith("linux"):
        return
    prctl = load_native().get("prctl")
    if prctl is not None:
        prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def _children_of(pid):
    try:
        tasks = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return []
    children = []
    for task in tasks:
        try:
            with open("/proc/%d/task/%s/children" % (pid, task)) as handle:
                children.extend(int(child) for child in handle.read().split())
        except (OSError, ValueError):
            pass
    return children


def _state(pid):
    """The state letter of ``pid`` in /proc (b"R", b"S", b"T", b"Z", ...), or None if it is gone."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    end = data.rindex(b")")  # the command name, in parentheses, may hold anything
    return data[end + 2:end + 3]


def is_live(pid):
    """True if ``pid`` runs (not gone, not a zombie)."""
    return _state(pid) not in (None, b"Z", b"X")


def is_stopped(pid):
    """True if ``pid`` is stopped (SIGSTOP, or traced)."""
    return _state(pid) in (b"T", b"t")


def descendants(pid):
    """The live processes below ``pid`` in the process tree (Linux /proc)."""
    found, stack = [], [pid]
    while stack:
        for child in _children_of(stack.pop()):
            if is_live(child):
                found.append(child)
            stack.append(child)
    return found


def kill_tree(pid, rounds=10):
    """SIGKILL every live descendant of ``pid`` (not ``pid`` itself), again
    while new ones keep appearing (a process forking as it dies)."""
    for _ in range(rounds):
        victims = descendants(pid)
        if not victims:
            return
        for victim in victims:
            try:
                os.kill(victim, signal.SIGKILL)
            except OSError:
                pass


def _clip(text, limit=protocol.MAX_ERROR_CHARS):
    if len(text) <= limit:
        return text
    return text[: limit // 2] + "\n... [%d characters clipped] ...\n" % (len(text) - limit) + text[-limit // 2:]


def _describe(exc):
    try:
        return str(exc)
    except BaseException:
        return "<unprintable %s object>" % type(exc).__name__


# ast.PyCF_ALLOW_TOP_LEVEL_AWAIT; CO_COROUTINE marks code that must be awaited.
TOP_LEVEL_AWAIT = getattr(ast, "PyCF_ALLOW_TOP_LEVEL_AWAIT", 0x2000)
CO_COROUTINE = 0x80

_ENGINE_FILES = {os.path.normcase(os.path.abspath(__file__)),
                 os.path.normcase(os.path.abspath(protocol.__file__))}


def _is_engine_frame(filename, leading):
    path = os.path.normcase(os.path.abspath(filename))
    if path in _ENGINE_FILES:
        return True
    # asyncio machinery between the engine and a top-level-await cell
    return leading and os.sep + "asyncio" + os.sep in path


def _hide_engine_frames(report, seen):
    """Drop the engine's frames (and the asyncio frames that lead to a
    top-level-await cell) from a traceback report and its chain."""
    if report is None or id(report) in seen:
        return
    seen.add(id(report))
    frames = list(report.stack)
    start = 0
    while start < len(frames) and _is_engine_frame(frames[start].filename, True):
        start += 1
    report.stack = traceback.StackSummary.from_list(
        [frame for frame in frames[start:] if not _is_engine_frame(frame.filename, False)])
    _hide_engine_frames(report.__cause__, seen)
    _hide_engine_frames(report.__context__, seen)
    for sub in getattr(report, "exceptions", None) or ():
        _hide_engine_frames(sub, seen)


def _suppressed_by_semicolon(source, node):
    """True if the expression statement ``node`` is followed by ``;`` (as in a notebook)."""
    lines = source.splitlines()
    if node.end_lineno is None or node.end_lineno > len(lines):
        return False
    rest = lines[node.end_lineno - 1].encode("utf-8")[node.end_col_offset:]
    return rest.lstrip().startswith(b";")


class SignalGate:
    """Python signal handlers that user code installs run only while user
    code runs.

    A handler that raised while the worker's own code ran (writing a frame,
    waiting for the next command) would cut a frame in half or end the
    worker. So ``signal.signal`` is wrapped: a signal that comes at such a
    moment is held, and its handler runs as soon as user code runs again
    (when ``display()`` returns, or as the next run starts), where an
    exception it raises is the user code's. ``signal.getsignal`` still
    returns the handler the user gave.
    """

    def __init__(self, is_open):
        self.is_open = is_open
        # signum -> (handler, frame): like the kernel, a signal that comes
        # again while held is held once. Only replaced or changed by single
        # operations, so a handler that comes in between loses nothing.
        self.held = {}
        self._signal = signal.signal
        self._getsignal = signal.getsignal

    def install(self):
        """Route user code's ``signal.signal`` / ``signal.getsignal`` through this gate."""
        signal.signal = self.signal
        signal.getsignal = self.getsignal

    def signal(self, signalnum, handler):
        """signal.signal, whose handler runs only while user code runs."""
        if callable(handler):
            handler = _GatedHandler(self, handler)
        return _ungated(self._signal(signalnum, handler))

    def getsignal(self, signalnum):
        """signal.getsignal: the handler as user code gave it."""
        return _ungated(self._getsignal(signalnum))

    def release(self):
        """Run the handlers of signals held meanwhile (call in user code)."""
        while self.held:
            held, self.held = self.held, {}
            items = list(held.items())
            for index, (signum, (handler, frame)) in enumerate(items):
                try:
                    handler(signum, frame)
                except BaseException:
                    for later, pending in items[index + 1:]:  # still held, for next time
                        self.held.setdefault(later, pending)
                    raise

    def forget(self, signum):
        """Drop a held ``signum`` signal (an interrupt meant for a run that ended)."""
        self.held.pop(signum, None)


class _GatedHandler:
    __slots__ = ("gate", "handler")

    def __init__(self, gate, handler):
        self.gate = gate
        self.handler = handler

    def __call__(self, signum, frame):
        if self.gate.is_open():
            return self.handler(signum, frame)
        self.gate.held[signum] = (self.handler, frame)
        return None


def _ungated(handler):
    return handler.handler if isinstance(handler, _GatedHandler) else handler


class Interpreter(code.InteractiveInterpreter):
    """Runs whole cells and records errors instead of printing them.

    A cell is parsed once; when its last statement is an expression it is
    compiled in ``single`` mode, so its value goes to ``sys.displayhook``
    (as in the REPL) and becomes the run's main result. Cells may use
    top-level ``await``; they then run on a per-worker event loop.
    """

    def __init__(self, namespace):
        super().__init__(namespace)
        self.count = 0
        self.error = None
        self.in_user_code = False
        self.interrupt_pending = False
        self.signals = SignalGate(lambda: self.in_user_code)
        self._loop = None
        self._cached = collections.deque()  # (filename, size) of cells kept in linecache
        self._cached_size = 0

    def execute(self, source, filename=None):
        """Run ``source``; return None or an error dict for the ``done`` frame."""
        self.count += 1
        self.error = None
        filename = filename or "<cell-%d>" % self.count
        self._remember_source(filename, source)
        try:
            units = self._compile(source, filename)
        except (SyntaxError, ValueError, OverflowError, MemoryError, RecursionError) as exc:
            if not isinstance(exc, SyntaxError):  # e.g. NUL bytes on older Pythons
                exc = SyntaxError(_describe(exc))
            self._record(exc, None)
            return self.error
        for unit in units:
            if not self.runcode(unit):
                break
        return self.error

    def _remember_source(self, filename, source):
        """Keep the cell's source so tracebacks can quote it, now and in later
        runs; forget the oldest cells beyond LINECACHE_BUDGET characters."""
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        self._cached.append((filename, len(source)))
        self._cached_size += len(source)
        while self._cached_size > LINECACHE_BUDGET and len(self._cached) > 1:
            old, size = self._cached.popleft()
            self._cached_size -= size
            linecache.cache.pop(old, None)

    def _compile(self, source, filename):
        flags = TOP_LEVEL_AWAIT
        tree = compile(source, filename, "exec", ast.PyCF_ONLY_AST | flags, dont_inherit=True)
        last = tree.body[-1] if tree.body else None
        if not isinstance(last, ast.Expr) or _suppressed_by_semicolon(source, last):
            return [compile(tree, filename, "exec", flags, dont_inherit=True)]
        units = []
        if len(tree.body) > 1:
            head = ast.Module(body=tree.body[:-1], type_ignores=[])
            units.append(compile(head, filename, "exec", flags, dont_inherit=True))
        units.append(compile(ast.Interactive(body=[last]), filename, "single", flags, dont_inherit=True))
        return units

    def runcode(self, compiled):
        """Run one code object; False if it raised (the error is recorded)."""
        try:
            self.enter_user_code()
            if compiled.co_flags & CO_COROUTINE:
                self._await(eval(compiled, self.locals))
            else:
                exec(compiled, self.locals)
            self.in_user_code = False
            return True
        except SystemExit as exc:
            self.in_user_code = False
            code = exc.code
            if not (code is None or (isinstance(code, int) and code == 0)):
                self._record(exc, exc.__traceback__)
            return False
        except BaseException as exc:
            self.in_user_code = False
            self._record(exc, exc.__traceback__)
            return False

    def enter_user_code(self):
        """User code runs (again) from here: deliver what was held while it
        did not, a SIGINT (as KeyboardInterrupt) first, then other signals."""
        self.in_user_code = True
        if self.interrupt_pending:
            self.interrupt_pending = False
            raise KeyboardInterrupt
        self.signals.release()

    def _await(self, coroutine):
        import asyncio

        if self._loop is None or self._loop.is_closed():
            self._loop = asyncio.new_event_loop()
        task = self._loop.create_task(coroutine)
        try:
            self._loop.run_until_complete(task)
        except BaseException:
            if not task.done():  # interrupted while awaiting: unwind the cell's task
                task.cancel()
                try:
                    self._loop.run_until_complete(task)
                except BaseException:
                    pass
            raise

    def _record(self, exc, tb):
        sys.last_type, sys.last_value, sys.last_traceback = type(exc), exc, tb
        try:
            report = traceback.TracebackException(type(exc), exc, tb)
            _hide_engine_frames(report, set())
            text = "".join(report.format())
        except BaseException:
            text = "%s: %s\n" % (type(exc).__name__, _describe(exc))
        value = _describe(exc.code) if isinstance(exc, SystemExit) else _describe(exc)
        self.error = {"name": _clip(type(exc).__name__, 1000), "value": _clip(value), "traceback": _clip(text)}


# -- rich results -------------------------------------------------------------------

_REPR_METHODS = tuple((mime, method) for mime, _, method in protocol.RESULT_FORMATS if method)
_BINARY_MIMES = ("image/png", "image/jpeg")
#: A result frame nests its data two levels deep ({"data": {mime: data}}).
_RESULT_JSON_DEPTH = protocol.MAX_JSON_DEPTH - 2


def _call_repr(obj, name, *args):
    """Call obj.<name>(*args) if it exists; None if it is missing or raises."""
    if isinstance(obj, type):
        return None
    try:
        method = getattr(obj, name, None)
        if not callable(method):
            return None
        value = method(*args)
    except BaseException as exc:  # a formatter that raises is skipped, never fatal
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        return None
    if isinstance(value, tuple) and len(value) == 2:  # (data, metadata)
        value = value[0]
    return value


def _normalise(mime, value):
    """Make ``value`` JSON-safe for ``mime``; None if it cannot be."""
    if mime in _BINARY_MIMES or (isinstance(value, (bytes, bytearray)) and mime.startswith("image/")):
        if isinstance(value, (bytes, bytearray)):
            return base64.b64encode(bytes(value)).decode("ascii")
        return value if isinstance(value, str) else None
    if mime == "application/json" or mime.endswith("+json"):
        try:
            text = json.dumps(value)
        except (TypeError, ValueError, RecursionError):
            return None
        if protocol.json_depth(text.encode("ascii"), _RESULT_JSON_DEPTH) > _RESULT_JSON_DEPTH:
            return None  # the parent would refuse the frame
        return json.loads(text)
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    return value if isinstance(value, str) else None


def _normalised(bundle):
    """The JSON-safe entries of a MIME bundle (str keys, data that can be made safe)."""
    data = {}
    for mime, value in bundle.items():
        if isinstance(mime, str):
            value = _normalise(mime, value)
            if value is not None:
                data[mime] = value
    return data


def _safe_repr(obj):
    try:
        return repr(obj)
    except BaseException as exc:
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        return "<unrepresentable %s object>" % type(obj).__name__


def _figure_png(figure):
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _is_figure(obj):
    return type(obj).__module__.startswith("matplotlib") and type(obj).__name__ == "Figure"


def mime_bundle(obj):
    """The MIME bundle of ``obj``: its repr plus whatever its _repr_*_ methods give."""
    bundle = _call_repr(obj, "_repr_mimebundle_", None, None)
    data = _normalised(bundle) if isinstance(bundle, dict) else {}
    for mime, method in _REPR_METHODS:
        if mime not in data:
            value = _call_repr(obj, method)
            value = None if value is None else _normalise(mime, value)
            if value is not None:
                data[mime] = value
    if "image/png" not in data and _is_figure(obj):
        try:
            data["image/png"] = _figure_png(obj)
        except Exception:
            pass
    if not isinstance(data.get("text/plain"), str):
        data["text/plain"] = _safe_repr(obj)
    return data


def raw_bundle(data):
    """A bundle given to ``display(..., raw=True)``, made JSON-safe; TypeError
    if it is not a dict of MIME type to data."""
    if not isinstance(data, dict) or not all(isinstance(mime, str) for mime in data):
        raise TypeError("display(raw=True) takes MIME bundles (dicts of MIME type to data), "
                        "not %s" % type(data).__name__)
    bundle = _normalised(data)
    if not isinstance(bundle.get("text/plain"), str):
        bundle["text/plain"] = ""
    return bundle


def _fit_bundle(data):
    """Drop the largest formats until the result frame fits the protocol limit;
    name (the first 20 of) them in ``application/x-interp-dropped``."""
    budget = protocol.MAX_EVENT_FRAME - 64 * 1024  # the rest of the frame, the list of dropped formats
    # what each entry costs in the frame: its key, its value, ':' and ','
    sizes = {mime: len(json.dumps(mime)) + len(json.dumps(value)) + 2 for mime, value in data.items()}
    total = sum(sizes.values())
    dropped = []
    for mime in sorted((mime for mime in sizes if mime != "text/plain"), key=sizes.get, reverse=True):
        if total <= budget:
            break
        total -= sizes[mime]
        del data[mime]
        dropped.append(mime)
    if total > budget and "text/plain" in data:  # text/plain alone is too large
        data["text/plain"] = _clip(data["text/plain"])
    if dropped:
        names = [_clip(mime, 200) for mime in dropped[:20]]
        if len(dropped) > 20:
            names.append("... and %d more" % (len(dropped) - 20))
        data["application/x-interp-dropped"] = names
    return data


# -- matplotlib: a headless backend, and figures become PNG results ---------------------

class _MatplotlibHook:
    """Import hook: select the Agg backend when matplotlib is imported and make
    ``pyplot.show()`` emit open figures as results, without user code asking."""

    def __init__(self, show):
        self.show = show

    def find_spec(self, name, path=None, target=None):
        if name not in ("matplotlib", "matplotlib.pyplot"):
            return None
        import importlib.util

        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        load = spec.loader.exec_module
        show = self.show

        def exec_module(module):
            load(module)
            if name == "matplotlib":
                if not os.environ.get("MPLBACKEND"):
                    module.use("Agg")
            else:
                module.show = show
        spec.loader.exec_module = exec_module
        return spec


def emit_open_figures(emit):
    """Turn every open pyplot figure into a result and close it."""
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is None:
        return
    try:
        numbers = list(pyplot.get_fignums())
    except Exception:
        return
    for number in numbers:
        try:
            figure = pyplot.figure(number)
            emit(figure, False)
            pyplot.close(figure)
        except Exception:
            pass


# -- stdin for a run ------------------------------------------------------------------

def _attach_stdin(text):
    """Make fd 0 (and sys.stdin) read ``text`` then EOF, for this run."""
    data = text.encode("utf-8", "surrogateescape")
    read_end, write_end = os.pipe()
    os.dup2(read_end, 0)
    os.close(read_end)

    def feed():
        try:
            _write_all(write_end, data)
        except OSError:  # nobody read it all: the run ended
            pass
        finally:
            os.close(write_end)

    if len(data) <= 16384:  # fits the pipe buffer: no thread needed
        feed()
    else:
        threading.Thread(target=feed, name="interp-stdin", daemon=True).start()
    sys.stdin = sys.__stdin__ = _text_stream(0, "r")


class _CallbackStdin(io.TextIOBase):
    """sys.stdin for a run with an input callback: each line is asked for."""

    def __init__(self, ask):
        self._ask = ask
        self._eof = False

    def readable(self):
        return True

    def readline(self, size=-1):
        if self._eof:
            return ""
        try:
            line = self._ask("")
        except EOFError:
            self._eof = True
            return ""
        return line if line.endswith("\n") else line + "\n"

    def read(self, size=-1):
        chunks = []
        while True:
            line = self.readline()
            if not line:
                return "".join(chunks)
            chunks.append(line)


# -- completion -----------------------------------------------------------------------

_IDENTIFIER_CHAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*\.?$|$")


def complete(namespace, code, cursor):
    """Names or attributes that complete the dotted name ending at ``cursor``.

    Resolves the prefix with getattr only: nothing is called or evaluated.
    """
    text = code[:cursor]
    match = _IDENTIFIER_CHAIN.search(text)
    token = match.group(0) if match else ""
    if match and match.start() > 0 and text[match.start() - 1] in "0123456789":
        return []
    *parents, stem = token.split(".")
    if not parents:
        names = set(keyword.kwlist) | set(namespace) | set(dir(builtins))
        return sorted(n for n in names if n.startswith(stem) and (stem.startswith("_") or not n.startswith("_")))
    try:
        obj = namespace[parents[0]] if parents[0] in namespace else getattr(builtins, parents[0])
        for part in parents[1:]:
            obj = getattr(obj, part)
        names = set(dir(obj))
    except Exception:
        return []
    base = ".".join(parents)
    return sorted("%s.%s" % (base, n) for n in names
                  if n.startswith(stem) and (stem.startswith("_") or not n.startswith("_")))


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
    fflush = _libc.get("fflush")
    if fflush is not None:
        try:
            fflush(None)
        except BaseException:
            pass


def _restore_environ(saved):
    """Make the environment ``saved`` again: os.environ, and the C library's
    (which subprocesses inherit, and which os.putenv changes behind
    os.environ's back)."""
    for key in list(os.environ):
        if key not in saved:
            del os.environ[key]
    for key, value in saved.items():
        if os.environ.get(key) != value:
            os.environ[key] = value
    clearenv = load_native().get("clearenv")
    if clearenv is not None:
        clearenv()
        for key, value in saved.items():
            os.putenv(key, value)


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
    channel = Channel(rfd, wfd)
    return channel, Relay(channel, pipes)


def _identity(fd):
    try:
        info = os.fstat(fd)
    except OSError:
        return None
    return info.st_dev, info.st_ino


class Plumbing:
    """Fds 0, 1, 2 as set up for user code, and how to put them back.

    User code may close or replace them (``os.close(1)``, ``os.dup2``) or
    break the Python streams over them (``sys.stdout = None``,
    ``sys.stdout.close()``); :meth:`repair`, called before each run, undoes
    that so one bad cell does not silence every later one.
    """

    def __init__(self):
        self.saved = {fd: os.dup(fd) for fd in (0, 1, 2)}  # private, non-inheritable copies
        self.ids = {fd: _identity(fd) for fd in (0, 1, 2)}
        self.reset_stdin()
        sys.stdout = sys.__stdout__ = _text_stream(1, "w")
        sys.stderr = sys.__stderr__ = _text_stream(2, "w")

    def reset_stdin(self):
        """fd 0 reads /dev/null again; sys.stdin is a fresh reader over it."""
        if _identity(0) != self.ids[0]:
            os.dup2(self.saved[0], 0)
        sys.stdin = sys.__stdin__ = _text_stream(0, "r")

    def repair(self):
        for fd in (1, 2):
            if _identity(fd) != self.ids[fd]:
                os.dup2(self.saved[fd], fd)
        if _identity(0) != self.ids[0] or _broken(sys.stdin):
            self.reset_stdin()
        if _broken(sys.stdout):
            sys.stdout = sys.__stdout__ = _text_stream(1, "w")
        if _broken(sys.stderr):
            sys.stderr = sys.__stderr__ = _text_stream(2, "w")


def _broken(stream):
    """True unless ``stream`` looks like an open stream; never raises, whatever
    object user code put in sys.std*."""
    try:
        return stream is None or getattr(stream, "closed", True) is True
    except BaseException:
        return True


class Worker:
    """The worker's main loop: one command at a time from the channel."""

    def __init__(self, capture=None):
        self.channel, self.relay = setup_descriptors(capture)
        self.plumbing = Plumbing()
        namespace = types.ModuleType("__main__")
        namespace.__builtins__ = builtins
        sys.modules["__main__"] = namespace
        sys.argv = [""]
        self.interp = Interpreter(namespace.__dict__)
        self.namespace = namespace.__dict__
        self.running = False
        self.stray_sigint = False
        self._asked = 0  # input requests sent so far; a reply names the one it answers
        self._builtin_input = builtins.input
        builtins.display = self.display
        sys.displayhook = self._displayhook
        def show(*args, **kwargs):
            """pyplot.show() in interp: every open figure becomes a PNG result."""
            emit_open_figures(self.emit)

        sys.meta_path.insert(0, _MatplotlibHook(show))
        signal.signal(signal.SIGINT, self._on_sigint)
        self.interp.signals.install()
        self.pid = os.getpid()
        os.register_at_fork(after_in_child=self._after_fork)

    def _on_sigint(self, signum, frame):
        # Only user code is interruptible: a KeyboardInterrupt inside the
        # engine could cut a frame in half. One that comes while a run is
        # being set up is raised as soon as the user code starts. One that
        # comes while idle may be late (for the run that ended) or early
        # (for the run whose command is on its way): the parent decides,
        # told by a 'started' frame.
        if self.interp.in_user_code:
            raise KeyboardInterrupt
        if self.running:
            self.interp.interrupt_pending = True
        else:
            self.stray_sigint = True

    def _after_fork(self):
        """In a process forked by user code: it must never speak the protocol
        (nor keep the channel open, which would hide the worker's death)."""
        if os.getpid() == self.pid:
            return
        for fd in (self.channel.rfd, self.channel.wfd, *self.relay.pipes):
            try:
                os.close(fd)
            except OSError:
                pass

    def serve(self):
        self.relay.start()
        self.channel.send({"t": "ready", "pid": os.getpid()})
        try:
            while True:
                command = self.channel.recv()
                kind = command.get("t")
                if kind == "run":
                    self.channel.send(self.run(command))
                elif kind == "setup":
                    self.setup(command)
                elif kind == "complete":
                    self.channel.send({"t": "completions", "re": command.get("id"),
                                       "matches": self.complete(command)})
        except (EOFError, OSError):  # the channel broke: the parent is gone
            pass
        _orphaned()

    def complete(self, command):
        """Completions for a ``complete`` command. Attribute lookups can run
        user code (properties, __dir__), so this is interruptible like a run;
        an interrupted or failing completion offers nothing."""
        self.interp.interrupt_pending = False
        self.running = True
        try:
            self.interp.in_user_code = True
            matches = complete(self.namespace, command["code"], command["cursor"])
            self.interp.in_user_code = False
            return matches
        except BaseException:
            self.interp.in_user_code = False
            return []
        finally:
            self.running = False

    def setup(self, command):
        """Make a worker forked ahead of need (by the zygote) the worker of
        one context: its cwd, its environment, its limits. A worker that
        cannot take them must not run code anywhere else: it ends."""
        try:
            os.chdir(command["cwd"])
            os.environ.clear()
            os.environ.update(command["env"])
            if hasattr(time, "tzset"):
                time.tzset()  # TZ may differ from the zygote's
            _apply_options(command.get("options"))
        except Exception as exc:
            self.channel.send({"t": "fatal", "message": "the context could not be set up: %s" % (exc,)})
            _orphaned()

    def run(self, command):
        """Execute one ``run`` command; return its ``done`` frame."""
        envs = command.get("envs")
        saved = dict(os.environ) if envs is not None else None
        stdin = command.get("stdin")
        self.interp.interrupt_pending = False
        self.interp.signals.forget(signal.SIGINT)  # interrupts are for the run they came in
        self.running = True
        if self.stray_sigint:  # was it for this run? the parent knows
            self.stray_sigint = False
            self.channel.send({"t": "started", "re": command.get("id")})
        error = None
        if not self.relay.intact():  # user code closed or replaced the read end of a capture pipe
            self.channel.send({"t": "fatal", "message": "user code broke the worker's output capture"})
            _orphaned()
        try:
            self.plumbing.repair()  # e.g. exit() closed sys.stdin; os.close(1)
            if envs:
                os.environ.update(envs)
            if stdin is not None:
                _attach_stdin(stdin)
            if command.get("input"):
                builtins.input = self._input
                sys.stdin = _CallbackStdin(self._ask)
            error = self.interp.execute(command["code"], command.get("filename"))
            if os.getpid() != self.pid:  # a fork made by the cell reached its end
                _flush_everything()
                os._exit(1 if error else 0)
            self.interp.in_user_code = True  # figures may run user callbacks
            try:
                emit_open_figures(self.emit)
            except BaseException:
                pass
            self.interp.in_user_code = False
        except Exception as exc:  # the run could not be set up (e.g. an unencodable env value)
            error = {"name": type(exc).__name__, "value": _clip(_describe(exc)),
                     "traceback": "%s: %s\n" % (type(exc).__name__, _clip(_describe(exc)))}
        finally:
            self.running = False
            builtins.input = self._builtin_input
            if stdin is not None or type(sys.stdin) is _CallbackStdin:
                self.plumbing.reset_stdin()
            if saved is not None:
                _restore_environ(saved)
        _flush_everything()
        self.relay.drain()
        return {"t": "done", "re": command.get("id"), "error": error, "count": self.interp.count}

    # -- results --------------------------------------------------------------

    def emit(self, obj, main, bundle=None):
        """Send ``obj`` (or a ready ``bundle``) as a result frame, after the
        output written before it."""
        bundle = _fit_bundle(mime_bundle(obj) if bundle is None else bundle)
        _flush_everything()
        self.send_from_user_code({"t": "result", "data": bundle, "main": main}, drain=True)

    def send_from_user_code(self, message, drain=False):
        """Send a frame while user code runs (display, input). A signal that
        comes meanwhile must not cut the frame in half: it is held, and
        handled once the frame is out."""
        interp = self.interp
        was_user = interp.in_user_code
        interp.in_user_code = False
        try:
            if drain:
                self.relay.drain()
            self.channel.send(message)
        finally:
            if was_user:
                interp.enter_user_code()

    def display(self, *objs, raw=False, include=None, exclude=None, **ignored):
        """Show each object as a rich result of the current run, like
        IPython's ``display``: ``raw=True`` takes each object as a ready MIME
        bundle (a dict of MIME type to data); ``include`` / ``exclude`` keep or
        drop MIME types, text/plain too (an object left with no format is not
        shown). IPython's other keywords (``metadata``, ``display_id``, ...)
        are accepted and ignored."""
        bundles = [raw_bundle(obj) if raw else None for obj in objs]  # check all first
        for obj, bundle in zip(objs, bundles):
            bundle = mime_bundle(obj) if bundle is None else bundle
            for mime in list(bundle):
                if (include is not None and mime not in include) or (exclude is not None and mime in exclude):
                    del bundle[mime]
            if bundle:
                self.emit(obj, False, bundle)

    def _displayhook(self, value):
        if value is None:
            return
        builtins._ = None  # like sys.__displayhook__: do not keep the old value alive
        self.emit(value, True)
        builtins._ = value


    # -- input ----------------------------------------------------------------

    def _ask(self, prompt):
        """Ask the parent's on_input callback for a line; EOFError for EOF."""
        if not self.running or threading.current_thread() is not threading.main_thread():
            raise EOFError("EOF when reading a line (input is only served to the running cell)")
        _flush_everything()
        self._asked += 1
        number = self._asked
        self.send_from_user_code({"t": "input", "prompt": prompt, "n": number}, drain=True)
        while True:
            reply = self._next_message()
            if reply.get("t") == "input_reply" and reply.get("n") == number:
                break  # replies to requests given up on (interrupted) are dropped
        if reply.get("eof"):
            raise EOFError("EOF when reading a line")
        value = reply.get("value", "")
        return value[:-1] if value.endswith("\n") else value

    def _input(self, prompt=""):
        return self._ask(str(prompt))

    def _next_message(self):
        """The next message from the parent, for user code waiting on it: the
        wait can be interrupted (KeyboardInterrupt), reading the frame cannot."""
        interp = self.interp
        if not self.channel.has_message():
            select.select((self.channel.rfd,), (), ())
        interp.in_user_code = False
        try:
            return self.channel.recv()
        finally:
            interp.enter_user_code()


def main(capture=None, options=None):
    """Entry point of a worker process (its stdin/stdout are the channel).

    ``capture``: optional capture pipes made by the launcher, see
    :func:`setup_descriptors`. ``options`` (a dict, or its JSON):
    ``memory_limit``, the address-space limit in bytes.
    """
    if isinstance(options, str):
        options = json.loads(options)
    _apply_options(options)
    _become_subreaper()
    Worker(capture or None).serve()


def _apply_options(options):
    limit = (options or {}).get("memory_limit")
    if limit:
        import resource

        in_use = _address_space()
        if in_use and limit < in_use + (64 << 20):
            raise MemoryError("memory_limit=%d leaves no room: the worker already maps %d bytes "
                              "of address space; allow at least %d more" % (limit, in_use, 64 << 20))
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _address_space():
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0
