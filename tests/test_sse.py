"""streamcore.sse: one test per rule of the WHATWG event stream
interpretation (HTML §9.2.6), limits, stats, trace and the encoder.

Every test runs on both twins (the ``sse`` fixture); every decoding vector
is fed whole, byte by byte and in random splits.
"""
from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest
from helpers import BUFFER_KINDS, as_buffer, cut_at, splits, twin_fixture

import streamcore
from streamcore import LimitError, ProtocolError, StateError
from streamcore._contract import byte_view, check_limit
from streamcore.sse._common import Event, SSEStats

sse = twin_fixture("sse")


def decode(mod: ModuleType, pieces: list[bytes], **kw: Any) -> tuple[list[Event], Any]:
    dec = mod.SSEDecoder(**kw)
    events: list[Event] = []
    for piece in pieces:
        events += dec.feed(piece)
    return events, dec


def check(mod: ModuleType, stream: bytes, expected: list[Event], **state: Any) -> None:
    """``stream`` gives ``expected`` (and the given attributes, e.g.
    ``last_event_id``) fed whole, byte by byte and in random splits."""
    for pieces in splits(stream):
        events, dec = decode(mod, pieces)
        assert events == expected, pieces
        for name, value in state.items():
            assert getattr(dec, name) == value, (name, pieces)


def limit_error(mod: ModuleType, stream: bytes, **kw: Any) -> LimitError:
    """The LimitError ``stream`` raises, checked to be the same for every split."""
    seen = []
    for pieces in splits(stream):
        with pytest.raises(LimitError) as info:
            decode(mod, pieces, **kw)
        seen.append((str(info.value), info.value.offset))
    assert len(set(seen)) == 1, seen
    return info.value


# -- lines and fields ------------------------------------------------------------


def test_simple_event(sse: ModuleType) -> None:
    check(sse, b"data: hello\n\n", [Event("hello")])


def test_lf_crlf_and_cr_each_end_a_line(sse: ModuleType) -> None:
    expected = [Event("a\nb", "t", "1")]
    for eol in (b"\n", b"\r\n", b"\r"):
        stream = eol.join([b"event: t", b"id: 1", b"data: a", b"data: b", b"", b""])
        check(sse, stream, expected)


def test_mixed_line_ends_in_one_stream(sse: ModuleType) -> None:
    check(sse, b"data: a\r\ndata: b\rdata: c\n\r\n", [Event("a\nb\nc")])


def test_cr_at_end_of_feed_and_lf_at_start_of_next_is_one_line_end(sse: ModuleType) -> None:
    events, _ = decode(sse, [b"data: a\r", b"\ndata: b\n\n"])
    assert events == [Event("a\nb")]  # an extra blank line would have dispatched "a"


def test_crlf_split_gives_no_blank_line_after_a_blank_line(sse: ModuleType) -> None:
    events, _ = decode(sse, [b"data: a\r\n\r", b"\ndata: b\r\n\r\n"])
    assert events == [Event("a"), Event("b")]


def test_event_ending_in_cr_dispatches_without_waiting(sse: ModuleType) -> None:
    dec = sse.SSEDecoder()
    assert dec.feed(b"data: a\r\r") == [Event("a")]


def test_lone_cr_then_lone_cr_is_two_line_ends(sse: ModuleType) -> None:
    check(sse, b"data: a\r\rdata: b\r\r", [Event("a"), Event("b")])


def test_comment_lines_are_ignored(sse: ModuleType) -> None:
    check(sse, b": hello\n:\ndata: x\n: between\n\n", [Event("x")])


def test_comment_only_block_dispatches_nothing(sse: ModuleType) -> None:
    check(sse, b": keep-alive\n\n", [])


def test_field_without_colon_has_empty_value(sse: ModuleType) -> None:
    check(sse, b"data\n\n", [Event("")])
    check(sse, b"data\ndata\n\n", [Event("\n")])


def test_only_one_leading_space_is_removed(sse: ModuleType) -> None:
    check(sse, b"data:  two\n\n", [Event(" two")])
    check(sse, b"data:none\n\n", [Event("none")])
    check(sse, b"data:\tx\n\n", [Event("\tx")])


def test_value_keeps_later_colons(sse: ModuleType) -> None:
    check(sse, b"data: a: b:c\n\n", [Event("a: b:c")])


