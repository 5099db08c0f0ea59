"""Loopback interop with the real ``websockets`` library (RFC 6455, RFC 7692).

Two directions, each on both Connection twins, with and without
permessage-deflate:

* an asyncio server built on streamcore (h11 + ``ServerHandshake`` +
  ``Connection``), talked to by the ``websockets`` asyncio client;
* a streamcore client (``ClientHandshake`` + ``Connection``) talking to a
  ``websockets`` asyncio server.

Everything listens on 127.0.0.1 only, on a port the OS picks; every await has
a timeout and every loop is bounded, so a hang fails the test instead of
stalling the suite.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import os
import random
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import h11
import pytest
from helpers import load_twin
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
    ServerPerMessageDeflateFactory,
)

from streamcore import ProtocolError
from streamcore.ws import Binary, Close, Ping, Pong, State, Text
from streamcore.ws.deflate import NegotiatedDeflate, PerMessageDeflate
from streamcore.ws.handshake import ClientHandshake, HandshakeError, ServerHandshake

HOST = "127.0.0.1"
TIMEOUT = 20.0  # seconds for any single step (a 16 MiB message included)
READ = 1 << 16
MiB = 1 << 20
MAX = 32 * MiB  # message limit on both ends, above the 16 MiB messages

SIZES = [0, 1, 125, 126, 65535, 65536, 1 * MiB, 16 * MiB]


@pytest.fixture(params=["python", "cython"])
def impl(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def connection_class(impl: str) -> Any:
    return load_twin("ws", impl).Connection


def run(coro: Awaitable[Any]) -> Any:
    """Run one test body with an overall bound."""

    async def bounded() -> Any:
        return await asyncio.wait_for(coro, 120)

    return asyncio.run(bounded())


@functools.cache
def text_of(size: int) -> str:
    """``size`` UTF-8 bytes of compressible text with 2-, 3- and 4-byte characters."""
    words = ["stream", "core", "frame", "socket", "é", "€", "𝄞", " ", "\n"]
    rng = random.Random(size)
    block = "".join(rng.choice(words) for _ in range(12_000)).encode()  # ~60 KB
    raw = (block * (size // len(block) + 1))[:size]
    value = raw.decode("utf-8", errors="ignore")  # drop a cut character at the end
    return value + " " * (size - len(value.encode()))


def payload_of(size: int, *, text: bool) -> str | bytes:
    """Compressible for text, random for binary (the worst case for deflate)."""
    return text_of(size) if text else os.urandom(size)


# -- a streamcore endpoint over asyncio streams -----------------------------------


class Endpoint:
    """One streamcore Connection on an asyncio stream pair (test helper)."""

    def __init__(
        self, ws: Any, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, pending: bytes
    ) -> None:
        self.ws = ws
        self.reader = reader
        self.writer = writer
        self.pending = pending
        self.events: list[Any] = []

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await asyncio.wait_for(self.writer.drain(), TIMEOUT)

    async def next_event(self) -> Any:
        """The next event; None when the transport ended."""
        for _ in range(100_000):  # bounded: each round reads up to 64 KiB
            if self.events:
                return self.events.pop(0)
            if self.pending:
                data, self.pending = self.pending, b""
            else:
                data = await asyncio.wait_for(self.reader.read(READ), TIMEOUT)
                if not data:
                    return None
            self.events.extend(self.ws.receive_data(data))
        raise AssertionError("no event after 100000 reads")

    async def next_data_event(self) -> Any:
        """The next Text/Binary/Close event, answering Pings on the way."""
        for _ in range(1000):
            event = await self.next_event()
            if isinstance(event, Ping):
                await self.send(self.ws.send_pong(event.data))
                continue
            return event
        raise AssertionError("only control frames")


# -- streamcore server, websockets client ---------------------------------------------


async def streamcore_server_handler(
    impl: str,
    deflate: PerMessageDeflate | None,
    record: list[Any],
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    *,
    max_message_size: int | None = MAX,
    assemble: bool = True,
) -> None:
    """Echo server: Text/Binary echoed; commands in Text messages:

    ``close:<code>:<reason>`` closes with that code; ``ping:<data>`` sends a
    Ping and reports the Pong as ``pong:<data>``; ``fragments:<n>:<text>``
    sends <text> back in <n> fragments.
    """
    http = h11.Connection(h11.SERVER)
    handshake = ServerHandshake(subprotocols=["echo", "chat"], deflate=deflate)
    try:
        request = None
        for _ in range(100):
            event = http.next_event()
            if isinstance(event, h11.Request):
                request = event
                break
            if event is not h11.NEED_DATA:
                return
            http.receive_data(await asyncio.wait_for(reader.read(READ), TIMEOUT))
        assert request is not None
        try:
            upgrade = handshake.upgrade(http, request)
        except HandshakeError as err:
            writer.write(handshake.reject(http, err))
            await writer.drain()
            return
        writer.write(upgrade.data)
        ws = connection_class(impl)(
            "server", max_message_size=max_message_size, deflate=upgrade.deflate, assemble=assemble
        )
        parts: list[Any] = []  # fragments of the message being streamed (assemble=False)
        end = Endpoint(ws, reader, writer, upgrade.trailing)
        record.append(upgrade)
        while True:
            try:
                event = await end.next_event()
            except ProtocolError as err:
                record.append(err)
                if ws.state is State.OPEN:
                    await end.send(ws.send_close(err.close_code or 1002))
                return
            record.append(event)
            if event is None:
                return
            if isinstance(event, Close):
                await end.send(ws.data_to_send())
                return
            if isinstance(event, Ping):
                await end.send(ws.send_pong(event.data))
            elif isinstance(event, Pong):
                await end.send(ws.send_text("pong:" + event.data.decode()))
            elif isinstance(event, (Text, Binary)) and not event.final:
                parts.append(event.data)  # streamed: echo the whole message at its end
            elif isinstance(event, Binary):
                data, parts = b"".join([*parts, event.data]), []
                await end.send(ws.send_binary(data))
            elif isinstance(event, Text):
                text, parts = "".join([*parts, event.data]), []
                if text.startswith("close:"):
                    _, code, reason = text.split(":", 2)
                    await end.send(ws.send_close(int(code), reason))
                elif text.startswith("ping:"):
                    await end.send(ws.send_ping(text[5:].encode()))
                elif text.startswith("fragments:"):
                    _, count, body = text.split(":", 2)
                    step = max(1, len(body) // int(count))
                    parts = [body[i : i + step] for i in range(0, len(body), step)] or [""]
                    for i, part in enumerate(parts):
                        await end.send(ws.send_text(part, final=i == len(parts) - 1))
                else:
                    await end.send(ws.send_text(text))
    finally:
        writer.close()


@asynccontextmanager
async def streamcore_server(
    impl: str, deflate: PerMessageDeflate | None, **options: Any
) -> AsyncIterator[tuple[str, list[Any]]]:
    record: list[Any] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await streamcore_server_handler(impl, deflate, record, reader, writer, **options)

    server = await asyncio.start_server(handler, HOST, 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"ws://{HOST}:{port}/path?q=1", record
    finally:
        server.close()
        await asyncio.wait_for(server.wait_closed(), TIMEOUT)


def ws_client(uri: str, compressed: bool, **options: Any) -> Any:
    return connect(
        uri,
        compression="deflate" if compressed else None,
        max_size=MAX,
        ping_interval=None,
        open_timeout=TIMEOUT,
        close_timeout=TIMEOUT,
        proxy=None,
        **options,
    )


SERVER_DEFLATE = {
    "off": None,
    "default": PerMessageDeflate(),
    "small-windows": PerMessageDeflate(
        server_max_window_bits=9, client_max_window_bits=10, mem_level=4
    ),
    "no-takeover": PerMessageDeflate(
        server_no_context_takeover=True, client_no_context_takeover=True
    ),
}


@pytest.mark.parametrize("config", list(SERVER_DEFLATE))
def test_websockets_client_handshakes_with_streamcore_server(impl: str, config: str) -> None:
    deflate = SERVER_DEFLATE[config]

    async def main() -> None:
        async with streamcore_server(impl, deflate) as (uri, record):
            async with ws_client(uri, compressed=deflate is not None, subprotocols=["chat"]) as ws:
                assert ws.subprotocol == "chat"
                extensions = ws.response.headers.get("Sec-WebSocket-Extensions")
                if deflate is None:
                    assert extensions is None
                else:
                    assert extensions is not None and extensions.startswith("permessage-deflate")
                    assert [e.name for e in ws.protocol.extensions] == ["permessage-deflate"]
                await ws.send("hello")
                assert await asyncio.wait_for(ws.recv(), TIMEOUT) == "hello"
            upgrade = record[0]
            assert upgrade.request.target == b"/path?q=1"
            assert (upgrade.deflate is None) == (deflate is None)

    run(main())


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "deflate"])
@pytest.mark.parametrize("text", [True, False], ids=["text", "binary"])
def test_websockets_client_messages_echo_through_streamcore_server(
    impl: str, compressed: bool, text: bool
) -> None:
    deflate = PerMessageDeflate() if compressed else None

    async def main() -> None:
        async with streamcore_server(impl, deflate) as (uri, _):
            async with ws_client(uri, compressed) as ws:
                for size in SIZES:
                    message = payload_of(size, text=text)
                    await asyncio.wait_for(ws.send(message), TIMEOUT)
                    echoed = await asyncio.wait_for(ws.recv(), TIMEOUT)
                    assert type(echoed) is type(message)
                    assert echoed == message, f"size {size}"

    run(main())


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "deflate"])
def test_websockets_client_fragments_are_reassembled_by_streamcore(
    impl: str, compressed: bool
) -> None:
    async def main() -> None:
        async with streamcore_server(impl, PerMessageDeflate() if compressed else None) as (
            uri,
            record,
        ):
            async with ws_client(uri, compressed) as ws:
                parts = ["frag", "ment", "ed €", ""]
                await ws.send(parts)  # websockets sends an iterable as fragments
                assert await asyncio.wait_for(ws.recv(), TIMEOUT) == "fragmented €"
                await ws.send([b"\x00" * 70_000, b"\x01" * 3])
                assert await asyncio.wait_for(ws.recv(), TIMEOUT) == b"\x00" * 70_000 + b"\x01" * 3
                # streamcore sends fragments; websockets reassembles them
                body = payload_of(50_000, text=True)
                await ws.send(f"fragments:7:{body}")
                assert await asyncio.wait_for(ws.recv(), TIMEOUT) == body
            assert Text("fragmented €") in record

    run(main())


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "deflate"])
def test_streamcore_server_streams_fragments_with_assemble_false(
    impl: str, compressed: bool
) -> None:
    async def main() -> None:
        deflate = PerMessageDeflate() if compressed else None
        async with streamcore_server(impl, deflate, assemble=False, max_message_size=None) as (
            uri,
            record,
        ):
            async with ws_client(uri, compressed) as ws:
                body = text_of(3 * MiB)
                chunks = [body[i : i + 200_000] for i in range(0, len(body), 200_000)]
                await asyncio.wait_for(ws.send(chunks), TIMEOUT)
                assert await asyncio.wait_for(ws.recv(), TIMEOUT) == body
                data = os.urandom(2 * MiB)
                await asyncio.wait_for(ws.send([data[:MiB], data[MiB:]]), TIMEOUT)
                assert await asyncio.wait_for(ws.recv(), TIMEOUT) == data
            streamed = [e for e in record if isinstance(e, Text)]
            # streamed within each frame too: a 200,000-character frame is
            # more than one 64 KiB read, so it comes in several pieces, each
            # as it arrived; only the last is final, none before it is empty
            # (websockets ends an iterable with an empty final frame)
            assert len(streamed) > len(chunks) + 1
            assert [e.final for e in streamed] == [False] * (len(streamed) - 1) + [True]
            assert all(e.data for e in streamed[:-1])
            assert "".join(e.data for e in streamed) == body
            pieces = [e for e in record if isinstance(e, Binary)]
            assert len(pieces) > 2 and all(len(e.data) <= READ for e in pieces)
            assert b"".join(e.data for e in pieces) == data

    run(main())


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "deflate"])
def test_ping_pong_both_ways_with_streamcore_server(impl: str, compressed: bool) -> None:
    async def main() -> None:
        async with streamcore_server(impl, PerMessageDeflate() if compressed else None) as (
            uri,
            record,
        ):
            async with ws_client(uri, compressed) as ws:
                # websockets pings, streamcore answers
                pong_waiter = await ws.ping(b"from websockets")
                latency = await asyncio.wait_for(pong_waiter, TIMEOUT)
                assert latency >= 0
                # streamcore pings, websockets answers, streamcore reports it
                await ws.send("ping:from streamcore")
                assert await asyncio.wait_for(ws.recv(), TIMEOUT) == "pong:from streamcore"
            assert Ping(b"from websockets") in record
            assert Pong(b"from streamcore") in record

    run(main())


@pytest.mark.parametrize("code", [1000, 1001, 3000, 4999])
def test_websockets_client_close_codes_reach_streamcore_server(impl: str, code: int) -> None:
    async def main() -> None:
        async with streamcore_server(impl, None) as (uri, record):
            async with ws_client(uri, False) as ws:
                await asyncio.wait_for(ws.close(code, "bye ✓"), TIMEOUT)
                assert ws.close_code == code  # streamcore echoed the code
            for _ in range(int(TIMEOUT / 0.01)):  # the server task may still be finishing
                if any(isinstance(e, Close) for e in record):
                    break
                await asyncio.sleep(0.01)
            assert Close(code, "bye ✓") in record

    run(main())


@pytest.mark.parametrize(("code", "reason"), [(1000, ""), (1008, "policy"), (4001, "custom é")])
def test_streamcore_server_close_codes_reach_websockets_client(
    impl: str, code: int, reason: str
) -> None:
    async def main() -> None:
        async with streamcore_server(impl, None) as (uri, _):
            async with ws_client(uri, False) as ws:
                await ws.send(f"close:{code}:{reason}")
                with pytest.raises(ConnectionClosed) as info:
                    await asyncio.wait_for(ws.recv(), TIMEOUT)
                assert info.value.rcvd is not None
                assert (info.value.rcvd.code, info.value.rcvd.reason) == (code, reason)

    run(main())


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "deflate"])
def test_message_over_the_limit_closes_with_1009(impl: str, compressed: bool) -> None:
    async def main() -> None:
        deflate = PerMessageDeflate() if compressed else None
        async with streamcore_server(impl, deflate, max_message_size=MiB) as (uri, record):
            async with ws_client(uri, compressed) as ws:
                # with deflate this is a bomb: 64 MiB of zeros is ~64 KiB on the wire
                size = 64 * MiB if compressed else MiB + 1
                await asyncio.wait_for(ws.send(bytes(size)), TIMEOUT)
                with pytest.raises(ConnectionClosed) as info:
                    await asyncio.wait_for(ws.recv(), TIMEOUT)
                assert info.value.rcvd is not None and info.value.rcvd.code == 1009
            errors = [e for e in record if isinstance(e, ProtocolError)]
            assert errors and errors[0].close_code == 1009

    run(main())


def test_websockets_client_sees_a_426_for_another_version() -> None:
    # the rejection path of the h11 helpers, read by a plain HTTP client
    async def main() -> None:
        async with streamcore_server("python", None) as (uri, _):
            port = int(uri.split(":")[2].split("/")[0])
            reader, writer = await asyncio.open_connection(HOST, port)
            writer.write(
                b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n"
            )
            data = await asyncio.wait_for(reader.read(), TIMEOUT)
            writer.close()
            assert data.startswith(b"HTTP/1.1 426 ")
            assert b"Sec-WebSocket-Version: 13\r\n" in data

    run(main())


# -- streamcore client, websockets server ---------------------------------------------


async def websockets_echo(ws: ServerConnection) -> None:
    """Echo; ``close:<code>:<reason>`` closes; ``fragments:<n>:<text>``
    answers in fragments; ``ping:<data>`` pings and reports the pong."""
    try:
        async for message in ws:
            if isinstance(message, str) and message.startswith("close:"):
                _, code, reason = message.split(":", 2)
                await ws.close(int(code), reason)
                return
            if isinstance(message, str) and message.startswith("fragments:"):
                _, count, body = message.split(":", 2)
                step = max(1, len(body) // int(count))
                await ws.send([body[i : i + step] for i in range(0, len(body), step)])
            elif isinstance(message, str) and message.startswith("ping:"):
                waiter = await ws.ping(message[5:].encode())
                await asyncio.wait_for(waiter, TIMEOUT)
                await ws.send("pong:" + message[5:])
            else:
                await ws.send(message)
    except ConnectionClosed:
        pass


@asynccontextmanager
async def websockets_server(
    compression: str | None = "deflate",
    extensions: list[ServerPerMessageDeflateFactory] | None = None,
    handler: Callable[[ServerConnection], Awaitable[None]] = websockets_echo,
) -> AsyncIterator[int]:
    async with serve(
        handler,
        HOST,
        0,
        compression=compression if extensions is None else None,
        extensions=extensions,
        subprotocols=["chat", "echo"],
        max_size=MAX,
        ping_interval=None,
        close_timeout=TIMEOUT,
    ) as server:
        yield server.sockets[0].getsockname()[1]


async def streamcore_client(
    impl: str, port: int, deflate: PerMessageDeflate | None, subprotocols: Sequence[str] = ("chat",)
) -> tuple[Endpoint, Any]:
    # (websockets' server refuses a client that offers none of its subprotocols)
    reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), TIMEOUT)
    handshake = ClientHandshake(
        f"{HOST}:{port}", "/chat", subprotocols=subprotocols, deflate=deflate
    )
    writer.write(handshake.send())
    upgrade = None
    try:
        for _ in range(100):
            upgrade = handshake.receive_data(await asyncio.wait_for(reader.read(READ), TIMEOUT))
            if upgrade is not None:
                break
        assert upgrade is not None
    except BaseException:
        writer.close()  # a refused or failed handshake: do not keep the socket open
        raise
    ws = connection_class(impl)("client", max_message_size=MAX, deflate=upgrade.deflate)
    return Endpoint(ws, reader, writer, upgrade.trailing), upgrade


async def close_cleanly(end: Endpoint, code: int = 1000, reason: str = "") -> Any:
    """Send our Close, read until the peer's; return that Close event."""
    await end.send(end.ws.send_close(code, reason))
    for _ in range(1000):
        event = await end.next_event()
        if event is None or isinstance(event, Close):
            end.writer.close()
            return event
    raise AssertionError("no Close in reply")


