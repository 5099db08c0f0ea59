"""streamcore.chunked: one behaviour per test, on both twins, fed every way."""
from __future__ import annotations

import pytest
from chunked_helpers import normalise, run
from helpers import BUFFER_KINDS, as_buffer, splits, twin_fixture

import streamcore
from streamcore import IncompleteError, LimitError, ProtocolError, StateError

chunked = twin_fixture("chunked")


def check_every_split(mod, wire, expect_events, expect_error=None, **kw):
    """Whole, byte by byte and random splits all give the same outcome."""
    for pieces in splits(wire, seed=len(wire)):
        got = run(mod, pieces, **kw)
        assert got["events"] == expect_events, pieces
        if expect_error is None:
            assert got["error"] is None, (pieces, got["error"])
        else:
            cls, offset, text = expect_error
            assert got["error"] is not None, pieces
            assert got["error"][0] == cls, (pieces, got["error"])
            assert got["error"][2] == offset, (pieces, got["error"])
            assert text in got["error"][1], got["error"]
            assert f"at byte {offset}" in got["error"][1]


# -- valid bodies -----------------------------------------------------------

VALID = [
    ("one chunk", b"5\r\nhello\r\n0\r\n\r\n", [("chunk", b"hello", ()), ("end", ())]),
    ("empty body", b"0\r\n\r\n", [("end", ())]),
    ("many zeros in last-chunk", b"000\r\n\r\n", [("end", ())]),
    ("upper and lower hex", b"A\r\n0123456789\r\nb\r\n0123456789a\r\n0\r\n\r\n",
     [("chunk", b"0123456789", ()), ("chunk", b"0123456789a", ()), ("end", ())]),
    ("leading zeros in size", b"0005\r\nhello\r\n0\r\n\r\n", [("chunk", b"hello", ()), ("end", ())]),
    ("data holding CRLF", b"4\r\n\r\n\r\n\r\n0\r\n\r\n", [("chunk", b"\r\n\r\n", ()), ("end", ())]),
    ("extension without value", b"1;foo\r\nx\r\n0\r\n\r\n",
     [("chunk", b"x", ((b"foo", None),)), ("end", ())]),
    ("extension token value", b"1;foo=bar\r\nx\r\n0\r\n\r\n",
     [("chunk", b"x", ((b"foo", b"bar"),)), ("end", ())]),
    ("extension quoted value with escapes", b'1;q="a \\"b\\" \\\\ c"\r\nx\r\n0\r\n\r\n',
     [("chunk", b"x", ((b"q", b'a "b" \\ c'),)), ("end", ())]),
    ("extension BWS around ; and =", b"1 ;\ta = b ; c\r\nx\r\n0\r\n\r\n",
     [("chunk", b"x", ((b"a", b"b"), (b"c", None))), ("end", ())]),
    ("extension name keeps its case", b"1;FoO=BaR\r\nx\r\n0\r\n\r\n",
     [("chunk", b"x", ((b"FoO", b"BaR"),)), ("end", ())]),
    ("quoted value with obs-text", b'1;a="\xe9\xff"\r\nx\r\n0\r\n\r\n',
     [("chunk", b"x", ((b"a", b"\xe9\xff"),)), ("end", ())]),
    ("last-chunk extensions", b"0;done=1\r\n\r\n", [("end", ((b"done", b"1"),))]),
    ("trailers", b"0\r\nX-Sum: abc\r\nEtag:\t\"x\" \r\n\r\n",
     [("trailers", [(b"x-sum", b"abc"), (b"etag", b'"x"')]), ("end", ())]),
    ("trailer with empty value", b"0\r\nx:\r\n\r\n", [("trailers", [(b"x", b"")]), ("end", ())]),
    ("trailer value with inner whitespace and obs-text", b"0\r\nx: a  b\t\xffc\r\n\r\n",
     [("trailers", [(b"x", b"a  b\t\xffc")]), ("end", ())]),
]


@pytest.mark.parametrize("wire,expected", [v[1:] for v in VALID], ids=[v[0] for v in VALID])
def test_valid_body_decodes_the_same_however_split(chunked, wire, expected):
    check_every_split(chunked, wire, expected)


