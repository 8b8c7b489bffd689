"""interp._http11: the sans-IO HTTP/1.1 reader and writers that the server
(requests) and the remote client (responses) share."""

from __future__ import annotations

import pytest

from interp import _http11 as http11


def requests_of(data: bytes, *, step: int = 0):
    """Every (head, body) in ``data`` fed at once, or ``step`` bytes at a time."""
    reader = http11.Reader(requests=True)
    out = []
    pieces = [data] if not step else [data[i:i + step] for i in range(0, len(data), step)]
    head, body = None, b""
    for piece in pieces:
        reader.feed(piece)
        while True:
            if head is None:
                head = reader.head()
                if head is None:
                    break
                reader.expect("length", http11.content_length(head.headers) or 0)
            body += reader.body()
            if not reader.done:
                break
            out.append((head, body))
            head, body = None, b""
            reader.next()
    return out


def test_pipelined_requests_come_out_in_order_however_the_bytes_are_cut():
    data = (b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
            b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n"
            b"\r\nDELETE /c HTTP/1.0\r\nhost: y\r\nConnection: keep-alive\r\n\r\n")
    for step in (0, 1, 2, 7):
        got = requests_of(data, step=step)
        assert [(h.method, h.target, h.version, body) for h, body in got] == [
            ("POST", "/a", "HTTP/1.1", b"hello"), ("GET", "/b", "HTTP/1.1", b""), ("DELETE", "/c", "HTTP/1.0", b"")]
        assert got[2][0].headers.get("HOST") == "y" and got[2][0].keep_alive
        assert got[0][0].keep_alive


def test_keep_alive_follows_the_version_and_connection_header():
    def head(version: str, connection: str = "") -> http11.Head:
        extra = "\r\nConnection: %s" % connection if connection else ""
        return http11.parse_request_head(("GET / %s\r\nHost: x%s" % (version, extra)).encode())
    assert head("HTTP/1.1").keep_alive and not head("HTTP/1.1", "Close").keep_alive
    assert not head("HTTP/1.0").keep_alive and head("HTTP/1.0", "Keep-Alive").keep_alive
    assert not head("HTTP/1.1", "upgrade, close").keep_alive


@pytest.mark.parametrize("data, status, words", [
    (b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n", 414, "request line"),
    (b"GET / HTTP/1.1\r\nX: " + b"a" * 70000 + b"\r\n\r\n", 431, "head exceeds"),
    (b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: a\r\n" % i for i in range(101)) + b"\r\n", 431, "header lines"),
    (b"GET / HTTP/2.0\r\n\r\n", 505, "not supported"),
    (b"GET / FTP/1.1\r\n\r\n", 400, "version"),
    (b"GET /\r\n\r\n", 400, "request line"),
    (b"a b c d\r\n\r\n", 400, "request line"),
    (b"G(T / HTTP/1.1\r\n\r\n", 400, "method"),
    (b"GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400, "malformed header"),  # a space before the colon
    (b"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400, "malformed header"),  # obsolete line folding
    (b"GET / HTTP/1.1\r\nNoColon\r\n\r\n", 400, "malformed header"),
    (b"GET / HTTP/1.1\r\nX: a\x00b\r\n\r\n", 400, "forbidden"),
    (b"\r\n" * 9 + b"GET / HTTP/1.1\r\n\r\n", 400, "blank lines"),
])
def test_bad_request_heads_say_which_status_a_server_answers(data, status, words):
    reader = http11.Reader(requests=True)
    reader.feed(data)
    with pytest.raises(http11.ProtocolError, match=words) as caught:
        reader.head()
    assert caught.value.status == status


def test_a_head_is_bounded_before_it_ends():
    reader = http11.Reader(requests=True, max_head=1000)
    reader.feed(b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 200)
    with pytest.raises(http11.ProtocolError) as caught:
        reader.head()
    assert caught.value.status == 431
    small = http11.Reader(requests=True, max_head=1000)
    small.feed(b"GET / HTTP/1.1\r\nX: y\r\n")  # not over the bound, not done: wait for more
    assert small.head() is None and small.started


@pytest.mark.parametrize("value", ["1_7", "+17", "0x11", " 17 17", "17, 17", "-0", "1\xb2", "9" * 40])
def test_content_length_is_plain_digits(value):
    head = http11.parse_request_head(("POST / HTTP/1.1\r\nContent-Length: %s" % value).encode("latin-1"))
    with pytest.raises(http11.ProtocolError, match="Content-Length"):
        http11.content_length(head.headers)


def test_two_content_lengths_are_refused():
    head = http11.parse_request_head(b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3")
    with pytest.raises(http11.ProtocolError, match="one Content-Length"):
        http11.content_length(head.headers)


def responses_of(data: bytes, method: str = "GET", *, eof: bool = False):
    reader = http11.Reader(requests=False)
    reader.feed(data)
    head = reader.head()
    assert head is not None
    kind, length = http11.response_framing(head, method)
    reader.expect(kind, length)
    body = reader.body()
    if eof:
        reader.eof()
    return head, kind, body, reader


def test_chunked_length_and_close_delimited_responses():
    head, kind, body, reader = responses_of(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                            b"5;ext=1\r\nhello\r\n1\r\n!\r\n0\r\nTrailer: x\r\n\r\n")
    assert (head.status, kind, body, reader.done) == (200, "chunked", b"hello!", True)
    _, kind, body, reader = responses_of(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc")
    assert (kind, body, reader.done) == ("length", b"abc", True)
    head, kind, body, reader = responses_of(b"HTTP/1.0 200 OK\r\n\r\nuntil the end", eof=True)
    assert (kind, body, reader.done, head.keep_alive) == ("close", b"until the end", True, False)
    for status in (b"204 No Content", b"304 Not Modified"):
        assert responses_of(b"HTTP/1.1 " + status + b"\r\nContent-Length: 9\r\n\r\n")[1] == "none"
    assert responses_of(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", "HEAD")[1] == "none"


@pytest.mark.parametrize("body, words", [(b"zz\r\n", "chunk size"), (b"5\r\nhelloXX", "CRLF"),
                                         (b"1" * 5000, "overlong"), (b"1234567890abcdef0\r\n", "chunk size")])
def test_bad_chunks(body, words):
    with pytest.raises(http11.ProtocolError, match=words):
        responses_of(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body)


def test_a_body_cut_by_the_connection_is_an_error():
    reader = responses_of(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")[3]
    with pytest.raises(http11.ProtocolError, match="middle"):
        reader.eof()
    idle = http11.Reader(requests=True)  # a connection closed between requests is no error
    idle.eof()


def test_body_hands_out_bytes_as_they_come_within_a_limit():
    reader = http11.Reader(requests=True)
    reader.feed(b"PUT /f HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123")
    assert reader.head() is not None
    reader.expect("length", 10)
    assert reader.body(3) == b"012" and reader.body() == b"3" and reader.body() == b"" and not reader.done
    reader.feed(b"456789GET")
    assert reader.body() == b"456789" and reader.done and reader.buffered == 3


def test_writers_refuse_header_injection():
    assert http11.encode_head("HTTP/1.1 200 OK", [("A", "b")]) == b"HTTP/1.1 200 OK\r\nA: b\r\n\r\n"
    for name, value in (("A", "b\r\nSet-Cookie: x"), ("A B", "c"), ("A:", "b"), ("A", "b\nc")):
        with pytest.raises(ValueError):
            http11.encode_head("HTTP/1.1 200 OK", [(name, value)])
    assert http11.chunk_head(26) == b"1A\r\n"
