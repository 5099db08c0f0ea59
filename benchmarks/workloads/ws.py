"""WebSocket (RFC 6455): decode, encode and the masking kernel, against peers.

Decode workloads feed pre-built wire bytes, already cut into reads the way a
transport hands them over, to a fresh parser per run.  The consumer is the
same small piece of Python for every contender: per read, it takes the list
of messages the parser produced and counts them, keeping the last one; the
run returns ``(messages, last payload)`` and that must equal ``expected``,
so a contender that loses or corrupts a message gets no number.

* streamcore: ``Connection.receive_data`` (assembled messages);
* wsproto: ``Connection.receive_data`` + ``events()`` (a generator: its
  messages arrive in pieces per read, counted when ``message_finished``);
* websockets: the Sans-I/O ``Protocol`` (``receive_data`` +
  ``events_received``), with its C ``apply_mask`` speedup;
* aiohttp: its Cython ``WebSocketReader`` (``aiohttp._websocket.reader_c``)
  feeding its own ``WebSocketDataQueue`` (the real queue, with a stub
  protocol that never pauses and a loop that never runs).

Encode workloads turn ready payloads into wire bytes as a client (masked,
fresh keys); the run returns the total wire size.  The masking kernels run
a fixed number of calls on one payload.
"""
from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from functools import cache
from typing import Any

from benchmarks.harness import Workload

KiB = 1 << 10
MiB = 1 << 20

CY = "streamcore (cython)"
PY = "streamcore (python)"
WSPROTO = "wsproto"
WEBSOCKETS = "websockets (Sans-I/O)"
AIOHTTP = "aiohttp (Cython reader)"
AIOHTTP_MASK = "aiohttp (in-place kernel)"
WEBSOCKETS_MASK = "websockets (speedups)"
WSPROTO_MASK = "wsproto (XorMaskerSimple)"

PICOWS = "picows (WSProtocol, stub transport)"
PICOWS_NOTE = (
    "picows has no Sans-I/O entry point: its parser lives inside WSProtocol, an asyncio "
    "BufferedProtocol that needs a running loop, calls setsockopt/getsockopt on the "
    "transport's socket and parses frames only after an HTTP upgrade. It is driven here "
    "through get_buffer/buffer_updated inside a loop that is not otherwise used, with a "
    "stub transport (an unconnected TCP socket object just for those socket options; no "
    "I/O) and a canned upgrade; each frame reaches a WSListener.on_ws_frame override, its "
    "only API, which keeps the payload (decoded for text)."
)


def _codec(twin: str) -> Any:
    if twin == "cython":
        from streamcore.ws import _c as codec
    else:
        from streamcore.ws import _py as codec
    return codec


# --- inputs (built once, outside the clock) ------------------------------------------


@cache
def payload(size: int) -> bytes:
    return random.Random(size).randbytes(size)


@cache
def text_payload(size: int) -> str:
    # JSON-like ASCII, the typical small WebSocket message
    rng = random.Random(size)
    alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789{}":, '
    return "".join(rng.choice(alphabet) for _ in range(size))


@cache
def wire(kind: str, count: int, size: int, masked: bool) -> bytes:
    from streamcore.ws import _py as _codec_py

    enc = _codec_py.Encoder(masked)
    if kind == "text":
        msg = text_payload(size)
        return b"".join(enc.text(msg) for _ in range(count))
    data = payload(size)
    return b"".join(enc.frame(0x2, data) for _ in range(count))


def reads(data: bytes, size: int) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


# --- decode contenders -------------------------------------------------------------


def decode_streamcore(twin: str, role: str, chunks: list[bytes]) -> Callable[[], Any]:
    Connection = _codec(twin).Connection

    def run() -> Any:
        conn = Connection(role, max_message_size=None)
        n = 0
        last = None
        for chunk in chunks:
            events = conn.receive_data(chunk)
            if events:
                n += len(events)
                last = events[-1]
        return n, last.data

    return run


def decode_wsproto(role: str, chunks: list[bytes]) -> Callable[[], Any]:
    from wsproto.connection import Connection, ConnectionType
    from wsproto.events import Message

    ctype = ConnectionType.SERVER if role == "server" else ConnectionType.CLIENT

    def run() -> Any:
        conn = Connection(ctype)
        n = 0
        parts: list[Any] = []
        last = None
        for chunk in chunks:
            conn.receive_data(chunk)
            for ev in conn.events():
                if isinstance(ev, Message):
                    parts.append(ev.data)
                    if ev.message_finished:
                        n += 1
                        last = parts[0] if len(parts) == 1 else parts[0][:0].join(parts)
                        parts = []
        return n, last

    return run


