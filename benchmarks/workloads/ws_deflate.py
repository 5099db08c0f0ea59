"""permessage-deflate (RFC 7692): compressing and inflating message payloads.

zlib does the work for every contender, so these rows measure each
library's per-message overhead around it (the tail handling, bounds,
copies) and show that streamcore's bounded inflate costs nothing next to
wsproto's unbounded one.  No targets: the issue sets none for deflate.
"""
from __future__ import annotations

import random
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from benchmarks.harness import Workload

LIMIT = 1 << 20  # the message limit given to the contenders that have one


def _text_messages(count: int, size: int) -> list[bytes]:
    words = [b"stream", b"core", b"frame", b"socket", b"deflate", b"{", b"}", b'"id":', b" ", b"\n"]
    rng = random.Random(size)
    out = []
    for _ in range(count):
        msg = bytearray()
        while len(msg) < size:
            msg += rng.choice(words)
        out.append(bytes(msg[:size]))
    return out


def _compressed(messages: list[bytes]) -> list[bytes]:
    from streamcore.ws.deflate import DeflateSession

    session = DeflateSession()
    return [session.compress(m) for m in messages]


# -- contenders ---------------------------------------------------------------


def _ours_inflate(payloads: list[bytes]) -> Callable[[], int]:
    from streamcore.ws.deflate import DeflateSession

    def run() -> int:
        session = DeflateSession()
        return sum(len(session.decompress(p, True, LIMIT)) for p in payloads)

    return run


def _websockets_inflate(payloads: list[bytes]) -> Callable[[], int]:
    from websockets.extensions.permessage_deflate import PerMessageDeflate
    from websockets.frames import Frame, Opcode

    frames = [Frame(Opcode.BINARY, p, fin=True, rsv1=True) for p in payloads]

    def run() -> int:
        ext = PerMessageDeflate(False, False, 15, 15)
        return sum(len(ext.decode(f, max_size=LIMIT).data) for f in frames)

    return run


def _wsproto_inflate(payloads: list[bytes]) -> Callable[[], int]:
    from wsproto.extensions import PerMessageDeflate
    from wsproto.frame_protocol import Opcode, RsvBits

    proto: Any = SimpleNamespace(client=False)
    rsv = RsvBits(True, False, False)

    def run() -> int:
        ext = PerMessageDeflate()
        total = 0
        for p in payloads:
            ext.frame_inbound_header(proto, Opcode.BINARY, rsv, len(p))
            data = ext.frame_inbound_payload_data(proto, p)
            tail = ext.frame_inbound_complete(proto, True)
            total += len(data) + len(tail)  # type: ignore[arg-type]
        return total

    return run


def _ours_deflate(messages: list[bytes]) -> Callable[[], int]:
    from streamcore.ws.deflate import DeflateSession

    def run() -> int:
        session = DeflateSession()
        return sum(len(session.compress(m)) for m in messages)

    return run


def _websockets_deflate(messages: list[bytes]) -> Callable[[], int]:
    from websockets.extensions.permessage_deflate import PerMessageDeflate
    from websockets.frames import Frame, Opcode

    frames = [Frame(Opcode.BINARY, m) for m in messages]

    def run() -> int:
        # compress_settings as our default (level 6, memLevel 8)
        ext = PerMessageDeflate(False, False, 15, 15, {"level": 6, "memLevel": 8})
        return sum(len(ext.encode(f).data) for f in frames)

    return run


def _wsproto_deflate(messages: list[bytes]) -> Callable[[], int]:
    from wsproto.extensions import PerMessageDeflate
    from wsproto.frame_protocol import Opcode, RsvBits

    proto: Any = SimpleNamespace(client=False)
    rsv = RsvBits(False, False, False)

    def run() -> int:
        ext = PerMessageDeflate()  # zlib's default level (6) and memLevel (8)
        return sum(len(ext.frame_outbound(proto, Opcode.BINARY, rsv, m, True)[1]) for m in messages)

    return run


def workloads() -> list[Workload]:
    out = []
    for name, count, size in (("D1", 1000, 16384), ("D2", 20000, 64)):
        messages = _text_messages(count, size)
        payloads = _compressed(messages)
        total = count * size
        out.append(
            Workload(
                group="ws-deflate",
                name=f"{name}-inflate",
                description=f"inflate {count:,} x {size:,}-byte text messages, context takeover",
                nbytes=total,
                nevents=count,
                contenders={
                    "streamcore": lambda p=payloads: _ours_inflate(p),
                    "websockets": lambda p=payloads: _websockets_inflate(p),
                    "wsproto": lambda p=payloads: _wsproto_inflate(p),
                },
                expected=total,
                ours=("streamcore",),
                notes=[
                    "streamcore and websockets bound the output (1 MiB here); wsproto does not",
                    "pure Python on both twins: zlib does the work",
                ],
            )
        )
        out.append(
            Workload(
                group="ws-deflate",
                name=f"{name}-deflate",
                description=f"compress {count:,} x {size:,}-byte text messages, context takeover",
                nbytes=total,
                nevents=count,
                contenders={
                    "streamcore": lambda m=messages: _ours_deflate(m),
                    "websockets": lambda m=messages: _websockets_deflate(m),
                    "wsproto": lambda m=messages: _wsproto_deflate(m),
                },
                expected=sum(len(p) for p in payloads),
                ours=("streamcore",),
                notes=["same zlib settings for all (level 6, memLevel 8, 15-bit window)"],
            )
        )
    return out
