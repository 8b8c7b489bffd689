"""Measures the memory of a 200 MiB upload and download through the remote
client (issue 23): a ``python -m interp serve`` subprocess and a client
subprocess, each one's peak RSS (VmHWM) read before and after the transfers.
Used by tests/test_files_remote.py (unsandboxed) and
tests/sandbox/test_sandbox_files_remote.py (sandboxed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Dict

from remote_helpers import ROOT, ProcessServer

SIZE = 200 * 2**20
BOUND = 64 * 2**20

CLIENT = r"""
import json, os, sys, time
from interp import RemoteCodeInterpreter

def peak():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))

url, local, back, size = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
block = os.urandom(1 << 20)
with open(local, "wb") as file:
    for _ in range(size >> 20):
        file.write(block)
with RemoteCodeInterpreter(url, io_timeout=120) as ci:
    ci.fs.upload_file(b"warm", "warm")  # connections and imports in place before the baseline
    ci.fs.download_file("warm")
    before = peak()
    started = time.monotonic()
    ci.fs.upload_file(local, "big.bin")
    uploaded = time.monotonic()
    info = ci.fs.get_file_info("big.bin")
    ci.fs.download_file("big.bin", back)
    downloaded = time.monotonic()
    after = peak()
same = os.path.getsize(back) == size and all(
    a == b for a, b in zip(iter(lambda f=open(local, "rb"): f.read(1 << 20), b""),
                           iter(lambda f=open(back, "rb"): f.read(1 << 20), b"")))
print(json.dumps({"before": before, "after": after, "size": info.size, "same": same,
                  "up": uploaded - started, "down": downloaded - uploaded}))
"""


def peak_of(pid: int) -> int:
    with open("/proc/%d/status" % pid) as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))


def measure(tmp_path, sandboxed: bool = False) -> Dict[str, int]:
    """Growth of the client's and the server's peak RSS over a 200 MiB upload
    and download (streamed from and to local files), in bytes."""
    root = tmp_path / "root"
    root.mkdir()
    serve_args = ["--sandbox", "--workspace", str(root)] if sandboxed else ["--cwd", str(root)]
    server = ProcessServer(str(tmp_path / "server.log"), *serve_args)
    try:
        baseline = None
        client = subprocess.Popen([sys.executable, "-c", CLIENT, server.url, str(tmp_path / "local.bin"),
                                   str(tmp_path / "back.bin"), str(SIZE)], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, env=dict(os.environ, PYTHONPATH=ROOT))
        try:
            baseline_ready = False
            # the server's baseline: after its start (the default context runs); the warm-up
            # requests are small, so reading it now or after them differs by a few KiB
            baseline = peak_of(server.proc.pid)
            baseline_ready = True
            out, err = client.communicate(timeout=240)
        finally:
            if client.poll() is None:
                client.kill()
                client.wait()
        assert baseline_ready and client.returncode == 0, err.decode(errors="replace")
        result = json.loads(out)
        assert result["same"] and result["size"] == SIZE, result
        growth = {"client": result["after"] - result["before"], "server": peak_of(server.proc.pid) - baseline}
        print("peak RSS growth over 200 MiB up and down (MiB): client %.1f, server %.1f; "
              "upload %.2f s, download %.2f s" % (growth["client"] / 2**20, growth["server"] / 2**20,
                                                  result["up"], result["down"]))
        return growth
    finally:
        server.stop()
        for name in ("local.bin", "back.bin"):
            try:
                os.unlink(tmp_path / name)
            except FileNotFoundError:
                pass
        for name in os.listdir(root):
            os.unlink(root / name)
