"""Run notebooks in a real Jupyter kernel (nbclient + ipykernel) and print
what each cell gave, as JSON. Runs inside a kernel venv (see kernels.py):
``python kernel_side.py OUT.json NOTEBOOK...``; each notebook runs in a fresh
kernel, in a fresh empty directory."""

from __future__ import annotations

import json
import sys
import tempfile
import time

import nbformat
from nbclient import NotebookClient

CELL_TIMEOUT = 120
IMAGES = ("image/png", "image/svg+xml", "image/jpeg")


def record(outputs):
    error, stdout, shown = False, [], []
    for output in outputs:
        kind = output.get("output_type")
        if kind == "error":
            error = True
        elif kind == "stream" and output.get("name") == "stdout":
            stdout.append(output.get("text", ""))
        elif kind in ("execute_result", "display_data"):
            data = output.get("data", {})
            shown.append({"main": kind == "execute_result", "text": data.get("text/plain"),
                          "image": any(mime in data for mime in IMAGES)})
    return {"error": error, "stdout": "".join(stdout), "shown": shown}


def main(out_path, paths):
    report = {"notebooks": {}, "seconds": 0.0}
    began = time.perf_counter()
    for path in paths:
        notebook = nbformat.read(path, as_version=4)
        with tempfile.TemporaryDirectory(prefix="parity-kernel-") as cwd:
            client = NotebookClient(notebook, timeout=CELL_TIMEOUT, kernel_name="python3", allow_errors=True,
                                    resources={"metadata": {"path": cwd}})
            start = time.perf_counter()
            try:
                client.execute()
                failed = None
            except Exception as exc:  # a dead kernel, a cell past its timeout
                failed = "%s: %s" % (type(exc).__name__, str(exc)[:300])
            seconds = time.perf_counter() - start
        cells = [record(cell.get("outputs", [])) for cell in notebook.cells]
        report["notebooks"][path] = {"cells": cells, "seconds": seconds, "failed": failed}
        print("%6.1fs %s" % (seconds, path), file=sys.stderr)
    report["seconds"] = time.perf_counter() - began
    import IPython
    report["ipython"] = IPython.__version__
    with open(out_path, "w") as handle:
        json.dump(report, handle)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
