"""What both WebSocket twins share: events, roles, states, stats, limits, messages.

Everything here is cold (built once, or only on an error path), so it lives
in pure Python and both twins import it; they cannot drift on a message
string, a close-code rule or an event's shape.
"""
from __future__ import annotations

import enum
import os
import weakref
from typing import Any, NamedTuple, Union

from .._errors import LimitError, ProtocolError
from .._events import event

__all__ = [
    "Binary",
    "Close",
    "ConnectionStats",
    "Event",
    "Ping",
    "Pong",
    "Role",
    "State",
    "Text",
]

# ---------------------------------------------------------------------------
# Events
#
# The idiom of every streamcore event (see streamcore._events): NamedTuple
# subclasses that the compiled twin builds with one allocation (``tp_alloc``
# + item stores) and the Python twin with ``tuple.__new__``; both twins
# return the very same classes, and equality compares the class too.
# ---------------------------------------------------------------------------


class _Text(NamedTuple):
    data: str
    final: bool = True


@event
class Text(_Text):
    """A text message (RFC 6455 §5.6, opcode 0x1), or with ``assemble=False``
    one piece of it: what one read brought of one frame, ``data`` holding
    every code point the piece completes (the bytes of an incomplete one wait
    for the next piece); ``final`` is False until the message's last piece.
    Only the final piece may be empty."""

    __slots__ = ()


class _Binary(NamedTuple):
    data: bytes
    final: bool = True


@event
class Binary(_Binary):
    """A binary message (RFC 6455 §5.6, opcode 0x2), or with
    ``assemble=False`` one piece of it: what one read brought of one frame
    (``final`` False until the message's last piece; only that one may be
    empty)."""

    __slots__ = ()


class _Ping(NamedTuple):
    data: bytes


@event
class Ping(_Ping):
    """A Ping control frame (RFC 6455 §5.5.2); answer with ``send_pong(data)``."""

    __slots__ = ()


class _Pong(NamedTuple):
    data: bytes


@event
class Pong(_Pong):
    """A Pong control frame (RFC 6455 §5.5.3)."""

    __slots__ = ()


class _Close(NamedTuple):
    code: int | None
    reason: str


@event
class Close(_Close):
    """A Close control frame (RFC 6455 §5.5.1). ``code`` is None when the
    frame had no payload (RFC 6455 §7.1.5: "no status code", 1005)."""

    __slots__ = ()


Event = Union[Text, Binary, Ping, Pong, Close]


class Role(str, enum.Enum):
    """Which end of the connection we are (RFC 6455 §5.1: clients mask, servers do not)."""

    CLIENT = "client"
    SERVER = "server"


class State(enum.Enum):
    """Connection states (RFC 6455 §4, §7).

    ``OPEN`` → ``CLOSING`` when one side's Close frame has been sent or
    received; ``CLOSED`` when both have (the closing handshake is complete),
    or when the transport ended (``receive_eof``).
    """

    OPEN = 1
    CLOSING = 2
    CLOSED = 3


class ConnectionStats(NamedTuple):
    """A read-only snapshot of a Connection's running totals."""

    bytes_in: int
    bytes_out: int
    frames_in: int
    frames_out: int
    messages_in: int
    messages_out: int
    #: permessage-deflate, sent side (0 without the extension)
    bytes_before_compression: int = 0
    bytes_after_compression: int = 0
    #: permessage-deflate, received side
    bytes_before_decompression: int = 0
    bytes_after_decompression: int = 0


# ---------------------------------------------------------------------------
# Opcodes (RFC 6455 §5.2)
# ---------------------------------------------------------------------------

OP_CONT = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA

#: RFC 6455 §5.5: "All control frames MUST have a payload length of 125 bytes or less"
MAX_CONTROL_PAYLOAD = 125

#: the TypeError of a server Connection(views=True) fed a read-only buffer
VIEWS_WRITABLE = ("views=True on a server connection unmasks binary payloads in place: "
                  "receive_data() needs a writable buffer (a bytearray, or a writable "
                  "memoryview such as a slice of one)")

# ---------------------------------------------------------------------------
# Close codes (RFC 6455 §7.4)
# ---------------------------------------------------------------------------

CLOSE_PROTOCOL_ERROR = 1002
CLOSE_INVALID_PAYLOAD = 1007
CLOSE_TOO_BIG = 1009


def exact_text(text: object, what: str = "send_text()") -> str:
    """The text a str holds, as an exact str: one rule for both twins (and
    SSE's).  A str subclass (``enum.StrEnum``, ``markupsafe.Markup``) gives
    its characters, never its own ``.encode()`` or ``__str__``; anything
    else, bytes included, is a TypeError."""
    if type(text) is str:
        return text
    if isinstance(text, str):
        return str.__str__(text)
    raise TypeError(f"{what} takes a str, not {type(text).__name__} (send_binary() takes bytes)")


