"""streamcore.integrations.uvicorn.WebSocketProtocol as uvicorn's ``--ws``
class: a real uvicorn.Server on 127.0.0.1 (in-process), driven by the
websockets client and by a raw socket for what no client library does.
Every test runs on both codec twins (the protocol's Connection is swapped)."""
from __future__ import annotations

import asyncio
import os
import socket
import struct
from collections.abc import Awaitable
from types import ModuleType
from typing import Any

import pytest
import websockets
from helpers import twin_fixture
from uvicorn_helpers import serving
from websockets.asyncio.client import connect
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from ws_helpers import close_payload, frame

from streamcore.integrations import uvicorn as integration
from streamcore.integrations.uvicorn import WebSocketProtocol

pytestmark = pytest.mark.interop

ws = twin_fixture("ws")

KEY = "dGhlIHNhbXBsZSBub25jZQ=="


@pytest.fixture(autouse=True)
def _twin(ws: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(integration, "Connection", ws.Connection)


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 20))


async def echo_app(scope: Any, receive: Any, send: Any) -> None:
    assert scope["type"] == "websocket"
    while True:
        message = await receive()
        if message["type"] == "websocket.connect":
            await send({"type": "websocket.accept"})
        elif message["type"] == "websocket.receive":
            if message.get("text") is not None:
                await send({"type": "websocket.send", "text": message["text"]})
            else:
                await send({"type": "websocket.send", "bytes": message["bytes"]})
        else:
            return


def upgrade_request(path: str = "/", extra: bytes = b"") -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\n"
        "Sec-WebSocket-Version: 13\r\n"
    ).encode() + extra + b"\r\n"


async def raw_open(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes]:
    """A raw client past the 101: (reader, writer, the 101's head)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(upgrade_request())
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 "), head
    return reader, writer, head


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One unmasked server frame: (opcode, payload)."""
    b0, b1 = await reader.readexactly(2)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", await reader.readexactly(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", await reader.readexactly(8))[0]
    return b0 & 0x0F, await reader.readexactly(n)


# -- messages ----------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 1 << 20, 16 << 20])
def test_echo_sizes(size: int, monkeypatch: pytest.MonkeyPatch) -> None:
    reads = []
    original = WebSocketProtocol.buffer_updated

    def counting(self: WebSocketProtocol, nbytes: int) -> None:
        reads.append(nbytes)
        original(self, nbytes)

    monkeypatch.setattr(WebSocketProtocol, "buffer_updated", counting)
    payload = os.urandom(size)
    text = "é" * (size // 2)

    async def main() -> None:
        async with serving(echo_app, ws_max_size=32 << 20) as server:
            async with connect(server.url, max_size=None, compression=None) as client:
                await client.send(payload)
                assert await client.recv() == payload
                await client.send(text)
                assert await client.recv() == text

    run(main())
    assert reads  # after the hand-over, reads go into the shared buffer


def test_fragmented_messages_are_assembled() -> None:
    got: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        for _ in range(2):
            message = await receive()
            got.append(message.get("text", message.get("bytes")))
        await send({"type": "websocket.close"})

    async def main() -> None:
        async with serving(app) as server:
            async with connect(server.url, compression=None) as client:
                # a code point split across fragments, then binary fragments
                await client.send(["ab\u00e9", "\u20ac" * 1000, "z"])
                await client.send([b"\x00" * 3000, b"\xff" * 5, b""])
                with pytest.raises(websockets.ConnectionClosedOK):
                    await client.recv()

    run(main())
    assert got == ["ab\u00e9" + "\u20ac" * 1000 + "z", b"\x00" * 3000 + b"\xff" * 5]


def test_ping_is_answered_and_keepalive_pings_are_sent() -> None:
    async def main() -> None:
        async with serving(echo_app, ws_ping_interval=0.05, ws_ping_timeout=1.0) as server:
            async with connect(server.url, ping_interval=None) as client:
                await asyncio.wait_for(await client.ping(b"hello"), 5)
                protocol = server.protocols()[0]
                while protocol.ping_sent_at == 0.0:
                    await asyncio.sleep(0.02)
                await asyncio.sleep(0.3)  # several keepalive rounds, each answered
                await client.send("still here")
                assert await client.recv() == "still here"

    run(main())


def test_keepalive_timeout_closes_with_1011() -> None:
    async def main() -> None:
        async with serving(echo_app, ws_ping_interval=0.05, ws_ping_timeout=0.1) as server:
            reader, writer, _ = await raw_open(server.port)
            opcode, payload = await read_frame(reader)
            assert opcode == 0x9 and len(payload) == 4  # the keepalive Ping, never answered
            opcode, payload = await read_frame(reader)
            assert (opcode, payload) == (0x8, close_payload(1011, b"keepalive ping timeout"))
            assert await asyncio.wait_for(reader.read(), 5) == b""  # the server half-closed
            writer.close()

    run(main())


# -- closing -----------------------------------------------------------------------


def test_app_close_code_and_reason_reach_the_client() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 4001, "reason": "bye \u00e9"})
        assert await receive() == {"type": "websocket.disconnect", "code": 4001,
                                   "reason": "bye \u00e9"}

    async def main() -> None:
        async with serving(app) as server:
            async with connect(server.url) as client:
                with pytest.raises(websockets.ConnectionClosed):
                    await client.recv()
            assert (client.close_code, client.close_reason) == (4001, "bye \u00e9")

    run(main())


