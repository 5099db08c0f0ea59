"""The package face: version, error tree, twin selection."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

import streamcore
from streamcore import _twins

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_version_is_a_string() -> None:
    assert isinstance(streamcore.__version__, str)
    assert streamcore.__version__.count(".") >= 2


def test_error_tree() -> None:
    assert issubclass(streamcore.StreamError, Exception)
    assert issubclass(streamcore.ProtocolError, streamcore.StreamError)
    assert issubclass(streamcore.LimitError, streamcore.ProtocolError)
    assert issubclass(streamcore.IncompleteError, streamcore.ProtocolError)
    assert issubclass(streamcore.StateError, streamcore.StreamError)
    assert not issubclass(streamcore.StateError, streamcore.ProtocolError)


def test_protocol_error_carries_offset_and_close_code() -> None:
    err = streamcore.ProtocolError("bad thing", offset=17, close_code=1002)
    assert err.offset == 17
    assert err.close_code == 1002
    assert "17" in str(err) and "bad thing" in str(err)
    plain = streamcore.ProtocolError("x")
    assert plain.offset is None and plain.close_code is None


@pytest.mark.parametrize("name", _twins.COMPILED_MODULES)
def test_every_compiled_twin_imports(name: str) -> None:
    # A broken build must fail the suite, not fall back silently.
    __import__(f"streamcore.{name}")


def _implementation(env_value: str | None) -> str:
    env = dict(os.environ)
    env.pop("STREAMCORE_NO_EXTENSIONS", None)
    if env_value is not None:
        env["STREAMCORE_NO_EXTENSIONS"] = env_value
    out = subprocess.run(
        [sys.executable, "-c", "import streamcore; print(streamcore.IMPLEMENTATION)"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True,
    )
    return out.stdout.strip()


def test_compiled_twins_are_chosen_by_default() -> None:
    assert _implementation(None) == "cython"


def test_environment_variable_forces_python() -> None:
    assert _implementation("1") == "python"
    assert _implementation("0") == "cython"


def test_a_raising_trace_callback_is_warned_about_and_loses_nothing() -> None:
    from helpers import IMPLEMENTATIONS, load_twin

    def raising(event: object) -> None:
        raise RuntimeError("logging is down")

    for impl in IMPLEMENTATIONS:
        chunked = load_twin("_chunked", impl)
        sse = load_twin("_sse", impl)
        codec = load_twin("ws._codec", impl)
        with pytest.warns(RuntimeWarning, match="logging is down"):
            events = chunked.ChunkedDecoder(trace=raising).feed(b"1\r\na\r\n1\r\nb\r\n")
        assert [e.data for e in events] == [b"a", b"b"]
        enc = chunked.ChunkedEncoder(trace=raising)
        with pytest.warns(RuntimeWarning):
            assert enc.encode(b"x") + enc.finish() == b"1\r\nx\r\n0\r\n\r\n"
        with pytest.warns(RuntimeWarning):
            assert [e.data for e in sse.SSEDecoder(trace=raising).feed(b"data: a\n\ndata: b\n\n")] == ["a", "b"]
        with pytest.warns(RuntimeWarning):
            got = codec.Connection("client", trace=raising).receive_data(b"\x81\x01a\x81\x01b")
        assert [e.data for e in got] == ["a", "b"]


def test_trace_must_be_callable() -> None:
    from streamcore.chunked import ChunkedDecoder

    with pytest.raises(TypeError):
        ChunkedDecoder(trace="print")  # type: ignore[arg-type]