def close_code_is_valid(code: int) -> bool:
    """May ``code`` appear in a Close frame on the wire (RFC 6455 §7.4.1, §7.4.2)?

    1000-1003 and 1007-1014 are defined (1012-1014 registered with IANA since
    RFC 6455), 1004 is reserved, 1005, 1006 and 1015 MUST NOT be sent, 3000-4999
    are for libraries, applications and private use; the rest is reserved.
    """
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


# ---------------------------------------------------------------------------
# Errors: every message is written here once; ``offset`` is the byte in the
# stream where the problem was found.
# ---------------------------------------------------------------------------


def err_rsv(offset: int, bits: int) -> ProtocolError:
    names = "+".join(name for name, bit in (("RSV1", 4), ("RSV2", 2), ("RSV3", 1)) if bits & bit)
    return ProtocolError(
        f"reserved bit {names} set without a negotiated extension (RFC 6455 §5.2)",
        offset=offset, close_code=CLOSE_PROTOCOL_ERROR)


def err_rsv1_not_first(offset: int) -> ProtocolError:
    return ProtocolError(
        "RSV1 set on a control or continuation frame (RFC 7692 §6)",
        offset=offset, close_code=CLOSE_PROTOCOL_ERROR)


def err_opcode(offset: int, opcode: int) -> ProtocolError:
    return ProtocolError(f"unknown opcode {opcode:#x} (RFC 6455 §5.2)",
                         offset=offset, close_code=CLOSE_PROTOCOL_ERROR)


def err_control_fragmented(offset: int) -> ProtocolError:
    return ProtocolError("fragmented control frame (RFC 6455 §5.5)",
                         offset=offset, close_code=CLOSE_PROTOCOL_ERROR)


def err_continuation_without_start(offset: int) -> ProtocolError:
    return ProtocolError("continuation frame without a message to continue (RFC 6455 §5.4)",
                         offset=offset, close_code=CLOSE_PROTOCOL_ERROR)


def err_message_inside_message(offset: int) -> ProtocolError:
    return ProtocolError(
        "new data message inside a fragmented message (RFC 6455 §5.4)",
        offset=offset, close_code=CLOSE_PROTOCOL_ERROR)


def err_unmasked(offset: int) -> ProtocolError:
    return ProtocolError("unmasked frame sent to a server (RFC 6455 §5.1)",
                         offset=offset, close_code=CLOSE_PROTOCOL_ERROR)


def err_masked(offset: int) -> ProtocolError:
    return ProtocolError("masked frame sent to a client (RFC 6455 §5.1)",
                         offset=offset, close_code=CLOSE_PROTOCOL_ERROR)


def err_control_too_long(offset: int, length: int) -> ProtocolError:
    return ProtocolError(
        f"control frame payload of {length} bytes, more than 125 (RFC 6455 §5.5)",
        offset=offset, close_code=CLOSE_PROTOCOL_ERROR)


def err_non_minimal(offset: int, length: int) -> ProtocolError:
    return ProtocolError(
        f"payload length {length} not in its minimal encoding (RFC 6455 §5.2)",
        offset=offset, close_code=CLOSE_PROTOCOL_ERROR)


def err_top_bit(offset: int) -> ProtocolError:
    return ProtocolError(
        "64-bit payload length with the most significant bit set (RFC 6455 §5.2)",
        offset=offset, close_code=CLOSE_PROTOCOL_ERROR)


def err_frame_too_big(offset: int, length: int, limit: int) -> LimitError:
    return LimitError(
        f"frame payload of {length} bytes exceeds max_frame_size={limit} "
        "(raise max_frame_size, or pass None for no limit)",
        offset=offset, close_code=CLOSE_TOO_BIG)


def err_message_too_big(offset: int, size: int, limit: int) -> LimitError:
    return LimitError(
        f"message of at least {size} bytes exceeds max_message_size={limit} "
        "(raise max_message_size, or pass None for no limit)",
        offset=offset, close_code=CLOSE_TOO_BIG)


def err_utf8(offset: int, where: str) -> ProtocolError:
    return ProtocolError(f"invalid UTF-8 in {where} (RFC 6455 §8.1)",
                         offset=offset, close_code=CLOSE_INVALID_PAYLOAD)


def err_utf8_incomplete(offset: int, where: str) -> ProtocolError:
    return ProtocolError(f"{where} ends inside a UTF-8 sequence (RFC 6455 §8.1)",
                         offset=offset, close_code=CLOSE_INVALID_PAYLOAD)


def err_close_one_byte(offset: int) -> ProtocolError:
    return ProtocolError("close frame with a 1-byte payload (RFC 6455 §5.5.1)",
                         offset=offset, close_code=CLOSE_PROTOCOL_ERROR)


def err_close_code(offset: int, code: int) -> ProtocolError:
    return ProtocolError(f"invalid close code {code} (RFC 6455 §7.4)",
                         offset=offset, close_code=CLOSE_PROTOCOL_ERROR)


