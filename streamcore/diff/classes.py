"""Finding classes: why a peer's outcome differs from the reference.

Chunked and WebSocket inputs are walked by a small strict reader, written
here from the grammar (RFC 9112 §7.1, RFC 9110 §5; RFC 6455 §5), that names
the *first* violation in the input; a peer that accepts what the reference
rejected is in that class.  SSE never rejects, so a difference is
explained by repair: the class is the first quirk feature of the input
whose repair makes the two outcomes agree (failing that, the one that
completes the agreement when the repairs are applied one on another).

Names: the smuggling literature's for chunked (TERM.* line terminators,
INT.* the chunk-size integer, TRAILER.* trailer fields), our own for SSE.*
and WS.*, built the same way: ``<PROTO>.<part of the grammar>.<what the
peer did>`` (``SSE.TERM.CR`` as ``TERM.CR``, ``SSE.ID.NUL``,
``SSE.DISPATCH.EOF``, ``WS.LENGTH.NONMINIMAL``, ``WS.CLOSE.CODE``).  ``*.SPLIT``: a peer whose outcome depends on how the input was
split into reads.  ``*.VALID``: a peer rejects what the grammar allows.
``*.BODY``/``*.END``/``*.MESSAGES``: both accept, but read different
bodies, ends of message or messages.  ``TWIN.DRIFT``: our two twins differ.
"""
from __future__ import annotations

import codecs
import re
import struct
from collections.abc import Callable
from typing import Any

from .outcome import Outcome, differs

#: one line of description per class, for the summary and the report
DESCRIPTIONS = {
    "INT.PREFIX": "chunk-size with a 0x/0X prefix accepted",
    "INT.SIGN": "chunk-size with a + or - sign accepted",
    "INT.UNDERSCORE": "chunk-size with an underscore accepted",
    "INT.EMPTY.ZERO": "an empty chunk-size accepted and read as 0 (the last chunk)",
    "INT.EMPTY.SKIP": "a line with an empty chunk-size skipped (the next line read as the size line)",
    "INT.EMPTY": "an empty chunk-size accepted (read neither as 0 nor skipped)",
    "INT.OVERFLOW": "chunk-size past 2**63-1 accepted (truncated or wrapped)",
    "INT.SPACE": "whitespace before or after chunk-size accepted",
    "INT.JUNK": "non-hex bytes in chunk-size accepted",
    "TERM.EXT.END": "a bare LF or CR inside a chunk extension accepted as the end of the line",
    "TERM.EXT.SWALLOW": "a bare LF or CR inside a chunk extension accepted as part of it (the line ends at CRLF)",
    "TERM.EXT": "a bare LF or CR inside a chunk extension accepted (read neither as a line end nor as part of it)",
    "TERM.LF": "bare LF accepted as a line terminator",
    "TERM.CR.END": "a bare CR accepted as the end of the line",
    "TERM.CR.SWALLOW": "a bare CR accepted as part of the line (the line ends at CRLF; what follows the CR is dropped)",
    "TERM.CR": "a bare CR accepted (read neither as a line end nor as part of the line)",
    "TERM.SPILL": "bytes after chunk data that are not CRLF accepted (data longer than size)",
    "EXT.SYNTAX": "malformed chunk extension accepted",
    "TRAILER.FRAMING": "Content-Length or Transfer-Encoding in trailers accepted",
    "TRAILER.FOLD": "obs-fold in a trailer field accepted",
    "TRAILER.SYNTAX": "malformed trailer field accepted",
    "CHUNKED.INCOMPLETE": "a body cut short accepted as complete",
    "CHUNKED.VALID": "a valid chunked body rejected",
    "CHUNKED.BODY": "both accept, different body",
    "CHUNKED.TRAILERS": "both accept, different trailer fields",
    "CHUNKED.END": "both accept, the message ends at a different byte (pipelining desync)",
    "CHUNKED.SPLIT": "outcome depends on how the bytes are split into reads",
    "SSE.BOM.KEPT": "a leading UTF-8 BOM kept (the first field name is not recognised)",
    "SSE.TERM.CR": "a lone CR not taken as a line end",
    "SSE.UTF8.UNREPLACED": "invalid UTF-8 not decoded as U+FFFD",
    "SSE.RETRY.NONDIGIT": "a retry value that is not all ASCII digits used",
    "SSE.ID.NUL": "an id value holding NUL used as the last event ID",
    "SSE.DISPATCH.NODATA": "a block without a data field dispatches an event",
    "SSE.DISPATCH.EOF": "an event not ended by a blank line dispatched (or its id kept) at the end",
    "SSE.FIELD": "a field name or value parsed differently (no other feature explains it)",
    "SSE.SPLIT": "outcome depends on how the bytes are split into reads",
    "WS.RSV": "RSV bits without an extension accepted",
    "WS.OPCODE": "reserved opcode accepted",
    "WS.LENGTH.NONMINIMAL": "non-minimal payload length encoding accepted",
    "WS.LENGTH.TOPBIT": "64-bit length with the most significant bit set accepted",
    "WS.UNMASKED": "unmasked client frame accepted by a server",
    "WS.CONTROL.FRAGMENTED": "fragmented control frame accepted",
    "WS.CONTROL.LONG": "control frame over 125 bytes accepted",
    "WS.CONT.ORPHAN": "continuation frame without a message accepted",
    "WS.CONT.MISSING": "new data frame inside a fragmented message accepted",
    "WS.UTF8": "invalid UTF-8 in a text message accepted",
    "WS.UTF8.LATE": "invalid UTF-8 found later than the byte that makes it invalid (not fail-fast)",
    "WS.CLOSE.SHORT": "1-byte close payload accepted",
    "WS.CLOSE.CODE": "invalid close code accepted",
    "WS.CLOSE.UTF8": "invalid UTF-8 in a close reason accepted",
    "WS.INCOMPLETE": "a frame cut short accepted",
    "WS.CODE": "both reject, with different close codes",
    "WS.VALID": "valid frames rejected",
    "WS.MESSAGES": "both accept, different messages",
    "WS.SPLIT": "outcome depends on how the bytes are split into reads",
    "TWIN.DRIFT": "streamcore's two twins differ",
    "ADAPTER.CRASH": "the peer raised an exception no adapter expected",
}


