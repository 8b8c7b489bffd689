"""matplotlib figures as data: the chart schema of E2B's code interpreter.

:func:`figure_chart` reads a Figure that user code made (so matplotlib is
already imported: this module imports nothing of it) and describes it as a
JSON object: ``line``, ``scatter``, ``bar``, ``pie``, ``box_and_whisker``,
``superchart`` (one chart per Axes) or ``unknown``, with its title, axis
labels and units, ticks, tick labels, scales and elements. Numbers that are
not finite become null. docs/charts-and-tables.md is the reference.
"""

from __future__ import annotations

import datetime
import math
import re
import sys
from decimal import Decimal
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

Chart = Dict[str, Any]

#: At most this many points (or bars, wedges, boxes) in one chart; beyond it
#: every k-th point is kept and the chart says ``"truncated": true``.
MAX_POINTS = 20_000

#: "Time (s)" -> "s", "Level [dB]" -> "dB"
_UNIT = re.compile(r"\s\(([^()]*)\)|\[([^\[\]]*)\]")


class _Budget:
    """How many points each element of a chart keeps: all of them if the
    chart holds at most ``limit``, else a share in proportion to its size
    (at least one), every k-th point."""

    def __init__(self, limit: int, total: int) -> None:
        self.limit = limit
        self.total = total
        self.truncated = False

    def take(self, items: Sequence[Any]) -> Sequence[Any]:
        if self.total <= self.limit or not len(items):
            return items
        keep = max(1, self.limit * len(items) // self.total)
        if keep >= len(items):
            return items
        self.truncated = True
        return items[::math.ceil(len(items) / keep)]


def figure_chart(figure: Any, limit: int = MAX_POINTS) -> Optional[Chart]:
    """``figure`` as a chart, or None if none of its Axes holds data."""
    axes = [ax for ax in figure.get_axes() if getattr(ax, "_colorbar", None) is None]  # a colorbar is no chart
    if not any(_has_data(ax) for ax in axes):
        return None
    budget = _Budget(limit, sum(_size(ax) for ax in axes))
    if len(axes) == 1:
        chart = _axes_chart(axes[0], budget)
    else:
        getter = getattr(figure, "get_suptitle", None)
        title = getter() if callable(getter) else getattr(getattr(figure, "_suptitle", None), "get_text", str)()
        chart = {"type": "superchart", "title": _text(title),
                 "elements": [_axes_chart(ax, budget) for ax in axes]}
    if budget.truncated:
        chart["truncated"] = True
    return chart


def _has_data(ax: Any) -> bool:
    try:
        return bool(ax.has_data())
    except Exception:
        return False


def _size(ax: Any) -> int:
    """How many points the Axes' artists hold, roughly (to share the budget)."""
    size = len(ax.patches)
    for line in ax.lines:
        size += len(line.get_xdata(orig=False))
    for collection in ax.collections:
        size += len(collection.get_offsets())
    return size


def _axes_chart(ax: Any, budget: _Budget) -> Chart:
    """One Axes as a chart; ``unknown`` when it cannot be understood."""
    try:
        kind = _kind(ax)
        if kind == "line":
            return _point_chart(ax, "line", _line_elements(ax, budget))
        if kind == "scatter":
            return _point_chart(ax, "scatter", _scatter_elements(ax, budget))
        if kind == "bar":
            return _bar_chart(ax, budget)
        if kind == "pie":
            return _pie_chart(ax, budget)
        if kind == "box_and_whisker":
            boxes = _box_chart(ax)
            if boxes is not None:
                return boxes
            if not ax.patches:  # segments and markers that are no boxes: lines after all
                return _point_chart(ax, "line", _line_elements(ax, budget))
    except Exception:
        pass
    return _unknown(ax)


def _unknown(ax: Any) -> Chart:
    try:
        title = _text(ax.get_title())
    except Exception:
        title = None
    return {"type": "unknown", "title": title, "elements": []}


# -- what kind of chart an Axes is ----------------------------------------------------


def _kind(ax: Any) -> str:
    if getattr(ax, "name", "rectilinear") != "rectilinear" or len(ax.images) or len(ax.tables):
        return "unknown"  # 3D, polar, images, tables
    lines = [line for line in ax.lines if not _is_reference_line(ax, line)]
    patches = list(ax.patches)
    collections = [c for c in ax.collections if type(c).__name__ != "LineCollection"]
    if len(collections) == len(ax.collections) or not (collections or patches or lines):
        collections = list(ax.collections)  # else the line collections are error bars: not data
    names = {type(patch).__name__ for patch in patches}
    if not patches and not collections and lines:
        return "box_and_whisker" if _looks_like_boxes(lines) else "line"
    if not patches and not lines and collections:
        return "scatter" if all(type(c).__name__ == "PathCollection" for c in collections) else "unknown"
    if patches and not collections:
        if names == {"PathPatch"} and _looks_like_boxes(lines):
            return "box_and_whisker"
        if names == {"Rectangle"} and _bar_containers(ax) and \
                all(_is_segment(line) or _is_markers(line) for line in lines):  # error bars
            return "bar"
        if names == {"Wedge"} and not lines:
            return "pie"
    return "unknown"


def _is_reference_line(ax: Any, line: Any) -> bool:
    """axhline / axvline / grid-like lines: not data in axes coordinates."""
    return line.get_transform() is not ax.transData and not line.get_transform().contains_branch(ax.transData)


def _bar_containers(ax: Any) -> List[Any]:
    return [c for c in ax.containers if type(c).__name__ == "BarContainer"]


# -- values ---------------------------------------------------------------------------


def _text(value: Any) -> Optional[str]:
    return value if isinstance(value, str) and value else None


def _number(value: Any) -> Optional[float]:
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _rounded(value: Any) -> Optional[float]:
    """A float cut to 10 significant digits (324.00000000000006 -> 324.0)."""
    number = _number(value)
    return None if number is None else float("%.10g" % number)


def _values(data: Any) -> List[Any]:
    """Data of a line or an offset column as JSON values: numbers (null if not
    finite), ISO dates, strings."""
    dtype = getattr(data, "dtype", None)
    if dtype is not None and getattr(dtype, "kind", "") == "M":  # numpy datetime64
        data = data.astype("datetime64[us]")
    items = data.tolist() if hasattr(data, "tolist") else list(data)
    return [_value(item) for item in items]


def _value(item: Any) -> Any:
    if item is None or isinstance(item, str):
        return item
    if isinstance(item, (int, float, Decimal)) and not isinstance(item, bool):
        return _number(item)
    if isinstance(item, (datetime.date, datetime.time)):
        return item.isoformat()
    if hasattr(item, "item") and hasattr(item, "dtype"):  # a numpy scalar
        if getattr(item.dtype, "kind", "") == "M":
            return None if item != item else _value(item.astype("datetime64[us]").item())
        return _value(item.item())
    if isinstance(item, bool):
        return float(item)
    return str(item)


def _label(label: Any, fallback: str) -> str:
    """An artist's label; matplotlib's hidden ones ("_child3") give ``fallback``."""
    text = str(label) if label is not None else ""
    return fallback if not text or text.startswith("_") else text


# -- axes: labels, units, ticks, scales ----------------------------------------------


def _converter(axis: Any) -> Any:
    getter = getattr(axis, "get_converter", None)
    return getter() if callable(getter) else getattr(axis, "converter", None)


def _time_format(axis: Any) -> Optional[Callable[[float], Optional[str]]]:
    """How a number on ``axis`` becomes an ISO date, if it is a time axis:
    matplotlib's dates (days since its epoch) or pandas' time series (period
    ordinals of the locator's frequency); None for other axes."""
    locator = axis.get_major_locator()
    dates = sys.modules.get("matplotlib.dates")
    if dates is not None and "matplotlib.dates" in (type(_converter(axis)).__module__, type(locator).__module__):
        return lambda number: str(dates.num2date(number).isoformat())
    pandas = sys.modules.get("pandas")
    freq = getattr(locator, "freq", None)
    if pandas is not None and freq is not None and type(locator).__name__ == "TimeSeries_DateLocator":
        return lambda number: str(pandas.Period(ordinal=round(number), freq=freq).start_time.isoformat())
    return None


def _axis_info(ax: Any, name: str) -> Dict[str, Any]:
    """``<name>_ticks``, ``_tick_labels`` and ``_scale`` of the x or y axis."""
    axis = ax.xaxis if name == "x" else ax.yaxis
    ticks = list(axis.get_majorticklocs())
    labels = [label.get_text() for label in axis.get_ticklabels()]
    times = _time_format(axis)
    if times is not None:
        scale = "datetime"
        values: List[Any] = [_timed(times, _value(tick)) for tick in ticks]
    else:
        values = [_number(tick) for tick in ticks]
        scale = "categorical" if type(_converter(axis)).__module__ == "matplotlib.category" else \
            str(ax.get_xscale() if name == "x" else ax.get_yscale())
    return {name + "_ticks": values, name + "_tick_labels": labels, name + "_scale": scale}


def _timed(times: Callable[[float], Optional[str]], value: Any) -> Any:
    """A number on a time axis as an ISO date (other values as they are)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            return None
        try:
            return times(value)
        except (ValueError, OverflowError, TypeError):
            return None
    return value


def _labels(ax: Any, swap: bool = False) -> Dict[str, Any]:
    """Title, axis labels and their units (x is the category axis when ``swap``)."""
    x_label, y_label = _text(ax.get_xlabel()), _text(ax.get_ylabel())
    if swap:
        x_label, y_label = y_label, x_label
    return {"type": "", "title": _text(ax.get_title()), "x_label": x_label, "y_label": y_label,
            "x_unit": _unit(x_label), "y_unit": _unit(y_label), "elements": []}


def _unit(label: Optional[str]) -> Optional[str]:
    match = _UNIT.search(label) if label else None
    return (match.group(1) if match.group(1) is not None else match.group(2)) if match else None


# -- line and scatter -------------------------------------------------------------------


def _point_chart(ax: Any, kind: str, elements: List[Dict[str, Any]]) -> Chart:
    chart = _labels(ax)
    chart.update(_axis_info(ax, "x"))
    chart.update(_axis_info(ax, "y"))
    chart["type"] = kind
    chart["elements"] = elements
    return chart


def _points(ax: Any, xs: Any, ys: Any, budget: _Budget) -> List[Tuple[Any, Any]]:
    count = min(len(xs), len(ys))
    kept = budget.take(range(count))
    assert isinstance(kept, range)
    columns = []
    for axis, data in ((ax.xaxis, xs), (ax.yaxis, ys)):
        values = _values(data[kept.start:kept.stop:kept.step])
        times = _time_format(axis)
        columns.append([_timed(times, value) for value in values] if times is not None else values)
    return list(zip(*columns))


def _line_elements(ax: Any, budget: _Budget) -> List[Dict[str, Any]]:
    lines = [line for line in ax.lines if not _is_reference_line(ax, line)]
    labels = {id(container.lines[0]): container.get_label() for container in ax.containers  # errorbar()
              if type(container).__name__ == "ErrorbarContainer" and container.lines and container.lines[0]}
    return [{"label": _label(labels.get(id(line), line.get_label()), "Line %d" % number),
             "points": _points(ax, line.get_xdata(), line.get_ydata(), budget)}
            for number, line in enumerate(lines)]


def _scatter_elements(ax: Any, budget: _Budget) -> List[Dict[str, Any]]:
    elements = []
    collections = [c for c in ax.collections if type(c).__name__ == "PathCollection"]  # not error bars
    for number, collection in enumerate(collections):
        offsets = collection.get_offsets()
        elements.append({"label": _label(collection.get_label(), "Series %d" % number),
                         "points": _points(ax, offsets[:, 0], offsets[:, 1], budget)})
    return elements


# -- bars and pies --------------------------------------------------------------------


def _tick_label(axis: Any, position: float) -> str:
    """What a bar or box at ``position`` is called: on an axis whose ticks were
    placed (categories, ``set_xticks``), the label of the nearest tick if it is
    nearer than half the tick spacing; else the position itself."""
    placed = type(_converter(axis)).__module__ == "matplotlib.category" or \
        type(axis.get_major_locator()).__name__ == "FixedLocator"
    times = _time_format(axis)
    if not placed:
        return str(_timed(times, position)) if times is not None else "%g" % position
    ticks = [float(tick) for tick in axis.get_majorticklocs()]
    labels = [str(label.get_text()) for label in axis.get_ticklabels()]
    if ticks and len(labels) == len(ticks):
        index = min(range(len(ticks)), key=lambda i: abs(ticks[i] - position))
        spacing = min((abs(b - a) for a, b in zip(ticks, ticks[1:]) if b != a), default=math.inf)
        if abs(ticks[index] - position) <= spacing / 2 and labels[index]:
            return labels[index]
    return "%g" % position


def _bar_chart(ax: Any, budget: _Budget) -> Chart:
    containers = _bar_containers(ax)
    horizontal = _is_horizontal(containers[0])
    chart = _labels(ax, swap=horizontal)
    chart["type"] = "bar"
    axis = ax.yaxis if horizontal else ax.xaxis
    for number, container in enumerate(containers):
        group = _label(container.get_label(), "Group %d" % number)
        for bar in budget.take(list(container.patches)):
            if horizontal:
                position, value = bar.get_y() + bar.get_height() / 2, bar.get_width()
            else:
                position, value = bar.get_x() + bar.get_width() / 2, bar.get_height()
            chart["elements"].append({"label": _tick_label(axis, position), "group": group,
                                      "value": _number(value)})
    return chart


def _is_horizontal(container: Any) -> bool:
    orientation = getattr(container, "orientation", None)
    if orientation in ("vertical", "horizontal"):
        return bool(orientation == "horizontal")
    heights = {bar.get_height() for bar in container.patches}
    widths = {bar.get_width() for bar in container.patches}
    return len(heights) == 1 and len(widths) > 1


def _pie_chart(ax: Any, budget: _Budget) -> Chart:
    elements = [{"label": str(wedge.get_label()), "angle": _rounded(abs(wedge.theta2 - wedge.theta1)),
                 "radius": _number(wedge.r)} for wedge in budget.take(list(ax.patches))]
    return {"type": "pie", "title": _text(ax.get_title()), "elements": elements}


# -- box and whisker ----------------------------------------------------------------------

Box = Dict[str, Any]
#: the most points a box's outline has (a notched one has 11)
_MAX_OUTLINE = 64
#: matplotlib's Path.CLOSEPOLY: a vertex whose coordinates mean nothing
_CLOSEPOLY = 79


def _xy(line: Any) -> Tuple[List[float], List[float]]:
    return [float(x) for x in line.get_xdata(orig=False)], [float(y) for y in line.get_ydata(orig=False)]


def _is_segment(line: Any) -> bool:
    """A two-point segment parallel to an axis (whisker, cap, median)."""
    if len(line.get_xdata(orig=False)) != 2:
        return False
    xs, ys = _xy(line)
    return xs[0] == xs[1] or ys[0] == ys[1]


def _is_markers(line: Any) -> bool:
    """Points without a line between them (outliers), or nothing at all."""
    return len(line.get_xdata(orig=False)) == 0 or line.get_linestyle() in ("None", "none", " ", "")


def _is_outline(line: Any) -> bool:
    """A closed polygon (a box drawn as a line)."""
    if not 5 <= len(line.get_xdata(orig=False)) <= _MAX_OUTLINE:
        return False
    xs, ys = _xy(line)
    return xs[0] == xs[-1] and ys[0] == ys[-1]


def _looks_like_boxes(lines: List[Any]) -> bool:
    return all(_is_segment(line) or _is_markers(line) or _is_outline(line) for line in lines)


def _box_chart(ax: Any) -> Optional[Chart]:
    """Boxes from their outlines (a closed line or a PathPatch), medians,
    whiskers and outliers matched to them by position; None if some box has
    no median or the Axes holds other things."""
    outlines = [_xy(line) for line in ax.lines if _is_outline(line)]
    for patch in ax.patches:
        path = patch.get_path()
        codes = path.codes if path.codes is not None else [None] * len(path.vertices)
        points = [(float(x), float(y)) for (x, y), code in zip(path.vertices, codes) if code != _CLOSEPOLY]
        outlines.append(([x for x, _ in points], [y for _, y in points]))
    segments = [_xy(line) for line in ax.lines if _is_segment(line)]
    markers = []
    for line in ax.lines:  # the same outliers drawn twice count once
        if _is_markers(line) and not _is_segment(line) and _xy(line) not in markers:
            markers.append(_xy(line))
    if not outlines:
        return None
    rects = [(min(xs), max(xs), min(ys), max(ys)) for xs, ys in outlines]
    horizontal = _boxes_horizontal(rects, segments)
    if horizontal is None:
        return None
    if horizontal:  # work as if vertical: category along x, values along y
        outlines = [(ys, xs) for xs, ys in outlines]
        segments = [(ys, xs) for xs, ys in segments]
        markers = [(ys, xs) for xs, ys in markers]
    boxes: List[Box] = []
    seen = set()
    for xs, ys in outlines:
        # the quartiles are the outline's level edges (a notch may reach past them)
        levels = [ya for (xa, ya), (xb, yb) in zip(zip(xs, ys), zip(xs[1:], ys[1:])) if ya == yb and xa != xb]
        c0, c1 = min(xs), max(xs)
        q1, q3 = (min(levels), max(levels)) if levels else (min(ys), max(ys))
        box = _box(c0, c1, q1, q3, segments, markers)
        if box is None:
            return None
        key = (c0, c1, q1, q3, box["median"])
        if key not in seen:  # the same boxplot drawn twice
            seen.add(key)
            box["label"] = _tick_label(ax.yaxis if horizontal else ax.xaxis, (c0 + c1) / 2)
            boxes.append(box)
    chart = _labels(ax, swap=horizontal)
    chart["type"] = "box_and_whisker"
    chart["elements"] = [{"label": box["label"], "min": _rounded(box["min"]),
                          "first_quartile": _rounded(box["first_quartile"]), "median": _rounded(box["median"]),
                          "third_quartile": _rounded(box["third_quartile"]), "max": _rounded(box["max"]),
                          "outliers": [_rounded(value) for value in box["outliers"]]} for box in boxes]
    return chart


def _boxes_horizontal(rects: List[Tuple[float, float, float, float]],
                      segments: List[Tuple[List[float], List[float]]]) -> Optional[bool]:
    """Whether the boxes lie along the y axis: their median crosses them
    parallel to the value axis' normal. None if no box has a median."""
    for x0, x1, y0, y1 in rects:
        for xs, ys in segments:
            if xs[0] != xs[1] and ys[0] == ys[1] and x0 <= min(xs) and max(xs) <= x1 and y0 <= ys[0] <= y1:
                return False
            if ys[0] != ys[1] and xs[0] == xs[1] and y0 <= min(ys) and max(ys) <= y1 and x0 <= xs[0] <= x1:
                return True
    return None


def _box(c0: float, c1: float, q1: float, q3: float, segments: List[Tuple[List[float], List[float]]],
         markers: List[Tuple[List[float], List[float]]]) -> Optional[Box]:
    """One vertical box: its median (the first level segment drawn strictly
    inside it, else the widest on a quartile), whiskers (upright segments from a
    quartile outwards) and outliers; None without a median."""
    inside: List[float] = []  # levels strictly inside the box, in the order drawn (median, then mean)
    edges: List[Tuple[float, float]] = []  # (width, level) of those on a quartile
    low, high = q1, q3
    for xs, ys in segments:
        if not (c0 <= min(xs) and max(xs) <= c1):
            continue
        if ys[0] == ys[1] and xs[0] != xs[1] and q1 < ys[0] < q3:
            inside.append(ys[0])
        elif ys[0] == ys[1] and xs[0] != xs[1] and ys[0] in (q1, q3):
            edges.append((max(xs) - min(xs), ys[0]))
        elif xs[0] == xs[1] and ys[0] != ys[1]:
            if max(ys) == q1:
                low = min(low, min(ys))
            elif min(ys) == q3:
                high = max(high, max(ys))
    if not inside and not edges:
        return None
    median = inside[0] if inside else max(edges)[1]
    outliers = [y for xs, ys in markers for x, y in zip(xs, ys) if c0 <= x <= c1]
    return {"min": low, "first_quartile": q1, "median": median, "third_quartile": q3, "max": high,
            "outliers": outliers}
