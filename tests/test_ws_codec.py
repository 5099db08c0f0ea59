"""The WebSocket kernels and frame codec (RFC 6455 §5), on both twins."""
from __future__ import annotations

import os

import pytest
from helpers import twin_fixture
from ws_helpers import MASK, frame, run_all_splits, xor

from streamcore import LimitError, ProtocolError
from streamcore.ws import Binary, Close, Ping, Pong, Text

codec = twin_fixture("ws")

# -- masking kernel (§5.3) ---------------------------------------------------

SIZES = [0, 1, 3, 4, 5, 7, 8, 9, 15, 16, 31, 32, 33, 63, 64, 65, 127, 511, 512, 513, 4099,
         65536, (1 << 20) + 3]


@pytest.mark.parametrize("size", SIZES)
def test_apply_mask_matches_bytewise_xor(codec, size):
    data = os.urandom(size)
    assert codec.apply_mask(data, MASK) == xor(data, MASK)


def test_apply_mask_is_its_own_inverse(codec):
    data = os.urandom(1000)
    assert codec.apply_mask(codec.apply_mask(data, MASK), MASK) == data


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_apply_mask_accepts_buffers(codec, kind):
    data = os.urandom(100)
    assert codec.apply_mask(kind(data), kind(MASK)) == xor(data, MASK)


def test_apply_mask_unaligned_source(codec):
    data = os.urandom(1000)
    for start in range(9):
        view = memoryview(data)[start:]
        assert codec.apply_mask(view, MASK) == xor(data[start:], MASK)


def test_apply_mask_returns_bytes(codec):
    assert type(codec.apply_mask(bytearray(b"abc"), MASK)) is bytes


@pytest.mark.parametrize("mask", [b"", b"abc", b"abcde"])
def test_apply_mask_rejects_bad_mask_length(codec, mask):
    with pytest.raises(ValueError):
        codec.apply_mask(b"data", mask)


def test_public_apply_mask_is_a_twin():
    from streamcore import ws
    from streamcore.ws import _c as _codec_c
    from streamcore.ws import _py as _codec_py

    assert ws.apply_mask in (_codec_c.apply_mask, _codec_py.apply_mask)


# -- UTF-8 validator (RFC 3629) ------------------------------------------------

UTF8_CASES = [
    b"", b"plain ascii", "héllo".encode(), "€".encode(), "😀".encode(), b"\xed\x9f\xbf",
    b"\xee\x80\x80", b"\xf4\x8f\xbf\xbf", b"\xc0\x80", b"\xc1\xbf", b"\xe0\x80\x80",
    b"\xe0\x9f\xbf", b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xf0\x80\x80\x80", b"\xf0\x8f\xbf\xbf",
    b"\xf4\x90\x80\x80", b"\xf5\x80\x80\x80", b"\xff", b"\x80", b"\xe2\x82", b"\xe2\x82A",
    b"ab\xf0\x9f\x98", b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited",
    b"x" * 20 + b"\xc3" + b"y" * 20,
]


