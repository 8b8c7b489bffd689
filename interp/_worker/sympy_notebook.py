"""sympy's ``init_printing()`` as a Jupyter kernel shows its values.

Outside IPython, ``init_printing()`` replaces ``sys.displayhook`` with one that
prints every value. In Jupyter it registers formatters instead, and only for
the values sympy can print (its own objects, numbers, and containers of
them): those get sympy's text, LaTeX and a PNG of the LaTeX drawn by
matplotlib's mathtext (when no LaTeX is installed, which is what a kernel does
without one); any other value keeps IPython's usual text. :func:`bundle` makes
the same choice here. Standard library only; sympy and matplotlib are only
used when the user imported them.
"""

from __future__ import annotations

import base64
import io
import sys
from typing import Any, Dict, Optional


def is_sympy_hook(hook: Any) -> bool:
    return str(getattr(hook, "__module__", "")).startswith("sympy.interactive")


def can_print(value: Any) -> bool:
    """What sympy's notebook printing takes on (its rules for init_printing's defaults)."""
    defaults = sys.modules.get("sympy.printing.defaults")
    printable = getattr(defaults, "Printable", None)
    containers = (list, tuple, set, frozenset)
    if isinstance(value, containers):
        kind = type(value)
        if kind.__str__ not in [c.__str__ for c in containers] or kind.__repr__ not in [c.__repr__ for c in containers]:
            return False
        return all(can_print(item) for item in value)
    if isinstance(value, dict):
        return all(can_print(key) and can_print(value[key]) for key in value)
    if isinstance(value, bool):
        return False
    if printable is not None and isinstance(value, printable):
        return True
    if not isinstance(value, type) and any(hasattr(value, hook) for hook in
                                           ("_latex", "_sympystr", "_pretty", "_sympyrepr")):
        return True
    return isinstance(value, (float, int))


def _latex_png(latex: str) -> Optional[str]:
    """``latex`` (inline math) drawn by matplotlib's mathtext, base64; None if mathtext cannot."""
    try:
        from matplotlib import font_manager, mathtext
    except ImportError:
        return None
    text = latex.replace(r"\operatorname", "").replace(r"\overline", r"\bar").replace("$$", "$")
    buffer = io.BytesIO()
    try:
        mathtext.math_to_image(text, buffer, prop=font_manager.FontProperties(size=12), dpi=120, format="png")
    except (ValueError, RuntimeError):
        return None
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def extra_formats(value: Any) -> Optional[Dict[str, Any]]:
    """The LaTeX and PNG a kernel shows for ``value`` after init_printing();
    None if sympy does not print it (it then gets the usual formats)."""
    sympy = sys.modules.get("sympy")
    if sympy is None or not can_print(value):
        return None
    data: Dict[str, Any] = {}
    try:
        data["text/latex"] = "$\\displaystyle %s$" % sympy.latex(value)
        png = _latex_png(sympy.latex(value, mode="inline"))
    except Exception:  # a value sympy's printer cannot take after all
        return data
    if png is not None:
        data["image/png"] = png
    return data
