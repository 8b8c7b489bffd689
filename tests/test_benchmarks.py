"""Smoke test of the benchmark suite: its cheapest path runs, prints the
table and writes JSON, both as ``python -m benchmarks`` and as
``python benchmarks/run.py``. Keeps the suite from rotting; measures nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.limit(40)
@pytest.mark.parametrize("entry", [["-m", "benchmarks"], [os.path.join("benchmarks", "run.py")]])
def test_round_trip_smoke(tmp_path, entry):
    out = tmp_path / "figures.json"
    proc = subprocess.run(
        [sys.executable, *entry, "--only", "round_trip", "--repeat-scale", "0.01", "--no-peer",
         "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=20)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "run_code('x=1') round trip" in proc.stdout
    assert "jupyter peer: skipped" in proc.stdout
    data = json.loads(out.read_text())
    sync = data["figures"]["round_trip.sync"]
    assert sync["median"] > 0 and sync["n"] >= 10
    assert sync["floor"] == "floor.echo_plus_run" and sync["floor_ratio"] > 0
    assert sync["verdict"] in ("PASS", "MISS")
    assert data["errors"] == []


@pytest.mark.limit(60)
def test_remote_smoke(tmp_path):
    out = tmp_path / "figures.json"
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "--only", "remote", "--repeat-scale", "0.01",
                           "--no-peer", "--json", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=50)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads(out.read_text())
    trip = data["figures"]["remote.round_trip"]
    assert trip["floor"] == "floor.local_plus_http_echo" and trip["floor_ratio"] > 0 and trip["n"] >= 10
    assert {"remote.soak_threads", "remote.soak_rss", "remote.soak_rss_after"} <= set(data["figures"])
    assert data["errors"] == []


def test_unknown_benchmark_is_refused():
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "--only", "nope"],
                          cwd=ROOT, capture_output=True, text=True, timeout=20)
    assert proc.returncode == 2
    assert "unknown benchmark" in proc.stderr