CLIENT_DEFLATE = {
    "off": None,
    "default": PerMessageDeflate(),
    "small-windows": PerMessageDeflate(server_max_window_bits=10, client_max_window_bits=9),
    "no-takeover": PerMessageDeflate(
        server_no_context_takeover=True, client_no_context_takeover=True
    ),
}

# websockets' server side, configured to exercise every parameter it can send
WS_SERVER_FACTORIES = {
    "websockets-default": None,  # compression="deflate": 12-bit windows, memLevel 5
    "websockets-no-takeover": [
        ServerPerMessageDeflateFactory(
            server_no_context_takeover=True, client_no_context_takeover=True
        )
    ],
    "websockets-client-bits-8": [ServerPerMessageDeflateFactory(client_max_window_bits=8)],
}


@pytest.mark.parametrize("config", list(CLIENT_DEFLATE))
@pytest.mark.parametrize("server_config", list(WS_SERVER_FACTORIES))
def test_streamcore_client_handshakes_with_websockets_server(
    impl: str, config: str, server_config: str
) -> None:
    deflate = CLIENT_DEFLATE[config]

    async def main() -> None:
        async with websockets_server(extensions=WS_SERVER_FACTORIES[server_config]) as port:
            end, upgrade = await streamcore_client(impl, port, deflate, ["superchat", "chat"])
            assert upgrade.subprotocol == "chat"
            assert (upgrade.deflate is None) == (deflate is None)
            for message in ("hello", "hello", payload_of(5000, text=True)):
                await end.send(end.ws.send_text(message))
                assert await end.next_data_event() == Text(message)
            close = await close_cleanly(end)
            assert close == Close(1000, "")

    run(main())


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "deflate"])
@pytest.mark.parametrize("text", [True, False], ids=["text", "binary"])
def test_streamcore_client_messages_echo_through_websockets_server(
    impl: str, compressed: bool, text: bool
) -> None:
    async def main() -> None:
        async with websockets_server("deflate" if compressed else None) as port:
            end, upgrade = await streamcore_client(
                impl, port, PerMessageDeflate() if compressed else None
            )
            assert (upgrade.deflate is not None) == compressed
            for size in SIZES:
                message = payload_of(size, text=text)
                if text:
                    assert isinstance(message, str)
                    await end.send(end.ws.send_text(message))
                    assert await end.next_data_event() == Text(message), f"size {size}"
                else:
                    assert isinstance(message, bytes)
                    await end.send(end.ws.send_binary(message))
                    assert await end.next_data_event() == Binary(message), f"size {size}"
            await close_cleanly(end)

    run(main())


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "deflate"])
def test_fragments_between_streamcore_client_and_websockets_server(
    impl: str, compressed: bool
) -> None:
    async def main() -> None:
        async with websockets_server("deflate" if compressed else None) as port:
            end, _ = await streamcore_client(
                impl, port, PerMessageDeflate() if compressed else None
            )
            ws = end.ws
            # streamcore sends fragments, with a Ping between them
            await end.send(ws.send_text("frag", final=False))
            await end.send(ws.send_ping(b"between"))
            await end.send(ws.send_text("ment €", final=False))
            await end.send(ws.send_text("", final=True))
            assert await end.next_event() == Pong(b"between")
            assert await end.next_data_event() == Text("fragment €")
            await end.send(ws.send_binary(b"a" * 70_000, final=False))
            await end.send(ws.send_binary(b"b", final=True))
            assert await end.next_data_event() == Binary(b"a" * 70_000 + b"b")
            # websockets sends fragments (compressed per message when on)
            body = payload_of(100_000, text=True)
            await end.send(ws.send_text(f"fragments:9:{body}"))
            assert await end.next_data_event() == Text(body)
            await close_cleanly(end)

    run(main())


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "deflate"])
def test_ping_pong_both_ways_with_websockets_server(impl: str, compressed: bool) -> None:
    async def main() -> None:
        async with websockets_server("deflate" if compressed else None) as port:
            end, _ = await streamcore_client(
                impl, port, PerMessageDeflate() if compressed else None
            )
            ws = end.ws
            await end.send(ws.send_ping(b"from streamcore"))
            assert await end.next_event() == Pong(b"from streamcore")
            # websockets pings; next_data_event answers; websockets reports it
            await end.send(ws.send_text("ping:from websockets"))
            assert await end.next_event() == Ping(b"from websockets")
            await end.send(ws.send_pong(b"from websockets"))
            assert await end.next_data_event() == Text("pong:from websockets")
            await close_cleanly(end)

    run(main())


