"""Buffer kind as a dimension of the differential tests (SPEC, "Behaviour
every part shares": both twins accept every buffer alike -- bytes,
bytearray, any memoryview, contiguous or not, any item size -- and lengths
and limits count bytes).

Every entry point that takes bytes is driven with inputs split at random
points, each piece wrapped in a kind drawn from ``helpers.BUFFER_KINDS`` or
the two more kinds here (``array``: an ``array.array``, not a memoryview;
``2d``: a two-dimensional view), as fuzz/kinds.py does for the harnesses.
The oracle has two halves, checked on every call:

1. the two twins give the same outcome for the same wrapped pieces;
2. that outcome is the one plain ``bytes`` pieces give (same events, same
   error class, message, offset and close code, same stats and state).

An exception other than streamcore's documented ones (a ``BufferError`` on a
strided view, say) is recorded as an outcome, so it shows up as a
difference rather than hiding the rest of the log.
"""
from __future__ import annotations

from array import array
from types import ModuleType
from typing import Any

import pytest
from helpers import BUFFER_KINDS, as_buffer, both_twins
from hypothesis import given
from hypothesis import strategies as st
from test_chunked_props import ALPHABET, any_bytes, chunks, encode, extensions, trailers
from test_sse_props import mutated_streams, sse_bytes
from test_ws_props import messages, mutated, send_all
from ws_helpers import close_payload, frame, parse_frames

from streamcore import StreamError
from streamcore.ws.deflate import DeflateSession, PerMessageDeflate

CHUNKED = both_twins("chunked")
SSE = both_twins("sse")
WS = both_twins("ws")
TWIN_NAMES = ("python", "cython")
ROLES = ("client", "server")

#: beyond helpers.BUFFER_KINDS: a buffer that is not a memoryview, with
#: 4-byte items when the length allows; a 2-D C-contiguous view
EXTRA_KINDS = ("array", "2d")
ALL_KINDS = BUFFER_KINDS + EXTRA_KINDS


