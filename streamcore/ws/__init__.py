"""WebSocket (RFC 6455) for Sans-I/O use, with permessage-deflate (RFC 7692).

:class:`Connection` turns the peer's bytes into events (:class:`Text`,
:class:`Binary`, :class:`Ping`, :class:`Pong`, :class:`Close`) and your calls
into frames, after the opening handshake (see the h11 helpers in
:mod:`streamcore.ws.handshake`).  :func:`apply_mask` is the masking kernel.

The compiled twin is used unless ``STREAMCORE_NO_EXTENSIONS=1`` (see
:data:`streamcore.IMPLEMENTATION`).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._common import Binary, Close, ConnectionStats, Event, Ping, Pong, Role, State, Text

if TYPE_CHECKING:
    from ._codec_py import Connection, apply_mask
else:

    def __getattr__(name: str) -> Any:
        # Resolved on first use (PEP 562), not at import: streamcore._twins
        # imports this package while it is still choosing the twins.
        if name in ("Connection", "apply_mask"):
            from .. import _twins

            codec = _twins.pick("ws._codec")
            globals().update(Connection=codec.Connection, apply_mask=codec.apply_mask)
            return globals()[name]
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "Binary",
    "ClientHandshake",
    "Close",
    "Connection",
    "ConnectionStats",
    "DeflateSession",
    "Event",
    "HandshakeError",
    "PerMessageDeflate",
    "Ping",
    "Pong",
    "Role",
    "ServerHandshake",
    "State",
    "Text",
    "Upgrade",
    "WEBSOCKET_VERSION",
    "accept_key",
    "apply_mask",
    "format_extensions",
    "parse_extensions",
]

from .deflate import DeflateSession, PerMessageDeflate
from .handshake import (
    WEBSOCKET_VERSION,
    ClientHandshake,
    HandshakeError,
    ServerHandshake,
    Upgrade,
    accept_key,
    format_extensions,
    parse_extensions,
)
