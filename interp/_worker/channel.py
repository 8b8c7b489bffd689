"""The framed byte channel to the parent, and the relay thread that forwards
the capture pipes of fds 1 and 2 to it as output frames."""

from __future__ import annotations

import fcntl
import os
import select
import struct
import sys
import termios
import threading
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from . import protocol
from .proctree import orphaned
from .signals import start_thread

#: Largest output frame, and the most a relay moves from one pipe at a time.
CHUNK = 65536

_splice: Optional[Callable[..., int]] = getattr(os, "splice", None) if sys.platform.startswith("linux") else None


_write = os.write  # as the engine found it (user code's flushes its output first, see flushing.py)


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = _write(fd, view)
        view = view[written:]


def waiting(fd: int) -> int:
    """Bytes waiting in a pipe (FIONREAD), or -1 if ``fd`` is not a pipe of ours any more."""
    try:
        return int(struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0])
    except (OSError, struct.error):
        return -1


def identity(fd: int) -> Optional[Tuple[int, int]]:
    """What ``fd`` refers to (device, inode), or None if it is closed."""
    try:
        info = os.fstat(fd)
    except OSError:
        return None
    return info.st_dev, info.st_ino


class Channel:
    """The framed byte channel to the parent. ``send`` is thread-safe."""

    def __init__(self, rfd: int, wfd: int) -> None:
        self.rfd = rfd
        self.wfd = wfd
        self.lock = threading.Lock()
        self._decoder = protocol.FrameDecoder(max_frame=0xFFFFFFFF)  # the parent is trusted
        self._inbox: List[Dict[str, Any]] = []

    def send(self, message: Mapping[str, Any]) -> None:
        with self.lock:
            write_all(self.wfd, protocol.encode(message))

    def has_message(self) -> bool:
        """True if a whole message is already decoded, waiting for recv()."""
        return bool(self._inbox)

    def unread(self, message: Dict[str, Any]) -> None:
        """Put ``message`` back: the next recv() returns it."""
        self._inbox.insert(0, message)

    def recv(self) -> Dict[str, Any]:
        """Block for the next command; raise EOFError when the parent is gone."""
        while not self._inbox:
            data = os.read(self.rfd, CHUNK)  # small: a large read buffer is mapped and unmapped each time
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

    def __init__(self, channel: Channel, pipes: Mapping[int, str]) -> None:
        self.channel = channel
        self.pipes = dict(pipes)  # read fd -> stream name
        self.ids = {fd: identity(fd) for fd in self.pipes}
        self.broken = False
        for fd in self.pipes:
            os.set_blocking(fd, False)

    def intact(self) -> bool:
        """False once user code closed, replaced or stole from a capture pipe's read end."""
        self.broken = self.broken or any(identity(fd) != self.ids[fd] for fd in self.pipes)
        return not self.broken

    def start(self) -> None:
        # A bare thread: threading.Thread.start would wait for it to be
        # scheduled, which costs a fresh worker a millisecond under load.
        start_thread(self.run)

    def run(self) -> None:
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
                        orphaned()
                    with self.channel.lock:
                        moved = self._pump(fd, CHUNK)
                    # Nothing to read though poll says so: no writer is left
                    # (POLLHUP), or user code closed or replaced the fd.
                    if not moved and (not events & select.POLLIN or not self.intact()):
                        poller.unregister(fd)
        except BaseException:  # the channel broke (the parent is gone), or a bug:
            orphaned()  # never live on without a relay; the parent salvages the output

    def _pump(self, fd: int, limit: int) -> int:
        """Forward up to ``limit`` bytes of what one pipe holds now, in frames
        of at most CHUNK bytes; return how many. Call with the lock held."""
        size = min(waiting(fd), limit)
        if size < 0:  # user code closed or replaced our read end
            self.broken = True
            return 0
        for start in range(0, size, CHUNK):
            self._forward(fd, min(CHUNK, size - start))
        return size

    def _forward(self, fd: int, size: int) -> None:
        """Send one output frame of ``size`` bytes that the pipe ``fd`` holds."""
        stream, wfd = self.pipes[fd], self.channel.wfd
        if _splice is None:
            try:
                data = os.read(fd, size)
            except OSError:
                data = b""
            self.broken |= len(data) < size
            write_all(wfd, protocol.output_frame(stream, data))
            return
        write_all(wfd, protocol.output_header(stream, size))
        while size:
            moved: Optional[int]
            try:
                moved = _splice(fd, wfd, size)
            except BlockingIOError:  # the channel is full, or the pipe empty
                moved = 0
            except OSError:  # our read end was closed or replaced
                moved = None
            if moved == 0 and waiting(fd) > 0:
                select.select((), (wfd,), ())  # the channel is full: wait for the parent
                continue
            if not moved:
                # User code took the bytes this frame promised: complete it
                # and report the capture broken at the next run.
                self.broken = True
                write_all(wfd, b"?" * size)
                return
            size -= moved

    def drain(self) -> None:
        """Send everything the pipes hold now (call with all writers flushed).

        Only what is there now: a writer that never stops (a ``yes``
        subprocess) must not keep the run from ending.
        """
        with self.channel.lock:
            for fd in self.pipes:
                self._pump(fd, sys.maxsize)