def test_client_close_code_and_reason_reach_the_app() -> None:
    got: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        got.append(await receive())
        got.append(await receive())  # every later call says the same
        with pytest.raises(OSError):  # ASGI 2.4: send after the close
            await send({"type": "websocket.send", "text": "late"})
        got.append("raised")

    async def main() -> None:
        async with serving(app) as server:
            async with connect(server.url) as client:
                await client.close(4002, "ciao")
            while len(got) < 3:
                await asyncio.sleep(0.01)

    run(main())
    disconnect = {"type": "websocket.disconnect", "code": 4002, "reason": "ciao"}
    assert got == [disconnect, disconnect, "raised"]


def test_close_without_a_code_is_1005_and_is_echoed() -> None:
    got: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        got.append(await receive())

    async def main() -> None:
        async with serving(app) as server:
            reader, writer, _ = await raw_open(server.port)
            writer.write(frame(0x8, b""))
            assert await read_frame(reader) == (0x8, b"")  # the echo: no code either
            assert await asyncio.wait_for(reader.read(), 5) == b""  # then the server closes
            writer.close()

    run(main())
    assert got == [{"type": "websocket.disconnect", "code": 1005, "reason": ""}]


def test_server_waits_for_the_echo_before_closing_tcp() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": "last"})
        await send({"type": "websocket.close", "code": 1000})

    async def main() -> None:
        async with serving(app) as server:
            reader, writer, _ = await raw_open(server.port)
            assert await read_frame(reader) == (0x1, b"last")
            assert await read_frame(reader) == (0x8, close_payload(1000))
            with pytest.raises(asyncio.TimeoutError):  # still open: waiting for our echo
                await asyncio.wait_for(reader.read(1), 0.3)
            writer.write(frame(0x8, close_payload(1000)))
            assert await asyncio.wait_for(reader.read(), 5) == b""  # now the server closes
            writer.close()

    run(main())


class QuickClose(WebSocketProtocol):
    close_timeout = 0.2


def test_close_timeout_drops_a_silent_peer() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 1001})

    async def main() -> None:
        async with serving(app, ws_class=QuickClose) as server:
            reader, writer, _ = await raw_open(server.port)
            assert await read_frame(reader) == (0x8, close_payload(1001))
            await asyncio.wait_for(reader.read(), 5)  # never echoed: dropped after 0.2 s
            writer.close()
            while server.protocols():
                await asyncio.sleep(0.01)

    run(main())


def test_close_resumes_reads_paused_by_a_full_queue() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await asyncio.sleep(0.2)  # one unread message fills ws_max_queue=1
        await send({"type": "websocket.close", "code": 1000})

    async def main() -> None:
        async with serving(app, ws_max_queue=1) as server:
            async with connect(server.url) as client:
                await client.send("unread")
                await asyncio.sleep(0.1)
                assert server.protocols()[0]._read_paused
                with pytest.raises(websockets.ConnectionClosedOK):
                    await asyncio.wait_for(client.recv(), 5)
            assert client.close_code == 1000

    run(main())