def decode_websockets(role: str, chunks: list[bytes]) -> Callable[[], Any]:
    from websockets.frames import Opcode
    from websockets.protocol import Protocol, Side

    side = Side.SERVER if role == "server" else Side.CLIENT

    def run() -> Any:
        proto = Protocol(side, max_size=None)
        n = 0
        last = None
        for chunk in chunks:
            proto.receive_data(chunk)
            events = proto.events_received()
            if events:
                n += len(events)
                last = events[-1]
        # its frames carry bytes; a text message is decoded by the caller
        data = last.data.decode() if last.opcode is Opcode.TEXT else bytes(last.data)
        return n, data

    return run


class _StubProtocol:
    """What aiohttp's queue calls on its protocol: never asked to pause."""

    _reading_paused = True

    def pause_reading(self) -> None:  # pragma: no cover - never reached
        pass


def decode_aiohttp(chunks: list[bytes]) -> Callable[[], Any]:
    from aiohttp._websocket.reader_c import WebSocketDataQueue, WebSocketReader

    loop = asyncio.new_event_loop()  # never run: the queue only keeps a reference

    def run() -> Any:
        queue = WebSocketDataQueue(_StubProtocol(), 1 << 30, loop=loop)
        reader = WebSocketReader(queue, 0, compress=False, decode_text=True)
        for chunk in chunks:
            reader.feed_data(chunk)
        buf = queue._buffer
        return len(buf), buf[-1][0].data

    return run


def decode_picows(role: str, kind: str, chunks: list[bytes]) -> Callable[[], Any]:
    import base64
    import hashlib
    import logging
    import socket

    import picows
    from picows.picows import WSProtocol

    class StubTransport(asyncio.Transport):
        def __init__(self) -> None:
            super().__init__()
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # never connected
            self.out: list[bytes] = []

        def get_extra_info(self, name: str, default: Any = None) -> Any:
            info = {"socket": self.sock, "peername": ("127.0.0.1", 1),
                    "sockname": ("127.0.0.1", 2)}
            return info.get(name, default)

        def write(self, data: Any) -> None:
            self.out.append(bytes(data))

        def is_closing(self) -> bool:
            return False

        def close(self) -> None:
            self.sock.close()

        def get_write_buffer_size(self) -> int:
            return 0

    text = kind == "text"

    class Listener(picows.WSListener):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.n = 0
            self.last: Any = None

        def on_ws_frame(self, transport: Any, frame: Any) -> None:
            self.n += 1
            self.last = frame.get_payload_as_utf8_text() if text else \
                frame.get_payload_as_bytes()

    def feed(proto: Any, data: bytes) -> None:
        pos = 0
        while pos < len(data):
            buf = proto.get_buffer(-1)
            k = min(len(buf), len(data) - pos)
            buf[:k] = data[pos:pos + k]
            proto.buffer_updated(k)
            pos += k

    request = (b"GET / HTTP/1.1\r\nHost: bench\r\nUpgrade: websocket\r\n"
               b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
               b"Sec-WebSocket-Version: 13\r\n\r\n")
    guid = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
    client = role == "client"
    logger = logging.getLogger("bench.picows")
    logger.setLevel(logging.WARNING)

    async def once() -> Any:
        listener = Listener()
        proto = WSProtocol("bench:80" if client else None, "/", client,
                           lambda *args: listener, logger, True, None, False, 10, 10,
                           picows.WSAutoPingStrategy.PING_WHEN_IDLE, False, 1 << 30, None,
                           1 << 16)
        transport = StubTransport()
        try:
            proto.connection_made(transport)
            if client:  # answer its upgrade request with a canned 101
                head = b"".join(transport.out)
                key = head.split(b"Sec-WebSocket-Key: ", 1)[1].split(b"\r\n", 1)[0]
                accept = base64.b64encode(hashlib.sha1(key + guid).digest())
                feed(proto, b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                            b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept +
                            b"\r\n\r\n")
            else:
                feed(proto, request)
            for chunk in chunks:
                feed(proto, chunk)
        finally:
            transport.close()
        return listener.n, listener.last

    loop = asyncio.new_event_loop()

    def run() -> Any:
        return loop.run_until_complete(once())

    return run


