"""MIME bundles: what a result looks like in every format it has, made
JSON-safe and cut to fit a frame."""

from __future__ import annotations

import base64
import json
import sys
from typing import Any, Callable, Dict, List, Optional

from . import protocol
from .charts import figure_chart
from .figures import is_figure
from .inline import figure_bundle
from .interpreter import clip
from .pretty import text as pretty_text
from .tables import frame_table

Bundle = Dict[str, Any]

_REPR_METHODS = tuple((mime, method) for mime, _, method in protocol.RESULT_FORMATS if method)
_BINARY_MIMES = ("image/png", "image/jpeg")
#: A result frame nests its data two levels deep ({"data": {mime: data}}).
_RESULT_JSON_DEPTH = protocol.MAX_JSON_DEPTH - 2


def _call_repr(obj: Any, name: str, *args: Any) -> Any:
    """Call obj.<name>(*args) if it exists; None if it is missing or raises."""
    if isinstance(obj, type):
        return None
    try:
        method = getattr(obj, name, None)
        if not callable(method):
            return None
        value = method(*args)
    except BaseException as exc:  # a formatter that raises is skipped, never fatal
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        return None
    if isinstance(value, tuple) and len(value) == 2:  # (data, metadata)
        value = value[0]
    return value


def _normalise(mime: str, value: Any) -> Any:
    """Make ``value`` JSON-safe for ``mime``; None if it cannot be."""
    if mime in _BINARY_MIMES or (isinstance(value, (bytes, bytearray)) and mime.startswith("image/")):
        if isinstance(value, (bytes, bytearray)):
            return base64.b64encode(bytes(value)).decode("ascii")
        return value if isinstance(value, str) else None
    if mime == "application/json" or mime.endswith("+json"):
        if mime in protocol.OBJECT_MIMES and not isinstance(value, dict):
            return None  # the parent would refuse the frame
        try:
            text = json.dumps(value, allow_nan=mime not in protocol.OBJECT_MIMES)
        except (TypeError, ValueError, RecursionError):
            return None
        if protocol.json_depth(text.encode("ascii"), _RESULT_JSON_DEPTH) > _RESULT_JSON_DEPTH:
            return None  # the parent would refuse the frame
        return json.loads(text)
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    return value if isinstance(value, str) else None


def _normalised(bundle: Dict[Any, Any]) -> Bundle:
    """The JSON-safe entries of a MIME bundle (str keys, data that can be made safe)."""
    data = {}
    for mime, value in bundle.items():
        if isinstance(mime, str):
            value = _normalise(mime, value)
            if value is not None:
                data[mime] = value
    return data


def _add_data(data: Bundle, mime: str, extract: Callable[[Any], Optional[Dict[str, Any]]], obj: Any) -> None:
    """Add ``extract(obj)`` to ``data`` as ``mime`` unless it is there already;
    an extraction that fails or gives nothing adds nothing."""
    if mime in data:
        return
    try:
        value = extract(obj)
    except Exception:
        return
    value = None if value is None else _normalise(mime, value)
    if value is not None:
        data[mime] = value


def _safe_repr(obj: Any) -> str:
    try:
        return pretty_text(obj)
    except BaseException as exc:
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        return "<unrepresentable %s object>" % type(obj).__name__


def mime_bundle(obj: Any, strict: bool = False) -> Bundle:
    """The MIME bundle of ``obj``: its repr plus whatever its _repr_*_ methods give.
    With ``strict``, what its text/plain raises propagates (as Jupyter reports it)."""
    bundle = _call_repr(obj, "_repr_mimebundle_", None, None)
    data = _normalised(bundle) if isinstance(bundle, dict) else {}
    for mime, method in _REPR_METHODS:
        if mime not in data:
            value = _call_repr(obj, method)
            value = None if value is None else _normalise(mime, value)
            if value is not None:
                data[mime] = value
    if is_figure(obj):
        if "image/png" not in data:
            try:
                data.update(figure_bundle(obj))  # the formats %config InlineBackend chose; none if empty
            except Exception:
                pass
        _add_data(data, protocol.CHART_MIME, figure_chart, obj)  # after the drawing: tick labels are drawn
    if "pandas" in sys.modules:
        _add_data(data, protocol.TABLE_MIME, frame_table, obj)
    if not isinstance(data.get("text/plain"), str):
        data["text/plain"] = pretty_text(obj) if strict else _safe_repr(obj)
    return data


def raw_bundle(data: Any) -> Bundle:
    """A bundle given to ``display(..., raw=True)``, made JSON-safe; TypeError
    if it is not a dict of MIME type to data."""
    if not isinstance(data, dict) or not all(isinstance(mime, str) for mime in data):
        raise TypeError("display(raw=True) takes MIME bundles (dicts of MIME type to data), "
                        "not %s" % type(data).__name__)
    bundle = _normalised(data)
    if not isinstance(bundle.get("text/plain"), str):
        bundle["text/plain"] = ""
    return bundle


def filtered(bundle: Bundle, include: Optional[List[str]], exclude: Optional[List[str]]) -> Bundle:
    """``bundle`` keeping only the MIME types in ``include`` (if given) and not
    in ``exclude`` (if given), text/plain too, as IPython's display does."""
    return {mime: value for mime, value in bundle.items()
            if (include is None or mime in include) and (exclude is None or mime not in exclude)}


#: Names the formats a cut dropped (the worker's, then the parent's).
DROPPED_KEY = "application/x-interp-dropped"


def fit_bundle(data: Bundle, budget: int = protocol.MAX_EVENT_FRAME - 64 * 1024) -> Bundle:
    """Drop the largest formats until the bundle's JSON fits ``budget`` bytes
    (by default: the result frame fits the protocol limit; the rest of the
    frame holds the list of dropped formats); name (the first 20 of) them in
    ``application/x-interp-dropped``. The parent cuts with the same function
    to fit its results budget."""
    # what each entry costs in the frame: its key, its value, ':' and ','
    sizes = {mime: len(json.dumps(mime)) + len(json.dumps(value)) + 2 for mime, value in data.items()}
    total = sum(sizes.values())
    earlier = data.get(DROPPED_KEY)
    if not (isinstance(earlier, list) and len(earlier) <= 21 and all(isinstance(name, str) for name in earlier)):
        earlier = []  # none, or not a list of names: an ordinary format, dropped like the others
    dropped: List[str] = list(earlier)
    keep = ("text/plain", DROPPED_KEY) if earlier else ("text/plain",)
    for mime in sorted((mime for mime in sizes if mime not in keep), key=sizes.__getitem__, reverse=True):
        if total <= budget:
            break
        total -= sizes[mime]
        del data[mime]
        dropped.append(mime)
    if total > budget and "text/plain" in data:  # text/plain alone is too large
        data["text/plain"] = clip(data["text/plain"])
    if len(dropped) > len(earlier):
        names = [clip(mime, 200) for mime in dropped[:20]]
        if len(dropped) > 20:
            names.append("... and %d more" % (len(dropped) - 20))
        data[DROPPED_KEY] = names
    return data