def test_oversize_message_closes_with_1009() -> None:
    got: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        got.append(await receive())
        got.append(await receive())

    async def main() -> None:
        async with serving(app, ws_max_size=1000) as server:
            async with connect(server.url, compression=None) as client:
                await client.send(b"x" * 1000)  # at the limit: delivered
                await client.send(b"x" * 1001)
                with pytest.raises(websockets.ConnectionClosedError):
                    await asyncio.wait_for(client.recv(), 5)
            assert client.close_code == 1009

    run(main())
    assert got[0] == {"type": "websocket.receive", "bytes": b"x" * 1000}
    assert got[1]["type"] == "websocket.disconnect" and got[1]["code"] == 1009


def test_shutdown_sends_1012() -> None:
    got: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        got.append(await receive())

    async def main() -> None:
        async with serving(app) as server:
            async with connect(server.url) as client:
                await server.server.shutdown()
                with pytest.raises(websockets.ConnectionClosed):
                    await asyncio.wait_for(client.recv(), 5)
            assert client.close_code == 1012
            assert not server.protocols()

    run(main())
    assert got == [{"type": "websocket.disconnect", "code": 1012}]


# -- the handshake -----------------------------------------------------------------------


def test_subprotocol_and_headers() -> None:
    scopes: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        scopes.append(scope)
        await receive()
        await send({"type": "websocket.accept", "subprotocol": "b",
                    "headers": [(b"x-extra", b"1")]})
        await receive()

    async def main() -> None:
        # the class named as on uvicorn's command line (--ws module:Class)
        name = "streamcore.integrations.uvicorn:WebSocketProtocol"
        async with serving(app, ws_class=name, root_path="/mount") as server:
            async with connect(server.url + "/a%2Fb?q=1", subprotocols=["a", "b"]) as client:
                assert client.subprotocol == "b"
                assert client.response.headers["x-extra"] == "1"
                assert client.response.headers["server"] == "uvicorn"

    run(main())
    scope = scopes[0]
    assert scope["subprotocols"] == ["a", "b"]
    assert (scope["path"], scope["raw_path"], scope["query_string"]) == (
        "/mount/a/b", b"/mount/a%2Fb", b"q=1")
    assert scope["asgi"]["spec_version"] == "2.4"


def test_bad_upgrades_are_refused_before_the_app_runs() -> None:
    called: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        called.append(scope)  # pragma: no cover

    async def main() -> None:
        async with serving(app) as server:
            for request, status in (
                (upgrade_request().replace(b"Version: 13", b"Version: 8"), b"426"),
                (upgrade_request().replace(KEY.encode(), b"short"), b"400"),
            ):
                reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
                writer.write(request)
                response = await asyncio.wait_for(reader.read(), 5)
                assert response.split(b" ")[1] == status, response
                writer.close()

    run(main())
    assert called == []


@pytest.mark.parametrize("deflate", [True, False])
def test_permessage_deflate_on_and_off(deflate: bool) -> None:
    async def main() -> None:
        async with serving(echo_app, ws_per_message_deflate=deflate) as server:
            async with connect(server.url, extensions=[ClientPerMessageDeflateFactory()],
                               compression=None) as client:
                names = [ext.name for ext in client.protocol.extensions]
                assert names == (["permessage-deflate"] if deflate else [])
                if deflate:
                    agreed = client.response.headers["sec-websocket-extensions"]
                    assert "server_max_window_bits=12" in agreed
                message = "compressible " * 5000
                for _ in range(3):  # the compression context carries over
                    await client.send(message)
                    assert await client.recv() == message
                protocol = server.protocols()[0]
                stats = protocol.conn.stats
                assert (stats.bytes_out < len(message)) is deflate  # 3 messages sent

    run(main())


# -- the denial response (websocket.http.response) -------------------------------------------


