"""Defects a framework-author review found in the embedding contract (issue 7),
each pinned on both twins: header-like arguments (ints, dicts), str
subclasses for WebSocket text, the server hand-off's keyword check before the
101, the eof rules shared by the three decoders, and the client's message when
the server closes during the opening handshake.
"""
from __future__ import annotations

import enum
import tracemalloc
from typing import Any

import h11
import pytest
from helpers import twin_fixture
from test_buffer_kinds import connection
from ws_helpers import frame

from streamcore import IncompleteError, ProtocolError, StateError
from streamcore.sse import response_headers
from streamcore.ws import State, Text
from streamcore.ws.handshake import ClientHandshake, HandshakeError, ServerHandshake

chunked = twin_fixture("chunked")
sse = twin_fixture("sse")
codec = twin_fixture("ws")


# -- 1. an int (or a list of ints) where a header, trailer or extension value goes -------------


@pytest.mark.parametrize("value", [20_000_000, [104, 105], None, 3.5])
def test_a_trailer_value_that_is_not_str_or_bytes_is_a_type_error_allocating_nothing(chunked, value):
    enc = chunked.ChunkedEncoder()
    tracemalloc.start()
    try:
        with pytest.raises(TypeError, match="trailer field value must be str or a bytes-like"):
            enc.finish(trailers=[("X", value)])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000  # bytes(20_000_000) allocated 20 MB of zeros


@pytest.mark.parametrize("value", [7, [104, 105]])
def test_a_chunk_extension_value_or_name_that_is_not_str_or_bytes_is_a_type_error(chunked, value):
    enc = chunked.ChunkedEncoder()
    with pytest.raises(TypeError, match="chunk extension value"):
        enc.encode(b"x", extensions=[("id", value)])
    with pytest.raises(TypeError, match="chunk extension name"):
        enc.encode(b"x", extensions=[(value, "1")])
    with pytest.raises(TypeError, match="chunk extension value"):
        enc.finish(extensions=[("id", value)])


def test_bytes_like_values_are_still_taken(chunked):
    enc = chunked.ChunkedEncoder()
    assert enc.encode(b"x", extensions=[("a", bytearray(b"1")), ("b", memoryview(b"2"))]) == \
        b"1;a=1;b=2\r\nx\r\n"
    assert enc.finish(trailers=[(b"X", bytearray(b"v"))]) == b"0\r\nX: v\r\n\r\n"


@pytest.mark.parametrize("value", [[104, 105], 5, None])
def test_handshake_extra_header_values_must_be_str_or_bytes(value):
    with pytest.raises(TypeError, match="extra header value must be str or a bytes-like"):
        ServerHandshake(extra_headers=[("X", value)])
    with pytest.raises(TypeError, match="extra header value"):
        ClientHandshake("h", extra_headers=[("X", value)])
    with pytest.raises(TypeError, match="extra header name"):
        ServerHandshake(extra_headers=[(value, "v")])


def test_sse_response_headers_still_refuse_ints():
    with pytest.raises(TypeError):
        response_headers([("x", 5)])


def test_error_messages_do_not_print_a_huge_value_whole(chunked):
    huge = "\x01" * 1_000_000
    with pytest.raises(ValueError) as info:
        chunked.ChunkedEncoder().finish(trailers=[("X", huge)])
    assert len(str(info.value)) < 300
    with pytest.raises(ValueError) as info:
        chunked.ChunkedEncoder().encode(b"x", extensions=[("a" * 1_000_000 + " ", "v")])
    assert len(str(info.value)) < 300
    with pytest.raises(ValueError) as info:
        ServerHandshake(extra_headers=[("X" * 1_000_000 + " ", "v")])
    assert len(str(info.value)) < 300
    with pytest.raises(ValueError) as info:
        response_headers([("x", "\n" * 1_000_000)])
    assert len(str(info.value)) < 300


# -- 2. send_text with a str subclass --------------------------------------------------------------


