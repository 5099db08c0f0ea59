"""streamcore.sse memory: what a decoder holds grows with the bytes that
arrived, never faster, and never past the limits (SPEC, "Memory stays
bounded by the configured limits whatever the peer sends").

Measured with tracemalloc, which sees both twins' allocations (the compiled
twin allocates its buffers through ``PyMem_*``).  "Held" is what the decoder
keeps between calls: traced memory after ``feed`` returned, minus what was
traced before the first feed, with the caller's input and the returned
events excluded.  The bound is ``received + received/8 + SLACK``: buffers
grow by an eighth at a time (CPython's bytearray rule), which keeps the cost
of a line arriving byte by byte linear; exact-size buffers would copy the
whole line on every feed.
"""
from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import pytest
from helpers import twin_fixture

from streamcore import LimitError

sse = twin_fixture("sse")

#: what a decoder may hold whatever it received: its own object, a few small
#: str (id, type), buffer headers and the allocator's rounding
SLACK = 4096


@pytest.fixture(autouse=True)
def _tracing() -> Iterator[None]:
    tracemalloc.start()
    try:
        yield
    finally:
        tracemalloc.stop()


def traced() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


def held_while_feeding(dec: Any, pieces: list[bytes]) -> list[tuple[int, int]]:
    """(bytes received so far, bytes held) after each feed, sampled."""
    samples = []
    received = 0
    base = traced()
    step = max(1, len(pieces) // 16)
    for k, piece in enumerate(pieces):
        events = dec.feed(piece)
        del events  # the caller's, not the decoder's
        received += len(piece)
        if k % step == 0 or k == len(pieces) - 1:
            samples.append((received, traced() - base))
    return samples


def assert_bounded(samples: list[tuple[int, int]], limit: int | None = None) -> None:
    for received, held in samples:
        pending = received if limit is None else min(received, limit)
        assert held <= pending + pending // 8 + SLACK, (received, held, limit)


def byte_by_byte(stream: bytes) -> list[bytes]:
    return [stream[i : i + 1] for i in range(len(stream))]  # cached 1-byte objects


def big_reads(stream: bytes, size: int = 1 << 16) -> list[bytes]:
    return [stream[i : i + size] for i in range(0, len(stream), size)]


SMALL = 1 << 15  # fed byte by byte
LARGE = 1 << 20  # fed in 64 KiB reads

PEERS: dict[str, Callable[[int], bytes]] = {
    # a line that never ends
    "long line": lambda n: b"data: " + b"x" * (n - 6),
    # many short data lines of one event that never completes: each would
    # cost a str object if values were kept one per line
    "many data fields": lambda n: b"data:xy\n" * (n // 8),
    "many empty data fields": lambda n: b"data\n" * (n // 5),
    # a long event never completed: every field kind, every line end
    "long event": lambda n: (
        b"event: t\r\nid: 12\r: note\rdata: " + b"a" * 50 + b"\r\nfoo: bar\ndata: \xc3\xa9\xe2\x82\n"
    ) * (n // 90),
    # fields that replace each other: nothing accumulates
    "id, event, retry, comments and unknown fields": lambda n: (
        b"id: 1234567\nevent: tick\nretry: 99\n: comment\nfoo: bar\n"
    ) * (n // 54),
}


@pytest.mark.parametrize("peer", sorted(PEERS))
def test_held_memory_follows_bytes_received_byte_by_byte(sse: ModuleType, peer: str) -> None:
    pieces = byte_by_byte(PEERS[peer](SMALL))
    assert_bounded(held_while_feeding(sse.SSEDecoder(max_event_size=None), pieces))


@pytest.mark.parametrize("peer", sorted(PEERS))
def test_held_memory_follows_bytes_received_in_big_reads(sse: ModuleType, peer: str) -> None:
    pieces = big_reads(PEERS[peer](LARGE))
    assert_bounded(held_while_feeding(sse.SSEDecoder(max_event_size=None), pieces))


def test_fields_that_replace_each_other_hold_a_constant(sse: ModuleType) -> None:
    stream = PEERS["id, event, retry, comments and unknown fields"](LARGE)
    for received, held in held_while_feeding(sse.SSEDecoder(), big_reads(stream)):
        assert held <= SLACK, (received, held)


@pytest.mark.parametrize("peer", sorted(PEERS))
@pytest.mark.parametrize("reads", ["byte by byte", "big reads"])
def test_held_memory_is_bounded_by_the_limit(sse: ModuleType, peer: str, reads: str) -> None:
    limit = 1 << 13
    stream = PEERS[peer](SMALL if reads == "byte by byte" else LARGE)
    pieces = byte_by_byte(stream) if reads == "byte by byte" else big_reads(stream)
    dec = sse.SSEDecoder(max_event_size=limit)
    samples = []
    received = 0
    base = traced()
    step = max(1, len(pieces) // 16)
    try:
        for k, piece in enumerate(pieces):
            dec.feed(piece)
            received += len(piece)
            if k % step == 0:
                samples.append((received, traced() - base))
    except LimitError:
        pass
    assert_bounded(samples, limit)


def test_an_error_releases_the_buffers_and_the_failing_input(sse: ModuleType) -> None:
    # the stored error is kept without its traceback, whose frames would
    # hold the failing feed's input alive (1 MiB here) as long as the decoder
    dec = sse.SSEDecoder(max_line_size=1 << 20)
    first = b"data: " + b"x" * (1 << 19)
    base = traced()
    dec.feed(first)
    assert traced() - base > 1 << 19
    with pytest.raises(LimitError):
        dec.feed(b"y" * (1 << 20))
    assert traced() - base <= SLACK  # nothing of the stream is needed again
    with pytest.raises(LimitError):
        dec.feed(b"z")
    assert traced() - base <= SLACK


def test_eof_releases_the_buffers(sse: ModuleType) -> None:
    dec = sse.SSEDecoder()
    base = traced()
    dec.feed(b"data: " + b"x" * (1 << 19) + b"\ndata: " + b"y" * (1 << 19))
    assert traced() - base > 1 << 20
    dec.eof()
    assert traced() - base <= SLACK


def test_a_large_event_dispatched_leaves_nothing_held(sse: ModuleType) -> None:
    # the buffers of a multi-megabyte event are not kept for the next ones
    dec = sse.SSEDecoder()
    base = traced()
    for piece in big_reads(b"data: " + b"x" * (1 << 21) + b"\ndata: y\n"):
        dec.feed(piece)
    (event,) = dec.feed(b"\n")
    assert len(event.data) == (1 << 21) + 2
    del event
    assert dec.feed(b"data: small\n\n")[0].data == "small"
    assert traced() - base <= SLACK
