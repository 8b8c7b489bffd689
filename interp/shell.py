"""Interactive shell: ``python -m interp`` on a terminal.

A read-eval-print loop whose code runs in the default context of a
:class:`~interp.CodeInterpreter` (a worker process), not in the shell's
own process. Like the standard REPL it reads multi-line blocks until
``codeop`` says they are complete, shows expression values and tracebacks,
and edits lines with ``readline`` (with tab completion from the worker's
namespace) when it is available.

Ctrl-C at the prompt clears the line. Ctrl-C while code runs interrupts
that code (KeyboardInterrupt in the worker; its state survives); if the
code ignores two of them, a third stops the run by force, restarting the
context if it must. Ctrl-D at the prompt leaves, and the caller closes the
interpreter (killing the worker). ``input()`` in the code reads from the
terminal. Lines typed are kept in ``$INTERP_HISTORY`` (default
``~/.interp_history``; set it empty to keep none) for the next session.
"""

from __future__ import annotations

import ast
import codeop
import os
import signal
import sys
import threading
import traceback
import warnings
from typing import Any, Callable, List, Optional, TextIO

from . import __version__
from ._worker.dialect import transform
from .api import CodeInterpreter
from .commands import InputInterrupted
from .errors import InterpError
from .types import ExecutionError, OutputMessage, Result

PS1 = ">>> "
PS2 = "... "
#: Ctrl-C presses during one run before the run is stopped by force.
FORCE_AFTER = 3
#: Lines kept in the history file.
HISTORY_LENGTH = 1000


class CtrlC:
    """Ctrl-C forwarding for a front end that runs code from its main thread.

    Within ``with CtrlC(interpreter):`` each SIGINT this process gets
    interrupts the code running in ``context`` (KeyboardInterrupt in the
    worker, whose run then ends normally with that error) instead of
    raising here. A press while the front end reads a line for the code's
    input() (see :meth:`read`) makes that input() raise KeyboardInterrupt.
    The ``force_after``-th press raises KeyboardInterrupt here instead, so
    that run_code stops the run by force; presses after that one are
    ignored (the run is being stopped).
    Enter it from the main thread. A signal handler must not take locks, so
    a thread makes the ``interrupt()`` call.
    """

    def __init__(self, interpreter: CodeInterpreter, context: Optional[str] = None,
                 force_after: int = FORCE_AFTER) -> None:
        self.interpreter = interpreter
        self.context = context
        self.force_after = force_after
        self.presses = 0
        self.raise_here = False
        self.forced = False
        self._wake_r = self._wake_w = -1
        self._thread: Optional[threading.Thread] = None
        self._previous: Any = None

    def __enter__(self) -> CtrlC:
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._forward, daemon=True, name="interp-ctrl-c")
        # The thread inherits a mask that blocks SIGINT, so the kernel always
        # delivers Ctrl-C to the main thread: a SIGINT taken by a thread
        # blocked in read() would wake neither readline nor run_code's poll.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            self._thread.start()
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        self._previous = signal.signal(signal.SIGINT, self._on_sigint)
        return self

    def __exit__(self, *exc_info: object) -> None:
        signal.signal(signal.SIGINT, self._previous)
        os.close(self._wake_w)  # ends the thread
        if self._thread is not None:
            self._thread.join(5)
        os.close(self._wake_r)

    def read(self, reader: Callable[[], str]) -> str:
        """Call ``reader`` (it reads a line for the code's ``input()``); a
        Ctrl-C meanwhile makes that input() raise KeyboardInterrupt in the
        code (InputInterrupted, for on_input), as python's input() does."""
        self.raise_here = True
        try:
            return reader()
        except KeyboardInterrupt:
            raise InputInterrupted from None
        finally:
            self.raise_here = False

    def _on_sigint(self, signum: int, frame: Any) -> None:
        if self.forced:  # a KeyboardInterrupt raised here is already stopping the run
            return
        if self.raise_here:  # for the code's input(): see read()
            self.raise_here = False
            raise KeyboardInterrupt
        self.presses += 1
        if self.presses >= self.force_after:
            self.forced = True
            raise KeyboardInterrupt
        try:
            os.write(self._wake_w, b"!")
        except OSError:
            pass

    def _forward(self) -> None:
        while True:
            try:
                data = os.read(self._wake_r, 64)
            except OSError:
                return
            if not data:
                return
            try:
                self.interpreter.interrupt(self.context)
            except InterpError:
                pass