def as_any_buffer(data: bytes, kind: str) -> Any:
    """``helpers.as_buffer``, and the extra kinds, with the same bytes in order."""
    if kind == "array":
        out = array("I" if len(data) % 4 == 0 else "B")
        out.frombytes(data)
        return out
    if kind == "2d":
        if len(data) < 2 or len(data) % 2:
            return memoryview(data)  # a shape may not hold a zero; odd: one row
        return memoryview(data).cast("B", shape=[2, len(data) // 2])
    return as_buffer(data, kind)


kinds = st.sampled_from(ALL_KINDS)

# -- the oracle, shared by every protocol ---------------------------------------------


def failure(exc: BaseException, documented: tuple[type[BaseException], ...] = (StreamError,)
            ) -> tuple[Any, ...]:
    """An exception as a comparable outcome.  The documented ones (streamcore's
    own errors, with their offset and close code) are outcomes like any
    other; anything else is marked as a bug so it can never equal one."""
    if isinstance(exc, documented):
        return ("error", type(exc).__name__, str(exc), getattr(exc, "offset", None),
                getattr(exc, "close_code", None))
    return ("BUG", type(exc).__name__, str(exc))


def assert_kinds_agree(run: Any, twins: tuple[ModuleType, ModuleType], pieces: list[bytes],
                       piece_kinds: list[str], **kw: Any) -> Any:
    """``run(twin, buffers, **kw)`` gives the same log on both twins for the
    wrapped pieces, and the log plain bytes give; return that log."""
    plain = run(twins[0], list(pieces), **kw)
    assert not any(isinstance(x, tuple) and x[:1] == ("BUG",) for x in _flat(plain)), plain
    for name, twin in zip(TWIN_NAMES, twins):
        # wrapped afresh for each run: a twin must not depend on (or change) the caller's buffer
        buffers = [as_any_buffer(p, k) for p, k in zip(pieces, piece_kinds)]
        got = run(twin, buffers, **kw)
        assert got == plain, f"{name} twin, kinds {piece_kinds}, pieces {pieces!r}"
    return plain


def _flat(log: Any) -> list[Any]:
    out: list[Any] = []
    for item in log if isinstance(log, list) else [log]:
        out.append(item)
        if isinstance(item, (list, tuple)):
            out.extend(x for x in item if isinstance(x, tuple))
    return out


@st.composite
def wrapped_split(draw: Any, data: bytes) -> tuple[list[bytes], list[str]]:
    """``data`` cut at random points (empty pieces included), a kind per piece."""
    points = sorted(draw(st.lists(st.integers(0, len(data)), max_size=8)))
    pieces, last = [], 0
    for p in points:
        pieces.append(data[last:p])
        last = p
    pieces.append(data[last:])
    return pieces, [draw(kinds) for _ in pieces]


# -- chunked: the decoder ----------------------------------------------------------------


def _chunked_event(ev: Any) -> tuple[Any, ...]:
    return (type(ev).__name__, type(getattr(ev, "data", b"")).__name__) + tuple(
        getattr(ev, f) for f in ("data", "chunk_start", "chunk_end", "extensions", "headers")
        if hasattr(ev, f))


def chunked_decode(twin: ModuleType, buffers: list[Any], **kw: Any) -> list[Any]:
    dec = twin.ChunkedDecoder(**kw)
    log: list[Any] = []
    for buf in buffers:
        try:
            log.append([_chunked_event(e) for e in dec.feed(buf)])
        except Exception as exc:
            log.append(failure(exc) + tuple(_chunked_event(e) for e in getattr(exc, "events", ())))
        log.append((dec.done, dec.unused_data, tuple(dec.stats)))
    try:
        dec.eof()
        log.append("eof")
    except Exception as exc:
        log.append(failure(exc))
    return log


chunked_limits = st.fixed_dictionaries({}, optional={
    "coalesce": st.booleans(),
    "max_line_size": st.sampled_from([None, 3, 16]),
    "max_trailers_size": st.sampled_from([None, 0, 10]),
    "max_chunk_size": st.sampled_from([None, 0, 5, 300]),
})


@st.composite
def mutated_bodies(draw: Any) -> bytes:
    wire = bytearray(encode(CHUNKED[0], draw(chunks), draw(trailers)))
    for _ in range(draw(st.integers(0, 4))):
        i = draw(st.integers(0, len(wire) - 1))
        op = draw(st.sampled_from(["set", "insert", "delete"]))
        byte = draw(st.sampled_from(list(ALPHABET)))
        if op == "set":
            wire[i] = byte
        elif op == "insert":
            wire.insert(i, byte)
        elif len(wire) > 1:
            del wire[i]
    # pipelined bytes after the body end up in unused_data, whatever the kind
    return bytes(wire) + draw(st.sampled_from([b"", b"GET / HTTP/1.1\r\n"]))


@given(st.data(), st.one_of(any_bytes, mutated_bodies()), chunked_limits)
def test_chunked_decoder_kinds_agree(data: Any, wire: bytes, kw: dict[str, Any]) -> None:
    pieces, piece_kinds = data.draw(wrapped_split(wire))
    assert_kinds_agree(chunked_decode, CHUNKED, pieces, piece_kinds, **kw)


# -- chunked: the encoder ----------------------------------------------------------------


def chunked_encode(twin: ModuleType, buffers: list[Any], *, exts: list[Any],
                   how: list[str], fields: list[Any]) -> list[Any]:
    enc = twin.ChunkedEncoder()
    log: list[Any] = []
    for buf, ext, method in zip(buffers, exts, how):
        try:
            if method == "encode":
                log.append(enc.encode(buf, ext))
            else:
                # the payload is passed through as given; what counts is its bytes
                log.append([memoryview(part).tobytes() for part in enc.encode_buffers(buf, ext)])
        except Exception as exc:
            log.append(failure(exc))
        log.append(tuple(enc.stats))
    try:
        log.append(enc.finish(fields))
    except Exception as exc:
        log.append(failure(exc))
    log.append(tuple(enc.stats))
    return log


@given(st.data(), st.lists(st.binary(max_size=64), max_size=6), trailers)
def test_chunked_encoder_kinds_agree(data: Any, payloads: list[bytes], fields: Any) -> None:
    n = len(payloads)
    kw = {
        "exts": [data.draw(extensions) for _ in range(n)],
        "how": [data.draw(st.sampled_from(["encode", "encode_buffers"])) for _ in range(n)],
        "fields": fields,
    }
    piece_kinds = [data.draw(kinds) for _ in range(n)]
    log = assert_kinds_agree(chunked_encode, CHUNKED, payloads, piece_kinds, **kw)
    # and what was written decodes back to the payloads, counted in bytes
    wire = b"".join(x if isinstance(x, bytes) else b"".join(x) for x in log[0::2])
    dec = CHUNKED[0].ChunkedDecoder()
    body = b"".join(e.data for e in dec.feed(wire) if type(e).__name__ == "Data")
    assert dec.done and body == b"".join(payloads)
    assert log[-1][0] == len(body)  # stats.bytes_in: payload bytes, not items


# -- SSE ------------------------------------------------------------------------------------


def sse_decode(twin: ModuleType, buffers: list[Any], **kw: Any) -> list[Any]:
    dec = twin.SSEDecoder(**kw)
    log: list[Any] = []
    for buf in buffers:
        try:
            log.append(dec.feed(buf))
        except Exception as exc:
            log.append(failure(exc) + tuple(getattr(exc, "events", ())))
        log.append((dec.last_event_id, dec.retry, tuple(dec.stats)))
    try:
        dec.eof()
        log.append("eof")
    except Exception as exc:
        log.append(failure(exc))
    return log


sse_limits = st.fixed_dictionaries({}, optional={
    "max_line_size": st.none() | st.integers(0, 40),
    "max_event_size": st.none() | st.integers(0, 200),
})


@given(st.data(), st.one_of(sse_bytes, mutated_streams()), sse_limits)
def test_sse_decoder_kinds_agree(data: Any, stream: bytes, kw: dict[str, Any]) -> None:
    pieces, piece_kinds = data.draw(wrapped_split(stream))
    assert_kinds_agree(sse_decode, SSE, pieces, piece_kinds, **kw)


# -- WebSocket: receiving -------------------------------------------------------------------


def deflate_connection(twin: ModuleType, role: str, **kw: Any) -> Any:
    """A Connection with permessage-deflate negotiated (default parameters),
    the agreement made as a client and server would make it.  The one place
    that builds one: adapt it if the negotiated type changes."""
    offer = PerMessageDeflate()
    agreed = PerMessageDeflate().accept_offer(offer.offer_params())
    assert agreed is not None
    if role == "client":
        agreed = offer.accept_response(agreed.response_params())
    return twin.Connection(role, deflate=agreed, **kw)


def connection(twin: ModuleType, role: str, deflate: bool, **kw: Any) -> Any:
    return deflate_connection(twin, role, **kw) if deflate else twin.Connection(role, **kw)


def sent(role: str, out: bytes) -> Any:
    """What a send produced, comparable across runs: a server's frames
    exactly; a client's unmasked (its mask keys are random by design)."""
    if role == "server":
        return out
    return [(fin, rsv, op, payload) for fin, rsv, op, payload in parse_frames(out)]


def _ws_event(ev: Any) -> tuple[Any, ...]:
    return (ev, type(getattr(ev, "data", None)).__name__)


def ws_receive(twin: ModuleType, buffers: list[Any], *, role: str, deflate: bool,
               **kw: Any) -> list[Any]:
    conn = connection(twin, role, deflate, **kw)
    log: list[Any] = []
    for buf in buffers:
        try:
            log.append([_ws_event(e) for e in conn.receive_data(buf)])
        except Exception as exc:
            log.append(failure(exc) + tuple(_ws_event(e) for e in getattr(exc, "events", ())))
        log.append((conn.stats, conn.state, sent(role, conn.data_to_send())))
    try:
        conn.receive_eof()
        log.append("eof")
    except Exception as exc:
        log.append(failure(exc))
    return log


ws_limits = st.fixed_dictionaries({}, optional={
    "max_message_size": st.one_of(st.none(), st.integers(0, 200)),
    "max_frame_size": st.one_of(st.none(), st.integers(0, 200)),
    "assemble": st.booleans(),
})


@given(st.data(), st.binary(max_size=300), st.sampled_from(ROLES), st.booleans(), ws_limits)
def test_ws_receive_kinds_agree_on_arbitrary_bytes(data: Any, raw: bytes, role: str,
                                                   deflate: bool, kw: dict[str, Any]) -> None:
    pieces, piece_kinds = data.draw(wrapped_split(raw))
    assert_kinds_agree(ws_receive, WS, pieces, piece_kinds, role=role, deflate=deflate, **kw)


@given(st.data(), mutated(), ws_limits)
def test_ws_receive_kinds_agree_on_mutated_frames(data: Any, case: tuple[bytes, str],
                                                  kw: dict[str, Any]) -> None:
    wire, role = case
    pieces, piece_kinds = data.draw(wrapped_split(wire))
    assert_kinds_agree(ws_receive, WS, pieces, piece_kinds, role=role, deflate=False, **kw)


@st.composite
def compressed_streams(draw: Any) -> tuple[bytes, str]:
    """What a deflate-enabled peer sends (whole compressed messages, fragmented
    uncompressed ones, control frames, maybe a Close), with a few bytes changed."""
    role = draw(st.sampled_from(ROLES))
    sender = deflate_connection(WS[0], "server" if role == "client" else "client",
                                max_message_size=None)
    wire = bytearray(send_all(sender, draw(messages), draw(st.integers(0, 20))))
    if draw(st.booleans()):
        wire += sender.send_close(draw(st.sampled_from([1000, 1001, 3000])), "bye")
    for _ in range(draw(st.integers(0, 3))):
        if wire:
            wire[draw(st.integers(0, len(wire) - 1))] ^= 1 << draw(st.integers(0, 7))
    return bytes(wire), role


@given(st.data(), compressed_streams(), ws_limits)
def test_ws_receive_kinds_agree_with_deflate(data: Any, case: tuple[bytes, str],
                                             kw: dict[str, Any]) -> None:
    wire, role = case
    pieces, piece_kinds = data.draw(wrapped_split(wire))
    assert_kinds_agree(ws_receive, WS, pieces, piece_kinds, role=role, deflate=True, **kw)


# -- WebSocket: the masking kernel ----------------------------------------------------------


def mask_run(twin: ModuleType, buffers: list[Any]) -> Any:
    try:
        return twin.apply_mask(buffers[0], buffers[1])
    except Exception as exc:
        return failure(exc)


@given(st.binary(max_size=300), st.binary(min_size=4, max_size=4), kinds, kinds)
def test_apply_mask_kinds_agree(data: bytes, mask: bytes, data_kind: str, mask_kind: str) -> None:
    out = assert_kinds_agree(mask_run, WS, [data, mask], [data_kind, mask_kind])
    assert out == bytes(b ^ mask[i % 4] for i, b in enumerate(data))


# -- WebSocket: sending ---------------------------------------------------------------------

# payloads often a multiple of 4 bytes long, so that "itemsize4" is a real
# 4-byte-item view; control payloads up to 200 bytes, so the 125-byte limit
# is met with views whose len() is a quarter of their size
payloads = st.one_of(
    st.binary(max_size=200),
    st.integers(0, 60).flatmap(lambda n: st.binary(min_size=4 * n, max_size=4 * n)),
)
send_ops = st.lists(st.one_of(
    st.tuples(st.just("binary"), payloads, st.booleans()),
    st.tuples(st.just("text"), st.text(max_size=40), st.booleans()),
    st.tuples(st.just("ping"), payloads),
    st.tuples(st.just("pong"), payloads),
), max_size=8)


def ws_send(twin: ModuleType, buffers: list[Any], *, ops: list[Any], role: str,
            deflate: bool) -> list[Any]:
    conn = connection(twin, role, deflate)
    log: list[Any] = []
    payload_of = iter(buffers)
    for op in ops:
        try:
            if op[0] == "text":
                out = conn.send_text(op[1], final=op[2])
            elif op[0] == "binary":
                out = conn.send_binary(next(payload_of), final=op[2])
            elif op[0] == "ping":
                out = conn.send_ping(next(payload_of))
            else:
                out = conn.send_pong(next(payload_of))
            log.append(sent(role, out))
        except Exception as exc:
            # ValueError: a control payload over 125 bytes; StateError: a
            # fragmented message goes on with the other kind of data
            log.append(failure(exc, (StreamError, ValueError)))
        log.append((conn.stats, conn.state))
    log.append(sent(role, conn.send_close(1000, "done")))
    log.append(conn.stats)
    return log


@given(st.data(), send_ops, st.sampled_from(ROLES), st.booleans())
def test_ws_send_kinds_agree(data: Any, ops: list[Any], role: str, deflate: bool) -> None:
    buffers = [op[1] for op in ops if op[0] != "text"]
    piece_kinds = [data.draw(kinds) for _ in buffers]
    assert_kinds_agree(ws_send, WS, buffers, piece_kinds, ops=ops, role=role, deflate=deflate)


# -- every entry point, every kind, one fixed input (a readable map of the contract) ------

BODY = b"4;a=b\r\nWiki\r\n5\r\npedia\r\n0\r\nx-t: 1\r\n\r\n"
STREAM = b"\xef\xbb\xbfid: 7\nretry: 300\ndata: caf\xc3\xa9\r\ndata: x\r\r: c\n\n"
MSGS = frame(0x1, b"caf\xc3\xa9", fin=False) + frame(0x9, b"ping") + \
    frame(0x0, b"!") + frame(0x2, bytes(range(8))) + frame(0x8, close_payload(1000, b"ok"))
WIRE = {"server": MSGS, "client": b"".join(
    frame(f[2], f[3], fin=f[0], mask=None) for f in parse_frames(MSGS))}

every_kind = pytest.mark.parametrize("kind", ALL_KINDS)
every_split = pytest.mark.parametrize("step", [1, 3, 1 << 20], ids=["bytewise", "by3", "whole"])


def _split(data: bytes, step: int) -> list[bytes]:
    return [data[i:i + step] for i in range(0, len(data), step)]


@every_kind
@every_split
def test_chunked_decoder_takes_every_kind(kind: str, step: int) -> None:
    pieces = _split(BODY, step)
    log = assert_kinds_agree(chunked_decode, CHUNKED, pieces, [kind] * len(pieces))
    assert log[-1] == "eof" and log[-2][2][0] == len(BODY)  # stats.bytes_in counts bytes


@every_kind
def test_chunked_encoder_takes_every_kind(kind: str) -> None:
    data = [b"Wiki", b"pedia!", b"", bytes(range(12))]
    assert_kinds_agree(chunked_encode, CHUNKED, data, [kind] * 4,
                       exts=[(), [("a", "b")], (), ()], how=["encode", "encode_buffers"] * 2,
                       fields=[("x-t", "1")])


@every_kind
@every_split
def test_sse_decoder_takes_every_kind(kind: str, step: int) -> None:
    pieces = _split(STREAM, step)
    log = assert_kinds_agree(sse_decode, SSE, pieces, [kind] * len(pieces), max_line_size=40)
    assert log[-2][2][0] == len(STREAM)  # stats.bytes_in counts bytes


@every_kind
@every_split
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("assemble", [True, False], ids=["assemble", "stream"])
def test_ws_receive_takes_every_kind(kind: str, step: int, role: str, assemble: bool) -> None:
    pieces = _split(WIRE[role], step)
    log = assert_kinds_agree(ws_receive, WS, pieces, [kind] * len(pieces), role=role,
                             deflate=False, assemble=assemble, max_message_size=8)
    assert log[-2][0].bytes_in == len(WIRE[role])  # stats.bytes_in counts bytes


@every_kind
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("deflate", [False, True], ids=["plain", "deflate"])
def test_ws_send_takes_every_kind(kind: str, role: str, deflate: bool) -> None:
    ops = [("binary", bytes(range(16)), True), ("binary", b"abcd", False), ("ping", b"1234"),
           ("binary", b"efgh", True), ("pong", b""), ("ping", b"\xff" * 124)]
    buffers = [op[1] for op in ops]
    assert_kinds_agree(ws_send, WS, buffers, [kind] * len(buffers), ops=ops, role=role,
                       deflate=deflate)


@every_kind
def test_apply_mask_takes_every_kind(kind: str) -> None:
    data = bytes(range(40))
    assert_kinds_agree(mask_run, WS, [data, b"\x01\x02\x03\x04"], [kind, kind])


@pytest.mark.parametrize("twin", WS, ids=TWIN_NAMES)
@pytest.mark.parametrize("method", ["send_ping", "send_pong"])
def test_control_payload_limit_counts_bytes_not_items(twin: ModuleType, method: str) -> None:
    # 40 four-byte items: len() says 40, the payload is 160 bytes, over the 125 allowed
    payload = memoryview(array("I", range(40)))
    assert payload.nbytes == 160
    conn = twin.Connection("server")
    with pytest.raises(ValueError, match="125 bytes"):
        getattr(conn, method)(payload)
    assert conn.stats.frames_out == 0


# -- permessage-deflate: the session's own entry points --------------------------------------


@every_kind
def test_deflate_session_takes_every_kind(kind: str) -> None:
    # DeflateSession is pure Python, shared by both twins.  Failed before: a
    # strided view raised BufferError (zlib wants contiguous memory), and a
    # view of 4-byte items counted len() items, not bytes, in the counters.
    message = bytes(range(40)) * 3  # 120 bytes: a real "I" view for itemsize4
    sender, plain_sender = DeflateSession(), DeflateSession()
    wire = sender.compress(as_any_buffer(message, kind))
    assert wire == plain_sender.compress(message)
    assert sender.bytes_before_compression == len(message)
    assert sender.bytes_after_compression == len(wire)
    receiver = DeflateSession()
    half = len(wire) // 2 // 4 * 4  # keep "itemsize4" pieces a multiple of 4 where it can
    out = receiver.decompress(as_any_buffer(wire[:half], kind), False, None)
    out += receiver.decompress(as_any_buffer(wire[half:], kind), True, None)
    assert type(out) is bytes and out == message
    assert receiver.bytes_before_decompression == len(wire)
    assert receiver.bytes_after_decompression == len(message)


@pytest.mark.parametrize("twin", WS, ids=TWIN_NAMES)
@every_kind
def test_deflate_connection_round_trip_takes_every_kind(twin: ModuleType, kind: str) -> None:
    # the same through a negotiated pair of Connections on each twin: what
    # the sender counts is bytes, and the receiver gets the message back
    message = bytes(range(64)) * 4
    client = deflate_connection(twin, "client")
    server = deflate_connection(twin, "server")
    wire = client.send_binary(as_any_buffer(message, kind))
    assert client.stats.bytes_before_compression == len(message)
    events = server.receive_data(as_any_buffer(wire, kind))
    assert [(type(e).__name__, e.data) for e in events] == [("Binary", message)]


@pytest.mark.parametrize("twin", CHUNKED, ids=TWIN_NAMES)
@every_kind
def test_chunked_extension_and_trailer_bytes_take_every_kind(twin: ModuleType, kind: str) -> None:
    # names and values may be given as bytes (or str): any buffer, in order
    def b(value: bytes) -> Any:
        return as_any_buffer(value, kind)

    enc = twin.ChunkedEncoder()
    head = enc.encode(b"ab", [(b(b"name"), b(b"va l")), (b(b"flag"), None)])
    tail = enc.finish([(b(b"x-t"), b(b"1234"))], [(b(b"e1"), b(b"tokn"))])
    assert head == b'2;name="va l";flag\r\nab\r\n'
    assert tail == b"0;e1=tokn\r\nx-t: 1234\r\n\r\n"
