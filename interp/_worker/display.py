"""MIME bundles: what a result looks like in every format it has, made
JSON-safe and cut to fit a frame."""

from __future__ import annotations

import base64
import json
from typing import Any, Dict, List, Optional

from . import protocol
from .figures import is_figure
from .inline import figure_bundle
from .interpreter import clip
from .pretty import text as pretty_text

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
        try:
            text = json.dumps(value)
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
    if "image/png" not in data and is_figure(obj):
        try:
            data.update(figure_bundle(obj))  # the formats %config InlineBackend chose; none if empty
        except Exception:
            pass
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


def fit_bundle(data: Bundle) -> Bundle:
    """Drop the largest formats until the result frame fits the protocol limit;
    name (the first 20 of) them in ``application/x-interp-dropped``."""
    budget = protocol.MAX_EVENT_FRAME - 64 * 1024  # the rest of the frame, the list of dropped formats
    # what each entry costs in the frame: its key, its value, ':' and ','
    sizes = {mime: len(json.dumps(mime)) + len(json.dumps(value)) + 2 for mime, value in data.items()}
    total = sum(sizes.values())
    dropped = []
    for mime in sorted((mime for mime in sizes if mime != "text/plain"), key=sizes.__getitem__, reverse=True):
        if total <= budget:
            break
        total -= sizes[mime]
        del data[mime]
        dropped.append(mime)
    if total > budget and "text/plain" in data:  # text/plain alone is too large
        data["text/plain"] = clip(data["text/plain"])
    if dropped:
        names = [clip(mime, 200) for mime in dropped[:20]]
        if len(dropped) > 20:
            names.append("... and %d more" % (len(dropped) - 20))
        data["application/x-interp-dropped"] = names
    return data
