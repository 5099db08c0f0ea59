"""permessage-deflate (RFC 7692): negotiation, compression, bounded decompression.

streamcore.ws.deflate is pure Python on both twins (zlib does the work; there
is no compiled twin), so its own tests run once; the tests at the end run it
inside ws-core's Connection, on both Connection twins.
"""

from __future__ import annotations

import os
import random
import time
import tracemalloc
import zlib
from types import ModuleType
from typing import Any

import pytest
from helpers import load_twin, splits, twin_fixture
from websockets.extensions import permessage_deflate as ws_pmd
from websockets.frames import Frame, Opcode

from streamcore import LimitError, ProtocolError
from streamcore.ws import Text
from streamcore.ws.deflate import DeflateSession, NegotiatedDeflate, PerMessageDeflate
from streamcore.ws.handshake import parse_extensions

MiB = 1 << 20


def params(element: str) -> list[tuple[str, str | None]]:
    """The parameters of one extension element written as a header value."""
    ((name, ps),) = parse_extensions(element)
    assert name == "permessage-deflate"
    return ps


def agreement(config: PerMessageDeflate) -> NegotiatedDeflate:
    """The agreement holding the values of ``config`` (both sides' view)."""
    fields = ("client_no_context_takeover", "server_no_context_takeover", "client_max_window_bits",
              "server_max_window_bits", "compress_level", "mem_level")
    return NegotiatedDeflate(**{name: getattr(config, name) for name in fields})


def pair(config: PerMessageDeflate) -> tuple[DeflateSession, DeflateSession]:
    """(client session, server session) for the agreement holding ``config``'s values."""
    agreed = agreement(config)
    return agreed.session(client=True), agreed.session(client=False)


def text_corpus(size: int, seed: int = 1) -> bytes:
    rng = random.Random(seed)
    words = [b"stream", b"core", b"frame", b"socket", b"deflate", b"window", b"  ", b"\n"]
    out = bytearray()
    while len(out) < size:
        out += rng.choice(words)
    return bytes(out[:size])


# -- constructor ---------------------------------------------------------------


@pytest.mark.parametrize("bits", [7, 16, 0, -1, True, "10"])
def test_window_bits_outside_8_to_15_are_refused(bits: object) -> None:
    with pytest.raises(ValueError):
        PerMessageDeflate(server_max_window_bits=bits)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        PerMessageDeflate(client_max_window_bits=bits)  # type: ignore[arg-type]


def test_compress_level_and_mem_level_are_checked() -> None:
    with pytest.raises(ValueError):
        PerMessageDeflate(compress_level=10)
    with pytest.raises(ValueError):
        PerMessageDeflate(mem_level=0)


# -- client offer ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "offer"),
    [
        ({}, "permessage-deflate; client_max_window_bits"),
        ({"client_max_window_bits": 10}, "permessage-deflate; client_max_window_bits=10"),
        (
            {"server_max_window_bits": 9, "server_no_context_takeover": True},
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=9; "
            "client_max_window_bits",
        ),
        (
            {"client_no_context_takeover": True},
            "permessage-deflate; client_no_context_takeover; client_max_window_bits",
        ),
    ],
)
def test_offer_string_names_the_configured_parameters(config: dict, offer: str) -> None:
    assert PerMessageDeflate(**config).offer() == offer


# -- server: accepting offers (RFC 7692 §5, §7.1) ------------------------------


