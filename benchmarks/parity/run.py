"""Jupyter parity on real notebooks: run the corpus in benchmarks/parity/notebooks
cell by cell in interp (one context per notebook) and in real Jupyter kernels
(nbclient + ipykernel, IPython 8 and 9, in venvs built on first use), then
print how many cells agree and how much faster interp ran the corpus.

A cell agrees when both sides give the same error status (raised or not), the
same stdout, and the same list of results and displays (main result or
display, text/plain, an image or not), once memory addresses are masked.
Only deterministic cells count: those that give the same record in two runs
of the IPython 9 kernel (timings, random numbers and the clock do not).

    python3 -m benchmarks parity [--only SUBSTRING] [--json PATH] [--examples N]

Not part of the test run: the corpus takes minutes in Jupyter.
"""

from __future__ import annotations

import argparse
import collections
import glob
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional, Tuple

from . import kernels

HERE = os.path.dirname(os.path.abspath(__file__))
NOTEBOOKS = os.path.join(HERE, "notebooks")
CELL_TIMEOUT = 120.0
IMAGE_FORMATS = ("png", "svg", "jpeg")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{6,}")

Record = Dict[str, Any]


def corpus(only: Optional[str]) -> List[str]:
    paths = sorted(glob.glob(os.path.join(NOTEBOOKS, "*", "*.ipynb")))
    return [path for path in paths if not only or only in path]


def cells_of(path: str) -> List[str]:
    with open(path, encoding="utf-8") as handle:
        return [cell["source"] for cell in json.load(handle)["cells"] if cell["cell_type"] == "code"]


def run_interp(paths: List[str]) -> Dict[str, Any]:
    """Every notebook in a fresh interp context (cwd: a fresh directory)."""
    sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))
    from interp import CodeInterpreter

    report: Dict[str, Any] = {"notebooks": {}}
    began = time.perf_counter()
    with CodeInterpreter() as ci:
        for path in paths:
            start = time.perf_counter()
            with tempfile.TemporaryDirectory(prefix="parity-interp-") as cwd:
                context = ci.create_context(cwd=cwd)
                cells = []
                try:
                    for source in cells_of(path):
                        result = ci.run_code(source, context=context, timeout=CELL_TIMEOUT)
                        cells.append({"error": result.error is not None, "stdout": result.stdout,
                                      "shown": [{"main": bool(r.is_main_result), "text": r.text,
                                                 "image": any(getattr(r, f) is not None for f in IMAGE_FORMATS)}
                                                for r in result.results]})
                finally:
                    ci.delete_context(context)
            seconds = time.perf_counter() - start
            report["notebooks"][path] = {"cells": cells, "seconds": seconds, "failed": None}
            print("%6.1fs interp %s" % (seconds, os.path.relpath(path, NOTEBOOKS)), file=sys.stderr)
    report["seconds"] = time.perf_counter() - began
    return report


def run_kernel(label: str, paths: List[str]) -> Dict[str, Any]:
    python = kernels.ensure(label)
    with tempfile.TemporaryDirectory(prefix="parity-") as scratch:
        out = os.path.join(scratch, "kernel.json")
        process = subprocess.Popen([python, os.path.join(HERE, "kernel_side.py"), out, *paths],
                                   stderr=subprocess.PIPE, text=True)
        assert process.stderr is not None
        for line in process.stderr:  # the harness's progress, not the kernels' chatter
            if not line.startswith("[IPKernelApp]"):
                sys.stderr.write(line)
        if process.wait() != 0:
            raise RuntimeError("the %s kernel run failed (status %d)" % (label, process.returncode))
        with open(out, encoding="utf-8") as handle:
            report: Dict[str, Any] = json.load(handle)
    return report


def normalised(record: Record) -> Record:
    def mask(text: Optional[str]) -> Optional[str]:
        return None if text is None else _ADDRESS.sub("0x...", text)
    stdout = record["stdout"].replace("\r\n", "\n")  # a kernel runs !cmd on a pty
    return {"error": record["error"], "stdout": mask(stdout),
            "shown": [{"main": s["main"], "text": mask(s["text"]), "image": s["image"]} for s in record["shown"]]}


def cause(mine: Record, theirs: Record) -> str:
    """Why two normalised records differ (the first field that does)."""
    if mine["error"] != theirs["error"]:
        return "error status (%s in interp)" % ("raised" if mine["error"] else "no error")
    if mine["stdout"] != theirs["stdout"]:
        return "stdout"
    if len(mine["shown"]) != len(theirs["shown"]):
        return "number of results/displays"
    for a, b in zip(mine["shown"], theirs["shown"]):
        if a["image"] != b["image"]:
            return "image present"
        if a["text"] != b["text"]:
            return "text/plain"
        if a["main"] != b["main"]:
            return "result vs display"
    return "?"