# ------------------------------------------------------------------ chunked

_HEX = frozenset(b"0123456789abcdefABCDEF")
_TCHAR = frozenset(b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_QDTEXT = frozenset([9, 32, 33, *range(0x23, 0x5C), *range(0x5D, 0x7F), *range(0x80, 0x100)])
_VCHAR_OBS = frozenset([9, 32, *range(0x21, 0x7F), *range(0x80, 0x100)])


def _line(data: bytes, pos: int) -> tuple[bytes, int, str | None] | None:
    """The line at ``pos`` up to CRLF: (content, next position, bad
    terminator class).  None when no terminator arrived yet."""
    i = pos
    while i < len(data):
        b = data[i]
        if b == 13:
            if i + 1 < len(data) and data[i + 1] == 10:
                return data[pos:i], i + 2, None
            if i + 1 == len(data):
                return None
            return data[pos:i], i + 1, "TERM.CR"
        if b == 10:
            return data[pos:i], i + 1, "TERM.LF"
        i += 1
    return None


def _size_class(text: bytes) -> str | None:
    if not text:
        return "INT.EMPTY"
    if text[:1] in (b" ", b"\t") or text[-1:] in (b" ", b"\t"):
        return "INT.SPACE"
    if text[:2] in (b"0x", b"0X"):
        return "INT.PREFIX"
    if text[:1] in (b"+", b"-"):
        return "INT.SIGN"
    if b"_" in text:
        return "INT.UNDERSCORE"
    if not all(b in _HEX for b in text):
        return "INT.JUNK"
    if int(text, 16) > (1 << 63) - 1:
        return "INT.OVERFLOW"
    return None


def _ext_ok(ext: bytes) -> bool:
    """chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] )"""
    i, n = 0, len(ext)

    def ws(i: int) -> int:
        while i < n and ext[i] in (32, 9):
            i += 1
        return i

    def token(i: int) -> int:
        j = i
        while j < n and ext[j] in _TCHAR:
            j += 1
        return j

    while True:
        i = ws(i)
        if i == n:
            return True
        if ext[i] != 59:  # ";"
            return False
        i = ws(i + 1)
        j = token(i)
        if j == i:
            return False
        i = ws(j)
        if i < n and ext[i] == 61:  # "="
            i = ws(i + 1)
            if i < n and ext[i] == 34:  # quoted-string
                i += 1
                while True:
                    if i >= n:
                        return False
                    if ext[i] == 34:
                        i += 1
                        break
                    if ext[i] == 92:
                        if i + 1 >= n or ext[i + 1] not in _VCHAR_OBS:
                            return False
                        i += 2
                    elif ext[i] in _QDTEXT:
                        i += 1
                    else:
                        return False
            else:
                j = token(i)
                if j == i:
                    return False
                i = j


def explain_chunked(data: bytes) -> str | None:
    """The class of the first RFC 9112 violation in a chunked body, or
    ``CHUNKED.INCOMPLETE`` when it ends early, or None when it is valid."""
    return _explain_chunked(data)[0]


def _explain_chunked(data: bytes) -> tuple[str | None, int, int]:
    """:func:`explain_chunked`, with where the line of the violation starts
    and where its (bad) terminator ends (-1, -1 when not at a line)."""
    pos = 0
    while True:
        line = _line(data, pos)
        if line is None:
            # a size line that never ends: its content may already be wrong
            text = data[pos:].rstrip(b"\r")
            semi = text.find(b";")
            size = text if semi < 0 else text[:semi]
            if b"\n" not in text:
                cls = _size_class(size.rstrip(b" \t")) if size and semi < 0 else None
                return (cls or "CHUNKED.INCOMPLETE"), -1, -1
            return "CHUNKED.INCOMPLETE", -1, -1
        content, nxt, bad = line
        semi = content.find(b";")
        size_text = content if semi < 0 else content[:semi]
        ext = b"" if semi < 0 else content[semi:]
        if semi >= 0:
            stripped = size_text.rstrip(b" \t")  # BWS before ";"
            cls = _size_class(stripped)
        else:
            cls = _size_class(size_text)
        if bad and ext:
            return "TERM.EXT", pos, nxt
        if cls:
            return cls, pos, nxt
        if ext and not _ext_ok(ext):
            return ("TERM.EXT" if b"\n" in ext or b"\r" in ext else "EXT.SYNTAX"), pos, nxt
        if bad:
            return bad, pos, nxt
        length = int(size_text.rstrip(b" \t"), 16)
        pos = nxt
        if length == 0:
            break
        if len(data) < pos + length:
            return "CHUNKED.INCOMPLETE", -1, -1
        pos += length
        after = data[pos:pos + 2]
        if after == b"\r\n":
            pos += 2
            continue
        if len(after) < 2 and b"\r\n".startswith(after):
            return "CHUNKED.INCOMPLETE", -1, -1
        if after[:1] == b"\n":
            return "TERM.LF", -1, -1
        return "TERM.SPILL", -1, -1
    # trailer section: *( field-line CRLF ) CRLF
    while True:
        line = _line(data, pos)
        if line is None:
            return "CHUNKED.INCOMPLETE", -1, -1
        content, nxt, bad = line
        if bad:
            return bad, pos, nxt
        pos = nxt
        if not content:
            return None, -1, -1
        if content[:1] in (b" ", b"\t"):
            return "TRAILER.FOLD", -1, -1
        # a field value followed by an obs-fold continuation line
        follow = _line(data, pos)
        if follow is not None and follow[0][:1] in (b" ", b"\t"):
            return "TRAILER.FOLD", -1, -1
        name, colon, value = content.partition(b":")
        if not colon or not name or not all(b in _TCHAR for b in name):
            return "TRAILER.SYNTAX", -1, -1
        if any(b in (0, 10, 13) or (b < 32 and b != 9) or b == 127 for b in value):
            return "TRAILER.SYNTAX", -1, -1
        if name.lower() in (b"content-length", b"transfer-encoding"):
            return "TRAILER.FRAMING", -1, -1


# ---------------------------------------------------------------- WebSocket

def _close_code_ok(code: int) -> bool:
    return code in (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014) \
        or 3000 <= code <= 4999


#: the second byte a lead byte allows (RFC 3629 §4); other leads take 80-BF
_SECOND = {0xE0: (0xA0, 0xBF), 0xED: (0x80, 0x9F), 0xF0: (0x90, 0xBF), 0xF4: (0x80, 0x8F)}


def _utf8_step(dec: Any, part: bytes, final: bool) -> bool:
    """Feed ``part`` to an incremental UTF-8 decoder; False as soon as the
    bytes can no longer be valid UTF-8.  Python's decoder holds back some
    invalid sequences until their last byte (``ED A0``: a surrogate), so the
    bytes it keeps pending are checked here too: fail-fast is what RFC 6455
    §8.1 asks of an endpoint."""
    try:
        dec.decode(part, final)
    except UnicodeDecodeError:
        return False
    pending = dec.getstate()[0]
    if len(pending) >= 2:
        lo, hi = _SECOND.get(pending[0], (0x80, 0xBF))
        return bool(lo <= pending[1] <= hi)
    return True


def explain_ws(data: bytes) -> str | None:
    """The class of the first RFC 6455 violation in client-to-server frames
    (no extension negotiated), ``WS.INCOMPLETE`` when a frame is cut short,
    or None; frames after a Close are not read (they are ignored)."""
    pos, msg_op = 0, 0
    utf8: Any = None
    while pos < len(data):
        if len(data) < pos + 2:
            return "WS.INCOMPLETE"
        b0, b1 = data[pos], data[pos + 1]
        fin, rsv, op = b0 & 0x80, b0 & 0x70, b0 & 0x0F
        if rsv:
            return "WS.RSV"
        if op in (3, 4, 5, 6, 7, 11, 12, 13, 14, 15):
            return "WS.OPCODE"
        if not b1 & 0x80:
            return "WS.UNMASKED"
        n, pos = b1 & 0x7F, pos + 2
        if n == 126:
            if len(data) < pos + 2:
                return "WS.INCOMPLETE"
            n = struct.unpack_from("!H", data, pos)[0]
            pos += 2
            if n < 126:
                return "WS.LENGTH.NONMINIMAL"
        elif n == 127:
            if len(data) < pos + 8:
                return "WS.INCOMPLETE"
            n = struct.unpack_from("!Q", data, pos)[0]
            pos += 8
            if n >> 63:
                return "WS.LENGTH.TOPBIT"
            if n < 65536:
                return "WS.LENGTH.NONMINIMAL"
        if op >= 8:
            if not fin:
                return "WS.CONTROL.FRAGMENTED"
            if n > 125:
                return "WS.CONTROL.LONG"
        elif op == 0 and not msg_op:
            return "WS.CONT.ORPHAN"
        elif op and msg_op:
            return "WS.CONT.MISSING"
        if len(data) < pos + 4 + n:
            if op == 1 or (op == 0 and msg_op == 1):
                # fail-fast: the bytes that did arrive may already be invalid
                key = data[pos:pos + 4]
                part = bytes(c ^ key[i & 3] for i, c in enumerate(data[pos + 4:])) if len(key) == 4 else b""
                dec = utf8 or codecs.getincrementaldecoder("utf-8")()
                if not _utf8_step(dec, part, False):
                    return "WS.UTF8"
            return "WS.INCOMPLETE"
        key = data[pos:pos + 4]
        payload = bytes(c ^ key[i & 3] for i, c in enumerate(data[pos + 4:pos + 4 + n]))
        pos += 4 + n
        if op == 8:
            if len(payload) == 1:
                return "WS.CLOSE.SHORT"
            if len(payload) >= 2:
                if not _close_code_ok(struct.unpack_from("!H", payload)[0]):
                    return "WS.CLOSE.CODE"
                try:
                    payload[2:].decode("utf-8")
                except UnicodeDecodeError:
                    return "WS.CLOSE.UTF8"
            return None
        if op >= 8:
            continue
        if op:
            msg_op = op
            utf8 = codecs.getincrementaldecoder("utf-8")() if op == 1 else None
        if utf8 is not None and not _utf8_step(utf8, payload, bool(fin)):
            return "WS.UTF8"
        if fin:
            msg_op, utf8 = 0, None
    return "WS.INCOMPLETE" if msg_op else None


# ---------------------------------------------------------------------- SSE

_LINES = re.compile(rb"\r\n|\r|\n")


def _split_lines(data: bytes) -> list[tuple[bytes, bytes]]:
    """(line, terminator) pairs; the last one may have an empty terminator."""
    out, pos = [], 0
    for m in _LINES.finditer(data):
        out.append((data[pos:m.start()], m.group()))
        pos = m.end()
    if pos < len(data):
        out.append((data[pos:], b""))
    return out


def _join(lines: list[tuple[bytes, bytes]]) -> bytes:
    return b"".join(a + b for a, b in lines)


def _strip_bom(data: bytes) -> bytes | None:
    return data[3:] if data.startswith(b"\xef\xbb\xbf") else None


def _no_lone_cr(data: bytes) -> bytes | None:
    fixed = re.sub(rb"\r(?!\n)", b"\n", data)
    return fixed if fixed != data else None


def _valid_utf8(data: bytes) -> bytes | None:
    fixed = data.decode("utf-8", "replace").encode("utf-8")
    return fixed if fixed != data else None


def _replace_lines(pred: Callable[[bytes], bool],
                   new: Callable[[bytes], bytes]) -> Callable[[bytes], bytes | None]:
    """A repair that rewrites the lines with a feature in place, so the blocks
    (and what else dispatches them) stay as they were."""
    def repair(data: bytes) -> bytes | None:
        lines = _split_lines(data)
        fixed = [(new(a) if pred(a) else a, b) for a, b in lines]
        return _join(fixed) if fixed != lines else None
    return repair


def _field(line: bytes) -> tuple[bytes, bytes]:
    name, colon, value = line.partition(b":")
    return name, value[1:] if value.startswith(b" ") else value


def _bad_retry(line: bytes) -> bool:
    name, value = _field(line)
    return name == b"retry" and not (value and all(48 <= b <= 57 for b in value))


def _id_nul(line: bytes) -> bool:
    name, value = _field(line)
    return name == b"id" and b"\x00" in value


def _no_data_blocks(data: bytes) -> bytes | None:
    """Drop every block (its blank line too) that holds no data field, the
    empty ones included: a blank line then dispatches nothing anywhere."""
    lines = _split_lines(data)
    out, block, changed = [], [], False
    for a, b in lines:
        block.append((a, b))
        if a == b"" and b:
            if not any(_field(x)[0] == b"data" for x, _ in block):
                changed = True
                block = []
            out.extend(block)
            block = []
    out.extend(block)
    return _join(out) if changed else None


def _terminated(data: bytes) -> bytes | None:
    lines = _split_lines(data)
    last = max((i for i, (a, b) in enumerate(lines) if a == b"" and b), default=-1)
    if last == len(lines) - 1:
        return None
    return _join(lines[:last + 1])


#: (class, repair) in the order they are tried; a repair returns None when
#: the input does not have the feature.  Repairs that change one line in
#: place come before the ones that drop whole blocks, which would also hide
#: the in-place features of the lines they drop
SSE_REPAIRS: list[tuple[str, Callable[[bytes], bytes | None]]] = [
    ("SSE.BOM.KEPT", _strip_bom),
    ("SSE.UTF8.UNREPLACED", _valid_utf8),
    ("SSE.TERM.CR", _no_lone_cr),
    ("SSE.RETRY.NONDIGIT", _replace_lines(_bad_retry, lambda line: b":")),
    ("SSE.ID.NUL", _replace_lines(_id_nul, lambda line: line.replace(b"\x00", b"0"))),
    ("SSE.DISPATCH.NODATA", _no_data_blocks),
    ("SSE.DISPATCH.EOF", _terminated),
]


def classify_sse(data: bytes, agree: Callable[[bytes], bool]) -> str:
    """The first quirk whose repair alone makes the outcomes agree (``agree``
    parses a repaired input with both parsers); failing that, the repairs are
    applied one on top of the other and the class is the one that completed
    the agreement; failing that too, ``SSE.FIELD`` (nothing we know explains
    it)."""
    for name, repair in SSE_REPAIRS:
        fixed = repair(data)
        if fixed is not None and agree(fixed):
            return name
    current = data
    for name, repair in SSE_REPAIRS:
        fixed = repair(current)
        if fixed is None:
            continue
        current = fixed
        if agree(current):
            return name
    return "SSE.FIELD"


# ---------------------------------------------------------------- dispatch

def _term_ext(data: bytes, agree: Callable[..., bool] | None) -> str:
    """What the peer did with a bare CR or LF inside a chunk extension:
    the reference, given the input with the rest of the extension up to the
    CRLF dropped (``SWALLOW``) or with that line ended there (``END``),
    reads what the peer read (``agree``)."""
    for m in re.finditer(rb";[^\r\n]*(?:\r(?!\n)|\n)", data):
        if m.end() >= 2 and data[m.end() - 2:m.end()] == b"\r\n":
            continue
        p, e = m.start(), m.end() - 1
        crlf = data.find(b"\r\n", e)
        return _reading(data, agree, "TERM.EXT", [
            ("SWALLOW", data[:p] + data[crlf:] if crlf >= 0 else None),
            ("END", data[:p] + b"\r\n" + data[e + 1:]),
        ])
    return "TERM.EXT"


def _reading(data: bytes, agree: Callable[..., bool] | None, cls: str,
             readings: list[tuple[str, bytes | None]]) -> str:
    """``cls.<name>`` for the first reading the reference reads as the peer
    read ``data`` (``agree``); failing that (the input holds a second
    leniency the reference rejects), the first the peer itself reads as it
    read ``data`` (``agree(..., peer=True)``); else ``cls``."""
    if agree is None:
        return cls
    for peer in (False, True):
        for name, fixed in readings:
            if fixed is not None and fixed != data and (agree(fixed, peer=True) if peer else agree(fixed)):
                return f"{cls}.{name}"
    return cls


def _int_empty(data: bytes, pos: int, nxt: int, agree: Callable[..., bool] | None) -> str:
    """What the peer did with an empty chunk-size: read it as 0 (``ZERO``:
    the last chunk), or skipped the line and read the next one as the size
    line (``SKIP``)."""
    if pos < 0:
        return "INT.EMPTY"
    content = _line(data, pos)
    rest = content[0] if content else b""
    return _reading(data, agree, "INT.EMPTY", [
        ("ZERO", data[:pos] + b"0" + rest.lstrip(b" \t") + b"\r\n" + data[nxt:]),
        ("SKIP", data[:pos] + data[nxt:]),
    ])


def _term_cr(data: bytes, pos: int, nxt: int, agree: Callable[..., bool] | None) -> str:
    """What the peer did with a bare CR ending a line: took it as the line
    end (``END``), or kept it, with what follows up to the next CRLF, in the
    line and read only what came before it (``SWALLOW``)."""
    if pos < 0 or data[nxt - 1:nxt] != b"\r":
        return "TERM.CR"
    cr = nxt - 1
    crlf = data.find(b"\r\n", nxt)
    return _reading(data, agree, "TERM.CR", [
        ("SWALLOW", data[:cr] + data[crlf:] if crlf >= 0 else None),
        ("END", data[:cr] + b"\r\n" + data[nxt:]),
    ])


def classify(protocol: str, data: bytes, ref: Outcome, out: Outcome, what: str,
             reparse: Callable[..., bool] | None = None, later: bool = False) -> str:
    """Name the class of one difference (``what`` from :func:`differs`);
    ``later``: fed byte by byte, the peer failed after the reference did.
    ``reparse``: for SSE, do both agree on a repaired input; for chunked,
    does the reference read from a repaired input what the peer read from
    this one."""
    if what == "crash":
        return "ADAPTER.CRASH"
    if protocol == "chunked":
        if what == "status" and not ref.accepted:
            cls, pos, nxt = _explain_chunked(data)
            if cls == "TERM.EXT":
                return _term_ext(data, reparse)
            if cls == "INT.EMPTY":
                return _int_empty(data, pos, nxt, reparse)
            if cls == "TERM.CR":
                return _term_cr(data, pos, nxt, reparse)
            return cls or "CHUNKED.VALID"
        if what == "status":
            return "CHUNKED.VALID"
        return {"value": "CHUNKED.BODY", "trailers": "CHUNKED.TRAILERS"}.get(what, "CHUNKED.END")
    if protocol == "ws":
        if what == "status" and not ref.accepted:
            return explain_ws(data) or "WS.VALID"
        if what == "status":
            return "WS.VALID"
        if what == "error":
            # a peer that produced more messages than the reference before
            # its error, or that failed later when fed byte by byte, read
            # past the reference's error: the first violation is what it
            # accepted; past invalid UTF-8, it did not fail fast
            first = explain_ws(data)
            read_past = len(out.value or ()) > len(ref.value or ()) or later
            if first == "WS.UTF8" and (read_past or ref.error == "1007"):
                return "WS.UTF8.LATE"
            if read_past and first:
                return first
            return "WS.CODE"
        return "WS.MESSAGES"
    assert reparse is not None
    return classify_sse(data, reparse)


__all__ = ["DESCRIPTIONS", "classify", "classify_sse", "differs", "explain_chunked", "explain_ws"]
