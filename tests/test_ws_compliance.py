"""A compliance suite modelled on the Autobahn|TestSuite groups (written here,
not copied): 1 framing, 2 pings/pongs, 3 reserved bits, 4 opcodes,
5 fragmentation, 6 UTF-8 (with fail-fast), 7 close handling, 9 limits and big
messages.  Every case runs on both twins and in both roles (as a server the
peer's frames are masked, as a client they are not), fed whole, byte by byte
and in random splits (group 9: in reads of several sizes).

Each case states the verdict Autobahn would check: the events the
application sees, the close code we fail with, and the Close we echo.  The
summary per group is printed at the end of the run (``conftest_ws.py``).
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Optional

import pytest
from helpers import twin_fixture
from ws_helpers import close_payload, frame, run_all_splits

from streamcore import ProtocolError
from streamcore.ws import Binary, Close, Ping, Pong, Text

pytest_plugins = ["conftest_ws"]

codec = twin_fixture("ws._codec")

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