class Color(str, enum.Enum):
    RED = "red"

    def __str__(self) -> str:
        return "Color.RED!"


class Loud(str):
    def encode(self, *args: Any, **kwargs: Any) -> bytes:  # type: ignore[override]
        return b"OVERRIDDEN"

    def __str__(self) -> str:
        return "OVERRIDDEN"


@pytest.mark.parametrize("text", [Color.RED, Loud("red")])
@pytest.mark.parametrize("deflate", [False, True])
def test_send_text_takes_the_text_a_str_subclass_holds(codec, text, deflate):
    server = connection(codec, "server", deflate)
    client = connection(codec, "client", deflate)
    assert client.receive_data(server.send_text(text)) == [Text("red", True)]
    # fragments (never compressed here) go through the same rule
    out = server.send_text(text, final=False) + server.send_text(Loud("!"))
    assert client.receive_data(out) == [Text("red!", True)]
    trace: list[Any] = []
    traced = codec.Connection("server", trace=trace.append)
    traced.send_text(text)
    assert trace == [Text("red", True)] and type(trace[0].data) is str


@pytest.mark.parametrize("text", [Color.RED, Loud("red")])
def test_encoder_text_takes_a_str_subclass_in_both_twins(codec, text):
    assert codec.Encoder(False).text(text) == codec.Encoder(False).text("red")


@pytest.mark.parametrize("value", [b"x", bytearray(b"x"), 5, None])
def test_send_text_refuses_what_is_not_a_str_with_one_type_error(codec, value):
    server = codec.Connection("server")
    with pytest.raises(TypeError, match=r"send_text\(\) takes a str, not "):
        server.send_text(value)
    with pytest.raises(TypeError, match=r"send_text\(\) takes a str, not "):
        server.send_text(value, final=False)


# -- 3. a dict where a list of pairs is expected ---------------------------------------------------


def test_a_mapping_is_taken_as_its_items_everywhere(chunked):
    enc = chunked.ChunkedEncoder()
    assert enc.encode(b"x", extensions={"id": "1"}) == b"1;id=1\r\nx\r\n"
    assert enc.finish(trailers={"XY": "v"}, extensions={"e": None}) == b"0;e\r\nXY: v\r\n\r\n"
    assert response_headers({"ab": "zz"})[-1] == (b"ab", b"zz")
    http = h11.Connection(h11.SERVER)
    http.receive_data(ClientHandshake("h").send())
    request = http.next_event()
    upgrade = ServerHandshake(extra_headers={"ab": "zz"}).upgrade(http, request)
    assert b"\r\nab: zz\r\n" in upgrade.data
    assert ClientHandshake("h", extra_headers={"ab": "zz"}).extra_headers == [(b"ab", b"zz")]


def test_a_decoded_round_trip_of_mapping_extensions_and_trailers(chunked):
    enc = chunked.ChunkedEncoder()
    wire = enc.encode(b"abc", extensions={"id": "1", "flag": None}) + enc.finish(trailers={"X": "v"})
    events = chunked.ChunkedDecoder().feed(wire)
    assert events[0].data == b"abc"
    assert [tuple(p) for p in events[0].extensions] in (
        [("id", "1"), ("flag", None)], [(b"id", b"1"), (b"flag", None)])
    assert [(bytes(k).lower(), bytes(v)) for k, v in events[1].headers] == [(b"x", b"v")]


@pytest.mark.parametrize("fields", ["ab", b"ab", [("a", "b", "c")], ["ab"], 5])
def test_what_is_neither_pairs_nor_a_mapping_is_a_type_error(chunked, fields):
    with pytest.raises(TypeError):
        chunked.ChunkedEncoder().finish(trailers=fields)
    with pytest.raises(TypeError):
        chunked.ChunkedEncoder().encode(b"x", extensions=fields)
    with pytest.raises(TypeError):
        response_headers(fields)
    with pytest.raises(TypeError):
        ServerHandshake(extra_headers=fields)


# -- 4. bad Connection keywords are refused before the 101 goes out --------------------------------


