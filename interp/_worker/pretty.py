"""The text/plain of a result as IPython shows it, without IPython.

IPython does not show ``repr(obj)``: its pretty printer names types
(``int``, ``__main__.Point``), shows objects without a ``__repr__`` as
``<__main__.Point at 0x..>``, functions with their signature, sorts sets,
honours ``_repr_pretty_`` and breaks containers that do not fit in 79
columns, one item a line, indented under their opening bracket. This
module follows the same rules (learnt from how IPython 8 and 9 behave; the
code is interp's own), so a notebook gets the text back that it got in
Jupyter. Where the real IPython is already imported in the worker,
:func:`text` uses IPython's own printer instead.

The layout is a greedy one: text accumulates in a buffer together with the
places where a line may break; when the line gets too long, the outermost
group that still has such places in the buffer is broken at all of them
(and at any it gets later), and so on inward until the line fits.
Standard library only.
"""

from __future__ import annotations

import collections
import re
import sys
import types
from typing import Any, Callable, Deque, Dict, Iterable, Iterator, List, Optional, Tuple, Union

MAX_WIDTH = 79
MAX_SEQ_LENGTH = 1000
_BUILTIN_MODULES = (None, "__builtin__", "builtins", "exceptions")

Printer = Callable[[Any, "PrettyPrinter", bool], None]


class _Group:
    __slots__ = ("broken", "depth", "pending")

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self.pending = 0  # its places to break still in the buffer
        self.broken = False


class _Break:
    __slots__ = ("group", "indent", "sep")

    def __init__(self, sep: str, indent: int, group: _Group) -> None:
        self.sep, self.indent, self.group = sep, indent, group


class PrettyPrinter:
    """A layout engine plus IPython's rules for choosing how to show each object."""

    def __init__(self, max_width: int = MAX_WIDTH, max_seq_length: int = MAX_SEQ_LENGTH) -> None:
        self.max_width = max_width
        self.max_seq_length = max_seq_length
        self.out: List[str] = []
        self.column = 0
        self.buffer: Deque[Union[str, _Break]] = collections.deque()
        self.buffered = 0  # width of the buffer
        self.indentation = 0
        root = _Group(0)
        self.groups = [root]
        self.queue: List[List[_Group]] = [[root]]  # open or buffered groups, by depth
        self.seen: List[int] = []  # ids of the objects being printed (cycles)

    # -- layout ---------------------------------------------------------------

    def text(self, text: str) -> None:
        if self.buffer:
            self.buffer.append(text)
            self.buffered += len(text)
            self._fit()
        else:
            self.out.append(text)
            self.column += len(text)

    def breakable(self, sep: str = " ") -> None:
        group = self.groups[-1]
        if group.broken:
            self._flush()
            self._newline(self.indentation)
        else:
            self.buffer.append(_Break(sep, self.indentation, group))
            group.pending += 1
            self.buffered += len(sep)
            self._fit()

    def break_(self) -> None:
        """A line break that always happens (the outermost group that can
        break breaks with it)."""
        group = self._outermost()
        if group is not None:
            self._break(group)
        self._flush()
        self._newline(self.indentation)

    def begin_group(self, indent: int = 0, open: str = "") -> None:
        if open:
            self.text(open)
        group = _Group(self.groups[-1].depth + 1)
        self.groups.append(group)
        while len(self.queue) <= group.depth:
            self.queue.append([])
        self.queue[group.depth].append(group)
        self.indentation += indent

    def end_group(self, dedent: int = 0, close: str = "") -> None:
        self.indentation -= dedent
        group = self.groups.pop()
        if not group.pending:
            self._unqueue(group)
        if close:
            self.text(close)

    def group(self, indent: int = 0, open: str = "", close: str = "") -> _GroupContext:
        return _GroupContext(self, indent, open, close)

    def getvalue(self) -> str:
        self._flush()
        return "".join(self.out)

    def _newline(self, indent: int) -> None:
        self.out.append("\n" + " " * indent)
        self.column = indent

    def _unqueue(self, group: _Group) -> None:
        try:
            self.queue[group.depth].remove(group)
        except ValueError:
            pass

    def _emit(self, item: Union[str, _Break]) -> None:
        if isinstance(item, str):
            self.out.append(item)
            self.column += len(item)
            self.buffered -= len(item)
            return
        group = item.group
        group.pending -= 1
        self.buffered -= len(item.sep)
        if group.broken:
            self._newline(item.indent)
        else:
            if not group.pending:
                self._unqueue(group)
            self.out.append(item.sep)
            self.column += len(item.sep)

    def _flush(self) -> None:
        while self.buffer:
            self._emit(self.buffer.popleft())
        self.buffered = 0

    def _outermost(self) -> Optional[_Group]:
        """The outermost group with places to break in the buffer, now broken;
        open groups above it that have none are broken too (their next place
        to break will break)."""
        for level in self.queue:
            for index in range(len(level) - 1, -1, -1):
                group = level[index]
                if group.pending:
                    del level[index]
                    group.broken = True
                    return group
            for group in level:
                group.broken = True
            del level[:]
        return None

    def _fit(self) -> None:
        while self.column + self.buffered > self.max_width:
            group = self._outermost()
            if group is None:
                return
            self._break(group)

    def _break(self, group: _Group) -> None:
        """Write out the buffer up to the last place ``group`` breaks, and the text after it."""
        while group.pending:
            self._emit(self.buffer.popleft())
        while self.buffer and isinstance(self.buffer[0], str):
            self._emit(self.buffer.popleft())

    # -- objects --------------------------------------------------------------

    def pretty(self, obj: Any) -> None:
        """Lay out ``obj`` by the first rule that applies along its class's MRO."""
        key = id(obj)
        cycle = key in self.seen
        self.seen.append(key)
        self.begin_group()
        try:
            _printer_for(obj)(obj, self, cycle)
        finally:
            self.end_group()
            self.seen.pop()

    def items(self, iterable: Iterable[Any]) -> Iterator[Tuple[int, Any]]:
        """Enumerate at most max_seq_length items, then show ``...``."""
        for index, item in enumerate(iterable):
            if self.max_seq_length and index >= self.max_seq_length:
                self.text(",")
                self.breakable()
                self.text("...")
                return
            yield index, item


