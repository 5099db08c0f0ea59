"""``assemble=False`` streams within a frame (issue 7, item 1b).

The rule both twins follow: a piece of a data message ends where a read ends
or where a frame ends, whichever comes first, and is delivered at once
(``Text``/``Binary`` with ``final=False``); the message's last piece has
``final=True``.  Text pieces hold the code points the piece completes (the
bytes of an incomplete one wait for the next piece); a piece with no data is
not delivered unless it is the final one, which always is, even empty.

Failed before: one event per complete frame, so a large frame was buffered
whole (``test_one_frame_is_delivered_read_by_read`` and most below).
"""
from __future__ import annotations

from typing import Any

import pytest
from helpers import both_twins, twin_fixture
from hypothesis import given, settings
from hypothesis import strategies as st
from ws_helpers import FakeDeflate, PeerDeflater, close_payload, err_key, frame

from streamcore import IncompleteError, LimitError, ProtocolError
from streamcore.ws import Binary, Close, Ping, State, Text
from streamcore.ws.deflate import NegotiatedDeflate

codec = twin_fixture("ws")
PY, CY = both_twins("ws")


def feed(conn: Any, reads: list[bytes]) -> list[list[Any]]:
    """The events of each read."""
    return [conn.receive_data(r) for r in reads]


def header_len(wire: bytes) -> int:
    n = wire[1] & 0x7F
    return 2 + (2 if n == 126 else 8 if n == 127 else 0) + (4 if wire[1] & 0x80 else 0)


def test_one_frame_is_delivered_read_by_read(codec):
    body = bytes(range(256)) * 40
    wire = frame(0x2, body)
    h = header_len(wire)
    conn = codec.Connection("server", assemble=False)
    reads = [wire[:h + 1000]] + [wire[i:i + 1000] for i in range(h + 1000, len(wire), 1000)]
    got = feed(conn, reads)
    assert all(len(events) == 1 for events in got)
    pieces = [events[0] for events in got]
    assert [p.data for p in pieces] == [body[i:i + 1000] for i in range(0, len(body), 1000)]
    assert [p.final for p in pieces] == [False] * (len(pieces) - 1) + [True]
    assert conn.stats.messages_in == 1 and conn.stats.frames_in == 1


def test_a_read_of_header_only_gives_nothing(codec):
    wire = frame(0x2, b"abcdef")
    conn = codec.Connection("server", assemble=False)
    h = header_len(wire)
    assert feed(conn, [wire[:h], wire[h:h + 2], b"", wire[h + 2:]]) == [
        [], [Binary(b"ab", False)], [], [Binary(b"cdef", True)]]


def test_text_code_points_come_out_whole(codec):
    text = "a€b𝄞"
    wire = frame(0x1, text.encode())
    h = header_len(wire)
    conn = codec.Connection("server", assemble=False)
    got = feed(conn, [wire[:h]] + [wire[i:i + 1] for i in range(h, len(wire))])
    # a read that completes no code point gives no event
    assert [e for events in got for e in events] == [
        Text("a", False), Text("€", False), Text("b", False), Text("𝄞", True)]
    assert [len(events) for events in got[1:]] == [1, 0, 0, 1, 1, 0, 0, 0, 1]


def test_code_point_split_across_frames_and_reads(codec):
    euro = "€".encode()
    wire = frame(0x1, b"x" + euro[:1], fin=False) + frame(0x0, euro[1:2], fin=False) + \
        frame(0x0, euro[2:] + b"y")
    for cut in range(len(wire) + 1):
        conn = codec.Connection("server", assemble=False)
        events = [e for events in feed(conn, [wire[:cut], wire[cut:]]) for e in events]
        assert "".join(e.data for e in events) == "x€y"
        assert all(e.data for e in events[:-1]) and events[-1].final
        assert any("€" in e.data for e in events)  # never cut in two


def test_invalid_utf8_fails_at_the_first_bad_byte(codec):
    wire = frame(0x1, b"ok\xffrest")
    h = header_len(wire)
    conn = codec.Connection("server", assemble=False)
    assert conn.receive_data(wire[:h + 1]) == [Text("o", False)]
    with pytest.raises(ProtocolError) as info:
        conn.receive_data(wire[h + 1:])
    assert info.value.close_code == 1007 and info.value.offset == h + 2
    assert info.value.events == []


def test_invalid_incomplete_sequence_fails_before_the_frame_ends(codec):
    # ED A0 starts a surrogate: invalid already, though the frame goes on
    wire = frame(0x1, b"a\xed\xa0\x80" + b"z" * 100)
    h = header_len(wire)
    conn = codec.Connection("server", assemble=False)
    with pytest.raises(ProtocolError) as info:
        conn.receive_data(wire[:h + 3])
    assert info.value.close_code == 1007 and info.value.offset == h + 2