@pytest.mark.parametrize("pieces", [1, 3])
def test_denial_response_streams_a_binary_body(pieces: int) -> None:
    body = bytes(range(256)) * 40
    got: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert "websocket.http.response" in scope["extensions"]
        await receive()
        await send({"type": "websocket.http.response.start", "status": 401,
                    "headers": [(b"content-type", b"application/octet-stream")]})
        step = len(body) // pieces + 1
        for k in range(pieces):
            await send({"type": "websocket.http.response.body",
                        "body": body[k * step:(k + 1) * step], "more_body": k < pieces - 1})
        got.append(await receive())

    async def main() -> None:
        async with serving(app) as server:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(upgrade_request())
            response = await asyncio.wait_for(reader.read(), 5)
            writer.close()
            head, _, rest = response.partition(b"\r\n\r\n")
            lines = head.lower().split(b"\r\n")
            assert lines[0].startswith(b"http/1.1 401 ")
            if pieces == 1:  # known in one piece: a Content-Length
                assert b"content-length: %d" % len(body) in lines
                assert rest == body
            else:  # streamed: chunked
                assert b"transfer-encoding: chunked" in lines
                decoded = b""
                while True:
                    size_line, _, rest = rest.partition(b"\r\n")
                    size = int(size_line, 16)
                    if size == 0:
                        break
                    decoded, rest = decoded + rest[:size], rest[size + 2:]
                assert decoded == body

    run(main())
    assert got == [{"type": "websocket.disconnect", "code": 1006}]


def test_close_before_accept_is_403() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.close"})

    async def main() -> None:
        async with serving(app) as server:
            with pytest.raises(websockets.InvalidStatus) as info:
                await connect(server.url)
            assert info.value.response.status_code == 403

    run(main())


# -- flow control ------------------------------------------------------------------------------


def test_max_queue_pauses_reading() -> None:
    size = 64 << 10
    count = 100
    release = asyncio.Event()
    got: list[bytes] = []
    observed: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await release.wait()
        for _ in range(count):
            got.append((await receive())["bytes"])
        await send({"type": "websocket.close"})

    async def main() -> None:
        async with serving(app, ws_max_queue=4) as server:
            async with connect(server.url, compression=None, max_queue=None) as client:
                sender = asyncio.gather(*(client.send(bytes([k]) * size) for k in range(count)))
                await asyncio.sleep(0.5)
                protocol = server.protocols()[0]
                observed.append((protocol._read_paused, len(protocol._messages)))
                release.set()
                await sender
                with pytest.raises(websockets.ConnectionClosedOK):
                    await asyncio.wait_for(client.recv(), 10)

    run(main())
    paused, queued = observed[0]
    # paused once 4 wait; one read (256 KiB) may complete a few more
    assert paused and 4 <= queued <= 4 + integration.READ_SIZE // size + 1
    assert got == [bytes([k]) * size for k in range(count)]


def test_send_waits_while_the_client_does_not_read() -> None:
    size = 64 << 10
    count = 512  # 32 MiB: more than loopback's socket buffers hold
    sent: list[int] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        for k in range(count):
            await send({"type": "websocket.send", "bytes": bytes([k % 256]) * size})
            sent.append(k)
        await send({"type": "websocket.close"})

    async def main() -> None:
        async with serving(app) as server:
            reader, writer, _ = await raw_open(server.port)
            await asyncio.sleep(0.5)
            stalled = len(sent)
            assert stalled < count  # send() is waiting on the write buffer
            for k in range(count):
                assert await read_frame(reader) == (0x2, bytes([k % 256]) * size)
            assert await read_frame(reader) == (0x8, close_payload(1000))
            writer.write(frame(0x8, close_payload(1000)))
            assert await asyncio.wait_for(reader.read(), 5) == b""
            writer.close()

    run(main())
    assert len(sent) == count


