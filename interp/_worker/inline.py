"""Figures the way IPython's inline backend shows them.

- The formats ``%config InlineBackend.figure_format(s)`` names: ``png``
  (the default), ``retina`` (a PNG at twice the resolution), ``svg``,
  ``jpeg``, ``pdf``.
- A figure with nothing in it (no Axes, no lines) gets no image; its
  text (``<Figure size 640x480 with 0 Axes>``) is still shown.
- The open figures are shown in the order they were last made current
  (as ``matplotlib._pylab_helpers.Gcf`` keeps them), not by number.
- An error while drawing a figure is the run's error, not swallowed.

Standard library only (matplotlib is imported only when a figure exists).
"""

from __future__ import annotations

import base64
import io
import sys
from typing import Any, Callable, Dict, Iterable, List

#: IPython's names for the formats, and the MIME type each becomes.
FORMATS = {"png": "image/png", "retina": "image/png", "png2x": "image/png", "svg": "image/svg+xml",
           "jpg": "image/jpeg", "jpeg": "image/jpeg", "pdf": "application/pdf"}
#: What ``%config InlineBackend.figure_formats`` set (a list, in the user's order).
figure_formats: List[str] = ["png"]


def set_formats(formats: Iterable[Any]) -> None:
    """Choose the figure formats; ValueError naming the unknown ones."""
    chosen = [str(name).lower() for name in formats]
    unknown = [name for name in chosen if name not in FORMATS]
    if unknown or not chosen:
        raise ValueError("supported figure formats are %s, not %s" % (", ".join(sorted(FORMATS)), unknown or "none"))
    figure_formats[:] = chosen


def is_empty(figure: Any) -> bool:
    return not getattr(figure, "axes", None) and not getattr(figure, "lines", None)


def _render(figure: Any, name: str) -> Any:
    buffer = io.BytesIO()
    options: Dict[str, Any] = {"bbox_inches": "tight"}
    if name in ("retina", "png2x"):
        options["dpi"] = 2 * figure.dpi
    figure.savefig(buffer, format={"retina": "png", "png2x": "png", "jpg": "jpeg"}.get(name, name), **options)
    data = buffer.getvalue()
    if name == "svg":
        return data.decode("utf-8")
    return base64.b64encode(data).decode("ascii")


def figure_bundle(figure: Any) -> Dict[str, Any]:
    """The images of ``figure`` in the chosen formats (none if it is empty)."""
    if is_empty(figure):
        return {}
    return {FORMATS[name]: _render(figure, name) for name in figure_formats}


def show_figures(emit: Callable[[Any, bool], None]) -> None:
    """Show every open pyplot figure (``emit(figure, False)``), in order of
    last use, and close it; what drawing one raises propagates (after all of
    them are closed), as Jupyter reports it."""
    pyplot: Any = sys.modules.get("matplotlib.pyplot")
    helpers: Any = sys.modules.get("matplotlib._pylab_helpers")
    if pyplot is None or helpers is None:
        return
    figures = [manager.canvas.figure for manager in helpers.Gcf.get_all_fig_managers()]
    try:
        for figure in figures:
            if not is_empty(figure):
                figure.draw_without_rendering()  # a drawing error is the run's error
            emit(figure, False)
    finally:
        for figure in figures:
            pyplot.close(figure)
