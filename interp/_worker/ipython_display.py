"""``IPython.display`` for workers where IPython is not installed.

A stand-in for the part of IPython's display API that code written for
notebooks imports: ``display``, ``clear_output``, ``update_display``, the
``display_*`` functions and the classes ``HTML``, ``Markdown``, ``Math``,
``Latex``, ``SVG``, ``JSON``, ``Javascript``, ``Image``, ``IFrame``,
``Pretty``, ``DisplayObject`` and ``TextDisplayObject``. For the same
arguments each object gives the same MIME bundle (and the same repr) as
IPython 9's own (IPython 8's ``IFrame`` lacked the ``referrerpolicy``
attribute). Written for interp, standard library only.

:mod:`.notebook` makes it importable as ``IPython``, ``IPython.display``,
``IPython.core.display``, ``IPython.core.display_functions`` and
``IPython.lib.display``, only when the real IPython cannot be imported, and
points :data:`hook` at the worker's ``display()``.
"""

from __future__ import annotations

import base64
import json
import os
import struct
import warnings
from copy import deepcopy
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple, Union, cast

#: The worker's display(); without it display() prints, as IPython's does outside a kernel.
hook: Optional[Callable[..., Any]] = None

_CORE = "IPython.core.display"


def display(*objs: Any, include: Optional[List[str]] = None, exclude: Optional[List[str]] = None,
            metadata: Optional[Dict[str, Any]] = None, transient: Optional[Dict[str, Any]] = None,
            display_id: Any = None, raw: bool = False, clear: bool = False, **kwargs: Any) -> None:
    """Show each object as a rich result (see interp's builtin display())."""
    if hook is None:
        print(*objs)
        return
    hook(*objs, include=include, exclude=exclude, metadata=metadata, transient=transient,
         display_id=display_id, raw=raw, clear=clear, **kwargs)


def update_display(obj: Any, *, display_id: Any, **kwargs: Any) -> None:
    """Show ``obj`` again (interp keeps no display ids: it is a new result)."""
    display(obj, display_id=display_id, update=True, **kwargs)


def clear_output(wait: bool = False) -> None:
    """Accepted and ignored: interp's results are a list, not a screen."""


def _display_mimetype(mimetype: str, objs: Tuple[Any, ...], raw: bool = False,
                      metadata: Optional[Dict[str, Any]] = None) -> None:
    if raw:
        objs = tuple({mimetype: obj} for obj in objs)
    display(*objs, raw=raw, metadata=metadata, include=[mimetype])


def display_pretty(*objs: Any, **kwargs: Any) -> None:
    _display_mimetype("text/plain", objs, **kwargs)


def display_html(*objs: Any, **kwargs: Any) -> None:
    _display_mimetype("text/html", objs, **kwargs)


def display_markdown(*objs: Any, **kwargs: Any) -> None:
    _display_mimetype("text/markdown", objs, **kwargs)


def display_svg(*objs: Any, **kwargs: Any) -> None:
    _display_mimetype("image/svg+xml", objs, **kwargs)


def display_png(*objs: Any, **kwargs: Any) -> None:
    _display_mimetype("image/png", objs, **kwargs)


def display_jpeg(*objs: Any, **kwargs: Any) -> None:
    _display_mimetype("image/jpeg", objs, **kwargs)


def display_latex(*objs: Any, **kwargs: Any) -> None:
    _display_mimetype("text/latex", objs, **kwargs)


def display_json(*objs: Any, **kwargs: Any) -> None:
    _display_mimetype("application/json", objs, **kwargs)


def display_javascript(*objs: Any, **kwargs: Any) -> None:
    _display_mimetype("application/javascript", objs, **kwargs)


def display_pdf(*objs: Any, **kwargs: Any) -> None:
    _display_mimetype("application/pdf", objs, **kwargs)


def _exists(path: str) -> bool:
    try:
        return os.path.exists(path)
    except Exception:
        return False


class DisplayObject:
    """Data to display, given as is, read from ``filename`` or fetched from ``url``
    (a str ``data`` that starts with ``http`` is a URL, one that names a file is a filename)."""

    _read_flags = "r"
    metadata: Optional[Dict[str, Any]] = None

    def __init__(self, data: Any = None, url: Optional[str] = None, filename: Optional[str] = None,
                 metadata: Optional[Dict[str, Any]] = None) -> None:
        if isinstance(data, os.PathLike):
            data = os.fspath(data)
        if isinstance(data, str):
            if data.startswith("http") and url is None:
                url, filename, data = data, None, None
            elif filename is None and _exists(data):
                url, filename, data = None, data, None
        self.url = url
        self.filename = filename
        self.data = data
        if metadata is not None:
            self.metadata = metadata
        elif self.metadata is None:
            self.metadata = {}
        self.reload()
        self._check_data()

    def __repr__(self) -> str:
        return "<%s.%s object>" % (type(self).__module__, type(self).__name__)

    def _check_data(self) -> None:
        pass

    def _data_and_metadata(self) -> Any:
        if self.metadata:
            return self.data, deepcopy(self.metadata)
        return self.data

    def reload(self) -> None:
        """Read the data again from the file or the URL."""
        if self.filename is not None:
            if "b" in self._read_flags:
                with open(self.filename, "rb") as binary:
                    self.data = binary.read()
            else:
                with open(self.filename, encoding="utf-8") as text:
                    self.data = text.read()
        elif self.url is not None:
            self.data = _fetch(self.url)


