"""A ``sys.displayhook`` that a library installed still gives the run its result.

Outside IPython some libraries show values by replacing ``sys.displayhook``
(sympy's ``init_printing()`` prints its pretty form). In Jupyter the same
library registers a formatter instead, and the value comes back as the
cell's result. :class:`DisplayHooks` puts the worker's hook back before
each statement runs, remembers the library's, and when a value is shown
lets the library's hook print it into a buffer: that text becomes the
text/plain of the result (its other formats are the value's own).
Standard library only.
"""

from __future__ import annotations

import io
import sys
from typing import Any, Callable, Dict, Optional

from .sympy_notebook import extra_formats, is_sympy_hook

Hook = Callable[[Any], Any]


class DisplayHooks:
    """The worker's displayhook (``own``) and the one a library put in its place."""

    def __init__(self, own: Hook) -> None:
        self.own = own
        self.foreign: Optional[Hook] = None

    def adopt(self) -> None:
        """Called before each statement: if ``sys.displayhook`` was replaced,
        remember the replacement and put the worker's back. Putting back
        Python's default hook means "no library hook any more"."""
        current = getattr(sys, "displayhook", None)
        if current is self.own:
            return
        self.foreign = current if callable(current) and current is not sys.__displayhook__ else None
        sys.displayhook = self.own

    def bundle_of(self, value: Any, formats: Callable[[Any], Dict[str, Any]]) -> Optional[Dict[str, Any]]:
        """The result a library's hook makes of ``value``: what the hook prints
        as text/plain, with the value's other ``formats`` (and, for sympy's
        hook, what sympy gives in a notebook); empty if the hook prints nothing;
        None if there is no library hook or (sympy) it would not take the value.
        What the hook raises propagates."""
        hook = self.foreign
        if hook is None:
            return None
        extra: Dict[str, Any] = {}
        if is_sympy_hook(hook):
            sympy = extra_formats(value)
            if sympy is None:
                return None
            extra = sympy
        text = self._printed(hook, value)
        if not text:
            return {}
        return dict(formats(value), **extra, **{"text/plain": text})

    @staticmethod
    def _printed(hook: Hook, value: Any) -> str:
        buffer = io.StringIO()
        saved = sys.stdout
        sys.stdout = buffer
        try:
            hook(value)
        finally:
            if sys.stdout is buffer:
                sys.stdout = saved
        text = buffer.getvalue()
        return text[:-1] if text.endswith("\n") else text