def test_text_ending_inside_a_code_point(codec):
    wire = frame(0x1, b"ab\xe2\x82")
    h = header_len(wire)
    conn = codec.Connection("server", assemble=False)
    assert conn.receive_data(wire[:h + 3]) == [Text("ab", False)]
    with pytest.raises(ProtocolError) as info:
        conn.receive_data(wire[h + 3:])
    assert info.value.close_code == 1007 and info.value.offset == h + 4


@pytest.mark.parametrize("opcode, kind, empty", [(0x1, Text, ""), (0x2, Binary, b"")])
def test_the_final_piece_is_always_delivered(codec, opcode, kind, empty):
    one = b"ab" if opcode == 0x2 else "ab"
    data = one if opcode == 0x2 else one.encode()
    wire = frame(opcode, data, fin=False) + frame(0x0, b"", fin=False) + frame(0x0, b"")
    conn = codec.Connection("server", assemble=False)
    assert conn.receive_data(wire) == [kind(one, False), kind(empty, True)]
    conn = codec.Connection("server", assemble=False)
    assert conn.receive_data(frame(opcode, b"")) == [kind(empty, True)]


def test_frame_limit_is_checked_on_the_header(codec):
    wire = frame(0x2, b"x" * 1000)
    conn = codec.Connection("server", assemble=False, max_frame_size=999)
    with pytest.raises(LimitError) as info:
        conn.receive_data(wire[:500])
    assert info.value.close_code == 1009 and info.value.offset == 1
    assert info.value.events == []


def test_message_limit_is_checked_on_each_header(codec):
    wire = frame(0x2, b"a" * 300, fin=False) + frame(0x0, b"b" * 300)
    conn = codec.Connection("server", assemble=False, max_message_size=500)
    h = header_len(wire)
    assert conn.receive_data(wire[:h + 100]) == [Binary(b"a" * 100, False)]
    with pytest.raises(LimitError) as info:
        conn.receive_data(wire[h + 100:])
    assert info.value.offset == h + 300 + 1
    assert info.value.events == [Binary(b"a" * 200, False)]


def test_control_frames_between_fragments(codec):
    wire = frame(0x2, b"abcd", fin=False) + frame(0x9, b"!") + frame(0x0, b"efgh")
    h = header_len(wire)
    conn = codec.Connection("server", assemble=False)
    got = feed(conn, [wire[:h + 2], wire[h + 2:-2], wire[-2:]])
    assert got == [[Binary(b"ab", False)], [Binary(b"cd", False), Ping(b"!"), Binary(b"ef", False)],
                   [Binary(b"gh", True)]]


def test_close_in_the_middle_of_a_message(codec):
    wire = frame(0x2, b"abcd", fin=False) + frame(0x8, close_payload(1000)) + frame(0x0, b"zz")
    conn = codec.Connection("server", assemble=False)
    assert conn.receive_data(wire[:9]) == [Binary(b"abc", False)]
    assert conn.receive_data(wire[9:]) == [Binary(b"d", False), Close(1000, "")]
    assert conn.state is State.CLOSING and conn.receive_data(b"more") == []


def test_eof_inside_a_streamed_frame(codec):
    conn = codec.Connection("server", assemble=False)
    assert conn.receive_data(frame(0x2, b"abcd")[:-1]) == [Binary(b"abc", False)]
    with pytest.raises(IncompleteError):
        conn.receive_eof()


# -- permessage-deflate: compressed frames stream through the inflater too ----------