@pytest.mark.parametrize(
    ("server", "offer", "response"),
    [
        # nothing asked, nothing required: bare response
        ({}, "permessage-deflate", "permessage-deflate"),
        ({}, "permessage-deflate; client_max_window_bits", "permessage-deflate"),
        # §7.1.1.1: server_no_context_takeover offered -> echoed
        (
            {},
            "permessage-deflate; server_no_context_takeover",
            "permessage-deflate; server_no_context_takeover",
        ),
        # §7.1.1.2: the client's hint is echoed (binding), or required by us
        (
            {},
            "permessage-deflate; client_no_context_takeover",
            "permessage-deflate; client_no_context_takeover",
        ),
        (
            {"client_no_context_takeover": True},
            "permessage-deflate",
            "permessage-deflate; client_no_context_takeover",
        ),
        (
            {"server_no_context_takeover": True},
            "permessage-deflate",
            "permessage-deflate; server_no_context_takeover",
        ),
        # §7.1.2.1: server_max_window_bits answered with the same or smaller
        (
            {},
            "permessage-deflate; server_max_window_bits=10",
            "permessage-deflate; server_max_window_bits=10",
        ),
        (
            {"server_max_window_bits": 9},
            "permessage-deflate; server_max_window_bits=12",
            "permessage-deflate; server_max_window_bits=9",
        ),
        (
            {"server_max_window_bits": 13},
            "permessage-deflate; server_max_window_bits=11",
            "permessage-deflate; server_max_window_bits=11",
        ),
        # ... and may be named when not offered
        (
            {"server_max_window_bits": 12},
            "permessage-deflate",
            "permessage-deflate; server_max_window_bits=12",
        ),
        # §7.1.2.2: client_max_window_bits only when offered
        (
            {"client_max_window_bits": 10},
            "permessage-deflate; client_max_window_bits",
            "permessage-deflate; client_max_window_bits=10",
        ),
        (
            {"client_max_window_bits": 10},
            "permessage-deflate; client_max_window_bits=9",
            "permessage-deflate; client_max_window_bits=9",
        ),
        (
            {},
            "permessage-deflate; client_max_window_bits=11",
            "permessage-deflate; client_max_window_bits=11",
        ),
        ({"client_max_window_bits": 10}, "permessage-deflate", None),
        # quoted-string values are the same values (§9.1 of RFC 6455)
        (
            {},
            'permessage-deflate; server_max_window_bits="10"',
            "permessage-deflate; server_max_window_bits=10",
        ),
        # declined: unknown, duplicated, invalid (§5)
        ({}, "permessage-deflate; unknown", None),
        ({}, "permessage-deflate; server_no_context_takeover; server_no_context_takeover", None),
        ({}, "permessage-deflate; server_no_context_takeover=1", None),
        ({}, "permessage-deflate; client_no_context_takeover=yes", None),
        ({}, "permessage-deflate; server_max_window_bits", None),
        ({}, "permessage-deflate; server_max_window_bits=7", None),
        ({}, "permessage-deflate; server_max_window_bits=16", None),
        ({}, "permessage-deflate; server_max_window_bits=010", None),
        ({}, "permessage-deflate; client_max_window_bits=0x9", None),
        ({}, "permessage-deflate; client_max_window_bits=8; client_max_window_bits=9", None),
    ],
)
def test_server_negotiation_matrix(server: dict, offer: str, response: str | None) -> None:
    agreed = PerMessageDeflate(**server).accept_offer(params(offer))
    if response is None:
        assert agreed is None
    else:
        assert agreed is not None
        assert agreed.response() == response


def test_parameter_names_are_case_insensitive() -> None:
    agreed = PerMessageDeflate().accept_offer(
        params("permessage-deflate; Server_No_Context_Takeover")
    )
    assert agreed is not None and agreed.server_no_context_takeover


def test_server_agreement_drives_the_sessions() -> None:
    agreed = PerMessageDeflate(client_max_window_bits=10).accept_offer(
        params(
            "permessage-deflate; server_max_window_bits=11; client_max_window_bits; server_no_context_takeover"
        )
    )
    assert agreed is not None
    server = agreed.session(client=False)
    assert (server.local_bits, server.remote_bits) == (11, 10)
    assert server.local_no_context_takeover and not server.remote_no_context_takeover
    client = agreed.session(client=True)
    assert (client.local_bits, client.remote_bits) == (10, 11)
    assert client.remote_no_context_takeover and not client.local_no_context_takeover


# -- client: validating the response -------------------------------------------


@pytest.mark.parametrize(
    ("client", "response", "expected"),
    [
        ({}, "permessage-deflate", {}),
        (
            {},
            "permessage-deflate; server_no_context_takeover",
            {"server_no_context_takeover": True},
        ),
        (
            {},
            "permessage-deflate; client_no_context_takeover",
            {"client_no_context_takeover": True},
        ),
        ({}, "permessage-deflate; server_max_window_bits=9", {"server_max_window_bits": 9}),
        ({}, "permessage-deflate; client_max_window_bits=8", {"client_max_window_bits": 8}),
        ({"client_max_window_bits": 12}, "permessage-deflate", {"client_max_window_bits": 12}),
        (
            {"client_max_window_bits": 12},
            "permessage-deflate; client_max_window_bits=10",
            {"client_max_window_bits": 10},
        ),
        (
            {"server_max_window_bits": 12},
            "permessage-deflate; server_max_window_bits=12",
            {"server_max_window_bits": 12},
        ),
        (
            {"server_no_context_takeover": True},
            "permessage-deflate; server_no_context_takeover",
            {"server_no_context_takeover": True},
        ),
        # our own reset stays even if the server did not echo the hint
        (
            {"client_no_context_takeover": True},
            "permessage-deflate",
            {"client_no_context_takeover": True},
        ),
    ],
)
def test_client_accepts_valid_responses(client: dict, response: str, expected: dict) -> None:
    agreed = PerMessageDeflate(**client).accept_response(params(response))
    want = NegotiatedDeflate(**{**client, **expected})
    assert agreed == want


