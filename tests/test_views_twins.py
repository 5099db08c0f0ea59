"""``views=True`` across the twins and every buffer kind (differential).

``ChunkedDecoder(views=True)`` and ``ws.Connection(views=True)`` hand out
memoryviews; which payloads are views of the buffer fed, which are views of a
copy, which stay ``bytes``/``str``, what a server leaves unmasked in the
caller's buffer, and what a view shows once later calls have run must be the
same in both twins, for every buffer kind, readable-only or writable:
bytes, bytearray, a memoryview, a non-contiguous view and a view with
multi-byte items.

Each run records, per call: the events (a view as its bytes, whether it is
read-only and whether it aliases the fed buffer or a copy), the error (class,
message, offset, close code, the events before it), the fed buffer's bytes
after the call, and the decoder's stats and state; at the end, what every
view handed out shows after all later calls.  The two twins must give the
same record.  Two rules hold besides, whatever the twin:

- a view is valid until the next call, and past it: nothing of a buffer is
  kept or written to after its call returns (a later call never changes a
  view of an earlier buffer);
- with one read buffer reused for every call (a transport's), a view of the
  buffer shows the new bytes after the next read, a view of a copy does not.
"""
from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest
from helpers import both_twins, cut_at, twin_fixture
from hypothesis import given
from hypothesis import strategies as st
from test_buffer_kinds import deflate_connection
from test_ws_props import messages, send_all
from ws_helpers import MASK, frame

import streamcore
from streamcore.ws import Binary, Text

CHUNKED = both_twins("chunked")
WS = both_twins("ws")
codec = twin_fixture("ws")

#: the kinds of buffer fed; each comes read-only and writable where it can
KINDS = ("bytes", "bytearray", "memoryview", "strided", "itemsize")


def wrap(data: bytes, kind: str, writable: bool) -> tuple[Any, Any]:
    """``data`` as a buffer of ``kind`` (the same bytes in order), and the
    object that owns its memory (what a view of it has as ``.obj``).

    ``bytes`` is always read-only and ``bytearray`` always writable;
    ``strided`` is every second byte of a doubled buffer (not contiguous);
    ``itemsize`` a C-contiguous view with 4-byte items when the length
    allows (2-byte, else 1-byte, so that the bytes stay ``data``).
    """
    if kind == "bytes":
        out = bytes(data)
        return out, out
    if kind == "bytearray":
        out = bytearray(data)
        return out, out
    if kind == "strided":
        doubled = bytearray(2 * len(data))
        doubled[::2] = data
        owner: Any = doubled if writable else bytes(doubled)
        return memoryview(owner)[::2], owner
    owner = bytearray(data) if writable else bytes(data)
    view = memoryview(owner)
    if kind == "itemsize":
        view = view.cast("I" if len(data) % 4 == 0 else "H" if len(data) % 2 == 0 else "B")
    return view, owner


def logical(buffer: Any) -> bytes:
    """The bytes of ``buffer`` in order (a strided view's too)."""
    return memoryview(buffer).tobytes()


def payload(value: Any, owner: Any) -> Any:
    """An event field as a comparable value: a memoryview as its bytes and
    where it points (the fed buffer or a copy) and whether it is read-only."""
    if type(value) is memoryview:
        where = "fed" if value.obj is owner else "copy"
        return ("view", where, value.readonly, value.format, value.ndim, value.tobytes())
    return value


def described(event: Any, owner: Any) -> tuple[Any, ...]:
    return (type(event).__name__,) + tuple(payload(v, owner) for v in event)


