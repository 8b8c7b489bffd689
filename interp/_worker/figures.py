"""matplotlib without setup: a headless backend, and figures become PNG results."""

from __future__ import annotations

import base64
import io
import os
import sys
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any, Callable, Optional, Sequence


def figure_png(figure: Any) -> str:
    """A matplotlib figure as base64 PNG."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def is_figure(obj: Any) -> bool:
    return type(obj).__module__.startswith("matplotlib") and type(obj).__name__ == "Figure"


class MatplotlibHook:
    """Import hook: select the Agg backend when matplotlib is imported and make
    ``pyplot.show()`` call ``show``, without user code asking."""

    def __init__(self, show: Callable[..., None]) -> None:
        self.show = show

    def find_spec(self, name: str, path: Optional[Sequence[str]] = None,
                  target: Optional[ModuleType] = None) -> Optional[ModuleSpec]:
        if name not in ("matplotlib", "matplotlib.pyplot"):
            return None
        import importlib.util

        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        load = spec.loader.exec_module
        show = self.show

        def exec_module(module: ModuleType) -> None:
            load(module)
            if name == "matplotlib":
                if not os.environ.get("MPLBACKEND"):
                    module.use("Agg")
            else:
                module.show = show  # type: ignore[attr-defined]
        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def emit_open_figures(emit: Callable[[Any, bool], None]) -> None:
    """Turn every open pyplot figure into a result (``emit(figure, False)``) and close it."""
    pyplot: Any = sys.modules.get("matplotlib.pyplot")
    if pyplot is None:
        return
    try:
        numbers = list(pyplot.get_fignums())
    except Exception:
        return
    for number in numbers:
        try:
            figure = pyplot.figure(number)
            emit(figure, False)
            pyplot.close(figure)
        except Exception:
            pass
