"""Hypothesis properties of the WebSocket codec and Connection: round trip,
split invariance, and the two twins agreeing on arbitrary and mutated bytes
(same events, same error class, message and offset, same stats)."""
from __future__ import annotations

from typing import Any

from helpers import both_twins
from hypothesis import given
from hypothesis import strategies as st
from ws_helpers import close_payload, err_key, frame, merge

from streamcore import ProtocolError
from streamcore.ws import Binary, Close, Ping, Pong, Text

PY, CY = both_twins("ws")
TWINS = (PY, CY)

# -- strategies -------------------------------------------------------------------------

messages = st.lists(
    st.one_of(
        st.text(max_size=300).map(Text),
        st.binary(max_size=300).map(Binary),
        st.binary(max_size=125).map(Ping),
        st.binary(max_size=125).map(Pong),
    ),
    max_size=8,
)


@st.composite
def cuts(draw: Any, data: bytes) -> list[bytes]:
    points = sorted(draw(st.lists(st.integers(0, len(data)), max_size=10)))
    out, last = [], 0
    for p in points:
        out.append(data[last:p])
        last = p
    out.append(data[last:])
    return out


def send_all(conn: Any, msgs: list[Any], fragment: int) -> bytes:
    out = []
    for m in msgs:
        if isinstance(m, Text):
            if fragment and len(m.data) > fragment:
                out.append(conn.send_text(m.data[:fragment], final=False))
                out.append(conn.send_text(m.data[fragment:]))
            else:
                out.append(conn.send_text(m.data))
        elif isinstance(m, Binary):
            if fragment and len(m.data) > fragment:
                out.append(conn.send_binary(m.data[:fragment], final=False))
                out.append(conn.send_binary(m.data[fragment:]))
            else:
                out.append(conn.send_binary(m.data))
        elif isinstance(m, Ping):
            out.append(conn.send_ping(m.data))
        else:
            out.append(conn.send_pong(m.data))
    return b"".join(out)


def feed(codec: Any, role: str, pieces: list[bytes], **kw: Any) -> tuple[list[Any], Any, Any]:
    conn = codec.Connection(role, **kw)
    events: list[Any] = []
    err: ProtocolError | None = None
    for p in pieces:
        try:
            events.extend(conn.receive_data(p))
        except ProtocolError as exc:
            events.extend(exc.events)
            err = exc
            break
    return events, err, conn


def expected(msgs: list[Any]) -> list[Any]:
    # control frames sent between fragments of nothing: order is the send order
    return list(msgs)


# -- round trip -------------------------------------------------------------------------


@given(messages, st.sampled_from(TWINS), st.sampled_from(TWINS), st.integers(0, 50),
       st.sampled_from(["client", "server"]))
def test_round_trip(msgs, sender, receiver, fragment, role):
    peer = "server" if role == "client" else "client"
    wire = send_all(sender.Connection(role), msgs, fragment)
    events, err, _ = feed(receiver, peer, [wire])
    assert err is None
    assert events == expected(msgs)


@given(st.data(), messages, st.booleans())
def test_split_invariance(data, msgs, assemble):
    wire = send_all(PY.Connection("client"), msgs, 7) + frame(0x8, close_payload(1000))
    pieces = data.draw(cuts(wire))
    for codec in TWINS:
        whole, err1, _ = feed(codec, "server", [wire], assemble=assemble)
        split, err2, _ = feed(codec, "server", pieces, assemble=assemble)
        assert err1 is None and err2 is None
        assert merge(split) == merge(whole)
        assert merge(whole) == expected(msgs) + [Close(1000, "")]


# -- the twins agree ------------------------------------------------------------------------


def agree(pieces: list[bytes], role: str, **kw: Any) -> None:
    ev_py, err_py, conn_py = feed(PY, role, pieces, **kw)
    ev_cy, err_cy, conn_cy = feed(CY, role, pieces, **kw)
    assert ev_py == ev_cy
    assert [type(e.data) for e in ev_py if hasattr(e, "data")] == \
        [type(e.data) for e in ev_cy if hasattr(e, "data")]
    assert err_key(err_py) == err_key(err_cy)
    assert conn_py.stats == conn_cy.stats
    assert conn_py.state == conn_cy.state


LIMITS = st.fixed_dictionaries({}, optional={
    "max_message_size": st.one_of(st.none(), st.integers(0, 200)),
    "max_frame_size": st.one_of(st.none(), st.integers(0, 200)),
    "assemble": st.booleans(),
})


