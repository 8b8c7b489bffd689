"""Framing and schema: the parent's decoder must only ever yield valid
messages or raise ProtocolError, whatever bytes a worker sends."""

from __future__ import annotations

import json
import random
import struct

import pytest

from interp import protocol
from interp.core import Connection, LineBuffer
from interp.protocol import FrameDecoder, ProtocolError, encode, validate_event


def test_round_trip_in_any_split():
    messages = [{"t": "out", "s": "stdout", "d": "h\u00e9llo\n\ud800"}, {"t": "done", "error": None},
                {"t": "ready", "pid": 12}]
    data = b"".join(encode(m) for m in messages)
    for step in (1, 2, 3, 7, len(data)):
        decoder = FrameDecoder()
        got = []
        for i in range(0, len(data), step):
            got.extend(decoder.feed(data[i:i + step]))
        assert got == messages
        assert decoder.pending == 0


def test_oversized_frame_is_rejected_before_buffering():
    decoder = FrameDecoder(max_frame=100)
    with pytest.raises(ProtocolError, match="exceeds"):
        decoder.feed(struct.pack(">I", 0xFFFFFFFF) + b"{")


@pytest.mark.parametrize("body", [b"\xff\xfe", b"not json", b"[1, 2]", b"42", b'"s"', b"{"])
def test_bad_bodies_are_rejected(body):
    with pytest.raises(ProtocolError):
        FrameDecoder().feed(struct.pack(">I", len(body)) + body)


@pytest.mark.parametrize("message", [
    {}, {"t": "nope"}, {"t": "out", "s": "stdin", "d": "x"}, {"t": "out", "s": "stdout", "d": 3},
    {"t": "done", "error": "boom"}, {"t": "done", "error": {"name": "E", "value": "v"}},
    {"t": "done", "error": {"name": 1, "value": "v", "traceback": "t"}}, {"t": "ready", "pid": "1"},
    {"t": "ready", "pid": True},
])
def test_schema_violations_are_rejected(message):
    with pytest.raises(ProtocolError):
        validate_event(message)


def test_fuzzed_frames_never_escape_as_other_errors():
    rng = random.Random(20261126)
    valid = [encode({"t": "out", "s": "stderr", "d": "x" * rng.randrange(50)}),
             encode({"t": "done", "error": {"name": "E", "value": "v", "traceback": "t"}})]
    for _ in range(3000):
        data = bytearray(rng.choice(valid) * rng.randrange(1, 4))
        for _ in range(rng.randrange(4)):
            op = rng.randrange(3)
            pos = rng.randrange(len(data))
            if op == 0:
                data[pos] = rng.randrange(256)
            elif op == 1:
                del data[pos:pos + rng.randrange(1, 8)]
            else:
                data[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 8)))
        conn = Connection()
        try:
            conn.receive(bytes(data))
        except ProtocolError:
            continue
        for message in conn.pending:
            assert validate_event(message) is message
        json.dumps(list(conn.pending))


def test_line_buffer_splits_on_newlines_only():
    buf = LineBuffer()
    assert buf.feed("a\r\nb", 0.0) == ["a\r\n"]
    assert buf.since == 0.0
    assert buf.feed("c\x0bd\n\ne", 1.0) == ["bc\x0bd\n", "\n"]
    assert buf.since == 1.0
    assert buf.flush() == ["e"] and buf.since is None and buf.flush() == []


def test_worst_case_error_frame_fits():
    worst = "\x01" * protocol.MAX_ERROR_CHARS  # escaped as \u0001: 6 bytes each
    frame = encode({"t": "done", "error": {"name": "E" * 200, "value": worst, "traceback": worst}})
    assert len(frame) <= protocol.MAX_EVENT_FRAME
    assert FrameDecoder().feed(frame)[0]["error"]["value"] == worst