def run(feed: Any, pieces: list[bytes], kinds: list[tuple[str, bool]],
        after: Any) -> dict[str, Any]:
    """Feed each piece, wrapped as its kind, in a buffer of its own; the record."""
    log: list[Any] = []
    held: list[tuple[memoryview, bytes]] = []  # every view handed out, and its bytes then
    for piece, (kind, writable) in zip(pieces, kinds):
        buffer, owner = wrap(piece, kind, writable)
        try:
            events = feed(buffer)
            error = None
        except streamcore.ProtocolError as exc:
            events = exc.events
            error = (type(exc).__name__, str(exc), exc.offset, exc.close_code)
        except (streamcore.StateError, TypeError) as exc:
            # fed after the end; a read-only buffer where a writable one is needed
            events = []
            error = (type(exc).__name__, str(exc))
        log.append(([described(e, owner) for e in events], error, logical(buffer), after()))
        held.extend((v, v.tobytes()) for e in events for v in e if type(v) is memoryview)
        if error is not None and error[0] != "TypeError":
            break  # a TypeError changes nothing: the next read goes on
    # nothing of an earlier buffer is kept or written to by a later call
    assert [v.tobytes() == then for v, then in held] == [True] * len(held)
    return {"log": log, "views": [v.tobytes() for v, _ in held]}


def run_chunked(twin: ModuleType, pieces: list[bytes], kinds: list[tuple[str, bool]],
                **kw: Any) -> dict[str, Any]:
    dec = twin.ChunkedDecoder(views=True, **kw)
    return run(dec.feed, pieces, kinds, lambda: (dec.stats, dec.done, dec.unused_data))


def run_ws(twin: ModuleType, role: str, pieces: list[bytes], kinds: list[tuple[str, bool]],
           deflate: bool, **kw: Any) -> dict[str, Any]:
    if deflate:
        conn = deflate_connection(twin, role, views=True, **kw)
    else:
        conn = twin.Connection(role, views=True, **kw)
    return run(conn.receive_data, pieces, kinds,
               lambda: (conn.stats, conn.state, conn.message_in_progress))


@st.composite
def split(draw: Any, wire: bytes) -> tuple[list[bytes], list[tuple[str, bool]]]:
    """``wire`` cut at random places, each piece given a buffer kind."""
    points = draw(st.lists(st.integers(0, len(wire)), max_size=6))
    pieces = cut_at(wire, points)
    kinds = []
    for _ in pieces:
        kind = draw(st.sampled_from(KINDS))
        writable = kind == "bytearray" or (kind != "bytes" and draw(st.booleans()))
        kinds.append((kind, writable))
    return pieces, kinds


# -- chunked -------------------------------------------------------------------------------

chunk_bodies = st.lists(st.tuples(st.binary(min_size=1, max_size=200),
                                  st.sampled_from([b"", b";a=b", b';q="x"'])), max_size=4)


def chunked_wire(bodies: list[tuple[bytes, bytes]], tail: bytes) -> bytes:
    """A chunked body (extensions, a trailer field) and bytes after it."""
    return b"".join(b"%x%s\r\n%s\r\n" % (len(b), e, b) for b, e in bodies) + \
        b"0\r\nx-sum: 1\r\n\r\n" + tail


@given(st.data(), chunk_bodies, st.binary(max_size=20), st.booleans())
def test_chunked_twins_agree_with_views_on_every_buffer_kind(data, bodies, tail, garbage):
    # garbage: the tail goes inside the body (an error somewhere), not after it
    wire = chunked_wire(bodies, b"") if garbage else chunked_wire(bodies, tail)
    if garbage:
        wire = wire[:data.draw(st.integers(0, len(wire)))] + tail
    pieces, kinds = data.draw(split(wire))
    py, c = (run_chunked(twin, pieces, kinds) for twin in CHUNKED)
    assert py == c


#: every (kind, writable) a buffer can be
KINDS_RW = [(k, w) for k in KINDS for w in (False, True)
            if (k, w) not in (("bytes", True), ("bytearray", False))]


@pytest.mark.parametrize("kind,writable", KINDS_RW)
def test_chunked_views_point_where_the_contract_says(kind, writable):
    """Contiguous buffers are aliased (read-only exactly when they are); a
    non-contiguous one is copied once, its views read-only; the same in both twins."""
    wire = chunked_wire([(b"hello", b";a=b"), (b"world", b"")], b"NEXT")
    pieces = [wire[:10], wire[10:]]  # the first piece ends inside "hello"
    for twin in CHUNKED:
        record = run_chunked(twin, pieces, [(kind, writable)] * 2)
        views = [f for events, *_ in record["log"] for ev in events for f in ev
                 if isinstance(f, tuple) and f[:1] == ("view",)]
        copied = kind == "strided"
        assert [(v[1], v[2], v[5]) for v in views] == [
            ("copy" if copied else "fed", copied or not writable, body)
            for body in (b"hel", b"lo", b"world")]
        assert record["log"][-1][-1][1:] == (True, b"NEXT")


