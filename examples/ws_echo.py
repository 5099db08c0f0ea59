"""What the example servers share: h11 reading a request head, and a
WebSocket echo after the opening handshake, on any byte stream.

Not an example to run: ``asyncio_ws_server.py`` and ``trio_ws_sse.py`` (and
``demo_asyncio.py``, for the request head) import it.  Everything here is
written against two coroutine functions, so the same code serves asyncio
and trio (or anyio):

- ``receive(max_bytes) -> bytes``: what the peer sent, ``b""`` at its end
  (``StreamReader.read``, trio's ``Stream.receive_some``);
- ``send(data) -> None``: write ``data`` and wait until it may go on
  (``write()`` then ``drain()`` on asyncio, trio's ``send_all``);

and, for a failed connection, ``close_gracefully(last) -> None``: write
``last`` (what ends with our Close), half-close and read until the peer
hangs up, all bounded in time (each example has its own, see there: closing
with unread input makes the kernel reset the connection, and the peer would
lose our Close).
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import h11

from streamcore import ProtocolError, StateError
from streamcore.ws import Binary, Connection, Event, Ping, State, Text
from streamcore.ws.handshake import HandshakeError, ServerHandshake

READ_SIZE = 65536
MAX_REQUEST_HEAD = 16384  # h11's default bound on a request head

Receive = Callable[[int], Awaitable[bytes]]
Send = Callable[[bytes], Awaitable[None]]
CloseGracefully = Callable[[bytes], Awaitable[None]]


async def read_request(receive: Receive, http: h11.Connection) -> h11.Request | None:
    """One request head, read with h11; None when the client went away."""
    while True:
        event = http.next_event()
        if isinstance(event, h11.Request):
            return event
        if event is h11.NEED_DATA:
            http.receive_data(await receive(READ_SIZE))  # b"" at EOF: h11 sees the end
            continue
        return None  # h11.ConnectionClosed


def replies(ws: Connection, events: list[Event]) -> bytes:
    """The echo of every Text and Binary message, the Pong of every Ping, then
    the echo of the peer's Close if one came (RFC 6455 §5.5.1): in that order.
    Everything before the peer's Close (or before a protocol error) is
    answered, even when it came in the same read."""
    out = []
    for event in events:
        if isinstance(event, Text):
            out.append(ws.send_text(event.data))
        elif isinstance(event, Binary):
            out.append(ws.send_binary(event.data))
        elif isinstance(event, Ping):
            out.append(ws.send_pong(event.data))
    if ws.echo_pending:
        out.append(ws.data_to_send())
    return b"".join(out)


async def echo(handshake: ServerHandshake, http: h11.Connection, request: h11.Request,
               receive: Receive, send: Send, close_gracefully: CloseGracefully,
               **connection_kwargs: Any) -> None:
    """Upgrade ``request`` and echo until the closing handshake ends.

    ``handshake.connect`` gives, in one call, the 101 to write, a ready
    ``Connection`` (the agreed permessage-deflate, ``connection_kwargs``) and
    the events of the frames the client sent right behind its request; a
    request that cannot be upgraded gets its 400 or 426.  Returns with the
    transport still open: the caller closes it.
    """
    try:
        opened = handshake.connect(http, request, **connection_kwargs)
    except HandshakeError as err:
        await send(handshake.reject(http, err))  # 400 or 426
        return
    if opened.error is not None:
        await close_gracefully(opened.data)  # the 101, then our Close: those frames were bad
        return
    await send(opened.data)  # first: the 101
    ws, events = opened.connection, opened.events
    while True:
        out = replies(ws, events)
        if out:
            await send(out)
        if ws.state is State.CLOSED:
            return  # the server closes TCP first once the handshake is done (§7.1.1)
        data = await receive(READ_SIZE)
        if not data:
            try:
                ws.receive_eof()
            except (ProtocolError, StateError):
                pass  # the peer vanished without a Close: nothing to answer
            return
        try:
            events = ws.receive_data(data)
        except ProtocolError as err:
            # answer what this read completed before the bad byte, then fail
            # the connection with the error's close code (§7.1.7), and let
            # that Close reach the peer before the TCP connection ends
            out = replies(ws, err.events)
            if ws.state is State.OPEN:
                out += ws.send_close(err.close_code or 1002)
            await close_gracefully(out)
            return