def test_data_is_emitted_as_soon_as_it_arrives(chunked):
    dec = chunked.ChunkedDecoder()
    assert dec.feed(b"a\r\n") == []
    first = dec.feed(b"abc")
    assert [(e.data, e.chunk_start, e.chunk_end) for e in first] == [(b"abc", True, False)]
    second = dec.feed(b"defghij")
    assert [(e.data, e.chunk_start, e.chunk_end) for e in second] == [(b"defghij", False, True)]


def test_chunk_start_survives_size_line_and_data_in_separate_reads(chunked):
    # h11 loses chunk_start in exactly this case.
    dec = chunked.ChunkedDecoder()
    assert dec.feed(b"3;e=1\r\n") == []
    (ev,) = dec.feed(b"abc")
    assert ev.chunk_start and ev.chunk_end and ev.extensions == ((b"e", b"1"),)


def test_unused_data_keeps_the_next_pipelined_message(chunked):
    dec = chunked.ChunkedDecoder()
    events = dec.feed(b"1\r\nx\r\n0\r\n\r\nGET / HTTP/1.1\r\n")
    assert type(events[-1]).__name__ == "EndOfMessage"
    assert dec.done
    assert dec.unused_data == b"GET / HTTP/1.1\r\n"
    dec.eof()


def test_unused_data_is_empty_when_nothing_follows(chunked):
    dec = chunked.ChunkedDecoder()
    dec.feed(b"0\r\n\r\n")
    assert dec.done and dec.unused_data == b""


def test_accepts_bytearray_and_memoryview(chunked):
    wire = b"5\r\nhello\r\n0\r\n\r\n"
    for data in (bytearray(wire), memoryview(wire), memoryview(b"xx" + wire)[2:]):
        dec = chunked.ChunkedDecoder()
        assert normalise(dec.feed(data)) == [("chunk", b"hello", ()), ("end", ())]


def test_data_events_carry_bytes(chunked):
    for data in (bytearray(b"3\r\nabc\r\n"), memoryview(b"3\r\nabc\r\n")):
        (ev,) = chunked.ChunkedDecoder().feed(data)
        assert type(ev.data) is bytes and ev.data == b"abc"


def test_coalesce_returns_one_data_per_feed(chunked):
    wire = b"3;a=1\r\nabc\r\n2\r\nde\r\n4;b\r\nfghi\r\n0\r\nt: v\r\n\r\n"
    events = chunked.ChunkedDecoder(coalesce=True).feed(wire)
    assert [type(e).__name__ for e in events] == ["Data", "Trailers", "EndOfMessage"]
    data = events[0]
    assert data.data == b"abcdefghi"
    assert data.chunk_start and data.chunk_end
    assert data.extensions == ((b"a", b"1"), (b"b", None))


def test_coalesce_flags_describe_the_edges_of_the_feed(chunked):
    dec = chunked.ChunkedDecoder(coalesce=True)
    (a,) = dec.feed(b"3\r\nab")
    assert (a.data, a.chunk_start, a.chunk_end) == (b"ab", True, False)
    (b,) = dec.feed(b"c\r\n2\r\nd")
    assert (b.data, b.chunk_start, b.chunk_end) == (b"cd", False, False)
    (c, end) = dec.feed(b"e\r\n0\r\n\r\n")
    assert (c.data, c.chunk_start, c.chunk_end) == (b"e", False, True)
    assert type(end).__name__ == "EndOfMessage"


def test_coalesce_body_equals_plain_body_for_any_split(chunked):
    wire = b"".join(b"%x\r\n%s\r\n" % (n, bytes([65 + n]) * n) for n in range(1, 30)) + b"0\r\n\r\n"
    expected = b"".join(bytes([65 + n]) * n for n in range(1, 30))
    for pieces in splits(wire, seed=3):
        dec = chunked.ChunkedDecoder(coalesce=True)
        got = b"".join(e.data for p in pieces for e in dec.feed(p) if hasattr(e, "chunk_start"))
        assert got == expected and dec.done


