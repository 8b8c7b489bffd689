"""Framing and message schema shared by the parent and the worker.

A frame is a 4-byte big-endian length followed by that many bytes of body.
A body is either UTF-8 JSON encoding one object (it starts with ``{``) or,
from the worker only, captured output: one stream byte (``\x01`` stdout,
``\x02`` stderr) followed by the raw bytes the program wrote. Output stays
raw so that the worker can move it from a capture pipe into the channel
inside the kernel (``splice``), never holding it in its own memory, where a
crash would lose it; the parent decodes it. This module imports only the
standard library, because the worker loads it by path.

Messages are JSON objects with a ``"t"`` (type) key:

parent -> worker
    ``{"t": "run", "id": int, "code": str, "envs": {str: str} | null, "filename": str | null,
    "stdin": str | null, "input": bool, "dialect": "notebook" | "python"}``  run a cell (``input``:
    ask for input() lines; ``dialect``: whether notebook syntax is accepted, default "notebook")
    ``{"t": "setup", "cwd": str, "env": {str: str} | null, "options": {...}}``  first, for a
    worker forked ahead of need (``env`` null: keep the environment it has)
    ``{"t": "input_reply", "n": int, "value": str}``, ``{"t": "input_reply", "n": int, "eof": true}``
    or ``{"t": "input_reply", "n": int, "interrupt": true}`` (input() raises KeyboardInterrupt)
    ``{"t": "stdin", "d": base64 str}`` or ``{"t": "stdin", "eof": true}``  the next bytes of fd 0
    for a run with ``"stdin_stream": true`` (sent only after a ``stdin_more``)
    ``{"t": "complete", "id": int, "code": str, "cursor": int}``

worker -> parent
    ``{"t": "ready", "pid": int}``                      worker is set up
    an output frame, decoded as ``{"t": "out", "s": "stdout"|"stderr", "b": bytes}``
    ``{"t": "result", "data": {mime: data}, "main": bool}``  a rich value
    ``{"t": "input", "prompt": str, "n": int}``         input() wants a line (the n-th asked)
    ``{"t": "stdin_more"}``                             a ``stdin_stream`` run can take the next chunk
    ``{"t": "started", "re": int}``                     a SIGINT came before the run began (see below)
    ``{"t": "done", "re": int, "error": null | {"name", "value", "traceback"}, "count": int}``
    ``{"t": "completions", "re": int, "matches": [str]}``
    ``{"t": "fatal", "message": str}``                  why the worker is about to exit

The worker is untrusted: user code can write frames to the channel. Every
command that has a reply carries an ``id`` the parent draws at random, and the
reply names it (``re``), so a reply can never be taken for the answer to
another command, nor forged before the command was read; the parent checks
each frame against the state of the run it is in (see ``core.Run``). An
``input_reply`` names the request it answers (``n``); the worker drops any
other. A parent that interrupts a run before the worker began it cannot know
whether the SIGINT arrived in time, so a worker that got a SIGINT while idle
sends ``started`` when the next run begins, and the parent interrupts again
if it had meant to interrupt that run.
"""

import itertools
import json
import operator
import re
import struct
from typing import Any, Dict, List, Mapping, Optional, Tuple

HEADER = struct.Struct(">I")

#: Largest frame the parent accepts from a worker. Output travels in chunks of
#: at most 64 KiB, error fields are clipped by the worker and result bundles
#: are cut to fit (a 20 MiB PNG still passes), so a larger frame means a
#: broken or hostile worker.
MAX_EVENT_FRAME = 32 * 1024 * 1024

#: Error fields (exception value, traceback) are clipped to this many
#: characters, so that even fully escaped (6 bytes a character) both fit in a frame.
MAX_ERROR_CHARS = 256 * 1024

#: Deepest nesting of arrays and objects the parent decodes. The worker
#: never sends deeper JSON (a result's data that nests deeper is dropped), so
#: a deeper frame is garbage; checking it first keeps the decoder free of
#: recursion errors whatever the parent's recursion limit and stack.
MAX_JSON_DEPTH = 100

STREAMS = ("stdout", "stderr")
#: The first body byte of an output frame, by stream (JSON bodies start with "{").
STREAM_CODES = {"stdout": 1, "stderr": 2}
_STREAM_BY_CODE = {code: stream for stream, code in STREAM_CODES.items()}


