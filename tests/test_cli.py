"""``python -m interp`` from the repo root of a checkout, with no install."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_cli(*args, stdin=None, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "interp", *args], input=stdin, cwd=cwd,
                          capture_output=True, text=True, timeout=60)


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
    proc = run_cli(str(script), "--cwd", str(tmp_path))
    assert proc.returncode == 1
    assert proc.stdout == "%s\n" % tmp_path
    assert 'File "%s", line 4, in f' % script in proc.stderr
    assert "raise ValueError('boom')" in proc.stderr


def test_piped_stdin_runs_as_a_script():
    proc = run_cli(stdin="x = 6\nprint(x * 7)\n")
    assert (proc.returncode, proc.stdout) == (0, "42\n")
    assert run_cli("-", stdin="print('dash')").stdout == "dash\n"


def test_timeout_exit_status():
    proc = run_cli("--timeout", "0.5", "-c", "import time\nprint('start', flush=True)\ntime.sleep(30)")
    assert proc.returncode == 124
    assert proc.stdout == "start\n"
    assert "timeout" in proc.stderr


def test_worker_death_and_bad_usage():
    proc = run_cli("-c", "import os; os._exit(7)")
    assert proc.returncode == 1 and "status 7" in proc.stderr
    proc = run_cli("/no/such/file.py")
    assert proc.returncode == 2 and "cannot read" in proc.stderr
    proc = run_cli("--timeout", "-1", "-c", "1")
    assert proc.returncode == 1 and "timeout" in proc.stderr


def test_sys_exit_status_is_an_error():
    proc = run_cli("-c", "import sys; sys.exit(0)")
    assert proc.returncode == 0
    proc = run_cli("-c", "import sys; sys.exit(4)")
    assert (proc.returncode, proc.stderr) == (4, "")
    proc = run_cli("-c", "import sys; sys.exit('bye')")
    assert (proc.returncode, proc.stderr) == (1, "bye\n")