# -- strictness: each rule of RFC 9112 -----------------------------------------

INVALID = [
    # (id, wire, error class, offset, message fragment)
    ("bare LF after size", b"5\nhello\r\n0\r\n\r\n", "ProtocolError", 1, "bare LF"),
    ("bare CR after size", b"5\rhello", "ProtocolError", 2, "CR not followed by LF"),
    ("bare LF after data", b"5\r\nhello\n0\r\n\r\n", "ProtocolError", 8, "not followed by CRLF"),
    ("bare CR after data", b"5\r\nhello\rX", "ProtocolError", 9, "not followed by CRLF"),
    ("no CRLF after data", b"5\r\nhelloXX0\r\n\r\n", "ProtocolError", 8, "not followed by CRLF"),
    ("data longer than size", b"3\r\nhello\r\n", "ProtocolError", 6, "not followed by CRLF"),
    ("space before size", b" 5\r\nhello\r\n", "ProtocolError", 0, "must start with a hex digit"),
    ("tab before size", b"\t5\r\nhello\r\n", "ProtocolError", 0, "must start with a hex digit"),
    ("empty size line", b"\r\n", "ProtocolError", 0, "must start with a hex digit"),
    ("0x prefix", b"0x5\r\nhello\r\n", "ProtocolError", 1, "invalid character in chunk-size"),
    ("plus sign", b"+5\r\nhello\r\n", "ProtocolError", 0, "must start with a hex digit"),
    ("minus sign", b"-5\r\nhello\r\n", "ProtocolError", 0, "must start with a hex digit"),
    ("underscore in size", b"1_0\r\n", "ProtocolError", 1, "invalid character in chunk-size"),
    ("non-ASCII digit", "\u0665\r\n".encode(), "ProtocolError", 0, "must start with a hex digit"),
    ("whitespace after size", b"5 \r\nhello\r\n", "ProtocolError", 2, "not followed by ';'"),
    ("overflow past 2**63-1", b"8000000000000000\r\n", "ProtocolError", 15, "overflows"),
    ("far overflow", b"ffffffffffffffffffff\r\n", "ProtocolError", 15, "overflows"),
    ("empty extension name", b"5;\r\nhello\r\n", "ProtocolError", 2, "name must be a token"),
    ("extension name not a token", b"5;a@b\r\n", "ProtocolError", 3, "after chunk extension name"),
    ("extension = without value", b"5;a=\r\n", "ProtocolError", 4, "token or quoted-string"),
    ("extension whitespace then CRLF", b"5;a \r\n", "ProtocolError", 4, "after chunk extension name"),
    ("extension value with CTL", b"5;a=b\x01\r\n", "ProtocolError", 5, "after chunk extension value"),
    ("LF inside extension (CVE-2024-52304)", b"5;a=b\nX\r\n", "ProtocolError", 5, "bare LF"),
    ("unterminated quoted-string", b'5;a="b\r\n', "ProtocolError", 6, "invalid character in quoted"),
    ("NUL in quoted-string", b'5;a="\x00"\r\n', "ProtocolError", 5, "invalid character in quoted"),
    ("bad escape in quoted-string", b'5;a="\\\x00"\r\n', "ProtocolError", 6, "invalid escaped"),
    ("junk after quoted-string", b'5;a="b"c\r\n', "ProtocolError", 7, "after chunk extension value"),
    ("trailer obs-fold", b"0\r\na: b\r\n c\r\n\r\n", "ProtocolError", 9, "obsolete line folding"),
    ("trailer leading whitespace", b"0\r\n a: b\r\n\r\n", "ProtocolError", 3, "obsolete line folding"),
    ("trailer without name", b"0\r\n: b\r\n\r\n", "ProtocolError", 3, "without a name"),
    ("trailer without colon", b"0\r\nab\r\n\r\n", "ProtocolError", 5, "without a colon"),
    ("trailer whitespace before colon", b"0\r\na : b\r\n\r\n", "ProtocolError", 4, "name and colon"),
    ("trailer NUL in value", b"0\r\na: b\x00c\r\n\r\n", "ProtocolError", 7, "trailer field value"),
    ("trailer bare LF", b"0\r\na: b\nc: d\r\n\r\n", "ProtocolError", 7, "bare LF"),
    ("trailer bare CR", b"0\r\na: b\rc\r\n\r\n", "ProtocolError", 8, "CR not followed by LF"),
    ("final line bare LF", b"0\r\n\n", "ProtocolError", 3, "bare LF"),
    ("final line bare CR", b"0\r\n\rX", "ProtocolError", 4, "CR not followed by LF"),
    ("bad trailer name char", b'0\r\na"b: c\r\n\r\n', "ProtocolError", 4, "trailer field name"),
    ("Content-Length trailer", b"0\r\nContent-Length: 5\r\n\r\n", "ProtocolError", 3, "content-length"),
    ("Transfer-Encoding trailer", b"0\r\nx: 1\r\ntransfer-encoding: chunked\r\n\r\n",
     "ProtocolError", 9, "transfer-encoding"),
]


