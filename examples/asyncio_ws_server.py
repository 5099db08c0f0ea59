"""A WebSocket echo server on asyncio: h11 reads the HTTP request, streamcore
upgrades it (RFC 6455 §4.2) and speaks WebSocket after the 101.

Run it, then the client beside it::

    python examples/asyncio_ws_server.py            # listens on 127.0.0.1:8765
    python examples/asyncio_ws_client.py

Every Text or Binary message is sent back, Pings are answered, a Close is
echoed.  permessage-deflate is accepted when the client offers it.  A plain
HTTP request (no upgrade) gets a 400 from the same h11 connection.  A peer
that breaks the protocol gets a Close with the error's code (1002, 1007,
1009), and the TCP connection is closed gracefully so that Close arrives.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

import h11

try:
    import streamcore  # noqa: F401
except ImportError:  # run from a checkout without installing: use the parent folder
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from streamcore import ProtocolError, StateError  # noqa: E402
from streamcore.ws import Binary, Connection, Event, PerMessageDeflate, Ping, State, Text  # noqa: E402
from streamcore.ws.handshake import HandshakeError, ServerHandshake  # noqa: E402

READ_SIZE = 65536
MAX_REQUEST_HEAD = 16384  # h11's default bound on the request head
CLOSE_TIMEOUT = 5.0  # how long a failed peer may take to go away

HANDSHAKE = ServerHandshake(
    subprotocols=["echo"],
    # Keep per-connection zlib memory small: 2**12-byte windows both ways.
    deflate=PerMessageDeflate(server_max_window_bits=12, client_max_window_bits=12),
)


async def read_request(reader: asyncio.StreamReader, http: h11.Connection) -> h11.Request | None:
    """Read one request head with h11; None if the client went away."""
    while True:
        event = http.next_event()
        if isinstance(event, h11.Request):
            return event
        if event is h11.NEED_DATA:
            http.receive_data(await reader.read(READ_SIZE))
            continue
        return None  # ConnectionClosed


async def close_gracefully(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Flush what was written, half-close, and discard what the peer still sends
    until it hangs up (bounded by CLOSE_TIMEOUT).

    Closing a socket while the peer's bytes are still unread makes the kernel
    reset the connection and drop what it had not sent yet: the peer would
    lose our Close and see 1006 instead of its code.
    """
    try:
        await asyncio.wait_for(writer.drain(), CLOSE_TIMEOUT)
        if writer.can_write_eof():
            writer.write_eof()  # FIN after our Close: we send nothing more
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CLOSE_TIMEOUT
        while await asyncio.wait_for(reader.read(READ_SIZE), max(0.0, deadline - loop.time())):
            pass  # after a protocol error nothing the peer sends is read
    except (OSError, asyncio.TimeoutError):
        pass  # the peer went away first, or took too long
    finally:
        writer.close()


def answer(ws: Connection, writer: asyncio.StreamWriter, events: list[Event]) -> None:
    """Echo data, answer Pings: everything before the peer's Close (or before a
    protocol error) is answered, even when it came in the same read."""
    for event in events:
        if isinstance(event, Text):
            writer.write(ws.send_text(event.data))
        elif isinstance(event, Binary):
            writer.write(ws.send_binary(event.data))
        elif isinstance(event, Ping):
            writer.write(ws.send_pong(event.data))


async def echo(
    ws: Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
    events: list[Event],
) -> None:
    """Run the WebSocket connection until the closing handshake ends; ``events``
    are the first ones (of the frames the client sent behind its request)."""
    while True:
        answer(ws, writer, events)
        if ws.echo_pending:
            writer.write(ws.data_to_send())  # the echo of the peer's Close, after the replies
        await writer.drain()
        if ws.state is State.CLOSED:
            return
        data = await reader.read(READ_SIZE)
        if not data:
            try:
                ws.receive_eof()
            except (ProtocolError, StateError):
                pass  # the peer vanished without a Close: nothing to answer
            return
        try:
            events = ws.receive_data(data)
        except ProtocolError as err:
            answer(ws, writer, err.events)  # what this read completed before the bad byte
            # RFC 6455 §7.1.7: fail the connection with the error's close code,
            # and let that Close reach the peer before the TCP connection ends
            if ws.state is State.OPEN:
                writer.write(ws.send_close(err.close_code or 1002))
            await close_gracefully(reader, writer)
            return


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    http = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_REQUEST_HEAD)
    try:
        try:
            request = await read_request(reader, http)
        except h11.RemoteProtocolError:
            return
        if request is None:
            return
        try:
            # one call: the 101 to write, a ready Connection (the agreed deflate),
            # and the events of the frames the client sent right behind its request
            opened = HANDSHAKE.connect(http, request, max_message_size=1 << 20)
        except HandshakeError as err:
            writer.write(HANDSHAKE.reject(http, err))  # 400 or 426
            await writer.drain()
            return
        writer.write(opened.data)  # first: the 101 (and our Close if those frames were bad)
        if opened.error is not None:
            await close_gracefully(reader, writer)
            return
        await echo(opened.connection, reader, writer, opened.events)
    finally:
        writer.close()


async def main(host: str, port: int) -> None:
    server = await asyncio.start_server(handle, host, port)
    print(f"echo server on ws://{host}:{port}/ (Ctrl-C to stop)")
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    try:
        asyncio.run(main(args.host, args.port))
    except KeyboardInterrupt:
        pass
