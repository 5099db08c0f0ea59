"""streamcore.ws.Connection: states, fragmentation, close handshake, limits,
UTF-8, stats, trace and the deflate wiring (RFC 6455 §5-§8), on both twins."""
from __future__ import annotations

import pytest
from helpers import BUFFER_KINDS, as_buffer, twin_fixture
from ws_helpers import FakeDeflate, close_payload, frame, run_all_splits, xor

from streamcore import IncompleteError, LimitError, ProtocolError, StateError
from streamcore.ws import Binary, Close, ConnectionStats, Ping, Pong, Role, State, Text

codec = twin_fixture("ws")


# -- roles and the face ----------------------------------------------------------


def test_role_accepts_strings_and_enum(codec):
    assert codec.Connection("client").role is Role.CLIENT
    assert codec.Connection(Role.SERVER).role is Role.SERVER
    with pytest.raises(ValueError):
        codec.Connection("peer")


def test_face_exports_a_twin_connection():
    from streamcore import ws
    from streamcore.ws import _c as _codec_c
    from streamcore.ws import _py as _codec_py

    assert ws.Connection in (_codec_c.Connection, _codec_py.Connection)


@pytest.mark.parametrize(("kw", "error"), [
    ({"max_message_size": -1}, ValueError),
    ({"max_frame_size": 1.5}, TypeError),
    ({"max_message_size": True}, TypeError),  # one rule across protocols: a bool is a type error
])
def test_bad_limits_are_rejected(codec, kw, error):
    with pytest.raises(error):
        codec.Connection("server", **kw)


def test_a_limit_past_63_bits_means_no_limit_in_both_twins(codec):
    # failed before: OverflowError in the compiled twin only
    conn = codec.Connection("client", max_message_size=1 << 80, max_frame_size=1 << 64)
    assert conn.receive_data(b"\x82\x03abc") == [Binary(b"abc")]


def test_client_and_server_talk(codec):
    client, server = codec.Connection("client"), codec.Connection("server")
    wire = client.send_text("hi") + client.send_binary(b"\x00\x01") + client.send_ping(b"p")
    assert server.receive_data(wire) == [Text("hi"), Binary(b"\x00\x01"), Ping(b"p")]
    back = server.send_pong(b"p") + server.send_text("yo")
    assert client.receive_data(back) == [Pong(b"p"), Text("yo")]


def test_send_accepts_buffers(codec):
    client, server = codec.Connection("client"), codec.Connection("server")
    wire = client.send_binary(bytearray(b"ab")) + client.send_binary(memoryview(b"cd"))
    assert server.receive_data(wire) == [Binary(b"ab"), Binary(b"cd")]


def test_receive_accepts_buffers(codec):
    server = codec.Connection("server")
    data = frame(0x1, b"abc")
    assert server.receive_data(bytearray(data[:3])) == []
    assert server.receive_data(memoryview(data)[3:]) == [Text("abc")]


# -- fragmentation (§5.4) ----------------------------------------------------------

FRAGMENTED = frame(0x1, b"fragm", fin=False) + frame(0x0, b"", fin=False) + \
    frame(0x0, "ented €".encode())


def test_fragments_are_assembled(codec):
    events, err = run_all_splits(codec, "server", FRAGMENTED)
    assert events == [Text("fragmented €")] and err is None


def test_fragments_are_streamed_without_assembly(codec):
    # each frame read whole is one piece; the empty middle frame brings no
    # data, so it gives no event (only a final piece may be empty)
    events, err = run_all_splits(codec, "server", FRAGMENTED, assemble=False)
    assert events == [Text("fragm", False), Text("ented €", True)] and err is None


def test_streamed_text_holds_back_a_split_code_point(codec):
    euro = "€".encode()
    data = frame(0x1, b"a" + euro[:1], fin=False) + frame(0x0, euro[1:] + b"b")
    events, _ = run_all_splits(codec, "server", data, assemble=False)
    assert events == [Text("a", False), Text("€b", True)]


