"""What the SSE encoder takes besides a plain str: UTF-8 bytes (what orjson
and ``json.dumps(...).encode()`` give), str subclasses (``enum.StrEnum``,
tagged str types), the mapping items of ``encode_events`` that carry
``retry`` and ``comment``; and ``response_headers``, the response head.

Every test runs on both twins (the ``sse`` fixture); where the twins must
agree to the letter (error messages) both are called side by side.
"""
from __future__ import annotations

import enum
import json
import types
from typing import Any

import h11
import pytest
from helpers import BUFFER_KINDS, as_buffer, both_twins, twin_fixture

from streamcore.sse._common import Event

sse = twin_fixture("sse")
PY, CY = both_twins("sse")


def decode(mod: types.ModuleType, wire: bytes) -> tuple[list[Event], Any]:
    dec = mod.SSEDecoder(max_event_size=None)
    events = dec.feed(wire)
    dec.eof()
    return events, dec


def error(fn: Any, *args: Any, **kw: Any) -> tuple[type, str]:
    with pytest.raises((TypeError, ValueError)) as info:
        fn(*args, **kw)
    return type(info.value), str(info.value)


def same_error(name: str, *args: Any, **kw: Any) -> tuple[type, str]:
    """The error both twins raise, checked to be the same class and message."""
    py = error(getattr(PY, name), *args, **kw)
    assert error(getattr(CY, name), *args, **kw) == py
    return py


# -- bytes data ------------------------------------------------------------------


def test_bytes_data_is_written_as_the_str_would_be(sse: types.ModuleType) -> None:
    payload = json.dumps({"token": "héllo €", "emoji": "😀", "i": 1}, ensure_ascii=False)
    assert sse.encode_event(payload.encode()) == sse.encode_event(payload)
    assert sse.encode_event(payload.encode(), event="tok", id="9") == (
        b"event: tok\nid: 9\ndata: " + payload.encode() + b"\n\n"
    )


@pytest.mark.parametrize("kind", BUFFER_KINDS)
def test_every_buffer_kind_gives_the_same_lines(sse: types.ModuleType, kind: str) -> None:
    text = "a\r\nb\rc\nd é€😀\r\n\n" * 3 + "x" * 31  # 4-aligned lengths and not
    for data in (text, text[:-1], text[:-2], ""):
        raw = data.encode()
        assert sse.encode_event(as_buffer(raw, kind)) == sse.encode_event(data), (kind, data)
        assert sse.encode_event(comment=as_buffer(raw, kind)) == sse.encode_event(comment=data)


def test_bytes_are_split_on_crlf_cr_and_lf_only(sse: types.ModuleType) -> None:
    assert sse.encode_event(b"a\r\nb\rc\nd") == b"data: a\ndata: b\ndata: c\ndata: d\n\n"
    assert sse.encode_event(b"\r\n\r\r\n\n") == b"data: \n" * 4 + b"data: \n\n"
    # VT, FF, FS, NEL (C2 85), U+2028 (E2 80 A8) and NUL stay inside the line
    other = "a\x0bb\x0cc\x1cd\x85e\u2028f\x00g".encode()
    assert sse.encode_event(other) == b"data: " + other + b"\n\n"


def test_bytes_comment_lines(sse: types.ModuleType) -> None:
    assert sse.encode_event(b"x", comment=b"a\nb\r\n") == b": a\n: b\n:\ndata: x\n\n"
    assert sse.keepalive(b"ping") == b": ping\n\n"


def test_empty_bytes_is_one_empty_data_line(sse: types.ModuleType) -> None:
    assert sse.encode_event(b"") == b"data: \n\n"
    assert sse.encode_event(bytearray()) == b"data: \n\n"
    assert decode(sse, sse.encode_event(b""))[0] == [Event("")]


def test_bytes_data_round_trips_through_the_decoder(sse: types.ModuleType) -> None:
    raw = "line one\r\nligne deux é\rthird 😀".encode()
    events, _ = decode(sse, sse.encode_event(raw, id="1"))
    assert events == [Event("line one\nligne deux é\nthird 😀", id="1")]


