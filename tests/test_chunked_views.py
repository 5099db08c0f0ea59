"""Zero-copy receive: ``ChunkedDecoder(views=True)``, on both twins.

With ``views=True`` each ``Data.data`` is a memoryview into the buffer fed,
valid until the next ``feed``; everything else (events, flags, extensions,
trailers, errors, offsets, ``done``, ``unused_data``, ``stats``) is what the
copying default gives.
"""
from __future__ import annotations

import random
from typing import Any

import pytest
from chunked_helpers import normalise
from helpers import BUFFER_KINDS, as_buffer, both_twins, cut_at, twin_fixture
from hypothesis import given
from hypothesis import strategies as st

import streamcore

chunked = twin_fixture("chunked")
PY, C = both_twins("chunked")

WIRE = (b"5;name=value\r\nhello\r\n"
        b"b\r\n, zero-copy\r\n"
        b"0;last\r\nX-Sum: abc\r\n\r\n"
        b"NEXT")

# Bytes that matter to the grammar, so random input reaches deep states.
ALPHABET = b"0123456789abcdefABCDEF;= \t\"\\\r\n:xX-_\x00\x7f\xff"
grammar_bytes = st.lists(st.sampled_from(list(ALPHABET)), max_size=120).map(bytes)
any_bytes = st.one_of(st.binary(max_size=200), grammar_bytes)
cuts = st.lists(st.integers(min_value=0, max_value=4000), max_size=10)
valid_bodies = st.lists(st.binary(min_size=1, max_size=300), max_size=6)


def snapshot(events: list[Any]) -> list[Any]:
    """The events with every Data's view copied out (what a consumer that
    keeps the body must do before the next feed)."""
    out = []
    for ev in events:
        if type(ev).__name__ == "Data":
            assert type(ev.data) is memoryview
            ev = ev._replace(data=bytes(ev.data))
        out.append(ev)
    return out


def feed_all(mod: Any, pieces: list[bytes], *, views: bool, reuse: bool = False,
             kind: str = "bytes", **kw: Any) -> dict[str, Any]:
    """Feed ``pieces``; with ``reuse``, each through one bytearray overwritten
    before every feed (a transport's read buffer), the events copied out
    before the next piece overwrites it."""
    dec = mod.ChunkedDecoder(views=views, **kw)
    buffer = bytearray(max((len(p) for p in pieces), default=0))
    events: list[Any] = []
    error = None
    for piece in pieces:
        if dec.done:
            break
        if reuse:
            buffer[:len(piece)] = piece
            data: Any = memoryview(buffer)[:len(piece)]
        else:
            data = as_buffer(piece, kind)
        try:
            got = dec.feed(data)
        except streamcore.ProtocolError as exc:
            got = exc.events
            error = (type(exc).__name__, str(exc), exc.offset)
        events.extend(snapshot(got) if views else got)
        del got
        if error:
            break
    return {"events": events, "merged": normalise(events), "error": error, "done": dec.done,
            "unused": dec.unused_data, "stats": dec.stats}


# -- behaviour ----------------------------------------------------------------------

def test_data_is_a_memoryview_with_the_body_bytes(chunked):
    events = chunked.ChunkedDecoder(views=True).feed(WIRE)
    data = [ev for ev in events if isinstance(ev, chunked.Data)]
    assert [type(ev.data) for ev in data] == [memoryview, memoryview]
    assert [bytes(ev.data) for ev in data] == [b"hello", b", zero-copy"]
    assert data[0].extensions == ((b"name", b"value"),)
    assert events[2:] == [chunked.Trailers([(b"x-sum", b"abc")]),
                          chunked.EndOfMessage(((b"last", None),))]


def test_views_alias_a_fed_bytes_object(chunked):
    wire = bytes(WIRE)
    events = chunked.ChunkedDecoder(views=True).feed(wire)
    assert all(ev.data.obj is wire for ev in events if isinstance(ev, chunked.Data))
    assert events[0].data.readonly


def test_views_alias_a_fed_bytearray_no_copy(chunked):
    buffer = bytearray(WIRE)
    events = chunked.ChunkedDecoder(views=True).feed(buffer)
    first = events[0].data
    assert first.obj is buffer and not first.readonly
    # the very memory: a write into the fed buffer shows through the view
    buffer[WIRE.index(b"hello")] = ord("J")
    assert bytes(first) == b"Jello"
    first[1:2] = b"E"
    assert buffer[WIRE.index(b"hello") + 1] == ord("E")


def test_views_alias_a_slice_of_a_read_buffer(chunked):
    """The BufferedProtocol case: a memoryview of part of a reused bytearray."""
    read_buffer = bytearray(1024)
    read_buffer[:len(WIRE)] = WIRE
    events = chunked.ChunkedDecoder(views=True).feed(memoryview(read_buffer)[:len(WIRE)])
    assert events[1].data.obj is read_buffer
    read_buffer[WIRE.index(b", zero"):WIRE.index(b", zero") + 2] = b"!!"
    assert bytes(events[1].data) == b"!!zero-copy"


def test_a_fed_bytearray_cannot_be_resized_while_a_view_lives(chunked):
    """The lifetime rule the buffer protocol enforces: release the views first."""
    buffer = bytearray(b"3\r\nabc\r\n")
    events = chunked.ChunkedDecoder(views=True).feed(buffer)
    with pytest.raises(BufferError):
        buffer.extend(b"more")
    events[0].data.release()
    buffer.extend(b"more")  # released: the buffer is the caller's again
    assert buffer.endswith(b"more")