def test_streamed_binary_fragments(codec):
    data = frame(0x2, b"ab", fin=False) + frame(0x0, b"cd")
    events, _ = run_all_splits(codec, "server", data, assemble=False)
    assert events == [Binary(b"ab", False), Binary(b"cd", True)]


def test_control_frames_interleave_with_fragments(codec):
    data = frame(0x2, b"ab", fin=False) + frame(0x9, b"!") + frame(0x0, b"cd")
    events, _ = run_all_splits(codec, "server", data)
    assert events == [Ping(b"!"), Binary(b"abcd")]


def test_new_message_inside_fragmented_one_is_rejected(codec):
    data = frame(0x1, b"ab", fin=False) + frame(0x1, b"cd")
    _, err = run_all_splits(codec, "server", data)
    assert err.close_code == 1002 and "inside a fragmented message" in str(err)
    assert err.offset == 8


def test_send_fragmented_message(codec):
    client, server = codec.Connection("client"), codec.Connection("server")
    wire = client.send_text("ab", final=False) + client.send_ping() + client.send_text("c")
    assert server.receive_data(wire) == [Ping(b""), Text("abc")]
    with pytest.raises(StateError):
        client.send_binary(b"x", final=False)
        client.send_text("y")


# -- limits ---------------------------------------------------------------------------


def test_max_message_size_counts_every_fragment(codec):
    data = frame(0x2, b"x" * 6, fin=False) + frame(0x0, b"y" * 5)
    _, err = run_all_splits(codec, "server", data, max_message_size=10)
    assert type(err) is LimitError and err.close_code == 1009
    assert err.offset == 12 + 1  # the second header's length byte
    assert "max_message_size=10" in str(err)


def test_message_at_the_limit_passes(codec):
    events, err = run_all_splits(codec, "server", frame(0x2, b"x" * 10), max_message_size=10)
    assert events == [Binary(b"x" * 10)] and err is None


def test_limit_fails_on_the_header_before_the_payload_arrives(codec):
    conn = codec.Connection("server", max_message_size=1000)
    with pytest.raises(LimitError):
        conn.receive_data(frame(0x2, length=1001, width=16)[:8])


def test_default_message_limit_is_one_mebibyte(codec):
    _, err = run_all_splits(codec, "server", frame(0x2, length=(1 << 20) + 1))
    assert type(err) is LimitError
    conn = codec.Connection("server", max_message_size=None)
    assert conn.receive_data(frame(0x2, b"z" * ((1 << 20) + 1))) == [Binary(b"z" * ((1 << 20) + 1))]


def test_control_frames_do_not_count_toward_the_message(codec):
    data = frame(0x2, b"x" * 10, fin=False) + frame(0x9, b"p" * 100) + frame(0x0, b"")
    events, err = run_all_splits(codec, "server", data, max_message_size=10)
    assert events == [Ping(b"p" * 100), Binary(b"x" * 10)]


# -- UTF-8 (§8.1) -------------------------------------------------------------------


def test_invalid_utf8_fails_at_the_first_bad_byte(codec):
    data = frame(0x1, b"abc\xed\xa0\x80xyz")
    _, err = run_all_splits(codec, "server", data)
    assert err.close_code == 1007 and err.offset == 6 + 4


def test_invalid_utf8_fails_before_the_frame_ends(codec):
    conn = codec.Connection("server")
    data = frame(0x1, b"ok\xc3(" + b"x" * 1000)
    with pytest.raises(ProtocolError) as info:
        conn.receive_data(data[:14])  # the whole frame has not arrived
    assert info.value.offset == 8 + 3 and info.value.close_code == 1007


def test_invalid_utf8_fails_across_fragments(codec):
    conn = codec.Connection("server")
    conn.receive_data(frame(0x1, b"ok\xe2\x82", fin=False))
    with pytest.raises(ProtocolError) as info:
        # the next fragment starts with a new lead byte: invalid right there
        conn.receive_data(frame(0x0, b"\xe2", fin=False))
    assert info.value.close_code == 1007


