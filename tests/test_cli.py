"""``python -m interp`` from the repo root of a checkout, with no install."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from helpers import process_exists, wait_until

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_cli(*args, stdin=None, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "interp", *args], input=stdin, cwd=cwd,
                          env=dict(os.environ, PYTHONPATH=ROOT), capture_output=True, text=True, timeout=60)


def test_code_output_streams_and_exit_zero():
    proc = run_cli("-c", "import os, sys\nprint('a'); os.system('echo b'); print('c', file=sys.stderr)")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "a\nb\n", "c\n")


def test_error_prints_traceback_and_exits_one():
    proc = run_cli("-c", "x = 1\n1 / 0")
    assert proc.returncode == 1
    assert proc.stderr.startswith("Traceback") and "ZeroDivisionError" in proc.stderr
    assert 'File "<string>", line 2' in proc.stderr


def test_file_and_its_tracebacks(tmp_path):
    script = tmp_path / "script.py"
    script.write_text("import os\nprint(os.getcwd())\ndef f():\n    raise ValueError('boom')\nf()\n")
    proc = run_cli("--cwd", str(tmp_path), str(script))
    assert proc.returncode == 1
    assert proc.stdout == "%s\n" % tmp_path
    assert 'File "%s", line 4, in f' % script in proc.stderr
    assert "raise ValueError('boom')" in proc.stderr


# Issue 21 item 8: a form feed, U+2028 (in a comment), \x1c-\x1e (in strings) and lone \r are not
# line breaks to the compiler (only \n, \r\n and \r are); the traceback quotes the line python quotes.
ODD_BREAKS = ("\x0cx = 1  # form feed at the start: whitespace\n"
              "# a comment\u2028that goes on\n"
              "s = 'a\x1cb\x1dc\x1ed\x0be'\r\n"
              "t = 2\r"
              "def f():\n"
              "    raise ValueError('line six')\n"
              "f()  # line seven\n")


def test_file_tracebacks_quote_the_line_python_quotes(tmp_path):
    script = tmp_path / "odd.py"
    script.write_bytes(ODD_BREAKS.encode("utf-8"))
    ours = run_cli(str(script))
    theirs = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert "line 6, in f" in theirs.stderr and "raise ValueError('line six')" in theirs.stderr
    assert (ours.returncode, ours.stderr) == (theirs.returncode, theirs.stderr)
    code = run_cli("-c", ODD_BREAKS)
    assert 'File "<string>", line 7, in <module>\n    f()  # line seven\n' in code.stderr
    assert "    raise ValueError('line six')\n" in code.stderr


def test_piped_stdin_runs_as_a_script():
    proc = run_cli(stdin="x = 6\nprint(x * 7)\n")
    assert (proc.returncode, proc.stdout) == (0, "42\n")
    assert run_cli("-", stdin="print('dash')").stdout == "dash\n"


STDIN_PROGRAMS = [
    # (code, stdin bytes): python and interp print the same
    ("import sys\nprint(repr(sys.stdin.read(2)))\nprint(repr(sys.stdin.read()))", b"abc\ndef"),
    ("import os, subprocess\nprint(repr(os.read(0, 3)))\nprint(subprocess.run(['cat'], capture_output=True).stdout)",
     b"abc\ndef"),
    ("import sys\nprint(sys.stdin.buffer.read())", b"\xff\x00bin\r\nary"),
    ("import subprocess\nsubprocess.run(['wc', '-c'])", b"z" * 1_000_000),
    ("import sys\nprint(sys.stdin.readline(), end='|')\nimport os\nos.system('cat')", b"one\ntwo\nthree"),
    ("while True:\n    try:\n        print(input('> '))\n    except EOFError:\n        break", b"a\nb"),
    ("import sys\nprint(sys.stdin.isatty(), sys.stdin.fileno(), sys.stdin.read() == '')", b""),
]


@pytest.mark.parametrize("code, data", STDIN_PROGRAMS,
                         ids=["partial-read", "fd0-and-cat", "buffer", "1MB-to-wc", "readline-then-shell",
                              "input-loop", "empty"])
def test_piped_stdin_is_the_codes_own_as_with_python(code, data):
    """Issue 21 item 10: with -c CODE (or FILE) and piped stdin, fd 0 and
    sys.stdin are python's: no added newline, partial reads, .buffer, and
    subprocesses read it too."""
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.pop("PYTHONUNBUFFERED", None)
    theirs = subprocess.run([sys.executable, "-c", code], input=data, capture_output=True, timeout=60, env=env)
    ours = subprocess.run([sys.executable, "-m", "interp", "-c", code], input=data, capture_output=True,
                          cwd=ROOT, timeout=60, env=env)
    assert theirs.returncode == 0, theirs.stderr
    assert (ours.returncode, ours.stdout, ours.stderr) == (0, theirs.stdout, b"")


def test_piped_stdin_streams_as_it_comes(tmp_path):
    """The code reads each line while the writer is still writing (stdin is
    not read whole first), and a FILE gets piped stdin the same way."""
    script = tmp_path / "echo.py"
    script.write_text("import sys, time\nfor line in sys.stdin:\n    print(line.strip(), round(time.time(), 1), "
                      "flush=True)\n")
    writer = subprocess.Popen([sys.executable, "-c", "import time\nprint('first', flush=True)\ntime.sleep(1.5)\n"
                               "print('second', flush=True)"], stdout=subprocess.PIPE)
    try:
        proc = subprocess.run([sys.executable, "-m", "interp", str(script)], stdin=writer.stdout,
                              capture_output=True, text=True, cwd=ROOT, timeout=60,
                              env=dict(os.environ, PYTHONPATH=ROOT))
    finally:
        writer.stdout.close()
        writer.wait(30)
    (first, at_first), (second, at_second) = [line.split() for line in proc.stdout.splitlines()]
    assert (proc.returncode, first, second) == (0, "first", "second")
    assert float(at_second) - float(at_first) >= 1.0


def test_ctrl_c_while_the_code_reads_piped_stdin():
    proc = subprocess.Popen([sys.executable, "-m", "interp", "-c",
                             "import sys\nprint('ready', flush=True)\ntry:\n    sys.stdin.read()\n"
                             "except KeyboardInterrupt:\n    print('caught')"],
                            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=dict(os.environ, PYTHONPATH=ROOT))
    with proc:
        try:
            assert proc.stdout.readline() == "ready\n"
            proc.send_signal(signal.SIGINT)
            out = proc.stdout.read()  # stdin stays open: the code's read() ends by the interrupt alone
            err = proc.stderr.read()
            proc.wait(30)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert (proc.returncode, out, err) == (0, "caught\n", "")


def test_timeout_exit_status():
    proc = run_cli("--timeout", "0.5", "-c", "import time\nprint('start', flush=True)\ntime.sleep(30)")
    assert proc.returncode == 124
    assert proc.stdout == "start\n"
    assert "timed out" in proc.stderr


def test_worker_death_and_bad_usage():
    proc = run_cli("-c", "import os; os._exit(7)")
    assert (proc.returncode, proc.stderr) == (7, "")  # as with python: quietly, that status
    proc = run_cli("/no/such/file.py")
    assert proc.returncode == 2 and "cannot read" in proc.stderr
    proc = run_cli("--timeout", "-1", "-c", "1")
    assert proc.returncode == 2 and "timeout" in proc.stderr


def test_sys_exit_status_is_an_error():
    proc = run_cli("-c", "import sys; sys.exit(0)")
    assert proc.returncode == 0
    proc = run_cli("-c", "import sys; sys.exit(4)")
    assert (proc.returncode, proc.stderr) == (4, "")
    proc = run_cli("-c", "import sys; sys.exit('bye')")
    assert (proc.returncode, proc.stderr) == (1, "bye\n")


def test_file_gets_file_argv_and_its_directory_on_sys_path(tmp_path):
    """Issue 10, point 16: FILE runs as python runs it; what follows FILE is
    passed to it, even when it looks like interp's own options."""
    (tmp_path / "sibling.py").write_text("NAME = 'sibling'\n")
    script = tmp_path / "script.py"
    script.write_text("import sys, sibling\nprint(__file__)\nprint(sys.argv)\nprint(sibling.NAME)\n")
    proc = run_cli("--timeout", "30", str(script), "a", "--timeout", "3", "-c", "x", "--", "-")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [str(script), str([str(script), "a", "--timeout", "3", "-c", "x", "--", "-"]),
                                        "sibling"]
    relative = run_cli("script.py", "b", cwd=str(tmp_path))  # __file__ absolute, argv[0] as given
    assert relative.stdout.splitlines()[:2] == [str(script), str(["script.py", "b"])]


