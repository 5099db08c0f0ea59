"""Grammar-aware generation with mutation, one generator per protocol.

Each generator builds a valid message from the grammar and, at a few of its
decision points, swaps the valid form for a mutated one (on average about
one mutation per input, so a finding usually has a single cause).  They draw
every choice from ``rng`` (anything with ``random()``, ``randint(a, b)`` and
``choice(seq)``): a seeded :class:`random.Random`, or the bytes of a
coverage-guided fuzzer (:class:`ByteRng`).
"""
from __future__ import annotations

import random
import struct
import zlib
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

T = TypeVar("T")

#: probability that one decision point takes a mutated form
MUTATE = 0.12


def _pick(rng: Any, valid: Sequence[T], mutated: Sequence[T], p: float = MUTATE) -> T:
    if mutated and rng.random() < p:
        return cast(T, rng.choice(mutated))
    return cast(T, rng.choice(valid))


def _payload(rng: Any, n: int) -> bytes:
    alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789"
    return bytes(rng.choice(alphabet) for _ in range(n))


# ------------------------------------------------------------------ chunked

_CRLF = [b"\r\n"]
_BAD_EOL = [b"\n", b"\r", b"\r\r\n", b"\n\r", b"\r\n\r"]
_EXT_OK = [b";a", b";a=b", b';a="q d"', b';a="x\\"y"', b" ;a=b", b"; a = b", b";a=b;c=d", b"\t;a"]
_EXT_BAD = [b";", b";a=", b';a="open', b";a\x00", b";a\nx", b";a\rx", b";a\nxx\r\n", b";a b",
            b";=b", b";a=b c", b';a="\x01"', b";" + b"a" * 40 + b"\n"]
_TRAILER_OK = [b"x-a: b", b"x-b:c", b"x-c: a b", b"x-d:"]
_TRAILER_BAD = [b"content-length: 5", b"transfer-encoding: chunked", b"Content-Length: 0",
                b"x-f: a\r\n b", b"x-f: a\r\n\tb", b"bad name: x", b"x-s : x", b"x-n: a\x00b",
                b": empty", b"nocolon", b" x-l: lead"]
_TAIL = [b"GET /next HTTP/1.1\r\nHost: example\r\n\r\n", b"X"]


def _size(rng: Any, n: int) -> bytes:
    h = b"%x" % n
    valid = [h, h.upper(), b"0" * rng.randint(1, 3) + h]
    mutated = [b"0x" + h, b"0X" + h, b"+" + h, b"-" + h, h[:1] + b"_" + h[1:] if len(h) > 1 else b"_" + h,
               b"", b" " + h, b"\t" + h, h + b" ", h + b"\t",
               b"%x" % (n + (1 << 64)), b"%x" % (n + (1 << 63)), b"0" * 20 + h,
               b"\xd9\xa1" if n == 1 else h + b"g", b"1" * 17]
    return _pick(rng, valid, mutated)  # type: ignore[no-any-return]


def chunked(rng: Any) -> bytes:
    """A chunked body (RFC 9112 §7.1), sometimes followed by the next request."""
    out = []
    for _ in range(rng.randint(0, 3)):
        n = rng.choice((1, 2, 3, 5, 10, 16, 17))
        data = _payload(rng, n)
        out.append(_size(rng, n))
        if rng.random() < 0.3:
            out.append(_pick(rng, _EXT_OK, _EXT_BAD, 0.4))
        out.append(_pick(rng, _CRLF, _BAD_EOL))
        if rng.random() < MUTATE:  # data longer or shorter than the size
            data = data + _payload(rng, rng.randint(1, 3)) if rng.random() < 0.5 else data[:-1]
        out.append(data)
        out.append(_pick(rng, _CRLF, _BAD_EOL + [b"", b"XX", b" \r\n", b"\r\r", b"\r\n\r\n"]))
    out.append(_pick(rng, [b"0", b"00", b"000"], [b"0x0", b"", b" 0", b"-0", b"0_0", b"1" * 17]))
    if rng.random() < 0.2:
        out.append(_pick(rng, _EXT_OK, _EXT_BAD, 0.4))
    out.append(_pick(rng, _CRLF, _BAD_EOL))
    if rng.random() < 0.35:
        for _ in range(rng.randint(1, 2)):
            out.append(_pick(rng, _TRAILER_OK, _TRAILER_BAD, 0.5))
            out.append(_pick(rng, _CRLF, _BAD_EOL))
    out.append(_pick(rng, _CRLF, _BAD_EOL))
    if rng.random() < 0.3:
        out.append(rng.choice(_TAIL))
    return b"".join(out)


