"""The public value types: immutable, comparable by value, with readable reprs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from .protocol import OBJECT_MIMES, RESULT_FORMATS


@dataclass(frozen=True)
class OutputMessage:
    """One line of output, including its trailing newline.

    A final partial line (no newline yet) is delivered without one, either
    when the run ends or when it has waited a short while for its newline.
    """

    output: str


@dataclass(frozen=True)
class ExecutionError:
    """An exception that escaped the user's code.

    ``name`` is the exception class name (``"ZeroDivisionError"``), ``value``
    is ``str(exception)`` (``"division by zero"``) and ``traceback`` the
    formatted traceback, as Python itself would print it, without interp's
    own frames.
    """

    name: str
    value: str
    traceback: str


#: MIME type -> Result attribute, for the formats Result names directly.
MIME_FIELDS = {mime: attr for mime, attr, _ in RESULT_FORMATS}
_OBJECT_FIELDS = frozenset(MIME_FIELDS[mime] for mime in OBJECT_MIMES)


def format_problem(attr: str, value: Any) -> Optional[str]:
    """Why ``value`` cannot be Result's ``attr`` (``"not a string"``), or None if
    it can: ``chart`` and ``data`` take objects, ``json`` any value, the rest strings."""
    if attr in _OBJECT_FIELDS:
        return None if isinstance(value, dict) else "not an object"
    return None if attr == "json" or isinstance(value, str) else "not a string"


@dataclass(frozen=True)
class Result:
    """A rich value: the last expression of a run, or one ``display()`` call.

    ``text`` is the ``repr``; the other fields are set where the object
    provides them (``_repr_html_`` and friends, or ``_repr_mimebundle_``).
    ``png`` and ``jpeg`` are base64 strings, ``json`` is the decoded value.
    ``extra`` maps any other MIME type to its data. ``is_main_result`` is
    True for the value of the run's last expression.

    ``chart`` is a matplotlib figure's data in E2B's chart schema (a dict:
    ``type``, ``title``, ``elements``, axis labels, ticks and scales) and
    ``data`` a pandas DataFrame or Series as the Frictionless table pandas
    writes (``{"schema": ..., "data": [...]}``); both decoded, see
    docs/charts-and-tables.md.
    """

    text: Optional[str] = None
    html: Optional[str] = None
    markdown: Optional[str] = None
    svg: Optional[str] = None
    png: Optional[str] = None
    jpeg: Optional[str] = None
    latex: Optional[str] = None
    json: Any = None
    javascript: Optional[str] = None
    extra: Dict[str, Any] = field(default_factory=dict)
    is_main_result: bool = False
    # after is_main_result, so that positional arguments keep their meaning
    chart: Optional[Dict[str, Any]] = None
    data: Optional[Dict[str, Any]] = None

    @classmethod
    def from_bundle(cls, bundle: Dict[str, Any], is_main_result: bool = False) -> Result:
        """Build a Result from a MIME bundle (MIME type -> data)."""
        known = {attr: bundle[mime] for mime, attr in MIME_FIELDS.items() if mime in bundle}
        extra = {mime: data for mime, data in bundle.items() if mime not in MIME_FIELDS}
        return cls(**known, extra=extra, is_main_result=is_main_result)

    def formats(self) -> List[str]:
        """The names of the formats this result has (``"text"``, ``"png"``, ...),
        then the MIME types in ``extra``."""
        names = [attr for attr in MIME_FIELDS.values() if getattr(self, attr) is not None]
        return names + list(self.extra)

    def __repr__(self) -> str:
        parts = ["%s=%s" % (attr, _short(getattr(self, attr)))
                 for attr in MIME_FIELDS.values() if getattr(self, attr) is not None]
        if self.extra:
            parts.append("extra=%s" % _short(self.extra))
        parts.append("is_main_result=%r" % self.is_main_result)
        return "Result(%s)" % ", ".join(parts)


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 15] + "...<%d chars>" % len(text)


@dataclass(frozen=True)
class ExecutionResult:
    """What one ``run_code`` call produced.

    ``stdout`` and ``stderr`` are exactly the concatenation of the lines
    the ``on_stdout`` / ``on_stderr`` callbacks received (up to ``max_output``); ``error`` is set
    when the code raised. ``results`` holds the rich values (``display()``
    calls, then the last expression's value), ``execution_count`` numbers
    the runs of a context from 1. ``truncated`` is True when a stream went
    past the interpreter's ``max_output`` and the rest of it was not kept
    (a marker at the end of that stream says how much); callbacks still
    received every line.
    """

    stdout: str = ""
    stderr: str = ""
    error: Optional[ExecutionError] = None
    results: List[Result] = field(default_factory=list)
    execution_count: int = 0
    truncated: bool = False

    @property
    def text(self) -> Optional[str]:
        """The text of the main result (the last expression's repr), or None."""
        for result in self.results:
            if result.is_main_result:
                return result.text
        return None


@dataclass(frozen=True)
class InterpreterContext:
    """A snapshot of one execution context.

    ``id`` identifies it in every call, ``cwd`` is the absolute directory its
    worker started in, ``language`` is always ``"python"``, and ``active``
    says whether its worker process was alive when the snapshot was taken.
    """

    id: str
    cwd: str
    language: str = "python"
    active: bool = True


@dataclass(frozen=True)
class FileInfo:
    """One file or directory, as ``fs.get_file_info`` and ``fs.list_files`` describe it.

    ``name`` is the last component of its path, ``is_dir`` is True for a
    directory (False for a symbolic link, even to one: links are described,
    not followed), ``size`` is in bytes, ``mode`` is in ``ls -l`` form
    (``"-rw-r--r--"``, ``"drwxr-xr-x"``, ``"lrwxrwxrwx"``) and ``mod_time``
    the last modification in ISO 8601 with a UTC offset
    (``"2026-12-06T15:11:21.123456+00:00"``).
    """

    name: str
    is_dir: bool
    size: int
    mode: str
    mod_time: str
