"""What a new user meets in the first hour (issue 19): one set of defaults
for the library, the CLI and ``mcp``; every command-line mistake is one line
on stderr, never a traceback; limits too low to start a worker are refused
when the interpreter is made."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from interp import AsyncCodeInterpreter, CodeInterpreter, WorkerDiedError, engine
from interp.__main__ import _parser as cli_parser
from interp.commands import DEFAULT_TIMEOUT
from interp.engine import MIN_MEMORY_LIMIT
from interp.mcp.stdio import _parser as mcp_parser
from interp.process import SpawnLauncher

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "interp", *args], cwd=ROOT, stdin=subprocess.DEVNULL,
                          env=dict(os.environ, PYTHONPATH=ROOT), capture_output=True, text=True, timeout=60)


def test_one_default_timeout_for_the_library_the_cli_and_mcp():
    assert DEFAULT_TIMEOUT == 600
    assert cli_parser().parse_args(["-c", "1"]).timeout == DEFAULT_TIMEOUT
    assert mcp_parser().parse_args([]).timeout == DEFAULT_TIMEOUT
    assert cli_parser().parse_args(["--timeout", "0", "-c", "1"]).timeout == 0  # 0: no limit
    for parser in (cli_parser(), mcp_parser()):
        assert "default 600; 0: no limit" in " ".join(parser.format_help().split())


MISTAKES = [
    (("--timeout", "abc", "-c", "1"), "--timeout: expected a number of seconds, not 'abc'"),
    (("--timeout", "-1", "-c", "1"), "expected a number of seconds >= 0 (0: no limit), not '-1'"),
    (("--timeout", "nan", "-c", "1"), "not 'nan'"),
    (("--bogus", "-c", "1"), "unrecognized arguments: --bogus"),
    (("--timeout",), "--timeout: expected one argument"),
    (("/no/such/file.py",), "cannot read /no/such/file.py"),
    (("--workspace", "x", "-c", "1"), "--workspace and --network go with --sandbox"),
    (("mcp", "--timeout", "-5"), "not '-5'"),
    (("mcp", "--bogus"), "unrecognized arguments: --bogus"),
    (("mcp", "--output-limit", "x"), "--output-limit: invalid int value: 'x'"),
    (("mcp", "--output-limit", "-1"), "--output-limit must be from 0 to"),
    (("mcp", "--task-after", "nan"), "--task-after must be >= 0"),
    (("mcp", "--network"), "--workspace and --network go with --sandbox"),
]


@pytest.mark.parametrize(("args", "says"), MISTAKES)
def test_every_command_line_mistake_is_one_line(args, says):
    proc = run_cli(*args)
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert says in proc.stderr
    program = "python -m interp mcp" if args[0] == "mcp" else "python -m interp"
    assert proc.stderr.startswith(program + ": ") and proc.stderr.endswith("(see '%s --help')\n" % program)


def test_runtime_failures_are_one_line_too(tmp_path):
    proc = run_cli("--cwd", str(tmp_path / "missing"), "-c", "1")
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1 and "does not exist" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "interp", "mcp", "--cwd", str(tmp_path / "missing")], cwd=ROOT,
                          stdin=subprocess.DEVNULL, env=dict(os.environ, PYTHONPATH=ROOT), capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "does not exist" in proc.stderr


def test_help_shows_the_subcommands_in_its_usage():
    usage = run_cli("--help").stdout.split("\n\n")[0]
    assert "python -m interp mcp" in usage and "python -m interp serve" in usage


def test_a_cli_timeout_says_what_happened_not_that_state_was_kept():
    proc = run_cli("--timeout", "0.5", "-c", "import time\ntime.sleep(30)")
    assert (proc.returncode, proc.stderr) == (124, "interp: timed out after 0.5 s (interrupted)\n")
    proc = run_cli("--timeout", "0.5", "-c", "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                                             "time.sleep(30)")
    assert proc.returncode == 124
    assert proc.stderr == "interp: timed out after 0.5 s (killed: it ignored the interrupt for 2 s)\n"


@pytest.mark.parametrize("limit", [1, 1000, 64 << 20, MIN_MEMORY_LIMIT - 1])
def test_a_memory_limit_too_low_to_start_a_worker_is_refused_at_construction(limit):
    for make in (CodeInterpreter, AsyncCodeInterpreter):
        with pytest.raises(ValueError, match="memory_limit=%d is too low to start a worker.*at least %d"
                                             % (limit, MIN_MEMORY_LIMIT)):
            make(memory_limit=limit)


@pytest.mark.parametrize("launcher", ["zygote", "spawn"])
def test_the_least_memory_limit_accepted_runs_code(tmp_path, launcher):
    # a spawned worker maps about 95 MB, a forked one about 30 MB; both need 64 MiB of room on top
    options = {"launcher": SpawnLauncher()} if launcher == "spawn" else {}
    with CodeInterpreter(cwd=str(tmp_path), memory_limit=MIN_MEMORY_LIMIT, **options) as ci:
        assert ci.run_code("print(sum(range(10)))").stdout == "45\n"


def test_a_worker_that_refuses_its_limit_says_the_code_did_not_run(tmp_path, monkeypatch):
    """Past the floor, a worker may still find the limit too low (a bigger Python): the run
    says why and that nothing ran, not that a fresh worker has been started."""
    monkeypatch.setattr(engine, "MIN_MEMORY_LIMIT", 1)
    with CodeInterpreter(cwd=str(tmp_path), memory_limit=16 << 20) as ci:
        for attempt in range(3):
            if attempt == 2:  # the replacement has surely refused its setup by now: seen while idle, the same
                time.sleep(0.5)
            with pytest.raises(WorkerDiedError) as info:
                ci.run_code("print('never')")
            message = str(info.value)
            assert "could not start: the context could not be set up: memory_limit=16777216 leaves no room" \
                in message and message.endswith("; the code did not run"), message
            assert info.value.result.stdout == ""


def test_list_contexts_leaves_out_the_default_context_as_documented(tmp_path):
    for method in (CodeInterpreter.list_contexts, AsyncCodeInterpreter.list_contexts):
        assert "is never listed" in " ".join((method.__doc__ or "").split())
    with CodeInterpreter(cwd=str(tmp_path)) as ci:
        ci.run_code("x = 1")
        assert ci.list_contexts() == []
        ctx = ci.create_context()
        assert [c.id for c in ci.list_contexts()] == [ctx.id]