@pytest.mark.parametrize(
    ("client", "response"),
    [
        ({}, "permessage-deflate; unknown"),
        ({}, "permessage-deflate; client_max_window_bits"),  # needs a value in a response
        ({}, "permessage-deflate; server_max_window_bits=7"),
        ({}, "permessage-deflate; server_max_window_bits=15; server_max_window_bits=15"),
        ({}, "permessage-deflate; server_no_context_takeover=x"),
        ({"server_no_context_takeover": True}, "permessage-deflate"),
        ({"server_max_window_bits": 10}, "permessage-deflate"),
        ({"server_max_window_bits": 10}, "permessage-deflate; server_max_window_bits=11"),
        ({"client_max_window_bits": 10}, "permessage-deflate; client_max_window_bits=12"),
    ],
)
def test_client_fails_on_invalid_responses(client: dict, response: str) -> None:
    with pytest.raises(ProtocolError, match="permessage-deflate response"):
        PerMessageDeflate(**client).accept_response(params(response))


# -- negotiation interop with websockets' factories ------------------------------


@pytest.mark.parametrize(
    "server_config",
    [
        {},
        {"server_no_context_takeover": True},
        {"client_no_context_takeover": True},
        {"server_max_window_bits": 10},
        {"client_max_window_bits": 9},
    ],
)
def test_our_offer_is_accepted_by_websockets_and_its_response_by_us(server_config: dict) -> None:
    ours = PerMessageDeflate()
    factory = ws_pmd.ServerPerMessageDeflateFactory(**server_config)
    response_params, ws_ext = factory.process_request_params(ours.offer_params(), [])
    agreed = ours.accept_response(response_params)
    client = agreed.session(client=True)
    assert client.remote_bits == ws_ext.local_max_window_bits
    assert client.local_bits == ws_ext.remote_max_window_bits
    assert client.remote_no_context_takeover == ws_ext.local_no_context_takeover
    assert client.local_no_context_takeover == ws_ext.remote_no_context_takeover


@pytest.mark.parametrize(
    "client_config",
    [
        {},
        {"server_no_context_takeover": True},
        {"client_no_context_takeover": True},
        {"server_max_window_bits": 10},
        {"client_max_window_bits": 11},
    ],
)
def test_websockets_offer_is_accepted_by_us_and_our_response_by_websockets(
    client_config: dict,
) -> None:
    factory = ws_pmd.ClientPerMessageDeflateFactory(**client_config)
    offer = factory.get_request_params()
    agreed = PerMessageDeflate().accept_offer(offer)
    assert agreed is not None
    ws_ext = factory.process_response_params(agreed.response_params(), [])
    server = agreed.session(client=False)
    assert server.remote_bits == ws_ext.local_max_window_bits
    assert server.local_bits == ws_ext.remote_max_window_bits
    assert server.remote_no_context_takeover == ws_ext.local_no_context_takeover
    assert server.local_no_context_takeover == ws_ext.remote_no_context_takeover


# -- compression round trips -----------------------------------------------------


AGREEMENTS = [
    PerMessageDeflate(),
    PerMessageDeflate(client_no_context_takeover=True, server_no_context_takeover=True),
    PerMessageDeflate(client_max_window_bits=9, server_max_window_bits=10),
    PerMessageDeflate(client_max_window_bits=8, server_max_window_bits=8),
    PerMessageDeflate(compress_level=1, mem_level=1),
    PerMessageDeflate(compress_level=0),
]


@pytest.mark.parametrize("agreed", AGREEMENTS, ids=repr)
def test_messages_round_trip_both_ways(agreed: PerMessageDeflate) -> None:
    client, server = pair(agreed)
    messages = [
        b"",
        b"a",
        b"Hello",
        text_corpus(70_000),
        os.urandom(5000),
        b"\x00" * 100_000,
        b"Hello",
    ]
    for message in messages:
        assert server.decompress(client.compress(message), True, None) == message
        assert client.decompress(server.compress(message), True, None) == message


def test_compressed_message_split_into_fragments_inflates_to_the_message() -> None:
    client, server = pair(PerMessageDeflate())
    message = text_corpus(200_000, seed=3)
    for seed in range(3):
        payload = client.compress(message)
        rng = random.Random(seed)
        cuts = sorted(rng.randint(0, len(payload)) for _ in range(6))
        pieces = [payload[a:b] for a, b in zip([0, *cuts], [*cuts, len(payload)])]
        out = b"".join(
            server.decompress(piece, i == len(pieces) - 1, None) for i, piece in enumerate(pieces)
        )
        assert out == message


