"""A compliance suite modelled on the Autobahn|TestSuite groups (written here,
not copied): 1 framing, 2 pings/pongs, 3 reserved bits, 4 opcodes,
5 fragmentation, 6 UTF-8 (with fail-fast), 7 close handling, 9 limits and big
messages, 12 permessage-deflate messages (the peer's payloads from plain zlib,
ours inflated by plain zlib) and 13 permessage-deflate parameters (the
no_context_takeover x max_window_bits matrix).  Every case runs on both twins and in both roles (as a server the
peer's frames are masked, as a client they are not), fed whole, byte by byte
and in random splits (group 9: in reads of several sizes).

Each case states the verdict Autobahn would check: the events the
application sees, the close code we fail with, and the Close we echo.  The
summary per group is printed at the end of the run (``conftest_ws.py``).
"""
from __future__ import annotations

import os
import random
import tracemalloc
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Optional

import pytest
from helpers import twin_fixture
from ws_helpers import PeerDeflater, close_payload, frame, parse_frames, run_all_splits

from streamcore import ProtocolError
from streamcore.ws import Binary, Close, Ping, Pong, Text
from streamcore.ws.deflate import NegotiatedDeflate

pytest_plugins = ["conftest_ws"]

codec = twin_fixture("ws")

Wire = Callable[[Optional[bytes]], bytes]  # mask (None: unmasked) -> bytes on the wire


@dataclass
class Case:
    id: str
    description: str
    wire: Wire
    events: list[Any]
    fail: int | None = None  # the close code we must fail with
    echo: bytes | None = None  # the Close payload we must send back
    reads: list[int] | None = None  # group 9: read sizes instead of all splits
    fail_fast: list[Wire] | None = None  # pieces: we must fail on the last one
    kw: dict[str, Any] = field(default_factory=dict)


CASES: list[Case] = []


def case(id: str, description: str, wire: Wire, events: list[Any], **kw: Any) -> None:
    CASES.append(Case(id, description, wire, events, **kw))


def F(op: int, payload: bytes = b"", **kw: Any) -> Wire:
    return lambda mask: frame(op, payload, mask=mask, **kw)


def seq(*parts: Wire) -> Wire:
    return lambda mask: b"".join(p(mask) for p in parts)


TEXT, BINARY, CONT, CLOSE, PING, PONG = 0x1, 0x2, 0x0, 0x8, 0x9, 0xA
BYE = F(CLOSE, close_payload(1000))

# -- 1 Framing ---------------------------------------------------------------------------
for i, n in enumerate([0, 125, 126, 127, 128, 65535, 65536, 65537], 1):
    case(f"1.1.{i}", f"text message, payload {n}", seq(F(TEXT, b"*" * n), BYE),
         [Text("*" * n), Close(1000, "")], echo=close_payload(1000))
    case(f"1.2.{i}", f"binary message, payload {n}", seq(F(BINARY, b"\xfe" * n), BYE),
         [Binary(b"\xfe" * n), Close(1000, "")], echo=close_payload(1000))