def test_data_lines_joined_with_lf_and_final_lf_removed(sse: ModuleType) -> None:
    check(sse, b"data: a\ndata:\ndata: b\n\n", [Event("a\n\nb")])


def test_empty_data_line_dispatches_empty_string(sse: ModuleType) -> None:
    check(sse, b"data:\n\n", [Event("")])


def test_empty_data_buffer_dispatches_nothing(sse: ModuleType) -> None:
    check(sse, b"event: x\nid: 1\nretry: 5\n\n", [])


def test_empty_data_buffer_still_resets_event_type(sse: ModuleType) -> None:
    check(sse, b"event: x\n\ndata: y\n\n", [Event("y", "message")])


def test_event_type_defaults_to_message(sse: ModuleType) -> None:
    check(sse, b"data: x\n\n", [Event("x", "message")])


def test_empty_event_field_means_message(sse: ModuleType) -> None:
    check(sse, b"event: t\nevent:\ndata: x\n\n", [Event("x", "message")])


def test_event_type_resets_after_dispatch(sse: ModuleType) -> None:
    check(sse, b"event: t\ndata: 1\n\ndata: 2\n\n", [Event("1", "t"), Event("2")])


def test_last_field_of_a_kind_wins(sse: ModuleType) -> None:
    check(sse, b"event: a\nevent: b\nid: 1\nid: 2\ndata: x\n\n", [Event("x", "b", "2")])


def test_id_is_last_event_id_at_dispatch_and_persists(sse: ModuleType) -> None:
    check(
        sse,
        b"id: 1\ndata: a\n\ndata: b\n\n",
        [Event("a", id="1"), Event("b", id="1")],
        last_event_id="1",
    )


def test_id_with_nul_is_ignored(sse: ModuleType) -> None:
    check(sse, b"id: 1\n\nid: 2\x003\ndata: x\n\n", [Event("x", id="1")], last_event_id="1")


def test_empty_id_resets_last_event_id(sse: ModuleType) -> None:
    check(sse, b"id: 1\ndata: a\n\nid\ndata: b\n\n", [Event("a", id="1"), Event("b", id="")],
          last_event_id="")


def test_id_on_block_without_data_still_sets_last_event_id(sse: ModuleType) -> None:
    check(sse, b"id: 7\n\n", [], last_event_id="7")


def test_id_of_incomplete_event_does_not_change_last_event_id(sse: ModuleType) -> None:
    events, dec = decode(sse, [b"id: 1\n\nid: 2\ndata: x\n"])
    dec.eof()
    assert events == []
    assert dec.last_event_id == "1"


def test_id_may_hold_spaces_and_unicode(sse: ModuleType) -> None:
    check(sse, "id:  é 1\ndata: x\n\n".encode(), [Event("x", id=" é 1")])


def test_retry_sets_reconnection_time(sse: ModuleType) -> None:
    check(sse, b"retry: 3000\n", [], retry=3000)
    check(sse, b"retry: 0\n", [], retry=0)
    check(sse, b"retry:007\n", [], retry=7)


def test_retry_starts_as_none(sse: ModuleType) -> None:
    assert sse.SSEDecoder().retry is None


@pytest.mark.parametrize(
    "value",
    [b"", b" 5", b"+5", b"-5", b"5a", b"1_0", b"5.0", b"0x10", "\u0665".encode(), b"5 ", b"\xff"],
)
def test_retry_other_than_ascii_digits_is_ignored(sse: ModuleType, value: bytes) -> None:
    # "retry:  5" leaves " 5" after the one removed space: not all digits
    check(sse, b"retry: 10\nretry: " + value + b"\n", [], retry=10)


def test_retry_takes_large_values(sse: ModuleType) -> None:
    check(sse, b"retry: 123456789012345678901234567890\n", [],
          retry=123456789012345678901234567890)


def test_retry_with_many_leading_zeros(sse: ModuleType) -> None:
    check(sse, b"retry: " + b"0" * 5000 + b"42\n", [], retry=42)


def test_retry_beyond_python_int_conversion_is_ignored(sse: ModuleType) -> None:
    check(sse, b"retry: 5\nretry: " + b"9" * 4301 + b"\n", [], retry=5)


def test_unknown_fields_are_ignored(sse: ModuleType) -> None:
    check(sse, b"foo: bar\ndata: x\nDATA: y\nData: z\n data: w\n\n", [Event("x")])