def test_compress_accepts_bytearray_and_memoryview() -> None:
    client, server = pair(PerMessageDeflate())
    data = text_corpus(1000)
    assert server.decompress(memoryview(client.compress(bytearray(data))), True, None) == data
    assert server.decompress(bytearray(client.compress(memoryview(data))), True, None) == data


def test_rfc7692_hello_samples() -> None:
    # RFC 7692 §7.2.3.1 (one message) and §7.2.3.2 (a second one sharing the window)
    client, server = pair(PerMessageDeflate())
    assert client.compress(b"Hello") == bytes.fromhex("f248cdc9c90700")
    assert client.compress(b"Hello") == bytes.fromhex("f200110000")
    assert server.decompress(bytes.fromhex("f248cdc9c90700"), True, None) == b"Hello"
    assert server.decompress(bytes.fromhex("f200110000"), True, None) == b"Hello"


def test_stored_block_and_empty_message_decompress() -> None:
    # RFC 7692 §7.2.3.3 (no compression) and §7.2.3.6 (an empty payload)
    _, server = pair(PerMessageDeflate())
    assert server.decompress(bytes.fromhex("000500faff48656c6c6f00"), True, None) == b"Hello"
    assert server.decompress(b"\x00", True, None) == b""
    assert server.decompress(b"", True, None) == b""


def test_empty_message_compresses_to_one_zero_byte() -> None:
    client, _ = pair(PerMessageDeflate())
    assert client.compress(b"") == b"\x00"


def test_final_deflate_block_is_accepted_and_next_message_starts_afresh() -> None:
    # §7.2.3.4: a sender may end a message with a BFINAL=1 block
    _, server = pair(PerMessageDeflate())
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    final = compressor.compress(b"Hello") + compressor.flush(zlib.Z_FINISH)
    assert server.decompress(final, True, None) == b"Hello"
    assert server.decompress(bytes.fromhex("f248cdc9c90700"), True, None) == b"Hello"


def test_data_after_a_final_deflate_block_is_1007() -> None:
    _, server = pair(PerMessageDeflate())
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    final = compressor.compress(b"Hello") + compressor.flush(zlib.Z_FINISH)
    with pytest.raises(ProtocolError) as info:
        server.decompress(final + b"\x01\x02", True, None)
    assert info.value.close_code == 1007
    _, server = pair(PerMessageDeflate())
    server.decompress(final, False, None)
    with pytest.raises(ProtocolError) as info:
        server.decompress(b"\x00", True, None)
    assert info.value.close_code == 1007


@pytest.mark.parametrize(
    "garbage", [b"\xff\xff\xff", b"\x07" * 10, bytes.fromhex("000500000048656c6c6f")]
)
def test_invalid_deflate_data_is_1007_not_a_limit_error(garbage: bytes) -> None:
    _, server = pair(PerMessageDeflate())
    with pytest.raises(ProtocolError) as info:
        server.decompress(garbage, True, 1000)
    assert type(info.value) is ProtocolError
    assert info.value.close_code == 1007


# -- context takeover (RFC 7692 §7.1.1) ------------------------------------------


def test_context_takeover_makes_a_repeated_message_smaller() -> None:
    client, _ = pair(PerMessageDeflate())
    message = os.urandom(2000)  # incompressible alone, but repeated
    first, second = client.compress(message), client.compress(message)
    assert len(second) < len(first) // 10


def test_no_context_takeover_compresses_each_message_alone() -> None:
    client, server = pair(PerMessageDeflate(client_no_context_takeover=True))
    message = os.urandom(2000)
    first, second = client.compress(message), client.compress(message)
    assert first == second
    assert client._compressor is None  # nothing held between messages
    assert server.decompress(first, True, None) == message
    assert server.decompress(second, True, None) == message
    assert server._decompressor is None


def test_receiver_without_context_takeover_cannot_inflate_a_back_reference() -> None:
    # The server agreed the client resets; a client that does not is caught.
    sender = DeflateSession()  # keeps its context
    receiver = NegotiatedDeflate(client_no_context_takeover=True).session(client=False)
    message = os.urandom(300)
    receiver.decompress(sender.compress(message), True, None)
    with pytest.raises(ProtocolError) as info:
        receiver.decompress(sender.compress(message), True, None)
    assert info.value.close_code == 1007


def test_receiver_with_context_takeover_keeps_the_window_across_messages() -> None:
    client, server = pair(PerMessageDeflate())
    message = os.urandom(300)
    for _ in range(5):
        assert server.decompress(client.compress(message), True, None) == message