@pytest.mark.parametrize("wire,cls,offset,text", [v[1:] for v in INVALID], ids=[v[0] for v in INVALID])
def test_malformed_body_is_rejected_at_the_first_bad_byte(chunked, wire, cls, offset, text):
    whole = run(chunked, [wire])
    check_every_split(chunked, wire, whole["events"], (cls, offset, text))


def test_error_is_raised_again_on_every_later_feed(chunked):
    dec = chunked.ChunkedDecoder()
    with pytest.raises(ProtocolError) as first:
        dec.feed(b"5\nhello")
    for _ in range(2):
        with pytest.raises(ProtocolError) as again:
            dec.feed(b"0\r\n\r\n")
        assert str(again.value) == str(first.value) and again.value.offset == 1
    with pytest.raises(ProtocolError):
        dec.eof()


def test_events_before_an_error_are_kept_on_the_exception(chunked):
    dec = chunked.ChunkedDecoder()
    with pytest.raises(ProtocolError) as info:
        dec.feed(b"3\r\nabc\r\n2\r\nxyZZ")
    assert [e.data for e in info.value.events] == [b"abc", b"xy"]


def test_offset_counts_from_the_first_byte_ever_fed(chunked):
    dec = chunked.ChunkedDecoder()
    dec.feed(b"3\r\nabc\r\n")
    with pytest.raises(ProtocolError) as info:
        dec.feed(b"3 \r\n")
    assert info.value.offset == 10


# -- limits ----------------------------------------------------------------------

def test_max_line_size_counts_the_line_without_crlf(chunked):
    line = b"1;" + b"a" * 8  # 10 bytes
    ok = run(chunked, [line + b"\r\nx\r\n0\r\n\r\n"], max_line_size=10)
    assert ok["error"] is None and ok["done"]
    check_every_split(chunked, line + b"b\r\nx\r\n", [], ("LimitError", 10, "max_line_size=10"),
                      max_line_size=10)


def test_max_line_size_is_enforced_before_the_line_ends(chunked):
    dec = chunked.ChunkedDecoder(max_line_size=100)
    dec.feed(b"1;" + b"a" * 98)
    with pytest.raises(LimitError) as info:
        dec.feed(b"a")
    assert info.value.offset == 100


def test_a_long_extension_is_refused_however_it_is_split(chunked):
    # 100 KB of extension in one read is as bad as in one hundred.
    wire = b"1;" + b"a" * 100_000 + b"\r\nx\r\n0\r\n\r\n"
    one = run(chunked, [wire])
    many = run(chunked, [wire[i:i + 1000] for i in range(0, len(wire), 1000)])
    assert one["error"] == many["error"] == ("LimitError", one["error"][1], 4096)


def test_max_line_size_none_means_no_limit(chunked):
    wire = b"1;" + b"a" * 100_000 + b"\r\nx\r\n0\r\n\r\n"
    got = run(chunked, [wire], max_line_size=None)
    assert got["error"] is None and got["events"][0] == ("chunk", b"x", ((b"a" * 100_000, None),))