def decode_workload(name: str, description: str, kind: str, count: int, size: int,
                    read: int, role: str) -> Workload:
    masked = role == "server"
    chunks = reads(wire(kind, count, size, masked), read)
    last = text_payload(size) if kind == "text" else payload(size)
    contenders = {
        CY: lambda: decode_streamcore("cython", role, chunks),
        PY: lambda: decode_streamcore("python", role, chunks),
        WSPROTO: lambda: decode_wsproto(role, chunks),
        WEBSOCKETS: lambda: decode_websockets(role, chunks),
        AIOHTTP: lambda: decode_aiohttp(chunks),
        PICOWS: lambda: decode_picows(role, kind, chunks),
    }
    return Workload(
        group="ws",
        name=name,
        description=description,
        nbytes=count * size,
        nevents=count,
        contenders=contenders,
        expected=(count, last),
        ours=(CY, PY),
        targets=[],
        notes=[PICOWS_NOTE] if name == "W1" else [],
    )


# --- encode contenders -------------------------------------------------------------


def encode_streamcore(twin: str, kind: str, count: int, size: int) -> Callable[[], Any]:
    Connection = _codec(twin).Connection
    msg = text_payload(size) if kind == "text" else payload(size)

    def run() -> Any:
        conn = Connection("client")
        send = conn.send_text if kind == "text" else conn.send_binary
        total = 0
        for _ in range(count):
            total += len(send(msg))
        return total

    return run


def encode_websockets(kind: str, count: int, size: int) -> Callable[[], Any]:
    from websockets.protocol import Protocol, Side

    msg = text_payload(size) if kind == "text" else payload(size)

    def run() -> Any:
        proto = Protocol(Side.CLIENT)
        total = 0
        for _ in range(count):
            if kind == "text":
                proto.send_text(msg.encode())
            else:
                proto.send_binary(msg)
            for out in proto.data_to_send():
                total += len(out)
        return total

    return run


def encode_wsproto(kind: str, count: int, size: int) -> Callable[[], Any]:
    from wsproto.connection import Connection, ConnectionType
    from wsproto.events import BytesMessage, TextMessage

    msg = text_payload(size) if kind == "text" else payload(size)

    def run() -> Any:
        conn = Connection(ConnectionType.CLIENT)
        total = 0
        for _ in range(count):
            ev = TextMessage(data=msg) if kind == "text" else BytesMessage(data=msg)
            total += len(conn.send(ev))
        return total

    return run


def encode_workload(name: str, description: str, kind: str, count: int, size: int) -> Workload:
    head = 2 + (2 if size >= 126 else 0) + (6 if size >= 65536 else 0) + 4
    return Workload(
        group="ws",
        name=name,
        description=description,
        nbytes=count * size,
        nevents=count,
        contenders={
            CY: lambda: encode_streamcore("cython", kind, count, size),
            PY: lambda: encode_streamcore("python", kind, count, size),
            WSPROTO: lambda: encode_wsproto(kind, count, size),
            WEBSOCKETS: lambda: encode_websockets(kind, count, size),
        },
        expected=count * (head + size),
        ours=(CY, PY),
        notes=["aiohttp not measured: its WebSocketWriter only writes to a transport "
               "from a coroutine; it has no call that returns the frame bytes."],
    )


# --- masking kernels ---------------------------------------------------------------

KEY = b"\x12\x34\x56\x78"


def _check_mask(fn: Callable[[bytes], Any], data: bytes) -> None:
    from streamcore.ws._py import apply_mask

    assert bytes(fn(data)) == apply_mask(data, KEY)


def mask_ours(twin: str, size: int, calls: int) -> Callable[[], Any]:
    apply_mask = _codec(twin).apply_mask
    data = payload(size)
    _check_mask(lambda d: apply_mask(d, KEY), data)

    def run() -> Any:
        for _ in range(calls):
            apply_mask(data, KEY)
        return calls

    return run


