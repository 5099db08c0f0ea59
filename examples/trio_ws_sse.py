"""streamcore on trio: a WebSocket echo server and an SSE stream on one port,
the Sans-I/O codecs driven by trio streams.

    python examples/trio_ws_sse.py               # prints the URL
    python examples/trio_ws_sse.py --port 0      # any free port

Each connection is one task: h11 reads the request head; an upgrade request
goes through :class:`streamcore.ws.handshake.ServerHandshake` (the 101, a
ready ``Connection`` with the agreed permessage-deflate, and the frames that
came behind the request), then every ``receive_some()`` is fed to the
connection and what it returns is written with ``send_all()``.  ``/events``
is an SSE token stream (``id``, ``retry``, a keep-alive comment) written with
:func:`streamcore.sse.encode_event` inside chunked transfer coding
(:class:`streamcore.chunked.ChunkedEncoder`); the server ends it after
``DROP_EVERY`` events and a client that reconnects with ``Last-Event-ID``
continues from the next id.

Nothing here is specific to trio except the four stream calls, so the same
shape fits anyio or any other byte stream.  SIGINT or SIGTERM stops it.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Awaitable, Callable

import h11
import trio

try:
    import streamcore  # noqa: F401
except ImportError:  # run from a checkout without installing: use the parent folder
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from streamcore import IMPLEMENTATION, ProtocolError, StateError  # noqa: E402
from streamcore.chunked import ChunkedEncoder  # noqa: E402
from streamcore.sse import encode_event, keepalive, response_headers  # noqa: E402
from streamcore.ws import Binary, Connection, Event, PerMessageDeflate, Ping, State, Text  # noqa: E402
from streamcore.ws.handshake import HandshakeError, ServerHandshake  # noqa: E402

READ_SIZE = 65536
MAX_REQUEST_HEAD = 16384  # h11's default bound on a request head
CLOSE_TIMEOUT = 5.0  # how long a failed peer may take to go away
DROP_EVERY = 5  # events per SSE connection before the server ends it
RETRY_MS = 500
TOKENS = "streamcore streams chunked bodies , server-sent events and websockets".split()

HANDSHAKE = ServerHandshake(
    # Small zlib windows both ways keep per-connection memory low (2**12 bytes each).
    deflate=PerMessageDeflate(server_max_window_bits=12, client_max_window_bits=12),
)


async def read_request(stream: trio.SocketStream, http: h11.Connection) -> h11.Request | None:
    """One request head, read with h11; None when the client went away."""
    while True:
        event = http.next_event()
        if isinstance(event, h11.Request):
            return event
        if event is h11.NEED_DATA:
            http.receive_data(await stream.receive_some(READ_SIZE))
            continue
        return None  # h11.ConnectionClosed


async def close_gracefully(stream: trio.SocketStream) -> None:
    """Half-close after our last bytes and discard what the peer still sends
    until it hangs up: closing with unread input makes the kernel send a
    reset, which can drop our Close before the peer reads it."""
    with trio.move_on_after(CLOSE_TIMEOUT):
        try:
            await stream.send_eof()
            while await stream.receive_some(READ_SIZE):
                pass
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass


# -- WebSocket ---------------------------------------------------------------


def replies(ws: Connection, events: list[Event]) -> bytes:
    """The echo of every Text and Binary message, the Pong of every Ping, then
    the echo of the peer's Close if one came (RFC 6455 §5.5.1): in that order."""
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


async def websocket(stream: trio.SocketStream, http: h11.Connection, request: h11.Request) -> None:
    try:
        opened = HANDSHAKE.connect(http, request, max_message_size=1 << 20)
    except HandshakeError as err:
        await stream.send_all(HANDSHAKE.reject(http, err))  # 400 or 426
        return
    await stream.send_all(opened.data)  # first: the 101 (and our Close if those frames were bad)
    if opened.error is not None:
        await close_gracefully(stream)
        return
    ws, events = opened.connection, opened.events
    while True:
        out = replies(ws, events)
        if out:
            await stream.send_all(out)
        if ws.state is State.CLOSED:
            return  # the server closes TCP first once the handshake is done (§7.1.1)
        data = await stream.receive_some(READ_SIZE)
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
            # the connection with the error's close code (§7.1.7)
            out = replies(ws, err.events)
            if ws.state is State.OPEN:
                out += ws.send_close(err.close_code or 1002)
            await stream.send_all(out)
            await close_gracefully(stream)
            return


# -- SSE ---------------------------------------------------------------------


async def events(stream: trio.SocketStream, http: h11.Connection, request: h11.Request,
                 interval: float) -> None:
    last = dict(request.headers).get(b"last-event-id")
    start = int(last) + 1 if last is not None and last.isdigit() else 0
    head = h11.Response(status_code=200, reason=b"OK",
                        headers=[*response_headers(), (b"connection", b"close")])
    chunked = ChunkedEncoder()  # no Content-Length: h11 announces chunked coding
    await stream.send_all((http.send(head) or b"") + chunked.encode(keepalive("stream open")))
    for n in range(start, start + DROP_EVERY):
        block = encode_event(f"{n} {TOKENS[n % len(TOKENS)]}", event="token", id=str(n),
                             retry=RETRY_MS if n == start else None)
        await stream.send_all(chunked.encode(block))
        await trio.sleep(interval)
    await stream.send_all(chunked.finish())


async def plain(stream: trio.SocketStream, http: h11.Connection, status: int, body: bytes) -> None:
    reason = {200: b"OK", 404: b"Not Found"}[status]
    head = h11.Response(status_code=status, reason=reason, headers=[
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()), (b"connection", b"close")])
    await stream.send_all((http.send(head) or b"") + body)


def handler(interval: float) -> Callable[[trio.SocketStream], Awaitable[None]]:
    async def handle(stream: trio.SocketStream) -> None:
        http = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_REQUEST_HEAD)
        try:
            request = await read_request(stream, http)
            if request is None:
                return
            path = request.target.split(b"?", 1)[0]
            upgrade = dict(request.headers).get(b"upgrade", b"").lower()
            if upgrade == b"websocket":
                await websocket(stream, http, request)
            elif path == b"/events":
                await events(stream, http, request, interval)
            elif path == b"/":
                await plain(stream, http, 200, b"streamcore on trio: GET /events (SSE), "
                                               b"WebSocket echo on any path\n")
            else:
                await plain(stream, http, 404, b"not found\n")
        except h11.RemoteProtocolError:
            pass  # a malformed request head: nothing to answer on this connection
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the client went away mid-stream
        finally:
            await stream.aclose()

    return handle


async def main(host: str, port: int, interval: float) -> None:
    listeners = await trio.open_tcp_listeners(port, host=host)
    port = listeners[0].socket.getsockname()[1]
    print(f"streamcore on trio ({IMPLEMENTATION} twin): http://{host}:{port}/ "
          f"(SSE /events, WebSocket ws://{host}:{port}/echo; Ctrl-C to stop)", flush=True)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.serve_listeners, handler(interval), listeners)
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                nursery.cancel_scope.cancel()
                break


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001, help="0: any free port")
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between SSE tokens")
    args = parser.parse_args()
    trio.run(main, args.host, args.port, args.interval)
