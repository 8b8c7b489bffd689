"""HTTP/1.1 messages without I/O, for both ends: the server reads requests
with it and the remote client reads responses (as h11 serves both sides).

A :class:`Reader` takes the bytes of one connection as they arrive and
gives back heads and decoded body bytes, one message after another (so
pipelined requests come out in order). Everything it holds is bounded: a
head by ``max_head`` bytes and MAX_HEADERS lines, a chunk-size or trailer
line by MAX_LINE; a body is handed out as it is decoded, never gathered.
Anything that is not HTTP/1.x raises :class:`ProtocolError`, whose
``status`` is what a server answers (400, 414, 431, 505).
"""

from __future__ import annotations

import re
from typing import Dict, Iterable, Iterator, List, Optional, Set, Tuple, Union

#: Bytes of a message's start line plus headers.
MAX_HEAD = 64 * 1024
#: Bytes of a request line (414 beyond).
MAX_REQUEST_LINE = 65536
#: Header lines of one message.
MAX_HEADERS = 100
#: Bytes of a chunk-size or trailer line.
MAX_LINE = 4096
#: Blank lines tolerated before a request line (RFC 9112, 2.2).
MAX_LEADING_BLANKS = 8

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_STATUS_LINE = re.compile(r"HTTP/1\.([01]) ([1-5][0-9][0-9])(?: (.*))?")
_VERSION = re.compile(r"HTTP/([0-9])\.([0-9])")
_FORBIDDEN_IN_VALUES = re.compile(r"[\x00\r\n]")
_TARGET = re.compile(r"[\x21-\x7e]+")  # a request target is visible ASCII (RFC 9112, 3.2)


#: Header names already found to be tokens (the few a client sends, over and over).
_KNOWN_TOKENS: Set[str] = set()


def _is_token(name: str) -> bool:
    if name in _KNOWN_TOKENS:
        return True
    if not _TOKEN.fullmatch(name):
        return False
    if len(_KNOWN_TOKENS) < 256:
        _KNOWN_TOKENS.add(name)
    return True


