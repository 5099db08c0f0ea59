"""A WebSocket echo server on asyncio: h11 reads the HTTP request, streamcore
upgrades it (RFC 6455 §4.2) and speaks WebSocket after the 101.

Run it, then the client beside it::

    python examples/asyncio_ws_server.py            # listens on 127.0.0.1:8765
    python examples/asyncio_ws_client.py

Every Text or Binary message is sent back, Pings are answered, a Close is
echoed.  permessage-deflate is accepted when the client offers it.  A plain
HTTP request (no upgrade) gets a 400 from the same h11 connection.
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
from streamcore.ws import Binary, Connection, PerMessageDeflate, Ping, State, Text  # noqa: E402
from streamcore.ws.handshake import HandshakeError, ServerHandshake  # noqa: E402

READ_SIZE = 65536
MAX_REQUEST_HEAD = 16384  # h11's default bound on the request head

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


async def echo(
    ws: Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes
) -> None:
    """Run the WebSocket connection until the closing handshake ends."""
    while True:
        try:
            events = ws.receive_data(data) if data else []
        except ProtocolError as err:
            # RFC 6455 §7.1.7: fail the connection with the error's close code
            if ws.state is State.OPEN:
                writer.write(ws.send_close(err.close_code or 1002))
            return
        for event in events:
            # everything before the peer's Close is answered, even in the same read
            if isinstance(event, Text):
                writer.write(ws.send_text(event.data))
            elif isinstance(event, Binary):
                writer.write(ws.send_binary(event.data))
            elif isinstance(event, Ping):
                writer.write(ws.send_pong(event.data))
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
            upgrade = HANDSHAKE.upgrade(http, request)
        except HandshakeError as err:
            writer.write(HANDSHAKE.reject(http, err))  # 400 or 426
            await writer.drain()
            return
        writer.write(upgrade.data)  # the 101
        ws = Connection("server", deflate=upgrade.deflate)
        # upgrade.trailing: frames the client sent right behind its request
        await echo(ws, reader, writer, upgrade.trailing)
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
