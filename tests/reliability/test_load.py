"""Load (issue 5, item 10) and per-run environment isolation under load.
The longer version with figures is ``python3 -m benchmarks.soak``."""

from __future__ import annotations

import resource
import threading

import pytest

from helpers import open_fds
from interp import CodeInterpreter

LINES = 20


@pytest.mark.limit(170)
def test_8_threads_4_contexts_500_runs_every_line_once_in_order(ci):
    contexts = [ci.create_context() for _ in range(4)]
    for ctx in contexts:
        ci.run_code("import os", context=ctx)
    failures = []

    def work(thread):
        for n in range(500):
            for c, ctx in enumerate(contexts):
                tag = "t%d-c%d-r%d" % (thread, c, n)
                lines = []
                code = ("for i in range(%d):\n    print(%r, i)\n"
                        "print('env', os.environ.get('RUN_TAG'), os.environ.get('LEAK'))") % (LINES, tag)
                result = ci.run_code(code, context=ctx, envs={"RUN_TAG": tag},
                                     on_stdout=lambda m: lines.append(m.output))
                expected = ["%s %d\n" % (tag, i) for i in range(LINES)] + ["env %s None\n" % tag]
                if lines != expected or result.stdout != "".join(expected) or result.error:
                    failures.append((tag, lines[:3], result.error))
                    return
                if n == 250:  # what a run with envs changes in os.environ is undone afterwards
                    ci.run_code("os.environ['LEAK'] = 'x'", context=ctx, envs={"OTHER": "1"})

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(160)
    assert not any(thread.is_alive() for thread in threads)
    assert failures == []


@pytest.mark.limit(120)
def test_10000_runs_leave_parent_flat(tmp_path):
    with CodeInterpreter(cwd=str(tmp_path)) as ci:
        for _ in range(500):
            ci.run_code("x = 1\nprint(x)")
        fds, threads = open_fds(), threading.active_count()
        rss_before = _rss_kib()
        for i in range(10_000):
            assert ci.run_code("x = %d\nprint(x)" % i).stdout == "%d\n" % i
        assert open_fds() == fds
        assert threading.active_count() == threads
        assert _rss_kib() - rss_before < 20 * 1024  # no per-run growth (generous: 2 KiB a run)


def _rss_kib() -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