@pytest.mark.parametrize(("code", "reason"), [(1000, ""), (1001, "going away"), (4000, "app é")])
def test_websockets_server_close_codes_reach_streamcore_client(
    impl: str, code: int, reason: str
) -> None:
    async def main() -> None:
        async with websockets_server(None) as port:
            end, _ = await streamcore_client(impl, port, None)
            await end.send(end.ws.send_text(f"close:{code}:{reason}"))
            event = await end.next_data_event()
            assert event == Close(code, reason)
            assert end.ws.state is State.CLOSING and end.ws.echo_pending
            await end.send(end.ws.data_to_send())  # our echo completes the handshake
            assert end.ws.state is State.CLOSED
            assert await end.next_event() is None  # websockets closes the TCP connection
            end.writer.close()

    run(main())


@pytest.mark.parametrize("code", [1000, 1003, 3333, 4999])
def test_streamcore_client_close_codes_reach_websockets_server(impl: str, code: int) -> None:
    seen: list[tuple[int | None, str | None]] = []

    async def record_close(ws: ServerConnection) -> None:
        try:
            await asyncio.wait_for(ws.recv(), TIMEOUT)
        except ConnectionClosed as exc:
            seen.append((exc.rcvd.code, exc.rcvd.reason) if exc.rcvd else (None, None))

    async def main() -> None:
        async with websockets_server(None, handler=record_close) as port:
            end, _ = await streamcore_client(impl, port, None)
            close = await close_cleanly(end, code, "done ✓")
            assert close == Close(code, "done ✓")  # websockets echoes the code
            for _ in range(int(TIMEOUT / 0.01)):  # the handler may still be finishing
                if seen:
                    break
                await asyncio.sleep(0.01)
        assert seen == [(code, "done ✓")]

    run(main())


