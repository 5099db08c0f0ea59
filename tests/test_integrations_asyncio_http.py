"""Chunked and SSE HTTP/1.1 on streamcore.integrations.asyncio, over
127.0.0.1 with real peers: httpx and httpx-sse against our server, h11 and
plain asyncio servers against our client.  Every test runs on both twins of
the chunked and SSE codecs (the adapter's names are swapped), on asyncio's
own event loop and on uvloop."""
from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import h11
import httpx
import pytest
import uvloop
from helpers import IMPLEMENTATIONS, load_twin
from httpx_sse import aconnect_sse
from websockets.asyncio.client import connect as ws_connect

from streamcore import IncompleteError, ProtocolError
from streamcore.integrations import _asyncio_http as http_impl
from streamcore.integrations import asgi
from streamcore.integrations import asyncio as adapter
from streamcore.sse import Event

pytestmark = pytest.mark.interop


@pytest.fixture(autouse=True, params=IMPLEMENTATIONS)
def twin(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    chunked = load_twin("chunked", request.param)
    sse = load_twin("sse", request.param)
    monkeypatch.setattr(http_impl, "ChunkedDecoder", chunked.ChunkedDecoder)
    monkeypatch.setattr(http_impl, "ChunkedEncoder", chunked.ChunkedEncoder)
    monkeypatch.setattr(http_impl, "SSEDecoder", sse.SSEDecoder)
    monkeypatch.setattr(http_impl, "encode_event", sse.encode_event)
    monkeypatch.setattr(adapter, "Connection", load_twin("ws", request.param).Connection)
    return str(request.param)


_loop = {"kind": "asyncio"}


@pytest.fixture(autouse=True, params=["asyncio", "uvloop"])
def loop_kind(request: pytest.FixtureRequest) -> str:
    _loop["kind"] = request.param
    return str(request.param)


def run(coro: Awaitable[Any]) -> Any:
    """Run on the event loop of this test's ``loop_kind``."""
    if _loop["kind"] == "uvloop":
        return uvloop.run(asyncio.wait_for(coro, 30))
    return asyncio.run(asyncio.wait_for(coro, 30))


async def serving(app: Any, body: Callable[[str], Awaitable[Any]], **kw: Any) -> Any:
    server = await adapter.serve(http=app, **kw)
    port = server.sockets[0].getsockname()[1]
    try:
        return await body(f"http://127.0.0.1:{port}")
    finally:
        server.close()
        await server.wait_closed()


async def settle(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


def other_tasks() -> set[asyncio.Task[Any]]:
    return {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}


# -- our server, httpx as the client ---------------------------------------


def test_plain_responses_keep_the_connection_alive() -> None:
    seen: list[Any] = []

    async def app(request: adapter.Request) -> adapter.Response:
        seen.append((request.method, request.path, request.query, request.body,
                     request.connection))
        return adapter.Response(f"{request.method} {request.target}", headers={"x-a": "1"})

    async def body(url: str) -> None:
        async with httpx.AsyncClient() as client:
            for k in range(5):
                r = await client.get(f"{url}/p{k}?q={k}")
                assert (r.status_code, r.text, r.headers["x-a"]) == (200, f"GET /p{k}?q={k}", "1")
            r = await client.post(f"{url}/up", content=b"z" * 100_000)
            assert r.text == "POST /up"

    run(serving(app, body))
    assert [s[:4] for s in seen[:2]] == [("GET", "/p0", "q=0", b""), ("GET", "/p1", "q=1", b"")]
    assert seen[-1][3] == b"z" * 100_000
    assert len({id(s[4]) for s in seen}) == 1  # one connection, kept alive


def test_a_request_body_over_the_limit_gets_413() -> None:
    async def app(request: adapter.Request) -> adapter.Response:
        return adapter.Response("no")

    async def body(url: str) -> None:
        async with httpx.AsyncClient() as client:
            r = await client.post(url, content=b"z" * 2000)
            assert r.status_code == 413
            r = await client.post(url, content=b"z" * 1000)
            assert r.status_code == 200

    run(serving(app, body, max_body_size=1000))


def test_chunked_body_arrives_in_order_with_its_chunks() -> None:
    pieces = [b"a" * n for n in (1, 10, 0, 1000, 65536, 1 << 20, 3)]

    async def parts() -> AsyncIterator[bytes]:
        for piece in pieces:
            yield piece
            await asyncio.sleep(0)

    async def app(request: adapter.Request) -> adapter.ChunkedResponse:
        return adapter.ChunkedResponse(parts(), headers=[("content-type", "application/x-a")])

    async def body(url: str) -> None:
        async with httpx.AsyncClient() as client:
            async with client.stream("GET", url) as r:
                assert r.headers["transfer-encoding"] == "chunked"
                assert r.headers["content-type"] == "application/x-a"
                got = b"".join([piece async for piece in r.aiter_bytes()])
        assert got == b"".join(pieces)
        # our client sees the chunk boundaries the server wrote
        async with await adapter.request(url) as response:
            data = [d async for d in response.aiter_data()]
        assert [d.data for d in data if d.chunk_start and d.chunk_end][:3] == [b"a", b"a" * 10,
                                                                              b"a" * 1000]
        assert b"".join(d.data for d in data) == b"".join(pieces)

    run(serving(app, body))


def test_trailers_are_sent_after_the_body() -> None:
    async def parts() -> AsyncIterator[bytes]:
        yield b"hello"
        yield memoryview(b"world")

    async def app(request: adapter.Request) -> adapter.ChunkedResponse:
        return adapter.ChunkedResponse(parts(), trailers=lambda: [("x-checksum", "10")])

    async def body(url: str) -> None:
        async with await adapter.request(url) as response:
            assert response.chunked
            assert await response.read() == b"helloworld"
            assert response.trailers == [(b"x-checksum", b"10")]

    run(serving(app, body))


def test_events_arrive_in_order_with_the_event_stream_head() -> None:
    async def numbers() -> AsyncIterator[Any]:
        for k in range(200):
            if k % 4 == 0:
                yield {"data": f"n{k}", "id": str(k), "event": "tick"}
            elif k % 4 == 1:
                yield Event(f"n{k}\nline", "message", str(k))
            elif k % 4 == 2:
                yield asgi.encode({"data": f"n{k}", "id": str(k)})  # encoded once
            else:
                yield {"data": f"n{k}", "id": str(k)}

    async def app(request: adapter.Request) -> adapter.EventStreamResponse:
        return adapter.EventStreamResponse(numbers(), retry=1500)

    async def body(url: str) -> None:
        async with httpx.AsyncClient() as client:
            async with aconnect_sse(client, "GET", url) as source:
                head = source.response.headers
                assert head["content-type"] == "text/event-stream"
                assert head["cache-control"] == "no-store"
                assert head["x-accel-buffering"] == "no"
                got = [(e.event, e.data, e.id, e.retry) async for e in source.aiter_sse()]
        # httpx-sse dispatches the retry-only block first (a browser would not)
        assert got.pop(0)[1:] == ("", "", 1500)
        assert [g[1].split("\n")[0] for g in got] == [f"n{k}" for k in range(200)]
        assert [g[2] for g in got] == [str(k) for k in range(200)]
        assert got[0][0] == "tick" and got[1] == ("message", "n1\nline", "1", None)

    run(serving(app, body))


def test_reconnect_resumes_from_last_event_id() -> None:
    seen: list[str | None] = []

    def events(last_event_id: str | None) -> AsyncIterator[Any]:
        seen.append(last_event_id)
        start = 0 if last_event_id is None else int(last_event_id) + 1

        async def gen() -> AsyncIterator[Any]:
            for k in range(start, start + 3):
                yield {"data": f"e{k}", "id": str(k)}

        return gen()

    async def app(request: adapter.Request) -> adapter.EventStreamResponse:
        return adapter.EventStreamResponse(events)

    async def body(url: str) -> None:
        got: list[str] = []
        last = None
        async with httpx.AsyncClient() as client:
            for _ in range(3):  # reconnect as an EventSource does, with the last id
                headers = {} if last is None else {"Last-Event-ID": last}
                async with aconnect_sse(client, "GET", url, headers=headers) as source:
                    async for e in source.aiter_sse():
                        got.append(e.data)
                        last = e.id
        assert got == [f"e{k}" for k in range(9)]
        # our own client does it by itself
        ours = [e.data async for e in adapter.event_source(url, retry=1, max_reconnects=2)]
        assert ours == [f"e{k}" for k in range(9)]

    run(serving(app, body))
    assert seen == [None, "2", "5", None, "2", "5"]


def test_keepalive_comments_only_when_idle() -> None:
    async def busy() -> AsyncIterator[Any]:
        for k in range(30):
            yield {"data": str(k)}
            await asyncio.sleep(0.005)

    async def idle() -> AsyncIterator[Any]:
        yield {"data": "first"}
        await asyncio.sleep(0.9)
        yield {"data": "last"}

    async def app(request: adapter.Request) -> adapter.EventStreamResponse:
        source = busy() if request.path == "/busy" else idle()
        interval = 0.5 if request.path == "/busy" else 0.2
        return adapter.EventStreamResponse(source, ping_interval=interval)

    async def body(url: str) -> None:
        async with httpx.AsyncClient() as client:
            r = await client.get(url + "/busy")
            assert b":\n\n" not in r.content  # 5 ms between events: never idle for 500 ms
            assert r.content.count(b"data: ") == 30
            r = await client.get(url + "/idle")
            pings = r.content.count(b":\n\n")
            assert 2 <= pings <= 5, r.content  # 4 on an idle machine
            assert r.content.startswith(b"data: first\n\n") and r.content.endswith(b"data: last\n\n")

    run(serving(app, body))


async def raw_chunks(url: str, target: str) -> tuple[bytes, list[bytes]]:
    """GET ``target`` by hand; the response head and its body's chunks, as sent."""
    host, port = url[len("http://"):].split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    decoder = http_impl.ChunkedDecoder()
    chunks: list[bytes] = []
    while not decoder.done:
        data = await reader.read(65536)
        assert data, "the connection ended inside the body"
        for event in decoder.feed(data):
            if type(event).__name__ == "Data":
                if event.chunk_start:
                    chunks.append(b"")
                chunks[-1] += event.data
    writer.close()
    return head, chunks


def test_events_ready_in_one_turn_of_the_loop_go_out_as_one_chunk() -> None:
    async def burst() -> AsyncIterator[Any]:
        for k in range(50):  # ready at once: the iterator never waits
            yield {"data": f"a{k}"}
        await asyncio.sleep(0.05)
        yield {"data": "later"}
        for k in range(3):
            yield asgi.encode({"data": f"b{k}", "id": str(k)})

    async def app(request: adapter.Request) -> adapter.EventStreamResponse:
        return adapter.EventStreamResponse(burst(), retry=1500)

    async def body(url: str) -> None:
        head, chunks = await raw_chunks(url, "/events")
        assert b"transfer-encoding: chunked" in head.lower()
        assert chunks == [
            b"retry: 1500\n\n" + b"".join(b"data: a%d\n\n" % k for k in range(50)),
            b"data: later\n\n" + b"".join(b"id: %d\ndata: b%d\n\n" % (k, k) for k in range(3)),
        ]

    run(serving(app, body))


def test_a_large_burst_is_written_in_order_and_still_pauses_on_a_full_buffer() -> None:
    # past CORK_LIMIT the corked events go out at once: a burst that never
    # yields to the loop still meets the write buffer's high-water mark
    events = [{"data": f"{k}:" + "x" * 3000} for k in range(400)]  # 1.2 MB
    produced: list[int] = []

    async def burst(request: adapter.Request) -> AsyncIterator[Any]:
        assert request.connection is not None and request.connection.transport is not None
        transport = request.connection.transport
        transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
        for event in events:
            produced.append(len(produced))
            yield event

    async def app(request: adapter.Request) -> adapter.EventStreamResponse:
        return adapter.EventStreamResponse(burst(request))

    async def body(url: str) -> None:
        host, port = url[len("http://"):].split(":")
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
        sock.connect((host, int(port)))
        reader, writer = await asyncio.open_connection(sock=sock)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await asyncio.sleep(0.3)  # nothing read yet: the server's buffer fills
        stalled_at = len(produced)
        head = await reader.readuntil(b"\r\n\r\n")
        decoder = http_impl.ChunkedDecoder()
        data = b""
        while not decoder.done:
            for event in decoder.feed(await reader.read(65536)):
                if type(event).__name__ == "Data":
                    data += event.data
        writer.close()
        assert head.startswith(b"HTTP/1.1 200")
        assert data == b"".join(b"data: %s\n\n" % e["data"].encode() for e in events)
        # the iterator waited on the full buffer: what it produced is what the
        # kernel's small buffers, write_limit and one cork (CORK_LIMIT) hold
        assert 0 < stalled_at < 120, stalled_at

    run(serving(app, body, write_limit=16384))


def test_a_client_that_goes_away_closes_the_iterator() -> None:
    state: dict[str, Any] = {"closed": asyncio.Event, "sent": 0}

    async def forever() -> AsyncIterator[Any]:
        try:
            while True:
                state["sent"] += 1
                yield {"data": str(state["sent"])}
                await asyncio.sleep(0.01 if state["sent"] < 5 else 3600)  # then idle
        finally:
            state["closed"].set()

    async def app(request: adapter.Request) -> adapter.EventStreamResponse:
        return adapter.EventStreamResponse(forever(), ping_interval=None)

    async def body(url: str) -> None:
        state["closed"] = asyncio.Event()
        before = other_tasks()
        async with httpx.AsyncClient() as client:
            async with aconnect_sse(client, "GET", url) as source:
                got = []
                async for e in source.aiter_sse():
                    got.append(e.data)
                    if len(got) == 5:
                        break
        await asyncio.wait_for(state["closed"].wait(), 5)  # the iterator was closed
        await settle(lambda: other_tasks() <= before)  # and no task is left behind

    run(serving(app, body))


def test_a_client_that_stops_reading_pauses_the_server_then_is_dropped() -> None:
    state: dict[str, Any] = {"made": 0, "most_buffered": 0}
    event = {"data": "x" * 8000}
    limit = 1 << 16

    async def flood(request: adapter.Request) -> AsyncIterator[Any]:
        conn = request.connection
        assert conn is not None and conn.transport is not None
        try:
            while True:
                state["made"] += 1
                state["most_buffered"] = max(state["most_buffered"],
                                             conn.transport.get_write_buffer_size())
                yield event
        finally:
            state["closed"] = True

    async def app(request: adapter.Request) -> adapter.EventStreamResponse:
        return adapter.EventStreamResponse(flood(request), send_timeout=2.0)

    async def main() -> None:
        server = await adapter.serve(http=app, write_limit=limit)
        port = server.sockets[0].getsockname()[1]
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", port))
        before = other_tasks()
        sock.sendall(b"GET /flood HTTP/1.1\r\nhost: x\r\n\r\n")  # and never read
        loop = asyncio.get_running_loop()
        started = loop.time()
        await settle(lambda: state["made"] > 0)
        await asyncio.sleep(0.4)
        paused_at = state["made"]
        await asyncio.sleep(0.3)
        assert not state.get("closed")  # 2 s of send timeout: still paused, not dropped
        assert state["made"] == paused_at  # the producer waits on the full buffer
        await settle(lambda: state.get("closed", False))
        assert loop.time() - started >= 2.0  # dropped by the send timeout, not before
        await settle(lambda: other_tasks() <= before)  # the handler's task is gone
        made = state["made"]
        await asyncio.sleep(0.2)
        assert state["made"] == made  # nothing is produced for a dropped client
        # the producer waited on the full buffer: kernel buffers plus our limit
        assert made * 8000 < 16 << 20, made
        assert state["most_buffered"] <= limit + 8100, state["most_buffered"]
        sock.setblocking(False)
        data = b""
        try:
            while chunk := await loop.sock_recv(sock, 1 << 20):
                data += chunk
        except ConnectionResetError:  # aborted: what was buffered is dropped
            pass
        sock.close()
        server.close()
        await server.wait_closed()

    run(main())


def test_a_slow_reader_gets_everything_in_order() -> None:
    async def numbers() -> AsyncIterator[Any]:
        for k in range(400):
            yield {"data": f"{k}:" + "y" * 2000, "id": str(k)}

    async def app(request: adapter.Request) -> adapter.EventStreamResponse:
        return adapter.EventStreamResponse(numbers(), send_timeout=20)

    async def body(url: str) -> None:
        got = []
        async with httpx.AsyncClient() as client:
            async with aconnect_sse(client, "GET", url) as source:
                async for e in source.aiter_sse():
                    got.append(int(e.data.split(":")[0]))
                    if len(got) % 50 == 0:
                        await asyncio.sleep(0.05)  # stop reading for a while
        assert got == list(range(400))

    run(serving(app, body, write_limit=8192))


def test_websocket_and_http_share_one_port() -> None:
    async def echo(ws: adapter.WebSocket) -> None:
        async for message in ws:
            await ws.send(message)

    async def app(request: adapter.Request) -> adapter.Response:
        return adapter.Response("plain")

    async def main() -> None:
        server = await adapter.serve(echo, http=app)
        port = server.sockets[0].getsockname()[1]
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"http://127.0.0.1:{port}/")).text == "plain"
        async with ws_connect(f"ws://127.0.0.1:{port}/") as ws:
            await ws.send("hi")
            assert await ws.recv() == "hi"
        ours = await adapter.connect(f"ws://127.0.0.1:{port}/")
        await ours.send(b"\x00" * 100_000)
        assert await ours.recv() == b"\x00" * 100_000
        await ours.close()
        # a plain request first, then an upgrade on the same connection
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200") and await reader.readexactly(5) == b"plain"
        writer.write(b"GET / HTTP/1.1\r\nhost: x\r\nupgrade: websocket\r\nconnection: upgrade\r\n"
                     b"sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     b"sec-websocket-version: 13\r\n\r\n")
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101") and b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in head
        writer.close()
        server.close()
        await server.wait_closed()

    run(main())


def test_a_failing_handler_gets_500_and_http10_gets_an_unframed_body() -> None:
    async def parts() -> AsyncIterator[bytes]:
        yield b"one,"
        yield b"two"

    async def app(request: adapter.Request) -> Any:
        if request.path == "/boom":
            raise RuntimeError("boom")
        return adapter.ChunkedResponse(parts())

    async def body(url: str) -> None:
        async with httpx.AsyncClient() as client:
            assert (await client.get(url + "/boom")).status_code == 500
            r = await client.head(url + "/")
            assert r.status_code == 200 and r.content == b""
        port = int(url.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.0\r\n\r\n")
        raw = await reader.read()  # the server closes after the body
        head, _, rest = raw.partition(b"\r\n\r\n")
        assert b"chunked" not in head.lower() and rest == b"one,two"
        writer.close()

    run(serving(app, body))


def test_options_fold_keeps_the_keywords() -> None:
    with pytest.raises(ValueError):
        adapter.Options(max_queue=0)
    kw = {"max_queue": 3, "backlog": 10}
    opts = adapter.Options.take(kw, adapter.Options(write_limit=100))
    assert (opts.max_queue, opts.write_limit, kw) == (3, 100, {"backlog": 10})

    async def main() -> None:
        async def echo(ws: adapter.WebSocket) -> None:
            async for message in ws:
                await ws.send(message)

        server = await adapter.serve(echo, max_queue=2, options=adapter.Options(write_limit=512),
                                     backlog=10)
        port = server.sockets[0].getsockname()[1]
        ws = await adapter.connect(f"ws://127.0.0.1:{port}/", max_message_size=10)
        await ws.send("0123456789")
        assert await ws.recv() == "0123456789"
        await ws.close()
        server.close()
        await server.wait_closed()
        with pytest.raises(TypeError):
            await adapter.serve()

    run(main())


# -- our client against h11 and plain asyncio servers ------------------------


async def h11_server(
    respond: Callable[[h11.Request], list[bytes]],
) -> tuple[asyncio.Server, str, list[h11.Request]]:
    """A server on h11: each request gets the byte pieces ``respond`` makes,
    written one by one with a pause between (the network's splits)."""
    seen: list[h11.Request] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER)
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await reader.read(65536))
                continue
            if isinstance(event, h11.Request):
                seen.append(event)
                for piece in respond(event):
                    writer.write(piece)
                    await writer.drain()
                    await asyncio.sleep(0)
                writer.close()
                return

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", seen


