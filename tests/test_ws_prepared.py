"""streamcore.ws.Prepared and Connection.send_prepared: a broadcast message
framed (and compressed) once, the same bytes for every server connection that
frames it alike, on both twins."""
from __future__ import annotations

import random
import string
from array import array

import pytest
from helpers import both_twins, twin_fixture
from hypothesis import given, settings
from hypothesis import strategies as st

from streamcore import IncompleteError, StateError
from streamcore.ws import Binary, NegotiatedDeflate, Prepared, Text

codec = twin_fixture("ws")

NCT = NegotiatedDeflate(server_no_context_takeover=True)
NCT_10 = NegotiatedDeflate(server_no_context_takeover=True, server_max_window_bits=10)
TAKEOVER = NegotiatedDeflate()
TEXT = "streamcore broadcast, é and 😀 " * 40


def messages(conn, frames):
    out = []
    for f in frames:
        out.extend(conn.receive_data(f))
    return out


@pytest.mark.parametrize("deflate", [None, NCT, NCT_10], ids=["plain", "nct", "nct-10-bits"])
def test_server_connections_share_one_frame(codec, deflate):
    message = Prepared(TEXT)
    servers = [codec.Connection("server", deflate=deflate) for _ in range(3)]
    frames = [s.send_prepared(message) for s in servers]
    assert frames[0] is frames[1] is frames[2]
    # byte for byte what a fresh connection's send_text gives
    assert frames[0] == codec.Connection("server", deflate=deflate).send_text(TEXT)
    client = codec.Connection("client", deflate=deflate)
    assert messages(client, frames) == [Text(TEXT, True)] * 3


def test_compressed_frames_are_built_once_per_parameter_set(codec):
    # a block repeated 1,500 bytes later: only a 15-bit window reaches back to it
    block = "".join(random.Random(7).choices(string.ascii_letters, k=1500))
    message = Prepared(block * 2)
    a = codec.Connection("server", deflate=NCT).send_prepared(message)
    b = codec.Connection("server", deflate=NCT_10).send_prepared(message)
    c = codec.Connection("server").send_prepared(message)
    assert len({a, b, c}) == 3 and len(c) > len(a)
    assert a[0] & 0x40 and b[0] & 0x40 and not c[0] & 0x40  # RSV1 on the compressed ones
    assert len(message._frames) == 3
    assert codec.Connection("server", deflate=NCT_10).send_prepared(message) is b


def test_binary_from_any_buffer_counts_bytes(codec):
    data = array("I", range(40))  # 160 bytes, itemsize 4
    message = Prepared(memoryview(data))
    assert message.data == data.tobytes() and not message.text
    frame = codec.Connection("server").send_prepared(message)
    assert frame[1] == 126 and int.from_bytes(frame[2:4], "big") == 160
    assert codec.Connection("client").receive_data(frame) == [Binary(data.tobytes(), True)]


def test_a_client_masks_its_own_frame(codec):
    message = Prepared("hello")
    client = codec.Connection("client")
    first, second = client.send_prepared(message), client.send_prepared(message)
    assert first != second  # a fresh mask key per frame (RFC 6455 §5.3)
    assert first[1] & 0x80 and message._frames == {}
    server = codec.Connection("server")
    assert messages(server, [first, second]) == [Text("hello", True)] * 2


def test_context_takeover_compresses_per_connection(codec):
    # the compressor's history makes the second message's bytes this
    # connection's own: nothing shared, and still decoded right
    server, twin = codec.Connection("server", deflate=TAKEOVER), codec.Connection("server", deflate=TAKEOVER)
    message = Prepared(TEXT)
    frames = [server.send_prepared(message), server.send_prepared(message)]
    assert frames == [twin.send_text(TEXT), twin.send_text(TEXT)]
    assert frames[0] != frames[1] and message._frames == {}
    assert messages(codec.Connection("client", deflate=TAKEOVER), frames) == [Text(TEXT, True)] * 2


@pytest.mark.parametrize("deflate", [None, NCT], ids=["plain", "nct"])
def test_stats_and_trace_as_send_text(codec, deflate):
    traced: list = []
    prepared = codec.Connection("server", deflate=deflate, trace=traced.append)
    plain = codec.Connection("server", deflate=deflate)
    for _ in range(2):
        prepared.send_prepared(Prepared(TEXT))
        plain.send_text(TEXT)
    prepared.send_prepared(Prepared(b"\x00\x01"))
    plain.send_binary(b"\x00\x01")
    assert prepared.stats == plain.stats
    assert traced == [Text(TEXT, True), Text(TEXT, True), Binary(b"\x00\x01", True)]


def test_state_rules(codec):
    message = Prepared("x")
    with pytest.raises(TypeError, match="Prepared"):
        codec.Connection("server").send_prepared("x")
    conn = codec.Connection("server")
    conn.send_text("a", final=False)
    with pytest.raises(StateError, match="fragmented"):
        conn.send_prepared(message)
    conn.send_text("b")
    conn.send_close()
    with pytest.raises(StateError, match="our Close was sent"):
        conn.send_prepared(message)
    conn = codec.Connection("server")
    with pytest.raises(IncompleteError):
        conn.receive_eof()  # the transport ended before any Close
    with pytest.raises(StateError, match="receive_eof"):
        conn.send_prepared(message)


@settings(max_examples=150, deadline=None)
@given(data=st.one_of(st.text(max_size=300), st.binary(max_size=300)),
       bits=st.sampled_from([None, 9, 12, 15]), compressed=st.booleans())
def test_twins_and_send_text_agree(data, bits, compressed):
    deflate = NegotiatedDeflate(server_no_context_takeover=True, server_max_window_bits=bits) \
        if compressed else None
    c, py = both_twins("ws")
    frames = [twin.Connection("server", deflate=deflate).send_prepared(Prepared(data)) for twin in (c, py)]
    direct = c.Connection("server", deflate=deflate)
    expected = direct.send_text(data) if isinstance(data, str) else direct.send_binary(data)
    assert frames == [expected, expected]
