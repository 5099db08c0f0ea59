"""Zero-copy receive: ``ws.Connection(views=True)``, on both twins.

Every ``Binary.data`` is a memoryview, valid until the next
``receive_data``; a whole uncompressed binary message in one read (and,
streamed, each uncompressed binary piece) is a view into the buffer fed,
unmasked there in place by a server, which then needs a writable buffer.
Everything else is what the copying default gives.
"""
from __future__ import annotations

import os
from typing import Any

import pytest
from helpers import both_twins, cut_at, twin_fixture
from hypothesis import given
from hypothesis import strategies as st
from ws_helpers import MASK, frame

import streamcore
from streamcore.ws.deflate import NegotiatedDeflate

codec = twin_fixture("ws")
PY, C = both_twins("ws")

OP_TEXT, OP_BINARY, OP_CONT, OP_CLOSE, OP_PING = 1, 2, 0, 8, 9


def snapshot(events: list[Any]) -> list[Any]:
    """The events with each Binary's view copied out (before the next feed)."""
    out = []
    for ev in events:
        if type(ev).__name__ == "Binary":
            assert type(ev.data) is memoryview
            ev = ev._replace(data=bytes(ev.data))
        out.append(ev)
    return out


def feed_all(mod: Any, role: str, pieces: list[bytes], *, views: bool, **kw: Any) -> dict[str, Any]:
    """Feed ``pieces`` through one reused bytearray (a transport's read buffer)."""
    conn = mod.Connection(role, views=views, **kw)
    buffer = bytearray(max((len(p) for p in pieces), default=0))
    events: list[Any] = []
    error = None
    for piece in pieces:
        buffer[:len(piece)] = piece
        try:
            got = conn.receive_data(memoryview(buffer)[:len(piece)])
        except streamcore.ProtocolError as exc:
            got = exc.events
            error = (type(exc).__name__, str(exc), exc.offset, exc.close_code)
        events.extend(snapshot(got) if views else got)
        del got
        if error:
            break
    return {"events": events, "error": error, "state": conn.state}


# -- behaviour ----------------------------------------------------------------------

def test_server_views_alias_the_buffer_unmasked_in_place(codec):
    payload = os.urandom(300)
    wire = frame(OP_BINARY, payload)
    buffer = bytearray(wire)
    (event,) = codec.Connection("server", views=True).receive_data(buffer)
    assert type(event.data) is memoryview and event.data.obj is buffer
    assert bytes(event.data) == payload
    # unmasked in place: the payload now sits plain in the caller's buffer
    assert buffer[-300:] == payload
    buffer[-300] ^= 0xFF
    assert event.data[0] == payload[0] ^ 0xFF


def test_server_views_need_a_writable_buffer(codec):
    conn = codec.Connection("server", views=True)
    wire = frame(OP_BINARY, b"abc")
    for read_only in (wire, memoryview(wire), memoryview(bytearray(wire)).toreadonly()):
        with pytest.raises(TypeError, match="writable"):
            conn.receive_data(read_only)
    assert conn.receive_data(memoryview(bytearray(wire))[:])[0].data == b"abc"
    assert conn.receive_data(bytearray(frame(OP_BINARY, b"de")))[0].data == b"de"


def test_client_views_take_bytes_and_alias_them(codec):
    wire = frame(OP_BINARY, b"from the server", mask=None)
    (event,) = codec.Connection("client", views=True).receive_data(wire)
    assert event.data.obj is wire and event.data == b"from the server"


def test_streamed_pieces_alias_each_read(codec):
    payload = os.urandom(5000)
    wire = frame(OP_BINARY, payload)
    conn = codec.Connection("server", views=True, assemble=False)
    reads = [bytearray(p) for p in cut_at(wire, [1000, 3000])]
    got = []
    for read in reads:
        for ev in conn.receive_data(read):
            assert ev.data.obj is read
            got.append((bytes(ev.data), ev.final))
    assert b"".join(d for d, _ in got) == payload
    assert [f for _, f in got] == [False, False, True]


def test_other_messages_are_views_of_a_copy_text_and_control_unchanged(codec):
    wire = (frame(OP_BINARY, b"frag", fin=False) + frame(OP_PING, b"p")
            + frame(OP_CONT, b"mented") + frame(OP_TEXT, "héllo".encode())
            + frame(OP_CLOSE, b"\x03\xe8bye"))
    buffer = bytearray(wire)
    events = codec.Connection("server", views=True).receive_data(buffer)
    ping, binary, text, close = events
    assert type(ping.data) is bytes and ping.data == b"p"
    assert type(binary.data) is memoryview and binary.data == b"fragmented"
    assert binary.data.obj is not buffer
    assert text.data == "héllo" and (close.code, close.reason) == (1000, "bye")