def test_a_large_chunk_in_many_feeds_gives_one_view_per_feed(chunked):
    body = bytes(range(256)) * 64
    wire = b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n"
    dec = chunked.ChunkedDecoder(views=True)
    got = []
    for piece in cut_at(wire, list(range(1000, len(wire), 1000))):
        for ev in dec.feed(piece):
            if isinstance(ev, chunked.Data):
                assert ev.data.obj is piece
                got.append(bytes(ev.data))
    assert b"".join(got) == body and dec.done and len(got) == 17


def test_non_contiguous_input_gives_views_of_one_copy(chunked):
    events = chunked.ChunkedDecoder(views=True).feed(as_buffer(WIRE, "strided"))
    assert [bytes(ev.data) for ev in events[:2]] == [b"hello", b", zero-copy"]
    assert events[0].data.obj is events[1].data.obj


def test_unused_data_and_trailers_are_bytes(chunked):
    buffer = bytearray(WIRE)
    dec = chunked.ChunkedDecoder(views=True)
    events = dec.feed(buffer)
    assert type(dec.unused_data) is bytes and dec.unused_data == b"NEXT"
    assert all(type(v) is bytes for pair in events[2].headers for v in pair)
    buffer[-4:] = b"XXXX"
    assert dec.unused_data == b"NEXT"


def test_copying_stays_the_default(chunked):
    events = chunked.ChunkedDecoder().feed(bytearray(WIRE))
    assert [type(ev.data) for ev in events[:2]] == [bytes, bytes]


def test_views_and_coalesce_are_refused_together(chunked):
    with pytest.raises(ValueError, match="coalesce"):
        chunked.ChunkedDecoder(views=True, coalesce=True)


def test_error_events_carry_views_and_the_error_repeats(chunked):
    dec = chunked.ChunkedDecoder(views=True)
    with pytest.raises(streamcore.ProtocolError) as info:
        dec.feed(b"3\r\nabcXY")
    assert [bytes(ev.data) for ev in info.value.events] == [b"abc"]
    assert info.value.offset == 6
    with pytest.raises(streamcore.ProtocolError):
        dec.feed(b"\r\n")


def test_trace_sees_the_views(chunked):
    seen: list[Any] = []
    chunked.ChunkedDecoder(views=True, trace=seen.append).feed(WIRE)
    assert type(seen[0].data) is memoryview and bytes(seen[0].data) == b"hello"


# -- properties: views and copying agree, twins agree ---------------------------------

def wire_of(bodies: list[bytes]) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(b), b) for b in bodies) + b"0\r\n\r\n"


@given(bodies=valid_bodies, points=cuts, kind=st.sampled_from(BUFFER_KINDS))
def test_views_give_the_copying_events_on_any_split(chunked, bodies, points, kind):
    wire = wire_of(bodies) + b"tail"
    pieces = cut_at(wire, [p % (len(wire) + 1) for p in points])
    copying = feed_all(chunked, pieces, views=False)
    viewed = feed_all(chunked, pieces, views=True, kind=kind)
    assert viewed["events"] == copying["events"]
    assert viewed["merged"] == [("chunk", b, ()) for b in bodies] + [("end", ())]
    for key in ("error", "done", "unused", "stats"):
        assert viewed[key] == copying[key]


@given(data=any_bytes, points=cuts, max_line=st.sampled_from([None, 0, 3, 4096]))
def test_views_give_the_copying_events_and_errors_on_arbitrary_bytes(chunked, data, points,
                                                                     max_line):
    wire = b"a\r\n0123456789\r\n" + data
    pieces = cut_at(wire, [p % (len(wire) + 1) for p in points])
    copying = feed_all(chunked, pieces, views=False, max_line_size=max_line)
    viewed = feed_all(chunked, pieces, views=True, max_line_size=max_line)
    assert viewed == copying


@given(bodies=valid_bodies, data=any_bytes, points=cuts)
def test_views_valid_until_the_next_feed_of_a_reused_buffer(chunked, bodies, data, points):
    """One bytearray overwritten before each feed, as a transport's read
    buffer is: copied out before the next feed, the views give the body."""
    wire = wire_of(bodies) + data
    pieces = cut_at(wire, [p % (len(wire) + 1) for p in points])
    assert feed_all(chunked, pieces, views=True, reuse=True) == \
        feed_all(chunked, pieces, views=False)


@given(data=any_bytes, points=cuts, seed=st.integers(0, 2**16))
def test_twins_agree_with_views(data, points, seed):
    rng = random.Random(seed)
    wire = wire_of([rng.randbytes(rng.randint(1, 50)) for _ in range(rng.randint(0, 3))]) \
        if rng.random() < 0.5 else data
    pieces = cut_at(wire, [p % (len(wire) + 1) for p in points])
    assert feed_all(PY, pieces, views=True) == feed_all(C, pieces, views=True)


def test_views_of_any_exporter_alias_it(chunked):
    """An exporter other than bytes/bytearray (array.array): the views alias
    it too (and the compiled twin frees such events without its freelist)."""
    import array
    import gc

    buffer = array.array("B", WIRE)
    events = chunked.ChunkedDecoder(views=True).feed(buffer)
    assert events[0].data.obj is buffer
    buffer[WIRE.index(b"hello")] = ord("y")
    assert bytes(events[0].data) == b"yello"
    del events
    gc.collect()
    buffer.append(0)  # every view released with its event
