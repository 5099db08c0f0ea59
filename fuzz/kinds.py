"""Buffer kind as a fuzz dimension, shared by every harness.

Every feed/send entry point accepts any buffer (SPEC, "Behaviour every part
shares"): bytes, bytearray, any memoryview, contiguous or not, any item
size, with lengths and limits counted in bytes.  A harness wraps each piece
of its input with :func:`wrap_all`, the kinds chosen by one fuzz byte, feeds
the wrapped pieces to both twins and requires exactly the outcome plain
``bytes`` give (events, errors with offset and close code, stats).

The kinds, each holding exactly the piece's bytes in order:

``bytes``, ``bytearray``
    as they are.
``memoryview``
    a read-only view of a bytes object.
``strided``
    a non-contiguous view, ``memoryview(doubled)[::2]``, where ``doubled``
    interleaves the data with a junk byte (so reading it as contiguous memory
    would show the junk).
``itemsize``
    a C-contiguous view of format ``"I"`` (4-byte items), so ``len()``
    counts items, not bytes.  When the length is not a multiple of 4 the
    view is ``"H"`` (even lengths) or ``"B"``: no remainder is dropped or
    padded, the bytes stay exactly the data.
``array``
    an ``array.array`` (not a memoryview) of typecode ``"I"``, ``"H"`` or
    ``"B"`` on the same rule.
``2d``
    a two-dimensional C-contiguous ``"B"`` view (2 rows when the length is
    even and at least 2, else 1 row; an empty piece is a 1-D view, since a
    shape may not contain zero).

The writable kinds (all but ``bytes`` and ``memoryview``) are backed by a
bytearray or an array: :func:`untouched` checks that a twin did not change
the caller's buffer, and :func:`scribble` overwrites it afterwards, so an
event that kept a view into the caller's memory instead of copying shows up
as a difference.
"""
from __future__ import annotations

from array import array
from typing import Any

KINDS = ("bytes", "bytearray", "memoryview", "strided", "itemsize", "array", "2d")


def _typecode(n: int) -> str:
    return "I" if n % 4 == 0 and array("I").itemsize == 4 else "H" if n % 2 == 0 else "B"


def wrap(data: bytes, kind: str, junk: int = 0xA5) -> Any:
    """``data`` as the buffer kind ``kind`` (see the module docstring)."""
    n = len(data)
    if kind == "bytes":
        return bytes(data)
    if kind == "bytearray":
        return bytearray(data)
    if kind == "memoryview":
        return memoryview(bytes(data))
    if kind == "strided":
        doubled = bytearray([junk & 0xFF]) * (2 * n)
        doubled[::2] = data
        return memoryview(doubled)[::2]
    if kind == "itemsize":
        return memoryview(bytearray(data)).cast(_typecode(n))
    if kind == "array":
        out = array(_typecode(n))
        out.frombytes(data)
        return out
    if kind == "2d":
        view = memoryview(bytearray(data))
        if n == 0:
            return view
        rows = 2 if n % 2 == 0 else 1
        return view.cast("B", shape=[rows, n // rows])
    raise ValueError(kind)


def pick(selector: int, i: int) -> str:
    """The kind of piece ``i``: one kind for every piece when the selector's
    top bit is clear, else the kinds in turn from the selector's choice."""
    if selector & 0x80:
        return KINDS[((selector & 0x7F) + i) % len(KINDS)]
    return KINDS[selector % len(KINDS)]


def wrap_all(pieces: list[bytes], selector: int) -> list[Any]:
    """Each piece wrapped in the kind :func:`pick` gives it; the junk byte of
    strided views comes from the selector too."""
    junk = (selector * 37 + 11) & 0xFF
    return [wrap(p, pick(selector, i), junk) for i, p in enumerate(pieces)]


def untouched(buffers: list[Any], pieces: list[bytes]) -> None:
    """Raise AssertionError if a buffer no longer holds its piece's bytes."""
    for buf, piece in zip(buffers, pieces):
        if memoryview(buf).tobytes() != piece:
            raise AssertionError(f"a twin changed the caller's buffer: {piece!r} -> {buf!r}")


def scribble(buffers: list[Any]) -> None:
    """Overwrite every writable buffer (and a strided view's base) with junk."""
    for buf in buffers:
        view = memoryview(buf)
        base = view.obj if isinstance(buf, memoryview) else buf
        if isinstance(base, (bytearray, array)):
            raw = memoryview(base).cast("B")
            raw[:] = b"\x5a" * len(raw)


def agree(run: Any, python: Any, compiled: Any, pieces: list[bytes], selector: int) -> Any:
    """``run(twin, buffers)`` on the compiled twin with plain bytes (the
    reference), then on each twin with the pieces wrapped by
    :func:`wrap_all`: the three outcomes must be equal, compared after the
    wrapped buffers were scribbled over.  Returns the reference outcome.

    The pure-Python twin (the coverage-instrumented, slow one) runs once, on
    the kinds the selector chose; a selector that chooses ``bytes`` for every
    piece makes that the plain-bytes differential of old."""
    reference = run(compiled, list(pieces))
    kinds = [pick(selector, i) for i in range(len(pieces))]
    outcomes = []
    wrapped = []
    for name, twin in (("python", python), ("cython", compiled)):
        buffers = wrap_all(pieces, selector)  # afresh for each twin
        outcomes.append((name, run(twin, buffers)))
        untouched(buffers, pieces)
        wrapped.append(buffers)
    for buffers in wrapped:
        scribble(buffers)
    for name, outcome in outcomes:
        if outcome != reference:
            raise AssertionError(
                f"{name} twin with kinds {kinds} disagrees with the compiled twin on bytes,\n"
                f"pieces {pieces!r}:\nbytes: {reference!r}\n{name}: {outcome!r}")
    return reference
