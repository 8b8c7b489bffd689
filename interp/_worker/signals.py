"""Signal handlers that user code installs run only while user code runs."""

from __future__ import annotations

import _thread
import fcntl
import os
import signal
from types import FrameType
from typing import Any, Callable, Dict, List, Optional, Tuple

Handler = Callable[[int, Optional[FrameType]], Any]

#: Signals a thread of the engine must never take: with them blocked there,
#: the kernel delivers them to the main thread, which they wake up (a SIGINT
#: taken by another thread would wait for a sleeping main thread to wake).
_SYNCHRONOUS = {signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE, signal.SIGILL, signal.SIGTRAP,
                signal.SIGSYS, signal.SIGKILL, signal.SIGSTOP}
ASYNCHRONOUS = signal.valid_signals() - _SYNCHRONOUS
#: Stack of the engine's threads: they only relay bytes and flush streams, and a memory limit
#: (RLIMIT_AS) counts every thread's stack whether it is used or not.
ENGINE_STACK = 512 * 1024


_engine_threads = [0]  # threads start_thread started that have not ended
_engine_threads_lock = _thread.allocate_lock()


def start_thread(target: Callable[[], Any]) -> None:
    """Start a bare thread of the engine that takes no asynchronous signal
    (it inherits the mask in force while it is created)."""
    def run() -> None:
        try:
            target()
        finally:
            with _engine_threads_lock:
                _engine_threads[0] -= 1

    previous = signal.pthread_sigmask(signal.SIG_BLOCK, ASYNCHRONOUS)
    stack = _thread.stack_size(ENGINE_STACK)  # not the 8 MiB of address space a thread gets by default
    try:
        with _engine_threads_lock:
            _engine_threads[0] += 1
        try:
            _thread.start_new_thread(run, ())
        except BaseException:
            with _engine_threads_lock:
                _engine_threads[0] -= 1
            raise
    finally:
        _thread.stack_size(stack)
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def foreign_threads() -> int:
    """How many Python threads run besides the main thread and the engine's
    own (user code's, a library's): only they can print while no run is
    going. (A thread counts until it has ended, a moment after its target.)"""
    return max(0, _thread._count() - _engine_threads[0])


#: What the engine wakes the main thread with (see InterruptWatch): a signal
#: programs leave alone (its default is to be ignored), whose handler does nothing.
WAKE = signal.SIGURG


def wake_handler(signum: int, frame: Optional[FrameType]) -> None:
    """WAKE's handler: nothing (it only makes a blocking call return)."""


def wake_signal() -> int:
    """The signal to wake the main thread with: WAKE, unless the code took
    it (a handler of its own) or holds it off there; then SIGINT itself,
    which then may come twice."""
    if _getsignal(WAKE) is not wake_handler:
        return signal.SIGINT
    main = os.getpid()  # the main thread's id (its thread id in a fork is stale in threading)
    try:
        with open("/proc/%d/task/%d/status" % (main, main), "rb") as status:
            for line in status:
                if line.startswith(b"SigBlk:"):
                    return signal.SIGINT if int(line.split()[1], 16) >> (WAKE - 1) & 1 else WAKE
    except (OSError, ValueError, IndexError):
        pass
    return WAKE
# The engine's own, bound before user code can replace (or mock) them.
_read, _fstat, _fcntl, _close = os.read, os.fstat, fcntl.fcntl, os.close
_set_wakeup_fd, _getsignal = signal.set_wakeup_fd, signal.getsignal