@given(st.data(), st.binary(max_size=400), st.sampled_from(["client", "server"]), LIMITS)
def test_twins_agree_on_arbitrary_bytes(data, raw, role, kw):
    agree(data.draw(cuts(raw)), role, **kw)


@st.composite
def mutated(draw: Any) -> tuple[bytes, str]:
    role = draw(st.sampled_from(["client", "server"]))
    msgs = draw(messages)
    sender = PY.Connection("server" if role == "client" else "client")
    wire = bytearray(send_all(sender, msgs, draw(st.integers(0, 20))))
    if draw(st.booleans()):
        wire += frame(0x8, close_payload(draw(st.integers(0, 5000)), b"bye"),
                      mask=b"\x01\x02\x03\x04" if role == "server" else None)
    for _ in range(draw(st.integers(1, 4))):
        if not wire:
            break
        i = draw(st.integers(0, len(wire) - 1))
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]))
        if op == "flip":
            wire[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "set":
            wire[i] = draw(st.sampled_from([0x00, 0x7E, 0x7F, 0x80, 0xC0, 0xED, 0xFF]))
        elif op == "insert":
            wire[i:i] = draw(st.binary(min_size=1, max_size=4))
        elif op == "delete":
            del wire[i]
        else:
            del wire[i:]
    return bytes(wire), role


@given(st.data(), mutated(), LIMITS)
def test_twins_agree_on_mutated_frames(data, case, kw):
    wire, role = case
    agree(data.draw(cuts(wire)), role, **kw)


@given(st.data(), mutated())
def test_errors_do_not_depend_on_the_split(data, case):
    wire, role = case
    pieces = data.draw(cuts(wire))
    for codec in TWINS:
        ev1, err1, _ = feed(codec, role, [wire])
        ev2, err2, _ = feed(codec, role, pieces)
        assert ev1 == ev2
        assert err_key(err1) == err_key(err2)


# -- kernels ---------------------------------------------------------------------------------


@given(st.binary(max_size=2000), st.binary(min_size=4, max_size=4))
def test_apply_mask_twins_agree(data, mask):
    assert PY.apply_mask(data, mask) == CY.apply_mask(data, mask)


@given(st.one_of(st.binary(max_size=40), st.text(max_size=20).map(str.encode)))
def test_utf8_validator_agrees_with_python_decoder(data):
    try:
        data.decode("utf-8")
        valid = True
    except UnicodeDecodeError:
        valid = False
    for codec in TWINS:
        assert (codec.utf8_first_invalid(data) == -1) == valid


@given(st.data(), st.one_of(st.binary(max_size=40), st.text(max_size=20).map(str.encode)))
def test_utf8_validator_twins_agree_incrementally(data, raw):
    pieces = data.draw(cuts(raw))
    results = []
    for codec in TWINS:
        v = codec.Utf8Validator()
        out = [v.feed(p) for p in pieces]
        results.append((out, v.finish()))
    assert results[0] == results[1]


@st.composite
def near_utf8(draw: Any) -> bytes:
    raw = bytearray(draw(st.text(max_size=30)).encode())
    for _ in range(draw(st.integers(0, 3))):
        if not raw:
            break
        i = draw(st.integers(0, len(raw) - 1))
        raw[i] = draw(st.integers(0x80, 0xFF))
    return bytes(raw)


@given(st.one_of(st.binary(max_size=40), near_utf8()))
def test_first_invalid_byte_twins_agree(data):
    assert PY.utf8_first_invalid(data) == CY.utf8_first_invalid(data)


@given(st.data(), st.lists(st.binary(max_size=200), max_size=5), st.booleans(),
       st.sampled_from([None, 100, 1000]))
def test_twins_agree_with_deflate_on_mutated_streams(data, payloads, assemble, limit):
    from ws_helpers import FakeDeflate

    sender = PY.Connection("client", deflate=FakeDeflate(), max_message_size=None)
    wire = bytearray(b"".join(sender.send_binary(p) if i % 2 else sender.send_text(p.hex())
                              for i, p in enumerate(payloads)))
    for _ in range(data.draw(st.integers(0, 3))):
        if wire:
            wire[data.draw(st.integers(0, len(wire) - 1))] ^= 1 << data.draw(st.integers(0, 7))
    pieces = data.draw(cuts(bytes(wire)))
    results = []
    for codec in TWINS:
        ev, err, conn = feed(codec, "server", pieces, deflate=FakeDeflate(),
                             assemble=assemble, max_message_size=limit)
        results.append((ev, err_key(err), conn.stats))
    assert results[0] == results[1]