def h11_response(status: int, headers: list[tuple[bytes, bytes]], body: list[bytes],
                 trailers: list[tuple[bytes, bytes]] = ()) -> list[bytes]:  # type: ignore[assignment]
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
    conn.next_event()
    out = [conn.send(h11.Response(status_code=status, headers=headers))]
    out += [conn.send(h11.Data(data=piece)) for piece in body]
    out.append(conn.send(h11.EndOfMessage(headers=trailers)))
    return [piece for piece in out if piece]


def test_our_client_reads_chunked_content_length_and_eof_bodies_from_h11() -> None:
    pieces = [b"p" * n for n in (1, 100, 70000, 5)]

    def respond(request: h11.Request) -> list[bytes]:
        if request.target == b"/chunked":
            out = h11_response(200, [(b"transfer-encoding", b"chunked")], pieces,
                               [(b"x-t", b"done")])
            return [bytes([b]) for b in out[0]] + out[1:]  # the head byte by byte
        if request.target == b"/length":
            return h11_response(200, [(b"content-length", b"70106")], pieces)
        return [b"HTTP/1.0 200 OK\r\n\r\n", *pieces]  # ends at EOF

    async def main() -> None:
        server, url, seen = await h11_server(respond)
        async with await adapter.request(url + "/chunked", headers={"x-q": "1"}) as r:
            assert r.status == 200 and r.chunked
            data = [d async for d in r.aiter_data()]
            assert b"".join(d.data for d in data) == b"".join(pieces)
            assert r.trailers == [(b"x-t", b"done")]
        for path in ("/length", "/eof"):
            async with await adapter.request(url + path) as r:
                assert not r.chunked
                assert await r.read() == b"".join(pieces)
                with pytest.raises(adapter.HTTPError):
                    [d async for d in r.aiter_data()]
        assert seen[0].headers[1] == (b"x-q", b"1")
        server.close()
        await server.wait_closed()

    run(main())