def _fetch(url: str) -> Union[str, bytes]:
    """The body at ``url``: text if the response names its charset, else bytes."""
    import gzip
    from urllib.request import urlopen

    with urlopen(url) as response:
        data = response.read()
        content_type = response.headers.get("content-type", "")
        content_encoding = response.headers.get("content-encoding", "")
    charset = None
    for part in content_type.split(";"):
        part = part.strip()
        if part.startswith("charset"):
            charset = part.split("=")[-1].strip()
            break
    if "gzip" in content_encoding:
        text: str = gzip.decompress(data).decode(charset or "utf-8")
        return text
    body: Union[str, bytes] = data.decode(charset, "replace") if charset else data
    return body


class TextDisplayObject(DisplayObject):
    """Text to display."""

    def _check_data(self) -> None:
        if self.data is not None and not isinstance(self.data, str):
            raise TypeError("%s expects text, not %r" % (type(self).__name__, self.data))


class Pretty(TextDisplayObject):
    """Plain text."""

    def _repr_pretty_(self, pp: Any, cycle: bool) -> Any:
        return pp.text(self.data)


class HTML(TextDisplayObject):
    """HTML (``text/html``)."""

    def __init__(self, data: Any = None, url: Optional[str] = None, filename: Optional[str] = None,
                 metadata: Optional[Dict[str, Any]] = None) -> None:
        if isinstance(data, str) and data[:10].lower().startswith("<iframe ") and \
                data[-10:].lower().endswith("</iframe>"):
            warnings.warn("Consider using IPython.display.IFrame instead", stacklevel=2)
        super().__init__(data=data, url=url, filename=filename, metadata=metadata)

    def _repr_html_(self) -> Any:
        return self._data_and_metadata()

    def __html__(self) -> Any:
        return self._repr_html_()


class Markdown(TextDisplayObject):
    """Markdown (``text/markdown``)."""

    def _repr_markdown_(self) -> Any:
        return self._data_and_metadata()


class Math(TextDisplayObject):
    """A LaTeX formula, shown in display style (``text/latex``)."""

    def _repr_latex_(self) -> Any:
        text = "$\\displaystyle %s$" % self.data.strip("$")
        return (text, deepcopy(self.metadata)) if self.metadata else text


class Latex(TextDisplayObject):
    """LaTeX (``text/latex``)."""

    def _repr_latex_(self) -> Any:
        return self._data_and_metadata()


class SVG(DisplayObject):
    """An SVG image (``image/svg+xml``): the ``<svg>`` element of the document given."""

    _read_flags = "rb"
    _data: Optional[str] = None

    @property
    def data(self) -> Optional[str]:
        return self._data

    @data.setter
    def data(self, svg: Any) -> None:
        if svg is None:
            self._data = None
            return
        from xml.dom import minidom

        elements = minidom.parseString(svg).getElementsByTagName("svg")
        if elements:
            svg = elements[0].toxml()
        self._data = svg.decode("utf-8") if isinstance(svg, bytes) else svg

    def _repr_svg_(self) -> Any:
        return self._data_and_metadata()


class JSON(DisplayObject):
    """A JSON-able dict or list (``application/json``); ``expanded``, ``root``
    and other keywords become its metadata."""

    _data: Any = None

    def __init__(self, data: Any = None, url: Optional[str] = None, filename: Optional[str] = None,
                 expanded: bool = False, metadata: Optional[Dict[str, Any]] = None, root: str = "root",
                 **kwargs: Any) -> None:
        self.metadata = {"expanded": expanded, "root": root}
        if metadata:
            self.metadata.update(metadata)
        if kwargs:
            self.metadata.update(kwargs)
        super().__init__(data=data, url=url, filename=filename)

    def _check_data(self) -> None:
        if self.data is not None and not isinstance(self.data, (dict, list)):
            raise TypeError("%s expects JSONable dict or list, not %r" % (type(self).__name__, self.data))

    @property
    def data(self) -> Any:
        return self._data

    @data.setter
    def data(self, data: Any) -> None:
        if isinstance(data, os.PathLike):
            data = os.fspath(data)
        if isinstance(data, str):
            if self.filename is None and self.url is None:
                warnings.warn("JSON expects JSONable dict or list, not JSON strings", stacklevel=2)
            data = json.loads(data)
        self._data = data

    def _data_and_metadata(self) -> Any:
        return self.data, self.metadata

    def _repr_json_(self) -> Any:
        return self._data_and_metadata()


