"""streamcore.integrations.asyncio against real peers over 127.0.0.1: the
websockets client and server, and a raw TCP peer for what no library sends.
Every test runs on both codec twins (the adapter's Connection is swapped)."""
from __future__ import annotations

import asyncio
import gc
import struct
import weakref
from collections.abc import Awaitable, Callable
from types import ModuleType
from typing import Any

import h11
import pytest
import websockets
from helpers import twin_fixture
from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.server import serve as ws_serve
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from ws_helpers import close_payload, frame

from streamcore.integrations import asyncio as adapter
from streamcore.ws import PerMessageDeflate
from streamcore.ws.handshake import ClientHandshake, ServerHandshake

pytestmark = pytest.mark.interop

ws = twin_fixture("ws")


@pytest.fixture(autouse=True)
def _twin(ws: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(adapter, "Connection", ws.Connection)


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 30))


async def echo(sock: adapter.WebSocket) -> None:
    async for message in sock:
        await sock.send(message)


class EchoListener(adapter.WebSocketListener):
    def on_message(self, ws: adapter.WebSocket, message: str | bytes) -> None:
        ws.send_nowait(message)


def url(server: asyncio.Server, path: str = "/") -> str:
    port = server.sockets[0].getsockname()[1]
    return f"ws://127.0.0.1:{port}{path}"


async def serving(body: Callable[[str], Awaitable[Any]], handler: Any = echo, **kw: Any) -> Any:
    if "listener" not in kw:
        kw["handler"] = handler
    server = await adapter.serve(**kw)
    try:
        return await body(url(server))
    finally:
        server.close()
        await server.wait_closed()


SIZES = [0, 1, 125, 126, 65535, 65536, 1 << 20]


