"""pandas frames as data: the Frictionless table pandas itself writes.

:func:`frame_table` turns a DataFrame or Series (pandas is already imported
when one exists: this module never imports it) into the data resource of
``to_json(orient="table")``: ``{"schema": {"fields": [...], "primaryKey":
[...]}, "data": [...]}``, which JupyterLab and nteract render. A frame is cut
to :data:`MAX_ROWS` rows and :data:`MAX_BYTES` of compact JSON; a cut table
says ``"truncated": true`` and ``"total_rows"``. A frame pandas cannot write
(MultiIndex columns, an index named like a column, undecodable bytes) has no
table; one with duplicate column names neither (its rows would lose values).
"""

from __future__ import annotations

import json
import sys
from typing import Any, Dict, Optional

MAX_ROWS = 1000
MAX_BYTES = 1024 * 1024
#: the smallest a field of the schema can take: {"name":"","type":"any"}
_FIELD_BYTES = 26
#: rows measured first, to guess how many fit
_SAMPLE_ROWS = 20


def is_frame(obj: Any) -> bool:
    """Whether ``obj`` is a pandas DataFrame or Series (without importing pandas)."""
    pandas = sys.modules.get("pandas")
    frame_types = tuple(t for t in (getattr(pandas, "DataFrame", None), getattr(pandas, "Series", None))
                        if isinstance(t, type))
    return bool(frame_types) and isinstance(obj, frame_types)


def frame_table(obj: Any, max_rows: int = MAX_ROWS, max_bytes: int = MAX_BYTES) -> Optional[Dict[str, Any]]:
    """``obj`` as a table, or None if it is no frame or cannot be one."""
    if not is_frame(obj):
        return None
    columns = getattr(obj, "columns", None)
    if columns is not None and (not columns.is_unique or len(columns) * _FIELD_BYTES > max_bytes):
        return None
    total = len(obj)
    rows = min(total, max_rows)
    if rows > _SAMPLE_ROWS:  # guess from a sample how many rows fit
        sample = len(_json(obj, _SAMPLE_ROWS))
        rows = min(rows, max(1, max_bytes * _SAMPLE_ROWS // max(sample, 1)))
    text = _json(obj, rows)
    while len(text) > max_bytes and rows > 0:
        rows = min(rows - 1, rows * max_bytes * 9 // (len(text) * 10))
        text = _json(obj, max(rows, 0))
    if len(text) > max_bytes:
        return None  # the schema alone does not fit
    table: Dict[str, Any] = json.loads(text)
    if rows < total:
        table["truncated"] = True
        table["total_rows"] = total
    return table


def _json(obj: Any, rows: int) -> str:
    """The first ``rows`` rows as pandas writes them; objects it cannot write become their str()."""
    text: str = obj.head(rows).to_json(orient="table", default_handler=str)
    return text