class _GroupContext:
    def __init__(self, printer: PrettyPrinter, indent: int, open: str, close: str) -> None:
        self.printer, self.indent, self.open, self.close = printer, indent, open, close

    def __enter__(self) -> None:
        self.printer.begin_group(self.indent, self.open)

    def __exit__(self, *exc: Any) -> None:
        self.printer.end_group(self.indent, self.close)


# -- the rules ------------------------------------------------------------------


def _get(obj: Any, name: str, default: Any = None) -> Any:
    try:
        return getattr(obj, name, default)
    except Exception:
        return default


def _mro(cls: Any) -> Tuple[Any, ...]:
    mro = _get(cls, "__mro__")
    if isinstance(mro, tuple):
        return mro
    return (cls, object)


def _printer_for(obj: Any) -> Printer:
    if obj is None or obj is True or obj is False or obj is Ellipsis or obj is NotImplemented:
        return _repr_lines
    cls = _get(obj, "__class__") or type(obj)
    for klass in _mro(cls):
        printer = _BY_TYPE.get(klass)
        if printer is None:
            printer = _BY_NAME.get((_get(klass, "__module__"), _get(klass, "__name__")))
        if printer is not None:
            return printer
        namespace = _get(klass, "__dict__") or {}
        if "_repr_pretty_" in namespace and callable(_get(klass, "_repr_pretty_")):
            return _call_repr_pretty
        if klass is not object and "__repr__" in namespace and callable(namespace["__repr__"]):
            return _repr_lines
    return _default


def _call_repr_pretty(obj: Any, p: PrettyPrinter, cycle: bool) -> None:
    obj._repr_pretty_(p, cycle)


def _repr_lines(obj: Any, p: PrettyPrinter, cycle: bool) -> None:
    """repr(obj), its lines kept as lines (indented as the group is)."""
    with p.group():
        for index, line in enumerate(repr(obj).splitlines()):
            if index:
                p.break_()
            p.text(line)