def test_max_chunk_size_refuses_a_larger_chunk_at_its_size_digit(chunked):
    check_every_split(chunked, b"10\r\n" + b"x" * 16, [], ("LimitError", 1, "max_chunk_size=15"),
                      max_chunk_size=15)
    ok = run(chunked, [b"f\r\n" + b"x" * 15 + b"\r\n0\r\n\r\n"], max_chunk_size=15)
    assert ok["error"] is None


def test_max_trailers_size_bounds_the_trailer_section(chunked):
    trailers = b"a: " + b"b" * 20 + b"\r\n"  # 25 bytes
    ok = run(chunked, [b"0\r\n" + trailers + b"\r\n"], max_trailers_size=25)
    assert ok["error"] is None and ok["done"]
    check_every_split(chunked, b"0\r\n" + trailers + b"c: d\r\n\r\n", [],
                      ("LimitError", 28, "max_trailers_size=25"), max_trailers_size=25)


def test_max_trailers_size_zero_still_allows_an_empty_section(chunked):
    assert run(chunked, [b"0\r\n\r\n"], max_trailers_size=0)["done"]


def test_limits_refuse_bad_values(chunked):
    # one rule across protocols: a negative limit is a ValueError, a non-int a TypeError
    with pytest.raises(ValueError):
        chunked.ChunkedDecoder(max_line_size=-1)
    for kw in ({"max_chunk_size": "10"}, {"max_trailers_size": 1.5}, {"max_line_size": True},
               {"max_chunk_size": False}):
        # failed before for bool: True was taken as a limit of 1
        with pytest.raises(TypeError):
            chunked.ChunkedDecoder(**kw)


def test_a_limit_past_63_bits_means_no_limit(chunked):
    dec = chunked.ChunkedDecoder(max_chunk_size=1 << 70, max_line_size=1 << 64)
    assert [e.data for e in dec.feed(b"3\r\nabc\r\n0\r\n\r\n")[:1]] == [b"abc"]


# -- end of stream and misuse ------------------------------------------------------

def test_eof_inside_the_body_is_incomplete(chunked):
    for wire in (b"", b"5\r\nhel", b"5\r\nhello\r", b"0\r\n", b"0\r\na: b\r\n"):
        dec = chunked.ChunkedDecoder()
        dec.feed(wire)
        with pytest.raises(IncompleteError) as info:
            dec.eof()
        assert info.value.offset == len(wire)


def test_eof_after_the_body_is_fine_and_a_second_eof_is_a_state_error(chunked):
    # failed before: a second eof() passed silently (one rule across protocols)
    dec = chunked.ChunkedDecoder()
    dec.feed(b"0\r\n\r\n")
    dec.eof()
    with pytest.raises(StateError):
        dec.eof()


def test_a_repeated_error_carries_no_events_of_the_first_call(chunked):
    # failed before: the very same exception object came back, events and all
    dec = chunked.ChunkedDecoder()
    with pytest.raises(ProtocolError) as first:
        dec.feed(b"3\r\nabc\r\nzz\r\n")
    assert [e.data for e in first.value.events] == [b"abc"]
    for call in (lambda: dec.feed(b"0\r\n\r\n"), dec.eof):
        with pytest.raises(ProtocolError) as again:
            call()
        assert again.value is not first.value
        assert again.value.events == []
        assert str(again.value) == str(first.value) and again.value.offset == first.value.offset
    with pytest.raises(StateError):
        dec.eof()


def test_feed_after_the_end_is_a_state_error(chunked):
    dec = chunked.ChunkedDecoder()
    dec.feed(b"0\r\n\r\n")
    with pytest.raises(StateError):
        dec.feed(b"more")


def test_feed_after_eof_is_a_state_error(chunked):
    dec = chunked.ChunkedDecoder()
    dec.feed(b"0\r\n\r\n")
    dec.eof()
    with pytest.raises(StateError):
        dec.feed(b"")


def test_empty_feed_returns_nothing(chunked):
    dec = chunked.ChunkedDecoder()
    assert dec.feed(b"") == []
    assert not dec.done