def test_field_name_may_be_empty_via_colon_only(sse: ModuleType) -> None:
    # ":" starts a comment, so an empty name cannot occur; "x:" has name "x"
    check(sse, b"x:\ndata:1\n\n", [Event("1")])


def test_nul_in_data_is_kept(sse: ModuleType) -> None:
    check(sse, b"data: a\x00b\n\n", [Event("a\x00b")])


# -- decoding: BOM and UTF-8 -------------------------------------------------------


def test_bom_is_stripped_at_stream_start(sse: ModuleType) -> None:
    check(sse, b"\xef\xbb\xbfdata: x\n\n", [Event("x")])


def test_bom_is_stripped_only_once(sse: ModuleType) -> None:
    # the second BOM is part of the first field's name, an unknown field
    check(sse, b"\xef\xbb\xbf\xef\xbb\xbfdata: x\n\ndata: y\n\n", [Event("y")])


def test_bom_later_in_stream_is_not_stripped(sse: ModuleType) -> None:
    check(sse, b"data: x\n\n\xef\xbb\xbfdata: y\n\ndata: \xef\xbb\xbfz\n\n",
          [Event("x"), Event("\ufeffz")])


def test_partial_bom_at_start_is_ordinary_bytes(sse: ModuleType) -> None:
    check(sse, b"\xef\xbb:c\ndata: x\n\n", [Event("x")])
    check(sse, b"\xef\xbb\ndata: x\n\n", [Event("x")])


def test_short_stream_that_looks_like_a_bom_start(sse: ModuleType) -> None:
    events, dec = decode(sse, [b"\xef", b"\xbb"])
    dec.eof()
    assert events == []


def test_invalid_utf8_becomes_replacement_character(sse: ModuleType) -> None:
    check(sse, b"data: a\xffb\xc3\n\n", [Event("a\ufffdb\ufffd")])


def test_truncated_sequence_before_line_end_is_one_replacement(sse: ModuleType) -> None:
    check(sse, b"data: \xe2\x82\ndata: \xe2\x82\xac\n\n", [Event("\ufffd\n\u20ac")])


def test_code_point_split_across_feeds_decodes(sse: ModuleType) -> None:
    stream = "data: 😀 é €\n\n".encode()
    for cut in range(len(stream)):
        events, _ = decode(sse, cut_at(stream, [cut]))
        assert events == [Event("😀 é €")]


def test_invalid_utf8_in_event_type_and_id(sse: ModuleType) -> None:
    check(sse, b"event: \xff\nid: \xfe\ndata: x\n\n", [Event("x", "\ufffd", "\ufffd")])


def test_surrogate_encoding_is_invalid_utf8(sse: ModuleType) -> None:
    check(sse, b"data: \xed\xa0\x80\n\n", [Event("\ufffd\ufffd\ufffd")])


# -- the end of the stream ---------------------------------------------------------


def test_eof_discards_incomplete_event(sse: ModuleType) -> None:
    events, dec = decode(sse, [b"data: a\n\ndata: b\n"])
    dec.eof()
    assert events == [Event("a")]


def test_eof_discards_incomplete_line(sse: ModuleType) -> None:
    events, dec = decode(sse, [b"data: a\n\ndata: b"])
    dec.eof()
    assert events == [Event("a")]


def test_feed_after_eof_raises_state_error(sse: ModuleType) -> None:
    dec = sse.SSEDecoder()
    dec.eof()
    with pytest.raises(StateError):
        dec.feed(b"data: x\n\n")


def test_eof_twice_raises_state_error(sse: ModuleType) -> None:
    # the rule of every protocol: a second end of stream is local misuse
    dec = sse.SSEDecoder()
    dec.feed(b"data: a\n\n")
    dec.eof()
    with pytest.raises(StateError):
        dec.eof()
    with pytest.raises(StateError):
        dec.feed(b"")  # even an empty feed


def test_empty_feed_returns_nothing(sse: ModuleType) -> None:
    dec = sse.SSEDecoder()
    assert dec.feed(b"") == []
    assert dec.feed(b"data: x\n") == []
    assert dec.feed(b"") == []
    assert dec.feed(b"\n") == [Event("x")]


def test_feed_accepts_bytearray_and_memoryview(sse: ModuleType) -> None:
    dec = sse.SSEDecoder()
    assert dec.feed(bytearray(b"data: a\n")) == []
    assert dec.feed(memoryview(b"xdata: b\n\n")[1:]) == [Event("a\nb")]