# -- window bits (RFC 7692 §7.1.2) -----------------------------------------------


def long_distance_repeat() -> bytes:
    block = random.Random(7).randbytes(3000)
    return block + random.Random(8).randbytes(10_000) + block


def test_window_bits_bound_the_distance_our_compressor_uses() -> None:
    # zlib enforces the window only across calls, so each message is inflated
    # in its own call and later messages refer back into earlier ones.
    # Patterns repeating at 200..5000 bytes: back references cross messages.
    for size in (200, 240, 300, 600, 5000):
        pattern = random.Random(size).randbytes(size) * 3
        messages = [pattern[i : i + 60] for i in range(0, len(pattern), 60)]
        for bits in range(8, 16):
            local = DeflateSession(local_bits=bits)
            # the peer inflates with exactly the negotiated window, 8 included
            peer = zlib.decompressobj(wbits=-bits)
            for message in messages:
                assert peer.decompress(local.compress(message) + b"\x00\x00\xff\xff") == message


# fuzz/fuzz_ws_deflate.py crash 45a6e502: the first 3 bytes choose no limit,
# window bits 8 and cuts at 32 and 122; the rest is the payload of one
# compressed message.  It refers back farther than 256 bytes.
FUZZ_45A6E502 = bytes.fromhex(
    "0060fae3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3ffffffffffffffffe3e3e3e3e3e3e3e3"
    "e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3"
    "e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3"
    "e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3"
    "e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e32effffffffffffffff"
)


def inflate_frames(bits: int, frames: list[bytes]) -> tuple[object, ...]:
    """Inflate one message given as frames, as a Connection does."""
    session = DeflateSession(remote_bits=bits)
    try:
        out = [session.decompress(f, i == len(frames) - 1, None) for i, f in enumerate(frames)]
    except ProtocolError as exc:
        return ("error", type(exc), exc.close_code)
    return ("ok", b"".join(out))


def test_fuzz_45a6e502_inflates_the_same_whole_and_in_frames() -> None:
    # Failed on the old code: whole -> 2017 bytes, three frames -> 1007
    # ("invalid distance too far back"), because zlib checks a distance only
    # against the bytes it still holds, which depends on the cuts.
    assert len(FUZZ_45A6E502) == 178
    payload = FUZZ_45A6E502[3:]
    whole = inflate_frames(8, [payload])
    assert whole[0] == "ok" and len(whole[1]) == 2017  # type: ignore[arg-type]
    assert inflate_frames(8, [payload[:32], payload[32:122], payload[122:]]) == whole
    for cuts in splits(payload, seed=45):
        assert inflate_frames(8, cuts) == whole


@pytest.mark.parametrize("bits", range(8, 16))
def test_reference_past_the_agreed_window_is_judged_alike_for_any_frames(bits: int) -> None:
    # A peer that refers back past the agreed window (inside one message and
    # into the previous one) gets one verdict however it cuts its frames:
    # accepted, since the inflater keeps the largest window.  Under the old
    # code, 2**bits < 3000 gave "ok" in one frame and 1007 in several.
    block = random.Random(7).randbytes(3000)
    sender = DeflateSession(local_bits=15)
    first = sender.compress(block + block)
    second = sender.compress(block)
    for cut in (1, 100, 2999, len(first) - 1):
        receiver = DeflateSession(remote_bits=bits)
        assert receiver.decompress(first[:cut], False, None) + receiver.decompress(
            first[cut:], True, None
        ) == block + block
        assert receiver.decompress(second, True, None) == block


def test_window_bits_8_compresses_with_a_512_byte_window() -> None:
    # zlib refuses a raw 256-byte window for deflate; 9 is used (and is safe)
    session = DeflateSession(local_bits=8)
    assert (
        DeflateSession(remote_bits=8).decompress(session.compress(b"ab" * 1000), True, None)
        == b"ab" * 1000
    )


# -- bounded decompression (decompression bombs) ---------------------------------


