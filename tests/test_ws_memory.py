"""Memory held by a WebSocket receiver grows with the bytes that arrived, never
with what the peer announces (SPEC, "Behaviour every part shares").

Failed before on the compiled twin: the first payload byte of a frame made it
allocate the frame's announced length (512 KiB for a 15-byte read at the
default limit, 16 MiB with no limit).  Allocations of the compiled twin go
through Python's allocator, so tracemalloc sees both twins.
"""
from __future__ import annotations

import gc
import os
import tracemalloc

import pytest
from helpers import twin_fixture

codec = twin_fixture("ws")

#: geometric growth may hold up to twice what arrived, plus a first block
SLACK = 64 * 1024


def header(length: int, *, opcode: int = 0x2, fin: bool = True, masked: bool = True) -> bytes:
    first = bytes([(0x80 if fin else 0) | opcode])
    mask_bit = 0x80 if masked else 0
    if length < 126:
        head = first + bytes([mask_bit | length])
    elif length < 1 << 16:
        head = first + bytes([mask_bit | 126]) + length.to_bytes(2, "big")
    else:
        head = first + bytes([mask_bit | 127]) + length.to_bytes(8, "big")
    return head + (b"\x01\x02\x03\x04" if masked else b"")


def held_after(make, feeds) -> tuple[int, int]:
    """(bytes still allocated while the receiver is alive, bytes fed)."""
    gc.collect()
    tracemalloc.start()
    try:
        conn = make()
        base = tracemalloc.get_traced_memory()[0]
        fed = 0
        for piece in feeds:
            conn.receive_data(piece)
            fed += len(piece)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - base
        del conn
    finally:
        tracemalloc.stop()
    return held, fed


@pytest.mark.parametrize("role", ["server", "client"])
@pytest.mark.parametrize("announced", [512 * 1024, 1 << 20, 1 << 40])
@pytest.mark.parametrize("reads", ["one", "bytewise"])
def test_a_large_announcement_with_few_bytes_holds_few_bytes(codec, role, announced, reads):
    masked = role == "server"
    body = os.urandom(3000)
    wire = header(announced, masked=masked) + body
    feeds = [wire] if reads == "one" else [wire[i:i + 1] for i in range(len(wire))]
    held, fed = held_after(lambda: codec.Connection(role, max_message_size=None), feeds)
    assert held <= 2 * fed + SLACK, (held, fed)


@pytest.mark.parametrize("role", ["server", "client"])
def test_many_connections_each_announcing_much(codec, role):
    # the measurement: 20 connections, each a 15-byte read announcing 512 KiB
    masked = role == "server"
    wire = header(512 * 1024, masked=masked) + b"x"
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        conns = [codec.Connection(role, max_message_size=None) for _ in range(20)]
        for conn in conns:
            conn.receive_data(wire)
        held = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert held < 20 * (SLACK + 8 * 1024), held


def test_a_fragmented_message_holds_what_arrived(codec):
    # the first fragment complete, the second announcing 1 GiB
    first = header(1000, fin=False) + bytes(1000)
    second = header(1 << 30, opcode=0x0) + bytes(100)
    held, fed = held_after(lambda: codec.Connection("server", max_message_size=None),
                           [first, second])
    assert held <= 2 * fed + SLACK, (held, fed)


def test_growth_still_delivers_the_whole_frame(codec):
    # geometric growth over many reads gives back every byte, in order
    body = os.urandom(300_000)
    wire = header(len(body), masked=False) + body
    conn = codec.Connection("client", max_message_size=None)
    got = []
    for i in range(0, len(wire), 777):
        got.extend(conn.receive_data(wire[i:i + 777]))
    assert len(got) == 1 and got[0].data == body


@pytest.mark.parametrize("role", ["server", "client"])
@pytest.mark.parametrize("read", [64 * 1024, 4096])
def test_streaming_holds_no_more_than_a_piece(codec, role, read):
    # assemble=False, no limits: a peer announces a 16 MiB frame and sends
    # 64 KiB of it.  Each piece is delivered as it arrives, so what the
    # receiver holds is bounded by one read, not by the frame.  Failed
    # before: the frame was buffered until complete (64 KiB held and growing).
    masked = role == "server"
    body = os.urandom(64 * 1024)
    wire = header(16 << 20, masked=masked) + body
    h = len(wire) - len(body)
    feeds = [wire[:h]] + [wire[i:i + read] for i in range(h, len(wire), read)]
    got: list[bytes] = []
    gc.collect()
    tracemalloc.start()
    try:
        conn = codec.Connection(role, assemble=False, max_frame_size=None,
                                max_message_size=None)
        base = tracemalloc.get_traced_memory()[0]
        peak = 0
        for piece in feeds:
            events = conn.receive_data(piece)
            got.extend(e.data for e in events)
            del events
            peak = max(peak, tracemalloc.get_traced_memory()[0] - base - sum(map(len, got)))
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - base - sum(map(len, got))
        del conn
    finally:
        tracemalloc.stop()
    assert held < 16 * 1024, held
    assert peak < 64 * 1024 + 16 * 1024, peak
    data = b"".join(got)
    key = b"\x01\x02\x03\x04"
    want = bytes(b ^ key[i & 3] for i, b in enumerate(body)) if masked else body
    assert data == want and len(got) == len(feeds) - 1