def test_feed_accepts_non_contiguous_memoryview(sse: ModuleType) -> None:
    view = memoryview(b"dxaxtxax:x xyx\nx\n")[::2]  # "data: y\n\n"
    assert sse.SSEDecoder().feed(view) == [Event("y")]


BUFFER_STREAM = "\ufeffid: 7\r\nevent: é\rdata: 😀 one\ndata: two\r\n\r\ndata: €\n\ndata: x".encode()


@pytest.mark.parametrize("kind", BUFFER_KINDS)
def test_every_buffer_kind_gives_the_same_events_and_counts_bytes(sse: ModuleType, kind: str) -> None:
    expected = [Event("😀 one\ntwo", "é", "7"), Event("€", id="7")]
    for pieces in splits(BUFFER_STREAM):
        dec = sse.SSEDecoder()
        events = []
        for piece in pieces:
            events += dec.feed(as_buffer(piece, kind))
        assert events == expected, (kind, pieces)
        assert dec.stats.bytes_in == len(BUFFER_STREAM)
        assert dec.stats.feeds == len(pieces)
        assert dec.last_event_id == "7"


@pytest.mark.parametrize("kind", BUFFER_KINDS)
def test_limits_and_offsets_count_bytes_of_every_buffer_kind(sse: ModuleType, kind: str) -> None:
    stream = b"data: ab\n\ndata: " + b"\xe2\x82\xac" * 8 + b"\n\n"  # 24 bytes, 8 code points
    for pieces in splits(stream):
        dec = sse.SSEDecoder(max_line_size=20)
        with pytest.raises(LimitError) as info:
            for piece in pieces:
                dec.feed(as_buffer(piece, kind))
        assert info.value.offset == 10 + 20, (kind, pieces)


@pytest.mark.parametrize("kind", BUFFER_KINDS)
def test_feed_does_not_keep_a_reference_to_the_callers_buffer(sse: ModuleType, kind: str) -> None:
    # the pending line is copied: changing the caller's buffer afterwards
    # changes nothing, and a bytearray can be resized again at once
    raw = bytearray(b"data: abc")
    dec = sse.SSEDecoder()
    buf = as_buffer(bytes(raw), kind) if kind != "bytearray" else raw
    dec.feed(buf)
    if kind == "bytearray":
        raw[:] = b"XXXXXXXXX"
        raw.extend(b"more")  # no export held
    assert dec.feed(b"\n\n") == [Event("abc")]


@pytest.mark.parametrize("bad", ["data: x\n\n", 5, None, [1, 2]])
def test_feed_rejects_non_buffers(sse: ModuleType, bad: Any) -> None:
    # the shared rule (streamcore._contract.byte_view): same class and
    # message from both twins; a refused feed changes nothing
    dec = sse.SSEDecoder()
    with pytest.raises(TypeError) as info:
        dec.feed(bad)
    with pytest.raises(TypeError) as shared:
        byte_view(bad)
    assert str(info.value) == str(shared.value)
    assert dec.stats == SSEStats(0, 0, 0)
    assert dec.feed(b"data: ok\n\n") == [Event("ok")]


# -- limits ------------------------------------------------------------------------


def test_default_max_event_size_is_16_mib(sse: ModuleType) -> None:
    big = b"data: " + b"x" * (16 << 20) + b"\n\n"
    with pytest.raises(LimitError) as info:
        sse.SSEDecoder().feed(big)
    assert "max_event_size=16777216" in str(info.value)
    assert "pass max_event_size=" in str(info.value)
    assert info.value.offset == 16 << 20


def test_line_at_the_limit_is_accepted(sse: ModuleType) -> None:
    for pieces in splits(b"data: 1234\n\n"):
        events, _ = decode(sse, pieces, max_line_size=10)
        assert events == [Event("1234")]


def test_line_over_the_limit_raises_at_the_byte_that_crosses_it(sse: ModuleType) -> None:
    err = limit_error(sse, b"data: a\n\ndata: 12345\n\n", max_line_size=10)
    assert err.offset == 9 + 10
    assert "max_line_size=10" in str(err)
    assert "pass max_line_size=" in str(err)
    assert isinstance(err, ProtocolError)


def test_line_limit_applies_to_comments_and_unknown_fields(sse: ModuleType) -> None:
    assert limit_error(sse, b": " + b"c" * 20 + b"\n", max_line_size=8).offset == 8
    assert limit_error(sse, b"foo: " + b"c" * 20 + b"\n", max_line_size=8).offset == 8


