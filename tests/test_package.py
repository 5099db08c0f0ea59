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
        chunked = load_twin("chunked", impl)
        sse = load_twin("sse", impl)
        codec = load_twin("ws", impl)
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


# -- layout and imports (failed before: chunked and sse loaded ws and h11) ----------

@pytest.mark.parametrize("face", ["streamcore.chunked", "streamcore.sse"])
def test_chunked_and_sse_import_nothing_of_ws_or_h11(face: str) -> None:
    code = (f"import sys, {face}; "
            "print(sorted(m for m in sys.modules if m == 'h11' or m.startswith('h11.') "
            "or m.startswith('streamcore.ws')))")
    for env_value in ("0", "1"):
        env = dict(os.environ, STREAMCORE_NO_EXTENSIONS=env_value)
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env,
                             capture_output=True, text=True, check=True)
        assert out.stdout.strip() == "[]", out.stdout


def test_every_protocol_is_a_package_with_its_twins() -> None:
    for protocol in ("chunked", "sse", "ws"):
        here = os.path.join(ROOT, "streamcore", protocol)
        for name in ("__init__.py", "_py.py", "_c.pyx", "_c.pyi", "_common.py"):
            assert os.path.exists(os.path.join(here, name)), (protocol, name)


def test_a_partial_build_names_each_missing_file(monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: os.PathLike[str]) -> None:
    import importlib.machinery

    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    for protocol in ("chunked", "sse", "ws"):
        os.makedirs(os.path.join(tmp_path, protocol))
    open(os.path.join(tmp_path, "chunked", "_c" + suffix), "wb").close()
    monkeypatch.setattr(_twins, "_HERE", str(tmp_path))
    monkeypatch.setattr(_twins, "NO_EXTENSIONS", False)
    assert _twins.missing_compiled() == ["sse/_c", "ws/_c"]
    with pytest.warns(RuntimeWarning, match=r"streamcore/sse/_c.*streamcore/ws/_c"):
        assert _twins._choose() == "python"
    assert _twins.missing_compiled() == ["sse/_c", "ws/_c"]
