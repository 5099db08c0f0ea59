"""Micro-benchmarks of the chunked codec's hot paths, on both twins.

    pytest benchmarks/bench_chunked.py --benchmark-only

Each case is small (a few MB at most, the pure-Python twin included) so the
whole file runs in well under a minute; the side-by-side comparison with
the peers, on the full-size workloads, is ``python -m benchmarks.compare``.
A missing compiled twin fails the ``c`` cases: it never skips.
"""
from __future__ import annotations

import importlib
import random
from types import ModuleType

import pytest

TWINS = {"c": "streamcore.chunked._c", "py": "streamcore.chunked._py"}


@pytest.fixture(params=sorted(TWINS))
def twin(request: pytest.FixtureRequest) -> ModuleType:
    return importlib.import_module(TWINS[request.param])


def wire_of(chunks: list[bytes], extension: bytes = b"") -> bytes:
    out = [b"%x%s\r\n%s\r\n" % (len(c), extension, c) for c in chunks]
    out.append(b"0\r\n\r\n")
    return b"".join(out)


def split(data: bytes, size: int) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


PAYLOAD = random.Random(7).randbytes(1 << 20)
SMALL = split(PAYLOAD[: 20_000 * 24], 24)  # 20,000 chunks of 24 bytes
TINY = split(PAYLOAD[: 20_000 * 16], 16)  # 20,000 chunks of 16 bytes
LARGE = split(PAYLOAD, 64 * 1024)  # 1 MiB as 64 KiB chunks
MEDIUM = split(PAYLOAD, 4 * 1024)  # 1 MiB as 4 KiB chunks

SMALL_READS = split(wire_of(SMALL), 4096)
TINY_READS = split(wire_of(TINY), 4096)
SMALL_EXT_READS = split(wire_of(SMALL, b";name=value"), 4096)
LARGE_READS = split(wire_of(LARGE), 64 * 1024)
MEDIUM_READS = split(wire_of(MEDIUM), 16391)


def decode(mod: ModuleType, reads: list[bytes], coalesce: bool = False, views: bool = False) -> int:
    """Decode from a fresh decoder, return the body length (checked by each case)."""
    dec = mod.ChunkedDecoder(coalesce=coalesce, views=views)
    Data = mod.Data
    total = 0
    for buf in reads:
        for ev in dec.feed(buf):
            if type(ev) is Data:
                total += len(ev.data)
    assert dec.done
    return total


# --- decoding --------------------------------------------------------------------------

def test_decode_size_lines(benchmark, twin):
    """Size-line scanning: 20,000 chunks of 24 bytes in 4 KiB reads (one event each)."""
    assert benchmark(decode, twin, SMALL_READS) == 20_000 * 24


def test_decode_tiny_chunks(benchmark, twin):
    """Per-event cost: 20,000 chunks of 16 bytes in 4 KiB reads (one Data each).

    The figure docs/design.md ("Twins") quotes for the event freelist."""
    assert benchmark(decode, twin, TINY_READS) == 20_000 * 16


def test_decode_size_lines_coalesce(benchmark, twin):
    """The same scanning with coalesce=True: one Data per feed."""
    assert benchmark(decode, twin, SMALL_READS, True) == 20_000 * 24


def test_decode_extensions(benchmark, twin):
    """Size lines carrying an extension (`;name=value`) that must be parsed."""
    assert benchmark(decode, twin, SMALL_EXT_READS) == 20_000 * 24


def test_decode_large_pieces(benchmark, twin):
    """Large data pieces: 1 MiB as 64 KiB chunks in 64 KiB reads (copy-bound)."""
    assert benchmark(decode, twin, LARGE_READS) == 1 << 20


def test_decode_reads_across_chunks(benchmark, twin):
    """4 KiB chunks in 16391-byte reads: reads end anywhere in a chunk or line."""
    assert benchmark(decode, twin, MEDIUM_READS) == 1 << 20


def test_decode_large_pieces_views(benchmark, twin):
    """Zero-copy receive (views=True): 1 MiB as 64 KiB chunks in 64 KiB reads, no copy."""
    assert benchmark(decode, twin, LARGE_READS, False, True) == 1 << 20


def test_decode_reads_across_chunks_views(benchmark, twin):
    """Zero-copy receive: 4 KiB chunks in 16391-byte reads, memoryviews into each read."""
    assert benchmark(decode, twin, MEDIUM_READS, False, True) == 1 << 20


# --- encoding --------------------------------------------------------------------------

def encode(mod: ModuleType, chunks: list[bytes]) -> int:
    enc = mod.ChunkedEncoder()
    encode_one = enc.encode
    total = 0
    for c in chunks:
        total += len(encode_one(c))
    return total + len(enc.finish())


def encode_buffers(mod: ModuleType, chunks: list[bytes]) -> int:
    enc = mod.ChunkedEncoder()
    encode_one = enc.encode_buffers
    total = 0
    for c in chunks:
        for piece in encode_one(c):
            total += len(piece)
    return total + len(enc.finish())


def test_encode_small(benchmark, twin):
    """Chunk headers dominate: 20,000 chunks of 24 bytes."""
    assert benchmark(encode, twin, SMALL) == len(wire_of(SMALL))


def test_encode_large(benchmark, twin):
    """Payload copies dominate: 1 MiB as 4 KiB chunks into one bytes each."""
    assert benchmark(encode, twin, MEDIUM) == len(wire_of(MEDIUM))


def test_encode_buffers_large(benchmark, twin):
    """The writelines path: header, payload, CRLF as separate buffers, no copy."""
    assert benchmark(encode_buffers, twin, MEDIUM) == len(wire_of(MEDIUM))
