"""What both chunked twins share: the grammar tables, messages and slow paths.

The chunk-size line and the trailer section are each checked by a small
deterministic automaton (a table of ``state * 256 + byte -> next state``).
Both twins walk the very same tables, built here once from the RFC 9112 /
RFC 9110 grammar, so they cannot disagree about which byte is the first bad
one.  A next state of ``ERROR`` or more is an error code; :func:`message`
turns it into the text of the :class:`~streamcore.ProtocolError`.

RFC 9112 §7.1::

    chunked-body   = *chunk last-chunk trailer-section CRLF
    chunk          = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
    chunk-size     = 1*HEXDIG
    last-chunk     = 1*("0") [ chunk-ext ] CRLF
    chunk-ext      = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
    chunk-ext-name = token
    chunk-ext-val  = token / quoted-string
    trailer-section = *( field-line CRLF )

RFC 9110 §5.6.2, §5.6.4, §5.5::

    token         = 1*tchar
    quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE
    qdtext        = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text
    quoted-pair   = "\\" ( HTAB / SP / VCHAR / obs-text )
    field-line    = field-name ":" OWS field-value OWS
    field-value   = *field-content    ; VCHAR / obs-text, inner SP / HTAB

Deliberate strictness (each a smuggling vector somewhere): CRLF only, never a
bare CR or LF; no whitespace before the size or between the size and CRLF
(BWS is only allowed around ``;`` and ``=``); no obs-fold; no whitespace
before the colon; no control characters but HTAB in values.
"""
from __future__ import annotations

import re
from typing import Any, NamedTuple, Union

from .._contract import field_bytes, field_pairs, short_repr
from .._errors import ProtocolError
from .._events import event

