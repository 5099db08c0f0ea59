"""HTTP/1.1 chunked transfer coding (RFC 9112 §7.1), Sans-I/O.

:class:`ChunkedDecoder` turns the bytes of a chunked body into
:class:`Data`, :class:`Trailers` and :class:`EndOfMessage` events, strictly
(anything RFC 9112 forbids is a :class:`~streamcore.ProtocolError` with the
byte offset); :class:`ChunkedEncoder` turns body pieces into chunks.

This module re-exports the twin chosen at import (see
:data:`streamcore.IMPLEMENTATION`): the compiled one, or with
``STREAMCORE_NO_EXTENSIONS=1`` the pure-Python reference.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from .._twins import pick

if TYPE_CHECKING:
    from ._py import (
        ChunkedDecoder,
        ChunkedEncoder,
        ChunkedStats,
        Data,
        EndOfMessage,
        Trailers,
    )
else:
    _twin = pick("chunked")
    ChunkedDecoder = _twin.ChunkedDecoder
    ChunkedEncoder = _twin.ChunkedEncoder
    ChunkedStats = _twin.ChunkedStats
    Data = _twin.Data
    EndOfMessage = _twin.EndOfMessage
    Trailers = _twin.Trailers

__all__ = ["ChunkedDecoder", "ChunkedEncoder", "ChunkedStats", "Data", "EndOfMessage", "Trailers"]