def mask_aiohttp(size: int, calls: int) -> Callable[[], Any]:
    from aiohttp._websocket.mask import _websocket_mask_cython

    data = bytearray(payload(size))

    def once(d: bytes) -> bytearray:
        b = bytearray(d)
        _websocket_mask_cython(KEY, b)
        return b

    _check_mask(once, bytes(data))

    def run() -> Any:
        for _ in range(calls):
            _websocket_mask_cython(KEY, data)  # in place: no new object
        return calls

    return run


def mask_websockets(size: int, calls: int) -> Callable[[], Any]:
    from websockets.speedups import apply_mask

    data = payload(size)
    _check_mask(lambda d: apply_mask(d, KEY), data)

    def run() -> Any:
        for _ in range(calls):
            apply_mask(data, KEY)
        return calls

    return run


def mask_wsproto(size: int, calls: int) -> Callable[[], Any]:
    from wsproto.frame_protocol import XorMaskerSimple

    data = payload(size)
    _check_mask(lambda d: XorMaskerSimple(KEY).process(d), data)

    def run() -> Any:
        for _ in range(calls):
            XorMaskerSimple(KEY).process(data)
        return calls

    return run


def mask_workload(name: str, size: int, calls: int) -> Workload:
    return Workload(
        group="ws",
        name=name,
        description=f"masking kernel, {size:,} B payload x {calls:,} calls",
        nbytes=size * calls,
        nevents=calls,
        contenders={
            CY: lambda: mask_ours("cython", size, calls),
            PY: lambda: mask_ours("python", size, calls),
            AIOHTTP_MASK: lambda: mask_aiohttp(size, calls),
            WEBSOCKETS_MASK: lambda: mask_websockets(size, calls),
            WSPROTO_MASK: lambda: mask_wsproto(size, calls),
        },
        expected=calls,
        ours=(CY, PY),
        notes=["ours returns a new bytes object (the payload of the event); aiohttp's "
               "kernel XORs a bytearray in place and allocates nothing"],
    )


def workloads() -> list[Workload]:
    w1 = decode_workload("W1", "decode 16 x 1 MiB binary, masked (server), 64 KiB reads",
                         "binary", 16, MiB, 64 * KiB, "server")
    w2 = decode_workload("W2", "decode 1,024 x 16 KiB binary, masked (server), 64 KiB reads",
                         "binary", 1024, 16 * KiB, 64 * KiB, "server")
    w3 = decode_workload("W3", "decode 200,000 x 64 B text, masked (server), 4 KiB reads",
                         "text", 200_000, 64, 4 * KiB, "server")
    w4 = decode_workload("W4", "decode 200,000 x 64 B text, unmasked (client), 4 KiB reads",
                         "text", 200_000, 64, 4 * KiB, "client")
    for wl in (w1, w2):
        wl.targets = [(CY, WSPROTO, 1.0), (CY, WEBSOCKETS, 1.0), (CY, AIOHTTP, 1.0),
                      (CY, PICOWS, 1.0), (PY, WSPROTO, 1.5)]
    for wl in (w3, w4):
        wl.targets = [(CY, AIOHTTP, 3.0), (PY, WSPROTO, 1.5)]
    e1 = encode_workload("E1", "encode 16 x 1 MiB binary as a client (masked)",
                         "binary", 16, MiB)
    e2 = encode_workload("E2", "encode 1,024 x 16 KiB binary as a client (masked)",
                         "binary", 1024, 16 * KiB)
    e3 = encode_workload("E3", "encode 200,000 x 64 B text as a client (masked)",
                         "text", 200_000, 64)
    for wl in (e1, e2):
        wl.targets = [(CY, WEBSOCKETS, 1.0), (PY, WSPROTO, 1.5)]
    e3.targets = [(CY, WEBSOCKETS, 3.0), (PY, WSPROTO, 1.5)]
    m1 = mask_workload("M1", 64, 100_000)
    m2 = mask_workload("M2", MiB, 64)
    # 64 B: at most 1.2x the time of aiohttp's in-place kernel, i.e. >= 1/1.2 speed
    m1.targets = [(CY, AIOHTTP_MASK, round(1 / 1.2, 3)), (PY, WSPROTO_MASK, 1.5)]
    m2.targets = [(CY, WEBSOCKETS_MASK, 1.0), (PY, WSPROTO_MASK, 1.5)]
    return [w1, w2, w3, w4, e1, e2, e3, m1, m2]