# -- observability ---------------------------------------------------------------

def test_decoder_stats_count_bytes_chunks_and_events(chunked):
    dec = chunked.ChunkedDecoder()
    dec.feed(b"3\r\nab")
    dec.feed(b"c\r\n2\r\nde\r\n0\r\nx: y\r\n\r\nZZ")
    s = dec.stats
    assert (s.bytes_in, s.bytes_out, s.chunks, s.events) == (28, 5, 2, 5)
    with pytest.raises(AttributeError):
        s.bytes_in = 0


def test_trace_sees_every_event_in_order(chunked):
    seen = []
    dec = chunked.ChunkedDecoder(trace=seen.append)
    events = dec.feed(b"3\r\nabc\r\n0\r\nx: y\r\n\r\n")
    assert seen == events and len(seen) == 3


def test_trace_sees_events_decoded_before_an_error(chunked):
    seen = []
    dec = chunked.ChunkedDecoder(trace=seen.append)
    with pytest.raises(ProtocolError):
        dec.feed(b"3\r\nabc\r\nX")
    assert [e.data for e in seen] == [b"abc"]


# -- events ------------------------------------------------------------------------

def test_events_compare_and_print(chunked):
    a = chunked.Data(b"x", True, False, ((b"a", None),))
    assert a == chunked.Data(b"x", True, False, ((b"a", None),))
    assert a != chunked.Data(b"x", True, True, ((b"a", None),))
    assert "chunk_start=True" in repr(a)
    assert chunked.Trailers([(b"a", b"b")]) == chunked.Trailers([(b"a", b"b")])
    assert chunked.EndOfMessage() == chunked.EndOfMessage()
    assert repr(chunked.EndOfMessage()) == "EndOfMessage()"
    assert chunked.Data(b"x", True, True).extensions == ()


# -- encoder -----------------------------------------------------------------------

def test_encoder_writes_hex_size_data_and_crlf(chunked):
    enc = chunked.ChunkedEncoder()
    assert enc.encode(b"hello") == b"5\r\nhello\r\n"
    assert enc.encode(b"x" * 255) == b"ff\r\n" + b"x" * 255 + b"\r\n"
    assert enc.finish() == b"0\r\n\r\n"


def test_encoder_empty_data_is_never_a_last_chunk(chunked):
    enc = chunked.ChunkedEncoder()
    assert enc.encode(b"") == b""
    assert enc.encode(memoryview(b"")) == b""
    assert enc.encode_buffers(b"") == []


def test_encoder_accepts_bytearray_and_memoryview(chunked):
    enc = chunked.ChunkedEncoder()
    assert enc.encode(bytearray(b"ab")) == b"2\r\nab\r\n"
    assert enc.encode(memoryview(b"xabc")[1:]) == b"3\r\nabc\r\n"


def test_encoder_extensions_are_tokens_or_quoted(chunked):
    enc = chunked.ChunkedEncoder()
    out = enc.encode(b"x", extensions=[("a", None), (b"b", b"c"), ("q", 'say "hi"\\')])
    assert out == b'1;a;b=c;q="say \\"hi\\"\\\\"\r\nx\r\n'
    dec = chunked.ChunkedDecoder()
    (ev,) = dec.feed(out)
    assert ev.extensions == ((b"a", None), (b"b", b"c"), (b"q", b'say "hi"\\'))


def test_encoder_refuses_bad_extensions(chunked):
    enc = chunked.ChunkedEncoder()
    for exts in ([("a b", None)], [("", None)], [("a", "x\r\ny")], [("a", "\x00")]):
        with pytest.raises(ValueError):
            enc.encode(b"x", extensions=exts)


def test_encoder_trailers(chunked):
    enc = chunked.ChunkedEncoder()
    assert enc.finish(trailers=[("X-Sum", "abc"), (b"etag", b'"1"')]) == (
        b'0\r\nX-Sum: abc\r\netag: "1"\r\n\r\n')


