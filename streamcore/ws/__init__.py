"""WebSocket (RFC 6455) for Sans-I/O use, with permessage-deflate (RFC 7692).

:class:`Connection` turns the peer's bytes into events (:class:`Text`,
:class:`Binary`, :class:`Ping`, :class:`Pong`, :class:`Close`) and your calls
into frames, after the opening handshake (see the h11 helpers in
:mod:`streamcore.ws.handshake`).  :func:`apply_mask` is the masking kernel.

The compiled twin is used unless ``STREAMCORE_NO_EXTENSIONS=1`` (see
:data:`streamcore.IMPLEMENTATION`).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from .. import _twins
from ._common import Binary, Close, ConnectionStats, Event, Ping, Pong, Role, State, Text

if TYPE_CHECKING:
    from ._py import Connection, apply_mask
else:
    _impl = _twins.pick("ws")
    Connection = _impl.Connection
    apply_mask = _impl.apply_mask

__all__ = [
    "Binary",
    "ClientHandshake",
    "Close",
    "Connection",
    "ConnectionStats",
    "DeflateSession",
    "Event",
    "HandshakeError",
    "NegotiatedDeflate",
    "Opened",
    "PerMessageDeflate",
    "Ping",
    "Pong",
    "Prepared",
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

from ._connection import Prepared
from .deflate import DeflateSession, NegotiatedDeflate, PerMessageDeflate
from .handshake import (
    WEBSOCKET_VERSION,
    ClientHandshake,
    HandshakeError,
    Opened,
    ServerHandshake,
    Upgrade,
    accept_key,
    format_extensions,
    parse_extensions,
)