def _default(obj: Any, p: PrettyPrinter, cycle: bool) -> None:
    cls = _get(obj, "__class__") or type(obj)
    if _get(cls, "__repr__") is not object.__repr__:
        _repr_lines(obj, p, cycle)
        return
    p.begin_group(1, "<")
    p.pretty(cls)
    p.text(" at 0x%x" % id(obj))
    if cycle:
        p.text(" ...")
    p.end_group(1, ">")


def _type_name(obj: Any) -> str:
    name = _get(obj, "__qualname__")
    if not isinstance(name, str):
        name = _get(obj, "__name__")
        if not isinstance(name, str):
            name = "<unknown type>"
    module = _get(obj, "__module__")
    return name if module in _BUILTIN_MODULES else "%s.%s" % (module, name)


def _type(obj: Any, p: PrettyPrinter, cycle: bool) -> None:
    own = [klass for klass in _mro(type(obj)) if "__repr__" in (_get(klass, "__dict__") or {})]
    if own[:1] != [type]:  # a metaclass with its own repr
        _repr_lines(obj, p, cycle)
    else:
        p.text(_type_name(obj))


def _function(obj: Any, p: PrettyPrinter, cycle: bool) -> None:
    name = _get(obj, "__qualname__") or _get(obj, "__name__")
    module = _get(obj, "__module__")
    if module and module not in _BUILTIN_MODULES:
        name = "%s.%s" % (module, name)
    import inspect  # the worker starts without it

    try:
        name += str(inspect.signature(obj))
    except (ValueError, TypeError):
        pass
    p.text("<function %s>" % name)


def _exception(obj: Any, p: PrettyPrinter, cycle: bool) -> None:
    name = _type_name(obj.__class__)
    step = len(name) + 1
    p.begin_group(step, name + "(")
    for index, arg in enumerate(_get(obj, "args", ()) or ()):
        if index:
            p.text(",")
            p.breakable()
        p.pretty(arg)
    p.end_group(step, ")")


def _sequence(open: str, close: str) -> Printer:
    def show(obj: Any, p: PrettyPrinter, cycle: bool) -> None:
        if cycle:
            p.text(open + "..." + close)
            return
        step = len(open)
        p.begin_group(step, open)
        for index, item in p.items(obj):
            if index:
                p.text(",")
                p.breakable()
            p.pretty(item)
        if isinstance(obj, tuple) and len(obj) == 1:
            p.text(",")
        p.end_group(step, close)
    return show


def _sorted(items: Iterable[Any]) -> List[Any]:
    """Sorted if the items compare, else by their str, else as they come."""
    items = list(items)
    try:
        return sorted(items)
    except Exception:
        try:
            return sorted(items, key=str)
        except Exception:
            return items


def _set(open: str, close: str) -> Printer:
    def show(obj: Any, p: PrettyPrinter, cycle: bool) -> None:
        if not obj:
            p.text(type(obj).__name__ + "()")
            return
        if cycle:
            p.text(open + "..." + close)
            return
        step = len(open)
        p.begin_group(step, open)
        items = obj if p.max_seq_length and len(obj) >= p.max_seq_length else _sorted(obj)
        for index, item in p.items(items):
            if index:
                p.text(",")
                p.breakable()
            p.pretty(item)
        p.end_group(step, close)
    return show


def _dict(open: str, close: str) -> Printer:
    def show(obj: Any, p: PrettyPrinter, cycle: bool) -> None:
        if cycle:
            p.text("{...}")
            return
        step = len(open)
        p.begin_group(step, open)
        for index, key in p.items(obj.keys()):
            if index:
                p.text(",")
                p.breakable()
            p.pretty(key)
            p.text(": ")
            p.pretty(obj[key])
        p.end_group(step, close)
    return show


def _super(obj: Any, p: PrettyPrinter, cycle: bool) -> None:
    p.begin_group(8, "<super: ")
    p.pretty(obj.__thisclass__)
    p.text(",")
    p.breakable()
    p.pretty(obj.__self__)
    p.end_group(8, ">")


_RE_FLAGS = ("IGNORECASE", "LOCALE", "MULTILINE", "DOTALL", "UNICODE", "VERBOSE", "DEBUG")