class ProtocolError(Exception):
    """The peer sent bytes that are not a valid frame or message."""


#: Compact JSON; one encoder for every frame (json.dumps with options makes one per call).
_ENCODE = json.JSONEncoder(separators=(",", ":")).encode


def encode(message: Mapping[str, Any]) -> bytes:
    """Return the frame for ``message`` (a JSON-serialisable dict)."""
    body = _ENCODE(message).encode("ascii")
    return HEADER.pack(len(body)) + body


def output_header(stream: str, size: int) -> bytes:
    """The first bytes of an output frame whose ``size`` bytes of data follow."""
    return HEADER.pack(size + 1) + bytes((STREAM_CODES[stream],))


def output_frame(stream: str, data: bytes) -> bytes:
    """A whole output frame carrying ``data`` (bytes) for ``stream``."""
    return output_header(stream, len(data)) + data


class FrameDecoder:
    """Incremental frame decoder: feed it bytes, get back decoded objects.

    Never executes anything it reads; rejects frames larger than
    ``max_frame`` before buffering them and any body that is neither a JSON
    object nor output, by raising :class:`ProtocolError`. Output frames
    become ``{"t": "out", "s": stream, "b": bytes}``.
    """

    def __init__(self, max_frame: int = MAX_EVENT_FRAME) -> None:
        self.max_frame = max_frame
        self._buf = bytearray()

    def feed(self, data: bytes) -> List[Dict[str, Any]]:
        """Add ``data`` and return the list of complete messages it finishes."""
        buf = self._buf
        buf += data
        messages = []
        pos = 0
        size = HEADER.size
        while len(buf) - pos >= size:
            (length,) = HEADER.unpack_from(buf, pos)
            if length > self.max_frame:
                raise ProtocolError(
                    "frame of %d bytes exceeds the limit of %d" % (length, self.max_frame))
            end = pos + size + length
            if len(buf) < end:
                break
            stream = _STREAM_BY_CODE.get(buf[pos + size]) if length else None
            body = bytes(buf[pos + size + (stream is not None):end])
            pos = end
            if stream is not None:
                messages.append({"t": "out", "s": stream, "b": body})
                continue
            try:
                message = decode_json(body)
            except ProtocolError:
                del buf[:pos]  # the bad frame is dropped with what came before it
                raise
            messages.append(message)
        if pos:
            del buf[:pos]
        return messages

    def incomplete_output(self) -> Optional[Tuple[str, bytes]]:
        """``(stream, bytes)`` of an output frame cut short (the sender died
        while sending it), or None. Only meaningful once the input ended."""
        buf = self._buf
        if len(buf) > HEADER.size and buf[HEADER.size] in _STREAM_BY_CODE:
            return _STREAM_BY_CODE[buf[HEADER.size]], bytes(buf[HEADER.size + 1:])
        return None

    @property
    def pending(self) -> int:
        """Number of buffered bytes that do not yet form a whole frame."""
        return len(self._buf)


_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_NOT_BRACKETS = bytes(byte for byte in range(256) if byte not in b"[]{}")
_STEPS = bytes.maketrans(b"[{]}", b"\x02\x02\x00\x00")


def json_depth(data: bytes, limit: int) -> int:
    """How deep arrays and objects nest in the JSON text ``data`` (bytes), or 0
    if it cannot exceed ``limit``. Never recurses."""
    if data.count(b"[") + data.count(b"{") <= limit:
        return 0  # cannot nest deeper than the brackets it has (the usual case)
    brackets = _JSON_STRING.sub(b"", data).translate(_STEPS, _NOT_BRACKETS)
    # Now 2 for each opening bracket and 0 for each closing one: the running
    # sum of (step - 1) is the depth. Summed in C, a slice at a time.
    depth = deepest = 0
    for start in range(0, len(brackets), 65536):
        steps = brackets[start:start + 65536]
        depths = list(itertools.accumulate(map(operator.sub, steps, itertools.repeat(1)), initial=depth))
        deepest = max(deepest, max(depths))
        if deepest > limit:
            break
        depth = depths[-1]
    return deepest


