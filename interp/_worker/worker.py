"""The worker's main loop, and ``main()``, the entry point of a worker process.

It speaks the framed protocol of ``interp/protocol.py`` over the stdin and
stdout it was started with, so it can run behind any command that gives a
byte stream. At start-up it moves that channel to private descriptors and
rebuilds the standard descriptors for user code (see :mod:`.stdio`): fd 0
reads ``/dev/null``, fds 1 and 2 are capture pipes that a relay thread
forwards as output frames, so ``print``, ``os.write(1, ...)``,
``os.system`` and subprocesses are all captured, in the order their bytes
were written.

The main thread then reads one command at a time: ``setup`` (cwd,
environment and limits, for a worker the zygote forked ahead of need),
``run`` (execute a cell in the ``__main__`` namespace that persists between
runs; answer ``done``) or ``complete`` (answer ``completions``).
"""

from __future__ import annotations

import builtins
import json
import os
import select
import signal
import sys
import threading
import time
import traceback
import types
from types import FrameType
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from . import autoreload, magics_more, native, notebook
from .channel import Channel, Relay
from .completion import complete
from .dialect import SHELL_NAME
from .display import Bundle, filtered, fit_bundle, mime_bundle, raw_bundle
from .figures import MatplotlibHook
from .foreign_hook import DisplayHooks
from .inline import show_figures
from .magics_more import automagic
from .interpreter import Interpreter, error_report
from .magics import Shell
from .proctree import orphaned
from .signals import WAKE, InterruptWatch, wake_handler
from .stdio import (CallbackStdin, Plumbing, StreamedStdin, attach_stdin, flush_everything, flush_streams, in_write,
                    setup_descriptors, whole_line_print)

Message = Dict[str, Any]