def test_reading_pauses_while_writes_are_paused() -> None:
    # a client that pings and never reads: every Ping queues a Pong, so with
    # reading on the server's write buffer grew with all it was sent.  Reading
    # pauses while the writes are paused and resumes with them; every Ping is
    # answered
    payload = b"p" * 125
    count = 32 << 10  # 4 MiB of Pings
    pong = frame(0xA, payload, mask=None)
    buffered: list[int] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await receive()  # the disconnect

    async def main() -> None:
        async with serving(app) as server:
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(("127.0.0.1", server.port))
            sock.setblocking(False)
            reader, writer = await asyncio.open_connection(sock=sock)
            writer.write(upgrade_request())
            assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101 ")
            while not server.protocols() or server.protocols()[0].conn is None:
                await asyncio.sleep(0.01)
            protocol = server.protocols()[0]
            transport = protocol.transport
            transport.get_extra_info("socket").setsockopt(
                socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
            writer.write(frame(0x9, payload) * count)  # not drained: asyncio holds it
            for _ in range(300):
                await asyncio.sleep(0.01)
                buffered.append(transport.get_write_buffer_size())
            # the high-water mark (64 KiB) and the Pongs to two reads (256 KiB
            # of Pings each: the one that crossed it, the one that paused
            # reading) at most, not the 4 MiB the client sent
            assert max(buffered) <= (64 << 10) + 2 * integration.READ_SIZE
            assert protocol._read_paused and protocol._write_paused
            got = bytearray()
            while len(got) < count * len(pong):
                chunk = await asyncio.wait_for(reader.read(1 << 20), 10)
                assert chunk, "the server closed the connection"
                got += chunk
            assert got == pong * count
            assert not protocol._read_paused and not protocol._write_paused
            writer.write(frame(0x8, close_payload(1000)))
            assert await read_frame(reader) == (0x8, close_payload(1000))
            assert await asyncio.wait_for(reader.read(), 5) == b""
            writer.close()

    run(main())


@pytest.mark.parametrize("failure", ["bad accept header", "raise after start"])
def test_app_errors_before_any_answer_give_a_500(failure: str) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        if failure == "bad accept header":  # h11 refuses to write it
            await send({"type": "websocket.accept", "headers": [(b"x-bad", b"a\r\nb")]})
        await send({"type": "websocket.http.response.start", "status": 404, "headers": []})
        raise RuntimeError("the application fails")

    async def main() -> None:
        async with serving(app) as server:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(upgrade_request())
            response = await asyncio.wait_for(reader.read(), 5)
            writer.close()
            assert response.startswith(b"HTTP/1.1 500 ")
            assert response.endswith(b"\r\n\r\nInternal Server Error")

    run(main())


@pytest.mark.parametrize("client_bits", [None, 10])
def test_deflate_with_any_client_window(client_bits: int | None) -> None:
    # an offer without client_max_window_bits cannot be limited: accepted
    # with the client's window unlimited; a smaller one is kept
    async def main() -> None:
        async with serving(echo_app) as server:
            offer = ClientPerMessageDeflateFactory(client_max_window_bits=client_bits)
            async with connect(server.url, extensions=[offer], compression=None) as client:
                agreed = client.response.headers["sec-websocket-extensions"]
                assert "server_max_window_bits=12" in agreed
                assert ("client_max_window_bits=10" in agreed) is (client_bits == 10)
                message = "zz" * 50000
                await client.send(message)
                assert await client.recv() == message

    run(main())


# -- broadcast frames built once (the streamcore.prepared extension) ------------------------


@pytest.mark.parametrize("deflate", [False, True])
def test_prepared_message_is_one_frame_for_every_connection(
        ws: ModuleType, deflate: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    from streamcore.ws import Prepared

    message = Prepared("broadcast " * 500)
    frames: list[bytes] = []
    original = ws.Connection.send_prepared

    def spying(self: Any, prepared: Any) -> bytes:
        frames.append(original(self, prepared))
        return frames[-1]

    monkeypatch.setattr(ws.Connection, "send_prepared", spying)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert "streamcore.prepared" in scope["extensions"]
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        assert (await receive())["text"] == "go"
        await send({"type": "websocket.send", "text": message.data, "streamcore.prepared": message})
        await receive()  # the disconnect

    # server_no_context_takeover: the server's compressor starts afresh each
    # message, so one compressed frame is right for every connection
    offer = [ClientPerMessageDeflateFactory(server_no_context_takeover=True)] if deflate else None

    async def main() -> None:
        async with serving(app, ws_per_message_deflate=deflate) as server:
            clients = [await connect(server.url, extensions=offer, compression=None) for _ in range(3)]
            for client in clients:
                await client.send("go")
            assert [await client.recv() for client in clients] == [message.data] * 3
            for client in clients:
                assert bool(client.protocol.extensions) is deflate
                await client.close()

    run(main())
    assert len(frames) == 3 and frames[0] is frames[1] is frames[2]
    assert (len(frames[0]) < len(message.data)) is deflate


def test_a_list_of_prepared_messages_is_written_in_order(
        ws: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    from streamcore.ws import Prepared

    batch = [Prepared("message 0 é"), Prepared(b"\x00binary\xff"), Prepared("last")]
    writes: list[bytes] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        assert (await receive())["text"] == "go"
        (protocol,) = [p for p in server.protocols() if p.scope is scope]
        write = protocol.transport.write

        writelines = protocol.transport.writelines

        def counting(data: bytes) -> None:
            writes.append(bytes(data))
            write(data)

        def counting_lines(buffers: Any) -> None:
            buffers = [bytes(b) for b in buffers]
            writes.extend(buffers)
            writelines(buffers)

        monkeypatch.setattr(protocol.transport, "write", counting, raising=False)
        monkeypatch.setattr(protocol.transport, "writelines", counting_lines, raising=False)
        await send({"type": "websocket.send", "streamcore.prepared": batch})
        await send({"type": "websocket.send", "streamcore.prepared": tuple(batch[:1])})
        await receive()  # the disconnect

    async def main() -> None:
        nonlocal server
        async with serving(app) as server:
            client = await connect(server.url, compression=None)
            await client.send("go")
            got = [await client.recv() for _ in range(4)]
            assert got == ["message 0 é", b"\x00binary\xff", "last", "message 0 é"]
            await client.close()

    server: Any = None
    run(main())
    # the shared frames of the list joined, then the next send's (sends of one
    # turn of the loop are corked into one write)
    assert b"".join(writes).startswith(
        b"".join(ws.Connection("server").send_prepared(p) for p in batch)
        + ws.Connection("server").send_prepared(batch[0]))


def test_an_accepted_connection_lets_go_of_the_upgrade_request(ws: ModuleType) -> None:
    # h11's connection and the request event are about 2 KiB that an idle
    # connection would otherwise hold for its whole life
    async def main() -> None:
        async with serving(echo_app) as server:
            client = await connect(server.url, compression=None)
            await client.send("still works")
            assert await client.recv() == "still works"
            (protocol,) = server.protocols()
            assert protocol._http is None and protocol._request is None  # noqa: SLF001
            await client.close()

    run(main())


def test_websockets_client_sees_the_denial_status_headers_and_body() -> None:
    body = bytes(range(256)) * 8

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.http.response.start", "status": 429,
                    "headers": [(b"retry-after", b"3")]})
        await send({"type": "websocket.http.response.body", "body": body[:1000],
                    "more_body": True})
        await send({"type": "websocket.http.response.body", "body": body[1000:]})

    async def main() -> None:
        async with serving(app) as server:
            with pytest.raises(websockets.InvalidStatus) as info:
                await connect(server.url)
            response = info.value.response
            assert response.status_code == 429
            assert response.headers["retry-after"] == "3"
            assert response.body == body

    run(main())


def test_sends_of_one_turn_arrive_in_order_before_the_close() -> None:
    # the app never yields between its sends: they are written together
    # (one writelines), in order, and the Close goes after them
    count = 500

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        for k in range(count):
            await send({"type": "websocket.send", "text": str(k)} if k % 2 else
                       {"type": "websocket.send", "bytes": b"%d" % k * 100})
        await send({"type": "websocket.close", "code": 4000, "reason": "after all"})

    async def main() -> None:
        async with serving(app) as server:
            async with connect(server.url, compression=None) as client:
                got = [await client.recv() for _ in range(count)]
                with pytest.raises(websockets.ConnectionClosed) as info:
                    await client.recv()
            assert got == [str(k) if k % 2 else b"%d" % k * 100 for k in range(count)]
            assert info.value.rcvd is not None
            assert (info.value.rcvd.code, info.value.rcvd.reason) == (4000, "after all")

    run(main())