@pytest.mark.parametrize("kw", [{"max_message_size": "1M"}, {"no_such_keyword": 1},
                                {"deflate": None}, {"max_frame_size": -1}])
def test_bad_connection_keywords_raise_before_the_101_is_sent(codec, kw):
    http = h11.Connection(h11.SERVER)
    http.receive_data(ClientHandshake("h").send())
    request = http.next_event()
    handshake = ServerHandshake()
    with pytest.raises((TypeError, ValueError)):
        handshake.connect(http, request, connection_class=codec.Connection, **kw)
    assert http.our_state is not h11.SWITCHED_PROTOCOL
    # the connection can still answer: here with the 101 a correct call sends
    opened = handshake.connect(http, request, connection_class=codec.Connection)
    assert opened.data.startswith(b"HTTP/1.1 101 ")


# -- 5. the eof rules are the same in the three protocols ------------------------------------------


def test_chunked_feed_and_eof_after_a_failed_eof_are_state_errors(chunked):
    dec = chunked.ChunkedDecoder()
    dec.feed(b"5\r\nab")
    with pytest.raises(IncompleteError):
        dec.eof()
    with pytest.raises(StateError):
        dec.feed(b"c")
    with pytest.raises(StateError):
        dec.eof()


def test_chunked_eof_after_a_protocol_error_raises_it_once_then_state_error(chunked):
    dec = chunked.ChunkedDecoder()
    with pytest.raises(ProtocolError):
        dec.feed(b"zz\r\n")
    with pytest.raises(ProtocolError) as info:
        dec.eof()
    assert not isinstance(info.value, StateError) and info.value.events == []
    with pytest.raises(StateError):
        dec.eof()
    with pytest.raises(StateError):
        dec.feed(b"0\r\n\r\n")


def test_sse_eof_after_a_protocol_error_raises_it_once_then_state_error(sse):
    dec = sse.SSEDecoder(max_line_size=4)
    with pytest.raises(ProtocolError):
        dec.feed(b"data: too long\n")
    with pytest.raises(ProtocolError) as info:
        dec.eof()
    assert info.value.events == []
    with pytest.raises(StateError):
        dec.eof()
    with pytest.raises(StateError):
        dec.feed(b"data: x\n\n")


def test_ws_receive_eof_after_a_protocol_error_raises_it_once_then_state_error(codec):
    conn = codec.Connection("server")
    with pytest.raises(ProtocolError) as first:
        conn.receive_data(frame(0x1, b"x", mask=None))  # a client must mask (§5.1)
    with pytest.raises(ProtocolError) as info:
        conn.receive_eof()
    assert info.value.close_code == first.value.close_code and info.value.events == []
    assert conn.state is State.CLOSED
    with pytest.raises(StateError):
        conn.receive_eof()
    with pytest.raises(StateError):
        conn.receive_data(b"")


def test_ws_receive_eof_after_a_close_still_returns(codec):
    server = codec.Connection("server")
    client = codec.Connection("client")
    server.receive_data(client.send_close(1000))
    server.data_to_send()
    server.receive_eof()
    with pytest.raises(StateError):
        server.receive_eof()


# -- 6. the server closes during the opening handshake ---------------------------------------------


@pytest.mark.parametrize("before", [b"", b"HTTP/1.1 101 Switching"])
def test_client_handshake_says_the_connection_closed(before):
    client = ClientHandshake("h")
    client.send()
    if before:
        assert client.receive_data(before) is None
    with pytest.raises(HandshakeError, match="the connection closed during the opening handshake"):
        client.receive_data(b"")


# -- small: the Content-Length refusal says why -----------------------------------------------------


@pytest.mark.parametrize("name", ["Content-Length", "transfer-encoding"])
def test_body_framing_headers_are_refused_for_the_true_reason(name):
    with pytest.raises(ValueError) as info:
        ServerHandshake(extra_headers=[(name, "0")])
    assert "write it themselves" not in str(info.value)
    assert "has a body" in str(info.value)