@pytest.fixture(scope="module")
def bomb() -> bytes:
    """100 MB of zeros, compressed (about 100 KB)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    zeros = bytes(MiB)
    parts = [compressor.compress(zeros) for _ in range(100)]
    parts.append(compressor.flush(zlib.Z_SYNC_FLUSH)[:-4])
    return b"".join(parts)


def test_bomb_raises_limit_error_quickly_with_bounded_memory(bomb: bytes) -> None:
    _, server = pair(PerMessageDeflate())
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(LimitError) as info:
            server.decompress(bomb, True, MiB)
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.value.close_code == 1009
    assert elapsed < 1.0
    assert peak < 4 * MiB  # the 1 MiB (+1) output and zlib's window, not 100 MB


def test_bomb_split_into_fragments_stops_at_the_message_limit(bomb: bytes) -> None:
    # The Connection passes what is left of max_message_size for each fragment.
    _, server = pair(PerMessageDeflate())
    left = MiB
    with pytest.raises(LimitError) as info:
        for start in range(0, len(bomb), 4096):
            out = server.decompress(bomb[start : start + 4096], False, left)
            left -= len(out)
    assert info.value.close_code == 1009
    assert server.bytes_after_decompression <= MiB


def test_output_exactly_at_the_limit_is_accepted() -> None:
    client, server = pair(PerMessageDeflate())
    message = text_corpus(10_000)
    assert server.decompress(client.compress(message), True, 10_000) == message
    with pytest.raises(LimitError):
        server.decompress(client.compress(message), True, 9_999)


def test_zero_limit_accepts_only_an_empty_message() -> None:
    client, server = pair(PerMessageDeflate())
    assert server.decompress(client.compress(b""), True, 0) == b""
    with pytest.raises(LimitError):
        server.decompress(client.compress(b"x"), True, 0)


def test_limit_error_message_says_how_to_raise_it() -> None:
    client, server = pair(PerMessageDeflate())
    with pytest.raises(LimitError, match="max_message_size"):
        server.decompress(client.compress(b"x" * 100), True, 10)


# -- counters --------------------------------------------------------------------


def test_counters_track_bytes_before_and_after() -> None:
    client, server = pair(PerMessageDeflate())
    total_in = total_out = 0
    for message in (b"Hello", text_corpus(5000), b""):
        payload = client.compress(message)
        total_in += len(message)
        total_out += len(payload)
        server.decompress(payload, True, None)
    assert (client.bytes_before_compression, client.bytes_after_compression) == (
        total_in,
        total_out,
    )
    assert (server.bytes_before_decompression, server.bytes_after_decompression) == (
        total_out,
        total_in,
    )
    assert client.bytes_before_decompression == client.bytes_after_decompression == 0


# -- differential against websockets' PerMessageDeflate extension ---------------


@pytest.mark.parametrize(
    ("nct", "bits"),
    [(False, 15), (True, 15), (False, 10), (True, 9)],
)
def test_payloads_interoperate_with_websockets_extension(nct: bool, bits: int) -> None:
    ours = DeflateSession(
        local_bits=bits,
        remote_bits=bits,
        local_no_context_takeover=nct,
        remote_no_context_takeover=nct,
    )
    theirs = ws_pmd.PerMessageDeflate(nct, nct, bits, bits)
    rng = random.Random(bits)
    for i in range(20):
        message = text_corpus(rng.randint(0, 20_000), seed=i) + os.urandom(rng.randint(0, 50))
        # ours -> websockets
        frame = Frame(Opcode.BINARY, ours.compress(message), fin=True, rsv1=True)
        assert theirs.decode(frame).data == message
        # websockets -> ours, as two fragments
        half = len(message) // 2
        first = theirs.encode(Frame(Opcode.BINARY, message[:half], fin=False))
        last = theirs.encode(Frame(Opcode.CONT, message[half:], fin=True))
        out = ours.decompress(first.data, False, None) + ours.decompress(last.data, True, None)
        assert out == message


# -- through ws-core's Connection, on both twins ------------------------------------------

codec = twin_fixture("ws")


def connected(
    codec: ModuleType, client_config: PerMessageDeflate, server_config: PerMessageDeflate, **kw: Any
) -> tuple[Any, Any]:
    """A client and a server Connection with deflate agreed through the handshake helpers."""
    agreed = server_config.accept_offer(client_config.offer_params())
    assert agreed is not None
    client_agreed = client_config.accept_response(agreed.response_params())
    return (
        codec.Connection("client", deflate=client_agreed, **kw),
        codec.Connection("server", deflate=agreed, **kw),
    )


@pytest.mark.parametrize("agreed", AGREEMENTS, ids=repr)
def test_connection_messages_round_trip_compressed(
    codec: ModuleType, agreed: PerMessageDeflate
) -> None:
    client, server = connected(codec, agreed, agreed)
    messages = ["", "Hello", "Hello", text_corpus(50_000).decode(), "€𝄞" * 1000]
    wire = b"".join(client.send_text(m) for m in messages)
    assert wire[0] & 0x40  # RSV1: compressed (RFC 7692 §6)
    for pieces in splits(wire, seed=1, random_splits=3) if len(wire) < 4000 else [[wire]]:
        _, fresh_server = connected(codec, agreed, agreed)
        events = [e for p in pieces for e in fresh_server.receive_data(p)]
        assert [e.data for e in events] == messages
    assert [e.data for e in server.receive_data(wire)] == messages
    binary = [os.urandom(3000), b"", bytes(100_000)]
    wire = b"".join(server.send_binary(m) for m in binary)
    assert [e.data for e in client.receive_data(wire)] == binary


def test_connection_split_invariance_with_deflate(codec: ModuleType) -> None:
    client, _ = connected(codec, PerMessageDeflate(), PerMessageDeflate())
    wire = b"".join(client.send_text(m) for m in ("Hello", "Hello", "a" * 300, "xyz"))
    expected = None
    for pieces in splits(wire, seed=2):
        _, server = connected(codec, PerMessageDeflate(), PerMessageDeflate())
        events = [e for p in pieces for e in server.receive_data(p)]
        if expected is None:
            expected = events
        assert events == expected
    assert expected is not None and [e.data for e in expected] == [
        "Hello",
        "Hello",
        "a" * 300,
        "xyz",
    ]


def test_connection_stats_carry_the_deflate_counters(codec: ModuleType) -> None:
    client, server = connected(codec, PerMessageDeflate(), PerMessageDeflate())
    message = text_corpus(10_000).decode()
    wire = client.send_text(message)
    server.receive_data(wire)
    sent, got = client.stats, server.stats
    assert sent.bytes_before_compression == len(message)
    assert 0 < sent.bytes_after_compression < len(message) // 2
    assert got.bytes_before_decompression == sent.bytes_after_compression
    assert got.bytes_after_decompression == len(message)


@pytest.fixture(scope="module")
def bomb_wire() -> bytes:
    """A client's masked frame carrying 64 MiB of zeros, compressed (~64 KB)."""
    client = load_twin("ws", "python").Connection(
        "client", deflate=NegotiatedDeflate(), max_message_size=None
    )
    return bytes(client.send_binary(bytes(64 * MiB)))


