"""The demo on plain asyncio, without uvicorn: an SSE token stream, a
WebSocket echo with permessage-deflate and a chunked report.

    python examples/demo_asyncio.py              # prints the URL to open
    python examples/demo_asyncio.py --port 0     # any free port

Two listeners, because each part uses the layer that fits it:

- ``http://HOST:PORT/``: an ``asyncio.start_server`` loop with h11 reading
  the request heads and streamcore's Sans-I/O codecs writing the bodies.
  ``/events`` is the SSE token stream (``id``, ``retry``, a keep-alive
  comment after each second of silence; the server drops the connection
  after ``DROP_EVERY`` events and the client resumes from its
  ``Last-Event-ID``), ``/report`` a report streamed as it is computed, in
  chunked transfer coding with a checksum trailer.  This part is written
  against the codecs directly, to show them on bare streams
  (``examples/asyncio_http_sse.py`` does it with the adapter's own HTTP
  handlers instead).  SSE bodies go out in chunked coding too: HTTP/1.1 has
  no other way to stream a body of unknown length on a connection that stays
  well framed.
- ``ws://HOST:WS_PORT/``: :func:`streamcore.integrations.asyncio.serve`,
  echoing text and binary, with permessage-deflate when the client offers it
  (every path echoes: the adapter does not route).

SIGINT or SIGTERM stops both listeners.
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import signal
import sys
from collections.abc import Awaitable, Callable

import h11

try:
    import streamcore  # noqa: F401
except ImportError:  # run from a checkout without installing: use the parent folder
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ws_echo import MAX_REQUEST_HEAD, read_request  # noqa: E402

from streamcore import IMPLEMENTATION  # noqa: E402
from streamcore.chunked import ChunkedEncoder  # noqa: E402
from streamcore.integrations.asyncio import WebSocket, serve  # noqa: E402
from streamcore.sse import encode_event, keepalive, response_headers  # noqa: E402
from streamcore.ws import PerMessageDeflate  # noqa: E402

DROP_EVERY = 5  # events per SSE connection before the server drops it
RETRY_MS = 500  # what the client waits before it reconnects
KEEPALIVE_S = 1.0  # a comment after this many seconds without a write
TOKENS = "streamcore streams chunked bodies , server-sent events and websockets".split()

PAGE = """<!doctype html>
<meta charset="utf-8"><title>streamcore on asyncio</title>
<h1>streamcore on plain asyncio</h1>
<h2>SSE token stream</h2>
<p>reconnections: <span id="reconnects">0</span></p><ol id="tokens"></ol>
<h2>WebSocket echo</h2>
<p>extensions: <code id="extensions"></code></p>
<input id="echo-input" value="hello"><button id="echo-send">send text</button>
<button id="echo-binary">send binary</button><ul id="echoes"></ul>
<h2>Chunked report</h2><button id="report-run">run</button><pre id="report"></pre>
<script>
// window.* hold what the page saw, for people and for tests/test_browser_demo_asyncio.py
window.tokens = []; window.echoes = []; window.echoReady = false; window.reportDone = false;
const add = (id, text) => {
  const li = document.createElement("li"); li.textContent = text;
  document.getElementById(id).append(li);
};
const source = new EventSource("/events");
let opened = 0;
source.onopen = () => {
  if (opened++) document.getElementById("reconnects").textContent = opened - 1;
};
source.addEventListener("token", (e) => {
  window.tokens.push({id: e.lastEventId, data: e.data});
  add("tokens", `${e.lastEventId}: ${e.data}`);
});
const ws = new WebSocket(`ws://${location.hostname}:{{ws_port}}/echo`);
ws.binaryType = "arraybuffer";
ws.onopen = () => {
  document.getElementById("extensions").textContent = ws.extensions;
  window.echoReady = true;
};
ws.onmessage = (e) => {
  const text = typeof e.data === "string" ? `text: ${e.data}`
                                           : `binary: ${new Uint8Array(e.data).join(",")}`;
  window.echoes.push(text); add("echoes", text);
};
document.getElementById("echo-send").onclick = () =>
  ws.send(document.getElementById("echo-input").value);
document.getElementById("echo-binary").onclick = () =>
  ws.send(new Uint8Array([0, 1, 2, 253, 254, 255]));