# ---------------------------------------------------------------------- SSE

_BOM = b"\xef\xbb\xbf"
_EOL = [b"\n", b"\r\n", b"\r"]
_FIELDS_OK = [b"data: x", b"data:y", b"data", b"data:  two", b"event: e", b"event:", b"id: 1", b"id:",
              b": comment", b":", b"retry: 100", b"retry:0", b"other: z", b"data: \xc3\xa9"]
_FIELDS_ODD = [b"retry: 1.5", b"retry: -1", b"retry: +5", b"retry: 1_0", b"retry: 10 ", b"retry: \xd9\xa1",
               b"retry:", b"id: a\x00b", b"data: \xff", b"data: \xc3", b"data: \xe2\x82",
               b"\xc3\xa9: v", b"DATA: up", b"data : sp", b" data: lead", b"event: \xed\xa0\x80",
               b"data:\tx", b"id:\x00"]


def sse(rng: Any) -> bytes:
    """An event stream (WHATWG HTML §9.2.6)."""
    out = [_BOM] if rng.random() < 0.1 else []
    for _ in range(rng.randint(1, 4)):
        for _ in range(rng.randint(0, 3)):
            out.append(_pick(rng, _FIELDS_OK, _FIELDS_ODD, 0.25))
            out.append(_pick(rng, [b"\n", b"\r\n"], [b"\r"], 0.25))
        out.append(rng.choice(_EOL))
    if rng.random() < 0.15:  # an event left unterminated, or a stream ending in CR
        out.append(rng.choice([b"data: end", b"data: end\n", b"data: end\r", b"id: last\n"]))
    return b"".join(out)


# ---------------------------------------------------------------- WebSocket

def _frame(rng: Any, opcode: int, payload: bytes, fin: bool = True) -> bytes:
    """One client frame, sometimes malformed in its header or mask."""
    rsv = _pick(rng, [0], [1, 2, 4, 7], 0.08)
    b0 = (0x80 if fin else 0) | rsv << 4 | opcode
    masked = _pick(rng, [True], [False], 0.06)
    n = len(payload)
    forms = [n] if n < 126 else [126] if n < 65536 else [127]
    form = _pick(rng, forms, [126, 127], 0.1)
    if form < 126:
        head = bytes([b0, 0x80 * masked | n])
    elif form == 126:
        head = bytes([b0, 0x80 * masked | 126]) + struct.pack("!H", n)
    else:
        top = _pick(rng, [0], [1 << 63], 0.2)
        head = bytes([b0, 0x80 * masked | 127]) + struct.pack("!Q", n | top)
    if not masked:
        return head + payload
    key = bytes(rng.randint(0, 255) for _ in range(4)) if rng.random() < 0.8 else b"\x00" * 4
    return head + key + bytes(c ^ key[i & 3] for i, c in enumerate(payload))


_TEXTS = ["hi", "héllo", "€uro", "😀", "", "a" * 130]
_BAD_UTF8 = [b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"ab\xe2\x82", b"\xce"]
_CLOSE_OK = [struct.pack("!H", 1000), struct.pack("!H", 1001) + b"bye", b"", struct.pack("!H", 3000),
             struct.pack("!H", 1000) + "é".encode()]
_CLOSE_BAD = [b"\x03", struct.pack("!H", 999), struct.pack("!H", 1005), struct.pack("!H", 1006),
              struct.pack("!H", 1004), struct.pack("!H", 5000), struct.pack("!H", 1000) + b"\xff",
              struct.pack("!H", 1015), struct.pack("!H", 2999)]


