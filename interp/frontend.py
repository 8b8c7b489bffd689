"""What the MCP and HTTP front ends share: how they name and show contexts."""

from __future__ import annotations

from typing import Any, Dict, Optional

from .engine import DEFAULT_CONTEXT_ID
from .types import InterpreterContext


def context_ref(context_id: Optional[str]) -> Optional[str]:
    """The ``context`` argument for a front end's context id: None and
    ``"default"`` mean the default context."""
    return None if context_id in (None, DEFAULT_CONTEXT_ID) else context_id


def context_json(context: InterpreterContext) -> Dict[str, Any]:
    """An InterpreterContext as a JSON object."""
    return {"id": context.id, "cwd": context.cwd, "language": context.language,
            "active": context.active}