def test_large_bytes_data(sse: types.ModuleType) -> None:
    # past the compiled twin's on-stack buffer and its 8-byte ASCII steps
    raw = ("é" * 999 + "x" * 1001 + "\n").encode() * 50
    wire = sse.encode_event(raw)
    assert wire == sse.encode_event(raw.decode())
    assert decode(sse, wire)[0] == [Event(raw.decode())]


@pytest.mark.parametrize(
    "bad,at,reason",
    [
        (b"\xff", 0, "invalid start byte"),
        (b"\x80", 0, "invalid start byte"),  # a lone continuation byte
        (b"\xc0\xaf", 0, "invalid start byte"),  # overlong '/'
        (b"\xc1\xbf", 0, "invalid start byte"),
        (b"\xe0\x80\xaf", 0, "invalid continuation byte"),  # overlong, 3 bytes
        (b"\xf0\x80\x80\xaf", 0, "invalid continuation byte"),  # overlong, 4 bytes
        (b"\xed\xa0\x80", 0, "invalid continuation byte"),  # surrogate U+D800
        (b"\xed\xbf\xbf", 0, "invalid continuation byte"),  # surrogate U+DFFF
        (b"\xf4\x90\x80\x80", 0, "invalid continuation byte"),  # past U+10FFFF
        (b"\xf5\x80\x80\x80", 0, "invalid start byte"),
        (b"ok \xe2\x82", 3, "unexpected end of data"),  # cut short at the end
        (b"ok \xe2\x82\nmore", 3, "invalid continuation byte"),  # cut short by a LF
        (b"\xf0\x9f\x98", 0, "unexpected end of data"),
        (b"\xc3\xa9\xc3", 2, "unexpected end of data"),
        (b"x" * 100 + b"\xfe" + b"y" * 20, 100, "invalid start byte"),  # after many ASCII steps
    ],
)
def test_bytes_that_are_not_utf8_raise_value_error(bad: bytes, at: int, reason: str) -> None:
    # an event stream is UTF-8 only: a client would read U+FFFD, not the data
    exc, message = same_error("encode_event", bad)
    assert exc is ValueError
    assert message.startswith(f"data is not UTF-8 ({reason} at byte {at})"), message
    assert same_error("encode_event", comment=bad)[1].startswith("comment is not UTF-8")
    assert same_error("encode_events", [(bad, "message", "")])[1] == message
    assert same_error("encode_event", bytearray(bad))[1] == message
    assert same_error("encode_event", memoryview(bad))[1] == message


def test_a_bad_byte_at_every_position_is_found() -> None:
    # the compiled twin skips ASCII eight bytes at a time: no position is missed
    for n in range(1, 20):
        for at in range(n):
            raw = bytearray(b"a" * n)
            raw[at] = 0xFF
            message = same_error("encode_event", bytes(raw))[1]
            assert f"at byte {at})" in message


def test_valid_sequences_of_every_length_pass(sse: types.ModuleType) -> None:
    for text in ("\x7f", "\x80", "\u07ff", "\u0800", "\ud7ff", "\ue000", "\uffff",
                 "\U00010000", "\U0010ffff"):
        for pad in range(9):
            data = "a" * pad + text + "b"
            assert sse.encode_event(data.encode()) == sse.encode_event(data), repr(data)