def test_code_and_stdin_get_argv_as_with_python():
    proc = run_cli("-c", "import sys\nprint(sys.argv, '__file__' in globals())", "a", "-c", "--cwd")
    assert proc.stdout == "['-c', 'a', '-c', '--cwd'] False\n"
    assert run_cli("-", "x", "-y", stdin="import sys; print(sys.argv)").stdout == "['-', 'x', '-y']\n"
    assert run_cli(stdin="import sys; print(sys.argv)").stdout == "['']\n"
    assert "_interp_prepare" not in run_cli("-c", "print(dir())").stdout


def test_exit_statuses_are_pythons():
    """sys.exit("42") prints 42 and exits 1 (it exited 42); sys.exit(True)
    exits 1; os._exit(9) exits 9."""
    text = run_cli("-c", "import sys; sys.exit('42')")
    assert (text.returncode, text.stderr) == (1, "42\n")
    number = run_cli("-c", "import sys; sys.exit(42)")
    assert (number.returncode, number.stderr) == (42, "")
    assert run_cli("-c", "import sys; sys.exit(True)").returncode == 1
    assert run_cli("-c", "import sys; sys.exit(None)").returncode == 0
    assert run_cli("-c", "import sys; sys.exit(300)").returncode == 300 & 0xFF
    died = run_cli("-c", "import os; print('before', flush=True); os._exit(9)")
    assert (died.returncode, died.stdout, died.stderr) == (9, "before\n", "")
    killed = run_cli("-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
    assert killed.returncode == 128 + signal.SIGKILL and "SIGKILL" in killed.stderr


def test_input_reads_standard_input():
    proc = run_cli("-c", "print('got', input('name? '))\nprint(input())", stdin="bob\n")
    assert proc.returncode == 1 and proc.stdout == "name? got bob\n" and "EOFError" in proc.stderr


def start_cli(*args):
    proc = subprocess.Popen([sys.executable, "-m", "interp", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "ready\n"
    return proc


def finish(proc):
    try:
        return proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_ctrl_c_raises_keyboard_interrupt_in_the_code():
    """Issue 10, point 16: SIGINT to the command line raises KeyboardInterrupt
    in the code, whose handler runs; it used to stop the run silently (130)."""
    proc = start_cli("-c", "import time\ntry:\n    print('ready', flush=True)\n    time.sleep(30)\n"
                           "except KeyboardInterrupt:\n    print('caught')\nprint('after')")
    proc.send_signal(signal.SIGINT)
    out, err = finish(proc)
    assert (proc.returncode, out, err) == (0, "caught\nafter\n", "")


def test_uncaught_ctrl_c_prints_the_traceback_and_exits_130():
    proc = start_cli("-c", "import time\nprint('ready', flush=True)\ntime.sleep(30)")
    proc.send_signal(signal.SIGINT)
    _, err = finish(proc)
    assert proc.returncode == 130
    assert err.startswith("Traceback") and err.endswith("KeyboardInterrupt\n") and 'File "<string>"' in err


def start_cli_on_a_terminal(*args):
    """The command line with a terminal as its stdin (input() is served by
    the command line itself, line by line)."""
    import pty

    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "interp", *args], cwd=ROOT, stdin=follower,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=ROOT))
    os.close(follower)
    proc.terminal = leader
    assert proc.stdout.readline() == "ready\n"
    return proc


