"""Security items of issue 5: the application's environment can be kept from
the code, and the parent's frame decoder survives anything a worker sends."""

from __future__ import annotations

import os
import random

import pytest

from interp import CodeInterpreter
from interp.core import Connection
from interp.protocol import ProtocolError, encode, output_frame
from helpers import assert_decoded


def test_env_replaces_the_inherited_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("APP_API_KEY", "s3cret")
    with CodeInterpreter(cwd=str(tmp_path)) as inherits:  # like subprocess: inherited by default
        assert inherits.run_code("import os; print(os.environ.get('APP_API_KEY'))").stdout == "s3cret\n"
    with CodeInterpreter(cwd=str(tmp_path), env={"PATH": os.environ["PATH"]}) as ci:
        code = ("import os, subprocess\nprint(os.environ.get('APP_API_KEY'))\n"
                "subprocess.run(['sh', '-c', 'echo ${APP_API_KEY:-absent}'])")
        assert ci.run_code(code).stdout == "None\nabsent\n"
        ctx = ci.create_context()
        assert ci.run_code("print(os.environ.get('APP_API_KEY'))", context=ctx).error.name == "NameError"
        assert ci.run_code("import os; print(os.environ.get('APP_API_KEY'))", context=ctx).stdout == "None\n"
    with pytest.raises(TypeError):
        CodeInterpreter(env={"A": 1})


def test_decoder_fuzz_random_and_truncated_frames():
    rng = random.Random(5)
    frames = [output_frame("stdout", b"line %d\n" % i) for i in range(5)]
    frames.append(encode({"t": "done", "re": 7, "error": None, "count": 3}))
    frames.append(encode({"t": "result", "data": {"text/plain": "4"}, "main": True}))
    stream = b"".join(frames)
    outcomes = {"ok": 0, "error": 0}
    cases = [stream[:cut] for cut in range(len(stream) + 1)]  # every truncation
    cases += [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64))) for _ in range(2000)]
    cases += [stream[:rng.randrange(len(stream))] + bytes([rng.randrange(256)]) + stream[rng.randrange(len(stream)):]
              for _ in range(2000)]
    for data in cases:
        conn = Connection()
        try:
            for start in range(0, len(data), 7):  # delivered in arbitrary pieces
                conn.receive(data[start:start + 7])
        except ProtocolError:
            outcomes["error"] += 1
            continue
        outcomes["ok"] += 1
        assert_decoded(conn)
    assert outcomes["ok"] > 100 and outcomes["error"] > 100
