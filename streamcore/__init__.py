"""streamcore: Sans-I/O streaming protocols for Python.

HTTP/1.1 chunked transfer coding (:mod:`streamcore.chunked`), Server-Sent
Events (:mod:`streamcore.sse`) and WebSocket (:mod:`streamcore.ws`): bytes
in, events out; calls in, bytes out.  Hot paths are compiled with Cython and
each compiled module has a pure-Python twin with identical behaviour;
:data:`IMPLEMENTATION` says which one is loaded.
"""
from __future__ import annotations

from ._errors import IncompleteError, LimitError, ProtocolError, StateError, StreamError
from ._twins import IMPLEMENTATION

__version__ = "0.1.0"

__all__ = [
    "IMPLEMENTATION",
    "IncompleteError",
    "LimitError",
    "ProtocolError",
    "StateError",
    "StreamError",
    "__version__",
]
