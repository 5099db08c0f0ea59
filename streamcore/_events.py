"""The one event idiom of the three protocols.

Every chunked ``Data``/``Trailers``/``EndOfMessage``, SSE ``Event`` and
WebSocket ``Text``/``Binary``/``Ping``/``Pong``/``Close`` is a subclass of a
``NamedTuple``, defined once in pure Python in the protocol's ``_common.py``
and built by both twins (the Python ones through ``tuple.__new__``, the
compiled ones through ``tp_alloc`` and item stores, or for chunked events
from a freelist of their own: see ``chunked/_c.pyx`` and docs/design.md,
"Twins"), so ``isinstance`` holds across twins.  :func:`event` gives such a
class equality that compares the class as well as the fields
(``Ping(b"") != Pong(b"")``, an event never equals a plain tuple) and a hash
to match.
"""
from __future__ import annotations

from typing import Any, TypeVar

T = TypeVar("T")


def _eq(self: tuple[Any, ...], other: object) -> bool:
    return type(self) is type(other) and tuple.__eq__(self, other)


def _ne(self: tuple[Any, ...], other: object) -> bool:
    return not _eq(self, other)


def _hash(self: tuple[Any, ...]) -> int:
    return hash((type(self).__name__, tuple(self)))


def event(cls: type[T]) -> type[T]:
    """Class decorator for an event class that subclasses a NamedTuple (and
    declares ``__slots__ = ()`` itself)."""
    cls.__eq__ = _eq  # type: ignore[assignment]
    cls.__ne__ = _ne  # type: ignore[assignment]
    cls.__hash__ = _hash  # type: ignore[assignment]
    return cls