def test_streamcore_client_rejects_a_websockets_server_refusal() -> None:
    async def refuse(connection: ServerConnection, request: Any) -> Any:
        return connection.respond(403, "no\n")

    async def main() -> None:
        async with serve(websockets_echo, HOST, 0, process_request=refuse) as server:
            port = server.sockets[0].getsockname()[1]
            with pytest.raises(HandshakeError, match="403") as info:
                await streamcore_client("python", port, None)
            assert info.value.response is not None and info.value.response.status_code == 403

    run(main())


def test_deflate_is_negotiated_with_the_agreed_parameters_by_websockets_client() -> None:
    # websockets' client offering every parameter to a streamcore server
    factory = ClientPerMessageDeflateFactory(
        server_no_context_takeover=True,
        client_no_context_takeover=True,
        server_max_window_bits=10,
        client_max_window_bits=11,
    )

    async def main() -> None:
        async with streamcore_server("python", PerMessageDeflate()) as (uri, record):
            async with ws_client(uri, False, extensions=[factory]) as ws:
                await ws.send("x" * 1000)
                assert await asyncio.wait_for(ws.recv(), TIMEOUT) == "x" * 1000
            agreed = record[0].deflate
            assert agreed == NegotiatedDeflate(
                server_no_context_takeover=True,
                client_no_context_takeover=True,
                server_max_window_bits=10,
                client_max_window_bits=11,
            )

    run(main())


