"""Signal handlers that user code installs run only while user code runs."""

from __future__ import annotations

import _thread
import os
import signal
import time
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


class InterruptWatch:
    """Finds a SIGINT whose handler the main thread did not run, and says
    when to send it again.

    CPython runs a signal's Python handler in the main thread between two
    bytecodes. A signal that comes after the last such check and before the
    main thread enters a blocking call (``time.sleep(30)``, a read), or that
    the kernel gives a thread of the code, wakes nothing: the handler waits
    for that call to return, and the interrupt seems lost. The C handler
    also writes the signal's number to the wakeup fd, though. The ticker
    reads it while a run goes on (:meth:`lost`); a SIGINT whose handler has
    not run by the next tick is sent to the main thread again, which that
    wakes (its handler runs once: the two deliveries are one to Python).

    A handler ran after the signal it answers, so one that has not run since
    the read before the one that found the signal has not run for it. Only
    one SIGINT is sent again until the handler runs: whatever a handler the
    engine does not see does, the code gets at most one SIGINT more.
    """

    def __init__(self) -> None:
        self.rfd = self._wfd = -1
        self._pipe: Optional[Tuple[int, int]] = None  # (st_dev, st_ino) of the pipe, both ends
        self.tampered = False  # the code closed or replaced an end (see lost)
        self.handled_at = 0.0  # when the SIGINT handler last ran (time.monotonic())
        self._read_at = 0.0  # when the last read of the wakeup pipe began
        self._since: Optional[float] = None  # a SIGINT came after this time (found by the last read)
        self._resent_at = 0.0  # when lost() last said to send one again

    def arm(self) -> None:
        """Become this process's wakeup fd (in its main thread)."""
        self.rfd, self._wfd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._pipe = _pipe_of(self.rfd)
        signal.set_wakeup_fd(self._wfd, warn_on_full_buffer=False)

    def disarm(self, close: bool = True) -> None:
        """Stop (in the main thread): in a process the code forked, whose
        signals are not the worker's; or, without ``close``, once the code
        closed or replaced an end of the pipe (its number may be the code's
        own file now: no signal must write to it)."""
        if self._wfd < 0:
            return
        try:
            previous = signal.set_wakeup_fd(-1)
            if previous not in (-1, self._wfd):  # the code's own wakeup fd: leave it
                signal.set_wakeup_fd(previous)
        except (ValueError, OSError):  # not the main thread, or the code's fd is gone
            pass
        if close:
            for fd in (self.rfd, self._wfd):
                os.close(fd)
        self.rfd = self._wfd = -1

    def check(self) -> None:
        """Before a run (in the main thread): stop if the ticker found the
        pipe tampered with."""
        if self.tampered:
            self.tampered = False
            self.disarm(close=False)

    def handled(self) -> None:
        """The SIGINT handler runs (call first thing in it)."""
        self.handled_at = time.monotonic()

    def lost(self) -> bool:
        """Read what signals came since the last call (in the ticker's thread);
        True if a SIGINT found by the last call has still not been handled."""
        rfd = self.rfd
        if rfd < 0 or self.tampered:
            return False
        if _pipe_of(rfd) != self._pipe or _pipe_of(self._wfd) != self._pipe:
            self.tampered = True  # never read what may be the code's own descriptor
            return False
        since, self._since = self._since, None
        lost = since is not None and self.handled_at <= since and self.handled_at >= self._resent_at
        began = time.monotonic()
        came = False
        while True:
            try:
                data = os.read(rfd, 512)
            except OSError:  # empty (BlockingIOError)
                break
            if not data:
                break
            came = came or _SIGINT_BYTE in data
        if came:
            self._since = self._read_at
        self._read_at = began
        if lost:
            self._resent_at = began
        return lost


def _pipe_of(fd: int) -> Optional[Tuple[int, int]]:
    try:
        info = os.fstat(fd)
    except OSError:
        return None
    return info.st_dev, info.st_ino


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
        #: Told when a handler of the code's runs for SIGINT (see InterruptWatch).
        self.watch: Optional[InterruptWatch] = None
        self._signal = signal.signal
        self._getsignal = signal.getsignal

    def install(self) -> None:
        """Route user code's ``signal.signal`` / ``signal.getsignal`` through this gate."""
        signal.signal = self.signal
        signal.getsignal = self.getsignal

    def signal(self, signalnum: int, handler: Any) -> Any:
        """signal.signal, whose handler runs only while user code runs."""
        if callable(handler):
            handler = _GatedHandler(self, handler)
        return _ungated(self._signal(signalnum, handler))

    def getsignal(self, signalnum: int) -> Any:
        """signal.getsignal: the handler as user code gave it."""
        return _ungated(self._getsignal(signalnum))

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