def inflate_limit(max_msg: int, msg_size: int, max_frame: int, frame_out: int) -> int | None:
    """How many more bytes a compressed frame may inflate to: what is left of
    max_message_size (``msg_size`` inflated so far), and of max_frame_size
    (``frame_out`` of them from this frame; limits < 0: none), so both limits
    bound the inflated sizes as they bound the plain ones."""
    limits = [lim for lim in (max_msg - msg_size if max_msg >= 0 else -1,
                              max_frame - frame_out if max_frame >= 0 else -1) if lim >= 0]
    return min(limits) if limits else None


def err_inflated_too_big(offset: int, max_msg: int, msg_size: int, max_frame: int,
                         frame_out: int) -> LimitError:
    """The LimitError for a frame whose inflated payload passed a limit (the
    one ``inflate_limit`` found tighter)."""
    if max_frame >= 0 and (max_msg < 0 or max_frame - frame_out < max_msg - msg_size):
        return LimitError(
            f"decompressed frame payload exceeds max_frame_size={max_frame} "
            "(raise max_frame_size, or pass None for no limit)",
            offset=offset, close_code=CLOSE_TOO_BIG)
    return LimitError(
        f"decompressed message exceeds max_message_size={max_msg} "
        "(raise max_message_size, or pass None for no limit)",
        offset=offset, close_code=CLOSE_TOO_BIG)


def err_deflate(exc: Exception, offset: int) -> ProtocolError:
    """Re-raise a permessage-deflate failure with the frame's payload offset."""
    if isinstance(exc, ProtocolError):
        if exc.offset is not None:
            return exc
        return type(exc)(str(exc), offset=offset, close_code=exc.close_code)
    # zlib.error or anything else from a broken deflate stream (RFC 7692 §8.2.1)
    return ProtocolError(f"invalid compressed data: {exc}", offset=offset,
                         close_code=CLOSE_INVALID_PAYLOAD)


def deflate_wire_limit(limit: int) -> int:
    """Wire bytes allowed for a compressed message whose inflated size is capped
    at ``limit``: deflate may expand incompressible data by a few bytes per
    16 KiB stored block, so a message that fits once inflated must not be
    refused for its compressed size; this still bounds the buffer."""
    return -1 if limit < 0 else limit + (limit >> 6) + 1024


# ---------------------------------------------------------------------------
# UTF-8 (RFC 3629 §4): the reference DFA.  Both twins use it for the slow
# path (finding the exact first invalid byte); the compiled twin mirrors it in C.
#
# States: 0 accept; 1/2/3 need that many continuation bytes in 80..BF;
# 4 after E0 (next A0..BF); 5 after ED (next 80..9F, no surrogates);
# 6 after F0 (next 90..BF, no overlongs); 7 after F4 (next 80..8F, <= U+10FFFF).
# ---------------------------------------------------------------------------

_LO = (0, 0x80, 0x80, 0x80, 0xA0, 0x80, 0x90, 0x80)
_HI = (0, 0xBF, 0xBF, 0xBF, 0xBF, 0x9F, 0xBF, 0x8F)
_AFTER = (0, 0, 1, 2, 1, 1, 2, 2)


def utf8_scan(data: bytes | bytearray, state: int) -> tuple[int, int]:
    """Return (index of the first invalid byte or -1, new state)."""
    for i, b in enumerate(data):
        if state == 0:
            if b < 0x80:
                continue
            if 0xC2 <= b <= 0xDF:
                state = 1
            elif b == 0xE0:
                state = 4
            elif b == 0xED:
                state = 5
            elif 0xE1 <= b <= 0xEF:
                state = 2
            elif b == 0xF0:
                state = 6
            elif b == 0xF4:
                state = 7
            elif 0xF1 <= b <= 0xF3:
                state = 3
            else:  # 80..C1 (continuation or overlong lead), F5..FF
                return i, state
        elif _LO[state] <= b <= _HI[state]:
            state = _AFTER[state]
        else:
            return i, state
    return -1, state


# ---------------------------------------------------------------------------
# Mask keys after os.fork(): each client Encoder draws keys from os.urandom in
# batches; a child process would go on slicing the parent's batch and send
# the very same keys.  Every client Encoder registers here, and the child
# drops every pool it inherited, so its next key comes from a fresh draw.
# ---------------------------------------------------------------------------

_CLIENT_ENCODERS: weakref.WeakSet[Any] = weakref.WeakSet()


def register_mask_pool(encoder: Any) -> None:
    """Have ``encoder.forget_keys()`` called in the child after os.fork()."""
    _CLIENT_ENCODERS.add(encoder)


def _forget_keys_after_fork() -> None:
    for encoder in list(_CLIENT_ENCODERS):
        encoder.forget_keys()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_keys_after_fork)