# -- the examples stay runnable --------------------------------------------------------------


def load_example(name: str) -> Any:
    examples = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")
    path = os.path.join(examples, f"{name}.py")
    # as when run as a script, the examples' folder is on the path (they import ws_echo)
    if examples not in sys.path:
        sys.path.insert(0, examples)
    spec = importlib.util.spec_from_file_location(f"example_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_example_server_echoes_to_websockets_client() -> None:
    example = load_example("asyncio_ws_server")

    async def main() -> None:
        server = await asyncio.start_server(example.handle, HOST, 0)
        port = server.sockets[0].getsockname()[1]
        try:
            async with ws_client(f"ws://{HOST}:{port}/", True, subprotocols=["echo"]) as ws:
                assert ws.subprotocol == "echo"
                await ws.send("example ✓")
                assert await asyncio.wait_for(ws.recv(), TIMEOUT) == "example ✓"
                await ws.send(b"\x00" * 100_000)
                assert await asyncio.wait_for(ws.recv(), TIMEOUT) == b"\x00" * 100_000
        finally:
            server.close()
            await asyncio.wait_for(server.wait_closed(), TIMEOUT)

    run(main())


def test_example_client_talks_to_websockets_server(capsys: pytest.CaptureFixture[str]) -> None:
    example = load_example("asyncio_ws_client")

    async def main() -> None:
        async with serve(
            websockets_echo, HOST, 0, subprotocols=["echo"], ping_interval=None
        ) as server:
            port = server.sockets[0].getsockname()[1]
            await asyncio.wait_for(example.main(HOST, port, ["one", "two ✓"]), TIMEOUT)

    run(main())
    out = capsys.readouterr().out
    assert "subprotocol='echo'" in out and "permessage-deflate" in out
    assert "Text(data='two ✓', final=True)" in out
    assert "Pong(data=b'are you there?')" in out
    assert "Close(code=1000" in out


@pytest.mark.parametrize("invalid", [
    b"\x83\x80\x00\x00\x00\x00",  # reserved opcode 3 (1002)
    b"\x81\x81\x00\x00\x00\x00\xff",  # a text frame that is not UTF-8 (1007)
], ids=["opcode", "utf8"])
def test_example_server_fails_an_invalid_frame_with_its_close_code(
    invalid: bytes, impl: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review finding: on a ProtocolError the example wrote the Close and closed
    the socket with the client's later bytes unread, so the kernel reset the
    connection and dropped what was still queued to send, the Close included:
    the client saw 1006.  Here the client (reading slowly, as a busy peer does)
    has echoes queued when its invalid frame arrives, followed by bytes the
    server will never read.  Failed before: ``rcvd`` was None (1006)."""
    import streamcore.ws

    # the example's hand-off makes a streamcore.ws.Connection: run it on each twin
    monkeypatch.setattr(streamcore.ws, "Connection", connection_class(impl))
    example = load_example("asyncio_ws_server")
    expected = 1002 if invalid[0] & 0x0F == 3 else 1007
    key = b"\x01\x02\x03\x04"
    # 1 MiB of zeros in a binary frame: masked with ``key``, the payload is the key repeated
    big = b"\x82\xff" + MiB.to_bytes(8, "big") + key + key * (MiB // 4)

    async def main() -> None:
        server = await asyncio.start_server(example.handle, HOST, 0)
        port = server.sockets[0].getsockname()[1]
        try:
            async with ws_client(f"ws://{HOST}:{port}/", False, max_queue=1) as ws:
                await ws.send("first")
                assert await asyncio.wait_for(ws.recv(), TIMEOUT) == "first"
                # raw bytes, which websockets would not send: 16 MiB to echo, the
                # invalid frame, then 1 MiB the server never reads
                ws.transport.write(big * 16 + invalid + big)
                echoed = 0
                with pytest.raises(ConnectionClosed) as info:
                    for _ in range(100):
                        assert await asyncio.wait_for(ws.recv(), TIMEOUT) == bytes(MiB)
                        echoed += 1
                        await asyncio.sleep(0.01)
                assert info.value.rcvd is not None, f"no Close from the server: {info.value}"
                assert info.value.rcvd.code == expected
                assert echoed == 16  # every reply written before the Close arrived
        finally:
            server.close()
            await asyncio.wait_for(server.wait_closed(), TIMEOUT)

    run(main())