def test_our_client_rejects_a_malformed_or_truncated_chunked_body() -> None:
    def respond(request: h11.Request) -> list[bytes]:
        head = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
        if request.target == b"/bad":
            return [head, b"5\r\nhello\r\n0x3\r\nabc\r\n0\r\n\r\n"]
        return [head, b"5\r\nhel"]

    async def main() -> None:
        server, url, seen = await h11_server(respond)
        async with await adapter.request(url + "/bad") as r:
            with pytest.raises(ProtocolError):
                [d async for d in r.aiter_data()]
        async with await adapter.request(url + "/short") as r:
            with pytest.raises(IncompleteError):
                await r.read()
        server.close()
        await server.wait_closed()

    run(main())


def test_event_source_reconnects_with_last_event_id_and_retry() -> None:
    requests: list[dict[bytes, bytes]] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")[1:-2]
        requests.append(dict(line.lower().split(b": ", 1) for line in lines))
        n = len(requests)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\n")
        if n == 1:
            # retry, two events, then the connection drops inside a third
            writer.write(b"retry: 20\n\nid: 1\ndata: a\n\nid: 2\ndata: b\n\nid: 3\ndata: lost")
        elif n == 2:
            writer.write(b"data: c\n\n")  # no id: the last one stays 2
        else:
            writer.write(b"id: 9\r\ndata: d\r\n\r\n")
        await writer.drain()
        writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/events"
        loop = asyncio.get_running_loop()
        started = loop.time()
        got = [(e.data, e.id) async for e in adapter.event_source(url, max_reconnects=2)]
        assert loop.time() - started < 2  # waited retry: 20 ms, not the 3 s default
        assert got == [("a", "1"), ("b", "2"), ("c", "2"), ("d", "9")]
        assert [r.get(b"last-event-id") for r in requests] == [None, b"2", b"2"]
        assert requests[0][b"accept"] == b"text/event-stream"
        server.close()
        await server.wait_closed()

    run(main())