# -- WebSocket -----------------------------------------------------------------------------

roles = st.sampled_from(["client", "server"])


@st.composite
def ws_streams(draw: Any) -> tuple[str, bytes, bool]:
    """(role, what its peer sends, deflate): whole and fragmented messages of
    every kind, maybe compressed, maybe a Close, maybe a few flipped bits."""
    role = draw(roles)
    deflate = draw(st.booleans())
    peer = "client" if role == "server" else "server"
    sender = deflate_connection(WS[0], peer, max_message_size=None) if deflate \
        else WS[0].Connection(peer, max_message_size=None)
    msgs = draw(messages)
    if draw(st.booleans()):  # a payload big enough to be unmasked another way (translate)
        big = draw(st.binary(min_size=500, max_size=3000))
        msgs.insert(draw(st.integers(0, len(msgs))),
                    Text(big.decode("latin-1")) if draw(st.booleans()) else Binary(big))
    wire = bytearray(send_all(sender, msgs, draw(st.sampled_from([0, 7, 40, 700]))))
    if draw(st.booleans()):
        wire += sender.send_close(1000, "bye")
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2]))):
        if wire:
            wire[draw(st.integers(0, len(wire) - 1))] ^= 1 << draw(st.integers(0, 7))
    return role, bytes(wire), deflate


@given(st.data(), ws_streams(), st.booleans())
def test_ws_twins_agree_with_views_on_every_buffer_kind(data, stream, assemble):
    role, wire, deflate = stream
    pieces, kinds = data.draw(split(wire))
    py, c = (run_ws(twin, role, pieces, kinds, deflate, assemble=assemble) for twin in WS)
    assert py == c


# Each path a payload can take, with what it gives: "fed" (a view of the
# buffer fed), "copy" (a view of a copy), or the unchanged type.
BIG = bytes(range(256)) * 300  # 76800 bytes: a 64-bit length, unmasked by translate
O_TEXT, O_BIN, O_CONT, O_CLOSE, O_PING = 1, 2, 0, 8, 9


def _paths() -> list[Any]:
    def f(op: int, data: bytes, role: str, **kw: Any) -> bytes:
        return frame(op, data, mask=MASK if role == "server" else None, **kw)

    cases = []
    for role in ("server", "client"):
        whole = f(O_BIN, b"whole", role)
        big = f(O_BIN, BIG, role)
        hl = 14 if role == "server" else 10  # a 64-bit length, and the mask key
        cases += [
            (role, "whole binary in one read", [whole], {}, [("fed", b"whole")]),
            (role, "empty binary", [f(O_BIN, b"", role)], {}, [("fed", b"")]),
            (role, "header split, payload whole", [big[:3], big[3:]], {}, [("fed", BIG)]),
            (role, "payload split across reads", [big[:1000], big[1000:]], {},
             [("copy", BIG)]),
            (role, "fragmented", [f(O_BIN, b"frag", role, fin=False) + f(O_PING, b"p", role)
                                  + f(O_CONT, b"ments", role)], {},
             [("bytes", b"p"), ("copy", b"fragments")]),
            (role, "streamed pieces", [big[:1000], big[1000:50000], big[50000:]],
             {"assemble": False}, [("fed", BIG[:1000 - hl]), ("fed", BIG[1000 - hl:50000 - hl]),
                                   ("fed", BIG[50000 - hl:])]),
            (role, "streamed fragments", [f(O_BIN, b"ab", role, fin=False)
                                          + f(O_CONT, b"", role, fin=False)
                                          + f(O_CONT, b"cd", role)],
             {"assemble": False}, [("fed", b"ab"), ("fed", b"cd")]),
            (role, "text and control frames", [f(O_TEXT, "héllo".encode(), role)
                                               + f(O_PING, b"ping", role)
                                               + f(O_CLOSE, b"\x03\xe8bye", role)], {},
             [("str", "héllo"), ("bytes", b"ping"), ("close", (1000, "bye"))]),
        ]
    return cases