class ProtocolError(Exception):
    """The peer did not speak HTTP/1.x; ``status`` is the status a server answers with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class Headers:
    """A message's header fields, in order, looked up without regard to case."""

    def __init__(self, fields: Iterable[Tuple[str, str]] = ()) -> None:
        self.fields: List[Tuple[str, str]] = list(fields)
        self._by_name: Dict[str, List[str]] = {}  # lowercase name -> values, in order
        for name, value in self.fields:
            self._by_name.setdefault(name.lower(), []).append(value)

    def get(self, name: str, default: Optional[str] = None) -> Optional[str]:
        """The first value of ``name``, or ``default``."""
        values = self._by_name.get(name.lower())
        return values[0] if values else default

    def get_all(self, name: str) -> List[str]:
        return list(self._by_name.get(name.lower(), ()))

    def joined(self, name: str) -> str:
        """Every value of ``name``, comma-separated ("" if none)."""
        return ", ".join(self._by_name.get(name.lower(), ()))

    def tokens(self, name: str) -> List[str]:
        """The comma-separated, lowercased elements of ``name`` (Connection, Transfer-Encoding)."""
        return [part.strip().lower() for part in self.joined(name).split(",") if part.strip()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._by_name

    def __iter__(self) -> Iterator[Tuple[str, str]]:
        return iter(self.fields)


class Head:
    """A request's or a response's start line and headers."""

    def __init__(self, version: str, headers: Headers, *, method: str = "", target: str = "",
                 status: int = 0, reason: str = "") -> None:
        self.version = version  # "HTTP/1.1" or "HTTP/1.0"
        self.headers = headers
        self.method = method
        self.target = target
        self.status = status
        self.reason = reason

    @property
    def keep_alive(self) -> bool:
        """Whether the connection may carry another message after this one
        (HTTP/1.1 unless ``Connection: close``; HTTP/1.0 only with ``keep-alive``)."""
        tokens = self.headers.tokens("Connection")
        if self.version == "HTTP/1.0":
            return "keep-alive" in tokens
        return "close" not in tokens

    @property
    def request_line(self) -> str:
        return "%s %s %s" % (self.method, self.target, self.version)


def _fields(lines: List[str]) -> Headers:
    if len(lines) > MAX_HEADERS:
        raise ProtocolError("more than %d header lines" % MAX_HEADERS, 431)
    fields = []
    for line in lines:
        name, colon, value = line.partition(":")
        if not colon or not _is_token(name):  # also "Name :" and folded lines (RFC 9112, 5.1-5.2)
            raise ProtocolError("malformed header line %r" % line[:80])
        value = value.strip(" \t")
        if _FORBIDDEN_IN_VALUES.search(value):
            raise ProtocolError("a header value holds a forbidden character: %r" % line[:80])
        fields.append((name, value))
    return Headers(fields)


def parse_request_head(head: bytes) -> Head:
    """The head of a request (without its final blank line)."""
    lines = head.decode("latin-1").split("\r\n")
    words = lines[0].split(" ")
    if len(words) != 3 or not all(words):
        raise ProtocolError("the request line must be 'METHOD /path HTTP/1.1', got %r" % lines[0][:100])
    method, target, version = words
    match = _VERSION.fullmatch(version)
    if match is None:
        raise ProtocolError("bad HTTP version %r" % version[:20])
    if match.group(1) != "1":
        raise ProtocolError("HTTP version %s is not supported (HTTP/1.1 is)" % version, 505)
    if not _TOKEN.fullmatch(method):
        raise ProtocolError("bad method %r" % method[:20])
    if not _TARGET.fullmatch(target):
        raise ProtocolError("the request target %r holds a character that is not visible ASCII" % target[:100])
    headers = _fields(lines[1:])
    return Head("HTTP/1.0" if match.group(2) == "0" else "HTTP/1.1", headers, method=method, target=target)


def parse_response_head(head: bytes) -> Head:
    """The head of a response (without its final blank line)."""
    lines = head.decode("latin-1").split("\r\n")
    match = _STATUS_LINE.fullmatch(lines[0])
    if match is None:
        raise ProtocolError("not an HTTP/1.x status line: %r" % lines[0][:80])
    return Head("HTTP/1." + match.group(1), _fields(lines[1:]), status=int(match.group(2)),
                reason=match.group(3) or "")


def content_length(headers: Headers) -> Optional[int]:
    """The Content-Length of a message (None without one); ProtocolError if
    it is given twice or is not a plain number."""
    values = headers.get_all("Content-Length")
    if not values:
        return None
    if len(values) > 1:
        raise ProtocolError("a message may have one Content-Length header, not %d" % len(values))
    raw = values[0].strip()
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise ProtocolError("invalid Content-Length %r" % raw[:40])
    return int(raw)


def response_framing(head: Head, method: str) -> Tuple[str, int]:
    """How the body of a response to ``method`` ends: ("length", n), ("chunked", 0),
    ("close", 0) for a body read until the connection closes, or ("none", 0)."""
    if method == "HEAD" or head.status in (204, 304) or head.status < 200:
        return "none", 0
    if "chunked" in head.headers.tokens("Transfer-Encoding"):
        return "chunked", 0
    length = content_length(head.headers)
    if length is not None:
        return ("length", length) if length else ("none", 0)
    return "close", 0


class Reader:
    """One connection's incoming messages, parsed as bytes arrive.

    ``requests``: the messages are requests (a server's side), else
    responses. Call :meth:`feed`, then :meth:`head` until it gives a head;
    then :meth:`framing` (or :meth:`expect`) says how its body ends, and
    :meth:`body` gives the body's bytes until :attr:`done`. :meth:`next`
    then starts the next message, keeping any bytes already received.
    """

    def __init__(self, requests: bool, max_head: int = MAX_HEAD) -> None:
        self._requests = requests
        self._max_head = max_head
        self._buffer = bytearray()
        self._state = "head"
        self._left = 0  # bytes left in the body or in the current chunk
        self.received = 0  # bytes fed so far

    @property
    def buffered(self) -> int:
        """Bytes received and not yet handed out."""
        return len(self._buffer)

    @property
    def started(self) -> bool:
        """Some bytes of the next message's head have arrived."""
        return self._state == "head" and bool(self._buffer.strip(b"\r\n"))

    @property
    def done(self) -> bool:
        """The current message's body has ended."""
        return self._state == "done"

    def feed(self, data: Union[bytes, memoryview]) -> None:
        self.received += len(data)
        self._buffer += data

    def head(self) -> Optional[Head]:
        """The next message's head once it is all in (None until then)."""
        if self._state != "head":
            raise RuntimeError("head() while a message's body is being read")
        buffer = self._buffer
        if self._requests:
            blanks = 0
            while buffer[:2] == b"\r\n" or buffer[:1] == b"\n":
                del buffer[:2 if buffer[:2] == b"\r\n" else 1]
                blanks += 1
                if blanks > MAX_LEADING_BLANKS:
                    raise ProtocolError("more than %d blank lines before a request" % MAX_LEADING_BLANKS)
            line_end = buffer.find(b"\r\n", 0, MAX_REQUEST_LINE + 2)
            if line_end < 0 and len(buffer) > MAX_REQUEST_LINE:
                raise ProtocolError("the request line exceeds %d bytes" % MAX_REQUEST_LINE, 414)
        end = buffer.find(b"\r\n\r\n", 0, self._max_head + 4)
        if end < 0:
            if len(buffer) > self._max_head:
                raise ProtocolError("the head exceeds %d bytes" % self._max_head, 431)
            return None
        raw = bytes(buffer[:end])
        del buffer[:end + 4]
        head = parse_request_head(raw) if self._requests else parse_response_head(raw)
        self._state = "framing"
        return head

    def expect(self, kind: str, length: int = 0) -> None:
        """Read the current body as ``kind`` ("length", "chunked", "close", "none")."""
        if kind == "length" and length:
            self._state, self._left = "length", length
        elif kind in ("length", "none"):
            self._state = "done"
        elif kind == "chunked":
            self._state = "size"
        elif kind == "close":
            self._state = "close"
        else:
            raise ValueError("unknown body framing %r" % kind)

    def skip(self) -> None:
        """Drop the current (interim, bodiless) message: its head was all of it."""
        self._state = "head"

    def body(self, limit: Optional[int] = None) -> bytes:
        """Decoded body bytes available now (at most ``limit``), b"" if none yet."""
        out = bytearray()
        while limit is None or len(out) < limit:
            step = self._step(None if limit is None else limit - len(out))
            if step is None:
                break
            out += step
        return bytes(out)

    def next(self) -> None:
        """Start reading the next message (after this one's body is done)."""
        if self._state != "done":
            raise RuntimeError("next() before the body was read")
        self._state = "head"

    def eof(self) -> None:
        """The connection closed: the end of a body read until then; ProtocolError
        (EOFError for a head not begun) in the middle of a message."""
        if self._state == "close":
            self._state = "done"
            return
        if self._state == "done" or (self._state == "head" and not self.started):
            return
        raise ProtocolError("the connection closed in the middle of a message")

    def _step(self, limit: Optional[int]) -> Optional[bytes]:
        """Parse what the buffer allows: body bytes (maybe b""), or None to stop."""
        state, buffer = self._state, self._buffer
        if state in ("length", "close", "chunk"):
            if not buffer:
                return None
            take = len(buffer) if state == "close" else min(self._left, len(buffer))
            if limit is not None:
                take = min(take, limit)
            data = bytes(buffer[:take])
            del buffer[:take]
            self._left -= take
            if state == "length" and not self._left:
                self._state = "done"
            elif state == "chunk" and not self._left:
                self._state = "chunk-end"
            return data
        if state == "chunk-end" and len(buffer) >= 2 and buffer[:2] != b"\r\n":
            raise ProtocolError("a chunk does not end with CRLF")
        if state in ("size", "chunk-end", "trailer"):
            end = buffer.find(b"\r\n", 0, MAX_LINE + 2)
            if end < 0:
                if len(buffer) > MAX_LINE:
                    raise ProtocolError("an overlong line in a chunked body")
                return None
            line = bytes(buffer[:end])
            del buffer[:end + 2]
            if state == "chunk-end":
                if line:
                    raise ProtocolError("a chunk does not end with CRLF")
                self._state = "size"
            elif state == "trailer":
                if not line:
                    self._state = "done"
            else:
                size = line.split(b";")[0].strip()
                if not size or len(size) > 15 or not all(c in b"0123456789abcdefABCDEF" for c in size):
                    raise ProtocolError("bad chunk size %r" % line[:40])
                self._left = int(size, 16)
                self._state = "chunk" if self._left else "trailer"
            return b""
        return None


# -- writing -----------------------------------------------------------------------

def encode_head(start_line: str, headers: Iterable[Tuple[str, str]]) -> bytes:
    """A start line and header fields, ending with the blank line. ValueError
    for a name that is not a token or a value with CR, LF or NUL."""
    fields = list(headers)
    for name, _value in fields:
        if not _is_token(name):
            raise ValueError("bad header name %r" % name)
    if _FORBIDDEN_IN_VALUES.search("".join(value for _name, value in fields)):
        bad = next(value for _name, value in fields if _FORBIDDEN_IN_VALUES.search(value))
        raise ValueError("bad header value %r" % bad[:80])
    lines = [start_line] + ["%s: %s" % field for field in fields]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def chunk_head(size: int) -> bytes:
    """The line that starts a chunk of ``size`` bytes (> 0) of a chunked body;
    its data and a CRLF follow."""
    return b"%X\r\n" % size


#: The end of a chunked body (no trailers).
LAST_CHUNK = b"0\r\n\r\n"