class InterruptWatch:
    """Finds a SIGINT whose handler the main thread did not run, and says
    when to wake the main thread so that it runs it.

    CPython runs a signal's Python handler in the main thread between two
    bytecodes. A signal that comes after the last such check and before the
    main thread enters a blocking call (``time.sleep(30)``, a read), or that
    the kernel gives a thread of the code, wakes nothing: the handler waits
    for that call to return, and the interrupt seems lost. The C handler
    also writes the signal's number to the wakeup fd, though. The ticker
    reads it while a run goes on (:meth:`lost`); when a SIGINT's handler has
    not run by the next tick, it sends the main thread :data:`WAKE`, whose
    handler does nothing: the blocking call fails with EINTR, and CPython
    runs the SIGINT handler that was waiting. SIGINT itself is never sent
    again, so a wake that comes late, or one for a SIGINT that was not the
    worker's (a process the code forked without Python's fork hooks), raises
    nothing. One wake until the handler runs.

    The code's own ``signal.set_wakeup_fd`` takes the pipe's place while it
    is set (see :class:`SignalGate`); the watch rests meanwhile.
    """

    def __init__(self) -> None:
        self.rfd = self._wfd = -1
        self._ends: Tuple[Any, Any] = (None, None)  # what the two descriptors are (see _end)
        self.tampered = False  # the code closed or replaced an end (see lost)
        self.runs = 0  # SIGINT handler runs so far (counts, not times: the code may mock the clock)
        self._before = 0  # `runs` before the last read of the pipe
        self._pending: Optional[int] = None  # `runs` before a SIGINT that the last read found
        self._woken = -1  # `runs` when lost() last said to wake

    def arm(self) -> None:
        """Become this process's wakeup fd (in its main thread)."""
        self.rfd, self._wfd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._ends = (_end(self.rfd), _end(self._wfd))
        self.rearm()

    def rearm(self) -> None:
        """Be the wakeup fd again (the code gave its own up)."""
        if self._wfd >= 0:
            _set_wakeup_fd(self._wfd, warn_on_full_buffer=False)

    def disarm(self, close: bool = True) -> None:
        """Stop (in the main thread): in a process the code forked, whose
        signals are not the worker's; or, without ``close``, once the code
        closed or replaced an end of the pipe (its number may be the code's
        own file now: no signal must write to it)."""
        if self._wfd < 0:
            return
        try:
            previous = _set_wakeup_fd(-1)
            if previous not in (-1, self._wfd):  # the code's own wakeup fd: leave it
                _set_wakeup_fd(previous)
        except (ValueError, OSError):  # not the main thread, or the code's fd is gone
            pass
        if close:
            for fd in (self.rfd, self._wfd):
                _close(fd)
        self.rfd = self._wfd = -1

    def handled(self) -> None:
        """The SIGINT handler runs (call first thing in it)."""
        self.runs += 1

    def check(self) -> None:
        """Before a run (in the main thread): stop if the ticker found the
        pipe tampered with."""
        if self.tampered:
            self.tampered = False
            self.disarm(close=False)

    def lost(self) -> bool:
        """Read what signals came since the last call (in the ticker's
        thread); True if a SIGINT found by the last call has still not been
        handled (a false alarm only costs a wake that does nothing)."""
        rfd = self.rfd
        if rfd < 0 or self.tampered:
            return False
        if (_end(rfd), _end(self._wfd)) != self._ends:
            self.tampered = True  # never read what may be the code's own descriptor
            return False
        before = self.runs
        pending, self._pending = self._pending, None
        lost = pending is not None and before == pending and before != self._woken
        came = False
        while True:
            try:
                data = _read(rfd, 512)
            except OSError:  # empty (BlockingIOError)
                break
            if not data:
                break
            came = came or _SIGINT_BYTE in data
        if came:  # it came after the last read began: its handler runs after `_before` was read
            self._pending = self._before
        self._before = before
        if lost:
            self._woken = before
        return lost


def _end(fd: int) -> Optional[Tuple[int, int, int]]:
    """What ``fd`` is: its file (a pipe's two ends share one) and access mode."""
    try:
        info = _fstat(fd)
        return info.st_dev, info.st_ino, _fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE
    except OSError:
        return None


_SIGINT_BYTE = bytes([signal.SIGINT])