def _pattern(obj: Any, p: PrettyPrinter, cycle: bool) -> None:
    pattern = repr(obj.pattern)
    if pattern[:1] in "uU":
        pattern = pattern[1:]
        prefix = "ur"
    else:
        prefix = "r"
    p.text("re.compile(" + prefix + pattern.replace("\\\\", "\\"))
    if obj.flags:
        p.text(",")
        p.breakable()
        p.text("|".join("re." + flag for flag in _RE_FLAGS if obj.flags & getattr(re, flag)))
    p.text(")")


def _namespace(obj: Any, p: PrettyPrinter, cycle: bool) -> None:
    with p.group(len("namespace("), "namespace(", ")"):
        if cycle:
            p.text("...")
            return
        for index, (name, value) in enumerate(obj.__dict__.items()):
            if index:
                p.text(",")
                p.breakable()
            keyword = "%s=" % name
            with p.group(len(keyword), keyword):
                p.pretty(value)


def _called(body: Callable[[Any, PrettyPrinter], None]) -> Printer:
    """``Name(<body>)``, the name of the object's class."""
    def show(obj: Any, p: PrettyPrinter, cycle: bool) -> None:
        name = obj.__class__.__name__
        with p.group(len(name) + 1, name + "(", ")"):
            if cycle:
                p.text("...")
            else:
                body(obj, p)
    return show


def _defaultdict(obj: Any, p: PrettyPrinter) -> None:
    p.pretty(obj.default_factory)
    p.text(",")
    p.breakable()
    p.pretty(dict(obj))


def _deque(obj: Any, p: PrettyPrinter) -> None:
    p.pretty(list(obj))
    if obj.maxlen is not None:
        p.text(",")
        p.breakable()
        p.text("maxlen=")
        p.pretty(obj.maxlen)


def _if_any(body: Callable[[Any], Any]) -> Callable[[Any, PrettyPrinter], None]:
    def show(obj: Any, p: PrettyPrinter) -> None:
        if len(obj):
            p.pretty(body(obj))
    return show


_BY_TYPE: Dict[Any, Printer] = {
    int: _repr_lines, float: _repr_lines, str: _repr_lines, bytes: _repr_lines,
    range: _repr_lines, slice: _repr_lines, types.MethodType: _repr_lines,
    tuple: _sequence("(", ")"), list: _sequence("[", "]"),
    dict: _dict("{", "}"), types.MappingProxyType: _dict("mappingproxy({", "})"),
    set: _set("{", "}"), frozenset: _set("frozenset({", "})"),
    super: _super, re.Pattern: _pattern, type: _type,
    types.FunctionType: _function, types.BuiltinFunctionType: _function,
    BaseException: _exception, types.SimpleNamespace: _namespace,
}
_BY_NAME: Dict[Tuple[Any, Any], Printer] = {
    ("collections", "defaultdict"): _called(_defaultdict),
    ("collections", "OrderedDict"): _called(_if_any(lambda obj: list(obj.items()))),
    ("collections", "deque"): _called(_deque),
    ("collections", "Counter"): _called(_if_any(lambda obj: dict(obj.most_common()))),
    ("collections", "UserList"): _called(lambda obj, p: p.pretty(obj.data)),
    ("os", "_Environ"): lambda obj, p, cycle: _dict("environ({", "})")(obj, p, cycle),
}


def pretty(obj: Any, max_width: int = MAX_WIDTH) -> str:
    """``obj`` as IPython's pretty printer lays it out (interp's printer)."""
    printer = PrettyPrinter(max_width)
    printer.pretty(obj)
    return printer.getvalue()


def text(obj: Any) -> str:
    """The text/plain of ``obj``: IPython's own printer where IPython is
    already imported, interp's otherwise. May raise what ``obj``'s repr raises."""
    ipython = sys.modules.get("IPython.lib.pretty")
    if ipython is not None and callable(getattr(ipython, "pretty", None)):
        return str(ipython.pretty(obj, max_width=MAX_WIDTH, max_seq_length=MAX_SEQ_LENGTH))
    return pretty(obj)