def decode_json(body: bytes, max_depth: int = MAX_JSON_DEPTH) -> Dict[str, Any]:
    """Decode one JSON object from ``body`` (UTF-8 bytes); raise ProtocolError
    for anything else, including nesting deeper than ``max_depth``."""
    if json_depth(body, max_depth) > max_depth:
        raise ProtocolError("frame nests JSON deeper than %d levels" % max_depth)
    try:
        message = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ProtocolError("frame is not UTF-8 JSON: %s" % exc) from None
    if not isinstance(message, dict):
        raise ProtocolError("frame holds a %s, not an object" % type(message).__name__)
    return message


def _check_str(message: Mapping[str, Any], key: str, optional: bool = False) -> None:
    value = message.get(key)
    if value is None and optional:
        return
    if not isinstance(value, str):
        raise ProtocolError("%r message needs a string %r" % (message.get("t"), key))


#: A matplotlib figure's data, in E2B's chart schema (see docs/charts-and-tables.md).
CHART_MIME = "application/vnd.interp.chart+json"
#: A pandas DataFrame or Series as a Frictionless data resource, as pandas writes it.
TABLE_MIME = "application/vnd.dataresource+json"

#: The rich formats a result names directly: (MIME type, Result attribute,
#: the method objects provide it with). PNG and JPEG travel as base64 text.
RESULT_FORMATS = (
    ("text/plain", "text", None),
    ("text/html", "html", "_repr_html_"),
    ("text/markdown", "markdown", "_repr_markdown_"),
    ("image/svg+xml", "svg", "_repr_svg_"),
    ("image/png", "png", "_repr_png_"),
    ("image/jpeg", "jpeg", "_repr_jpeg_"),
    ("text/latex", "latex", "_repr_latex_"),
    ("application/json", "json", "_repr_json_"),
    ("application/javascript", "javascript", "_repr_javascript_"),
    (CHART_MIME, "chart", None),
    (TABLE_MIME, "data", None),
)

#: MIME types whose data must be a JSON object.
OBJECT_MIMES = (CHART_MIME, TABLE_MIME)
#: MIME types whose data must be a string (JSON may be any JSON value).
TEXT_MIMES = tuple(mime for mime, _, _ in RESULT_FORMATS if mime != "application/json" and mime not in OBJECT_MIMES)


def _check_int(message: Mapping[str, Any], key: str) -> None:
    value = message.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ProtocolError("%r message needs an integer %r" % (message.get("t"), key))


def validate_event(message: Dict[str, Any]) -> Dict[str, Any]:
    """Check a worker -> parent message against the schema; return it.

    Raises :class:`ProtocolError` for an unknown type or a malformed field.
    """
    kind = message.get("t")
    if kind == "out":
        if message.get("s") not in STREAMS or not isinstance(message.get("b"), bytes):
            # Only output frames decode to this; a JSON 'out' cannot carry bytes.
            raise ProtocolError("'out' message must be an output frame")
    elif kind == "done":
        error = message.get("error")
        if error is not None:
            if not isinstance(error, dict):
                raise ProtocolError("'done' message has a malformed error")
            for key in ("name", "value", "traceback"):
                _check_str(error, key)
        _check_int(message, "count")
        _check_int(message, "re")
    elif kind == "result":
        data = message.get("data")
        if not isinstance(data, dict) or not data:
            raise ProtocolError("'result' message needs a bundle (a non-empty object)")
        for mime, value in data.items():
            if mime in TEXT_MIMES and not isinstance(value, str):
                raise ProtocolError("'result' data for %s must be a string" % mime)
            if mime in OBJECT_MIMES and not isinstance(value, dict):
                raise ProtocolError("'result' data for %s must be an object" % mime)
        if not isinstance(message.get("main"), bool):
            raise ProtocolError("'result' message needs a boolean 'main'")
    elif kind == "input":
        _check_str(message, "prompt")
        _check_int(message, "n")
    elif kind == "started":
        _check_int(message, "re")
    elif kind == "fatal":
        _check_str(message, "message")
    elif kind == "completions":
        matches = message.get("matches")
        if not isinstance(matches, list) or not all(isinstance(m, str) for m in matches):
            raise ProtocolError("'completions' message needs a list of strings")
        _check_int(message, "re")
    elif kind == "ready":
        _check_int(message, "pid")
    elif kind == "stdin_more":
        pass
    else:
        raise ProtocolError("unknown message type %r" % (kind,))
    return message
