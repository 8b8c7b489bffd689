"""Rebuild the parity corpus from local git mirrors of its repositories:
``python3 benchmarks/parity/build_corpus.py MIRRORS`` where ``MIRRORS/<owner>+<name>/repo``
is a git directory of each repository in SOURCES. Keeps the code cells only,
without outputs, and records where each notebook came from (see notebooks/SOURCES.md)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from typing import Any, Dict, List

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "notebooks")
#: (mirror, folder, the notebooks kept, licence of what is kept)
SOURCES = [
    ("jakevdp+PythonDataScienceHandbook", "pdsh", r"^notebooks/0[1-4]\.\d\d-.*\.ipynb$",
     "MIT (code; LICENSE-CODE); only code cells are kept"),
    ("jakevdp+WhirlwindTourOfPython", "whirlwind", r"^\d\d-.*\.ipynb$", "CC0 1.0"),
    ("jrjohansson+scientific-python-lectures", "lectures", r"^Lecture-[1-5]-.*\.ipynb$",
     "CC BY 3.0 (code cells kept, outputs stripped: a modification)"),
    ("ageron+handson-ml2", "handson", r"^(tools_.*|math_linear_algebra)\.ipynb$", "Apache-2.0"),
]
#: Notebooks of prose and keyboard shortcuts: nothing to run.
SKIP = {"01.00-IPython-Beyond-Normal-Python.ipynb", "01.01-Help-And-Documentation.ipynb",
        "01.02-Shell-Keyboard-Shortcuts.ipynb", "01.08-More-IPython-Resources.ipynb",
        "03.13-Further-Resources.ipynb", "04.15-Further-Resources.ipynb"}


def git(directory: str, *args: str) -> str:
    return subprocess.run(["git", "-C", directory, *args], capture_output=True, text=True, check=True).stdout


def code_cells(notebook: Dict[str, Any]) -> List[Dict[str, Any]]:
    cells: List[Dict[str, Any]] = []
    for cell in notebook.get("cells", []):
        source = cell.get("source", "")
        source = source if isinstance(source, str) else "".join(source)
        if cell.get("cell_type") == "code" and source.strip():
            cells.append({"cell_type": "code", "execution_count": None, "id": "cell-%d" % len(cells),
                          "metadata": {}, "outputs": [], "source": source})
    return cells


def main(mirrors: str) -> None:
    for mirror, folder, pattern, licence in SOURCES:
        directory = os.path.join(mirrors, mirror, "repo")
        commit = git(directory, "rev-parse", "HEAD").strip()
        kept = 0
        for name in git(directory, "ls-tree", "-r", "--name-only", "HEAD").splitlines():
            if not re.match(pattern, name) or os.path.basename(name) in SKIP:
                continue
            cells = code_cells(json.loads(git(directory, "show", "HEAD:" + name)))
            if not cells:
                continue
            source = {"repository": mirror.replace("+", "/"), "path": name, "commit": commit, "licence": licence}
            kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
            notebook = {"cells": cells, "metadata": {"kernelspec": kernelspec, "interp_source": source},
                        "nbformat": 4, "nbformat_minor": 5}
            os.makedirs(os.path.join(OUT, folder), exist_ok=True)
            with open(os.path.join(OUT, folder, os.path.basename(name)), "w", encoding="utf-8") as handle:
                json.dump(notebook, handle, indent=1, sort_keys=True)
                handle.write("\n")
            kept += 1
        print("%-45s %s %3d notebooks  %s" % (mirror.replace("+", "/"), commit[:12], kept, licence))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/work/.mirror")
