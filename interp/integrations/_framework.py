"""Importing a framework for an adapter, with an error that says what to install."""

from __future__ import annotations

import importlib
from types import ModuleType


def require(module: str, adapter: str, extra: str) -> ModuleType:
    """Import ``module`` for ``interp.integrations.<adapter>``; if it is
    missing, an ImportError naming the pyproject extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError("interp.integrations.%s needs %s: pip install 'interp[%s]' (%s)"
                          % (adapter, module.split(".")[0], extra, exc), name=module) from exc