def test_line_limit_does_not_count_line_ends(sse: ModuleType) -> None:
    for pieces in splits(b"data:123\r\n\r\n"):
        events, _ = decode(sse, pieces, max_line_size=8)
        assert events == [Event("123")]


def test_line_limit_raises_before_the_line_ends(sse: ModuleType) -> None:
    dec = sse.SSEDecoder(max_line_size=100)
    dec.feed(b"data: " + b"x" * 90)
    with pytest.raises(LimitError) as info:
        dec.feed(b"x" * 10)  # no line end yet: raised while bytes arrive
    assert info.value.offset == 100


def test_event_size_counts_data_across_lines(sse: ModuleType) -> None:
    # the first line leaves "aaaa\n" (5) in the data buffer; the second line
    # (from byte 11) crosses 12 at its 8th byte: 5 + 8 > 12
    err = limit_error(sse, b"data: aaaa\ndata: bbbb\n\n", max_event_size=12)
    assert err.offset == 11 + 7
    assert "max_event_size=12" in str(err)


def test_event_size_counts_pending_line(sse: ModuleType) -> None:
    assert limit_error(sse, b"data: " + b"x" * 50, max_event_size=20).offset == 20


def test_event_size_counts_event_type_and_id(sse: ModuleType) -> None:
    # id "12345" (5) + type "abcde" (5) = 10 committed when the data line
    # starts at byte 23; 10 + 11 > 20
    err = limit_error(sse, b"id: 12345\nevent: abcde\ndata: xyzxyzxyz\n\n", max_event_size=20)
    assert err.offset == 23 + 10


def test_id_buffer_counts_across_events(sse: ModuleType) -> None:
    # the id buffer is kept after dispatch, so it counts for the next event
    err = limit_error(sse, b"id: 12345\ndata: a\n\ndata: 123456789\n", max_event_size=15)
    assert err.offset == 19 + 10


def test_event_size_resets_after_dispatch(sse: ModuleType) -> None:
    stream = b"data: 12345\n\n" * 5
    for pieces in splits(stream):
        events, _ = decode(sse, pieces, max_event_size=12)
        assert len(events) == 5


def test_first_limit_crossed_is_reported(sse: ModuleType) -> None:
    # "aaaaa\n" (6) committed; the next line starts at byte 11: the event
    # limit (10) is crossed at its 5th byte, the line limit (10) at its 11th
    err = limit_error(sse, b"data:aaaaa\ndata:bbbbbbbbbbbb\n", max_event_size=10, max_line_size=10)
    assert "max_event_size" in str(err)
    assert err.offset == 11 + 4


def test_line_limit_wins_a_tie(sse: ModuleType) -> None:
    err = limit_error(sse, b"data:123456", max_event_size=10, max_line_size=10)
    assert "max_line_size" in str(err)
    assert err.offset == 10


def test_limit_error_is_raised_again_on_every_later_call(sse: ModuleType) -> None:
    dec = sse.SSEDecoder(max_line_size=4)
    with pytest.raises(LimitError) as first:
        dec.feed(b"data: 123\n")
    for call in (lambda: dec.feed(b"\n"), dec.eof):
        with pytest.raises(LimitError) as again:
            call()
        assert str(again.value) == str(first.value)
        assert again.value.offset == first.value.offset


def test_repeated_error_is_a_copy_without_the_first_calls_events(sse: ModuleType) -> None:
    # a caller who handled err.events must not get them again from eof()
    dec = sse.SSEDecoder(max_line_size=8)
    with pytest.raises(LimitError) as first:
        dec.feed(b"data: a\n\ndata: 123456\n\n")
    assert first.value.events == [Event("a")]
    for call in (lambda: dec.feed(b"data: b\n\n"), lambda: dec.feed(b""), dec.eof):
        with pytest.raises(LimitError) as again:
            call()
        assert again.value is not first.value
        assert type(again.value) is type(first.value)
        assert again.value.events == []
        assert (str(again.value), again.value.offset) == (str(first.value), first.value.offset)
    assert first.value.events == [Event("a")]  # the first error is left as it was
    # once eof() was called, every later call is a StateError (design.md: all three)
    for call in (dec.eof, lambda: dec.feed(b"")):
        with pytest.raises(StateError):
            call()