def test_text_ending_inside_a_code_point_is_invalid(codec):
    data = frame(0x1, b"ok\xe2\x82", fin=False) + frame(0x0, b"")
    _, err = run_all_splits(codec, "server", data)
    assert err.close_code == 1007 and err.offset == len(data)


def test_binary_is_not_validated(codec):
    events, _ = run_all_splits(codec, "server", frame(0x2, b"\xff\xfe"))
    assert events == [Binary(b"\xff\xfe")]


# -- the close handshake (§5.5.1, §7) ------------------------------------------------


def test_peer_close_is_echoed(codec):
    conn = codec.Connection("server")
    assert conn.receive_data(frame(0x8, close_payload(1001, b"going"))) == [Close(1001, "going")]
    # failed before: CLOSED at once, with the echo still unwritten
    assert conn.state is State.CLOSING and conn.echo_pending
    assert conn.data_to_send() == b"\x88\x02\x03\xe9"
    assert conn.state is State.CLOSED and not conn.echo_pending
    assert conn.data_to_send() == b""


def test_empty_close_is_echoed_empty(codec):
    conn = codec.Connection("server")
    conn.receive_data(frame(0x8))
    assert conn.data_to_send() == b"\x88\x00"


def test_send_close_after_peer_close_replaces_the_echo(codec):
    conn = codec.Connection("server")
    conn.receive_data(frame(0x8, close_payload(1000)))
    assert conn.send_close(1000) == b"\x88\x02\x03\xe8"
    assert conn.data_to_send() == b""
    with pytest.raises(StateError):
        conn.send_close()


def test_we_close_first(codec):
    conn = codec.Connection("client")
    out = conn.send_close(1000, "done")
    assert conn.state is State.CLOSING
    assert xor(out[6:], out[2:6]) == close_payload(1000, b"done")
    with pytest.raises(StateError):
        conn.send_text("late")
    assert conn.receive_data(frame(0x1, b"still", mask=None)) == [Text("still")]
    assert conn.receive_data(frame(0x8, close_payload(1000), mask=None)) == [Close(1000, "")]
    assert conn.state is State.CLOSED
    assert conn.data_to_send() == b""  # nothing to echo: we closed first


def test_close_between_fragments_is_echoed(codec):
    data = frame(0x1, b"part", fin=False) + frame(0x8, close_payload(1000))
    conn = codec.Connection("server")
    assert conn.receive_data(data) == [Close(1000, "")]
    assert conn.data_to_send() == b"\x88\x02\x03\xe8"


def test_everything_after_peer_close_is_ignored(codec):
    conn = codec.Connection("server")
    data = frame(0x8, close_payload(1000)) + frame(0x1, b"more") + b"\xff\xff garbage"
    assert conn.receive_data(data) == [Close(1000, "")]
    assert conn.receive_data(b"\x00 more garbage") == []
    assert conn.stats.bytes_in == len(data) + len(b"\x00 more garbage")


@pytest.mark.parametrize("code", [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012,
                                  1013, 1014, 3000, 3999, 4000, 4999])
def test_valid_close_codes(codec, code):
    events, err = run_all_splits(codec, "server", frame(0x8, close_payload(code)))
    assert events == [Close(code, "")]


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000,
                                  65535])
def test_invalid_close_codes(codec, code):
    _, err = run_all_splits(codec, "server", frame(0x8, close_payload(code)))
    assert err.close_code == 1002 and f"invalid close code {code}" in str(err)
    assert err.offset == 6


def test_one_byte_close_payload_is_invalid(codec):
    _, err = run_all_splits(codec, "server", frame(0x8, b"\x03"))
    assert err.close_code == 1002 and err.offset == 6


def test_close_reason_must_be_utf8(codec):
    _, err = run_all_splits(codec, "server", frame(0x8, close_payload(1000, b"ok\xff")))
    assert err.close_code == 1007 and err.offset == 6 + 4


