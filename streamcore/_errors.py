"""The error tree, defined once in pure Python and raised by both twins.

Every error streamcore raises on purpose derives from :class:`StreamError`.
Errors caused by the peer's bytes are :class:`ProtocolError` and carry the
byte offset in the stream where the problem was found and, for WebSocket,
the close code to send (RFC 6455 §7.4.1).
"""
from __future__ import annotations

from typing import Any

__all__ = ["StreamError", "ProtocolError", "LimitError", "IncompleteError", "StateError"]


class StreamError(Exception):
    """Base of everything streamcore raises on purpose."""


class ProtocolError(StreamError):
    """The peer's bytes are malformed.

    ``offset`` is the byte offset in the stream (counted from the first byte
    ever fed to the state machine) where the problem was found, when known.
    ``close_code`` is the WebSocket close code that answers the problem
    (1002 protocol error, 1007 invalid payload, 1009 too big), or ``None``
    outside WebSocket.
    """

    #: the close code used when a WebSocket error does not name one
    default_close_code: int | None = None

    def __init__(
        self,
        message: str,
        *,
        offset: int | None = None,
        close_code: int | None = None,
    ) -> None:
        if offset is not None:
            message = f"{message} (at byte {offset})"
        super().__init__(message)
        self.offset = offset
        #: events decoded by the same call before the problem was found
        self.events: list[Any] = []
        self.close_code = close_code if close_code is not None else self.default_close_code


class LimitError(ProtocolError):
    """A configured size limit was exceeded (WebSocket close code 1009)."""


class IncompleteError(ProtocolError):
    """The stream ended inside a message."""


class StateError(StreamError):
    """Local misuse: sending after finish or close, feeding after an error or the end."""
