"""Server-Sent Events (WHATWG HTML, "Server-sent events"), Sans-I/O.

Client side: :class:`SSEDecoder` turns the bytes of a ``text/event-stream``
response into :class:`Event` objects, exactly as the WHATWG "event stream
interpretation" says, and keeps the reconnection state (``last_event_id``,
``retry``).  Server side: :func:`encode_event`, :func:`encode_events` and
:func:`keepalive` write the stream, :func:`response_headers` the header
fields of its response.

This face re-exports the compiled twin (``streamcore.sse._c``) or the
pure-Python twin (``streamcore.sse._py``), whichever :mod:`streamcore._twins`
chose; both behave identically.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from .. import _twins
from ._common import Event, SSEStats, response_headers

if TYPE_CHECKING:
    from ._py import SSEDecoder, encode_event, encode_events, keepalive
else:
    _impl = _twins.pick("sse")
    SSEDecoder = _impl.SSEDecoder
    encode_event = _impl.encode_event
    encode_events = _impl.encode_events
    keepalive = _impl.keepalive

__all__ = [
    "Event", "SSEDecoder", "SSEStats", "encode_event", "encode_events", "keepalive",
    "response_headers",
]