@pytest.mark.parametrize("code, reason", [(1005, ""), (999, ""), (None, "why"), (1000, "x" * 124)])
def test_send_close_rejects_what_must_not_be_sent(codec, code, reason):
    with pytest.raises(ValueError):
        codec.Connection("server").send_close(code, reason)


def test_send_close_without_code(codec):
    assert codec.Connection("server").send_close(None) == b"\x88\x00"


def test_control_payload_over_125_is_refused_on_send(codec):
    with pytest.raises(ValueError):
        codec.Connection("server").send_ping(b"x" * 126)


# -- errors are final -----------------------------------------------------------------


def test_error_is_raised_again_on_every_later_call(codec):
    conn = codec.Connection("server")
    with pytest.raises(ProtocolError) as first:
        conn.receive_data(frame(0x3))
    for _ in range(2):
        with pytest.raises(ProtocolError) as again:
            conn.receive_data(frame(0x1, b"fine"))
        assert str(again.value) == str(first.value)
        assert again.value.offset == first.value.offset == 0
        assert again.value.events == []


def test_events_before_the_error_ride_on_it(codec):
    conn = codec.Connection("server")
    with pytest.raises(ProtocolError) as info:
        conn.receive_data(frame(0x1, b"good") + frame(0x3))
    assert info.value.events == [Text("good")]


def test_only_streamcore_errors_escape(codec):
    conn = codec.Connection("server")
    with pytest.raises(ProtocolError):
        conn.receive_data(b"\x82\xff" + b"\xff" * 20)


# -- receive_eof --------------------------------------------------------------------------


def test_eof_after_close_is_clean(codec):
    conn = codec.Connection("server")
    conn.receive_data(frame(0x8, close_payload(1000)))
    conn.receive_eof()
    assert conn.state is State.CLOSED
    with pytest.raises(StateError):
        conn.receive_data(b"x")
    with pytest.raises(StateError):
        conn.receive_eof()


@pytest.mark.parametrize("data", [b"", frame(0x1, b"x"), frame(0x1, b"abc")[:5],
                                  frame(0x1, b"ab", fin=False), b"\x81"])
def test_eof_without_close_is_incomplete(codec, data):
    conn = codec.Connection("server")
    conn.receive_data(data)
    with pytest.raises(IncompleteError) as info:
        conn.receive_eof()
    assert info.value.close_code == 1006 and info.value.offset == len(data)
    assert conn.state is State.CLOSED


# -- stats and trace ----------------------------------------------------------------------


def test_stats(codec):
    client, server = codec.Connection("client"), codec.Connection("server")
    wire = client.send_text("ab", final=False) + client.send_text("c") + client.send_ping()
    server.receive_data(wire)
    st = server.stats
    assert isinstance(st, ConnectionStats)
    assert (st.bytes_in, st.frames_in, st.messages_in) == (len(wire), 3, 1)
    cs = client.stats
    assert (cs.bytes_out, cs.frames_out, cs.messages_out) == (len(wire), 3, 1)
    with pytest.raises(AttributeError):
        st.bytes_in = 0  # a read-only snapshot


def test_trace_sees_events_both_ways(codec):
    seen = []
    conn = codec.Connection("server", trace=seen.append)
    conn.send_text("out")
    conn.receive_data(frame(0x1, b"in") + frame(0x8, close_payload(1000)))
    conn.data_to_send()
    assert seen == [Text("out"), Text("in"), Close(1000, ""), Close(1000, "")]


def test_trace_sees_events_before_an_error(codec):
    seen = []
    conn = codec.Connection("server", trace=seen.append)
    with pytest.raises(ProtocolError):
        conn.receive_data(frame(0x2, b"ok") + frame(0x3))
    assert seen == [Binary(b"ok")]


# -- permessage-deflate wiring (RFC 7692), with a stand-in session ------------------------


def _deflate_pair(codec, **kw):
    return (codec.Connection("client", deflate=FakeDeflate(), **kw),
            codec.Connection("server", deflate=FakeDeflate(), **kw))


