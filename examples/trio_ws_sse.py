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
shape fits anyio or any other byte stream: the request head and the
WebSocket loop are ``ws_echo.py``'s, which the asyncio example shares.
SIGINT or SIGTERM stops it.
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

from ws_echo import MAX_REQUEST_HEAD, READ_SIZE, echo, read_request  # noqa: E402

from streamcore import IMPLEMENTATION  # noqa: E402
from streamcore.chunked import ChunkedEncoder  # noqa: E402
from streamcore.sse import encode_event, keepalive, response_headers  # noqa: E402
from streamcore.ws import PerMessageDeflate  # noqa: E402
from streamcore.ws.handshake import ServerHandshake  # noqa: E402

CLOSE_TIMEOUT = 5.0  # how long a failed peer may take to go away
DROP_EVERY = 5  # events per SSE connection before the server ends it
RETRY_MS = 500
TOKENS = "streamcore streams chunked bodies , server-sent events and websockets".split()

HANDSHAKE = ServerHandshake(
    # Small zlib windows both ways keep per-connection memory low (2**12 bytes each).
    deflate=PerMessageDeflate(server_max_window_bits=12, client_max_window_bits=12),
)


async def close_gracefully(stream: trio.SocketStream, last: bytes = b"") -> None:
    """Write ``last`` (what ends with our Close), half-close, and discard what
    the peer still sends until it hangs up, within CLOSE_TIMEOUT: closing with
    unread input makes the kernel send a reset, which can drop our Close
    before the peer reads it."""
    with trio.move_on_after(CLOSE_TIMEOUT):
        try:
            await stream.send_all(last)
            await stream.send_eof()
            while await stream.receive_some(READ_SIZE):
                pass
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass


# -- WebSocket ---------------------------------------------------------------


async def websocket(stream: trio.SocketStream, http: h11.Connection, request: h11.Request) -> None:
    """The upgrade and the echo loop of ``ws_echo.py``, on this trio stream."""
    await echo(HANDSHAKE, http, request, stream.receive_some, stream.send_all,
               lambda last: close_gracefully(stream, last), max_message_size=1 << 20)


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
            request = await read_request(stream.receive_some, http)
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
