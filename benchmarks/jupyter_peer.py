"""The peer users pick today: an IPython kernel driven through jupyter_client.

Optional: when ``jupyter_client`` or ``ipykernel`` cannot be imported,
:func:`unavailable` says why and the suite prints a "skipped" line. Install
them with ``python3 -m pip install jupyter_client ipykernel`` to compare
(they are not dependencies of interp).

Each figure mirrors an interp figure: a kernel is driven the way a client
application drives it (``KernelManager`` + ``BlockingKernelClient``,
``execute_interactive`` waiting for the reply and the idle status).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import tempfile
import time
from typing import Callable, Dict, List, Optional

from .common import smaps_rollup

KERNEL_READY_TIMEOUT = 60.0
RUN_TIMEOUT = 120.0


def unavailable() -> Optional[str]:
    """None when the peer can run, else the reason it is skipped."""
    for module in ("jupyter_client", "ipykernel"):
        if importlib.util.find_spec(module) is None:
            return "%s not installed" % module
    return None


class Kernel:
    """One started IPython kernel with a blocking client on its channels."""

    def __init__(self) -> None:
        from jupyter_client import KernelManager

        self.manager = KernelManager(kernel_name="python3")
        # The kernel's own console chatter (a TCP warning) would garble the table.
        self.manager.start_kernel(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.client = None
        try:
            self.client = self.manager.client()
            self.client.start_channels()
            self.client.wait_for_ready(timeout=KERNEL_READY_TIMEOUT)
        except BaseException:
            self.close()
            raise

    def run(self, code: str, on_stream: Optional[Callable[[str, float], None]] = None) -> Dict:
        """Execute ``code``; wait for its reply and idle status. ``on_stream``
        gets each stream message's text and its arrival time."""
        def hook(msg: Dict) -> None:
            if on_stream is not None and msg["msg_type"] == "stream":
                on_stream(msg["content"]["text"], time.perf_counter())

        reply = self.client.execute_interactive(code, output_hook=hook, allow_stdin=False,
                                                timeout=RUN_TIMEOUT)
        if reply["content"]["status"] != "ok":
            raise RuntimeError("kernel run of %r: %s %s" % (code[:40], reply["content"]["status"],
                                                         reply["content"].get("ename", "")))
        return reply

    def pid(self) -> int:
        out: List[str] = []
        self.run("import os; print(os.getpid())", lambda text, _: out.append(text))
        return int("".join(out))

    def wait_reply(self, msg_id: str) -> Dict:
        deadline = time.monotonic() + RUN_TIMEOUT
        while time.monotonic() < deadline:
            msg = self.client.get_shell_msg(timeout=RUN_TIMEOUT)
            if msg["parent_header"].get("msg_id") == msg_id:
                return msg
        raise TimeoutError("no reply to %s" % msg_id)

    def wait_started(self, msg_id: str) -> None:
        """Wait until the kernel announces it is executing ``msg_id``."""
        deadline = time.monotonic() + RUN_TIMEOUT
        while time.monotonic() < deadline:
            msg = self.client.get_iopub_msg(timeout=RUN_TIMEOUT)
            if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "execute_input":
                return
        raise TimeoutError("kernel never started %s" % msg_id)

    def close(self) -> None:
        try:
            if self.client is not None:
                self.client.stop_channels()
        finally:
            self.manager.shutdown_kernel(now=True)

    def __enter__(self) -> Kernel:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class JupyterPeer:
    """Measures the Jupyter figures; :meth:`close` undoes its environment changes.

    Kernels' connection files go to a private temporary runtime directory.
    """

    def __init__(self) -> None:
        self._saved = {name: os.environ.get(name) for name in ("JUPYTER_RUNTIME_DIR",
                                                                "JUPYTER_PLATFORM_DIRS")}
        self._runtime = tempfile.TemporaryDirectory(prefix="interp-bench-jupyter-")
        os.environ["JUPYTER_RUNTIME_DIR"] = self._runtime.name
        os.environ["JUPYTER_PLATFORM_DIRS"] = "1"  # silences a migration warning

    def close(self) -> None:
        for name, value in self._saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._runtime.cleanup()

    def round_trip(self, n: int) -> List[float]:
        with Kernel() as kernel:
            for _ in range(min(20, n)):
                kernel.run("x=1")
            samples = []
            for _ in range(n):
                start = time.perf_counter()
                kernel.run("x=1")
                samples.append(time.perf_counter() - start)
            return samples

    def start_first_run(self, n: int) -> List[float]:
        samples = []
        for _ in range(n):
            start = time.perf_counter()
            with Kernel() as kernel:
                kernel.run("x=1")
                samples.append(time.perf_counter() - start)
        return samples

    def lines(self, lines: int, reps: int) -> List[float]:
        samples = []
        with Kernel() as kernel:
            kernel.run("x=1")
            for _ in range(reps):
                count = [0]

                def on_stream(text: str, _: float) -> None:
                    count[0] += text.count("\n")

                start = time.perf_counter()
                kernel.run("for i in range(%d): print(i)" % lines, on_stream)
                samples.append(time.perf_counter() - start)
                if count[0] != lines:
                    raise RuntimeError("iopub delivered %d lines, expected %d" % (count[0], lines))
        return samples

    def latency(self, lines: int) -> List[float]:
        samples: List[float] = []

        def on_stream(text: str, now: float) -> None:
            samples.extend(now - float(line) for line in text.splitlines() if line.strip())

        with Kernel() as kernel:
            kernel.run("import time")
            kernel.run("for i in range(%d):\n    print(time.perf_counter())\n    time.sleep(0.01)\n"
                       % lines, on_stream)
        return samples

    def interrupt(self, n: int, after: float) -> List[float]:
        """From ``interrupt_kernel()`` (called ``after`` s into a sleep) to the
        next execute done."""
        samples = []
        with Kernel() as kernel:
            kernel.run("import time")
            for _ in range(n):
                msg_id = kernel.client.execute("time.sleep(60)", allow_stdin=False)
                kernel.wait_started(msg_id)
                time.sleep(after)
                start = time.perf_counter()
                kernel.manager.interrupt_kernel()
                reply = kernel.wait_reply(msg_id)
                if reply["content"].get("ename") != "KeyboardInterrupt":
                    raise RuntimeError("interrupted sleep replied %r" % reply["content"].get("status"))
                kernel.run("x=1")
                samples.append(time.perf_counter() - start)
        return samples

    def restart(self, n: int) -> List[float]:
        """From ``restart_kernel(now=True)`` to the next execute done."""
        samples = []
        with Kernel() as kernel:
            kernel.run("x=1")
            for _ in range(n):
                start = time.perf_counter()
                kernel.manager.restart_kernel(now=True)
                kernel.client.wait_for_ready(timeout=KERNEL_READY_TIMEOUT)
                kernel.run("x=1")
                samples.append(time.perf_counter() - start)
        return samples

    def memory(self, count: int) -> List[Dict[str, float]]:
        """RSS and PSS of each of ``count`` idle kernels alive at once."""
        kernels: List[Kernel] = []
        try:
            for _ in range(count):
                kernels.append(Kernel())
            pids = [kernel.pid() for kernel in kernels]
            time.sleep(0.3)
            return [smaps_rollup(pid) for pid in pids]
        finally:
            for kernel in kernels:
                kernel.close()