def test_deflate_round_trip_with_context_takeover(codec):
    client, server = _deflate_pair(codec)
    for text in ["hello " * 50, "hello " * 50, "€" * 10]:
        wire = client.send_text(text)
        assert wire[0] == 0xC1  # FIN + RSV1 + text
        assert server.receive_data(wire) == [Text(text)]
    wire = client.send_binary(b"\x00" * 1000)
    assert len(wire) < 100
    assert server.receive_data(wire) == [Binary(b"\x00" * 1000)]
    st = server.stats
    assert st.bytes_after_decompression == 2 * 300 + 30 + 1000
    assert client.stats.bytes_before_compression == 2 * 300 + 30 + 1000


def test_deflate_control_frames_are_not_compressed(codec):
    client, server = _deflate_pair(codec)
    assert client.send_ping(b"x")[0] == 0x89


def test_deflate_fragmented_compressed_message(codec):
    client, server = _deflate_pair(codec)
    payload = client._session.compress(b"abcdef" * 100)
    data = frame(0x2, payload[:10], fin=False, rsv=4) + frame(0x0, payload[10:])
    assert server.receive_data(data) == [Binary(b"abcdef" * 100)]


def test_deflate_rsv1_on_continuation_is_rejected(codec):
    data = frame(0x2, b"", fin=False) + frame(0x0, b"", rsv=4)
    _, err = run_all_splits(codec, "server", data, deflate=FakeDeflate())
    assert err.close_code == 1002 and err.offset == 6 and "RSV1" in str(err)


def test_deflate_bomb_is_stopped_by_the_message_limit(codec):
    client, server = _deflate_pair(codec, max_message_size=1000)
    wire = codec.Connection("client", deflate=FakeDeflate(),
                            max_message_size=None).send_binary(b"\x00" * 100000)
    with pytest.raises(LimitError) as info:
        server.receive_data(wire)
    assert info.value.close_code == 1009 and info.value.offset == 6


def test_deflate_garbage_is_invalid_payload(codec):
    _, err = run_all_splits(codec, "server", frame(0x2, b"\xff\xff\xff", rsv=4),
                            deflate=FakeDeflate())
    assert err.close_code == 1007 and err.offset == 6


def test_deflate_invalid_utf8_after_inflating(codec):
    client, server = _deflate_pair(codec)
    payload = client._session.compress(b"ok\xff")
    _, err = run_all_splits(codec, "server", frame(0x1, payload, rsv=4), deflate=FakeDeflate())
    assert err.close_code == 1007 and err.offset == 6


# -- memory stays bounded ------------------------------------------------------------------


