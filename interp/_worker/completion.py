"""Completion of the dotted name being typed, from a live namespace."""

from __future__ import annotations

import builtins
import keyword
import re
from typing import Any, Dict, List, Set

from .dialect import SHELL_NAME

_IDENTIFIER_CHAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*\.?$|$")


def complete(namespace: Dict[str, Any], code: str, cursor: int) -> List[str]:
    """Names or attributes that complete the dotted name ending at ``cursor``.

    Resolves the prefix with getattr only: nothing is called or evaluated
    (beyond what attribute lookups and ``dir()`` run: properties, __dir__).
    """
    text = code[:cursor]
    match = _IDENTIFIER_CHAIN.search(text)
    token = match.group(0) if match else ""
    if match and match.start() > 0 and text[match.start() - 1] in "0123456789":
        return []
    *parents, stem = token.split(".")
    names: Set[str]
    if not parents:
        names = set(keyword.kwlist) | set(namespace) | set(dir(builtins))
        names.discard(SHELL_NAME)  # the engine's own builtin, for notebook syntax
        return sorted(n for n in names if n.startswith(stem) and (stem.startswith("_") or not n.startswith("_")))
    try:
        obj = namespace[parents[0]] if parents[0] in namespace else getattr(builtins, parents[0])
        for part in parents[1:]:
            obj = getattr(obj, part)
        names = set(dir(obj))
    except Exception:
        return []
    base = ".".join(parents)
    return sorted("%s.%s" % (base, n) for n in names
                  if n.startswith(stem) and (stem.startswith("_") or not n.startswith("_")))