def _python_valid(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@pytest.mark.parametrize("data", UTF8_CASES)
def test_utf8_validity_agrees_with_python(codec, data):
    idx = codec.utf8_first_invalid(data)
    assert (idx == -1) == _python_valid(data)


@pytest.mark.parametrize("data, index", [
    (b"\xed\xa0\x80", 1), (b"\xe0\x80\x80", 1), (b"\xf0\x80\x80\x80", 1), (b"\xc0\x80", 0),
    (b"\xe2\x82A", 2), (b"\xf4\x90", 1), (b"ab\xff", 2), (b"ab\xe2\x82", 4),
])
def test_utf8_first_invalid_byte(codec, data, index):
    assert codec.utf8_first_invalid(data) == index


@pytest.mark.parametrize("data", UTF8_CASES)
def test_utf8_validator_incremental_any_split(codec, data):
    whole = codec.utf8_first_invalid(data)
    for cut in range(len(data) + 1):
        v = codec.Utf8Validator()
        text1, idx1 = v.feed(data[:cut])
        if idx1 >= 0:
            assert idx1 == whole  # failed in the first piece, at the same byte
            continue
        text2, idx2 = v.feed(data[cut:])
        if idx2 >= 0:
            assert cut + idx2 == whole
            continue
        if v.finish():
            assert whole == -1
            assert text1 + text2 == data.decode("utf-8")
        else:
            assert whole == len(data)


def test_utf8_validator_fails_fast_on_surrogate_prefix(codec):
    # ED A0 can only start a surrogate: invalid before the third byte comes
    v = codec.Utf8Validator()
    assert v.feed(b"ok\xed")[1] == -1
    assert v.feed(b"\xa0") == (None, 0)


def test_utf8_validator_fails_fast_on_new_lead_byte(codec):
    v = codec.Utf8Validator()
    assert v.feed(b"\xe2\x82")[1] == -1
    assert v.feed(b"\xe2")[1] == 0


# -- encoder (§5.2) ------------------------------------------------------------


@pytest.mark.parametrize("n, head_len", [(0, 2), (125, 2), (126, 4), (65535, 4), (65536, 10)])
def test_encoder_uses_minimal_length_encoding(codec, n, head_len):
    out = codec.Encoder(False).frame(0x2, b"x" * n)
    assert len(out) == head_len + n
    assert out[:head_len] == frame(0x2, b"x" * n, mask=None)[:head_len]


def test_server_frames_are_unmasked(codec):
    assert codec.Encoder(False).frame(0x1, b"hi") == b"\x81\x02hi"


def test_client_frames_are_masked_with_fresh_keys(codec):
    enc = codec.Encoder(True)
    a = enc.frame(0x1, b"hello")
    b = enc.frame(0x1, b"hello")
    assert a[1] & 0x80 and b[1] & 0x80
    assert a[2:6] != b[2:6]  # 2**-32 chance of a false failure
    assert xor(a[6:], a[2:6]) == b"hello"


def test_client_mask_keys_span_batches(codec):
    enc = codec.Encoder(True)
    keys = {enc.frame(0x2, b"")[2:6] for _ in range(3000)}  # > one 4 KiB batch
    assert len(keys) > 2990


def test_encoder_sets_fin_and_rsv1(codec):
    enc = codec.Encoder(False)
    assert enc.frame(0x1, b"", False)[0] == 0x01
    assert enc.frame(0x1, b"", True, True)[0] == 0xC1


def test_encoder_text_fast_path(codec):
    assert codec.Encoder(False).text("é") == b"\x81\x02" + "é".encode()


def test_encoder_counts(codec):
    enc = codec.Encoder(False)
    enc.frame(0x1, b"ab", False)
    enc.frame(0x0, b"cd", True)
    enc.frame(0x9, b"")
    assert (enc.bytes_out, enc.frames_out, enc.messages_out) == (10, 3, 1)


# -- decoding frames (§5.2) ------------------------------------------------------


@pytest.mark.parametrize("n", [0, 1, 125, 126, 127, 65535, 65536, 70000])
def test_decode_every_length_encoding(codec, n):
    data = os.urandom(n)
    events, err = run_all_splits(codec, "server", frame(0x2, data), max_message_size=None)
    assert err is None and events == [Binary(data)]


def test_decode_text_frame(codec):
    events, err = run_all_splits(codec, "server", frame(0x1, "Grüße 😀".encode()))
    assert events == [Text("Grüße 😀")]


def test_decode_unmasked_as_client(codec):
    events, err = run_all_splits(codec, "client", frame(0x1, b"hi", mask=None))
    assert events == [Text("hi")]


def test_decode_ping_pong(codec):
    data = frame(0x9, b"ping!") + frame(0xA, b"pong!")
    events, err = run_all_splits(codec, "server", data)
    assert events == [Ping(b"ping!"), Pong(b"pong!")]
    assert Ping(b"") != Pong(b"")


def test_decode_close_with_code_and_reason(codec):
    events, _ = run_all_splits(codec, "server", frame(0x8, b"\x03\xe8bye"))
    assert events == [Close(1000, "bye")]


def test_decode_empty_close(codec):
    events, _ = run_all_splits(codec, "server", frame(0x8))
    assert events == [Close(None, "")]


@pytest.mark.parametrize("data, message, offset", [
    (frame(0x1, b"x", rsv=4), "reserved bit RSV1 set", 0),
    (frame(0x1, b"x", rsv=2), "reserved bit RSV2 set", 0),
    (frame(0x1, b"x", rsv=1), "reserved bit RSV3 set", 0),
    (frame(0x1, b"x", rsv=7), "reserved bit RSV1+RSV2+RSV3 set", 0),
    (frame(0x3), "unknown opcode 0x3", 0),
    (frame(0xB), "unknown opcode 0xb", 0),
    (frame(0x9, fin=False), "fragmented control frame", 0),
    (frame(0x9, b"x" * 126), "control frame payload of 126 bytes", 1),
    (frame(0x0, b"x"), "continuation frame without", 0),
    (frame(0x1, b"x", mask=None), "unmasked frame sent to a server", 1),
    (frame(0x2, b"x" * 10, width=16), "payload length 10 not in its minimal", 1),
    (frame(0x2, b"x" * 300, width=64), "payload length 300 not in its minimal", 1),
    (frame(0x2, length=1 << 63, width=64), "most significant bit", 1),
])
def test_decode_header_violations(codec, data, message, offset):
    prefix = frame(0x2, b"ok")
    _, err = run_all_splits(codec, "server", prefix + data)
    assert type(err) is ProtocolError
    assert message in str(err)
    assert err.offset == len(prefix) + offset
    assert err.close_code == 1002


def test_masked_frame_to_client_is_rejected(codec):
    _, err = run_all_splits(codec, "client", frame(0x1, b"x"))
    assert "masked frame sent to a client" in str(err) and err.offset == 1


def test_max_frame_size(codec):
    _, err = run_all_splits(codec, "server", frame(0x2, b"x" * 11), max_frame_size=10)
    assert type(err) is LimitError and err.close_code == 1009 and err.offset == 1
    events, err = run_all_splits(codec, "server", frame(0x2, b"x" * 10), max_frame_size=10)
    assert err is None and events == [Binary(b"x" * 10)]


def test_max_frame_size_applies_to_each_fragment(codec):
    data = frame(0x2, b"x" * 8, fin=False) + frame(0x0, b"y" * 8)
    events, err = run_all_splits(codec, "server", data, max_frame_size=8)
    assert events == [Binary(b"x" * 8 + b"y" * 8)]


def test_header_announcing_huge_frame_allocates_nothing_yet(codec):
    # no limits: a header announcing 2**62 bytes must not make us allocate it
    events, err = run_all_splits(codec, "server", frame(0x2, length=1 << 62) + b"abc",
                                 max_message_size=None)
    assert events == [] and err is None


def test_rsv1_without_deflate_is_rejected_even_on_control_frames(codec):
    _, err = run_all_splits(codec, "server", frame(0x9, rsv=4))
    assert "reserved bit RSV1" in str(err)


def test_apply_mask_refuses_non_buffers_alike_in_both_twins():
    # review mend: the Python twin said "string argument without an encoding"
    from streamcore.ws import _c, _py

    messages = set()
    for twin in (_py, _c):
        for args in (("abc", b"abcd"), (b"abc", "abcd")):
            with pytest.raises(TypeError) as err:
                twin.apply_mask(*args)
            messages.add(str(err.value))
    assert messages == {"expected a bytes-like object, not 'str'"}
