"""The small contracts every protocol shares, written once.

- :func:`byte_view`: what a ``feed``/``send`` accepts.  Any object with the
  buffer protocol: bytes, bytearray, a memoryview of any shape, item size
  or stride.  Lengths and limits count bytes (``nbytes``), never items.
- :func:`check_limit`: what a size-limit keyword accepts.  An int >= 0, or
  None for no limit; bool is refused (``True`` is not a size).
- :func:`field_bytes` / :func:`field_pairs`: what a header, trailer or
  chunk-extension argument accepts.  A list of ``(name, value)`` pairs, or a
  Mapping (taken as its ``.items()``); each name and value a str (encoded,
  the text the str holds) or a bytes-like buffer, anything else TypeError.
  :func:`short_repr` keeps error messages short whatever the value's size.
- :func:`stored_error` / :func:`raise_again`: what a decoder keeps when it
  raises its first ``ProtocolError``, and raises on every later call: a copy
  carrying no events of the earlier call and no traceback.

Both twins of each protocol call these, so they cannot drift on input types.
"""
from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, Union

from ._errors import ProtocolError

__all__ = [
    "Buffer", "MAX_LIMIT", "byte_view", "check_limit", "field_bytes", "field_pairs",
    "raise_again", "short_repr", "stored_error",
]

#: what every ``feed``, ``receive_data`` and ``send_*`` accepts
Buffer = Union[bytes, bytearray, memoryview]

#: limits above this are clamped to it: no stream reaches 2**63-1 bytes, and
#: the compiled twins hold limits in a C ``long long``
MAX_LIMIT = (1 << 63) - 1


def byte_view(data: Any) -> bytes | bytearray | memoryview:
    """``data`` as a flat buffer of unsigned bytes, without a copy if possible.

    bytes and bytearray come back as they are; a C-contiguous memoryview (or
    other buffer) as a 1-D ``"B"`` view of the same memory; a non-contiguous
    one as a bytes copy (the only way to read it in order).  Anything without
    the buffer protocol (str, int, None...) raises TypeError.
    """
    kind = type(data)
    if kind is bytes or kind is bytearray:
        return data  # type: ignore[no-any-return]
    try:
        view = data if kind is memoryview else memoryview(data)
    except TypeError:
        raise TypeError(f"expected a bytes-like object, not {kind.__name__!r}") from None
    if view.ndim == 1 and view.format == "B" and view.c_contiguous:
        return view
    if view.c_contiguous:
        return view.cast("B")
    return view.tobytes()


def short_repr(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to at most ``limit`` characters (plus the size),
    for error messages: a 200 MB header value must not be printed whole."""
    if isinstance(value, (bytes, bytearray, memoryview, str)):
        size = len(value) if not isinstance(value, memoryview) else value.nbytes
        text = repr(value[:limit] if not isinstance(value, memoryview) else value.tobytes()[:limit])
        if len(text) <= limit and size <= limit:
            return text
        unit = "characters" if isinstance(value, str) else "bytes"
        return f"{text[:limit]}... ({size} {unit})"
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def field_bytes(value: Any, what: str, encoding: str = "latin-1") -> bytes:
    """A header/trailer/extension name or value as bytes.

    A str (or str subclass: the text it holds, never its own ``.encode``) is
    encoded with ``encoding`` (ValueError if it cannot be); a bytes-like
    buffer is copied to bytes; anything else (an int, a list of ints, None)
    raises TypeError: ``bytes(200_000_000)`` would allocate 200 MB of zeros.
    """
    if isinstance(value, str):
        try:
            return str.encode(value, encoding)
        except UnicodeEncodeError:
            raise ValueError(f"{what} {short_repr(value)} is not {encoding}") from None
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value) if type(value) is not bytes else value
    try:
        view = memoryview(value)
    except TypeError:
        raise TypeError(
            f"{what} must be str or a bytes-like object, not {type(value).__name__}"
        ) from None
    return view.tobytes()


def field_pairs(fields: Any, what: str) -> list[Any]:
    """The ``(name, value)`` pairs of a header, trailer or extension argument:
    a Mapping gives its ``.items()``; any other iterable is taken as pairs,
    each of which must have exactly two items (TypeError otherwise, so a
    str or bytes given where pairs are expected is refused, not spelt out)."""
    if isinstance(fields, Mapping):
        return list(fields.items())
    if isinstance(fields, (str, bytes, bytearray, memoryview)):
        raise TypeError(f"{what} must be (name, value) pairs or a mapping, not {type(fields).__name__}")
    try:
        items = list(fields)
    except TypeError:
        raise TypeError(
            f"{what} must be (name, value) pairs or a mapping, not {type(fields).__name__}"
        ) from None
    for item in items:
        if isinstance(item, (str, bytes, bytearray, memoryview)) or not hasattr(item, "__len__") \
                or len(item) != 2:
            raise TypeError(f"each of {what} must be a (name, value) pair, not {short_repr(item)}")
    return items


def check_limit(name: str, value: Any) -> int:
    """Validate a size-limit keyword; return it as an int, -1 meaning no limit.

    TypeError unless ``value`` is an int (bool refused) or None; ValueError
    if negative.  Values above :data:`MAX_LIMIT` mean the same as it.
    """
    if value is None:
        return -1
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int or None, not {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0 or None, not {value!r}")
    return min(int(value), MAX_LIMIT)


def stored_error(exc: ProtocolError, events: list[Any]) -> ProtocolError:
    """Hand ``events`` (what the failing call decoded before the problem) to
    ``exc``, which is being raised, and return what the decoder keeps: a copy
    without events or traceback (the traceback's frames would keep the failing
    call's input alive), re-raised through :func:`raise_again` later."""
    exc.events = events
    return raise_again(exc)


def raise_again(exc: ProtocolError) -> ProtocolError:
    """A copy of a decoder's stored error for every later call: same class,
    message, offset and close code, no events (they were handed out with the
    first raise) and no traceback of the first call."""
    again = copy.copy(exc)
    again.events = []
    return again.with_traceback(None)
