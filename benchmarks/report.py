"""The table and the JSON file of one run."""

from __future__ import annotations

import json
import os
from typing import Any, Dict, Optional, TextIO

from .common import Figure, Results

COLUMNS = "%-54s %9s %9s %9s  %-14s %-16s %-10s %s"


def fmt(value: float, unit: str) -> str:
    if unit == "s":
        magnitude = abs(value)
        if magnitude < 1e-3:
            return "%.1fus" % (value * 1e6)
        if magnitude < 1.0:
            return "%.2fms" % (value * 1e3)
        return "%.2fs" % value
    if unit == "MiB":
        return "%.1fMiB" % value
    if unit == "runs/s":
        return "%.0f/s" % value
    return "%g" % value


def fmt_ratio(ratio: Optional[float]) -> str:
    if ratio is None:
        return ""
    if ratio >= 100:
        return "%.0fx" % ratio
    if ratio >= 10:
        return "%.1fx" % ratio
    if ratio >= 0.1:
        return "%.2fx" % ratio
    return "%.3fx" % ratio


def row(results: Results, figure: Figure) -> str:
    stats = figure.stats
    floor = ""
    floor_ratio = results.ratio(figure, figure.floor)
    if floor_ratio is not None:
        floor = "%s %s" % (fmt_ratio(floor_ratio), results.figures[figure.floor].short)
    peer = fmt_ratio(results.ratio(figure, figure.peer))
    verdict = {True: "PASS", False: "MISS", None: ""}[results.verdict(figure)]
    target = ",".join(t.text for t in figure.targets)
    return (COLUMNS % (figure.label[:54], fmt(stats["median"], figure.unit), fmt(stats["p10"], figure.unit),
                       fmt(stats["p90"], figure.unit), target, floor, peer, verdict)).rstrip()


def print_table(results: Results, out: TextIO) -> None:
    print(COLUMNS % ("figure", "median", "p10", "p90", "target", "vs floor", "vs jupyter", "verdict"),
          file=out)
    sections = [("interp", "interp"), ("floor", "floors (same run)"), ("jupyter", "jupyter peer (same run)")]
    for group, title in sections:
        figures = [f for f in results.figures.values() if f.group == group]
        if not figures:
            continue
        if group != "interp":
            print("-- %s --" % title, file=out)
        for figure in figures:
            print(row(results, figure), file=out)
    for line in results.skipped:
        print(line, file=out)
    for line in results.notes:
        print("note: " + line, file=out)
    for line in results.errors:
        print("ERROR: " + line, file=out)
    verdicts = [results.verdict(f) for f in results.figures.values()]
    print("targets: %d PASS, %d MISS" % (verdicts.count(True), verdicts.count(False)), file=out)


def as_json(results: Results, meta: Dict[str, Any]) -> Dict[str, Any]:
    figures: Dict[str, Any] = {}
    for key, figure in results.figures.items():
        verdict = results.verdict(figure)
        figures[key] = {
            "label": figure.label,
            "group": figure.group,
            "unit": figure.unit,
            **figure.stats,
            "targets": [{"kind": t.kind, "limit": t.limit, "text": t.text} for t in figure.targets],
            "verdict": None if verdict is None else ("PASS" if verdict else "MISS"),
            "floor": figure.floor if figure.floor in results.figures else None,
            "floor_ratio": results.ratio(figure, figure.floor),
            "peer": figure.peer if figure.peer in results.figures else None,
            "jupyter_ratio": results.ratio(figure, figure.peer),
            "note": figure.note,
            "samples": figure.samples,
        }
    return {"meta": meta, "figures": figures, "skipped": results.skipped, "notes": results.notes,
            "errors": results.errors}


def write_json(results: Results, meta: Dict[str, Any], path: str) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as handle:
        json.dump(as_json(results, meta), handle, indent=1)
        handle.write("\n")
    os.replace(tmp, path)