class Shell:
    """A REPL over ``interpreter``'s default context.

    ``timeout`` bounds each input's run in seconds (0: no limit). Output
    goes to ``stdout`` / ``stderr`` (default: ``sys.stdout`` / ``sys.stderr``);
    lines are read with ``input()``, so from ``sys.stdin`` with readline.
    ``history`` is a file readline loads its history from and saves it to
    (None: none). Call :meth:`interact` from the main thread (it handles SIGINT).
    """

    def __init__(self, interpreter: CodeInterpreter, *, timeout: float = 0,
                 stdout: Optional[TextIO] = None, stderr: Optional[TextIO] = None,
                 history: Optional[str] = None) -> None:
        self.interpreter = interpreter
        self.timeout = timeout
        self.history = history
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr
        self._compiler = codeop.CommandCompiler()
        self._compiler.compiler.flags |= ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
        self._notebook = interpreter.dialect == "notebook"
        self._ctrl_c: Optional[CtrlC] = None
        self._matches: List[str] = []

    # -- the loop ------------------------------------------------------------------

    def interact(self, banner: Optional[str] = None) -> int:
        """Read, run and print until end of input (Ctrl-D); return 0."""
        if banner is None:
            banner = ("interp %s shell: Python %s in a worker process. Ctrl-C interrupts, "
                      "Ctrl-D exits." % (__version__, sys.version.split()[0]))
        if banner:
            self._err(banner + "\n")
        restore_readline = self._setup_readline()
        try:
            self._loop()
        finally:
            restore_readline()
        return 0

    def _loop(self) -> None:
        lines: List[str] = []
        while True:
            try:
                try:
                    line = input(PS2 if lines else PS1)
                except EOFError:
                    self._out("\n")
                    return
                lines.append(line)
                source = "\n".join(lines)
                if not self._is_complete(source):
                    continue
                lines = []
                if source.strip():
                    self.run(source.rstrip("\n") + "\n")  # a %%magic block's closing blank line is no body
            except KeyboardInterrupt:  # Ctrl-C at the prompt: drop the line (or block)
                self._err("\nKeyboardInterrupt\n")
                lines = []

    def _is_complete(self, source: str) -> bool:
        """False while ``source`` is the start of a statement that needs
        more lines; True when it is complete or a syntax error (which the
        worker then reports). Notebook syntax counts as the Python it
        becomes (``for f in x:`` then ``!echo {f}`` wants more lines), and a
        ``%%magic`` block ends with an empty line."""
        if self._notebook and source.lstrip().startswith("%%"):
            return source.endswith("\n")
        try:
            return self._compiles(source)
        except (SyntaxError, ValueError, OverflowError):
            rewritten = transform(source) if self._notebook else None
            try:
                return rewritten is None or self._compiles(rewritten)
            except (SyntaxError, ValueError, OverflowError):
                return True

    def _compiles(self, source: str) -> bool:
        """True if ``source`` is a complete statement, False if it needs more lines."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return self._compiler(source, "<stdin>", "single") is not None

    # -- one run ---------------------------------------------------------------------

    def run(self, source: str) -> None:
        """Run ``source`` in the default context, printing its output,
        results and traceback as they come; report timeouts and deaths.
        Ctrl-C interrupts the code (see CtrlC); so does a press while input()
        reads, by raising here."""
        try:
            with CtrlC(self.interpreter) as self._ctrl_c:
                self.interpreter.run_code(
                    source, on_stdout=self._on_stdout, on_stderr=self._on_stderr,
                    on_result=self._on_result, on_error=self._on_error, on_input=self._read_input,
                    timeout=self.timeout)
        except KeyboardInterrupt as exc:  # from input(), or the forced stop
            self._err("KeyboardInterrupt\n")
            for note in getattr(exc, "__notes__", ()):
                self._err(note + "\n")
        except InterpError as exc:  # a timeout, the worker died, the context was restarted
            self._err("interp: %s\n" % exc)
        except Exception:  # a bug in interp itself: report it, keep the session
            self._err("interp: internal error (please report it):\n" + traceback.format_exc())
        finally:
            self._ctrl_c = None

    def _on_stdout(self, message: OutputMessage) -> None:
        self._out(message.output)

    def _on_stderr(self, message: OutputMessage) -> None:
        self._err(message.output)

    def _on_result(self, result: Result) -> None:
        if result.text is not None:
            self._out(result.text + "\n")
        else:
            self._out("<%s>\n" % ", ".join(result.formats()))

    def _on_error(self, error: ExecutionError) -> None:
        self._err(error.traceback if error.traceback.endswith("\n") else error.traceback + "\n")

    def _read_input(self, prompt: str) -> str:
        assert self._ctrl_c is not None
        return self._ctrl_c.read(lambda: input(prompt))

    def _out(self, text: str) -> None:
        self.stdout.write(text)
        self.stdout.flush()

    def _err(self, text: str) -> None:
        self.stdout.flush()
        self.stderr.write(text)
        self.stderr.flush()

    # -- readline ----------------------------------------------------------------------

    def _setup_readline(self) -> Callable[[], None]:
        """Tab completion from the worker's namespace and the history file,
        when readline is there. Returns a function that saves the history
        and restores the previous completer."""
        try:
            import readline
        except ImportError:
            return lambda: None
        previous = readline.get_completer()
        readline.set_completer(self._complete)
        if "libedit" in (readline.__doc__ or ""):
            readline.parse_and_bind("bind ^I rl_complete")
        else:
            readline.parse_and_bind("tab: complete")
        if self.history:
            readline.set_history_length(HISTORY_LENGTH)
            try:
                readline.read_history_file(self.history)
            except OSError:  # none yet, or unreadable: start empty
                pass

        def restore() -> None:
            readline.set_completer(previous)
            if self.history:
                try:
                    readline.write_history_file(self.history)
                except OSError as exc:
                    self._err("interp: history not saved to %s: %s\n" % (self.history, exc.strerror))
        return restore

    def _complete(self, text: str, state: int) -> Optional[str]:
        if state == 0:
            if not text.strip():
                self._matches = ["\t"]  # indent, like the standard REPL
            else:
                try:
                    self._matches = self.interpreter.complete(text)
                except Exception:
                    self._matches = []
        return self._matches[state] if state < len(self._matches) else None


def main(timeout: float = 0, cwd: Optional[str] = None) -> int:
    """Run the shell on this process's terminal until Ctrl-D; the worker is
    killed on the way out. Returns the exit status."""
    with CodeInterpreter(cwd=cwd) as interpreter:
        return Shell(interpreter, timeout=timeout, history=history_file()).interact()


def history_file() -> Optional[str]:
    """``$INTERP_HISTORY``, or ``~/.interp_history``; None when the variable is empty."""
    path = os.environ.get("INTERP_HISTORY")
    if path is None:
        path = os.path.join(os.path.expanduser("~"), ".interp_history")
    return path or None
