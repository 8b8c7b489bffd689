"""Shared fixtures. Every test runs under a time limit so a stuck worker
fails that test instead of hanging the run: SIGALRM raises in the test's
thread (``@pytest.mark.limit(seconds)`` overrides the default), and a
faulthandler watchdog dumps all stacks and exits if even that is ignored."""

from __future__ import annotations

import faulthandler
import os
import signal
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from interp import CodeInterpreter

from helpers import worker_processes_of

DEFAULT_LIMIT = 60.0


class TestTimeLimitExceeded(Exception):
    pass


def pytest_configure(config):
    config.addinivalue_line("markers", "limit(seconds): time limit for one test (default 60 s)")


@pytest.fixture(autouse=True)
def _time_limit(request):
    marker = request.node.get_closest_marker("limit")
    limit = float(marker.args[0]) if marker else DEFAULT_LIMIT

    def expire(signum, frame):
        raise TestTimeLimitExceeded("test exceeded its %gs limit" % limit)

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, limit)
    faulthandler.dump_traceback_later(limit + 60, exit=True)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        faulthandler.cancel_dump_traceback_later()


@pytest.fixture
def ci(tmp_path):
    """A CodeInterpreter rooted in a temporary directory; on teardown it is
    closed and must leave no worker process behind."""
    interpreter = CodeInterpreter(cwd=str(tmp_path))
    try:
        yield interpreter
    finally:
        interpreter.close()
        assert worker_processes_of(os.getpid()) == []