def utf8_ok(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def short_sequences() -> list[bytes]:
    """Every 1- and 2-byte sequence, and 3- and 4-byte ones from every lead
    byte with each edge of the continuation ranges (the compiled twin's
    validator must agree with Python's codec on each)."""
    seqs = [bytes([a, b]) for a in range(256) for b in range(256)]
    edges = [0x00, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xFF]
    for lead in range(0xC0, 0x100):
        for b1 in edges:
            for b2 in edges:
                seqs.append(bytes([lead, b1, b2]))
                seqs.append(bytes([lead, b1, b2, 0x80]))
                seqs.append(bytes([lead, b1, 0x80, b2]))
    return seqs


def test_utf8_check_agrees_with_the_codec_on_short_sequences(sse: types.ModuleType) -> None:
    wrong = []
    for raw in short_sequences():
        try:
            sse.encode_event(raw)
            ok = True
        except ValueError:
            ok = False
        if ok != utf8_ok(raw):
            wrong.append(raw)
    assert wrong == []


def test_fields_are_checked_in_order_before_bad_bytes(sse: types.ModuleType) -> None:
    with pytest.raises(ValueError, match="event must not contain"):
        sse.encode_event(b"\xff", event="a\nb")
    with pytest.raises(TypeError, match="retry must be an int"):
        sse.encode_event(b"\xff", retry="5")


def test_other_types_are_refused_with_the_field_named() -> None:
    bad: list[dict[str, Any]] = [{"data": 5}, {"data": 1.5}, {"comment": object()}, {"data": [b"x"]}]
    for kw in bad:
        ((name, value),) = kw.items()
        exc, message = same_error("encode_event", **kw)
        assert exc is TypeError
        assert message == f"{name} must be a str or a bytes-like object, not {type(value).__name__}"
    not_str: list[dict[str, Any]] = [{"event": b"t"}, {"id": b"1"}, {"id": memoryview(b"1")}]
    for kw in not_str:
        ((name, value),) = kw.items()
        assert same_error("encode_event", "x", **kw) == (
            TypeError, f"{name} must be a str, not {type(value).__name__}")


def test_encode_events_takes_bytes_data(sse: types.ModuleType) -> None:
    items = [(b'{"a": 1}', "tok", "1"), (bytearray(b"x\ny"), "message", "1"),
             (memoryview("é".encode()), "message", "2")]
    assert sse.encode_events(items) == (
        b'event: tok\nid: 1\ndata: {"a": 1}\n\n'
        b"data: x\ndata: y\n\n"
        b"id: 2\ndata: \xc3\xa9\n\n"
    )


def test_a_batch_of_bytes_is_the_batch_of_str(sse: types.ModuleType) -> None:
    texts = ['{"t": "a"}', "é€", "", "two\nlines", "cr\r\nlf", "😀" * 50]
    items = [(t, "tok" if n % 2 else "message", str(n // 2)) for n, t in enumerate(texts)]
    as_bytes = [(t.encode(), e, i) for t, e, i in items]
    assert sse.encode_events(as_bytes) == sse.encode_events(items)
    assert sse.encode_events(as_bytes[:3]) == sse.encode_events(items[:3])  # one-line data only


def test_bytes_data_is_not_kept(sse: types.ModuleType) -> None:
    # the caller may reuse its buffer at once: the output is a copy
    buf = bytearray(b"abc")
    wire = sse.encode_event(buf)
    buf[:] = b"xyz"
    assert wire == b"data: abc\n\n"
    buf.extend(b"!")  # no export left behind: the bytearray can still resize


# -- str subclasses ----------------------------------------------------------------


class Tricky(str):
    """A str subclass whose methods all lie: only its content may count."""

    def __str__(self) -> str:
        return "STR"

    def __format__(self, spec: str) -> str:
        return "FORMAT"

    def __eq__(self, other: object) -> bool:
        return True

    def __ne__(self, other: object) -> bool:
        return False

    __hash__ = str.__hash__

    def __contains__(self, item: object) -> bool:
        return False

    def __len__(self) -> int:
        return 0

    def encode(self, *args: Any, **kw: Any) -> bytes:
        return b"ENCODE"

    def replace(self, *args: Any, **kw: Any) -> str:
        return "REPLACE"

    def split(self, *args: Any, **kw: Any) -> list[str]:
        return ["SPLIT"]

    def splitlines(self, *args: Any, **kw: Any) -> list[str]:
        return ["SPLITLINES"]


class Kind(str, enum.Enum):
    """A str-mixin enum: ``str(Kind.TOKEN)`` is ``'Kind.TOKEN'``, its content ``'token'``."""

    TOKEN = "token"
    MESSAGE = "message"


STR_ENUMS: list[Any] = [Kind]
if hasattr(enum, "StrEnum"):  # Python 3.11+
    STR_ENUMS.append(enum.StrEnum("Tag", {"TOKEN": "token", "MESSAGE": "message"}))


def test_str_subclass_counts_as_its_content(sse: types.ModuleType) -> None:
    # failed before: both twins refused any str subclass (TypeError)
    got = sse.encode_event(Tricky("a\r\nb"), event=Tricky("t"), id=Tricky("1"),
                           comment=Tricky("c\nd"))
    assert got == b": c\n: d\nevent: t\nid: 1\ndata: a\ndata: b\n\n"


@pytest.mark.parametrize("enum_cls", STR_ENUMS, ids=lambda c: c.__name__)
def test_str_enum_members_are_written_as_their_values(sse: types.ModuleType, enum_cls: Any) -> None:
    assert sse.encode_event(enum_cls.TOKEN, event=enum_cls.TOKEN, id=enum_cls.TOKEN) == (
        b"event: token\nid: token\ndata: token\n\n"
    )
    assert sse.encode_events([("x", enum_cls.TOKEN, ""), ("y", enum_cls.MESSAGE, "")]) == (
        b"event: token\ndata: x\n\ndata: y\n\n"
    )


def test_str_subclass_is_checked_by_its_content(sse: types.ModuleType) -> None:
    # Tricky says it contains nothing and has no length: the checks read the text
    with pytest.raises(ValueError, match="CR or LF"):
        sse.encode_event("x", event=Tricky("a\nb"))
    with pytest.raises(ValueError, match="must not be empty"):
        sse.encode_event("x", event=Tricky(""))
    with pytest.raises(ValueError, match="NUL"):
        sse.encode_event("x", id=Tricky("a\x00b"))
    with pytest.raises(ValueError):
        sse.encode_event(Tricky("\ud800"))  # a lone surrogate cannot be UTF-8


def test_str_subclass_comparisons_use_the_content(sse: types.ModuleType) -> None:
    # Tricky claims to equal everything: "message" and the current id still
    # decide by the text, so nothing is left out or written twice
    items = [("a", Tricky("t"), Tricky("1")), ("b", Tricky("message"), Tricky("1")),
             ("c", "message", Tricky("2"))]
    wire = sse.encode_events(items, last_event_id=Tricky("1"))
    assert wire == b"event: t\ndata: a\n\ndata: b\n\nid: 2\ndata: c\n\n"
    resumed = sse.SSEDecoder(last_event_id="1")  # the client holds "1"
    assert resumed.feed(wire) == [Event("a", "t", "1"), Event("b", id="1"), Event("c", id="2")]


def test_a_fake_str_is_refused_alike() -> None:
    class Fake:
        @property  # type: ignore[misc]
        def __class__(self) -> type:
            return str

    fake = Fake()
    assert isinstance(fake, str)  # it fools isinstance, not the real type
    for kw in ({"event": fake}, {"id": fake}):
        assert same_error("encode_event", "x", **kw)[0] is TypeError
    assert same_error("encode_event", fake) == (
        TypeError, "data must be a str or a bytes-like object, not Fake")
    assert same_error("encode_events", [("x", fake, "")]) == (TypeError, "event must be a str, not Fake")


def test_last_event_id_must_be_a_str() -> None:
    assert same_error("encode_events", [Event("x")], last_event_id=5) == (
        TypeError, "last_event_id must be a str, not int")


# -- encode_events: mapping items with retry and comment -----------------------------


def test_a_mapping_item_is_encode_events_keywords(sse: types.ModuleType) -> None:
    item = {"data": "x\ny", "event": "t", "id": "1", "retry": 10, "comment": "c"}
    assert sse.encode_events([item]) == sse.encode_event(**item)
    assert sse.encode_events([item]) == b": c\nevent: t\nid: 1\nretry: 10\ndata: x\ndata: y\n\n"


def test_retry_and_comment_blocks_in_a_batch(sse: types.ModuleType) -> None:
    items = [{"retry": 3000}, Event("a", id="1"), {"comment": "keep-alive"}, Event("b", id="1"),
             {"comment": b"bytes too", "retry": 500}]
    wire = sse.encode_events(items)
    assert wire == (b"retry: 3000\n\n" b"id: 1\ndata: a\n\n" b": keep-alive\n\n" b"data: b\n\n"
                    b": bytes too\nretry: 500\n\n")
    events, dec = decode(sse, wire)
    assert events == [Event("a", id="1"), Event("b", id="1")]
    assert dec.retry == 500


def test_a_mapping_without_id_keeps_the_clients_id(sse: types.ModuleType) -> None:
    wire = sse.encode_events([Event("a", id="5"), {"data": "b"}, {"data": "c", "id": "5"}])
    assert wire == b"id: 5\ndata: a\n\ndata: b\n\ndata: c\n\n"
    assert decode(sse, wire)[0] == [Event("a", id="5"), Event("b", id="5"), Event("c", id="5")]
    assert sse.encode_events([{"data": "x"}], last_event_id="9") == b"data: x\n\n"


def test_a_mapping_with_an_id_and_no_data_moves_the_id(sse: types.ModuleType) -> None:
    # a block without data dispatches nothing but sets the last event ID
    wire = sse.encode_events([{"id": "7"}, Event("x", id="7"), {"id": ""}, Event("y")])
    assert wire == b"id: 7\n\ndata: x\n\nid: \n\ndata: y\n\n"
    events, dec = decode(sse, wire)
    assert events == [Event("x", id="7"), Event("y")]


def test_a_mapping_event_of_none_or_message_writes_no_event_line(sse: types.ModuleType) -> None:
    assert sse.encode_events([{"data": "x", "event": None}, {"data": "y", "event": "message"}]) == (
        b"data: x\n\ndata: y\n\n"
    )
    assert sse.encode_events([{}]) == sse.encode_event() == b"\n"


def test_a_dict_of_three_keys_is_not_read_as_a_triple(sse: types.ModuleType) -> None:
    # failed before: a dict unpacked to its keys, writing "event: event\nid: id\ndata: data"
    wire = sse.encode_events([{"data": "x", "event": "t", "id": "1"}])
    assert wire == b"event: t\nid: 1\ndata: x\n\n"


def test_any_mapping_is_a_mapping_item(sse: types.ModuleType) -> None:
    assert sse.encode_events([types.MappingProxyType({"retry": 1, "data": "x"})]) == (
        b"retry: 1\ndata: x\n\n"
    )


def test_mapping_items_are_checked_like_encode_event() -> None:
    for item, exc in (({"retry": True}, TypeError), ({"retry": -1}, ValueError),
                      ({"event": ""}, ValueError), ({"id": "a\x00"}, ValueError),
                      ({"comment": 5}, TypeError), ({"data": b"\xff"}, ValueError),
                      ({"data": 5}, TypeError), ({"event": b"t"}, TypeError)):
        assert same_error("encode_events", [item])[0] is exc, item
        ((key, value),) = item.items()
        assert same_error("encode_events", [item]) == same_error("encode_event", **item), item


def test_a_mapping_item_checks_its_fields_in_encode_event_order() -> None:
    item = {"data": 5, "retry": -1, "id": "\n", "event": "", "comment": 7}
    assert same_error("encode_events", [item]) == same_error("encode_event", **item)
    assert same_error("encode_events", [item])[1].startswith("comment")


def test_unknown_keys_are_refused() -> None:
    assert same_error("encode_events", [{"data": "x", "retries": 5}]) == (
        TypeError,
        "encode_events() item has an unexpected key 'retries' "
        "(the keys are data, event, id, retry, comment)",
    )


def test_a_triple_still_needs_data(sse: types.ModuleType) -> None:
    # only a mapping may leave data out; an Event-shaped item always dispatches
    with pytest.raises(TypeError, match="data must be a str or a bytes-like object, not NoneType"):
        sse.encode_events([(None, "message", "")])


# -- response_headers ---------------------------------------------------------------


def test_response_headers_default(sse: types.ModuleType) -> None:
    assert sse.response_headers() == [
        (b"content-type", b"text/event-stream"),
        (b"cache-control", b"no-store"),
        (b"x-accel-buffering", b"no"),
    ]


def test_response_headers_have_the_asgi_shape(sse: types.ModuleType) -> None:
    headers = sse.response_headers([("X-Request-Id", "abc"), (b"Vary", b"Origin")])
    assert type(headers) is list
    for pair in headers:
        assert type(pair) is tuple and len(pair) == 2
        name, value = pair
        assert type(name) is bytes and type(value) is bytes
        assert name == name.lower()
    assert headers[3:] == [(b"x-request-id", b"abc"), (b"vary", b"Origin")]
    names = [name for name, _ in headers]
    assert b"connection" not in names and b"content-length" not in names


def test_response_headers_extra_replaces_a_default_in_place(sse: types.ModuleType) -> None:
    headers = sse.response_headers([("Cache-Control", "no-cache"), ("x-extra", "1")])
    assert headers == [
        (b"content-type", b"text/event-stream"),
        (b"cache-control", b"no-cache"),
        (b"x-accel-buffering", b"no"),
        (b"x-extra", b"1"),
    ]


def test_response_headers_is_a_new_list_each_call(sse: types.ModuleType) -> None:
    first = sse.response_headers()
    first.append((b"x", b"y"))
    first[0] = (b"content-type", b"text/plain")
    assert sse.response_headers() == PY.response_headers() == CY.response_headers()
    assert len(sse.response_headers()) == 3


@pytest.mark.parametrize(
    "pair,exc",
    [((b"bad name", b"x"), ValueError), ((b"", b"x"), ValueError), (("x:y", "1"), ValueError),
     ((b"x", b"a\r\nset-cookie: 1"), ValueError), ((b"x", b"a\nb"), ValueError),
     ((b"x", b"a\x00"), ValueError), (("x", "é"), ValueError), (("é", "1"), ValueError),
     ((5, b"x"), TypeError), ((b"x", None), TypeError)],
)
def test_response_headers_refuse_what_would_inject(sse: types.ModuleType, pair: Any, exc: type) -> None:
    with pytest.raises(exc):
        sse.response_headers([pair])


def test_response_headers_serialise_with_h11(sse: types.ModuleType) -> None:
    server = h11.Connection(h11.SERVER)
    server.receive_data(b"GET /events HTTP/1.1\r\nHost: example\r\nAccept: text/event-stream\r\n\r\n")
    assert isinstance(server.next_event(), h11.Request)
    wire = server.send(h11.Response(status_code=200, headers=sse.response_headers()))
    assert wire is not None
    assert wire.startswith(b"HTTP/1.1 200 \r\n")
    assert b"\r\ncontent-type: text/event-stream\r\ncache-control: no-store\r\n" in wire
    assert b"\r\nx-accel-buffering: no\r\n" in wire
    assert b"\r\nTransfer-Encoding: chunked\r\n" in wire  # h11 frames the open-ended body
    wire += server.send(h11.Data(data=sse.encode_event("hi", id="1"))) or b""
    wire += server.send(h11.Data(data=sse.encode_events([{"retry": 2000}, Event("yo", id="1")]))) or b""
    wire += server.send(h11.EndOfMessage()) or b""

    # a client reads the head back and feeds the body to the decoder
    client = h11.Connection(h11.CLIENT)
    client.send(h11.Request(method="GET", target="/events", headers=[("Host", "example")]))
    client.receive_data(wire)
    response = client.next_event()
    assert isinstance(response, h11.Response) and response.status_code == 200
    assert (b"content-type", b"text/event-stream") in list(response.headers)
    dec = sse.SSEDecoder()
    events: list[Event] = []
    while True:
        ev = client.next_event()
        if isinstance(ev, h11.Data):
            events += dec.feed(ev.data)
        else:
            assert isinstance(ev, h11.EndOfMessage)
            break
    dec.eof()
    assert events == [Event("hi", id="1"), Event("yo", id="1")]
    assert dec.retry == 2000