def test_events_before_the_limit_error_are_on_the_error(sse: ModuleType) -> None:
    dec = sse.SSEDecoder(max_line_size=8)
    with pytest.raises(LimitError) as info:
        dec.feed(b"data: a\n\ndata: b\n\ndata: 123456\n\n")
    assert info.value.events == [Event("a"), Event("b")]


def test_limits_none_means_no_limit(sse: ModuleType) -> None:
    big = b"x" * (17 << 20)
    dec = sse.SSEDecoder(max_event_size=None, max_line_size=None)
    assert dec.feed(b"data: " + big + b"\n\n") == [Event(big.decode())]


def test_limit_offsets_count_the_bom(sse: ModuleType) -> None:
    assert limit_error(sse, b"\xef\xbb\xbfdata: 1234567", max_line_size=5).offset == 3 + 5


@pytest.mark.parametrize(
    "bad,exc", [(-1, ValueError), (1.5, TypeError), ("10", TypeError), (True, TypeError),
                (False, TypeError), (-(2**70), ValueError)]
)
def test_limit_arguments_are_checked(sse: ModuleType, bad: Any, exc: type) -> None:
    # the shared rule (streamcore._contract.check_limit): the same class and
    # message in every protocol and both twins
    for name in ("max_line_size", "max_event_size"):
        with pytest.raises(exc) as info:
            sse.SSEDecoder(**{name: bad})
        with pytest.raises(exc) as shared:
            check_limit(name, bad)
        assert str(info.value) == str(shared.value)


def test_limits_past_2_63_are_clamped_not_refused(sse: ModuleType) -> None:
    dec = sse.SSEDecoder(max_line_size=2**64, max_event_size=10**30)
    assert dec.feed(b"data: x\n\n") == [Event("x")]


def test_limit_zero_refuses_any_byte_of_a_line(sse: ModuleType) -> None:
    assert limit_error(sse, b"\n\nd", max_line_size=0).offset == 2
    check(sse, b"\n\r\n\r", [])  # blank lines hold nothing


def test_int_subclass_limit_is_accepted(sse: ModuleType) -> None:
    import enum

    class Size(enum.IntEnum):
        SMALL = 4

    assert limit_error(sse, b"data: 1", max_line_size=Size.SMALL).offset == 4


# -- observability ---------------------------------------------------------------


def test_stats_count_bytes_events_and_feeds(sse: ModuleType) -> None:
    dec = sse.SSEDecoder()
    dec.feed(b"\xef\xbb\xbfdata: a\n\n: c\n\nid: 1\n\n")
    dec.feed(b"data: b\n\ndata: c")
    stats = dec.stats
    assert isinstance(stats, SSEStats)
    assert stats == SSEStats(bytes_in=40, events=2, feeds=2)


def test_trace_gets_each_event_as_it_is_produced(sse: ModuleType) -> None:
    seen: list[Event] = []
    dec = sse.SSEDecoder(trace=seen.append)
    events = dec.feed(b"data: a\n\nevent: t\ndata: b\n\n")
    assert seen == events == [Event("a"), Event("b", "t")]


def test_trace_sees_state_up_to_date(sse: ModuleType) -> None:
    dec = sse.SSEDecoder()
    ids: list[str] = []

    def trace(ev: Event) -> None:
        ids.append(dec.last_event_id)

    dec = sse.SSEDecoder(trace=trace)
    dec.feed(b"id: 1\ndata: a\n\nid: 2\ndata: b\n\n")
    assert ids == ["1", "2"]


# -- encoding ----------------------------------------------------------------------


def test_encode_event_writes_fields_and_blank_line(sse: ModuleType) -> None:
    assert sse.encode_event("hi", event="t", id="1", retry=10) == (
        b"event: t\nid: 1\nretry: 10\ndata: hi\n\n"
    )


def test_encode_event_splits_data_on_crlf_cr_and_lf(sse: ModuleType) -> None:
    assert sse.encode_event("a\r\nb\rc\nd") == b"data: a\ndata: b\ndata: c\ndata: d\n\n"


def test_encode_event_does_not_split_on_other_line_breaks(sse: ModuleType) -> None:
    data = "a\x0bb\x0cc\x1cd\x85e\u2028f"
    assert sse.encode_event(data) == b"data: " + data.encode() + b"\n\n"


def test_encode_event_keeps_leading_space(sse: ModuleType) -> None:
    assert sse.encode_event(" x") == b"data:  x\n\n"


