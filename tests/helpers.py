"""Shared test helpers: twin loading and ways of splitting a byte stream."""
from __future__ import annotations

import importlib
import random
from collections.abc import Callable, Iterator
from types import ModuleType

import pytest

IMPLEMENTATIONS = ("python", "cython")


def load_twin(name: str, impl: str) -> ModuleType:
    """Import the twin ``streamcore.<name>._py`` or ``streamcore.<name>._c``.

    The compiled twin must import: a missing build is a failure, never a skip,
    so a broken extension cannot pass as green.
    """
    twin = "_c" if impl == "cython" else "_py"
    return importlib.import_module(f"streamcore.{name}.{twin}")


def twin_fixture(name: str) -> Callable[..., ModuleType]:
    """A fixture that yields each twin of ``streamcore.<name>`` in turn.

    Use it at module level in a test file::

        chunked = twin_fixture("chunked")
    """

    @pytest.fixture(params=IMPLEMENTATIONS)
    def _twin(request: pytest.FixtureRequest) -> ModuleType:
        return load_twin(name, request.param)

    return _twin


def both_twins(name: str) -> tuple[ModuleType, ModuleType]:
    """(python twin, compiled twin), for differential tests."""
    return load_twin(name, "python"), load_twin(name, "cython")


def splits(data: bytes, seed: int = 0, random_splits: int = 5) -> Iterator[list[bytes]]:
    """The whole input, byte by byte, then several random splits."""
    yield [data]
    yield [data[i : i + 1] for i in range(len(data))]
    rng = random.Random(seed)
    for _ in range(random_splits):
        yield random_split(data, rng)


def random_split(data: bytes, rng: random.Random) -> list[bytes]:
    """Cut ``data`` at random places (empty pieces included on purpose)."""
    cuts = sorted(rng.randint(0, len(data)) for _ in range(rng.randint(0, 8)))
    pieces = []
    last = 0
    for cut in cuts:
        pieces.append(data[last:cut])
        last = cut
    pieces.append(data[last:])
    return pieces


def cut_at(data: bytes, points: list[int]) -> list[bytes]:
    """Cut ``data`` at the given offsets."""
    pieces = []
    last = 0
    for p in sorted(points):
        pieces.append(data[last:p])
        last = p
    pieces.append(data[last:])
    return pieces


# -- buffer kinds ----------------------------------------------------------------
# Every feed/send accepts any buffer (SPEC, "Behaviour every part shares"); the
# differential tests and the fuzz harnesses run each input through all of these.

BUFFER_KINDS = ("bytes", "bytearray", "memoryview", "strided", "itemsize4")


def as_buffer(data: bytes, kind: str) -> object:
    """``data`` wrapped as the buffer kind ``kind``, with the same bytes in order.

    ``strided``: a non-contiguous memoryview (every second byte of a doubled
    buffer); ``itemsize4``: a C-contiguous memoryview of format ``"I"`` whose
    ``len()`` counts 4-byte items when ``len(data)`` is a multiple of 4
    (else a ``"H"`` or ``"B"`` view, so that the bytes stay exactly ``data``).
    """
    if kind == "bytes":
        return bytes(data)
    if kind == "bytearray":
        return bytearray(data)
    if kind == "memoryview":
        return memoryview(data)
    if kind == "strided":
        doubled = bytearray(2 * len(data))
        doubled[::2] = data
        view = memoryview(bytes(doubled))[::2]
        assert not view.c_contiguous or len(data) <= 1
        return view
    if kind == "itemsize4":
        fmt = "I" if len(data) % 4 == 0 else "H" if len(data) % 2 == 0 else "B"
        return memoryview(data).cast(fmt)
    raise ValueError(kind)