def test_connection_stops_a_decompression_bomb_at_the_limit(
    codec: ModuleType, bomb_wire: bytes
) -> None:
    server = codec.Connection("server", deflate=NegotiatedDeflate(), max_message_size=MiB)
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(LimitError) as info:
            for start in range(0, len(bomb_wire), 65536):
                server.receive_data(bomb_wire[start : start + 65536])
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.value.close_code == 1009
    assert info.value.offset is not None
    assert elapsed < 1.0
    assert peak < 8 * MiB  # the limit plus the frame's wire bytes, not 64 MiB


def test_connection_inflates_websockets_fragmented_compressed_message(codec: ModuleType) -> None:
    # websockets' own extension compresses each fragment (RSV1 on the first)
    ext = ws_pmd.PerMessageDeflate(False, False, 12, 12)
    body = text_corpus(40_000, seed=9)
    pieces = [body[:10_000], body[10_000:30_000], body[30_000:]]
    wire = b""
    for i, piece in enumerate(pieces):
        opcode = Opcode.TEXT if i == 0 else Opcode.CONT
        frame = Frame(opcode, piece, fin=i == len(pieces) - 1)
        wire += frame.serialize(mask=True, extensions=[ext])
    server = codec.Connection(
        "server", deflate=NegotiatedDeflate(client_max_window_bits=12, server_max_window_bits=12)
    )
    events = server.receive_data(wire)
    assert [e.data for e in events] == [body.decode()]
    # and the other way: our compressed messages decode in websockets
    ours = codec.Connection(
        "server", deflate=NegotiatedDeflate(client_max_window_bits=12, server_max_window_bits=12)
    )
    client_ext = ws_pmd.PerMessageDeflate(False, False, 12, 12)
    for message in (body, body, b"tail"):
        data = ours.send_binary(message)
        # an unmasked server frame with a 7/16/64-bit length: strip the header
        n = data[1] & 0x7F
        head = 2 if n < 126 else 4 if n == 126 else 10
        assert data[0] & 0x40
        decoded = client_ext.decode(Frame(Opcode.BINARY, data[head:], fin=True, rsv1=True))
        assert decoded.data == message


@pytest.mark.parametrize("takeover", [True, False])
def test_an_empty_compressed_message_leaves_the_inflater_alone(takeover):
    # failed before: the 00 00 ff ff tail alone left zlib inside a stored block
    # and the next valid message failed with 1007
    import zlib

    from streamcore.ws.deflate import DeflateSession

    session = DeflateSession(remote_bits=15, remote_no_context_takeover=not takeover)
    peer = zlib.compressobj(wbits=-15)

    def message(text: bytes) -> bytes:
        if not takeover:
            nonlocal peer
            peer = zlib.compressobj(wbits=-15)
        return (peer.compress(text) + peer.flush(zlib.Z_SYNC_FLUSH))[:-4]

    assert session.decompress(message(b"hello"), True, None) == b"hello"
    assert session.decompress(b"", True, None) == b""
    assert session.decompress(b"", False, None) + session.decompress(b"", True, None) == b""
    assert session.decompress(message(b"world"), True, None) == b"world"
    whole = message(b"split message")
    assert session.decompress(b"", False, None) + session.decompress(whole, False, None) \
        + session.decompress(b"", True, None) == b"split message"


