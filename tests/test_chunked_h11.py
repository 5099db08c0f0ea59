"""Differential tests against h11: each side decodes what the other encodes.

Where h11 accepts bytes RFC 9112 forbids, the case is listed below (and in
docs/design.md) and our strict answer is tested.
"""
from __future__ import annotations

import h11
import pytest
from chunked_helpers import run
from helpers import twin_fixture
from hypothesis import given
from hypothesis import strategies as st

chunked = twin_fixture("chunked")

HEAD = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"


def h11_decode(body: bytes):
    """(status, body bytes, trailers) as h11's client sees a chunked response."""
    conn = h11.Connection(h11.CLIENT)
    conn.send(h11.Request(method="GET", target="/", headers=[("Host", "example")]))
    conn.send(h11.EndOfMessage())
    conn.receive_data(HEAD + body)
    data = b""
    try:
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                return "incomplete", data, None
            if isinstance(event, h11.Data):
                data += event.data
            elif isinstance(event, h11.EndOfMessage):
                return "ok", data, [(bytes(k), bytes(v)) for k, v in event.headers]
    except h11.RemoteProtocolError:
        return "error", data, None


def h11_encode(pieces: list[bytes], trailers: list[tuple[bytes, bytes]]) -> bytes:
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(b"GET / HTTP/1.1\r\nHost: example\r\n\r\n")
    conn.next_event()
    conn.next_event()
    conn.send(h11.Response(status_code=200, headers=[("Transfer-Encoding", "chunked")]))
    out = b"".join(conn.send(h11.Data(data=p)) for p in pieces)
    return out + conn.send(h11.EndOfMessage(headers=trailers))


token = st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=8).filter(
    lambda t: t not in ("content-length", "transfer-encoding"))
value = st.text("abcdefghijklmnopqrstuvwxyz0123456789 !#=", max_size=12).map(str.strip)
pieces_st = st.lists(st.binary(max_size=500), max_size=8)
trailers_st = st.lists(st.tuples(token, value), max_size=3)


@given(pieces=pieces_st, trailers=trailers_st)
def test_we_decode_what_h11_encodes(chunked, pieces, trailers):
    fields = [(k.encode(), v.encode()) for k, v in trailers]
    wire = h11_encode(pieces, fields)
    got = run(chunked, [wire])
    assert got["error"] is None and got["done"]
    body = b"".join(e[1] for e in got["events"] if e[0] == "chunk")
    assert body == b"".join(pieces)
    seen = [e[1] for e in got["events"] if e[0] == "trailers"]
    assert (seen[0] if seen else []) == fields


@given(pieces=pieces_st, trailers=trailers_st)
def test_h11_decodes_what_we_encode(chunked, pieces, trailers):
    enc = chunked.ChunkedEncoder()
    wire = b"".join(enc.encode(p) for p in pieces) + enc.finish(trailers)
    status, body, fields = h11_decode(wire)
    assert status == "ok"
    assert body == b"".join(pieces)
    assert fields == [(k.encode(), v.encode()) for k, v in trailers]


# Bytes h11 0.16 accepts although RFC 9112 / RFC 9110 forbid them.
H11_LENIENCIES = [
    ("whitespace after chunk-size", b"5 \r\nhello\r\n0\r\n\r\n", 2),
    ("tab after chunk-size", b"5\t\r\nhello\r\n0\r\n\r\n", 2),
    ("extension name not a token", b"5;a@b\r\nhello\r\n0\r\n\r\n", 3),
    ("control character in extension", b"5;a=\x01\r\nhello\r\n0\r\n\r\n", 4),
    ("empty extension name", b"5;\r\nhello\r\n0\r\n\r\n", 2),
    ("unterminated quoted-string", b'5;a="b\r\nhello\r\n0\r\n\r\n', 6),
    ("Content-Length in trailers", b"0\r\nContent-Length: 5\r\n\r\n", 3),
    ("Transfer-Encoding in trailers", b"0\r\nTransfer-Encoding: chunked\r\n\r\n", 3),
    ("bare LF ending the trailer section", b"0\r\n\n", 3),
    ("bare LF between trailer lines", b"0\r\na: b\nc: d\r\n\r\n", 7),
    ("obs-fold in trailers", b"0\r\na: b\r\n c\r\n\r\n", 9),
]


@pytest.mark.parametrize("wire,offset", [c[1:] for c in H11_LENIENCIES],
                         ids=[c[0] for c in H11_LENIENCIES])
def test_h11_accepts_what_we_reject(chunked, wire, offset):
    assert h11_decode(wire)[0] == "ok"
    got = run(chunked, [wire])
    assert got["error"] is not None and got["error"][0] == "ProtocolError"
    assert got["error"][2] == offset


def test_h11_refuses_more_than_20_hex_digits_which_rfc_9112_allows(chunked):
    # The other way round: 1*HEXDIG has no length cap; leading zeros are fine.
    wire = b"0" * 20 + b"5\r\nhello\r\n0\r\n\r\n"
    assert h11_decode(wire)[0] == "error"
    got = run(chunked, [wire])
    assert got["error"] is None and got["events"][0] == ("chunk", b"hello", ())


def test_h11_waits_forever_on_an_overflowing_size_we_refuse_at_once(chunked):
    wire = b"8000000000000000\r\n"
    assert h11_decode(wire)[0] == "incomplete"
    assert run(chunked, [wire])["error"][0] == "ProtocolError"