def test_event_source_fails_on_a_response_that_is_not_an_event_stream() -> None:
    def respond(request: h11.Request) -> list[bytes]:
        return h11_response(404, [(b"content-length", b"2")], [b"no"])

    async def main() -> None:
        server, url, seen = await h11_server(respond)
        with pytest.raises(adapter.HTTPError):
            [e async for e in adapter.event_source(url)]
        assert len(seen) == 1
        server.close()
        await server.wait_closed()

    run(main())


def test_our_client_pauses_reading_while_the_consumer_lags() -> None:
    total = 16 << 20

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % total)
        block = b"b" * (1 << 20)
        for _ in range(16):
            writer.write(block)
            await writer.drain()
        writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
        response = await adapter.request(url, max_buffer=1 << 16, read_size=1 << 16)
        most = 0
        got = 0
        async for piece in response.aiter_bytes():
            most = max(most, response._queued)  # noqa: SLF001
            got += len(piece)
            await asyncio.sleep(0.001)
        assert got == total
        assert most <= (1 << 16) + (1 << 16), most  # the bound plus one read
        await response.aclose()
        server.close()
        await server.wait_closed()

    run(main())


def test_pipelined_requests_are_answered_in_order_and_100_continue_is_sent() -> None:
    async def app(request: adapter.Request) -> adapter.Response:
        if request.path == "/slow":
            await asyncio.sleep(0.05)
        return adapter.Response(request.path + ":" + request.body.decode())

    async def body(url: str) -> None:
        port = int(url.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /slow HTTP/1.1\r\nhost: x\r\n\r\n"
                     b"POST /b HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\nhi"
                     b"GET /c HTTP/1.1\r\nhost: x\r\n\r\n")
        got = []
        for _ in range(3):
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            got.append(await reader.readexactly(length))
        assert got == [b"/slow:", b"/b:hi", b"/c:"]
        writer.write(b"POST /d HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\n"
                     b"expect: 100-continue\r\n\r\n")
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 100 ")
        writer.write(b"abc")
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200") and await reader.readexactly(6) == b"/d:abc"
        writer.close()

    run(serving(app, body))