@pytest.mark.parametrize("nct", [False, True])
def test_connection_takes_an_empty_compressed_message_then_a_normal_one(
    codec: ModuleType, nct: bool
) -> None:
    # failed before on both twins: the message after the empty one failed with 1007
    config = PerMessageDeflate(client_no_context_takeover=nct, server_no_context_takeover=nct)
    client, server = connected(codec, config, config)
    empty = b"\xc1\x80" + b"\x00\x00\x00\x00"  # FIN + RSV1 + text, masked, no payload
    wire = client.send_text("before") + empty + client.send_text("after")
    assert server.receive_data(wire) == [Text("before"), Text(""), Text("after")]


# -- the policy and the agreement are two types (issue 7) ------------------------------------


def test_connection_refuses_the_policy_and_names_the_right_call(codec: ModuleType) -> None:
    # failed before: Connection took the policy, and the peer failed later (next test)
    for role in ("client", "server"):
        with pytest.raises(TypeError) as info:
            codec.Connection(role, deflate=PerMessageDeflate())
        message = str(info.value)
        assert "NegotiatedDeflate" in message and "upgrade.deflate" in message
        with pytest.raises(TypeError):
            codec.Connection(role, deflate="permessage-deflate")
    assert codec.Connection("server", deflate=NegotiatedDeflate()).stats.bytes_in == 0


def test_running_on_the_policy_instead_of_the_agreement_fails_the_second_message(
    codec: ModuleType,
) -> None:
    """What passing the policy to Connection used to do: the client asked the
    server not to take over context and the server agreed, but a server
    Connection built on its own policy (context takeover) refers back into the
    first message, so the client (which drops its inflater, as agreed) fails
    the second message with 1007.  The agreement makes both messages arrive."""
    offer = PerMessageDeflate(server_no_context_takeover=True)
    policy = PerMessageDeflate()
    server_agreed = policy.accept_offer(offer.offer_params())
    assert server_agreed is not None and server_agreed.server_no_context_takeover
    client_agreed = offer.accept_response(server_agreed.response_params())
    message = "the same words again and again " * 20

    # the old mistake: the server runs on the policy's values
    as_policy = codec.Connection("server", deflate=agreement(policy))
    client = codec.Connection("client", deflate=client_agreed)
    assert client.receive_data(as_policy.send_text(message)) == [Text(message)]
    with pytest.raises(ProtocolError) as info:
        client.receive_data(as_policy.send_text(message))
    assert info.value.close_code == 1007

    # the agreement: both messages arrive
    server = codec.Connection("server", deflate=server_agreed)
    client = codec.Connection("client", deflate=client_agreed)
    wire = server.send_text(message) + server.send_text(message)
    assert client.receive_data(wire) == [Text(message), Text(message)]


def test_negotiation_returns_the_agreed_type_and_a_policy_never_equals_it() -> None:
    policy = PerMessageDeflate(client_max_window_bits=10)
    agreed = policy.accept_offer(params("permessage-deflate; client_max_window_bits"))
    assert type(agreed) is NegotiatedDeflate
    assert agreed == NegotiatedDeflate(client_max_window_bits=10)
    assert agreed != policy and policy != NegotiatedDeflate(client_max_window_bits=10)
    client = PerMessageDeflate().accept_response(params("permessage-deflate"))
    assert type(client) is NegotiatedDeflate
    # the roles stay apart: a policy has no session, an agreement makes no offer
    assert not hasattr(PerMessageDeflate(), "session")
    assert not hasattr(PerMessageDeflate(), "response")
    assert not hasattr(NegotiatedDeflate(), "offer")
    assert not hasattr(NegotiatedDeflate(), "accept_offer")
    assert repr(agreed).startswith("NegotiatedDeflate(")


def test_handshakes_refuse_an_agreement_as_their_policy() -> None:
    from streamcore.ws.handshake import ClientHandshake, ServerHandshake

    with pytest.raises(TypeError):
        ServerHandshake(deflate=NegotiatedDeflate())  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ClientHandshake("h", deflate=NegotiatedDeflate())  # type: ignore[arg-type]