# -- 2 Pings/Pongs -----------------------------------------------------------------------
case("2.1", "ping without payload", F(PING), [Ping(b"")])
case("2.2", "ping with a small text payload", F(PING, b"Hello, world!"), [Ping(b"Hello, world!")])
case("2.3", "ping with a small binary payload", F(PING, b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff"),
     [Ping(b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff")])
case("2.4", "ping with a 125-byte payload", F(PING, b"\xfe" * 125), [Ping(b"\xfe" * 125)])
case("2.5", "ping with a 126-byte payload", F(PING, b"\xfe" * 126, width=16), [], fail=1002)
case("2.6", "ping 125 bytes, then close", seq(F(PING, b"\xfe" * 125), BYE),
     [Ping(b"\xfe" * 125), Close(1000, "")], echo=close_payload(1000))
case("2.7", "unsolicited pong without payload", F(PONG), [Pong(b"")])
case("2.8", "unsolicited pong with payload", F(PONG, b"unsolicited pong payload"),
     [Pong(b"unsolicited pong payload")])
case("2.9", "unsolicited pong, then ping", seq(F(PONG, b"x"), F(PING, b"y")),
     [Pong(b"x"), Ping(b"y")])
case("2.10", "10 pings in a row", seq(*[F(PING, str(i).encode()) for i in range(10)]),
     [Ping(str(i).encode()) for i in range(10)])
case("2.11", "ping with a 126-byte payload in the 7-bit field", lambda m: bytes(
    (0x89, (0x80 if m else 0) | 126)) + (126).to_bytes(2, "big") + (m or b"") + b"x" * 126,
    [], fail=1002)

# -- 3 Reserved bits -------------------------------------------------------------------
for i, (rsv, op, before) in enumerate([
    (4, TEXT, False), (2, TEXT, True), (6, TEXT, True), (1, TEXT, True), (5, BINARY, True),
    (3, PING, True), (7, CLOSE, True), (4, CONT, True), (4, PONG, True),
], 1):
    wire = seq(F(TEXT, b"Hello"), F(op, b"x" if op != CLOSE else close_payload(1000), rsv=rsv),
               F(PING, b"after")) if before else F(op, b"x", rsv=rsv)
    case(f"3.{i}", f"RSV {rsv:03b} on opcode {op:#x}" + (" after a valid frame" if before else ""),
         wire, [Text("Hello")] if before else [], fail=1002)

# -- 4 Opcodes ----------------------------------------------------------------------------
for i, op in enumerate([3, 4, 5, 6, 7], 1):
    case(f"4.1.{i}", f"reserved data opcode {op:#x}", seq(F(TEXT, b"a"), F(op, b"x" * i),
                                                           F(PING)), [Text("a")], fail=1002)
for i, op in enumerate([0xB, 0xC, 0xD, 0xE, 0xF], 1):
    case(f"4.2.{i}", f"reserved control opcode {op:#x}", seq(F(TEXT, b"a"), F(op), F(PING)),
         [Text("a")], fail=1002)

# -- 5 Fragmentation ---------------------------------------------------------------------
case("5.1", "ping in 2 fragments", seq(F(PING, b"frag", fin=False), F(CONT, b"ment")), [],
     fail=1002)
case("5.2", "pong in 2 fragments", seq(F(PONG, b"frag", fin=False), F(CONT, b"ment")), [],
     fail=1002)
case("5.3", "text in 2 fragments", seq(F(TEXT, b"frag", fin=False), F(CONT, b"ment")),
     [Text("fragment")])
case("5.4", "text in 3 fragments, the middle one empty",
     seq(F(TEXT, b"frag", fin=False), F(CONT, b"", fin=False), F(CONT, b"ment")),
     [Text("fragment")])
case("5.5", "text in 1-byte fragments",
     seq(F(TEXT, b"f", fin=False), *[F(CONT, bytes([c]), fin=False) for c in b"ragmen"],
         F(CONT, b"t")), [Text("fragment")])
case("5.6", "text in 2 fragments with a ping between",
     seq(F(TEXT, b"frag", fin=False), F(PING, b"ping"), F(CONT, b"ment")),
     [Ping(b"ping"), Text("fragment")])
case("5.7", "text in 2 fragments with a pong between",
     seq(F(TEXT, b"frag", fin=False), F(PONG, b"pong"), F(CONT, b"ment")),
     [Pong(b"pong"), Text("fragment")])
case("5.8", "binary in 2 fragments with pings between every fragment",
     seq(F(PING, b"0"), F(BINARY, b"\x01", fin=False), F(PING, b"1"), F(CONT, b"\x02", fin=False),
         F(PING, b"2"), F(CONT, b"\x03")),
     [Ping(b"0"), Ping(b"1"), Ping(b"2"), Binary(b"\x01\x02\x03")])
case("5.9", "continuation (FIN) without a message", seq(F(CONT, b"x"), F(TEXT, b"y")), [],
     fail=1002)
case("5.10", "continuation (not FIN) without a message",
     seq(F(CONT, b"x", fin=False), F(CONT, b"y")), [], fail=1002)
case("5.11", "continuation after a complete message",
     seq(F(TEXT, b"done"), F(CONT, b"x")), [Text("done")], fail=1002)
case("5.12", "text start, then a new text message", seq(F(TEXT, b"a", fin=False), F(TEXT, b"b")),
     [], fail=1002)
case("5.13", "binary start, then a new binary message",
     seq(F(BINARY, b"a", fin=False), F(PING), F(BINARY, b"b")), [Ping(b"")], fail=1002)
case("5.14", "two fragmented messages in a row",
     seq(F(TEXT, b"a", fin=False), F(CONT, b"b"), F(BINARY, b"c", fin=False), F(CONT, b"d")),
     [Text("ab"), Binary(b"cd")])
case("5.15", "close fragmented", seq(F(CLOSE, close_payload(1000), fin=False)), [], fail=1002)

# -- 6 UTF-8 ------------------------------------------------------------------------------
HELLO = "Hello-µ@ßöäüàá-UTF-8!!".encode()
KOSME = "κόσμε".encode()
case("6.1.1", "empty text frame", F(TEXT), [Text("")])
case("6.1.2", "empty text in 3 empty fragments",
     seq(F(TEXT, b"", fin=False), F(CONT, b"", fin=False), F(CONT)), [Text("")])
case("6.1.3", "text with empty fragments around content",
     seq(F(TEXT, b"", fin=False), F(CONT, b"middle", fin=False), F(CONT)), [Text("middle")])
for i in range(len(HELLO) + 1):
    case(f"6.2.{i + 1}", f"valid UTF-8 in two fragments cut at byte {i}",
         seq(F(TEXT, HELLO[:i], fin=False), F(CONT, HELLO[i:])), [Text(HELLO.decode())])
case("6.3.1", "valid UTF-8 in 1-byte fragments",
     seq(*[F(TEXT if j == 0 else CONT, HELLO[j:j + 1], fin=j == len(HELLO) - 1)
           for j in range(len(HELLO))]), [Text(HELLO.decode())])
BAD = KOSME + b"\xed\xa0\x80" + b"edited"
case("6.3.2", "invalid UTF-8 (a surrogate) in one frame", F(TEXT, BAD), [], fail=1007)
for i in range(1, len(BAD)):
    case(f"6.3.{i + 2}", f"invalid UTF-8 in two fragments cut at byte {i}",
         seq(F(TEXT, BAD[:i], fin=False), F(CONT, BAD[i:])), [], fail=1007)

# 6.4: fail fast: the bad byte arrives, the rest of the message never does
case("6.4.1", "fail fast: bad code point in the first of 3 fragments",
     seq(F(TEXT, KOSME + b"\xf4\x90\x80\x80", fin=False)), [], fail=1007,
     fail_fast=[F(TEXT, KOSME + b"\xf4\x90\x80\x80", fin=False)])
case("6.4.2", "fail fast: bad byte starts the second fragment",
     seq(F(TEXT, KOSME, fin=False), F(CONT, b"\xf4\x90\x80\x80", fin=False)), [], fail=1007,
     fail_fast=[F(TEXT, KOSME, fin=False), F(CONT, b"\xf4\x90\x80\x80", fin=False)])
case("6.4.3", "fail fast: inside one frame whose payload has not all arrived",
     lambda m: frame(TEXT, KOSME + b"\xf4\x90\x80\x80" + b"x" * 1000, mask=m)[:30], [],
     fail=1007, fail_fast=[lambda m: frame(TEXT, KOSME + b"\xf4\x90\x80\x80" + b"x" * 1000,
                                           mask=m)[:30]])
case("6.4.4", "fail fast: a truncated sequence then a new lead byte",
     seq(F(TEXT, b"ok\xe2\x82", fin=False), F(CONT, b"\xe2", fin=False)), [], fail=1007,
     fail_fast=[F(TEXT, b"ok\xe2\x82", fin=False), F(CONT, b"\xe2", fin=False)])


def _utf8_cases() -> list[tuple[str, bytes]]:
    """(description, bytes) in the spirit of Markus Kuhn's UTF-8 stress test."""
    out: list[tuple[str, bytes]] = []
    for cp in [0x0, 0x7F, 0x80, 0x7FF, 0x800, 0xD7FF, 0xE000, 0xFFFD, 0xFFFE, 0xFFFF, 0x10000,
               0x10FFFF]:
        out.append((f"boundary code point U+{cp:04X}", chr(cp).encode()))
    out += [(f"{n}-byte sequence, last byte missing", chr(cp).encode()[:-1])
            for n, cp in [(2, 0x80), (3, 0x800), (4, 0x10000)]]
    out += [(f"lone continuation byte {b:#x}", bytes([b])) for b in (0x80, 0x8F, 0xBF)]
    out += [(f"impossible byte {b:#x}", bytes([b])) for b in (0xC0, 0xC1, 0xF5, 0xF8, 0xFC, 0xFE,
                                                               0xFF)]
    out += [("overlong '/' in 2 bytes", b"\xc0\xaf"), ("overlong '/' in 3 bytes", b"\xe0\x80\xaf"),
            ("overlong '/' in 4 bytes", b"\xf0\x80\x80\xaf"),
            ("largest overlong in 3 bytes", b"\xe0\x9f\xbf"),
            ("largest overlong in 4 bytes", b"\xf0\x8f\xbf\xbf"),
            ("U+110000", b"\xf4\x90\x80\x80"), ("5-byte sequence", b"\xf8\x88\x80\x80\x80")]
    out += [(f"surrogate U+{cp:04X}", b"\xed" + bytes([0x80 | ((cp >> 6) & 0x3F),
                                                          0x80 | (cp & 0x3F)]))
            for cp in (0xD800, 0xDB7F, 0xDC00, 0xDFFF)]
    out += [("surrogate pair", b"\xed\xa0\x80\xed\xb0\x80")]
    out += [(f"lead byte {b:#x} followed by a space", bytes([b]) + b" ")
            for b in (0xC2, 0xDF, 0xE0, 0xEF, 0xF0, 0xF4)]
    return out


for i, (desc, payload) in enumerate(_utf8_cases(), 1):
    try:
        valid = bool(payload.decode("utf-8")) or True
    except UnicodeDecodeError:
        valid = False
    for j, cut in enumerate(("whole", "1-byte fragments")):
        if cut == "whole":
            wire = F(TEXT, b"<" + payload + b">")
        else:
            body = b"<" + payload + b">"
            wire = seq(*[F(TEXT if k == 0 else CONT, body[k:k + 1], fin=k == len(body) - 1)
                         for k in range(len(body))])
        case(f"6.{5 + j}.{i}", f"{desc} ({cut}): {'valid' if valid else 'invalid'}", wire,
             [Text("<" + payload.decode() + ">")] if valid else [],
             fail=None if valid else 1007)

# -- 7 Close handling ---------------------------------------------------------------------
case("7.1.1", "text, then close", seq(F(TEXT, b"Hello"), BYE),
     [Text("Hello"), Close(1000, "")], echo=close_payload(1000))
case("7.1.2", "close, then close again (ignored)", seq(BYE, BYE), [Close(1000, "")],
     echo=close_payload(1000))
case("7.1.3", "close, then ping (ignored)", seq(BYE, F(PING, b"x")), [Close(1000, "")],
     echo=close_payload(1000))
case("7.1.4", "close, then text (ignored)", seq(BYE, F(TEXT, b"x")), [Close(1000, "")],
     echo=close_payload(1000))
case("7.1.5", "close between the fragments of a message",
     seq(F(TEXT, b"frag", fin=False), BYE, F(CONT, b"ment")), [Close(1000, "")],
     echo=close_payload(1000))
case("7.1.6", "large message, ping, close",
     seq(F(BINARY, b"\xaa" * 256 * 1024), F(PING, b"p"), BYE),
     [Binary(b"\xaa" * 256 * 1024), Ping(b"p"), Close(1000, "")], echo=close_payload(1000),
     reads=[1000, 65536])
case("7.1.7", "close, then garbage (ignored)", lambda m: BYE(m) + b"\xff\x00 not a frame",
     [Close(1000, "")], echo=close_payload(1000))
case("7.3.1", "close without payload", F(CLOSE), [Close(None, "")], echo=b"")
case("7.3.2", "close with a 1-byte payload", F(CLOSE, b"\x03"), [], fail=1002)
case("7.3.3", "close with code 1000", BYE, [Close(1000, "")], echo=close_payload(1000))
case("7.3.4", "close with code and reason", F(CLOSE, close_payload(1000, b"Hello World!")),
     [Close(1000, "Hello World!")], echo=close_payload(1000))
case("7.3.5", "close with a 123-byte reason", F(CLOSE, close_payload(1000, b"*" * 123)),
     [Close(1000, "*" * 123)], echo=close_payload(1000))
case("7.3.6", "close with a 124-byte reason (frame too long)",
     F(CLOSE, close_payload(1000, b"*" * 124)), [], fail=1002)
case("7.5.1", "close reason with invalid UTF-8", F(CLOSE, close_payload(1000, BAD)), [],
     fail=1007)
for i, code in enumerate([1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999,
                          4000, 4999], 1):
    case(f"7.7.{i}", f"close with valid code {code}", F(CLOSE, close_payload(code)),
         [Close(code, "")], echo=close_payload(code))
for i, code in enumerate([0, 999, 1004, 1005, 1006, 1016, 1100, 2000, 2999], 1):
    case(f"7.9.{i}", f"close with invalid code {code}", F(CLOSE, close_payload(code)), [],
         fail=1002)
for i, code in enumerate([5000, 65535], 1):
    case(f"7.13.{i}", f"close with out-of-range code {code}", F(CLOSE, close_payload(code)), [],
         fail=1002)

# -- 9 Limits and big messages --------------------------------------------------------
MiB = 1 << 20
BIG = dict(max_message_size=None)
for i, n in enumerate([64 * 1024, 256 * 1024, MiB, 4 * MiB], 1):
    case(f"9.1.{i}", f"text message of {n:,} bytes", F(TEXT, b"a" * n), [Text("a" * n)],
         reads=[65536, 4 * 65536], kw=BIG)
    case(f"9.2.{i}", f"binary message of {n:,} bytes", F(BINARY, b"\x01" * n),
         [Binary(b"\x01" * n)], reads=[65536, 4 * 65536], kw=BIG)
for i, size in enumerate([64, 4096, 65536, MiB], 1):
    n = 4 * MiB
    data = os.urandom(n)
    text = ("é" * (n // 2)).encode()
    case(f"9.3.{i}", f"4 MiB text in frames of {size:,} bytes",
         seq(*[F(TEXT if k == 0 else CONT, text[k:k + size], fin=k + size >= n)
               for k in range(0, n, size)]), [Text(text.decode())], reads=[65536], kw=BIG)
    case(f"9.4.{i}", f"4 MiB binary in frames of {size:,} bytes",
         seq(*[F(BINARY if k == 0 else CONT, data[k:k + size], fin=k + size >= n)
               for k in range(0, n, size)]), [Binary(data)], reads=[65536], kw=BIG)
case("9.7.1", "1,000 small text messages", seq(*[F(TEXT, f"msg{k}".encode()) for k in range(1000)]),
     [Text(f"msg{k}") for k in range(1000)], reads=[4096, 1])
case("9.8.1", "1,000 small binary messages",
     seq(*[F(BINARY, f"msg{k}".encode()) for k in range(1000)]),
     [Binary(f"msg{k}".encode()) for k in range(1000)], reads=[4096, 1])
case("9.9.1", "message over max_message_size", F(BINARY, b"x" * 2000), [], fail=1009,
     kw=dict(max_message_size=1000))
case("9.9.2", "fragmented message over max_message_size",
     seq(F(BINARY, b"x" * 600, fin=False), F(CONT, b"x" * 600)), [], fail=1009,
     kw=dict(max_message_size=1000))
case("9.9.3", "frame over max_frame_size", F(TEXT, b"x" * 2000), [], fail=1009,
     kw=dict(max_frame_size=1000))
case("9.9.4", "many frames each under max_frame_size, message fits",
     seq(*[F(TEXT if k == 0 else CONT, b"x" * 100, fin=k == 9) for k in range(10)]),
     [Text("x" * 1000)], kw=dict(max_frame_size=100, max_message_size=1000))


# -- 12 permessage-deflate (messages) ----------------------------------------------------
# The peer's compressed payloads come from plain zlib (ws_helpers.PeerDeflater), not from
# streamcore's own compressor, so this checks our inflating against an independent deflater.
PMD = dict(deflate=NegotiatedDeflate())
KiB = 1024
PMD_SIZES = [0, 1, 16, 64, 256, KiB, 4 * KiB, 16 * KiB, 64 * KiB, 256 * KiB]


def pmd_text(n: int) -> str:
    """Compressible text with multi-byte characters (so fragment cuts of the
    compressed stream land inside UTF-8 sequences once inflated)."""
    rng = random.Random(n)
    words = ["stream", "core", "κόσμε", "frame", "é", "deflate", " ", "€𝄞", "\n"]
    out: list[str] = []
    size = 0
    while size < n:
        w = rng.choice(words)
        out.append(w)
        size += len(w.encode())
    text = "".join(out).encode()[:n].decode("utf-8", "ignore")
    return text + "x" * (n - len(text.encode()))  # exactly n bytes of UTF-8


def pmd_binary(n: int) -> bytes:
    """Half incompressible, half repetitive binary data."""
    rng = random.Random(n)
    half = n // 2
    return rng.randbytes(half) + (bytes(range(256)) * ((n - half) // 256 + 1))[:n - half]


def CF(op: int, payload: bytes, pieces: int = 1, **kw: Any) -> Wire:
    """A compressed message: RSV1 on the first frame only, the payload cut in ``pieces``."""
    if pieces == 1:
        return F(op, payload, rsv=4, **kw)
    step = max(1, -(-len(payload) // pieces))
    cuts = [payload[k:k + step] for k in range(0, max(len(payload), 1), step)]
    while len(cuts) < pieces:
        cuts.append(b"")
    return seq(*[F(op if j == 0 else CONT, c, rsv=4 if j == 0 else 0, fin=j == len(cuts) - 1)
                 for j, c in enumerate(cuts)])


def _pmd_reads(n: int) -> dict[str, Any]:
    # small messages: whole, byte by byte and random splits; big ones: reads of two sizes
    return {} if n <= 4 * KiB else dict(reads=[1000, 65536])


for i, n in enumerate(PMD_SIZES, 1):
    t = pmd_text(n)
    b = pmd_binary(n)
    case(f"12.1.{i}", f"compressed text, {n:,} bytes, one frame",
         CF(TEXT, PeerDeflater().compress(t.encode())), [Text(t)], kw=PMD, **_pmd_reads(n))
    case(f"12.2.{i}", f"compressed binary, {n:,} bytes, one frame",
         CF(BINARY, PeerDeflater().compress(b)), [Binary(b)], kw=PMD, **_pmd_reads(n))
    case(f"12.3.{i}", f"compressed text, {n:,} bytes, 4 fragments",
         CF(TEXT, PeerDeflater().compress(t.encode()), 4), [Text(t)], kw=PMD, **_pmd_reads(n))
    case(f"12.4.{i}", f"compressed binary, {n:,} bytes, 4 fragments",
         CF(BINARY, PeerDeflater().compress(b), 4), [Binary(b)], kw=PMD, **_pmd_reads(n))
    # context takeover: 5 messages from one compressor, later ones refer back to earlier
    peer = PeerDeflater()
    msgs = [t] * 3 + [t[: n // 2], t]
    case(f"12.5.{i}", f"5 compressed text messages of up to {n:,} bytes, context takeover",
         seq(*[CF(TEXT, peer.compress(m.encode()), 1 + k % 3) for k, m in enumerate(msgs)]),
         [Text(m) for m in msgs], kw=PMD, **_pmd_reads(5 * n))
    peer = PeerDeflater()
    bmsgs = [b, b[::-1], b]
    case(f"12.6.{i}", f"3 compressed binary messages of {n:,} bytes, context takeover",
         seq(*[CF(BINARY, peer.compress(m), 1 + k) for k, m in enumerate(bmsgs)]),
         [Binary(m) for m in bmsgs], kw=PMD, **_pmd_reads(3 * n))
# control frames between the fragments of compressed messages
_c = PeerDeflater().compress(pmd_text(300).encode())
case("12.7.1", "compressed text in 3 fragments with pings between",
     seq(F(TEXT, _c[:10], rsv=4, fin=False), F(PING, b"1"), F(CONT, _c[10:50], fin=False),
         F(PING, b"2"), F(CONT, _c[50:])),
     [Ping(b"1"), Ping(b"2"), Text(pmd_text(300))], kw=PMD)
case("12.7.2", "compressed text in 2 fragments with a pong between",
     seq(F(TEXT, _c[:1], rsv=4, fin=False), F(PONG, b"p"), F(CONT, _c[1:])),
     [Pong(b"p"), Text(pmd_text(300))], kw=PMD)
case("12.7.3", "close between the fragments of a compressed message",
     seq(F(TEXT, _c[:20], rsv=4, fin=False), BYE, F(CONT, _c[20:])), [Close(1000, "")],
     echo=close_payload(1000), kw=PMD)
_peer = PeerDeflater()
_m1 = _peer.compress(b"abc" * 50)
_m2 = _peer.compress(b"abc" * 50 + b"xyz")
case("12.7.4", "compressed, uncompressed, compressed messages with pings between",
     seq(F(BINARY, _m1, rsv=4), F(PING, b"x"), F(BINARY, b"plain"),
         F(BINARY, _m2[:3], rsv=4, fin=False), F(PING, b"y"), F(CONT, _m2[3:])),
     [Binary(b"abc" * 50), Ping(b"x"), Binary(b"plain"), Ping(b"y"),
      Binary(b"abc" * 50 + b"xyz")], kw=PMD)
case("12.7.5", "a final deflate block (BFINAL) ends a message; the next starts afresh",
     seq(F(TEXT, zlib.compress(b"done", wbits=-15), rsv=4),
         F(TEXT, PeerDeflater().compress(b"again"), rsv=4)),
     [Text("done"), Text("again")], kw=PMD)

# failures
_ok = PeerDeflater().compress(b"Hello, compressed world" * 4)
case("12.8.1", "RSV1 on a continuation frame",
     seq(F(TEXT, _ok[:5], rsv=4, fin=False), F(CONT, _ok[5:], rsv=4)), [], fail=1002, kw=PMD)
case("12.8.2", "RSV1 on a continuation of an uncompressed message",
     seq(F(TEXT, b"plain", fin=False), F(CONT, _ok, rsv=4)), [], fail=1002, kw=PMD)
case("12.8.3", "RSV1 on a ping", seq(F(TEXT, _ok, rsv=4), F(PING, b"x", rsv=4)),
     [Text("Hello, compressed world" * 4)], fail=1002, kw=PMD)
case("12.8.4", "RSV1 on a close", F(CLOSE, close_payload(1000), rsv=4), [], fail=1002, kw=PMD)
case("12.8.5", "RSV1 on a pong between fragments",
     seq(F(TEXT, _ok[:5], rsv=4, fin=False), F(PONG, b"x", rsv=4), F(CONT, _ok[5:])), [],
     fail=1002, kw=PMD)
case("12.8.6", "RSV1 when deflate was not negotiated", F(TEXT, _ok, rsv=4), [], fail=1002)
case("12.8.7", "RSV1 on binary when deflate was not negotiated",
     seq(F(BINARY, b"ok"), F(BINARY, _ok, rsv=4)), [Binary(b"ok")], fail=1002)
for i, junk in enumerate([b"\xff\xff\xff\xff", b"\x07" + b"\x00" * 8,
                          b"\x00\x05\x00\x00\x00hello"], 1):  # stored block, LEN != ~NLEN
    case(f"12.9.{i}", f"corrupt deflate data ({junk[:4].hex()}...)", F(BINARY, junk, rsv=4), [],
         fail=1007, kw=PMD)
case("12.9.4", "corrupt deflate data in the last fragment",
     # after a sync-flushed message the stream sits before a stored block's LEN/NLEN
     seq(F(BINARY, _ok, rsv=4, fin=False), F(CONT, b"\x05\x00\x00\x00hello")), [], fail=1007,
     kw=PMD)
case("12.9.5", "data after a final deflate block in the same message",
     F(BINARY, zlib.compress(b"end", wbits=-15) + b"\x00", rsv=4), [], fail=1007, kw=PMD)
_BOMB = PeerDeflater().compress(bytes(8 * MiB))
case("12.10.1", "compressed message inflating past max_message_size (8 MiB of zeros)",
     F(BINARY, _BOMB, rsv=4), [], fail=1009, reads=[1000, 65536],
     kw=dict(deflate=NegotiatedDeflate(), max_message_size=64 * KiB))
case("12.10.2", "fragmented compressed message inflating past max_message_size",
     CF(BINARY, PeerDeflater().compress(bytes(200 * KiB)), 8), [], fail=1009,
     kw=dict(deflate=NegotiatedDeflate(), max_message_size=64 * KiB))
case("12.10.3", "compressed message inflating to exactly max_message_size",
     F(BINARY, PeerDeflater().compress(bytes(64 * KiB)), rsv=4), [Binary(bytes(64 * KiB))],
     kw=dict(deflate=NegotiatedDeflate(), max_message_size=64 * KiB))
# fail fast: the first fragment already inflates past the limit; the rest never comes
_BOMB_HEAD = F(BINARY, _BOMB[:len(_BOMB) // 2], rsv=4, fin=False)
case("12.10.4", "fail fast: 1009 on the first fragment of a compressed bomb",
     _BOMB_HEAD, [], fail=1009, fail_fast=[_BOMB_HEAD], reads=[1000, 65536],
     kw=dict(deflate=NegotiatedDeflate(), max_message_size=16 * KiB))
case("12.11.1", "invalid UTF-8 after inflating a text message",
     F(TEXT, PeerDeflater().compress(BAD), rsv=4), [], fail=1007, kw=PMD)
case("12.11.2", "invalid UTF-8 after inflating a fragmented text message",
     CF(TEXT, PeerDeflater().compress(b"valid " * 40 + BAD), 3), [], fail=1007, kw=PMD)
case("12.11.3", "truncated UTF-8 at the end of an inflated text message",
     F(TEXT, PeerDeflater().compress("κόσμε".encode()[:-1]), rsv=4), [], fail=1007, kw=PMD)
_peer = PeerDeflater()
_v = _peer.compress(b"first ok")
case("12.11.4", "valid compressed text, then invalid UTF-8 in the next (context takeover)",
     seq(F(TEXT, _v, rsv=4), F(TEXT, _peer.compress(b"second \xc0\xaf"), rsv=4)),
     [Text("first ok")], fail=1007, kw=PMD)


# -- running a case ------------------------------------------------------------------------


def _feed(codec: Any, role: str, pieces: list[bytes], kw: dict[str, Any]) -> tuple[Any, ...]:
    conn = codec.Connection(role, **kw)
    events: list[Any] = []
    err: ProtocolError | None = None
    try:
        for p in pieces:
            events.extend(conn.receive_data(p))
    except ProtocolError as exc:
        events.extend(exc.events)
        err = exc
    return conn, events, err


@pytest.mark.parametrize("role", ["server", "client"])
@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_case(codec: Any, c: Case, role: str) -> None:
    mask = b"\x9a\x0b\xc1\x5e" if role == "server" else None
    wire = c.wire(mask)
    if c.reads is None:
        events, err = run_all_splits(codec, role, wire, **c.kw)
        conn, _, _ = _feed(codec, role, [wire], c.kw)
    else:
        results = []
        for size in c.reads:
            pieces = [wire[i:i + size] for i in range(0, len(wire), size)]
            results.append(_feed(codec, role, pieces, c.kw))
        conn, events, err = results[0]
        for _, ev, er in results[1:]:
            assert ev == events
            assert (type(er), getattr(er, "offset", None)) == (type(err),
                                                               getattr(err, "offset", None))
    assert events == c.events
    if c.fail is None:
        assert err is None, err
    else:
        assert err is not None and err.close_code == c.fail, err
    if c.echo is not None:
        out = conn.data_to_send()
        assert out[0] == 0x88
        got = out[6:] if role == "client" else out[2:]
        if role == "client":
            got = bytes(b ^ out[2 + i % 4] for i, b in enumerate(got))
        assert got == c.echo
    if c.fail_fast is not None:
        # the error comes with the last piece: before the message could end
        conn = codec.Connection(role, **c.kw)
        *head, last = [w(mask) for w in c.fail_fast]
        for p in head:
            conn.receive_data(p)
        with pytest.raises(ProtocolError) as info:
            conn.receive_data(last)
        assert info.value.close_code == c.fail


# -- 12 (what we send): our compressed frames inflated by an independent zlib ------------


@dataclass
class Sent:
    id: str
    description: str
    messages: list[Any]  # str (send_text) or bytes (send_binary)


SENT: list[Sent] = []
for i, n in enumerate(PMD_SIZES, 1):
    SENT.append(Sent(f"12.12.{i}", f"we send 3 compressed text messages of {n:,} bytes",
                     [pmd_text(n), pmd_text(n), pmd_text(n)[::-1]]))
    SENT.append(Sent(f"12.13.{i}", f"we send 3 compressed binary messages of {n:,} bytes",
                     [pmd_binary(n), pmd_binary(n), b"\x00" * n]))


@pytest.mark.parametrize("role", ["server", "client"])
@pytest.mark.parametrize("c", SENT, ids=[c.id for c in SENT])
def test_pmd_sent(codec: Any, c: Sent, role: str) -> None:
    conn = codec.Connection(role, deflate=NegotiatedDeflate(), max_message_size=None)
    inflater = zlib.decompressobj(wbits=-15)  # one context: we take it over between messages
    for m in c.messages:
        wire = conn.send_text(m) if isinstance(m, str) else conn.send_binary(m)
        frames = parse_frames(wire)
        assert len(frames) == 1
        fin, rsv, op, payload = frames[0]
        assert (fin, rsv, op) == (True, 4, TEXT if isinstance(m, str) else BINARY)
        assert wire[1] & 0x80 == (0x80 if role == "client" else 0)  # clients mask
        assert not payload.endswith(b"\x00\x00\xff\xff")  # §7.2.1: tail removed
        raw = m.encode() if isinstance(m, str) else m
        assert inflater.decompress(payload + b"\x00\x00\xff\xff") == raw
        if len(raw) >= 4 * KiB and raw.count(raw[:1]) == len(raw):
            assert len(payload) < len(raw) // 10  # it really compressed


@pytest.mark.parametrize("role", ["server", "client"])
@pytest.mark.parametrize("n", ["12.10.5"])
def test_pmd_bomb_memory(codec: Any, n: str, role: str) -> None:
    """An 8 MiB bomb against a 64 KiB limit: 1009 without ever holding the 8 MiB."""
    mask = b"\x9a\x0b\xc1\x5e" if role == "server" else None
    wire = frame(BINARY, _BOMB, rsv=4, mask=mask)
    conn = codec.Connection(role, deflate=NegotiatedDeflate(), max_message_size=64 * KiB)
    tracemalloc.start()
    try:
        with pytest.raises(ProtocolError) as info:
            conn.receive_data(wire)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert info.value.close_code == 1009
    assert peak < 2 * MiB, peak


# -- 13 permessage-deflate (parameters) ------------------------------------------------------


@dataclass
class Params:
    id: str
    client_nct: bool
    server_nct: bool
    client_bits: int
    server_bits: int


PARAMS: list[Params] = []
_k = 0
for _cn in (False, True):
    for _sn in (False, True):
        for _cb in (8, 9, 12, 15):
            for _sb in (8, 9, 12, 15):
                _k += 1
                PARAMS.append(Params(f"13.{1 + 2 * _cn + _sn}.{_k}", _cn, _sn, _cb, _sb))


def _window_probe(bits: int, seed: int) -> bytes:
    """Messages with repeats at distances just beyond the window and just inside it: a
    compressor using a bigger window than agreed emits distances the peer cannot inflate."""
    rng = random.Random(seed)
    w = 1 << bits
    block = rng.randbytes(w - 300 if w > 512 else 200)
    far = rng.randbytes(w + 64)
    return block + block + far + far + pmd_text(3000).encode()


@pytest.mark.parametrize("role", ["server", "client"])
@pytest.mark.parametrize("p", PARAMS, ids=[p.id for p in PARAMS])
def test_pmd_params(codec: Any, p: Params, role: str) -> None:
    """``role`` sends; the other side receives.  Both Connections get the agreed
    parameters; what the sender emits is checked against a plain zlib inflater with the
    agreed window, and the peer's messages from a plain zlib deflater inflate on our side."""
    agreed = NegotiatedDeflate(client_no_context_takeover=p.client_nct,
                               server_no_context_takeover=p.server_nct,
                               client_max_window_bits=p.client_bits,
                               server_max_window_bits=p.server_bits)
    sender = codec.Connection(role, deflate=agreed)
    receiver = codec.Connection("client" if role == "server" else "server", deflate=agreed)
    bits = p.client_bits if role == "client" else p.server_bits
    nct = p.client_nct if role == "client" else p.server_nct
    messages = [_window_probe(bits, 1), _window_probe(bits, 1), b"", b"same " * 50,
                b"same " * 50, _window_probe(bits, 2)]
    wire = b"".join(sender.send_binary(m) if k % 2 else sender.send_text(m.decode("latin-1"))
                    for k, m in enumerate(messages))
    expected = [Binary(m) if k % 2 else Text(m.decode("latin-1")) for k, m in enumerate(messages)]
    # 1. round trip between a streamcore client and a streamcore server
    assert receiver.receive_data(wire) == expected
    # 2. an independent inflater with the agreed window (shared, or fresh per message)
    frames = parse_frames(wire)
    assert [f[1] for f in frames] == [4] * len(messages)
    shared = zlib.decompressobj(wbits=-bits)
    for f, m in zip(frames, expected):
        raw = m.data.encode() if isinstance(m, Text) else m.data
        if nct:  # §7.1.1: each message stands alone
            assert zlib.decompressobj(wbits=-bits).decompress(f[3] + b"\x00\x00\xff\xff") == raw
        else:
            assert shared.decompress(f[3] + b"\x00\x00\xff\xff") == raw
    if not nct:
        # context takeover: a repeated short message refers back into the window
        assert len(frames[4][3]) < len(frames[3][3])
    # 3. the peer's side compressed by plain zlib with the agreed window and takeover
    peer = PeerDeflater(bits, takeover=not nct)
    mask = b"\x12\x34\x56\x78" if role == "client" else None
    wire = b"".join(frame(BINARY, peer.compress(m), rsv=4, mask=mask) for m in messages)
    fresh = codec.Connection("client" if role == "server" else "server", deflate=agreed)
    assert [e.data for e in fresh.receive_data(wire)] == messages