class SignalGate:
    """Routes user code's ``signal.signal`` so that its handlers run only
    while user code runs.

    A handler that raised while the worker's own code ran (writing a frame,
    waiting for the next command) would cut a frame in half or end the
    worker. So a signal that comes at such a moment is held, and its handler
    runs as soon as user code runs again (when ``display()`` returns, or as
    the next run starts), where an exception it raises is the user code's.
    ``signal.getsignal`` still returns the handler the user gave.
    """

    def __init__(self, is_open: Callable[[], bool]) -> None:
        self.is_open = is_open
        # signum -> (handler, frame): like the kernel, a signal that comes
        # again while held is held once. Only replaced or changed by single
        # operations, so a handler that comes in between loses nothing.
        self.held: Dict[int, Tuple[Handler, Optional[FrameType]]] = {}
        #: Called with a signal number just held (the worker may arrange to send it again soon).
        self.on_hold: Optional[Callable[[int], None]] = None
        #: Told when a handler of the code's runs for SIGINT, and when the
        #: code gives its own wakeup fd up (see InterruptWatch).
        self.watch: Optional[InterruptWatch] = None
        self.wakeup_fd = -1  # the code's, as it set it with signal.set_wakeup_fd
        self.wake_setting: Any = signal.SIG_DFL  # WAKE's handler as the code set it, while the engine's runs
        self._signal = signal.signal
        self._getsignal = signal.getsignal

    def install(self) -> None:
        """Route user code's ``signal.signal`` / ``signal.getsignal`` through this gate."""
        signal.signal = self.signal
        signal.getsignal = self.getsignal
        signal.set_wakeup_fd = self.set_wakeup_fd

    def signal(self, signalnum: int, handler: Any) -> Any:
        """signal.signal, whose handler runs only while user code runs.
        WAKE set to SIG_DFL or SIG_IGN (both ignore it) keeps the engine's
        handler, which does nothing either; getsignal says what the code set."""
        if signalnum == WAKE and handler in (signal.SIG_DFL, signal.SIG_IGN):
            if self._getsignal(WAKE) is wake_handler:
                previous, self.wake_setting = self.wake_setting, handler
                return previous
            previous = self._signal(WAKE, wake_handler)
            self.wake_setting = handler
            return _ungated(previous)
        if callable(handler):
            handler = _GatedHandler(self, handler)
        previous = self._signal(signalnum, handler)
        return self.wake_setting if previous is wake_handler else _ungated(previous)

    def getsignal(self, signalnum: int) -> Any:
        """signal.getsignal: the handler as user code gave it."""
        handler = self._getsignal(signalnum)
        return self.wake_setting if handler is wake_handler else _ungated(handler)

    def set_wakeup_fd(self, fd: int, *, warn_on_full_buffer: bool = True) -> int:
        """signal.set_wakeup_fd for the code: its fd takes the worker's place
        while it is set, and -1 gives the worker's back. It returns the
        code's previous fd, -1 at first, as if the worker had none (asyncio
        and trio set theirs and put back what they found)."""
        _set_wakeup_fd(fd, warn_on_full_buffer=warn_on_full_buffer)  # its checks and errors
        previous, self.wakeup_fd = self.wakeup_fd, fd
        if fd == -1 and self.watch is not None:
            self.watch.rearm()
        return previous

    def release(self) -> None:
        """Run the handlers of signals held meanwhile (call in user code)."""
        while self.held:
            held, self.held = self.held, {}
            items: List[Tuple[int, Tuple[Handler, Optional[FrameType]]]] = list(held.items())
            for index, (signum, (handler, frame)) in enumerate(items):
                try:
                    handler(signum, frame)
                except BaseException:
                    for later, pending in items[index + 1:]:  # still held, for next time
                        self.held.setdefault(later, pending)
                    raise

    def forget(self, signum: int) -> None:
        """Drop a held ``signum`` signal (an interrupt meant for a run that ended)."""
        self.held.pop(signum, None)


class _GatedHandler:
    __slots__ = ("gate", "handler")

    def __init__(self, gate: SignalGate, handler: Handler) -> None:
        self.gate = gate
        self.handler = handler

    def __call__(self, signum: int, frame: Optional[FrameType]) -> Any:
        if signum == signal.SIGINT and self.gate.watch is not None:
            self.gate.watch.handled()
        if self.gate.is_open():
            return self.handler(signum, frame)
        self.gate.held[signum] = (self.handler, frame)
        if self.gate.on_hold is not None:
            self.gate.on_hold(signum)
        return None


def _ungated(handler: Any) -> Any:
    return handler.handler if isinstance(handler, _GatedHandler) else handler
