"""The interactive shell (``python -m interp`` on a terminal), driven through
a real pseudo-terminal: keystrokes in, screen text out, Ctrl-C as the
terminal's SIGINT to the foreground process group."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time

import pytest
from helpers import process_exists as pid_alive

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WAIT = 20.0
ANSI = re.compile(rb"\x1b(\[[0-?]*[ -/]*[@-~]|[@-Z\\-_])")

# Becomes the session leader with the pty as its controlling terminal (so
# that ^C typed into the pty sends SIGINT to it), then runs the shell.
LAUNCH = ("import fcntl, os, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
          "os.execv(sys.executable, [sys.executable, '-m', 'interp'] + sys.argv[1:])")


class Terminal:
    """``python -m interp`` on the slave side of a pty."""

    def __init__(self, *args: str, cwd: str = ROOT, history: str = "") -> None:
        self.master, slave = os.openpty()
        # No history file unless a test asks for one: never the developer's ~/.interp_history.
        env = dict(os.environ, TERM="dumb", PYTHONPATH=ROOT, INTERP_HISTORY=history)
        try:
            self.proc = subprocess.Popen([sys.executable, "-c", LAUNCH, *args], cwd=cwd, env=env,
                                         stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
        finally:
            os.close(slave)
        self.screen = b""  # everything read so far, escape sequences removed
        self.mark = 0  # expect() looks after this offset

    def read_some(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return False
        try:
            data = os.read(self.master, 65536)
        except OSError:  # EIO: the slave side is closed
            data = b""
        if not data:
            raise EOFError("the shell closed the terminal; screen:\n%s" % self.text())
        self.screen += ANSI.sub(b"", data).replace(b"\r", b"")
        return True

    def expect(self, pattern: str, timeout: float = WAIT) -> re.Match:
        """Wait for ``pattern`` (a regex) on screen after the last match."""
        regex = re.compile(pattern.encode())
        deadline = time.monotonic() + timeout
        while True:
            match = regex.search(self.screen, self.mark)
            if match:
                self.mark = match.end()
                return match
            remaining = deadline - time.monotonic()
            assert remaining > 0, "%r not on screen:\n%s" % (pattern, self.text())
            self.read_some(remaining)

    def send(self, text: str) -> None:
        os.write(self.master, text.encode())

    def ctrl_c_at_prompt(self) -> None:
        """Ctrl-C at a prompt, the way a person does it: not within the
        microseconds between readline drawing the prompt and waiting for
        keys, where CPython's readline notices a SIGINT only at the next key
        (the standard REPL has the same window)."""
        time.sleep(0.3)
        self.send("\x03")

    def line(self, text: str) -> None:
        self.send(text + "\n")

    def text(self) -> str:
        return self.screen.decode("utf-8", "replace")

    def finish(self) -> int:
        """Ctrl-D at the prompt; the exit status."""
        self.send("\x04")
        deadline = time.monotonic() + WAIT
        while self.proc.poll() is None and time.monotonic() < deadline:
            try:
                self.read_some(0.1)
            except EOFError:
                break
        return self.proc.wait(max(0.1, deadline - time.monotonic()))

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        os.close(self.master)


@pytest.fixture
def term():
    terminal = Terminal()
    try:
        terminal.expect(">>> ")
        yield terminal
    finally:
        terminal.close()


def test_state_values_blocks_tracebacks_and_exit_cleanup(term):
    term.line("import os; worker = os.getpid(); counter = 1")
    term.expect(">>> ")
    term.line("counter += 1")
    term.expect(">>> ")
    term.line("counter * 21")
    term.expect(r"\n42\n>>> ")
    term.line("for i in range(3):")
    term.expect(r"\.\.\. ")
    term.line("    print('item', i)")
    term.expect(r"\.\.\. ")
    term.line("")
    term.expect(r"item 0\nitem 1\nitem 2\n>>> ")
    term.line("def f():\n    return 1 / 0\n")
    term.expect(">>> ")
    term.line("f()")
    term.expect(r"Traceback \(most recent call last\):(.|\n)*return 1 / 0(.|\n)*"
                r"ZeroDivisionError: division by zero\n>>> ")
    term.line("x = (")  # an unfinished expression continues on the next line
    term.expect(r"\.\.\. ")
    term.line("5)")
    term.expect(">>> ")
    term.line("print(x, counter)")
    term.expect(r"\n5 2\n>>> ")
    term.line("def broken(:")
    term.expect(r"SyntaxError(.|\n)*>>> ")
    term.line("worker")
    worker = int(term.expect(r"\n(\d+)\n>>> ").group(1))
    assert worker != term.proc.pid and pid_alive(worker)  # the code ran in another process
    assert term.finish() == 0
    deadline = time.monotonic() + 10
    while pid_alive(worker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(worker)


def test_ctrl_c_interrupts_running_code_and_keeps_state(term):
    term.line("kept = 'state'")
    term.expect(">>> ")
    term.line("while True: pass")
    term.send("\n")  # end the one-line block
    time.sleep(0.3)  # let the loop start (a Ctrl-C before it is also fine: it interrupts the run)
    term.send("\x03")
    term.expect(r"KeyboardInterrupt\n>>> ")
    term.line("print(kept)")
    term.expect(r"\nstate\n>>> ")
    assert term.finish() == 0


def test_ctrl_c_at_the_prompt_clears_the_line(term):
    term.send("never_defined = 1")
    term.expect("never_defined = 1")
    term.ctrl_c_at_prompt()
    term.expect(r"KeyboardInterrupt\n>>> ")
    term.line("if True:")
    term.expect(r"\.\.\. ")
    term.ctrl_c_at_prompt()  # also drops an unfinished block
    term.expect(r"KeyboardInterrupt\n>>> ")
    term.line("'never_defined' in globals()")
    term.expect(r"\nFalse\n>>> ")
    assert term.finish() == 0


def test_input_reads_from_the_terminal(term):
    term.line("name = input('name? ')")
    term.expect("name\\? ")
    term.line("Ada")
    term.expect(">>> ")
    term.line("print('hi', name)")
    term.expect(r"\nhi Ada\n>>> ")
    assert term.finish() == 0


def test_timeout_and_cwd_options(tmp_path):
    terminal = Terminal("--timeout", "0.5", "--cwd", str(tmp_path))
    try:
        terminal.expect(">>> ")
        terminal.line("import os, time; os.getcwd()")
        terminal.expect(r"\n'%s'\n>>> " % re.escape(str(tmp_path)))
        terminal.line("time.sleep(30)")
        terminal.expect(r"timeout(.|\n)*>>> ")
        terminal.line("print('alive', os.getcwd() == %r)" % str(tmp_path))
        terminal.expect(r"\nalive True\n>>> ")
        assert terminal.finish() == 0
    finally:
        terminal.close()


def test_history_is_kept_between_sessions(tmp_path):
    history = str(tmp_path / "history")
    first = Terminal(history=history)
    try:
        first.expect(">>> ")
        first.line("print('from', 'history')")
        first.expect(r"\nfrom history\n>>> ")
        assert first.finish() == 0
    finally:
        first.close()
    with open(history) as saved:
        assert "print('from', 'history')" in saved.read()
    second = Terminal(history=history)
    try:
        second.expect(">>> ")
        second.send("\x10\n")  # Ctrl-P: the previous line, from the last session
        second.expect(r"\nfrom history\n>>> ")
        assert second.finish() == 0
    finally:
        second.close()


def test_the_readme_transcript_is_what_the_shell_prints(term):
    """The shell session of docs/cli.md, typed in as written, shows what the page
    shows (pids and versions aside)."""
    with open(os.path.join(ROOT, "docs", "cli.md"), encoding="utf-8") as handle:
        readme = handle.read()
    section = readme[readme.index("## Interactive shell"):]
    transcript = re.search(r"```text\n(.*?)```", section, re.S).group(1)
    lines = [re.sub(r"\s{2,}# .*$", "", line).rstrip() for line in transcript.splitlines()]
    first = True  # the fixture waited for the first prompt
    for line in lines:
        if line.startswith("^C"):
            time.sleep(1)  # the loop is running
            term.send("\x03")
        elif line[:3] in (">>>", "..."):
            if not first:
                term.expect(re.escape(line[:3] + " "))
            first = False
            term.line(line[4:])
    term.expect(r"\n2\n>>> ")  # the last output
    pattern = "\n".join(re.sub(r"\d+(?:\\\.\d+)*", r"[\\d.]+", re.escape(line)) for line in lines)
    screen = "\n".join(line.rstrip() for line in term.text().splitlines())
    assert re.search(pattern, screen), screen