@pytest.mark.parametrize("catch", [True, False])
def test_ctrl_c_while_the_code_waits_in_input(catch):
    """Issue 21 item 15: the code's input() raises KeyboardInterrupt, the
    code's handler's output is kept and the exit status is python's (0 when
    caught, 130 with the traceback when not); it was discarded, with 130."""
    code = "print('ready', flush=True)\ninput('name? ')"
    if catch:
        code = "try:\n    %s\nexcept KeyboardInterrupt:\n    print('caught')\nprint('after')" % (
            code.replace("\n", "\n    "))
    proc = start_cli_on_a_terminal("-c", code)
    try:
        assert proc.stdout.read(6) == "name? "  # the command line now reads the terminal for input()
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        out, err = finish(proc)
    finally:
        os.close(proc.terminal)
    if catch:
        assert (proc.returncode, out, err) == (0, "caught\nafter\n", "")
    else:
        assert proc.returncode == 130 and out == ""
        assert err.startswith("Traceback") and err.endswith("KeyboardInterrupt\n") and "input(" in err


def test_code_that_swallows_ctrl_c_is_stopped_by_the_third():
    # 'waiting' is printed inside the try: a press after it is surely caught
    proc = start_cli("-c", "import os, time\nprint('ready', flush=True)\nprint(os.getpid(), flush=True)\n"
                           "while True:\n    try:\n        print('waiting', flush=True)\n        time.sleep(30)\n"
                           "    except KeyboardInterrupt:\n        pass")
    worker = int(proc.stdout.readline())
    for _ in range(3):
        assert proc.stdout.readline() == "waiting\n"
        proc.send_signal(signal.SIGINT)
    finish(proc)
    assert proc.returncode == 130
    assert wait_until(lambda: not process_exists(worker))


def test_usage_says_where_interp_options_go():
    proc = run_cli("--help")
    usage = " ".join(proc.stdout.split())
    assert proc.returncode == 0
    assert "[-c CODE | FILE | -] [ARG ...]" in usage
    assert "interp's options come before -c CODE or FILE" in usage
    proc = run_cli("--timeout", "30", "-c")
    assert proc.returncode == 2 and "-c" in proc.stderr  # -c needs its CODE


def test_usage_names_the_console_script_when_run_as_interp():
    """The `interp` console script (pyproject's [project.scripts]) names itself
    in its usage; `python -m interp` does too."""
    script = "import sys\nsys.argv[0] = sys.argv[1]\nfrom interp.__main__ import main\nmain(['--help'])"
    for argv0, program in (("/venv/bin/interp", "interp"), ("-m", "python -m interp")):
        proc = subprocess.run([sys.executable, "-c", script, argv0], cwd=ROOT, capture_output=True, text=True,
                              timeout=30, env=dict(os.environ, PYTHONPATH=ROOT))
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.startswith("usage: %s [--timeout" % program)
        assert "'%s mcp --help'" % program in " ".join(proc.stdout.split())


@pytest.mark.parametrize("package, subcommand", [("interp.server", "serve"), ("interp.mcp", "mcp")])
def test_the_front_end_packages_run_as_their_subcommands(package, subcommand):
    proc = subprocess.run([sys.executable, "-m", package, "--help"], cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: python -m interp %s " % subcommand)
