"""Micro-benchmarks of the WebSocket hot paths, on both twins.

    pytest benchmarks/bench_ws.py --benchmark-only

Small cases (a few MB at most, the pure-Python twin included) so the file
runs in well under a minute; the side-by-side comparison with the peers on
the full-size workloads is ``python -m benchmarks.compare --group ws``.
A missing compiled twin fails the ``c`` cases: it never skips.
"""
from __future__ import annotations

import importlib
import random
from types import ModuleType

import pytest

TWINS = {"c": "streamcore.ws._c", "py": "streamcore.ws._py"}
KEY = b"\x12\x34\x56\x78"
MiB = 1 << 20


@pytest.fixture(params=sorted(TWINS))
def twin(request: pytest.FixtureRequest) -> ModuleType:
    return importlib.import_module(TWINS[request.param])


def split(data: bytes, size: int) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


PAYLOAD = random.Random(7).randbytes(MiB)
TEXT = "".join(random.Random(8).choice("abcdefgh{}:, ") for _ in range(64))


def _wire(client: bool, build) -> bytes:  # type: ignore[no-untyped-def]
    from streamcore.ws import _py as _codec_py

    return build(_codec_py.Encoder(client))


SMALL_MASKED = split(_wire(True, lambda e: b"".join(e.text(TEXT) for _ in range(10_000))), 4096)
SMALL_PLAIN = split(_wire(False, lambda e: b"".join(e.text(TEXT) for _ in range(10_000))), 4096)
BULK_MASKED = split(_wire(True, lambda e: e.frame(0x2, PAYLOAD)), 64 * 1024)
MEDIUM_MASKED = split(_wire(True, lambda e: b"".join(e.frame(0x2, PAYLOAD[:16384])
                                                    for _ in range(64))), 64 * 1024)


def decode(mod: ModuleType, role: str, reads: list[bytes]) -> int:
    conn = mod.Connection(role, max_message_size=None)
    n = 0
    for buf in reads:
        n += len(conn.receive_data(buf))
    return n


# --- decoding ---------------------------------------------------------------------------


def test_decode_small_text_masked(benchmark, twin):  # type: ignore[no-untyped-def]
    assert benchmark(decode, twin, "server", SMALL_MASKED) == 10_000


def test_decode_small_text_unmasked(benchmark, twin):  # type: ignore[no-untyped-def]
    assert benchmark(decode, twin, "client", SMALL_PLAIN) == 10_000


def test_decode_1mib_binary_masked(benchmark, twin):  # type: ignore[no-untyped-def]
    assert benchmark(decode, twin, "server", BULK_MASKED) == 1


def test_decode_16kib_binary_masked(benchmark, twin):  # type: ignore[no-untyped-def]
    assert benchmark(decode, twin, "server", MEDIUM_MASKED) == 64


# --- encoding ---------------------------------------------------------------------------


def encode_small(mod: ModuleType) -> int:
    conn = mod.Connection("client")
    total = 0
    for _ in range(10_000):
        total += len(conn.send_text(TEXT))
    return total


def test_encode_small_text_as_client(benchmark, twin):  # type: ignore[no-untyped-def]
    assert benchmark(encode_small, twin) == 10_000 * (64 + 6)


def test_encode_1mib_binary_as_client(benchmark, twin):  # type: ignore[no-untyped-def]
    conn = twin.Connection("client")
    assert len(benchmark(conn.send_binary, PAYLOAD)) == MiB + 14


# --- kernels ----------------------------------------------------------------------------


@pytest.mark.parametrize("size", [64, 64 * 1024, MiB])
def test_apply_mask(benchmark, twin, size):  # type: ignore[no-untyped-def]
    data = PAYLOAD[:size]
    assert len(benchmark(twin.apply_mask, data, KEY)) == size


def test_utf8_validate_64k(benchmark, twin):  # type: ignore[no-untyped-def]
    data = ("κόσμε " * 8000).encode()[: 64 * 1024 - 3]

    def run() -> bool:
        v = twin.Utf8Validator()
        v.feed(data)
        return v.finish()

    assert benchmark(run) in (True, False)
