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

The request head and the echo loop are ``ws_echo.py``'s, which the trio
example shares: only ``send``, ``receive`` and ``close_gracefully`` here are
asyncio's.
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

from ws_echo import MAX_REQUEST_HEAD, READ_SIZE, echo, read_request  # noqa: E402

from streamcore.ws import PerMessageDeflate  # noqa: E402
from streamcore.ws.handshake import ServerHandshake  # noqa: E402

CLOSE_TIMEOUT = 5.0  # how long a failed peer may take to go away

HANDSHAKE = ServerHandshake(
    subprotocols=["echo"],
    # Keep per-connection zlib memory small: 2**12-byte windows both ways.
    deflate=PerMessageDeflate(server_max_window_bits=12, client_max_window_bits=12),
)


async def close_gracefully(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                           last: bytes = b"") -> None:
    """Write ``last`` (what ends with our Close) and flush, half-close, and
    discard what the peer still sends until it hangs up (bounded by CLOSE_TIMEOUT).

    Closing a socket while the peer's bytes are still unread makes the kernel
    reset the connection and drop what it had not sent yet: the peer would
    lose our Close and see 1006 instead of its code.
    """
    try:
        writer.write(last)
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


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    http = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_REQUEST_HEAD)

    async def send(data: bytes) -> None:
        writer.write(data)
        await writer.drain()

    try:
        try:
            request = await read_request(reader.read, http)
        except h11.RemoteProtocolError:
            return
        if request is None:
            return
        # the upgrade (ServerHandshake.connect: the 101, a ready Connection with
        # the agreed deflate, the frames behind the request), then the echo loop
        await echo(HANDSHAKE, http, request, reader.read, send,
                   lambda last: close_gracefully(reader, writer, last),
                   max_message_size=1 << 20)
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