# -- character classes ------------------------------------------------------
TCHAR = frozenset(b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
HEXDIG = frozenset(b"0123456789ABCDEFabcdef")
WS = frozenset(b" \t")
QDTEXT = frozenset([0x09, 0x20, 0x21, *range(0x23, 0x5C), *range(0x5D, 0x7F), *range(0x80, 0x100)])
QPAIR = frozenset([0x09, 0x20, *range(0x21, 0x7F), *range(0x80, 0x100)])
FIELD_VALUE = frozenset([0x09, 0x20, *range(0x21, 0x7F), *range(0x80, 0x100)])
CR, LF = 0x0D, 0x0A

#: value of each hex digit byte, -1 for other bytes
HEXVAL = bytes(
    int(chr(b), 16) if b in HEXDIG else 0xFF for b in range(256)
)

MAX_SIZE = 2**63 - 1

# -- chunk-size line automaton ----------------------------------------------
L_START = 0  # expecting the first hex digit
L_SIZE = 1  # in the hex digits
L_WS = 2  # BWS after the size or a value: only ';' may follow
L_SEMI = 3  # after ';': BWS then a name
L_NAME = 4  # in an extension name
L_NAME_WS = 5  # BWS after a name: '=' or ';'
L_EQ = 6  # after '=': BWS then a token or a quoted-string
L_TOKEN = 7  # in a token value
L_QUOTED = 8  # inside a quoted-string
L_ESC = 9  # after a backslash inside a quoted-string
L_QEND = 10  # after the closing quote
L_CR = 11  # after the CR: only LF may follow
L_DONE = 12  # the line is complete (LF consumed)

ERROR = 32  # next states from here up are error codes

_LINE_ERRORS = (
    "bare LF in chunk line (CRLF required)",  # 32
    "CR not followed by LF in chunk line",  # 33
    "chunk-size must start with a hex digit",  # 34
    "invalid character in chunk-size",  # 35
    "whitespace in chunk line not followed by ';'",  # 36
    "chunk extension name must be a token",  # 37
    "expected '=', ';' or CRLF after chunk extension name",  # 38
    "chunk extension value must be a token or quoted-string",  # 39
    "expected ';' or CRLF after chunk extension value",  # 40
    "invalid character in quoted-string",  # 41
    "invalid escaped character in quoted-string",  # 42
)
E_LF, E_CR, E_SIZE_START, E_SIZE, E_WS, E_NAME, E_AFTER_NAME, E_VALUE, E_AFTER_VALUE, \
    E_QUOTED, E_ESC = range(ERROR, ERROR + len(_LINE_ERRORS))


def _line_table() -> bytes:
    table = bytearray(256 * 16)
    defaults = {
        L_START: E_SIZE_START, L_SIZE: E_SIZE, L_WS: E_WS, L_SEMI: E_NAME, L_NAME: E_AFTER_NAME,
        L_NAME_WS: E_AFTER_NAME, L_EQ: E_VALUE, L_TOKEN: E_AFTER_VALUE, L_QUOTED: E_QUOTED,
        L_ESC: E_ESC, L_QEND: E_AFTER_VALUE, L_CR: E_CR, L_DONE: E_SIZE_START,
    }
    for state, default in defaults.items():
        row = state * 256
        for b in range(256):
            nxt = default
            if state == L_CR:
                nxt = L_DONE if b == LF else E_CR
            elif b == LF:
                nxt = E_LF
            elif state in (L_START, L_DONE):
                nxt = L_SIZE if b in HEXDIG else E_SIZE_START
            elif state == L_SIZE:
                nxt = {CR: L_CR, ord(";"): L_SEMI}.get(b, L_SIZE if b in HEXDIG else
                                                      (L_WS if b in WS else E_SIZE))
            elif state == L_WS:
                nxt = L_WS if b in WS else (L_SEMI if b == ord(";") else E_WS)
            elif state == L_SEMI:
                nxt = L_SEMI if b in WS else (L_NAME if b in TCHAR else E_NAME)
            elif state in (L_NAME, L_NAME_WS):
                if b in WS:
                    nxt = L_NAME_WS
                elif b == ord("="):
                    nxt = L_EQ
                elif b == ord(";"):
                    nxt = L_SEMI
                elif state == L_NAME and b == CR:
                    nxt = L_CR
                elif state == L_NAME and b in TCHAR:
                    nxt = L_NAME
            elif state == L_EQ:
                if b in WS:
                    nxt = L_EQ
                elif b == ord('"'):
                    nxt = L_QUOTED
                elif b in TCHAR:
                    nxt = L_TOKEN
            elif state in (L_TOKEN, L_QEND):
                if b in WS:
                    nxt = L_WS
                elif b == ord(";"):
                    nxt = L_SEMI
                elif b == CR:
                    nxt = L_CR
                elif state == L_TOKEN and b in TCHAR:
                    nxt = L_TOKEN
            elif state == L_QUOTED:
                if b == ord('"'):
                    nxt = L_QEND
                elif b == ord("\\"):
                    nxt = L_ESC
                elif b in QDTEXT:
                    nxt = L_QUOTED
            elif state == L_ESC:
                nxt = L_QUOTED if b in QPAIR else E_ESC
            table[row + b] = nxt
    return bytes(table)


LINE_TABLE = _line_table()

# -- trailer section automaton ------------------------------------------------
T_START = 0  # at the start of a line: a name, or CR of the final empty line
T_NAME = 1  # in a field name
T_VALUE = 2  # after the colon
T_CR = 3  # CR after a field line
T_END_CR = 4  # CR of the final empty line
T_LINE = 5  # a field line is complete (LF consumed); behaves as T_START
T_DONE = 6  # the trailer section is complete

_TRAILER_ERRORS = (
    "bare LF in trailer section (CRLF required)",  # 32
    "CR not followed by LF in trailer section",  # 33
    "obsolete line folding in trailer section",  # 34
    "trailer field line without a name",  # 35
    "invalid character in trailer field name",  # 36
    "whitespace between trailer field name and colon",  # 37
    "trailer field line without a colon",  # 38
    "invalid character in trailer field value",  # 39
)
TE_LF, TE_CR, TE_FOLD, TE_NONAME, TE_NAME, TE_WS_COLON, TE_NOCOLON, TE_VALUE = range(
    ERROR, ERROR + len(_TRAILER_ERRORS)
)


def _trailer_table() -> bytes:
    table = bytearray(256 * 8)
    for state in (T_START, T_NAME, T_VALUE, T_CR, T_END_CR, T_LINE, T_DONE):
        row = state * 256
        for b in range(256):
            if state in (T_CR, T_END_CR):
                nxt = (T_LINE if state == T_CR else T_DONE) if b == LF else TE_CR
            elif b == LF:
                nxt = TE_LF
            elif state in (T_START, T_LINE, T_DONE):
                if b == CR:
                    nxt = T_END_CR
                elif b in WS:
                    nxt = TE_FOLD
                elif b == ord(":"):
                    nxt = TE_NONAME
                else:
                    nxt = T_NAME if b in TCHAR else TE_NAME
            elif state == T_NAME:
                if b in TCHAR:
                    nxt = T_NAME
                elif b == ord(":"):
                    nxt = T_VALUE
                elif b in WS:
                    nxt = TE_WS_COLON
                elif b == CR:
                    nxt = TE_NOCOLON
                else:
                    nxt = TE_NAME
            else:  # T_VALUE
                nxt = T_CR if b == CR else (T_VALUE if b in FIELD_VALUE else TE_VALUE)
            table[row + b] = nxt
    return bytes(table)


TRAILER_TABLE = _trailer_table()


def message(code: int, byte: int, trailer: bool = False) -> str:
    """The text of the error for automaton code ``code`` found at ``byte``."""
    text = (_TRAILER_ERRORS if trailer else _LINE_ERRORS)[code - ERROR]
    return f"{text}: found {bytes([byte])!r}"


# -- slow paths: run once per chunk with extensions or per trailer line -------
_TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_QUOTED = rb'"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"'
_EXT = rb"[ \t]*;[ \t]*(" + _TOKEN + rb")(?:[ \t]*=[ \t]*(" + _TOKEN + rb"|" + _QUOTED + rb"))?"
#: a whole chunk-size line (without CRLF); must accept exactly what LINE_TABLE accepts
SIZE_LINE = re.compile(rb"([0-9A-Fa-f]+)((?:" + _EXT + rb")*)")
_EXT_RE = re.compile(_EXT)
_UNESCAPE = re.compile(rb"\\(.)", re.DOTALL)

Extensions = tuple[tuple[bytes, "bytes | None"], ...]


def parse_extensions(ext: bytes) -> Extensions:
    """Split the (already validated) extension part of a chunk-size line.

    Quoted values are unquoted and their escapes honoured; a name without
    ``=`` has the value ``None``.  Names keep their case.
    """
    out = []
    for m in _EXT_RE.finditer(ext):
        value = m.group(2)
        if value is not None and value[:1] == b'"':
            value = _UNESCAPE.sub(rb"\1", value[1:-1])
        out.append((m.group(1), value))
    return tuple(out)


def raw_extensions_of_line(line: bytes) -> bytes:
    """The extension part of a whole, validated chunk-size line, unparsed
    (``b""`` when there is none): what a decoder keeps until it hands the
    chunk's first :class:`Data` out, so a line full of ``;a`` costs what it
    weighs, not a tuple per extension."""
    semi = line.find(b";")
    return line[semi:] if semi >= 0 else b""


#: framing fields never come after the body (RFC 9110 §6.5.1; RFC 9112 §6.1)
FORBIDDEN_TRAILERS = frozenset([b"content-length", b"transfer-encoding"])


def check_trailer_line(line: bytes, offset: int) -> None:
    """Refuse a validated field line whose field must not appear in a trailer
    section (``offset``: the stream offset of the line), as soon as the line
    ends."""
    name = line[: line.find(b":")].lower()
    if name in FORBIDDEN_TRAILERS:
        raise ProtocolError(f"{name.decode()} is not allowed in a trailer section", offset=offset)


def trailer_fields(section: bytes) -> list[tuple[bytes, bytes]]:
    """(lowercased name, value without OWS) of each line of a validated and
    checked trailer section (every line ends with CRLF).  Decoders keep the
    section raw until it ends: a pair of bytes objects per field would cost
    ~9x what a peer sent for a short field."""
    fields = []
    for line in section.split(b"\r\n")[:-1]:
        name, _, value = line.partition(b":")
        fields.append((name.lower(), value.strip(b" \t")))
    return fields


# -- encoder helpers ----------------------------------------------------------
_TOKEN_RE = re.compile(_TOKEN)


def _as_bytes(value: object, what: str) -> bytes:
    return field_bytes(value, what, "latin-1")


def format_extensions(extensions: object) -> bytes:
    """Serialise ``((name, value or None), ...)`` as ``;name=value`` (RFC 9112 §7.1.1).

    A value that is not a token becomes a quoted-string with ``"`` and ``\\``
    escaped; a value that cannot be carried even quoted raises ValueError.
    """
    parts = []
    for item in field_pairs(extensions, "chunk extensions"):
        name, value = item
        bname = _as_bytes(name, "chunk extension name")
        if not _TOKEN_RE.fullmatch(bname):
            raise ValueError(f"chunk extension name {short_repr(bname)} is not a token")
        if value is None:
            parts.append(b";" + bname)
            continue
        bvalue = _as_bytes(value, "chunk extension value")
        if _TOKEN_RE.fullmatch(bvalue):
            parts.append(b";" + bname + b"=" + bvalue)
            continue
        if any(b not in QPAIR for b in bvalue):
            raise ValueError(f"chunk extension value {short_repr(bvalue)} has a control character")
        quoted = bvalue.replace(b"\\", b"\\\\").replace(b'"', b'\\"')
        parts.append(b";" + bname + b'="' + quoted + b'"')
    return b"".join(parts)


def format_trailers(trailers: object) -> bytes:
    """Serialise trailer fields, each checked against RFC 9110 field syntax."""
    lines = []
    for item in field_pairs(trailers, "trailers"):
        name, value = item
        bname = _as_bytes(name, "trailer field name")
        bvalue = _as_bytes(value, "trailer field value")
        if not _TOKEN_RE.fullmatch(bname):
            raise ValueError(f"trailer field name {short_repr(bname)} is not a token")
        if bname.lower() in FORBIDDEN_TRAILERS:
            raise ValueError(f"{bname.decode()} is not allowed in a trailer section")
        if any(b not in FIELD_VALUE for b in bvalue):
            raise ValueError(f"trailer field value {short_repr(bvalue)} has a control character")
        if bvalue[:1] in (b" ", b"\t") or bvalue[-1:] in (b" ", b"\t"):
            raise ValueError(f"trailer field value {short_repr(bvalue)} has surrounding whitespace")
        lines.append(bname + b": " + bvalue + b"\r\n")
    return b"".join(lines)


# -- events ---------------------------------------------------------------------
#
# The idiom of every streamcore event (see streamcore._events): NamedTuple
# subclasses defined once here and built by both twins (the Python one with
# ``tuple.__new__``, the compiled one from a freelist of its own, see
# ``_c.pyx``), so ``isinstance`` holds across twins and equality compares the
# class too.


class _Data(NamedTuple):
    data: bytes
    chunk_start: bool
    chunk_end: bool
    extensions: Extensions = ()


@event
class Data(_Data):
    """A piece of chunk data, emitted as soon as it arrives.

    ``chunk_start`` is true on the first piece of a chunk, ``chunk_end`` on
    its last piece; ``extensions`` (on the first piece only) are the chunk's
    ``(name, value or None)`` pairs, quoted values unquoted.
    """

    __slots__ = ()


class _Trailers(NamedTuple):
    headers: list[tuple[bytes, bytes]]


@event
class Trailers(_Trailers):
    """The trailer fields, names lowercased (only when there are some).

    ``headers`` is a list, so a Trailers, unlike the other events, is not
    hashable.
    """

    __slots__ = ()


class _EndOfMessage(NamedTuple):
    extensions: Extensions = ()


@event
class EndOfMessage(_EndOfMessage):
    """The body is complete.  ``extensions`` are those of the last-chunk."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"EndOfMessage(extensions={self.extensions!r})" if self.extensions else "EndOfMessage()"


Event = Union[Data, Trailers, EndOfMessage]


class ChunkedStats(NamedTuple):
    """A snapshot of a chunked decoder's or encoder's running totals.

    ``bytes_in``: bytes fed (decoder) or payload bytes given (encoder);
    ``bytes_out``: body bytes decoded (decoder) or wire bytes produced
    (encoder); ``chunks``: data chunks seen or written (the last-chunk is not
    counted); ``events``: events produced (decoder) or calls that produced
    output (encoder).
    """

    bytes_in: int = 0
    bytes_out: int = 0
    chunks: int = 0
    events: int = 0


def traced_extensions(extensions: object) -> tuple[Any, ...]:
    """The extensions an encoder was given, as the tuple of pairs its trace reports."""
    return tuple(field_pairs(extensions, "chunk extensions")) if extensions else ()


def traced_trailers(trailers: object) -> list[tuple[bytes, bytes]]:
    """The trailer fields an encoder was given, as the bytes pairs its trace reports."""
    return [(_as_bytes(k, "trailer field name"), _as_bytes(v, "trailer field value"))
            for k, v in field_pairs(trailers, "trailers")]