def test_compressed_binary_is_a_view_of_the_inflated_bytes(codec):
    client = codec.Connection("client", deflate=NegotiatedDeflate())
    server = codec.Connection("server", deflate=NegotiatedDeflate(), views=True)
    payload = b"compress me " * 100
    (event,) = server.receive_data(bytearray(client.send_binary(payload)))
    assert type(event.data) is memoryview and event.data == payload


def test_copying_stays_the_default(codec):
    (event,) = codec.Connection("server").receive_data(bytearray(frame(OP_BINARY, b"x")))
    assert type(event.data) is bytes


def test_echo_sends_the_view_back(codec):
    """The use it is for: a server echoing what it received, without a copy
    of its own (send_binary takes the view)."""
    client = codec.Connection("client")
    server = codec.Connection("server", views=True)
    payload = os.urandom(70000)
    (event,) = server.receive_data(bytearray(client.send_binary(payload)))
    (echo,) = client.receive_data(server.send_binary(event.data))
    assert echo.data == payload


# -- properties ---------------------------------------------------------------------

messages = st.lists(st.tuples(st.sampled_from([OP_BINARY, OP_TEXT, OP_PING]),
                              st.binary(max_size=300), st.integers(1, 3)), max_size=6)
cuts = st.lists(st.integers(min_value=0, max_value=3000), max_size=8)


def wire_of(msgs: list[tuple[int, bytes, int]], mask: bytes | None) -> bytes:
    out = []
    for op, payload, parts in msgs:
        if op == OP_TEXT:
            payload = payload.decode("latin-1").encode()
        if op == OP_PING:
            out.append(frame(op, payload[:125], mask=mask))
            continue
        step = max(1, len(payload) // parts)
        pieces = [payload[i:i + step] for i in range(0, len(payload), step)] or [b""]
        for i, piece in enumerate(pieces):
            out.append(frame(op if i == 0 else OP_CONT, piece, fin=i == len(pieces) - 1,
                             mask=mask))
    return b"".join(out)


@given(msgs=messages, points=cuts, role=st.sampled_from(["server", "client"]),
       assemble=st.booleans())
def test_views_give_the_copying_events_on_any_split(codec, msgs, points, role, assemble):
    wire = wire_of(msgs, MASK if role == "server" else None)
    pieces = cut_at(wire, [p % (len(wire) + 1) for p in points])
    assert feed_all(codec, role, pieces, views=True, assemble=assemble) == \
        feed_all(codec, role, pieces, views=False, assemble=assemble)


@given(data=st.binary(max_size=200), msgs=messages, points=cuts)
def test_views_give_the_copying_errors_on_arbitrary_bytes(codec, data, msgs, points):
    wire = wire_of(msgs, MASK) + data
    pieces = cut_at(wire, [p % (len(wire) + 1) for p in points])
    assert feed_all(codec, "server", pieces, views=True) == \
        feed_all(codec, "server", pieces, views=False)


@given(data=st.binary(max_size=200), msgs=messages, points=cuts, assemble=st.booleans())
def test_twins_agree_with_views_and_unmask_the_same_bytes(data, msgs, points, assemble):
    wire = wire_of(msgs, MASK) + data
    pieces = cut_at(wire, [p % (len(wire) + 1) for p in points])
    results = []
    for mod in (PY, C):
        conn = mod.Connection("server", views=True, assemble=assemble)
        bufs = [bytearray(p) for p in pieces]
        events: list[Any] = []
        error = None
        for buf in bufs:
            try:
                events.extend(snapshot(conn.receive_data(buf)))
            except streamcore.ProtocolError as exc:
                error = (str(exc), exc.offset)
                break
        results.append((events, error, [bytes(b) for b in bufs]))
    assert results[0] == results[1]


def test_hand_off_with_views_feeds_the_trailing_frames(codec):
    """``Upgrade.connect(views=True)``: the frames behind the request reach a
    server that takes only writable buffers."""
    import h11

    from streamcore.ws.handshake import ClientHandshake, ServerHandshake

    early = codec.Connection("client")
    wire = ClientHandshake("example.com", "/").send() + early.send_binary(b"early bytes")
    http = h11.Connection(h11.SERVER)
    http.receive_data(wire)
    request = http.next_event()
    opened = ServerHandshake().connect(http, request, connection_class=codec.Connection,
                                       views=True)
    assert opened.error is None
    (event,) = opened.events
    assert type(event.data) is memoryview and event.data == b"early bytes"
