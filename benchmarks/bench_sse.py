"""pytest-benchmark cases for the SSE hot paths, on both twins.

    pytest benchmarks/bench_sse.py --benchmark-only

The side-by-side comparison with peers is ``benchmarks/workloads/sse.py``
(``python -m benchmarks.compare --group sse``); these cases time each hot
path alone, at a smaller size, to follow changes from commit to commit.
"""
from __future__ import annotations

import importlib
from types import ModuleType

import pytest

from benchmarks.workloads.sse import _reads, encode_items, s1_stream, s2_stream

S1 = _reads(s1_stream(10_000), 4096)
S2 = _reads(s2_stream(1_000), 16384)
ITEMS = encode_items(10_000)
#: the same items with data as UTF-8 bytes, what orjson.dumps returns
ITEMS_BYTES = [(d.encode(), e, i) for d, e, i in ITEMS]
#: one large multi-line event (a tool result), as str and as bytes
LARGE = ('{"chunk": "' + "é" * 200 + "x" * 20_000 + '"}\n') * 50
LARGE_BYTES = LARGE.encode()


@pytest.fixture(params=["sse._c", "sse._py"], ids=["cython", "python"])
def twin(request: pytest.FixtureRequest) -> ModuleType:
    return importlib.import_module(f"streamcore.{request.param}")


def _decode(mod: ModuleType, reads: list[bytes]) -> int:
    dec = mod.SSEDecoder()
    n = 0
    for chunk in reads:
        n += len(dec.feed(chunk))
    dec.eof()
    return n


def test_decode_s1_tokens(benchmark, twin: ModuleType) -> None:  # type: ignore[no-untyped-def]
    assert benchmark(_decode, twin, S1) == 10_000


def test_decode_s2_multiline_crlf(benchmark, twin: ModuleType) -> None:  # type: ignore[no-untyped-def]
    assert benchmark(_decode, twin, S2) == 1_000


def test_encode_events_batch(benchmark, twin: ModuleType) -> None:  # type: ignore[no-untyped-def]
    assert benchmark(twin.encode_events, ITEMS).count(b"\n\n") == 10_000


def test_encode_event_one_by_one(benchmark, twin: ModuleType) -> None:  # type: ignore[no-untyped-def]
    encode_event = twin.encode_event

    def run() -> int:
        return sum(len(encode_event(d, event=e, id=i)) for d, e, i in ITEMS)

    assert benchmark(run) > 0


def test_encode_events_batch_bytes_data(benchmark, twin: ModuleType) -> None:  # type: ignore[no-untyped-def]
    assert benchmark(twin.encode_events, ITEMS_BYTES).count(b"\n\n") == 10_000


def test_encode_event_one_by_one_bytes_data(benchmark, twin: ModuleType) -> None:  # type: ignore[no-untyped-def]
    encode_event = twin.encode_event

    def run() -> int:
        return sum(len(encode_event(d, event=e, id=i)) for d, e, i in ITEMS_BYTES)

    assert benchmark(run) > 0


@pytest.mark.parametrize("kind", ["str", "bytes"])
def test_encode_event_large(benchmark, twin: ModuleType, kind: str) -> None:  # type: ignore[no-untyped-def]
    data = LARGE if kind == "str" else LARGE_BYTES
    assert benchmark(twin.encode_event, data).count(b"\ndata: ") == 50


def test_keepalive(benchmark, twin: ModuleType) -> None:  # type: ignore[no-untyped-def]
    assert benchmark(twin.keepalive) == b":\n\n"