def shape(event: Any) -> tuple[str, Any]:
    data = getattr(event, "data", None)
    if type(data) is memoryview:
        return ("view", data)
    if type(event).__name__ == "Close":
        return ("close", (event.code, event.reason))
    return (type(data).__name__, data)


@pytest.mark.parametrize("role,what,reads,kw,expected", _paths(),
                         ids=[f"{c[0]}: {c[1]}" for c in _paths()])
@pytest.mark.parametrize("kind", KINDS)
def test_ws_views_point_where_the_contract_says(codec, role, what, reads, kw, expected, kind):
    """Per path and buffer kind (writable where it can be: a server needs
    it): a view of the buffer fed, a view of a copy (a non-contiguous buffer
    is copied once, so all of its payloads are), or the unchanged type."""
    writable = kind != "bytes"
    conn = codec.Connection(role, views=True, **kw)
    got = []
    for read in reads:
        buffer, owner = wrap(read, kind, writable)
        if role == "server" and kind == "bytes":
            with pytest.raises(TypeError, match="writable buffer"):
                conn.receive_data(buffer)
            return
        for event in conn.receive_data(buffer):
            how, data = shape(event)
            if how == "view":
                how = "fed" if data.obj is owner else "copy"
                if how == "fed":
                    assert data.readonly == (not writable)
                data = data.tobytes()
            got.append((how, data))
    if kind == "strided":
        expected = [("copy" if how == "fed" else how, data) for how, data in expected]
    assert got == expected


def test_ws_server_views_unmask_a_writable_non_contiguous_buffer_in_a_copy(codec):
    """A writable buffer that is not contiguous is taken, as a copy (one
    contiguous view of its memory cannot exist); the buffer is left as it was."""
    wire = frame(O_BIN, b"strided payload") + frame(O_BIN, BIG)
    doubled = bytearray(2 * len(wire))
    doubled[::2] = wire
    before = bytes(doubled)
    first, second = codec.Connection("server", views=True).receive_data(memoryview(doubled)[::2])
    assert (first.data, second.data) == (b"strided payload", BIG)
    # both views of the one copy (a bytearray, unmasked there), none of the buffer
    assert first.data.obj is second.data.obj and type(first.data.obj) is bytearray
    assert doubled == before
    with pytest.raises(TypeError, match="writable buffer"):
        codec.Connection("server", views=True).receive_data(memoryview(before)[::2])


@given(st.data(), ws_streams(), st.booleans())
def test_ws_views_after_the_next_read_of_a_reused_buffer(data, stream, assemble):
    """One bytearray overwritten before each read, as a transport's: after
    the next read a view of the buffer shows the new bytes, a view of a copy
    its own; the twins agree on which shows what."""
    role, wire, deflate = stream
    pieces = cut_at(wire, data.draw(st.lists(st.integers(0, len(wire)), max_size=6)))
    records = []
    for twin in WS:
        conn = deflate_connection(twin, role, views=True, assemble=assemble) if deflate \
            else twin.Connection(role, views=True, assemble=assemble)
        buffer = bytearray(max(map(len, pieces)))
        held: list[memoryview] = []
        log = []
        for piece in pieces:
            # after the previous call: what its views show once the buffer is overwritten
            buffer[:len(piece)] = piece
            log.append([v.tobytes() for v in held])
            try:
                events = conn.receive_data(memoryview(buffer)[:len(piece)])
            except streamcore.ProtocolError as exc:
                log.append(("error", str(exc), exc.offset))
                break
            held = [e.data for e in events if type(getattr(e, "data", None)) is memoryview]
            log.append([(type(e).__name__, v.tobytes(), v.obj is buffer) for e in events
                        for v in (getattr(e, "data", None),) if type(v) is memoryview])
        records.append(log)
    assert records[0] == records[1]