@pytest.mark.parametrize("assemble", [True, False])
def test_tiny_frames_and_tiny_reads_keep_memory_bounded(codec, assemble):
    import tracemalloc

    n = 1 << 15
    data = frame(0x2, b"a", fin=False) + b"".join(frame(0x0, b"b", fin=False)
                                                   for _ in range(n - 2)) + frame(0x0, b"c")
    text = frame(0x1, b"x" * n)
    conn = codec.Connection("server", assemble=assemble)
    chunks = [data[i:i + 7] for i in range(0, len(data), 7)]
    tracemalloc.start()
    try:
        total = 0
        for chunk in chunks:
            for ev in conn.receive_data(chunk):
                total += len(ev.data)
        for i in range(len(text)):  # a text message one byte per read
            for ev in conn.receive_data(text[i:i + 1]):
                total += len(ev.data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert total == 2 * n
    assert peak < 8 * n  # a list of a piece per byte would be ~50x


def test_deflate_streamed_without_assembly(codec):
    client, server = _deflate_pair(codec, assemble=False)
    payload = client._session.compress("é€".encode() * 200)
    data = frame(0x1, payload[:7], fin=False, rsv=4) + frame(0x0, payload[7:])
    events = server.receive_data(data)
    assert [e.final for e in events] == [False, True]
    assert "".join(e.data for e in events) == "é€" * 200


def test_deflate_wire_size_is_bounded_too(codec):
    # a compressed frame far larger than the message limit is refused on its header
    _, err = run_all_splits(codec, "server", frame(0x2, length=100_000, rsv=4),
                            deflate=FakeDeflate(), max_message_size=1000)
    assert type(err) is LimitError and err.offset == 1


# -- the embedding contract: everything before the peer's Close is answered ----------

def _client_frames(*frames_):
    return b"".join(frames_)


def test_text_ping_close_in_one_read_are_all_answered(codec):
    # a client doing send(x); ping(); close() often lands in one read.
    # Failed before: state was CLOSED after the read, so send_text and
    # send_pong raised StateError.
    conn = codec.Connection("server")
    wire = frame(0x1, b"hi") + frame(0x9, b"p") + frame(0x8, close_payload(1000, b""))
    out = []
    for event in conn.receive_data(wire):
        if isinstance(event, Text):
            out.append(conn.send_text(event.data))
        elif isinstance(event, Ping):
            out.append(conn.send_pong(event.data))
        elif isinstance(event, Close):
            assert conn.echo_pending
            out.append(conn.data_to_send())
    assert out == [b"\x81\x02hi", b"\x8a\x01p", b"\x88\x02\x03\xe8"]
    assert conn.state is State.CLOSED
    with pytest.raises(StateError, match="after our Close"):
        conn.send_text("late")
    assert conn.send_pong(b"") == b""  # after both Closes: nothing to send


def test_a_ping_while_we_wait_for_the_peers_close_is_answered(codec):
    # RFC 6455 §5.5.2; failed before: send_pong raised in CLOSING
    conn = codec.Connection("server")
    conn.send_close(1000)
    assert conn.state is State.CLOSING and not conn.echo_pending
    [ping] = conn.receive_data(frame(0x9, b"still there?"))
    assert conn.send_pong(ping.data) == b"\x8a\x0cstill there?"
    with pytest.raises(StateError, match="after our Close"):
        conn.send_ping(b"")
    assert conn.receive_data(frame(0x8, close_payload(1000, b""))) == [Close(1000, "")]
    assert conn.state is State.CLOSED and conn.data_to_send() == b""


def test_messages_after_receive_eof_say_the_transport_ended(codec):
    # failed before: "a Close was already sent or received", which was not true
    conn = codec.Connection("server")
    with pytest.raises(ProtocolError):
        conn.receive_eof()
    for call in (lambda: conn.send_text("x"), lambda: conn.send_pong(b""), conn.send_close):
        with pytest.raises(StateError, match="receive_eof"):
            call()
    with pytest.raises(StateError):
        conn.receive_eof()


@pytest.mark.parametrize("kind", BUFFER_KINDS)
def test_send_side_lengths_count_bytes_for_every_buffer_kind(codec, kind):
    # failed before: a strided view raised BufferError in the compiled twin, and
    # send_ping(memoryview(array("I", range(40)))) passed the 125-byte check
    # on 40 items and emitted a 160-byte Ping
    import array

    conn = codec.Connection("server")
    payload = bytes(range(100))
    assert conn.send_binary(as_buffer(payload, kind)) == b"\x82\x64" + payload
    assert conn.send_ping(as_buffer(payload[:20], kind)) == b"\x89\x14" + payload[:20]
    with pytest.raises(ValueError, match="125 bytes"):
        conn.send_ping(memoryview(array.array("I", range(40))))
    server = codec.Connection("server")
    client = codec.Connection("client")
    wire = client.send_binary(as_buffer(payload, kind))
    assert server.receive_data(as_buffer(wire, kind)) == [Binary(payload)]
    assert server.stats.bytes_in == len(wire)
    assert codec.apply_mask(as_buffer(payload, kind), as_buffer(b"abcd", kind)) == \
        codec.apply_mask(payload, b"abcd")


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_a_forked_child_draws_its_own_mask_keys(codec):
    # failed before: parent and child sliced the same batch of keys
    import os

    conn = codec.Connection("client")
    conn.send_binary(b"warm the pool")  # the parent holds a batch of keys
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next three frames' keys
        try:
            keys = b"".join(conn.send_binary(b"x")[2:6] for _ in range(3))
            os.write(write, keys)
        finally:
            os._exit(0)
    os.close(write)
    child = b""
    while len(child) < 12:
        piece = os.read(read, 12)
        if not piece:
            break
        child += piece
    os.close(read)
    os.waitpid(pid, 0)
    parent = b"".join(conn.send_binary(b"x")[2:6] for _ in range(3))
    assert len(child) == 12 and child != parent


def test_a_ping_in_the_same_read_as_the_peers_close_after_ours(codec):
    # review finding: [Ping, Close] after our Close left CLOSED and send_pong raised
    conn = codec.Connection("server")
    conn.send_close(1001)
    events = conn.receive_data(frame(0x9, b"x") + frame(0x8, close_payload(1001, b"")))
    assert [type(e).__name__ for e in events] == ["Ping", "Close"]
    assert conn.send_pong(b"x") == b""
    assert conn.state is State.CLOSED


def test_receive_eof_keeps_a_pending_echo(codec):
    # review finding: a half-closed transport can still carry the echo
    conn = codec.Connection("server")
    conn.receive_data(frame(0x8, close_payload(1000, b"")))
    conn.receive_eof()
    assert conn.echo_pending and conn.data_to_send() == b"\x88\x02\x03\xe8"


def test_trace_sees_only_what_was_sent(codec):
    # review finding: the trace fired before validation, recording frames never sent
    seen = []
    conn = codec.Connection("server", trace=seen.append)
    with pytest.raises(ValueError):
        conn.send_ping(b"x" * 200)
    conn.send_text("a", final=False)
    with pytest.raises(StateError):
        conn.send_binary(b"b")
    conn.send_text("c")
    assert seen == [Text("a", False), Text("c", True)]


# -- message_in_progress (issue 7 review finding) ---------------------------------------------

# a text message in three fragments with a Ping between the first two, then a whole one
MID_STREAM = [
    (frame(0x1, b"one ", fin=False), True),
    (frame(0x9, b"p"), True),
    (frame(0x0, b"two ", fin=False), True),
    (frame(0x0, b"three"), False),
    (frame(0x2, b"whole"), False),
]


@pytest.mark.parametrize("assemble", [True, False])
def test_message_in_progress_follows_the_fragments(codec, assemble):
    conn = codec.Connection("server", assemble=assemble)
    assert conn.message_in_progress is False
    for data, expected in MID_STREAM:
        conn.receive_data(data)
        assert conn.message_in_progress is expected, data


@pytest.mark.parametrize("assemble", [True, False])
def test_message_in_progress_fed_a_byte_at_a_time(codec, assemble):
    """True once the first non-final frame is complete, never while it (or a
    whole unfragmented message) is still arriving; False once the final frame
    is complete."""
    conn = codec.Connection("server", assemble=assemble)
    seen = []
    for data, _ in MID_STREAM:
        for i in range(len(data)):
            conn.receive_data(data[i:i + 1])
            seen.append(conn.message_in_progress)
    sizes = [len(d) for d, _ in MID_STREAM]
    first, ping, second, third, whole = (sum(sizes[:k + 1]) for k in range(5))
    assert not any(seen[:first - 1]) and seen[first - 1]
    assert all(seen[first - 1:third - 1]) and not seen[third - 1]
    assert not any(seen[third - 1:])


@pytest.mark.parametrize("assemble", [True, False])
def test_message_in_progress_tells_a_close_in_the_middle_of_a_message(codec, assemble):
    conn = codec.Connection("server", assemble=assemble)
    events = conn.receive_data(frame(0x1, b"half", fin=False) + frame(0x8, close_payload(1000, b"")))
    assert isinstance(events[-1], Close) and conn.message_in_progress is True
    calm = codec.Connection("server", assemble=assemble)
    events = calm.receive_data(frame(0x1, b"whole") + frame(0x8, close_payload(1000, b"")))
    assert events == [Text("whole"), Close(1000, "")] and calm.message_in_progress is False