_CSS_LOADER = ('var link = document.createElement("link");\n\tlink.rel = "stylesheet";\n\tlink.type = "text/css";\n'
               '\tlink.href = "%s";\n\tdocument.head.appendChild(link);\n')
_LIB_LOADER = ('new Promise(function(resolve, reject) {\n\tvar script = document.createElement("script");\n'
               '\tscript.onload = resolve;\n\tscript.onerror = reject;\n\tscript.src = "%s";\n'
               '\tdocument.head.appendChild(script);\n}).then(() => {\n')
_LIB_END = "\n});"


class Javascript(TextDisplayObject):
    """JavaScript (``application/javascript``), run after loading ``lib``
    (script URLs) and ``css`` (stylesheet URLs)."""

    def __init__(self, data: Any = None, url: Optional[str] = None, filename: Optional[str] = None,
                 lib: Union[str, List[str], Tuple[str, ...], None] = None,
                 css: Union[str, List[str], Tuple[str, ...], None] = None) -> None:
        libs = [lib] if isinstance(lib, str) else [] if lib is None else lib
        sheets = [css] if isinstance(css, str) else [] if css is None else css
        if not isinstance(libs, (list, tuple)):
            raise TypeError("expected sequence, got: %r" % (lib,))
        if not isinstance(sheets, (list, tuple)):
            raise TypeError("expected sequence, got: %r" % (css,))
        self.lib = libs
        self.css = sheets
        super().__init__(data=data, url=url, filename=filename)

    def _repr_javascript_(self) -> str:
        loaders = "".join(_CSS_LOADER % sheet for sheet in self.css)
        loaders += "".join(_LIB_LOADER % lib for lib in self.lib)
        return loaders + cast(str, self.data) + _LIB_END * len(self.lib)


def _png_size(data: bytes) -> Tuple[int, int]:
    start = data.index(b"IHDR") + 4
    width, height = struct.unpack(">ii", data[start:start + 8])
    return width, height


def _jpeg_size(data: bytes) -> Tuple[int, int]:
    index = 4
    while True:  # walk the segments to the start of frame
        index += struct.unpack(">H", data[index:index + 2])[0]
        if data[index:index + 2] == b"\xff\xc0":
            break
        index += 2
    height, width = struct.unpack(">HH", data[index + 5:index + 9])
    return width, height


def _gif_size(data: bytes) -> Tuple[int, int]:
    width, height = struct.unpack("<HH", data[6:10])
    return width, height


