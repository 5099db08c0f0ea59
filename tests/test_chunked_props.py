"""Properties of streamcore.chunked: round trip, split invariance, twins agree."""
from __future__ import annotations

import random

from chunked_helpers import run
from helpers import both_twins, cut_at, twin_fixture
from hypothesis import example, given
from hypothesis import strategies as st

from streamcore.chunked import _common as common

chunked = twin_fixture("chunked")
PY, C = both_twins("chunked")

# Bytes that matter to the grammar, so random input reaches deep states.
ALPHABET = b"0123456789abcdefABCDEF;= \t\"\\\r\n:xX-_\x00\x01\x7f\x80\xff"
grammar_bytes = st.lists(st.sampled_from(list(ALPHABET)), max_size=120).map(bytes)
any_bytes = st.one_of(st.binary(max_size=200), grammar_bytes)

token = st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-.^_`|~",
                min_size=1, max_size=8)
ext_value = st.one_of(st.none(), token, st.binary(max_size=10).map(
    lambda b: bytes(c for c in b if c in common.QPAIR)))
extensions = st.lists(st.tuples(token, ext_value), max_size=3)
trailer_value = st.binary(max_size=12).map(
    lambda b: bytes(c for c in b if c in common.FIELD_VALUE).strip(b" \t"))
trailers = st.lists(st.tuples(token.filter(
    lambda t: t.lower() not in ("content-length", "transfer-encoding")), trailer_value), max_size=3)
chunks = st.lists(st.tuples(st.binary(min_size=1, max_size=300), extensions), max_size=6)
cuts = st.lists(st.integers(min_value=0, max_value=4000), max_size=10)


def encode(mod, body_chunks, fields):
    enc = mod.ChunkedEncoder()
    wire = b"".join(enc.encode(data, exts) for data, exts in body_chunks)
    return wire + enc.finish(fields)


def as_bytes(v):
    return v.encode("latin-1") if isinstance(v, str) else v


@given(body_chunks=chunks, fields=trailers, points=cuts)
def test_round_trip_whatever_the_split(chunked, body_chunks, fields, points):
    wire = encode(chunked, body_chunks, fields)
    got = run(chunked, cut_at(wire, [p % (len(wire) + 1) for p in points]))
    expected = [("chunk", data, tuple((as_bytes(k), as_bytes(v)) for k, v in exts))
                for data, exts in body_chunks]
    if fields:
        expected.append(("trailers", [(as_bytes(k).lower(), as_bytes(v)) for k, v in fields]))
    expected.append(("end", ()))
    assert got["error"] is None
    assert got["events"] == expected and got["done"]


@given(body_chunks=chunks, fields=trailers)
def test_both_encoders_write_the_same_bytes(body_chunks, fields):
    assert encode(PY, body_chunks, fields) == encode(C, body_chunks, fields)


@given(data=any_bytes, points=cuts)
@example(data=b"5\r\nhello\r\n0\r\n\r\n", points=[3])
def test_split_invariance_on_arbitrary_bytes(chunked, data, points):
    whole = run(chunked, [data], eof=True)
    split = run(chunked, cut_at(data, [p % (len(data) + 1) for p in points]), eof=True)
    assert split["events"] == whole["events"]
    assert split["error"] == whole["error"]
    assert split["done"] == whole["done"]


@given(data=any_bytes, points=cuts, coalesce=st.booleans(),
       max_line=st.sampled_from([None, 3, 16]), max_trailers=st.sampled_from([None, 0, 10]),
       max_chunk=st.sampled_from([None, 0, 5, 300]))
def test_twins_agree_on_arbitrary_bytes(data, points, coalesce, max_line, max_trailers, max_chunk):
    pieces = cut_at(data, [p % (len(data) + 1) for p in points])
    kw = dict(coalesce=coalesce, max_line_size=max_line, max_trailers_size=max_trailers,
              max_chunk_size=max_chunk)
    assert_twins_agree(pieces, kw)


def assert_twins_agree(pieces, kw):
    outcomes = []
    for mod in (PY, C):
        dec = mod.ChunkedDecoder(**kw)
        events, error = [], None
        for piece in pieces:
            try:
                events.append([_raw(e) for e in dec.feed(piece)])
            except Exception as exc:  # any exception: compare its class and text
                events.append([_raw(e) for e in getattr(exc, "events", [])])
                error = (type(exc).__name__, str(exc), getattr(exc, "offset", None))
                break
        outcomes.append((events, error, dec.done, dec.unused_data if dec.done else None,
                         tuple(dec.stats)))
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][1] is None or outcomes[0][1][0] in (
        "ProtocolError", "LimitError", "StateError")


def _raw(ev):
    return (type(ev).__name__,) + tuple(
        getattr(ev, f) for f in ("data", "chunk_start", "chunk_end", "extensions", "headers")
        if hasattr(ev, f))


@given(body_chunks=chunks, fields=trailers, seed=st.integers(0, 2**32), points=cuts)
def test_twins_agree_on_mutated_valid_bodies(body_chunks, fields, seed, points):
    wire = bytearray(encode(PY, body_chunks, fields))
    rng = random.Random(seed)
    for _ in range(rng.randint(1, 4)):
        i = rng.randrange(len(wire))
        op = rng.randrange(3)
        byte = rng.choice(ALPHABET)
        if op == 0:
            wire[i] = byte
        elif op == 1:
            wire.insert(i, byte)
        elif len(wire) > 1:
            del wire[i]
    data = bytes(wire)
    assert_twins_agree(cut_at(data, [p % (len(data) + 1) for p in points]), {})


def dfa_accepts(line: bytes) -> bool:
    """Walk the shared automaton over ``line + CRLF``."""
    state = common.L_START
    size = 0
    for b in line + b"\r\n":
        if state == common.L_DONE:
            return False  # the line ended before its last byte (b"0\r\n0")
        state = common.LINE_TABLE[state * 256 + b]
        if state >= common.ERROR:
            return False
        if state == common.L_SIZE:
            size = size * 16 + int(chr(b), 16)
    return state == common.L_DONE and size <= common.MAX_SIZE


@given(line=grammar_bytes)
@example(line=b"0\r\n0")
@example(line=b"5 ;a")
@example(line=b'1;a="\\\\"')
@example(line=b"1;a ; b = c")
def test_fast_path_regex_accepts_exactly_what_the_automaton_accepts(line):
    regex = common.SIZE_LINE.fullmatch(line) is not None
    if regex:
        regex = int(common.SIZE_LINE.fullmatch(line).group(1), 16) <= common.MAX_SIZE
    assert regex == dfa_accepts(line)


@given(exts=extensions, fields=trailers, cut_points=cuts)
def test_last_chunk_extensions_round_trip(chunked, exts, fields, cut_points):
    # failed before: finish() took no extensions (RFC 9112 §7.1 last-chunk = 1*"0" [chunk-ext] CRLF)
    enc = chunked.ChunkedEncoder()
    wire = enc.encode(b"body") + enc.finish(fields, extensions=exts)
    assert wire.startswith(b"4\r\nbody\r\n0" + (b";" if exts else b"\r\n"))
    dec = chunked.ChunkedDecoder()
    events = []
    for piece in cut_at(wire, [c % (len(wire) + 1) for c in cut_points]):
        if not dec.done:
            events.extend(dec.feed(piece))
    end = events[-1]
    assert type(end).__name__ == "EndOfMessage" and dec.done
    as_bytes = [(name.encode(), value.encode() if isinstance(value, str) else value)
                for name, value in exts]
    assert end.extensions == tuple(as_bytes)