def ws(rng: Any) -> bytes:
    """Client-to-server frames (RFC 6455 §5): messages, fragments with control
    frames between them, text split mid code point, a close at the end."""
    out = []
    for _ in range(rng.randint(1, 3)):
        kind = rng.random()
        if kind < 0.35:  # a text message, maybe fragmented, maybe with bad UTF-8
            data = rng.choice(_TEXTS).encode()
            if rng.random() < 0.15:
                cut = rng.randint(0, len(data))
                data = data[:cut] + rng.choice(_BAD_UTF8) + data[cut:]
            pieces = [data]
            if rng.random() < 0.5 and len(data) > 1:
                cut = rng.randint(1, len(data) - 1)  # may split a code point: valid
                pieces = [data[:cut], data[cut:]]
            for i, piece in enumerate(pieces):
                op = 1 if i == 0 else 0
                op = _pick(rng, [op], [0, 1, 2] if i == 0 else [1, 2], 0.06)
                out.append(_frame(rng, op, piece, fin=i == len(pieces) - 1))
                if i < len(pieces) - 1 and rng.random() < 0.4:  # a control frame between fragments
                    ctl = rng.choice([9, 10, 8])
                    out.append(_frame(rng, ctl, b"p" if ctl != 8 else rng.choice(_CLOSE_OK)))
        elif kind < 0.6:
            out.append(_frame(rng, 2, bytes(rng.randint(0, 255) for _ in range(rng.choice((0, 3, 126))))))
        elif kind < 0.8:  # control frames, sometimes too long or fragmented
            op = rng.choice([9, 10])
            payload = _pick(rng, [b"", b"ping"], [b"x" * 126], 0.1)
            out.append(_frame(rng, op, payload, fin=_pick(rng, [True], [False], 0.08)))
        else:  # reserved opcodes
            out.append(_frame(rng, _pick(rng, [2], [3, 7, 11, 15], 0.5), b"r"))
    if rng.random() < 0.5:
        out.append(_frame(rng, 8, _pick(rng, _CLOSE_OK, _CLOSE_BAD, 0.4)))
        if rng.random() < 0.3:
            out.append(_frame(rng, 1, b"after"))
    data = b"".join(out)
    if rng.random() < 0.05 and len(data) > 1:  # the stream stops inside a frame
        data = data[:rng.randint(1, len(data) - 1)]
    return data


GENERATORS: dict[str, Callable[[Any], bytes]] = {"chunked": chunked, "sse": sse, "ws": ws}


class ByteRng:
    """A ``random.Random`` look-alike that draws from a fuzzer's bytes, so a
    coverage-guided engine (atheris) steers the grammar's choices: each
    ``random()`` takes two bytes, each ``randint``/``choice`` one (two for a
    span over 256).  Once the bytes run out the draws come from a
    ``random.Random`` seeded with those bytes: a short input still makes a
    varied message, and the same bytes always make the same message."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0
        self._tail: random.Random | None = None

    def _byte(self) -> int:
        if self._pos >= len(self._data):
            if self._tail is None:
                self._tail = random.Random(zlib.crc32(self._data))
            return self._tail.randrange(256)
        b = self._data[self._pos]
        self._pos += 1
        return b

    def random(self) -> float:
        return (self._byte() << 8 | self._byte()) / 65536.0

    def randint(self, a: int, b: int) -> int:
        span = b - a + 1
        if span <= 256:
            return a + self._byte() % span
        return a + (self._byte() << 8 | self._byte()) % span

    def choice(self, seq: Sequence[T]) -> T:
        return seq[self.randint(0, len(seq) - 1)]


class RecordingRng:
    """Draws from ``random.Random(seed)`` and records them as the bytes that
    make :class:`ByteRng` draw the same: the seed corpus of the
    coverage-guided engine is the seeded generator's first inputs."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)
        self.recorded = bytearray()

    def random(self) -> float:
        v = self._rng.randrange(65536)
        self.recorded += v.to_bytes(2, "big")
        return v / 65536.0

    def randint(self, a: int, b: int) -> int:
        span = b - a + 1
        v = self._rng.randrange(min(span, 65536))
        self.recorded += v.to_bytes(1 if span <= 256 else 2, "big")
        return a + v

    def choice(self, seq: Sequence[T]) -> T:
        return seq[self.randint(0, len(seq) - 1)]