class Image(DisplayObject):
    """A PNG, JPEG or GIF image: raw bytes, a filename or a URL (embedded
    unless given as ``url=`` without ``embed=True``)."""

    _read_flags = "rb"
    _MIMETYPES = {"png": "image/png", "jpeg": "image/jpeg", "gif": "image/gif"}

    def __init__(self, data: Any = None, url: Optional[str] = None, filename: Optional[str] = None,
                 format: Optional[str] = None, embed: Optional[bool] = None, width: Optional[int] = None,
                 height: Optional[int] = None, retina: bool = False, unconfined: bool = False,
                 metadata: Optional[Dict[str, Any]] = None, alt: Optional[str] = None) -> None:
        if isinstance(data, os.PathLike):
            data = os.fspath(data)
        if filename is not None:
            ext: Optional[str] = self._find_ext(filename)
        elif url is not None:
            ext = self._find_ext(url)
        elif data is None:
            raise ValueError("No image data found. Expecting filename, url, or data.")
        elif isinstance(data, str) and (data.startswith("http") or _exists(data)):
            ext = self._find_ext(data)
        else:
            ext = None
        if format is None:
            if ext is not None:
                format = {"jpg": "jpeg", "jpeg": "jpeg", "png": "png", "gif": "gif"}.get(ext, ext.lower())
            elif isinstance(data, bytes) and data[:2] == b"\xff\xd8":
                format = "jpeg"
        format = (format or "png").lower()
        self.format = "jpeg" if format == "jpg" else format
        self.embed = embed if embed is not None else url is None
        if self.embed and self.format not in self._MIMETYPES:
            raise ValueError("Cannot embed the '%s' image format" % self.format)
        if self.embed:
            self._mimetype = self._MIMETYPES[self.format]
        self.width = width
        self.height = height
        self.retina = retina
        self.unconfined = unconfined
        self.alt = alt
        super().__init__(data=data, url=url, filename=filename, metadata=metadata)
        assert self.metadata is not None
        if self.width is None and self.metadata.get("width", {}):
            self.width = self.metadata["width"]
        if self.height is None and self.metadata.get("height", {}):
            self.height = self.metadata["height"]
        if self.alt is None and self.metadata.get("alt", {}):
            self.alt = self.metadata["alt"]
        if retina:
            self._retina_shape()

    @staticmethod
    def _find_ext(name: str) -> str:
        base, ext = os.path.splitext(name)
        return ext[1:].lower() if ext else base

    def _retina_shape(self) -> None:
        """Half the pixel size, for high-density screens."""
        if not self.embed:
            return
        sizes = {"png": _png_size, "jpeg": _jpeg_size, "gif": _gif_size}
        if self.format in sizes:
            width, height = sizes[self.format](self.data)
            self.width, self.height = width // 2, height // 2

    def reload(self) -> None:
        if self.embed:
            super().reload()
            if self.retina:
                self._retina_shape()

    def _repr_html_(self) -> Optional[str]:
        if self.embed:
            return None
        import html

        attributes = ""
        if self.width:
            attributes += ' width="%d"' % self.width
        if self.height:
            attributes += ' height="%d"' % self.height
        if self.unconfined:
            attributes += ' class="unconfined"'
        if self.alt:
            attributes += ' alt="%s"' % html.escape(self.alt)
        return '<img src="%s"%s/>' % (self.url, attributes)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> Any:
        if not self.embed:
            return {"text/html": self._repr_html_()}
        data, metadata = self._data_and_metadata(always_both=True)
        return {self._mimetype: data}, ({self._mimetype: metadata} if metadata else metadata)

    def _data_and_metadata(self, always_both: bool = False) -> Any:
        try:
            encoded = base64.b64encode(self.data).decode("ascii")
        except TypeError as exc:
            raise FileNotFoundError("No such file or directory: '%s'" % (self.data,)) from exc
        metadata: Dict[str, Any] = dict(self.metadata or {})
        for key in ("width", "height", "unconfined", "alt"):
            if getattr(self, key):
                metadata[key] = getattr(self, key)
        return (encoded, metadata) if metadata or always_both else encoded

    def _repr_png_(self) -> Any:
        return self._data_and_metadata() if self.embed and self.format == "png" else None

    def _repr_jpeg_(self) -> Any:
        return self._data_and_metadata() if self.embed and self.format == "jpeg" else None


class IFrame:
    """A web page in an ``<iframe>`` (``text/html``); keywords become the query string."""

    _TEMPLATE = ('\n        <iframe\n            width="{width}"\n            height="{height}"\n'
                 '            src="{src}{params}"\n            frameborder="0"\n            allowfullscreen\n'
                 '            referrerpolicy="strict-origin-when-cross-origin"\n'
                 '            {extras}\n        ></iframe>\n        ')  # IPython 9's

    def __init__(self, src: str, width: Any, height: Any, extras: Optional[Iterable[str]] = None,
                 **kwargs: Any) -> None:
        self.src = src
        self.width = width
        self.height = height
        self.extras = [] if extras is None else extras
        self.params = kwargs

    def _repr_html_(self) -> str:
        from urllib.parse import urlencode

        from html import escape

        params = "?" + urlencode(self.params) if self.params else ""
        return self._TEMPLATE.format(src=escape(str(self.src)), width=escape(str(self.width)),
                                     height=escape(str(self.height)), params=params, extras=" ".join(self.extras))


for _cls in (DisplayObject, TextDisplayObject, Pretty, HTML, Markdown, Math, Latex, SVG, JSON, Javascript, Image):
    _cls.__module__ = _CORE  # their reprs (and pickles) name IPython's module, as IPython's own do
IFrame.__module__ = "IPython.lib.display"

#: The names each stand-in module offers.
DISPLAY_FUNCTIONS = ["display", "clear_output", "update_display", "display_pretty", "display_html",
                     "display_markdown", "display_svg", "display_png", "display_jpeg", "display_latex",
                     "display_json", "display_javascript", "display_pdf"]
DISPLAY_CLASSES = ["DisplayObject", "TextDisplayObject", "Pretty", "HTML", "Markdown", "Math", "Latex", "SVG",
                   "JSON", "Javascript", "Image"]
MODULES: Dict[str, List[str]] = {
    "IPython": ["get_ipython"],
    "IPython.core": [],
    "IPython.core.display_functions": ["display", "clear_output", "update_display"],
    "IPython.core.display": DISPLAY_FUNCTIONS + DISPLAY_CLASSES,
    "IPython.lib": [],
    "IPython.lib.display": ["IFrame"],
    "IPython.display": DISPLAY_FUNCTIONS + DISPLAY_CLASSES + ["IFrame"],
}


def get_ipython() -> None:
    """None, as IPython's own says outside an IPython shell."""
    return None
