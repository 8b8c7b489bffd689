"""When the buffered sys.stdout and sys.stderr of user code are flushed.

The worker's Python streams over the capture pipes buffer, as python's own do
over a pipe: a line costs a copy, not a system call. The promise that each
pipe holds bytes in the order they were written, whoever wrote them, stays
true because the buffers are flushed before anything else can write to fds 1
and 2:

- ``os.write`` / ``os.writev`` to fd 1 or 2, ``os.system``, ``os.exec*``,
  ``os.posix_spawn[p]``, a subprocess (``fork_exec``, which ``subprocess``
  and ``multiprocessing`` use), ``os.fork`` / ``os.forkpty`` (an at-fork
  hook), and the ways code ends itself (``os._exit``, ``os.abort``,
  ``os.kill``, ``os.killpg``, ``signal.raise_signal``,
  ``signal.pthread_kill``): wrapped here to flush first;
- ``sys.stdout.flush()``, which C extensions call before writing to fd 1;
- a result frame, an input request and the end of a run (the worker calls
  ``flush_everything``);
- and, so that a line is never held long, every :data:`FLUSH_INTERVAL` by
  the :class:`Ticker` thread while a run is going (and for :data:`LINGER`
  after it if threads of the code are still running: they may print).

What is lost: a crash inside C code (a segfault) or a SIGKILL from outside
loses the Python-level output of the last FLUSH_INTERVAL that the code did
not flush itself (python writing to a pipe loses up to 8 KiB).

The engine's own modules keep the unwrapped functions (see ``_exit`` in
:mod:`.proctree`): a flush must never block the worker's way out.
"""

from __future__ import annotations

import functools
import math
import os
import signal
import threading
import time
from typing import Any, Callable, Optional, Set

from .signals import InterruptWatch, foreign_threads, start_thread, wake_signal

#: Longest time a line written by Python code waits in the buffers during a run.
FLUSH_INTERVAL = 0.005
#: How long the ticker goes on after a run ends while threads the code started
#: still run (their output). Without such threads it stops at its next tick:
#: 1,000 contexts each ticking for a second after its first run kept both
#: cores of a small machine busy.
LINGER = 1.0

_STD_FDS = (1, 2)
_pthread_kill = signal.pthread_kill  # the engine's: user code's is wrapped below


def install(flush: Callable[[], None]) -> None:
    """Make every other way to write to fds 1 and 2 call ``flush`` first."""
    import _posixsubprocess
    import subprocess

    def before(original: Callable[..., Any], fd_check: bool = False) -> Callable[..., Any]:
        if fd_check:
            @functools.wraps(original)
            def wrapper(fd: Any, *args: Any) -> Any:
                if fd in _STD_FDS:
                    flush()
                return original(fd, *args)
        else:
            @functools.wraps(original)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                flush()
                return original(*args, **kwargs)
        return wrapper

    for name in ("write", "writev"):
        if hasattr(os, name):
            setattr(os, name, before(getattr(os, name), fd_check=True))
    for name in ("system", "execv", "execve", "posix_spawn", "posix_spawnp", "_exit", "abort", "kill", "killpg"):
        if hasattr(os, name):
            setattr(os, name, before(getattr(os, name)))
    for name in ("raise_signal", "pthread_kill"):
        if hasattr(signal, name):
            setattr(signal, name, before(getattr(signal, name)))
    fork_exec = before(_posixsubprocess.fork_exec)
    _posixsubprocess.fork_exec = fork_exec  # multiprocessing, and subprocess on Python < 3.11
    if hasattr(subprocess, "_fork_exec"):
        subprocess._fork_exec = fork_exec


def flush_before_fork(flush: Callable[[], None]) -> None:
    """Make os.fork / os.forkpty call ``flush`` first (in the process that
    runs the code: a zygote that built a worker forks without it)."""
    os.register_at_fork(before=flush)


class Ticker:
    """A thread that calls ``flush`` every ``interval`` seconds while the
    worker is busy (from :meth:`busy` to :meth:`idle`, and ``linger`` seconds
    after), and sleeps without waking otherwise (idle contexts cost nothing).
    Back-to-back runs never wake it: it is still ticking."""

    def __init__(self, flush: Callable[[], None], interval: float = FLUSH_INTERVAL,
                 linger: float = LINGER) -> None:
        self._flush = flush
        self._interval = interval
        self._linger = linger
        self._until = 0.0  # tick while time.monotonic() <= this
        self._wake = threading.Event()
        self._resend: Set[int] = set()
        # Held while the thread flushes, and across a fork: a child forked
        # while this thread held a stream's lock would find it held for ever.
        self._flushing = threading.Lock()
        #: Asked at each tick whether to wake the main thread (a SIGINT's handler waits).
        self.watch: Optional[InterruptWatch] = None

    def start(self) -> None:
        """Start the thread (in the process that will run the code: a zygote
        builds a worker's ticker before it forks, and threads do not survive a fork)."""
        os.register_at_fork(before=self._flushing.acquire, after_in_parent=self._flushing.release,
                            after_in_child=self._flushing.release)
        start_thread(self._loop)

    def resend(self, signum: int) -> None:
        """Send ``signum`` to the main thread again at the next tick (it came
        at a moment its handler could not raise; see stdio.in_write)."""
        self._resend.add(signum)
        if not self._wake.is_set():
            self._wake.set()

    def _watch(self) -> None:
        """Wake the main thread if a SIGINT's handler waits (see InterruptWatch)."""
        try:
            if self.watch is not None and self.watch.lost():
                _pthread_kill(threading.main_thread().ident or 0, wake_signal())
        except Exception:  # never let it end the thread that flushes the code's output
            self.watch = None

    def busy(self) -> None:
        """A run starts: tick until it ends."""
        self._until = math.inf
        if not self._wake.is_set():
            self._wake.set()

    def idle(self) -> None:
        """The run ended: tick once more (``linger`` seconds more while
        threads of the code run), then sleep."""
        self._until = time.monotonic() + (self._linger if foreign_threads() else 0.0)

    def _loop(self) -> None:
        while True:
            self._wake.wait()
            time.sleep(self._interval)
            with self._flushing:
                self._flush()
            self._watch()
            while self._resend:
                # a real signal (not _thread.interrupt_main): it must wake a blocking call
                _pthread_kill(threading.main_thread().ident or 0, self._resend.pop())
            if time.monotonic() > self._until:
                self._wake.clear()
                if time.monotonic() <= self._until:  # busy() came in between
                    self._wake.set()