document.getElementById("report-run").onclick = async () => {
  const out = document.getElementById("report"); out.textContent = "";
  const response = await fetch("/report");
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  for (;;) {
    const {value, done} = await reader.read();
    if (done) break;
    out.textContent += value;
  }
  window.reportDone = true;
};
</script>
"""


# -- HTTP: h11 reads the request, streamcore writes the body ----------------


def header(request: h11.Request, name: bytes) -> bytes | None:
    for key, value in request.headers:
        if key == name:
            return value
    return None


def head(http: h11.Connection, status: int, headers: list[tuple[bytes, bytes]]) -> bytes:
    # Every response here is the last on its connection: h11 writes the head,
    # the body is ours, then the connection is closed.
    reason = {200: b"OK", 404: b"Not Found", 405: b"Method Not Allowed"}[status]
    response = h11.Response(status_code=status, reason=reason,
                            headers=[*headers, (b"connection", b"close")])
    return http.send(response) or b""


async def events(writer: asyncio.StreamWriter, http: h11.Connection, request: h11.Request,
                 interval: float) -> None:
    """The SSE token stream: ``DROP_EVERY`` events from the one after
    ``Last-Event-ID``, then the server ends the response (as a restarting
    server would), and the client reconnects with the last id it saw."""
    last = header(request, b"last-event-id")
    start = int(last) + 1 if last is not None and last.isdigit() else 0
    chunked = ChunkedEncoder()
    writer.write(head(http, 200, response_headers([(b"transfer-encoding", b"chunked")])))
    writer.write(chunked.encode(keepalive("stream open")))  # the client sees the response start
    for n in range(start, start + DROP_EVERY):
        resumed = "" if last is None else f" (resumed after {last.decode()})"
        block = encode_event(f"{n} {TOKENS[n % len(TOKENS)]}{resumed}", event="token", id=str(n),
                             retry=RETRY_MS if n == start else None)
        writer.writelines(chunked.encode_buffers(block))  # header, payload, CRLF: no copy
        await writer.drain()
        # Until the next token: a keep-alive comment after every KEEPALIVE_S of
        # silence, so proxies and clients do not time the stream out.
        remaining = interval
        while remaining > KEEPALIVE_S:
            await asyncio.sleep(KEEPALIVE_S)
            remaining -= KEEPALIVE_S
            writer.write(chunked.encode(keepalive()))
        await asyncio.sleep(remaining)
    writer.write(chunked.finish())


async def report(writer: asyncio.StreamWriter, http: h11.Connection, interval: float) -> None:
    """A report sent line by line as it is computed, with its SHA-256 in a trailer."""
    chunked = ChunkedEncoder()
    writer.write(head(http, 200, [(b"content-type", b"text/plain; charset=utf-8"),
                                  (b"transfer-encoding", b"chunked"),
                                  (b"trailer", b"x-sha256")]))
    digest = hashlib.sha256()
    lines = [b"streamcore report, one line per step\n"]
    lines += [f"step {step:2d}: {step * step:4d}\n".encode() for step in range(1, 11)]
    lines.append(b"done\n")
    for line in lines:
        digest.update(line)
        writer.writelines(chunked.encode_buffers(line))
        await writer.drain()
        await asyncio.sleep(interval / 2)
    writer.write(chunked.finish(trailers=[("x-sha256", digest.hexdigest())]))


def handler(ws_port: int, interval: float) -> Callable[
        [asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
    page = PAGE.replace("{{ws_port}}", str(ws_port)).encode()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        http = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_REQUEST_HEAD)
        try:
            request = await read_request(reader.read, http)  # ws_echo.py's
            if request is None:
                return
            path = request.target.split(b"?", 1)[0]
            if request.method != b"GET":
                writer.write(head(http, 405, [(b"content-length", b"0")]))
            elif path == b"/":
                writer.write(head(http, 200, [(b"content-type", b"text/html; charset=utf-8"),
                                              (b"content-length", str(len(page)).encode())]))
                writer.write(page)
            elif path == b"/events":
                await events(writer, http, request, interval)
            elif path == b"/report":
                await report(writer, http, interval)
            else:
                writer.write(head(http, 404, [(b"content-length", b"0")]))
            await writer.drain()
        except h11.RemoteProtocolError:
            pass  # a malformed request head: nothing to answer on this connection
        except (ConnectionError, asyncio.CancelledError):
            pass  # the client went away mid-stream (a closed EventSource)
        finally:
            writer.close()

    return handle


# -- WebSocket: the asyncio adapter -----------------------------------------


async def echo(ws: WebSocket) -> None:
    async for message in ws:  # str for Text, bytes for Binary
        await ws.send(message)


async def main(host: str, port: int, ws_port: int, interval: float) -> None:
    # Small zlib windows both ways keep per-connection memory low (2**12 bytes each).
    deflate = PerMessageDeflate(server_max_window_bits=12, client_max_window_bits=12)
    ws_server = await serve(echo, host, ws_port, deflate=deflate)
    ws_port = ws_server.sockets[0].getsockname()[1]
    http_server = await asyncio.start_server(handler(ws_port, interval), host, port)
    port = http_server.sockets[0].getsockname()[1]
    print(f"streamcore demo on plain asyncio ({IMPLEMENTATION} twin): open http://{host}:{port}/",
          flush=True)
    print(f"  SSE http://{host}:{port}/events, report http://{host}:{port}/report, "
          f"WebSocket echo ws://{host}:{ws_port}/echo (Ctrl-C to stop)", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with ws_server, http_server:
        await stop.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="the HTTP port (0: any free one)")
    parser.add_argument("--ws-port", type=int, default=0, help="the WebSocket port (0: any free one)")
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between SSE tokens")
    args = parser.parse_args()
    asyncio.run(main(args.host, args.port, args.ws_port, args.interval))
