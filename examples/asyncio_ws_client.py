"""A WebSocket client on asyncio: streamcore's ClientHandshake drives h11 for
the upgrade (RFC 6455 §4.1), then a streamcore Connection speaks WebSocket.

Run the echo server first::

    python examples/asyncio_ws_server.py
    python examples/asyncio_ws_client.py "hello" "world"

It sends each argument as a Text message and waits for its echo, then a
Ping (answered by a Pong), then closes, printing everything it receives.
It works against any WebSocket echo server on the given host and port.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

try:
    import streamcore  # noqa: F401
except ImportError:  # run from a checkout without installing: use the parent folder
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from streamcore.ws import Event, PerMessageDeflate, State  # noqa: E402
from streamcore.ws.handshake import ClientHandshake  # noqa: E402

READ_SIZE = 65536
TIMEOUT = 10.0


async def main(host: str, port: int, messages: list[str]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        handshake = ClientHandshake(
            f"{host}:{port}", "/", subprotocols=["echo"], deflate=PerMessageDeflate()
        )
        writer.write(handshake.send())
        upgrade = None
        while upgrade is None:
            # b"" (the server closed) raises HandshakeError, as does a refusal
            data = await asyncio.wait_for(reader.read(READ_SIZE), TIMEOUT)
            upgrade = handshake.receive_data(data)
        print(f"connected: subprotocol={upgrade.subprotocol!r} extensions={upgrade.extensions!r}")

        # the hand-off in one call: a Connection with the agreed deflate, and the
        # events of the frames the server sent right behind its 101
        opened = upgrade.connect()
        writer.write(opened.data)  # b"", or our Close if those frames were bad
        if opened.error is not None:
            raise opened.error
        ws = opened.connection
        events: list[Event] = list(opened.events)
        pending = b""

        async def next_event() -> Event:
            """The next event, reading from the socket when none is buffered."""
            nonlocal pending
            while not events:
                if not pending:
                    pending = await asyncio.wait_for(reader.read(READ_SIZE), TIMEOUT)
                    if not pending:
                        ws.receive_eof()  # raises IncompleteError: closed without a Close
                events.extend(ws.receive_data(pending))
                pending = b""
            return events.pop(0)

        for text in messages:
            writer.write(ws.send_text(text))
            print("sent", repr(text), "received", await next_event())
        writer.write(ws.send_ping(b"are you there?"))
        print("sent a Ping, received", await next_event())
        writer.write(ws.send_close(1000, "bye"))
        # read until the server's Close answers ours (RFC 6455 §7.1.2)
        while ws.state is not State.CLOSED:
            print("received", await next_event())
        print("closed; stats:", ws.stats)
    finally:
        writer.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("messages", nargs="*", default=["hello", "world"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    asyncio.run(main(args.host, args.port, args.messages))