def test_encode_event_empty_data(sse: ModuleType) -> None:
    assert sse.encode_event("") == b"data: \n\n"
    assert sse.encode_event("\n") == b"data: \ndata: \n\n"


def test_encode_event_without_data_writes_no_data_line(sse: ModuleType) -> None:
    assert sse.encode_event(id="5") == b"id: 5\n\n"
    assert sse.encode_event() == b"\n"


def test_encode_event_comment_lines(sse: ModuleType) -> None:
    assert sse.encode_event("x", comment="a\nb\r\n") == b": a\n: b\n:\ndata: x\n\n"


def test_encode_event_is_utf8(sse: ModuleType) -> None:
    assert sse.encode_event("é€😀", event="ü", id="ß") == "event: ü\nid: ß\ndata: é€😀\n\n".encode()


@pytest.mark.parametrize("event", ["a\nb", "a\rb", "x\r\n", ""])
def test_encode_event_rejects_bad_event_type(sse: ModuleType, event: str) -> None:
    with pytest.raises(ValueError):
        sse.encode_event("x", event=event)


@pytest.mark.parametrize("id", ["a\nb", "a\rb", "a\x00b", "é\n"])
def test_encode_event_rejects_bad_id(sse: ModuleType, id: str) -> None:
    with pytest.raises(ValueError):
        sse.encode_event("x", id=id)


def test_encode_event_allows_empty_id(sse: ModuleType) -> None:
    assert sse.encode_event("x", id="") == b"id: \ndata: x\n\n"


@pytest.mark.parametrize("retry,exc", [(-1, ValueError), (True, TypeError), (1.5, TypeError), ("5", TypeError)])
def test_encode_event_rejects_bad_retry(sse: ModuleType, retry: Any, exc: type) -> None:
    with pytest.raises(exc):
        sse.encode_event("x", retry=retry)


def test_encode_event_rejects_other_types(sse: ModuleType) -> None:
    # data and comment also take UTF-8 bytes (tests/test_sse_encode_inputs.py);
    # event and id take only a str
    for kwargs in ({"data": 5}, {"data": 1.5}, {"event": 1}, {"id": 2}, {"comment": 3},
                   {"event": b"t"}, {"id": b"1"}, {"id": bytearray(b"1")}):
        with pytest.raises(TypeError):
            sse.encode_event(**kwargs)


def test_encode_event_large_fields(sse: ModuleType) -> None:
    # past the compiled twin's on-stack buffer, in every field
    data = ("x" * 300 + "\n") * 40 + "é" * 1000
    wire = sse.encode_event(data, event="e" * 700, id="i" * 700, comment="c" * 700, retry=10**40)
    assert wire.startswith(b": " + b"c" * 700 + b"\nevent: " + b"e" * 700 + b"\nid: ")
    dec = sse.SSEDecoder()
    assert dec.feed(wire) == [Event(data, "e" * 700, "i" * 700)]
    assert dec.retry == 10**40


def test_encode_event_rejects_lone_surrogate(sse: ModuleType) -> None:
    with pytest.raises(ValueError):
        sse.encode_event("\ud800")


def test_encode_events_is_the_concatenation(sse: ModuleType) -> None:
    items = [Event("a"), Event("b\nc", "t", "1"), Event("d", "message", "1"), Event("e", "t", "")]
    assert sse.encode_events(items) == (
        b"data: a\n\n"
        b"event: t\nid: 1\ndata: b\ndata: c\n\n"
        b"data: d\n\n"
        b"event: t\nid: \ndata: e\n\n"
    )


def test_encode_events_round_trips_a_sequence(sse: ModuleType) -> None:
    items = [Event("a", id="1"), Event("b", id="1"), Event("c", "x", ""), Event("", id="2")]
    assert decode(sse, [sse.encode_events(items)])[0] == items


def test_encode_events_starts_from_last_event_id(sse: ModuleType) -> None:
    assert sse.encode_events([Event("a", id="7")], last_event_id="7") == b"data: a\n\n"
    assert sse.encode_events([Event("a")], last_event_id="7") == b"id: \ndata: a\n\n"


def test_encode_events_accepts_tuples_lists_and_iterators(sse: ModuleType) -> None:
    expected = b"event: t\nid: 1\ndata: x\n\n"
    assert sse.encode_events([("x", "t", "1")]) == expected
    assert sse.encode_events([["x", "t", "1"]]) == expected
    assert sse.encode_events(iter([("x", "t", "1")])) == expected
    assert sse.encode_events(iter([("x\n", "t", "1")])) == b"event: t\nid: 1\ndata: x\ndata: \n\n"


