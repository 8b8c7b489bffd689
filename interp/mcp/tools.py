"""The MCP server's tools: their definitions as each protocol revision shows
them, argument checking, and the results a model gets back.

Private to :mod:`interp.mcp`; no I/O here. Revisions are compared as their
date strings (``"2025-06-18" < "2025-11-25"``).
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any, Dict, List, Optional, Tuple

from ..types import MIME_FIELDS, ExecutionResult, Result

#: Revisions served after an ``initialize`` handshake, newest first.
LEGACY_VERSIONS = ("2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05")
#: Stateless revisions: every request names its version in ``_meta``.
MODERN_VERSIONS = ("2026-07-28",)
SUPPORTED_VERSIONS = MODERN_VERSIONS + LEGACY_VERSIONS

#: Characters of output a run_code result gives the model by default (each
#: of stdout, stderr, the traceback and every text result); the middle of a
#: longer one is cut, keeping its head and tail.
DEFAULT_OUTPUT_LIMIT = 20_000
#: The largest ``output_limit`` a call may ask for.
MAX_OUTPUT_LIMIT = 1_000_000
#: Tool names: 1 to 128 letters, digits, '_', '-' or '.' (2025-11-25, "Tool Names").
TOOL_NAME = re.compile(r"[A-Za-z0-9_.-]{1,128}")

_CONTEXT_ID = {"type": "string",
               "description": "Id of a context from create_context; omit (or 'default') for the default context."}

#: MIME types whose data a model cannot read as text (base64); shown as image blocks where possible.
_IMAGE_TYPES = {"image/png": "png", "image/jpeg": "jpeg"}

RUN_CODE_OUTPUT_SCHEMA: Dict[str, Any] = {
    "type": "object",
    "properties": {
        "stdout": {"type": "string", "description": "What the code wrote to stdout (capped: see truncated)."},
        "stderr": {"type": "string", "description": "What the code wrote to stderr (capped: see truncated)."},
        "results": {"type": "array", "description": "display() calls, then the value of the last expression.",
                    "items": {"type": "object",
                              "properties": {"is_main_result": {"type": "boolean"},
                                             "data": {"type": "object", "description": "MIME type -> data"}},
                              "required": ["is_main_result", "data"]}},
        "error": {"type": ["object", "null"], "description": "The exception that escaped the code.",
                  "properties": {"name": {"type": "string"}, "value": {"type": "string"},
                                 "traceback": {"type": "string"}},
                  "required": ["name", "value", "traceback"]},
        "execution_count": {"type": "integer", "description": "Number of this run in its context (0: none)."},
        "truncated": {"type": "boolean", "description": "True when some output was cut to the output limit."},
        "outcome": {"type": "string", "enum": ["ok", "error", "timeout", "worker_died", "restarted", "failed"],
                    "description": "ok, error (the code raised), timeout, worker_died, restarted (by another "
                                   "call) or failed (the run could not start, e.g. an unknown context)."},
        "state_kept": {"type": "boolean", "description": "Whether the context's variables survived this call."},
    },
    "required": ["stdout", "stderr", "results", "error", "execution_count", "truncated", "outcome", "state_kept"],
}


def _hints(read_only: bool, destructive: bool, idempotent: bool, open_world: bool) -> Dict[str, bool]:
    return {"readOnlyHint": read_only, "destructiveHint": destructive, "idempotentHint": idempotent,
            "openWorldHint": open_world}


def make_tools(open_world: bool) -> List[Dict[str, Any]]:
    """The tool definitions in their newest form. ``open_world`` is False when
    the code runs in a sandbox without network (then it can reach nothing
    outside its own workspace)."""
    tools: List[Dict[str, Any]] = [
        {
            "name": "run_code",
            "title": "Run Python code",
            "description": (
                "Run Python code in a stateful interpreter context and return its output. Variables, "
                "imports and functions persist between calls on the same context. The value of the "
                "last expression is returned as the result (like a notebook cell); PNG and JPEG images "
                "(e.g. matplotlib figures after plt.show()) come back as images. stdout, stderr, the result "
                "and the traceback of an uncaught exception are labelled in the output; long output keeps "
                "its head and tail. input() gets EOF."),
            "inputSchema": {
                "type": "object",
                "properties": {
                    "code": {"type": "string", "description": "The Python code to run."},
                    "context_id": _CONTEXT_ID,
                    "timeout": {"type": "number", "minimum": 0,
                                "description": "Seconds before the run is interrupted (0: no limit; default 600)."},
                    "output_limit": {"type": "integer", "minimum": 0, "maximum": MAX_OUTPUT_LIMIT,
                                     "description": "Characters of each output part to return, at most the "
                                                    "server's limit (0 or omitted: the server's limit); the "
                                                    "middle of longer output is cut."},
                },
                "required": ["code"],
                "additionalProperties": False,
            },
            "outputSchema": RUN_CODE_OUTPUT_SCHEMA,
            "annotations": _hints(False, True, False, open_world),
            "execution": {"taskSupport": "optional"},
        },
        {
            "name": "create_context",
            "title": "Create an interpreter context",
            "description": ("Start a new, isolated Python context (its own process and variables) and return "
                            "its id, to pass as context_id. It lives until delete_context or the server ends."),
            "inputSchema": {
                "type": "object",
                "properties": {"cwd": {"type": "string", "description": "Working directory of the context."}},
                "additionalProperties": False,
            },
            "annotations": _hints(False, False, False, False),
        },
        {
            "name": "list_contexts",
            "title": "List interpreter contexts",
            "description": ("List the contexts (made by create_context, or by HTTP clients of the same "
                            "server); the default context is not listed."),
            "inputSchema": {"type": "object", "properties": {}, "additionalProperties": False},
            "annotations": _hints(True, False, True, False),
        },
        {
            "name": "delete_context",
            "title": "Delete an interpreter context",
            "description": "Stop a context's process and every process it started; its id becomes invalid.",
            "inputSchema": {
                "type": "object",
                "properties": {"context_id": {"type": "string", "description": "Id of the context to delete."}},
                "required": ["context_id"],
                "additionalProperties": False,
            },
            "annotations": _hints(False, True, True, False),
        },
        {
            "name": "restart_context",
            "title": "Restart an interpreter context",
            "description": ("Replace a context's process with a fresh one (same id and directory); all its "
                            "state is lost."),
            "inputSchema": {"type": "object", "properties": {"context_id": _CONTEXT_ID},
                            "additionalProperties": False},
            "annotations": _hints(False, True, False, False),
        },
        {
            "name": "interrupt",
            "title": "Interrupt running code",
            "description": ("Raise KeyboardInterrupt in the code running in a context (no effect when it is "
                            "idle); state is kept."),
            "inputSchema": {"type": "object", "properties": {"context_id": _CONTEXT_ID},
                            "additionalProperties": False},
            "annotations": _hints(False, False, False, False),
        },
    ]
    for tool in tools:
        assert TOOL_NAME.fullmatch(tool["name"]), tool["name"]
    return tools


def tools_for(tools: List[Dict[str, Any]], version: str) -> List[Dict[str, Any]]:
    """The tool definitions as revision ``version`` defines a Tool: annotations
    from 2025-03-26 (the title inside them until 2025-06-18 added ``title``),
    ``outputSchema`` from 2025-06-18, ``execution`` (tasks) only in 2025-11-25
    (the 2026-07-28 tasks extension needs no per-tool flag)."""
    shaped = []
    for tool in tools:
        item = copy.deepcopy(tool)
        if version < "2025-06-18":
            title = item.pop("title")
            item.pop("outputSchema", None)
            if version >= "2025-03-26":
                item["annotations"]["title"] = title
        if version < "2025-03-26":
            item.pop("annotations")
        if version != "2025-11-25":
            item.pop("execution", None)
        shaped.append(item)
    return shaped


# -- results ------------------------------------------------------------------------


def tool_error(text: str) -> Dict[str, Any]:
    """A tool result that reports a failure to the model."""
    return {"content": [{"type": "text", "text": text}], "isError": True}


def json_result(value: Dict[str, Any]) -> Dict[str, Any]:
    """A tool result carrying ``value`` as JSON text and as structured content."""
    return {"content": [{"type": "text", "text": json.dumps(value, indent=2)}], "structuredContent": value,
            "isError": False}


def effective_output_limit(requested: Any, operator: int) -> int:
    """The output limit of a call: what it asked for (``requested``: None or
    0 for the server's), never more than the operator's limit (``operator``;
    0: none, then 0 asked is no limit too)."""
    if not requested:
        return operator
    return min(requested, operator) if operator else int(requested)


def cap(text: str, limit: int) -> Tuple[str, bool]:
    """``text`` with its middle cut to keep at most about ``limit``
    characters (head and tail, whole lines where possible), and a line saying
    how much was cut; the bool says whether anything was. ``limit`` 0: no cap."""
    if not limit or len(text) <= limit:
        return text, False
    head = text[:limit // 2]
    tail = text[len(text) - (limit - len(head)):]
    if "\n" in head[len(head) // 2:]:  # end the head at a line break if one is near
        head = head[:head.rindex("\n") + 1]
    if "\n" in tail[:len(tail) // 2]:
        tail = tail[tail.index("\n") + 1:]
    cut = len(text) - len(head) - len(tail)
    separator = "" if head.endswith("\n") or not head else "\n"
    return "%s%s[... %d characters cut (output limit %d) ...]\n%s" % (head, separator, cut, limit, tail), True


def _result_data(item: Result) -> Dict[str, Any]:
    """A Result as its MIME bundle."""
    data = {mime: getattr(item, attr) for mime, attr in MIME_FIELDS.items() if getattr(item, attr) is not None}
    data.update(item.extra)
    return data


def run_code_result(result: Optional[ExecutionResult], outcome: str, failure: Optional[str],
                    limit: int, state_kept: bool = True) -> Dict[str, Any]:
    """The run_code tool result.

    Content: one text block with labelled sections ([stdout], [stderr],
    [display], [result], [error], then ``failure``: what went wrong and
    whether the state survived), one image block per PNG or JPEG result.
    Rich results without text show their MIME types. Each text part is capped
    at ``limit`` characters (head and tail kept). ``structuredContent``
    follows RUN_CODE_OUTPUT_SCHEMA; ``isError`` is set when the code raised
    or the run failed."""
    sections: List[str] = []
    images: List[Dict[str, Any]] = []
    structured_results: List[Dict[str, Any]] = []
    truncated = bool(result and result.truncated)

    def capped(text: str) -> str:
        nonlocal truncated
        text, cut = cap(text, limit)
        truncated = truncated or cut
        return text

    stdout = capped(result.stdout) if result else ""
    stderr = capped(result.stderr) if result else ""
    if stdout:
        sections.append("[stdout]\n" + stdout.rstrip("\n"))
    if stderr:
        sections.append("[stderr]\n" + stderr.rstrip("\n"))
    for item in result.results if result else []:
        data = {mime: capped(value) if isinstance(value, str) and mime not in _IMAGE_TYPES else value
                for mime, value in _result_data(item).items()}
        structured_results.append({"is_main_result": item.is_main_result, "data": data})
        label = "[result]" if item.is_main_result else "[display]"
        image = next(((mime, data[mime]) for mime in _IMAGE_TYPES if isinstance(data.get(mime), str)), None)
        if image is not None:
            images.append({"type": "image", "data": image[1], "mimeType": image[0]})
        elif item.text is not None:
            sections.append("%s\n%s" % (label, data["text/plain"]))
        others = [mime for mime in data if mime not in ("text/plain",) + tuple(_IMAGE_TYPES)]
        for mime in others:  # HTML, Markdown, JSON...: as text, named by type
            value = data[mime]
            text = value if isinstance(value, str) else capped(json.dumps(value))
            sections.append("%s %s\n%s" % (label, mime, text))
    error = None
    if result is not None and result.error is not None:
        traceback = capped(result.error.traceback)
        error = {"name": result.error.name, "value": result.error.value, "traceback": traceback}
        sections.append("[error]\n" + traceback.rstrip("\n"))
    if failure:
        sections.append(failure)
    if not sections and not images:
        sections.append("[no output]")
    content: List[Dict[str, Any]] = [{"type": "text", "text": "\n\n".join(sections)}] if sections else []
    structured = {
        "stdout": stdout, "stderr": stderr, "results": structured_results, "error": error,
        "execution_count": result.execution_count if result else 0, "truncated": truncated,
        "outcome": outcome, "state_kept": state_kept,
    }
    return {"content": content + images, "structuredContent": structured, "isError": outcome != "ok"}


def shape_result(result: Dict[str, Any], version: str) -> Dict[str, Any]:
    """A tool result as revision ``version`` defines CallToolResult:
    structuredContent from 2025-06-18; image blocks are in every revision."""
    if version < "2025-06-18":
        result = dict(result)
        result.pop("structuredContent", None)
    return result


# -- argument checks ------------------------------------------------------------------

_JSON_TYPES: Dict[str, Tuple[type, ...]] = {"string": (str,), "number": (int, float), "integer": (int,),
                                            "object": (dict,), "array": (list,), "boolean": (bool,),
                                            "null": (type(None),)}


def check_schema(value: Any, schema: Dict[str, Any], where: str) -> Optional[str]:
    """Check ``value`` against the subset of JSON Schema the tool schemas
    use (type, properties, required, additionalProperties, minimum,
    maximum); return what is wrong, or None."""
    kind = schema.get("type")
    if isinstance(kind, str):
        ok = isinstance(value, _JSON_TYPES[kind]) and (kind == "boolean" or not isinstance(value, bool))
        if not ok:
            return "%s must be %s %s" % (where, "an" if kind[0] in "aeiou" else "a", kind)
    if "minimum" in schema and value < schema["minimum"]:
        return "%s must be >= %s" % (where, schema["minimum"])
    if "maximum" in schema and value > schema["maximum"]:
        return "%s must be <= %s" % (where, schema["maximum"])
    if kind == "object":
        properties = schema.get("properties", {})
        for name in schema.get("required", ()):
            if name not in value:
                return "%s.%s is required" % (where, name)
        for name, item in value.items():
            if name in properties:
                problem = check_schema(item, properties[name], "%s.%s" % (where, name))
                if problem:
                    return problem
            elif schema.get("additionalProperties") is False:
                return "%s has an unknown property %r (allowed: %s)" % (where, name, ", ".join(properties))
    return None