class Worker:
    """The worker's main loop: one command at a time from the channel."""

    def __init__(self) -> None:
        """Everything that does not belong to one process: a zygote builds a
        worker once before it forks, and each fork only starts it (:meth:`start`)."""
        self.plumbing = Plumbing()
        namespace = types.ModuleType("__main__")
        namespace.__builtins__ = builtins  # type: ignore[attr-defined]
        sys.modules["__main__"] = namespace
        sys.argv = [""]
        self.namespace: Dict[str, Any] = namespace.__dict__
        self.interp = Interpreter(self.namespace)
        self.running = False
        self.stray_sigint = False
        self._asked = 0  # input requests sent so far; a reply names the one it answers
        self._builtin_input = builtins.input
        builtins.display = self.display  # type: ignore[attr-defined]
        builtins.print = whole_line_print
        self.hooks = DisplayHooks(self._displayhook)  # a library's displayhook still gives the result
        sys.displayhook = self.hooks.own
        self.interp.before_unit = self._before_statement

        def show(*args: Any, **kwargs: Any) -> None:
            """pyplot.show() in interp: every open figure becomes a PNG result."""
            show_figures(self.emit)

        sys.meta_path.insert(0, MatplotlibHook(show))
        self.shell = Shell()  # what notebook-style lines call (see dialect.py)
        setattr(builtins, SHELL_NAME, self.shell)
        magics_more.install()
        notebook.install(self.display, self.emit)
        # User code's handlers wait out a buffered write's return too (an exception
        # there would write it twice); such a signal is sent again a tick later.
        self.interp.signals.is_open = lambda: self.interp.in_user_code and not in_write()
        self.interp.signals.on_hold = self._held
        self.watch = self.interp.signals.watch = self.plumbing.ticker.watch = InterruptWatch()
        self.pid = 0

    def start(self, channel: Channel, relay: Relay) -> Worker:
        """Make this process's descriptors (as :func:`.stdio.setup_descriptors`
        made them), threads and signal handlers the worker's."""
        self.channel, self.relay = channel, relay
        self.plumbing.start()
        signal.signal(signal.SIGINT, self._on_sigint)
        signal.signal(WAKE, wake_handler)  # it does nothing: it only ends a blocking call
        self.watch.arm()
        self.interp.signals.install()
        self.pid = os.getpid()
        os.register_at_fork(after_in_child=self._after_fork)
        return self

    def _on_sigint(self, signum: int, frame: Optional[FrameType]) -> None:
        # Only user code is interruptible: a KeyboardInterrupt inside the
        # engine could cut a frame in half. One that comes while a run is
        # being set up is raised as soon as the user code starts. One that
        # comes while idle may be late (for the run that ended) or early
        # (for the run whose command is on its way): the parent decides,
        # told by a 'started' frame.
        self.watch.handled()
        if self.interp.in_user_code:
            if in_write():  # raised here, it would write the same output twice
                self.plumbing.ticker.resend(signal.SIGINT)
                return
            raise KeyboardInterrupt
        if self.running:
            self.interp.interrupt_pending = True
        else:
            self.stray_sigint = True

    def _held(self, signum: int) -> None:
        if self.interp.in_user_code and in_write():
            self.interp.signals.held.pop(signum, None)
            self.plumbing.ticker.resend(signum)

    def _after_fork(self) -> None:
        """In a process forked by user code: it must never speak the protocol
        (nor keep the channel open, which would hide the worker's death)."""
        if os.getpid() == self.pid:
            return
        for fd in (self.channel.rfd, self.channel.wfd, *self.relay.pipes):
            try:
                os.close(fd)
            except OSError:
                pass
        self.watch.disarm()

    def serve(self) -> None:
        """Answer commands until the parent goes away; never returns."""
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
        orphaned()

    def complete(self, command: Message) -> List[str]:
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

    def setup(self, command: Message) -> None:
        """Make a worker forked ahead of need (by the zygote) the worker of
        one context: its cwd, its environment, its limits. A worker that
        cannot take them must not run code anywhere else: it ends."""
        try:
            try:
                os.chdir(command["cwd"])
            except OSError as exc:  # checked here, where the code's view of the files is
                self.channel.send({"t": "fatal", "message": "the context could not be set up: cwd %s: %s"
                                   % (command["cwd"], exc.strerror), "cwd_errno": exc.errno})
                orphaned()
            env = command["env"]  # None: the zygote's, which this process has
            if env is not None and env != os.environ:
                os.environ.clear()
                os.environ.update(env)
            if hasattr(time, "tzset"):
                time.tzset()  # TZ may differ from the zygote's (or the system's zone changed)
            if sys.flags.isolated:
                _open_paths()
            apply_options(command.get("options"))
            # A forked worker was not dumpable until now (see zygote._child):
            # waiting in the pool, nothing could open its channel through
            # /proc/<pid>/fd (and fill it, stalling the parent's setup write).
            native.set_dumpable(True)
        except Exception as exc:
            self.channel.send({"t": "fatal", "message": "the context could not be set up: %s" % (exc,)})
            orphaned()

    def run(self, command: Message) -> Message:
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
        streamed: Optional[StreamedStdin] = None
        self.watch.check()
        if not self.relay.intact():  # user code closed or replaced the read end of a capture pipe
            self.channel.send({"t": "fatal", "message": "user code broke the worker's output capture"})
            orphaned()
        self.plumbing.ticker.busy()
        try:
            flush_streams()  # what background threads printed comes before this run's output
            self.plumbing.repair()  # e.g. exit() closed sys.stdin; os.close(1)
            if envs:
                os.environ.update(envs)
            if stdin is not None:
                attach_stdin(stdin)
            elif command.get("stdin_stream"):
                streamed = StreamedStdin(self.channel)
            if command.get("input"):
                builtins.input = self._input
                sys.stdin = CallbackStdin(self._ask)
            notebook_dialect = command.get("dialect", "notebook") == "notebook"
            source = command["code"]
            if notebook_dialect:  # a one-line `ls -l` or `pwd` runs as the magic, as with IPython's automagic
                source = automagic(source, self.namespace) or source
            error = self.interp.execute(source, command.get("filename"), notebook=notebook_dialect)
            if os.getpid() != self.pid:  # a fork made by the cell reached its end
                flush_everything()
                os._exit(1 if error else 0)
            self.interp.in_user_code = True  # figures may run user callbacks
            try:
                show_figures(self.emit)
            except BaseException as exc:  # an error drawing a figure is the run's error, as in Jupyter
                text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
                error = error or error_report(exc, text)
            self.interp.in_user_code = False
        except Exception as exc:  # the run could not be set up (e.g. an unencodable env value)
            error = error_report(exc)
        finally:
            self.running = False
            builtins.input = self._builtin_input
            if streamed is not None:
                streamed.stop()
            if stdin is not None or streamed is not None or type(sys.stdin) is CallbackStdin:
                self.plumbing.reset_stdin()
            if saved is not None:
                restore_environ(saved)
        flush_everything()
        self.plumbing.ticker.idle()
        self.relay.drain()
        return {"t": "done", "re": command.get("id"), "error": error, "count": self.interp.count}

    # -- results --------------------------------------------------------------

    def emit(self, obj: Any, main: bool, bundle: Optional[Bundle] = None) -> None:
        """Send ``obj`` (or a ready ``bundle``) as a result frame, after the
        output written before it."""
        data = fit_bundle(mime_bundle(obj) if bundle is None else bundle)
        if self.shell.take(data):  # %%capture keeps it
            return
        flush_everything()
        self.send_from_user_code({"t": "result", "data": data, "main": main}, drain=True)

    def send_from_user_code(self, message: Message, drain: bool = False) -> None:
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

    def display(self, *objs: Any, raw: bool = False, include: Optional[List[str]] = None,
                exclude: Optional[List[str]] = None, **ignored: Any) -> None:
        """Show each object as a rich result of the current run, like
        IPython's ``display``: ``raw=True`` takes each object as a ready MIME
        bundle (a dict of MIME type to data); ``include`` / ``exclude`` keep or
        drop MIME types, text/plain too (an object left with no format is not
        shown). IPython's other keywords (``metadata``, ``display_id``, ...)
        are accepted and ignored."""
        bundles = [raw_bundle(obj) if raw else None for obj in objs]  # check all first
        for obj, bundle in zip(objs, bundles):
            shown = filtered(mime_bundle(obj) if bundle is None else bundle, include, exclude)
            if shown:
                self.emit(obj, False, shown)

    def _before_statement(self) -> None:
        self.hooks.adopt()
        autoreload.state.check()

    def _displayhook(self, value: Any) -> None:
        if value is None:
            return
        shown = self.hooks.bundle_of(value, mime_bundle)
        if shown is not None:  # a library's hook: what it prints is the result's text
            if shown:
                self.emit(value, True, shown)
            return
        builtins._ = None  # type: ignore[attr-defined]  # like sys.__displayhook__: do not keep the old value alive
        self.emit(value, True, mime_bundle(value, strict=True))  # a repr that raises is the run's error
        builtins._ = value  # type: ignore[attr-defined]

    # -- input ----------------------------------------------------------------

    def _ask(self, prompt: str) -> str:
        """Ask the parent's on_input callback for a line; EOFError for EOF."""
        if not self.running or threading.current_thread() is not threading.main_thread():
            raise EOFError("EOF when reading a line (input is only served to the running cell)")
        flush_everything()
        self._asked += 1
        number = self._asked
        self.send_from_user_code({"t": "input", "prompt": prompt, "n": number}, drain=True)
        while True:
            reply = self._next_message()
            if reply.get("t") == "input_reply" and reply.get("n") == number:
                break  # replies to requests given up on (interrupted) are dropped
        if reply.get("interrupt"):  # Ctrl-C while the front end read the line
            raise KeyboardInterrupt
        if reply.get("eof"):
            raise EOFError("EOF when reading a line")
        value = str(reply.get("value", ""))
        return value[:-1] if value.endswith("\n") else value

    def _input(self, prompt: object = "") -> str:
        return self._ask(str(prompt))

    def _next_message(self) -> Message:
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