def test_encode_events_empty(sse: ModuleType) -> None:
    assert sse.encode_events([]) == b""


def test_encode_events_checks_each_item(sse: ModuleType) -> None:
    for bad in ([("x", "a\nb", "")], [("x", "message", "\x00")], [(None, "message", "")],
                [("x", "", "")], [("x",)], [5]):
        with pytest.raises((TypeError, ValueError)):
            sse.encode_events(bad)


def test_keepalive_is_a_comment_block(sse: ModuleType) -> None:
    assert sse.keepalive() == b":\n\n"
    assert sse.keepalive("ping") == b": ping\n\n"
    assert decode(sse, [sse.keepalive("ping") * 3])[0] == []


def test_keepalive_between_events_changes_nothing(sse: ModuleType) -> None:
    stream = sse.encode_event("a", id="1") + sse.keepalive() + sse.encode_event("b")
    events, dec = decode(sse, [stream])
    assert events == [Event("a", id="1"), Event("b", id="1")]


# -- the face ----------------------------------------------------------------------


def test_face_exports_the_chosen_twin() -> None:
    from streamcore import sse as face

    suffix = "_c" if streamcore.IMPLEMENTATION == "cython" else "_py"
    twin = __import__(f"streamcore.sse.{suffix}", fromlist=["SSEDecoder"])
    assert face.SSEDecoder is twin.SSEDecoder
    assert face.encode_event is twin.encode_event
    assert face.Event is Event
    assert set(face.__all__) >= {"SSEDecoder", "Event", "encode_event", "encode_events", "keepalive"}


def test_both_twins_build_the_same_event_class(sse: ModuleType) -> None:
    (ev,) = sse.SSEDecoder().feed(b"data: x\n\n")
    assert type(ev) is Event
    assert ev == Event("x") and tuple(ev) == ("x", "message", "")
    assert ev.data == "x" and ev.event == "message" and ev.id == ""


def test_event_never_equals_a_plain_tuple(sse: ModuleType) -> None:
    # the one event idiom (streamcore._events): equality compares the class
    (ev,) = sse.SSEDecoder().feed(b"data: x\n\n")
    assert ev != ("x", "message", "")
    assert ("x", "message", "") != ev
    assert hash(ev) == hash(Event("x"))
    assert len({ev, Event("x"), ("x", "message", "")}) == 2


def test_event_has_no_instance_dict(sse: ModuleType) -> None:
    (ev,) = sse.SSEDecoder().feed(b"data: x\n\n")
    assert not hasattr(ev, "__dict__")
    with pytest.raises(AttributeError):
        ev.extra = 1  # type: ignore[attr-defined]
    assert repr(ev) == "Event(data='x', event='message', id='')"
    assert ev._replace(id="7") == Event("x", id="7")


# -- reconnection seeding (failed before: SSEDecoder took no last_event_id/retry) ----

def test_a_reconnecting_client_seeds_the_decoder(sse):
    dec = sse.SSEDecoder(last_event_id="41", retry=2500)
    assert (dec.last_event_id, dec.retry) == ("41", 2500)
    # an event without an id carries the seeded one, as MessageEvent.lastEventId does
    [event] = dec.feed(b"data: next\n\n")
    assert event.id == "41" and dec.last_event_id == "41"
    dec.feed(b"id: 42\ndata: x\n\nretry: 100\n\n")
    assert (dec.last_event_id, dec.retry) == ("42", 100)
    # a second reconnect still has an id to send
    again = sse.SSEDecoder(last_event_id=dec.last_event_id, retry=dec.retry)
    assert again.feed(b"id\ndata: y\n\n")[0].id == ""  # an empty id field resets it


def test_the_seed_is_what_a_stream_could_have_set(sse):
    for bad, error in (("a\x00b", ValueError), ("a\nb", ValueError), ("a\rb", ValueError), ("a\ud800", ValueError),
                       (b"41", TypeError), (41, TypeError)):
        with pytest.raises(error):
            sse.SSEDecoder(last_event_id=bad)
    for bad, error in ((-1, ValueError), (True, TypeError), ("100", TypeError)):
        with pytest.raises(error):
            sse.SSEDecoder(retry=bad)
    assert sse.SSEDecoder(last_event_id="é").last_event_id == "é"
