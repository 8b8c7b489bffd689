"""Framing and schema: the parent's decoder must only ever yield valid
messages or raise ProtocolError, whatever bytes a worker sends."""

from __future__ import annotations

import random
import struct

import pytest

from interp import protocol
from interp.core import Connection, LineBuffer
from interp.protocol import FrameDecoder, ProtocolError, encode, output_frame, validate_event

from helpers import assert_decoded


def test_round_trip_in_any_split():
    messages = [{"t": "result", "data": {"text/plain": "h\u00e9llo\n\ud800"}, "main": True},
                {"t": "out", "s": "stdout", "b": b"\xc3\xa9\xff\n"}, {"t": "done", "error": None},
                {"t": "out", "s": "stderr", "b": b""}, {"t": "ready", "pid": 12}]
    data = b"".join(output_frame(m["s"], m["b"]) if m["t"] == "out" else encode(m) for m in messages)
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
    {}, {"t": "nope"}, {"t": "out", "s": "stdin", "b": b"x"}, {"t": "out", "s": "stdout", "d": "x"},
    {"t": "done", "error": "boom"}, {"t": "done", "error": {"name": "E", "value": "v"}},
    {"t": "done", "error": {"name": 1, "value": "v", "traceback": "t"}}, {"t": "ready", "pid": "1"},
    {"t": "ready", "pid": True},
])
def test_schema_violations_are_rejected(message):
    with pytest.raises(ProtocolError):
        validate_event(message)


def test_fuzzed_frames_never_escape_as_other_errors():
    rng = random.Random(20261126)
    valid = [output_frame("stderr", b"x" * rng.randrange(50)),
             encode({"t": "done", "re": 1, "count": 1, "error": {"name": "E", "value": "v", "traceback": "t"}})]
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
        assert_decoded(conn)


def test_json_output_is_refused():
    """Output only travels raw; a JSON 'out' frame is a protocol violation."""
    with pytest.raises(ProtocolError, match="output frame"):
        Connection().receive(encode({"t": "out", "s": "stdout", "d": "x"}))


def test_connection_decodes_output_across_frames_and_runs():
    conn = Connection()
    euro = "\u20ac".encode()
    conn.receive(output_frame("stdout", b"a" + euro[:1]) + output_frame("stderr", b"e\n"))
    conn.receive(output_frame("stdout", euro[1:] + b"\n" + euro[:2]))
    conn.receive(encode({"t": "done", "re": 1, "error": None, "count": 1}))  # the run's end flushes a dangling byte
    conn.receive(output_frame("stdout", euro[2:]))
    assert [(m["t"], m.get("s"), m.get("d")) for m in conn.pending] == [
        ("out", "stdout", "a"), ("out", "stderr", "e\n"), ("out", "stdout", "\u20ac\n"),
        ("out", "stdout", "\ufffd"), ("done", None, None), ("out", "stdout", "\ufffd")]


def test_connection_close_recovers_a_cut_frame_then_the_salvage():
    """A worker that died mid-frame: the frame's bytes, then what was left in
    the capture pipe, come out in order, a character split between them whole."""
    conn = Connection()
    euro = "\u20ac".encode()
    frame = output_frame("stdout", b"before " + euro + b" and after\n")
    conn.receive(frame[:-len(b" and after\n") - 2])  # cut inside the euro sign
    conn.close({"stdout": euro[1:] + b" and after\n", "stderr": b"err\xff"})
    assert [(m["s"], m["d"]) for m in conn.pending] == [
        ("stdout", "before "), ("stdout", "\u20ac and after\n"), ("stderr", "err\ufffd")]
    assert_decoded(conn)


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


def test_a_run_answered_after_its_interrupt_still_wakes_at_the_end_of_the_grace_period():
    """Callbacks behind a backlog stop at the end of the grace period even when
    the worker's answer came in meanwhile: the driver must be woken then."""
    from interp import core

    run = core.Run(Connection(), None, {"t": "run", "code": "x"}, timeout=1.0, grace=2.0, now=0.0,  # type: ignore[arg-type]
                   listen=["stdout"])
    run.conn.ready = True
    assert run.on_timer(1.5) == [core.INTERRUPT] and run.kill_at == 3.5
    lines = b"".join(output_frame("stdout", b"%d\n" % i) for i in range(1000))
    items = run.on_bytes(lines + encode({"t": "done", "re": run.id, "error": None, "count": 1}), 1.6)
    assert run.finished and len(items) == 1000
    assert run.wakeup_at() == 3.5
    assert run.delivering and run.on_timer(3.5) == [] and not run.delivering


def test_streamed_stdin_holds_at_most_one_chunk_whatever_the_worker_asks():
    """A run with stdin_fd: the parent reads its stdin only when the worker
    asks (stdin_more) and what it sent before has gone, so a worker (or the
    code in it) that forges requests and never reads cannot grow the parent."""
    from interp import core

    run = core.Run(Connection(), None, {"t": "run", "code": "x", "stdin_stream": True, "stdin_fd": 0},  # type: ignore[arg-type]
                   timeout=None, grace=2.0, now=0.0)
    assert run.stdin_fd == 0 and b"stdin_fd" not in bytes(run.outgoing)
    run.sent(len(run.outgoing))
    assert not run.wants_stdin
    run.on_bytes(encode({"t": "stdin_more"}) * 1000, 0.1)
    assert run.wants_stdin
    run.feed_stdin(b"x" * 65536)
    assert not run.wants_stdin  # the chunk has not gone to the worker yet
    run.on_bytes(encode({"t": "stdin_more"}) * 1000, 0.2)
    assert not run.wants_stdin and len(run.outgoing) < 100_000
    run.sent(len(run.outgoing))
    assert run.wants_stdin
    run.feed_stdin(b"")  # end of file: nothing more is read
    run.sent(len(run.outgoing))
    run.on_bytes(encode({"t": "stdin_more"}), 0.3)
    assert not run.wants_stdin and not run.finished


def test_stdin_more_in_a_run_without_streamed_stdin_is_a_protocol_error():
    from interp import core

    run = core.Run(Connection(), None, {"t": "run", "code": "x"}, timeout=None, grace=2.0,  # type: ignore[arg-type]
                   now=0.0)
    items = run.on_bytes(encode({"t": "stdin_more"}), 0.1)
    assert run.finished and core.KILL in items and "stdin_more" in str(run.protocol_error)