def compare(interp: Dict[str, Any], kernel: Dict[str, Any], stable: Dict[Tuple[str, int], bool]
            ) -> Tuple[int, int, List[Dict[str, Any]]]:
    agree, total, differences = 0, 0, []
    for path, theirs in kernel["notebooks"].items():
        mine = interp["notebooks"].get(path)
        if mine is None or theirs.get("failed"):
            continue
        for index, (a, b) in enumerate(zip(mine["cells"], theirs["cells"])):
            if not stable.get((path, index), False):
                continue
            total += 1
            a, b = normalised(a), normalised(b)
            if a == b:
                agree += 1
            else:
                differences.append({"notebook": os.path.relpath(path, NOTEBOOKS), "cell": index,
                                    "cause": cause(a, b), "interp": a, "jupyter": b})
    return agree, total, differences


def stable_cells(first: Dict[str, Any], second: Dict[str, Any]) -> Dict[Tuple[str, int], bool]:
    stable = {}
    for path, one in first["notebooks"].items():
        two = second["notebooks"].get(path)
        if two is None or one.get("failed") or two.get("failed"):
            continue
        for index, (a, b) in enumerate(zip(one["cells"], two["cells"])):
            stable[(path, index)] = normalised(a) == normalised(b)
    return stable


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m benchmarks parity", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="only the notebooks whose path contains this")
    parser.add_argument("--json", default=os.path.join(HERE, "..", "results", "parity.json"),
                        help="where to write every record and difference")
    parser.add_argument("--examples", type=int, default=3, help="examples printed per cause")
    parser.add_argument("--reuse-kernels", action="store_true",
                        help="reuse the kernel runs saved by the last run (only interp runs again)")
    parser.add_argument("--kernel-run", metavar="NAME",
                        help="only run and save one kernel run (ipython8, ipython9, ipython9-again)")
    parser.add_argument("--kernels", default=",".join(kernels.IPYTHONS), help="labels of the kernels to compare")
    args = parser.parse_args(argv)
    paths = corpus(args.only)
    if not paths:
        print("no notebooks match", file=sys.stderr)
        return 1
    labels = [label for label in args.kernels.split(",") if label]
    saved = os.path.join(os.path.dirname(os.path.abspath(args.json)), "parity-kernels")

    def kernel_run(label: str, name: str) -> Dict[str, Any]:
        """A kernel run of the corpus, or (--reuse-kernels) the one saved last time."""
        path = os.path.join(saved, name + ".json")
        if args.reuse_kernels and os.path.exists(path):
            with open(path, encoding="utf-8") as handle:
                report: Dict[str, Any] = json.load(handle)
            if set(paths) <= set(report["notebooks"]):
                report["notebooks"] = {key: report["notebooks"][key] for key in paths}
                report["seconds"] = sum(report["notebooks"][key]["seconds"] for key in paths)
                return report
        print("== %s" % name, file=sys.stderr)
        report = run_kernel(label, paths)
        os.makedirs(saved, exist_ok=True)
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(report, handle)
        return report

    if args.kernel_run:  # one kernel run, saved for a later --reuse-kernels (runs can go in parallel)
        label = args.kernel_run.replace("-again", "")
        kernel_run(label, args.kernel_run)
        return 0
    runs = {label: kernel_run(label, label) for label in labels}
    again = kernel_run(labels[-1], labels[-1] + "-again")  # to find the deterministic cells
    print("== interp", file=sys.stderr)
    mine = run_interp(paths)
    stable = stable_cells(runs[labels[-1]], again)
    cells = sum(len(cells_of(path)) for path in paths)
    print("corpus: %d notebooks, %d code cells, %d deterministic in Jupyter" % (
        len(paths), cells, sum(stable.values())))
    summary: Dict[str, Any] = {"notebooks": len(paths), "cells": cells, "deterministic": sum(stable.values()),
                               "kernels": {}}
    for label in labels:
        agree, total, differences = compare(mine, runs[label], stable)
        ratio = runs[label]["seconds"] / mine["seconds"] if mine["seconds"] else float("nan")
        print("IPython %s: %d/%d cells agree (%.1f%%); Jupyter %.1f s, interp %.1f s: interp %.2fx faster" % (
            runs[label].get("ipython", "?"), agree, total, 100.0 * agree / max(total, 1),
            runs[label]["seconds"], mine["seconds"], ratio))
        by_cause = collections.Counter(difference["cause"] for difference in differences)
        for name, count in by_cause.most_common():
            print("  %4d  %s" % (count, name))
            shown = [d for d in differences if d["cause"] == name][:args.examples]
            for difference in shown:
                print("        %s cell %d" % (difference["notebook"], difference["cell"]))
        summary["kernels"][label] = {"ipython": runs[label].get("ipython"), "agree": agree, "total": total,
                                     "jupyter_seconds": runs[label]["seconds"], "interp_seconds": mine["seconds"],
                                     "speed_ratio": ratio, "by_cause": dict(by_cause), "differences": differences}
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w", encoding="utf-8") as handle:
        json.dump(summary, handle, indent=1)
    print("details: %s" % os.path.abspath(args.json))
    return 0