@pytest.mark.parametrize("make", [NegotiatedDeflate, FakeDeflate], ids=["real", "fake"])
def test_compressed_frame_is_inflated_piece_by_piece(codec, make):
    text = ("streamcore €𝄞 " * 5000)
    payload = PeerDeflater().compress(text.encode())
    wire = frame(0x1, payload[:len(payload) // 2], fin=False, rsv=4) + \
        frame(0x0, payload[len(payload) // 2:])
    conn = codec.Connection("server", assemble=False, deflate=make(), max_message_size=None)
    events = [e for i in range(0, len(wire), 64) for e in conn.receive_data(wire[i:i + 64])]
    assert len(events) > 4
    assert "".join(e.data for e in events) == text
    assert all(e.data for e in events[:-1]) and [e.final for e in events].count(True) == 1
    assert events[-1].final
    assert conn.stats.bytes_after_decompression == len(text.encode())


@pytest.mark.parametrize("limits, names", [
    ({"max_message_size": 100_000}, "max_message_size=100000"),
    ({"max_message_size": None, "max_frame_size": 65536}, "max_frame_size=65536"),
])
def test_inflated_size_is_bounded_while_streaming(codec, limits, names):
    bomb = PeerDeflater().compress(bytes(4 << 20))
    wire = frame(0x2, bomb, rsv=4)
    conn = codec.Connection("server", assemble=False, deflate=NegotiatedDeflate(), **limits)
    got = 0
    with pytest.raises(LimitError) as info:
        for i in range(0, len(wire), 100):
            got += sum(len(e.data) for e in conn.receive_data(wire[i:i + 100]))
    assert info.value.close_code == 1009 and names in str(info.value)
    got += sum(len(e.data) for e in info.value.events)
    assert got <= 100_000 if "message" in names else got <= 65536


def test_huge_limit_does_not_overflow_zlib():
    # a limit beyond Py_ssize_t was passed to zlib as is: OverflowError
    session = NegotiatedDeflate().session(client=False)
    data = PeerDeflater().compress(b"hello")
    assert session.decompress(data, True, 1 << 70) == b"hello"
    session = NegotiatedDeflate().session(client=False)
    assert session.decompress(data[:3], False, 1 << 70) + \
        session.decompress(data[3:], True, 1 << 70) == b"hello"


# -- both twins: the same pieces for every split --------------------------------------

message = st.tuples(
    st.booleans(),  # text
    st.one_of(st.text(max_size=200), st.binary(max_size=200)),
    st.booleans(),  # compressed
    st.lists(st.integers(0, 300), max_size=4),  # fragment boundaries
    st.booleans(),  # a Ping after the first fragment
)


def build(msgs: list[Any]) -> tuple[bytes, list[Any]]:
    deflater = PeerDeflater()
    wire, want = [], []
    for is_text, value, compressed, cuts, ping in msgs:
        if is_text:
            value = value if isinstance(value, str) else value.decode("latin-1")
            raw = value.encode()
            want.append(Text(value))
        else:
            raw = value if isinstance(value, bytes) else value.encode()
            want.append(Binary(raw))
        payload = deflater.compress(raw) if compressed else raw
        points = sorted({min(c, len(payload)) for c in cuts})
        parts = [payload[a:b] for a, b in zip([0, *points], [*points, len(payload)])]
        for i, part in enumerate(parts):
            wire.append(frame((0x1 if is_text else 0x2) if i == 0 else 0x0, part,
                              fin=i == len(parts) - 1, rsv=4 if compressed and i == 0 else 0))
            if i == 0 and ping and len(parts) > 1:
                wire.append(frame(0x9, b"p"))
                want.insert(len(want) - 1, Ping(b"p"))
    return b"".join(wire), want


def join(events: list[Any]) -> list[Any]:
    out: list[Any] = []
    parts: list[Any] = []
    for ev in events:
        if isinstance(ev, (Text, Binary)):
            parts.append(ev.data)
            if ev.final:
                out.append(type(ev)(("" if isinstance(ev, Text) else b"").join(parts)))
                parts = []
        else:
            out.append(ev)
    assert not parts
    return out


def stream(twin: Any, reads: list[bytes], **kw: Any) -> tuple[list[Any], Any, Any]:
    kw.setdefault("max_message_size", None)
    conn = twin.Connection("server", assemble=False, deflate=NegotiatedDeflate(), **kw)
    events: list[Any] = []
    try:
        for r in reads:
            events.extend(conn.receive_data(r))
    except ProtocolError as exc:
        return events + exc.events, exc, conn
    return events, None, conn


@settings(max_examples=200, deadline=None)
@given(st.data(), st.lists(message, max_size=5))
def test_twins_stream_the_same_pieces(data, msgs):
    wire, want = build(msgs)
    points = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=12)))
    reads = [wire[a:b] for a, b in zip([0, *points], [*points, len(wire)])]
    ev_py, err_py, conn_py = stream(PY, reads)
    ev_cy, err_cy, conn_cy = stream(CY, reads)
    assert err_py is None and err_cy is None
    assert ev_py == ev_cy
    assert conn_py.stats == conn_cy.stats
    assert join(ev_py) == want
    # no empty piece but a final one; a message's pieces end with one final
    for ev in ev_py:
        if isinstance(ev, (Text, Binary)) and not ev.final:
            assert ev.data
    assert sum(1 for e in ev_py if isinstance(e, (Text, Binary)) and e.final) == len(msgs)


@settings(max_examples=200, deadline=None)
@given(st.data(), st.lists(message, min_size=1, max_size=4),
       st.sampled_from([None, 50, 300]), st.sampled_from([None, 40, 200]))
def test_twins_agree_on_broken_streams(data, msgs, max_message_size, max_frame_size):
    wire = bytearray(build(msgs)[0])
    for _ in range(data.draw(st.integers(0, 3))):
        if wire:
            wire[data.draw(st.integers(0, len(wire) - 1))] ^= 1 << data.draw(st.integers(0, 7))
    wire = bytes(wire)
    points = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=12)))
    reads = [wire[a:b] for a, b in zip([0, *points], [*points, len(wire)])]
    kw = {"max_frame_size": max_frame_size, "max_message_size": max_message_size}
    ev_py, err_py, conn_py = stream(PY, reads, **kw)
    ev_cy, err_cy, conn_cy = stream(CY, reads, **kw)
    assert ev_py == ev_cy
    assert err_key(err_py) == err_key(err_cy)
    assert conn_py.stats == conn_cy.stats

