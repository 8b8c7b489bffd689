"""What the MCP and HTTP front ends share: how they show contexts."""

from __future__ import annotations

from typing import Any, Dict

from .types import InterpreterContext


def context_json(context: InterpreterContext) -> Dict[str, Any]:
    """An InterpreterContext as a JSON object."""
    return {"id": context.id, "cwd": context.cwd, "language": context.language,
            "active": context.active}