def test_encoder_refuses_bad_trailers(chunked):
    for trailers in ([("Content-Length", "1")], [("transfer-encoding", "x")], [("a b", "c")],
                     [("a", "b\r\nc: d")], [("a", "b\x00")], [("a", " b")], [(":", "b")]):
        with pytest.raises(ValueError):
            chunked.ChunkedEncoder().finish(trailers=trailers)


def test_encoder_refuses_use_after_finish(chunked):
    enc = chunked.ChunkedEncoder()
    enc.finish()
    with pytest.raises(StateError):
        enc.encode(b"x")
    with pytest.raises(StateError):
        enc.encode_buffers(b"x")
    with pytest.raises(StateError):
        enc.finish()


def test_encode_buffers_passes_the_payload_through_uncopied(chunked):
    enc = chunked.ChunkedEncoder()
    payload = memoryview(bytearray(b"z" * 70000))
    head, data, tail = enc.encode_buffers(payload, extensions=[("a", "1")])
    assert data is payload
    assert head == b"11170;a=1\r\n" and tail == b"\r\n"
    assert b"".join([head, bytes(data), tail]) == enc.encode(payload, extensions=[("a", "1")])


def test_encoder_stats_and_trace(chunked):
    seen = []
    enc = chunked.ChunkedEncoder(trace=seen.append)
    enc.encode(b"abc")
    enc.encode_buffers(b"de")
    enc.finish(trailers=[("x", "y")])
    s = enc.stats
    assert (s.bytes_in, s.chunks, s.events) == (5, 2, 3)
    assert s.bytes_out == len(b"3\r\nabc\r\n2\r\nde\r\n0\r\nx: y\r\n\r\n")
    assert [type(e).__name__ for e in seen] == ["Data", "Data", "Trailers", "EndOfMessage"]
    assert seen[0].data == b"abc"


def test_round_trip_with_extensions_and_trailers(chunked):
    enc = chunked.ChunkedEncoder()
    wire = enc.encode(b"abc", [("n", "1")]) + enc.encode(b"\r\n") + enc.finish([("x-t", "v")])
    assert normalise(chunked.ChunkedDecoder().feed(wire)) == [
        ("chunk", b"abc", ((b"n", b"1"),)), ("chunk", b"\r\n", ()),
        ("trailers", [(b"x-t", b"v")]), ("end", ())]


# -- the face ----------------------------------------------------------------------

def test_face_exports_the_chosen_twin():
    from streamcore import chunked as face

    expected = "chunked._c" if streamcore.IMPLEMENTATION == "cython" else "chunked._py"
    assert face.ChunkedDecoder.__module__.endswith(expected)
    for name in face.__all__:
        assert getattr(face, name) is not None


@pytest.mark.parametrize("kind", BUFFER_KINDS)
def test_every_buffer_kind_is_taken_alike(chunked, kind):
    # failed before: a strided view raised BufferError in the compiled decoder
    # and in both encoders; lengths count bytes, not items
    payload = b"0123456789abcdef" * 3
    enc = chunked.ChunkedEncoder()
    assert enc.encode(as_buffer(payload, kind)) == b"30\r\n" + payload + b"\r\n"
    head, body, tail = enc.encode_buffers(as_buffer(payload, kind))
    assert (head, bytes(body), tail) == (b"30\r\n", payload, b"\r\n")
    assert enc.stats.bytes_in == 2 * len(payload) and enc.stats.chunks == 2
    wire = b"30\r\n" + payload + b"\r\n0\r\n\r\n"
    dec = chunked.ChunkedDecoder()
    events = dec.feed(as_buffer(wire, kind))
    assert events[0].data == payload and dec.done
    assert dec.stats.bytes_in == len(wire)


def test_encode_buffers_hands_a_contiguous_payload_on_without_copying(chunked):
    import array

    enc = chunked.ChunkedEncoder()
    data = bytearray(b"abc")
    assert enc.encode_buffers(data)[1] is data
    words = memoryview(array.array("I", [1, 2]))
    body = enc.encode_buffers(words)[1]
    assert body.obj is words.obj and body.nbytes == 8 and len(body) == 8