# -- chunked request bodies: our ChunkedDecoder(views=True), not h11 ----------


def chunked_wire(pieces: list[bytes], trailer: bytes = b"") -> bytes:
    return b"".join(b"%x;ext=1\r\n%s\r\n" % (len(p), p) for p in pieces if p) \
        + b"0\r\n" + trailer + b"\r\n"


def echo_body_app(seen: list[Any]) -> Callable[[adapter.Request], Awaitable[adapter.Response]]:
    async def app(request: adapter.Request) -> adapter.Response:
        seen.append(request.body)
        return adapter.Response(b"%d:%s" % (len(request.body), request.body[:8]))

    return app


async def exchange(url: str, pieces: list[bytes], *, pause: float = 0.0,
                   answers: int = 1) -> list[bytes]:
    """Send ``pieces`` one write each (``pause`` between them) and read
    ``answers`` Content-Length responses."""
    port = int(url.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    reader, writer = await asyncio.open_connection(sock=sock)
    for piece in pieces:
        writer.write(piece)
        await writer.drain()
        if pause:
            await asyncio.sleep(pause)
    got = []
    for _ in range(answers):
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        got.append(head.split(b" ", 2)[1] + b" " + await reader.readexactly(length))
    writer.close()
    return got


def test_a_chunked_request_body_goes_to_our_decoder_with_views(
        monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[dict[str, Any]] = []
    base = http_impl.ChunkedDecoder

    def recording(**kw: Any) -> Any:
        made.append(kw)
        return base(**kw)

    monkeypatch.setattr(http_impl, "ChunkedDecoder", recording)
    seen: list[Any] = []
    pieces = [b"a" * 5, bytes(range(256)) * 64, b"z" * 100_000]
    head = b"POST /up HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n"

    async def body(url: str) -> None:
        got = await exchange(url, [head + chunked_wire(pieces, b"x-sum: 1\r\n")
                                   + b"GET /next HTTP/1.1\r\nhost: x\r\n\r\n"], answers=2)
        assert got == [b"200 %d:aaaaa\x00\x01\x02" % sum(map(len, pieces)), b"200 0:"]

    run(serving(echo_body_app(seen), body))
    assert seen == [b"".join(pieces), b""]
    assert made == [{"views": True}]  # one decoder, for the one chunked body


@pytest.mark.parametrize("split", ["whole", "bytewise", "random", "at_the_blank_line"])
def test_a_chunked_request_body_in_any_split_keeps_the_connection_alive(split: str) -> None:
    import random

    seen: list[Any] = []
    wire = (b"POST /a HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n"
            + chunked_wire([b"hello ", b"", b"world", b"!" * 300])
            + b"POST /b HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\nhi"
            + b"POST /c HTTP/1.1\nhost: x\ntransfer-encoding: chunked\n\n"  # bare LF, as h11 takes it
            + chunked_wire([b"third"]))
    if split == "whole":
        pieces = [wire]
    elif split == "bytewise":
        pieces = [wire[i:i + 1] for i in range(len(wire))]
    elif split == "random":
        rng = random.Random(7)
        cuts = sorted(rng.sample(range(1, len(wire)), 12))
        pieces = [wire[a:b] for a, b in zip([0, *cuts], [*cuts, len(wire)])]
    else:  # a cut inside each blank line that ends a head
        cut = wire.index(b"\r\n\r\n") + 3
        cut2 = wire.index(b"\n\n", cut) + 1
        pieces = [wire[:cut], wire[cut:cut2], wire[cut2:]]

    async def body(url: str) -> None:
        got = await exchange(url, pieces, pause=0.001 if split != "bytewise" else 0.0005,
                             answers=3)
        assert got == [b"200 311:hello wo", b"200 2:hi", b"200 5:third"]

    run(serving(echo_body_app(seen), body))
    assert seen == [b"hello world" + b"!" * 300, b"hi", b"third"]


def test_a_malformed_or_oversized_chunked_request_body_is_refused() -> None:
    seen: list[Any] = []
    head = b"POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n"

    async def body(url: str) -> None:
        got = await exchange(url, [head + b"5\r\nhello\r\nzz\r\n"])
        assert got[0].startswith(b"400 malformed chunked body")
        got = await exchange(url, [head + chunked_wire([b"x" * 600, b"y" * 600])])
        assert got == [b"413 request body too large"]
        # over the limit in a later read, before the body is complete
        got = await exchange(url, [head, b"258;a=b\r\n" + b"x" * 600 + b"\r\n",
                                   b"258\r\n" + b"y" * 500], pause=0.01)
        assert got == [b"413 request body too large"]

    run(serving(echo_body_app(seen), body, max_body_size=1000))
    assert seen == []


def test_a_chunked_request_with_expect_100_continue_gets_its_100() -> None:
    seen: list[Any] = []

    async def body(url: str) -> None:
        port = int(url.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"PUT /f HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n"
                     b"expect: 100-continue\r\n\r\n")
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 100 ")
        writer.write(chunked_wire([b"abc", b"def"]))
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200") and await reader.readexactly(8) == b"6:abcdef"
        writer.close()

    run(serving(echo_body_app(seen), body))
    assert seen == [b"abcdef"]


def test_shutdown_ends_streams_cleanly_after_the_grace_period() -> None:
    state: dict[str, Any] = {"closed": 0}

    async def forever(early: bool) -> AsyncIterator[Any]:
        try:
            for k in range(1_000_000):
                yield {"data": str(k), "id": str(k)}
                if early and adapter.shutting_down.is_set():
                    return  # an iterator that watches the flag ends by itself
                await asyncio.sleep(0.01)
        finally:
            state["closed"] += 1

    async def app(request: adapter.Request) -> adapter.EventStreamResponse:
        return adapter.EventStreamResponse(forever(request.path == "/early"))

    async def read(url: str, got: list[str]) -> None:
        async with httpx.AsyncClient() as client:
            async with aconnect_sse(client, "GET", url) as source:
                async for e in source.aiter_sse():  # ends without an error
                    got.append(e.data)

    async def body(url: str) -> None:
        late: list[str] = []
        early: list[str] = []
        readers = [asyncio.create_task(read(url + "/late", late)),
                   asyncio.create_task(read(url + "/early", early))]
        await settle(lambda: len(late) >= 3 and len(early) >= 3)
        loop = asyncio.get_running_loop()
        started = loop.time()
        adapter.shutdown(grace=1.0)
        await asyncio.wait_for(readers[1], 5)
        assert loop.time() - started < 1.0  # the watching iterator ended at once
        await asyncio.wait_for(readers[0], 5)
        assert loop.time() - started >= 1.0  # the other one had its grace
        assert late == [str(k) for k in range(len(late))]
        assert state["closed"] == 2
        # a stream that starts after shutdown() is ended at once
        fresh: list[str] = []
        await asyncio.wait_for(read(url + "/late", fresh), 5)
        assert state["closed"] == 3 and len(fresh) <= 2

    try:
        run(serving(app, body))
    finally:
        adapter.shutting_down.clear()


def test_without_a_websocket_handler_an_upgrade_request_is_plain_http() -> None:
    async def app(request: adapter.Request) -> adapter.Response:
        return adapter.Response(f"{request.header('upgrade')} {request.body!r}", status=426)

    async def body(url: str) -> None:
        async with await adapter.request(url, method="POST", body=b"up",
                                         headers=[("upgrade", "websocket"),
                                                  ("connection", "upgrade")]) as r:
            assert (r.status, await r.read()) == (426, b"websocket b'up'")

    run(serving(app, body))


def test_malformed_or_oversized_requests_get_4xx_and_a_close() -> None:
    async def app(request: adapter.Request) -> adapter.Response:
        return adapter.Response("never")

    async def send(port: int, data: bytes) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(data)
        answer = await reader.read()  # the server closes
        writer.close()
        return answer

    async def body(url: str) -> None:
        port = int(url.rsplit(":", 1)[1])
        assert (await send(port, b"GET / HTTP/1.1\r\nbad header\r\n\r\n")).startswith(
            b"HTTP/1.1 400 ")
        assert (await send(port, b"GET / HTTP/1.1\r\nhost: x\r\nx-big: " + b"a" * 20000)
                ).startswith(b"HTTP/1.1 431 ")

    run(serving(app, body))


def test_an_idle_keep_alive_connection_is_closed_after_the_timeout() -> None:
    async def app(request: adapter.Request) -> adapter.Response:
        await asyncio.sleep(0.5)  # longer than the timeout: a running response is not idle
        return adapter.Response("ok")

    async def body(url: str) -> None:
        port = int(url.rsplit(":", 1)[1])
        loop = asyncio.get_running_loop()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200") and await reader.readexactly(2) == b"ok"
        answered = loop.time()
        assert await reader.read() == b""  # then closed, once idle for 0.2 s
        assert loop.time() - answered >= 0.15
        writer.close()
        # a client that sends nothing at all is closed too
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()

    run(serving(app, body, keep_alive_timeout=0.2))