def restore_environ(saved: Mapping[str, str]) -> None:
    """Make the environment ``saved`` again: os.environ, and the C library's
    (which subprocesses inherit, and which os.putenv changes behind
    os.environ's back)."""
    for key in list(os.environ):
        if key not in saved:
            del os.environ[key]
    for key, value in saved.items():
        if os.environ.get(key) != value:
            os.environ[key] = value
    if native.clearenv():
        for key, value in saved.items():
            os.putenv(key, value)


def _open_paths() -> None:
    """In a worker of an isolated zygote (a sandbox's, started with -I): give
    the user's code what a plain ``python -c`` has, the cwd first on
    ``sys.path`` and the user site of its HOME (the zygote itself had neither)."""
    import site

    if "" not in sys.path:
        sys.path.insert(0, "")
    site.USER_BASE = site.USER_SITE = None
    site.ENABLE_USER_SITE = True
    user_site = site.getusersitepackages()
    if os.path.isdir(user_site):
        site.addsitedir(user_site)


def main(capture: Optional[Sequence[int]] = None, options: Union[str, Mapping[str, Any], None] = None,
         worker: Optional[Worker] = None) -> None:
    """Entry point of a worker process (its stdin/stdout are the channel).

    ``capture``: optional capture pipes made by the launcher, see
    :func:`.stdio.setup_descriptors`. ``options`` (a dict, or its JSON):
    ``memory_limit``, the address-space limit in bytes. ``worker``: one
    built before this process was forked (see ``zygote``), else one is built.
    """
    apply_options(json.loads(options) if isinstance(options, str) else options)
    native.become_subreaper()
    channel, relay = setup_descriptors(capture or None)  # fd 0 reads /dev/null before a Worker() opens it
    (worker or Worker()).start(channel, relay).serve()


def apply_options(options: Optional[Mapping[str, Any]]) -> None:
    """Apply a context's limits (``memory_limit``: RLIMIT_AS in bytes, at most
    the limit already in force, a sandbox's say)."""
    limit = (options or {}).get("memory_limit")
    if limit:
        import resource

        hard = resource.getrlimit(resource.RLIMIT_AS)[1]
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        in_use = _address_space()
        if in_use and limit < in_use + (64 << 20):
            raise MemoryError("memory_limit=%d leaves no room: the worker already maps %d bytes "
                              "of address space; allow at least %d more" % (limit, in_use, 64 << 20))
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _address_space() -> int:
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0