@pytest.mark.parametrize("mode", ["handler", "listener"])
def test_echo_with_the_websockets_client(mode: str) -> None:
    async def body(uri: str) -> None:
        async with ws_connect(uri, max_size=None, compression=None) as client:
            for n in SIZES:
                await client.send(b"\x01" * n)
                assert await client.recv() == b"\x01" * n
                await client.send("é" * (n // 2))
                assert await client.recv() == "é" * (n // 2)
        assert client.close_code == 1000

    kw: dict[str, Any] = {"max_message_size": None}
    if mode == "listener":
        kw["listener"] = EchoListener
    run(serving(body, **kw))


def test_deflate_and_subprotocol_are_negotiated_with_websockets() -> None:
    async def body(uri: str) -> None:
        async with ws_connect(uri, subprotocols=["chat", "echo"], compression="deflate") as client:
            assert client.subprotocol == "echo"
            assert "permessage-deflate" in client.response.headers["Sec-WebSocket-Extensions"]
            for n in (0, 10, 100_000):
                await client.send("ab" * n)
                assert await client.recv() == "ab" * n

    run(serving(body, subprotocols=["echo"], deflate=PerMessageDeflate()))


def test_our_client_against_the_websockets_server() -> None:
    async def handler(conn: Any) -> None:
        async for message in conn:
            await conn.send(message)

    async def main() -> None:
        async with ws_serve(handler, "127.0.0.1", 0, compression="deflate") as server:
            port = server.sockets[0].getsockname()[1]
            sock = await adapter.connect(f"ws://127.0.0.1:{port}/x?y=1",
                                         deflate=PerMessageDeflate())
            assert sock.connection.stats is not None
            for n in SIZES[:-1]:
                await sock.send("z" * n)
                assert await sock.recv() == "z" * n
                await sock.send(b"\x00" * n)
                assert await sock.recv() == b"\x00" * n
            await sock.ping(b"hi")
            await sock.close()
            assert sock.close_code == 1000

    run(main())


def test_our_client_and_server_with_listeners_on_both_ends() -> None:
    got: list[Any] = []
    done = asyncio.Event

    class Recorder(adapter.WebSocketListener):
        def __init__(self, finished: asyncio.Event) -> None:
            self.finished = finished

        def on_message(self, ws: adapter.WebSocket, message: str | bytes) -> None:
            got.append(message)
            if len(got) == 3:
                self.finished.set()

        def on_close(self, ws: adapter.WebSocket, code: int, reason: str) -> None:
            got.append(("closed", code, reason))

    async def body(uri: str) -> None:
        finished = done()
        sock = await adapter.connect(uri, listener=Recorder(finished))
        for message in ("one", b"two", "three"):
            sock.send_nowait(message)
        await finished.wait()
        await sock.close(4000, "bye")

    run(serving(body, listener=EchoListener))
    # the echo carries the code back, not the reason (RFC 6455 §5.5.1)
    assert got == ["one", b"two", "three", ("closed", 4000, "")]


async def raw_upgrade(uri: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = uri[len("ws://"):].rstrip("/").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 ")
    return reader, writer


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    b0, b1 = await reader.readexactly(2)
    n = b1 & 0x7F
    if n == 126:
        (n,) = struct.unpack("!H", await reader.readexactly(2))
    elif n == 127:
        (n,) = struct.unpack("!Q", await reader.readexactly(8))
    return b0 & 0x0F, await reader.readexactly(n)


def test_text_ping_close_in_one_read_are_all_answered_in_order() -> None:
    async def body(uri: str) -> None:
        reader, writer = await raw_upgrade(uri)
        writer.write(frame(0x1, b"hello") + frame(0x9, b"p") + frame(0x8, close_payload(1000)))
        assert await read_frame(reader) == (0x1, b"hello")
        assert await read_frame(reader) == (0xA, b"p")
        assert await read_frame(reader) == (0x8, close_payload(1000))
        assert await reader.read() == b""  # the server closes TCP, gracefully
        writer.close()

    run(serving(body, listener=EchoListener))


@pytest.mark.parametrize("bad, code", [
    (frame(0x1, b"unmasked", mask=None), 1002),
    (frame(0x1, b"\xff\xfe"), 1007),
    (frame(0x2, b"x" * 2000), 1009),
])
def test_a_violation_sends_its_close_code_then_closes_without_a_reset(bad: bytes, code: int) -> None:
    async def body(uri: str) -> None:
        reader, writer = await raw_upgrade(uri)
        writer.write(bad)
        opcode, payload = await read_frame(reader)
        assert (opcode, payload[:2]) == (0x8, code.to_bytes(2, "big"))
        assert await reader.read() == b""  # EOF, not ConnectionResetError
        writer.close()

    run(serving(body, max_message_size=1000))


def test_the_websockets_client_sees_1009_for_an_oversized_message() -> None:
    async def body(uri: str) -> None:
        async with ws_connect(uri, compression=None) as client:
            await client.send(b"x" * 2000)
            with pytest.raises(websockets.ConnectionClosedError) as info:
                await client.recv()
        assert info.value.rcvd is not None and info.value.rcvd.code == 1009

    run(serving(body, max_message_size=1000))


def test_keepalive_fails_a_silent_peer_with_1011() -> None:
    async def body(uri: str) -> None:
        reader, writer = await raw_upgrade(uri)
        opcode, payload = await read_frame(reader)
        assert opcode == 0x9 and len(payload) == 4  # the keepalive Ping, never answered
        opcode, payload = await read_frame(reader)
        assert opcode == 0x8 and payload == close_payload(1011, b"keepalive ping timeout")
        assert await reader.read() == b""
        writer.close()

    run(serving(body, ping_interval=0.05, ping_timeout=0.1))


def test_keepalive_is_kept_by_a_peer_that_answers() -> None:
    async def slow_echo(sock: adapter.WebSocket) -> None:
        await asyncio.sleep(0.5)  # several keepalive rounds
        await echo(sock)

    async def body(uri: str) -> None:
        async with ws_connect(uri, ping_interval=None) as client:  # websockets answers Pings
            await client.send("still here")
            assert await client.recv() == "still here"

    run(serving(body, handler=slow_echo, ping_interval=0.05, ping_timeout=0.1))


def test_reading_pauses_while_the_queue_is_full_and_nothing_is_lost() -> None:
    seen: dict[str, Any] = {}

    async def slow(sock: adapter.WebSocket) -> None:
        await asyncio.sleep(0.3)
        assert sock.transport is not None
        seen["reading while full"] = sock.transport.is_reading()
        seen["messages"] = [await sock.recv() for _ in range(200)]
        seen["reading after"] = sock.transport.is_reading()
        await sock.send("done")

    async def body(uri: str) -> None:
        async with ws_connect(uri, compression=None) as client:
            for k in range(200):
                await client.send(str(k))
            assert await client.recv() == "done"

    run(serving(body, handler=slow, max_queue=4))
    assert seen == {
        "reading while full": False,
        "messages": [str(k) for k in range(200)],
        "reading after": True,
    }


def test_send_waits_while_the_write_buffer_is_full() -> None:
    async def flood(sock: adapter.WebSocket) -> None:
        for _ in range(64):
            await sock.send(b"y" * 65536)  # never more than write_limit buffered
            assert sock.transport is not None
            assert sock.transport.get_write_buffer_size() <= 2 * 65536 + 16

    async def body(uri: str) -> None:
        async with ws_connect(uri, compression=None, max_size=None) as client:
            await asyncio.sleep(0.2)
            for _ in range(64):
                assert await client.recv() == b"y" * 65536

    run(serving(body, handler=flood, write_limit=65536))


def test_a_plain_http_request_gets_a_400() -> None:
    async def body(uri: str) -> None:
        host, port = uri[len("ws://"):].rstrip("/").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        response = await reader.read()
        assert response.startswith(b"HTTP/1.1 400 ")
        writer.close()

    run(serving(body))


def test_a_failing_handler_closes_with_1011() -> None:
    async def broken(sock: adapter.WebSocket) -> None:
        await sock.recv()
        raise RuntimeError("boom")

    async def body(uri: str) -> None:
        async with ws_connect(uri) as client:
            await client.send("x")
            with pytest.raises(websockets.ConnectionClosedError):
                await client.recv()
        assert client.close_code == 1011

    run(serving(body, handler=broken))


def test_send_after_close_raises_connection_closed() -> None:
    async def body(uri: str) -> None:
        sock = await adapter.connect(uri)
        await sock.close()
        with pytest.raises(adapter.ConnectionClosed) as info:
            await sock.send("late")
        assert info.value.ok
        with pytest.raises(adapter.ConnectionClosed):
            await sock.recv()

    run(serving(body))


def test_fragmented_reads_through_the_shared_buffer() -> None:
    # every connection reads into one buffer: frames split across reads of
    # two interleaved connections must survive it
    async def body(uri: str) -> None:
        peers = [await raw_upgrade(uri), await raw_upgrade(uri)]
        payloads = [bytes(range(256)) * 40, bytes(range(255, -1, -1)) * 40]
        data = [frame(0x2, p) for p in payloads]
        for k in range(0, len(data[0]), 7):
            for (_, writer), d in zip(peers, data):
                writer.write(d[k:k + 7])
                await writer.drain()
            await asyncio.sleep(0)
        for (reader, writer), p in zip(peers, payloads):
            assert await read_frame(reader) == (0x2, p)
            writer.close()

    run(serving(body, listener=EchoListener, read_size=64))


@pytest.mark.parametrize("behind, expected", [
    (frame(0x1, b"early") + frame(0x9, b"p"), [(0x1, b"early"), (0xA, b"p")]),
    # the first frames fail the connection: the 101 and our Close go out
    # together, so the Text before the bad frame gets no reply
    (frame(0x1, b"early") + frame(0x1, b"no mask", mask=None), [(0x8, None)]),
])
def test_frames_right_behind_the_request_are_handled(behind: bytes, expected: list[Any]) -> None:
    async def body(uri: str) -> None:
        host, port = uri[len("ws://"):].rstrip("/").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(
            b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            + behind
        )
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101 ")
        for opcode, payload in expected:
            got = await read_frame(reader)
            if payload is None:
                assert got[0] == opcode and got[1][:2] == (1002).to_bytes(2, "big")
            else:
                assert got == (opcode, payload)
        if expected[-1][0] == 0x8:
            assert await reader.read() == b""
        writer.close()

    run(serving(body, listener=EchoListener))


def test_a_prepared_message_is_sent_as_one_shared_frame(ws: ModuleType) -> None:
    from streamcore.ws import Prepared

    message = Prepared(b"\x00broadcast" * 300)
    sockets: list[adapter.WebSocket] = []
    all_in = asyncio.Event()

    async def handler(sock: adapter.WebSocket) -> None:
        sockets.append(sock)
        if len(sockets) == 3:
            all_in.set()
        await all_in.wait()
        await sock.send(message)
        async for _ in sock:
            pass

    async def body(uri: str) -> None:
        offer = [ClientPerMessageDeflateFactory(server_no_context_takeover=True)]
        clients = [await ws_connect(uri, compression=None, extensions=offer) for _ in range(3)]
        assert [await c.recv() for c in clients] == [message.data] * 3
        for c in clients:
            await c.close()
        stats = [s.connection.stats for s in sockets]
        assert len({(st.bytes_out, st.bytes_after_compression) for st in stats}) == 1
        assert 0 < stats[0].bytes_after_compression < len(message.data)

    run(serving(body, handler=handler, deflate=PerMessageDeflate()))


class WriteRecorder:
    """A transport stand-in that records each write call, then forwards it."""

    def __init__(self, transport: Any) -> None:
        self._transport = transport
        self.calls: list[int] = []  # frames per call

    def write(self, data: Any) -> None:
        self.calls.append(1)
        self._transport.write(data)

    def writelines(self, data: Any) -> None:
        data = list(data)
        self.calls.append(len(data))
        self._transport.writelines(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def test_many_sends_in_one_turn_are_one_writelines_in_order_before_the_close() -> None:
    recorders: list[WriteRecorder] = []

    async def burst(sock: adapter.WebSocket) -> None:
        recorder = WriteRecorder(sock._transport)  # noqa: SLF001
        sock._transport = recorder  # type: ignore[assignment]  # noqa: SLF001
        recorders.append(recorder)
        await sock.recv()
        for k in range(300):  # one turn of the loop: no await between them
            sock.send_nowait(str(k) if k % 2 else bytes([k % 256]) * (k % 7))
        sock.send_nowait(b"z" * 70000)  # past the cork limit: written at once
        for k in range(300, 310):
            sock.send_nowait(str(k))
        await sock.close(4001, "done")

    async def body(uri: str) -> None:
        reader, writer = await raw_upgrade(uri)
        writer.write(frame(0x1, b"go"))
        got = []
        while True:
            opcode, payload = await read_frame(reader)
            got.append((opcode, payload))
            if opcode == 0x8:
                break
        writer.write(frame(0x8, close_payload(4001)))
        assert await reader.read() == b""
        writer.close()
        expected = [(0x1, str(k).encode()) if k % 2 else (0x2, bytes([k % 256]) * (k % 7))
                    for k in range(300)]
        expected.append((0x2, b"z" * 70000))
        expected += [(0x1, str(k).encode()) for k in range(300, 310)]
        expected.append((0x8, close_payload(4001, b"done")))
        assert got == expected

    run(serving(body, handler=burst))
    (recorder,) = recorders
    # 301 frames up to and past the limit in one call, then the 10 and the Close
    assert recorder.calls == [301, 11]


def test_replies_pong_and_close_echo_to_one_read_are_one_write_in_order() -> None:
    recorders: list[WriteRecorder] = []

    class Twice(adapter.WebSocketListener):
        def on_open(self, ws: adapter.WebSocket) -> None:
            recorder = WriteRecorder(ws._transport)  # noqa: SLF001
            ws._transport = recorder  # type: ignore[assignment]  # noqa: SLF001
            recorders.append(recorder)

        def on_message(self, ws: adapter.WebSocket, message: str | bytes) -> None:
            ws.send_nowait(message)
            ws.send_nowait(message)

    async def body(uri: str) -> None:
        reader, writer = await raw_upgrade(uri)
        writer.write(frame(0x1, b"a") + frame(0x9, b"p") + frame(0x2, b"b")
                     + frame(0x8, close_payload(1000)))
        got = [await read_frame(reader) for _ in range(6)]
        assert await reader.read() == b""
        writer.close()
        assert got == [(0x1, b"a"), (0x1, b"a"), (0xA, b"p"), (0x2, b"b"), (0x2, b"b"),
                       (0x8, close_payload(1000))]

    run(serving(body, listener=Twice))
    (recorder,) = recorders
    assert sum(recorder.calls) == 6 and len(recorder.calls) <= 2  # one read, or two


def test_an_open_connection_keeps_no_handshake_state() -> None:
    opened: list[adapter.WebSocket] = []

    class Keep(adapter.WebSocketListener):
        def on_open(self, ws: adapter.WebSocket) -> None:
            opened.append(ws)

    def holds(obj: Any, kinds: tuple[type, ...]) -> bool:
        return any(isinstance(ref, kinds) for ref in gc.get_referents(obj))

    async def body(uri: str) -> None:
        client = await adapter.connect(uri)
        try:
            await client.send("x")
            assert await client.recv() == "x"
            (server,) = opened
            for sock in (server, client):
                assert not hasattr(sock, "__dict__")  # slots: no dict per connection
                assert weakref.ref(sock)() is sock  # still weakly referenceable
                assert sock._http is None and sock._handshake is None  # noqa: SLF001
                assert not holds(sock, (h11.Connection, ServerHandshake, ClientHandshake))
                assert sock._pings is None and sock._drainers is None  # noqa: SLF001
                assert sock._messages == []  # noqa: SLF001
            # what the application reads stays
            assert server.request is not None and server.request.target == b"/"
            assert client.response is not None and client.response.status_code == 101
        finally:
            await client.close()

    class EchoKeep(Keep, EchoListener):
        pass

    run(serving(body, listener=EchoKeep))


def test_a_ping_flood_that_never_reads_keeps_the_write_buffer_bounded() -> None:
    # issue 8 review: Pongs were written however full the buffer was and
    # reading never paused (324 MB of buffered Pongs in 3 s)
    seen: dict[str, Any] = {}

    async def idle(sock: adapter.WebSocket) -> None:
        seen["sock"] = sock
        await asyncio.sleep(5)

    async def body(uri: str) -> None:
        reader, writer = await raw_upgrade(uri)
        sock = writer.get_extra_info("socket")
        blob = frame(0x9, b"p" * 125) * 2000
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 1.0
        sent = 0
        while loop.time() < deadline:  # write as fast as the kernel takes it, never read
            writer.write(blob)
            sent += len(blob)
            try:
                await asyncio.wait_for(writer.drain(), 0.05)
            except asyncio.TimeoutError:
                pass
        server_side = seen["sock"]
        assert server_side.transport is not None
        seen["buffered"] = server_side.transport.get_write_buffer_size()
        seen["reading"] = server_side.transport.is_reading()
        seen["sent"] = sent
        writer.transport.abort()
        del sock

    run(serving(body, handler=idle, write_limit=65536))
    assert seen["reading"] is False  # paused while the write buffer is full
    # bounded by write_limit plus the Pongs of one read (read_size / 131 B * 127 B)
    assert seen["buffered"] <= 65536 + adapter.READ_SIZE, seen


def test_reading_resumes_only_when_neither_the_queue_nor_the_writes_ask_for_a_pause() -> None:
    seen: list[bool] = []

    async def check(sock: adapter.WebSocket) -> None:
        tr = sock.transport
        assert tr is not None
        sock.pause_writing()
        seen.append(tr.is_reading())
        sock._read_paused = True  # as if max_queue messages waited
        sock.resume_writing()
        seen.append(tr.is_reading())  # the queue still asks for a pause
        sock._read_paused = False
        sock._update_reading()
        seen.append(tr.is_reading())
        await sock.send("done")

    async def body(uri: str) -> None:
        async with ws_connect(uri, compression=None) as client:
            assert await client.recv() == "done"

    run(serving(body, handler=check))
    assert seen == [False, False, True]


def test_the_handler_sees_the_1009_it_sent_not_1006() -> None:
    # issue 8 review: the handshake was clean on the wire (the client echoed
    # 1009) but ``async for`` raised ConnectionClosed(1006)
    raised: list[BaseException] = []

    async def handler(sock: adapter.WebSocket) -> None:
        try:
            async for message in sock:
                await sock.send(message)
        except adapter.ConnectionClosed as closed:
            raised.append(closed)

    async def body(uri: str) -> None:
        async with ws_connect(uri, compression=None) as client:
            await client.send(b"x" * 2000)
            with pytest.raises(websockets.ConnectionClosedError) as info:
                await client.recv()
        assert info.value.rcvd is not None and info.value.rcvd.code == 1009
        await asyncio.sleep(0.1)

    run(serving(body, handler=handler, max_message_size=1000))
    assert len(raised) == 1 and isinstance(raised[0], adapter.ConnectionClosed)
    assert (raised[0].code, raised[0].reason) == (1009, "")


def test_max_queue_bounds_reads_tiny_frames_past_it_stay_within_one_read() -> None:
    # the documented bound (docs/asyncio.md): the queue holds at most
    # max_queue messages plus those of the read that filled it
    seen: dict[str, Any] = {}
    read_size = 4096

    async def idle(sock: adapter.WebSocket) -> None:
        seen["sock"] = sock
        await asyncio.sleep(5)

    async def body(uri: str) -> None:
        reader, writer = await raw_upgrade(uri)
        writer.write(frame(0x1, b"") * 20000)  # 120,000 bytes of empty messages
        await asyncio.sleep(0.5)
        sock = seen["sock"]
        assert sock.transport is not None
        seen["reading"] = sock.transport.is_reading()
        seen["queued"] = len(sock._messages) - sock._taken
        writer.transport.abort()

    run(serving(body, handler=idle, max_queue=4, read_size=read_size))
    assert seen["reading"] is False
    assert 4 <= seen["queued"] <= 4 + read_size // 6, seen


# -- zero-copy receive (Options.views) ------------------------------------------


class ViewRecorder(adapter.WebSocketListener):
    """Echoes each message and records, inside the callback, its type and bytes."""

    seen: list[tuple[type, bytes | str]]

    def __init__(self) -> None:
        self.seen = []

    def on_message(self, ws: adapter.WebSocket, message: Any) -> None:
        self.seen.append((type(message), bytes(message) if isinstance(message, memoryview)
                          else message))
        ws.send_nowait(message)


def test_a_listener_with_views_gets_binary_as_memoryviews_and_echoes_them() -> None:
    listeners: list[ViewRecorder] = []

    def factory() -> ViewRecorder:
        listeners.append(ViewRecorder())
        return listeners[-1]

    payloads = [bytes(range(256)) * (n // 256) + b"\x07" * (n % 256) for n in SIZES]

    async def body(uri: str) -> None:
        async with ws_connect(uri, max_size=None, compression=None) as client:
            for payload in payloads:
                await client.send(payload)
                assert await client.recv() == payload
            await client.send("text stays str")
            assert await client.recv() == "text stays str"

    run(serving(body, listener=factory, views=True, max_message_size=None))
    (seen,) = [listener.seen for listener in listeners]
    assert [kind for kind, _ in seen] == [memoryview] * len(SIZES) + [str]
    assert [data for _, data in seen] == payloads + ["text stays str"]


def test_views_echo_many_messages_of_one_read_and_messages_split_across_reads() -> None:
    # one write of many frames: every view is of the same read and the shared
    # buffer; a frame split across reads is a view of the codec's copy
    payloads = [bytes([k]) * (k * 997 % 70000) for k in range(1, 60)]

    async def body(uri: str) -> None:
        reader, writer = await raw_upgrade(uri)
        writer.write(b"".join(frame(0x2, p) for p in payloads))
        for payload in payloads:
            assert await read_frame(reader) == (0x2, payload)
        writer.write(frame(0x8, close_payload(1000)))
        assert await read_frame(reader) == (0x8, close_payload(1000))
        writer.close()

    run(serving(body, listener=ViewRecorder, views=True, max_message_size=None,
                read_size=16384))


def test_a_view_shows_other_bytes_after_its_callback_so_listeners_copy_what_they_keep() -> None:
    # the documented lifetime: valid during the callback only (the next read
    # of any connection of the loop reuses the buffer)
    kept: list[tuple[memoryview, bytes]] = []

    class Keeper(adapter.WebSocketListener):
        def on_message(self, ws: adapter.WebSocket, message: Any) -> None:
            kept.append((message, bytes(message)))
            ws.send_nowait(b"ok")

    async def body(uri: str) -> None:
        async with ws_connect(uri, compression=None) as client:
            for k in range(3):
                await client.send(bytes([0x41 + k]) * 100)
                assert await client.recv() == b"ok"

    run(serving(body, listener=Keeper, views=True))
    assert [copy for _, copy in kept] == [bytes([0x41 + k]) * 100 for k in range(3)]
    assert isinstance(kept[0][0], memoryview)
    assert kept[0][0].tobytes() != kept[0][1]  # overwritten by a later read


def test_the_coroutine_api_gets_bytes_it_can_keep_even_with_views() -> None:
    got: list[Any] = []

    async def keep(sock: adapter.WebSocket) -> None:
        async for message in sock:
            got.append(message)
            if len(got) == 40:
                await sock.send(b"done")

    payloads = [bytes([k]) * (1000 + k) for k in range(40)]

    async def body(uri: str) -> None:
        reader, writer = await raw_upgrade(uri)
        writer.write(b"".join(frame(0x2, p) for p in payloads))  # queued past their read
        assert await read_frame(reader) == (0x2, b"done")
        writer.close()

    run(serving(body, handler=keep, views=True, max_queue=64))
    assert all(type(m) is bytes for m in got)
    assert got == payloads


def test_our_client_with_a_views_listener_gets_memoryviews() -> None:
    seen: list[tuple[type, bytes]] = []

    class Client(adapter.WebSocketListener):
        def __init__(self, finished: asyncio.Event) -> None:
            self.finished = finished

        def on_message(self, ws: adapter.WebSocket, message: Any) -> None:
            seen.append((type(message), bytes(message)))
            if len(seen) == 3:
                self.finished.set()

    async def body(uri: str) -> None:
        finished = asyncio.Event()
        sock = await adapter.connect(uri, listener=Client(finished), views=True,
                                     max_message_size=None)
        for n in (5, 70000, 1 << 20):
            sock.send_nowait(b"\x09" * n)
        await finished.wait()
        await sock.close()

    run(serving(body, listener=EchoListener, max_message_size=None))
    assert seen == [(memoryview, b"\x09" * n) for n in (5, 70000, 1 << 20)]
