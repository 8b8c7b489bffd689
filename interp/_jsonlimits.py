"""JSON from the network, decoded with bounds: nesting depth, integer
digits, and only finite numbers. Used by the HTTP server (request bodies)
and the remote client (events and responses from a server)."""

from __future__ import annotations

import array
import functools
import itertools
import json
import math
import re
from typing import Any, Callable

_STRING = re.compile(r'"[^"]*"')  # once escapes are gone, a string cannot hold a quote
_NOT_BRACKETS = re.compile(r"[^\[\]{}]+")
_DEPTH_STEPS = str.maketrans({"[": "\x01", "{": "\x01", "]": "\xff", "}": "\xff"})


def too_deep(text: str, max_depth: int) -> bool:
    """True if arrays and objects nest more than ``max_depth`` deep in the
    JSON ``text``; found without recursion, in time linear in its length
    (strings are skipped; invalid JSON may count as too deep)."""
    if text.count("[") + text.count("{") <= max_depth:
        return False
    # escaped backslashes, then escaped quotes, go first (left to right, as a decoder reads
    # them); what is left of each string is a pair of quotes around no quote. Each step is
    # linear: no pattern that retries from every quote (a body of many escaped quotes
    # made the former single pattern quadratic)
    unescaped = text.replace("\\\\", "").replace('\\"', "")
    brackets = _NOT_BRACKETS.sub("", _STRING.sub("", unescaped))
    steps = array.array("b", brackets.translate(_DEPTH_STEPS).encode("latin-1"))
    return max(itertools.accumulate(steps), default=0) > max_depth


def _number(kind: type, max_digits: int) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        if kind is int and len(text.lstrip("-")) > max_digits:
            raise ValueError("an integer of more than %d digits" % max_digits)
        value = kind(text)
        if not math.isfinite(value):
            raise ValueError("a number out of range: %s" % text)
        return value
    return parse


def _no_constant(name: str) -> Any:
    raise ValueError("%s is not JSON" % name)


@functools.lru_cache(maxsize=8)
def _decoder(max_int_digits: int) -> json.JSONDecoder:
    return json.JSONDecoder(parse_int=_number(int, max_int_digits), parse_float=_number(float, max_int_digits),
                            parse_constant=_no_constant)


def loads(data: bytes, *, max_depth: int, max_int_digits: int) -> Any:
    """The JSON value of the UTF-8 ``data``, nesting at most ``max_depth``
    arrays and objects, with integers of at most ``max_int_digits`` digits
    and only finite numbers (no NaN or Infinity). Raises ValueError saying
    what is wrong ("is not valid JSON: ...", "nests arrays or ...")."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError("is not UTF-8: %s" % exc) from None
    if too_deep(text, max_depth):
        raise ValueError("nests arrays or objects more than %d deep" % max_depth)
    try:
        return _decoder(max_int_digits).decode(text)
    except RecursionError:  # cannot happen below the depth bound; kept as a ValueError anyway
        raise ValueError("nests too deep") from None
    except ValueError as exc:
        raise ValueError("is not valid JSON: %s" % exc) from None
