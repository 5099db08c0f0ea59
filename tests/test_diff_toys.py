"""Deliberately lenient toy parsers for the streamcore.diff tests, one per
finding class (``TOYS`` maps each class to its toy).

Most toys are the strict reference after a rewrite of the input that plants
one leniency (a 0x prefix read as hex, a bare LF taken for CRLF, a reserved
WebSocket opcode read as binary, ...); the rewrites are written here from
the grammar, not from :mod:`streamcore.diff.classes`.  The rest change the
reference's outcome in one way (a body cut short accepted, a different close
code, a result that depends on the reads).  A toy caches its last answer
per input: most of them do not depend on how the input was split.
"""
from __future__ import annotations

import dataclasses
import re
import struct
from collections.abc import Callable
from typing import Any

from streamcore.diff.adapters.streamcore_ import ChunkedPy, SSEPy, WSPy
from streamcore.diff.outcome import ERROR, INCOMPLETE, OK, Outcome

_REFERENCE = {"chunked": ChunkedPy, "sse": SSEPy, "ws": WSPy}


class Rewrite:
    """The reference after ``rewrite(whole input)``; the split is ignored."""

    protocol = ""
    exact = False

    def __init__(self) -> None:
        self.ref = _REFERENCE[self.protocol]()
        self.name = "toy-" + type(self).__name__.lower()
        self._last: tuple[bytes, Outcome | None] = (b"", None)

    def rewrite(self, data: bytes) -> bytes:
        raise NotImplementedError

    def parse(self, chunks: list[bytes]) -> Outcome:
        data = b"".join(chunks)
        if self._last[0] != data or self._last[1] is None:
            out = self.ref.parse([self.rewrite(data)])
            # fed as one read: where an error was found says nothing of fail-fast
            self._last = (data, dataclasses.replace(out, where=None))
        return self._last[1]


class Change:
    """The reference's outcome for the same reads, changed by ``change``."""

    protocol = ""
    exact = False

    def __init__(self) -> None:
        self.ref = _REFERENCE[self.protocol]()
        self.name = "toy-" + type(self).__name__.lower()

    def change(self, out: Outcome, chunks: list[bytes]) -> Outcome:
        raise NotImplementedError

    def parse(self, chunks: list[bytes]) -> Outcome:
        return self.change(self.ref.parse(chunks), chunks)


def _sub(pattern: bytes, repl: bytes | Callable[[re.Match[bytes]], bytes]) -> Callable[[Any, bytes], bytes]:
    rx = re.compile(pattern)

    def rewrite(self: Any, data: bytes) -> bytes:
        return rx.sub(repl, data)
    return rewrite


# ------------------------------------------------------------------ chunked

_LAST_CHUNK = re.compile(rb"(?:^|\r\n)0+(?:;[^\r\n]*)?\r\n")


def _trailers(fix: Callable[[bytes], bytes]) -> Callable[[Any, bytes], bytes]:
    """Apply ``fix`` to what follows the last-chunk line (the trailer section)."""
    def rewrite(self: Any, data: bytes) -> bytes:
        m = _LAST_CHUNK.search(data)
        return data if m is None else data[:m.end()] + fix(data[m.end():])
    return rewrite


class _C(Rewrite):
    protocol = "chunked"


class Prefix(_C):  # INT.PREFIX: 0x read as a hex prefix
    rewrite = _sub(rb"(^|\r\n)0[xX](?=[0-9a-fA-F])", rb"\1")


class Sign(_C):  # INT.SIGN: a sign read as int() would
    rewrite = _sub(rb"(^|\r\n)[-+](?=[0-9a-fA-F])", rb"\1")


class Underscore(_C):  # INT.UNDERSCORE: underscores between digits skipped
    rewrite = _sub(rb"(^|\r\n)([0-9a-fA-F]+)_(?=[0-9a-fA-F])", rb"\1\2")


def _empty_size_line(data: bytes) -> tuple[int, int] | None:
    """Where the first size line with an empty chunk-size starts and ends
    (after its CRLF), walking the chunks by their sizes; None if none."""
    pos = 0
    while True:
        end = data.find(b"\r\n", pos)
        if end < 0:
            return None
        size = data[pos:end].split(b";")[0].strip(b" \t")
        if not size:
            return pos, end + 2
        try:
            n = int(size, 16)
        except ValueError:
            return None
        if n <= 0:
            return None
        pos = end + 2 + n + 2


class EmptyZero(_C):  # INT.EMPTY.ZERO: an empty size read as 0
    def rewrite(self, data: bytes) -> bytes:
        at = _empty_size_line(data)
        return data if at is None else data[:at[0]] + b"0" + data[at[0]:]


class EmptySkip(_C):  # INT.EMPTY.SKIP: a line with an empty size skipped
    def rewrite(self, data: bytes) -> bytes:
        at = _empty_size_line(data)
        return data if at is None else data[:at[0]] + data[at[1]:]


class Empty(EmptyZero):  # INT.EMPTY: read as 0, with a stray byte in the body
    def parse(self, chunks: list[bytes]) -> Outcome:
        out = super().parse(chunks)
        data = b"".join(chunks)
        if out.status == OK and self.rewrite(data) != data:
            return dataclasses.replace(out, value=(out.value[0] + b"?", out.value[1]))
        return out


class Overflow(_C):  # INT.OVERFLOW: a size kept in 64 bits (wraps)
    rewrite = _sub(rb"(^|\r\n)[0-9a-fA-F]*([0-9a-fA-F]{16})(?=[;\r])",
                   lambda m: m.group(1) + m.group(2) if int(m.group(2), 16) < 1 << 63 else m.group())


class Space(_C):  # INT.SPACE: whitespace around the size skipped
    def rewrite(self, data: bytes) -> bytes:
        data = re.sub(rb"(^|\r\n)[ \t]+(?=[0-9a-fA-F])", rb"\1", data)
        return re.sub(rb"(^|\r\n)([0-9a-fA-F]+)[ \t]+(?=\r\n)", rb"\1\2", data)


class Junk(_C):  # INT.JUNK: strtol: the digits up to the first non-hex byte (and int()'s Unicode digits)
    def rewrite(self, data: bytes) -> bytes:
        data = re.sub(rb"(^|\r\n)\xd9\xa1(?=\r)", rb"\g<1>1", data)
        return re.sub(rb"(^|\r\n)([0-9a-fA-F]+)[g-zG-Z]+(?=[;\r])", rb"\1\2", data)


class TermExtEnd(_C):  # TERM.EXT.END: a bare CR or LF ends the extension and the line
    rewrite = _sub(rb"(;[^\r\n]*)(?:\r(?!\n)|(?<!\r)\n)", rb"\1\r\n")


class TermExtSwallow(_C):  # TERM.EXT.SWALLOW: a bare CR or LF is kept in the extension
    rewrite = _sub(rb"(;[^\r\n]*)(?:\r(?!\n)|\n)(?:[^\r]|\r(?!\n))*", rb"\1")


class TermExt(TermExtEnd):  # TERM.EXT: ends the line, then loses the last byte of the body
    def parse(self, chunks: list[bytes]) -> Outcome:
        out = super().parse(chunks)
        data = b"".join(chunks)
        if out.status == OK and out.value[0] and self.rewrite(data) != data:
            return dataclasses.replace(out, value=(out.value[0][:-1], out.value[1]))
        return out


class TermLF(_C):  # TERM.LF: every bare LF is a line end
    rewrite = _sub(rb"(?<!\r)\n", b"\r\n")


class TermCREnd(_C):  # TERM.CR.END: every bare CR is a line end
    rewrite = _sub(rb"\r(?!\n)", b"\r\n")


class TermCRSwallow(_C):  # TERM.CR.SWALLOW: a size line is read up to a bare CR; the rest to CRLF dropped
    rewrite = _sub(rb"(^|\r\n)([0-9a-fA-F]+)\r(?!\n)(?:[^\r]|\r(?!\n))*(?=\r\n)", rb"\1\2")


class TermCR(TermCREnd):  # TERM.CR: ends the line, then loses the last byte of the body
    def parse(self, chunks: list[bytes]) -> Outcome:
        out = super().parse(chunks)
        data = b"".join(chunks)
        if out.status == OK and out.value[0] and self.rewrite(data) != data:
            return dataclasses.replace(out, value=(out.value[0][:-1], out.value[1]))
        return out


class Spill(_C):  # TERM.SPILL: bytes between the chunk data and CRLF skipped
    def rewrite(self, data: bytes) -> bytes:
        head = re.compile(rb"([0-9a-fA-F]+)((?:;[^\r\n]*)?)\r\n")
        out, pos = [], 0
        while True:
            m = head.match(data, pos)
            if m is None:
                break
            n = int(m.group(1), 16)
            out.append(m.group())
            pos = m.end()
            if n == 0:
                break
            out.append(data[pos:pos + n])
            pos += n
            crlf = data.find(b"\r\n", pos)
            if crlf < 0:
                break
            pos = crlf
            out.append(b"\r\n")
            pos += 2
        out.append(data[pos:])
        return b"".join(out)


class ExtSyntax(_C):  # EXT.SYNTAX: any extension skipped up to CRLF
    rewrite = _sub(rb"(^|\r\n)([0-9a-fA-F]+)[ \t]*;[^\r\n]*(?=\r\n)", rb"\1\2")


class TrailerFraming(_C):  # TRAILER.FRAMING: framing fields in trailers ignored
    rewrite = _trailers(lambda t: re.sub(rb"(?i)^(?:content-length|transfer-encoding)[ \t]*:[^\r\n]*\r\n", b"",
                                         t, count=1))


class TrailerFold(_C):  # TRAILER.FOLD: obs-fold joined to the line before
    rewrite = _trailers(lambda t: re.sub(rb"\r\n[ \t]+", b" ", t))


class TrailerSyntax(_C):  # TRAILER.SYNTAX: malformed trailer lines dropped
    rewrite = _trailers(lambda t: re.sub(rb"^(?:(?![!#-'*+.0-9A-Z^-z|~-]+:)[^ \t\r\n][^\r\n]*|"
                                         rb"[^\r\n]*\x00[^\r\n]*)\r\n", b"", t))


class _CC(Change):
    protocol = "chunked"


class Incomplete(_CC):  # CHUNKED.INCOMPLETE: a body cut short is complete
    def change(self, out: Outcome, chunks: list[bytes]) -> Outcome:
        return dataclasses.replace(out, status=OK, rest=b"") if out.status == INCOMPLETE else out


class Valid(_CC):  # CHUNKED.VALID: rejects BWS after ";"
    def change(self, out: Outcome, chunks: list[bytes]) -> Outcome:
        return Outcome(ERROR, None, None, "Toy") if b"; " in b"".join(chunks) else out


class Body(_CC):  # CHUNKED.BODY: loses the last byte of the body
    def change(self, out: Outcome, chunks: list[bytes]) -> Outcome:
        if out.status == OK and out.value[0]:
            return dataclasses.replace(out, value=(out.value[0][:-1], out.value[1]))
        return out


class Trailers(_CC):  # CHUNKED.TRAILERS: loses the trailer values
    def change(self, out: Outcome, chunks: list[bytes]) -> Outcome:
        if out.status == OK and out.value[1]:
            return dataclasses.replace(out, value=(out.value[0], tuple((n, b"") for n, _ in out.value[1])))
        return out


class End(_CC):  # CHUNKED.END: the message ends one byte late
    def change(self, out: Outcome, chunks: list[bytes]) -> Outcome:
        return dataclasses.replace(out, rest=out.rest[1:]) if out.status == OK and out.rest else out


class Split(_CC):  # CHUNKED.SPLIT: a CRLF split between two reads is not seen
    def change(self, out: Outcome, chunks: list[bytes]) -> Outcome:
        if any(c.endswith(b"\r") for c in chunks[:-1]):
            return Outcome(ERROR, None, None, "Toy")
        return out


class Crash(_CC):  # ADAPTER.CRASH: blows up on trailers
    def change(self, out: Outcome, chunks: list[bytes]) -> Outcome:
        if out.status == OK and out.value[1]:
            raise KeyError("toy")
        return out


class Drift(_CC):  # TWIN.DRIFT: compared field by field, reports errors one byte late
    exact = True

    def change(self, out: Outcome, chunks: list[bytes]) -> Outcome:
        return dataclasses.replace(out, where=out.where + 1) if out.where is not None else out


# ---------------------------------------------------------------------- SSE

class _S(Rewrite):
    protocol = "sse"


class BomKept(_S):  # SSE.BOM.KEPT: the BOM is part of the first field name
    def rewrite(self, data: bytes) -> bytes:
        return b"\xef\xbb\xbf" + data if data.startswith(b"\xef\xbb\xbf") else data


class TermCRSSE(_S):  # SSE.TERM.CR: a lone CR is no line end (dropped)
    rewrite = _sub(rb"\r(?!\n)", b"")


class Utf8Unreplaced(_S):  # SSE.UTF8.UNREPLACED: invalid UTF-8 dropped
    def rewrite(self, data: bytes) -> bytes:
        return data.decode("utf-8", "ignore").encode("utf-8")


def _int_retry(m: re.Match[bytes]) -> bytes:
    try:
        return m.group(1) + str(abs(int(m.group(2)))).encode()
    except ValueError:
        return m.group()


class RetryNondigit(_S):  # SSE.RETRY.NONDIGIT: retry read with int()
    rewrite = _sub(rb"(?m)^(retry: ?)([^\r\n]+)", _int_retry)


class IdNul(_S):  # SSE.ID.NUL: NUL dropped from an id
    rewrite = _sub(rb"(?m)^id:[^\r\n]*", lambda m: m.group().replace(b"\x00", b""))


class DispatchNodata(_S):  # SSE.DISPATCH.NODATA: a block of fields without data dispatches
    def rewrite(self, data: bytes) -> bytes:
        lines = re.split(rb"(\r\n|\r|\n)", data)
        out, fields, has_data = [], False, False
        for i in range(0, len(lines) - 1, 2):
            line, eol = lines[i], lines[i + 1]
            if line == b"":
                if fields and not has_data:
                    out.append(b"data" + eol)
                fields = has_data = False
            elif not line.startswith(b":"):
                fields = True
                has_data = has_data or line.split(b":", 1)[0] == b"data"
            out.append(line + eol)
        if len(lines) % 2:
            out.append(lines[-1])
        return b"".join(out)


class DispatchEof(_S):  # SSE.DISPATCH.EOF: the end of the stream ends the event
    def rewrite(self, data: bytes) -> bytes:
        return data + b"\n\n"


class Field(_S):  # SSE.FIELD: every leading space of a value stripped
    rewrite = _sub(rb"(?m)^([a-z]+): +", rb"\1:")


class SplitSSE(Change):  # SSE.SPLIT: loses the last event when the stream came in pieces
    protocol = "sse"

    def change(self, out: Outcome, chunks: list[bytes]) -> Outcome:
        if len(chunks) > 1 and out.value[0]:
            return dataclasses.replace(out, value=(out.value[0][:-1], *out.value[1:]))
        return out


# ---------------------------------------------------------------- WebSocket

@dataclasses.dataclass
class Frame:
    fin: bool
    rsv: int
    op: int
    masked: bool
    key: bytes
    payload: bytes
    form: int  # 0: 7-bit, 126: 16-bit, 127: 64-bit


def frames(data: bytes, topbit: bool = False) -> tuple[list[Frame], bytes]:
    """The complete frames and the bytes after them; ``topbit``: read a
    64-bit length without its most significant bit."""
    out, pos = [], 0
    while pos + 2 <= len(data):
        b0, b1 = data[pos], data[pos + 1]
        n, hdr, form = b1 & 0x7F, 2, 0
        if n == 126:
            if pos + 4 > len(data):
                break
            n, hdr, form = struct.unpack_from("!H", data, pos + 2)[0], 4, 126
        elif n == 127:
            if pos + 10 > len(data):
                break
            n, hdr, form = struct.unpack_from("!Q", data, pos + 2)[0], 10, 127
            if topbit:
                n &= (1 << 63) - 1
        masked = bool(b1 & 0x80)
        start = pos + hdr + 4 * masked
        if start + n > len(data):
            break
        key = data[pos + hdr:start]
        payload = data[start:start + n]
        if masked:
            payload = bytes(c ^ key[i & 3] for i, c in enumerate(payload))
        out.append(Frame(bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 15, masked, key, payload, form))
        pos = start + n
    return out, data[pos:]


def encode(fs: list[Frame], minimal: bool = False) -> bytes:
    out = bytearray()
    for f in fs:
        out.append(0x80 * f.fin | f.rsv << 4 | f.op)
        n, form = len(f.payload), f.form
        if minimal or (form == 0 and n > 125) or (form == 126 and n > 65535):
            form = 0 if n < 126 else 126 if n < 65536 else 127
        m = 0x80 if f.masked else 0
        if form == 0:
            out.append(m | n)
        elif form == 126:
            out += bytes([m | 126]) + struct.pack("!H", n)
        else:
            out += bytes([m | 127]) + struct.pack("!Q", n)
        if f.masked:
            out += f.key + bytes(c ^ f.key[i & 3] for i, c in enumerate(f.payload))
        else:
            out += f.payload
    return bytes(out)


class _W(Rewrite):
    protocol = "ws"
    topbit = False
    minimal = False

    def fix(self, fs: list[Frame]) -> None:
        raise NotImplementedError

    def rewrite(self, data: bytes) -> bytes:
        fs, rest = frames(data, self.topbit)
        self.fix(fs)
        return encode(fs, self.minimal) + rest


class Rsv(_W):  # WS.RSV: RSV bits ignored
    def fix(self, fs: list[Frame]) -> None:
        for f in fs:
            f.rsv = 0


class Opcode(_W):  # WS.OPCODE: reserved opcodes read as binary
    def fix(self, fs: list[Frame]) -> None:
        for f in fs:
            if f.op in (3, 4, 5, 6, 7, 11, 12, 13, 14, 15):
                f.op = 2


class NonMinimal(_W):  # WS.LENGTH.NONMINIMAL: any length encoding read
    minimal = True

    def fix(self, fs: list[Frame]) -> None:
        pass


class TopBit(_W):  # WS.LENGTH.TOPBIT: the 64-bit length's top bit ignored
    topbit = True
    minimal = True

    def fix(self, fs: list[Frame]) -> None:
        pass


class Unmasked(_W):  # WS.UNMASKED: an unmasked frame read as masked with a zero key
    def fix(self, fs: list[Frame]) -> None:
        for f in fs:
            if not f.masked:
                f.masked, f.key = True, b"\x00" * 4


class ControlFragmented(_W):  # WS.CONTROL.FRAGMENTED: FIN ignored on control frames
    def fix(self, fs: list[Frame]) -> None:
        for f in fs:
            if f.op >= 8:
                f.fin = True


class ControlLong(_W):  # WS.CONTROL.LONG: a long control payload cut to 125 bytes
    minimal = True

    def fix(self, fs: list[Frame]) -> None:
        for f in fs:
            if f.op >= 8:
                f.payload = f.payload[:125]


class ContOrphan(_W):  # WS.CONT.ORPHAN: a continuation with no message starts one
    def fix(self, fs: list[Frame]) -> None:
        open_ = False
        for f in fs:
            if f.op == 0 and not open_:
                f.op = 2
            if f.op < 8:
                open_ = not f.fin


class ContMissing(_W):  # WS.CONT.MISSING: a new data frame inside a message continues it
    def fix(self, fs: list[Frame]) -> None:
        open_ = False
        for f in fs:
            if f.op in (1, 2) and open_:
                f.op = 0
            if f.op < 8:
                open_ = not f.fin


class CloseShort(_W):  # WS.CLOSE.SHORT: a 1-byte close payload read as none
    def fix(self, fs: list[Frame]) -> None:
        for f in fs:
            if f.op == 8 and len(f.payload) == 1:
                f.payload = b""


class CloseCode(_W):  # WS.CLOSE.CODE: any close code read as 1000
    def fix(self, fs: list[Frame]) -> None:
        for f in fs:
            if f.op == 8 and len(f.payload) >= 2:
                f.payload = struct.pack("!H", 1000) + f.payload[2:]


class CloseUtf8(_W):  # WS.CLOSE.UTF8: a close reason that is not UTF-8 dropped
    def fix(self, fs: list[Frame]) -> None:
        for f in fs:
            if f.op == 8 and len(f.payload) > 2:
                try:
                    f.payload[2:].decode("utf-8")
                except UnicodeDecodeError:
                    f.payload = f.payload[:2]


class _WC(Change):
    protocol = "ws"


class Utf8(_WC):  # WS.UTF8: text never checked
    def change(self, out: Outcome, chunks: list[bytes]) -> Outcome:
        return Outcome(OK, out.value) if out.status == ERROR and out.error == "1007" else out


class Utf8Late(_WC):  # WS.UTF8.LATE: text checked only once all of it arrived
    def change(self, out: Outcome, chunks: list[bytes]) -> Outcome:
        if out.status == ERROR and out.error == "1007":
            return dataclasses.replace(out, where=sum(map(len, chunks)))
        return out


class IncompleteWS(_WC):  # WS.INCOMPLETE: a frame cut short is taken as complete
    def change(self, out: Outcome, chunks: list[bytes]) -> Outcome:
        return dataclasses.replace(out, status=OK) if out.status == INCOMPLETE else out


class Code(_WC):  # WS.CODE: closes with 1008 where the reference says 1002
    def change(self, out: Outcome, chunks: list[bytes]) -> Outcome:
        return dataclasses.replace(out, error="1008") if out.error == "1002" else out


class ValidWS(_WC):  # WS.VALID: a Ping is a protocol error
    def change(self, out: Outcome, chunks: list[bytes]) -> Outcome:
        if out.status == OK and any(kind == "ping" for kind, _ in out.value):
            return Outcome(ERROR, (), None, "1002")
        return out


class Messages(_WC):  # WS.MESSAGES: Pongs are not reported
    def change(self, out: Outcome, chunks: list[bytes]) -> Outcome:
        if out.status == OK and any(kind == "pong" for kind, _ in out.value):
            return dataclasses.replace(out, value=tuple(m for m in out.value if m[0] != "pong"))
        return out


class SplitWS(_WC):  # WS.SPLIT: a message that came in pieces is still waiting
    def change(self, out: Outcome, chunks: list[bytes]) -> Outcome:
        if len(chunks) > 1 and out.status == OK and out.value:
            return dataclasses.replace(out, status=INCOMPLETE)
        return out


class PrefixQuirk(Prefix):
    """The 0x toy with its leniency declared as a known quirk."""

    quirks = {"INT.PREFIX": "reads chunk-size as int(s, 16) does, by design"}


#: class -> toy (its name in this module)
TOYS = {
    "INT.PREFIX": Prefix, "INT.SIGN": Sign, "INT.UNDERSCORE": Underscore, "INT.EMPTY": Empty,
    "INT.EMPTY.ZERO": EmptyZero, "INT.EMPTY.SKIP": EmptySkip,
    "INT.OVERFLOW": Overflow, "INT.SPACE": Space, "INT.JUNK": Junk, "TERM.EXT": TermExt, "TERM.EXT.END": TermExtEnd,
    "TERM.EXT.SWALLOW": TermExtSwallow, "TERM.LF": TermLF,
    "TERM.CR": TermCR, "TERM.CR.END": TermCREnd, "TERM.CR.SWALLOW": TermCRSwallow,
    "TERM.SPILL": Spill, "EXT.SYNTAX": ExtSyntax, "TRAILER.FRAMING": TrailerFraming,
    "TRAILER.FOLD": TrailerFold, "TRAILER.SYNTAX": TrailerSyntax, "CHUNKED.INCOMPLETE": Incomplete,
    "CHUNKED.VALID": Valid, "CHUNKED.BODY": Body, "CHUNKED.TRAILERS": Trailers, "CHUNKED.END": End,
    "CHUNKED.SPLIT": Split, "ADAPTER.CRASH": Crash, "TWIN.DRIFT": Drift,
    "SSE.BOM.KEPT": BomKept, "SSE.TERM.CR": TermCRSSE, "SSE.UTF8.UNREPLACED": Utf8Unreplaced,
    "SSE.RETRY.NONDIGIT": RetryNondigit, "SSE.ID.NUL": IdNul, "SSE.DISPATCH.NODATA": DispatchNodata,
    "SSE.DISPATCH.EOF": DispatchEof, "SSE.FIELD": Field, "SSE.SPLIT": SplitSSE,
    "WS.RSV": Rsv, "WS.OPCODE": Opcode, "WS.LENGTH.NONMINIMAL": NonMinimal, "WS.LENGTH.TOPBIT": TopBit,
    "WS.UNMASKED": Unmasked, "WS.CONTROL.FRAGMENTED": ControlFragmented, "WS.CONTROL.LONG": ControlLong,
    "WS.CONT.ORPHAN": ContOrphan, "WS.CONT.MISSING": ContMissing, "WS.UTF8": Utf8, "WS.UTF8.LATE": Utf8Late,
    "WS.CLOSE.SHORT": CloseShort, "WS.CLOSE.CODE": CloseCode, "WS.CLOSE.UTF8": CloseUtf8,
    "WS.INCOMPLETE": IncompleteWS, "WS.CODE": Code, "WS.VALID": ValidWS, "WS.MESSAGES": Messages,
    "WS.SPLIT": SplitWS,
}


# --------------------------------------------- toys outside the class table

class Seven(_CC):  # CHUNKED.SPLIT only when a read before the last is exactly 7 bytes
    def change(self, out: Outcome, chunks: list[bytes]) -> Outcome:
        if len(chunks) > 1 and any(len(c) == 7 for c in chunks[:-1]):
            return Outcome(ERROR, None, None, "Toy")
        return out


class WrongShape:  # returns an Outcome whose value is not (body, trailers)
    name = "toy-wrongshape"
    protocol = "chunked"

    def parse(self, chunks: list[bytes]) -> Outcome:
        return Outcome(OK, b"".join(chunks)[:3])


class PrefixLF(_C):  # INT.PREFIX, and a bare LF read as CRLF too (two leniencies)
    rewrite = _sub(rb"(?:(?<=^)|(?<=\n))0[xX](?=[0-9a-fA-F])|(?<!\r)\n",
                   lambda m: b"\r\n" if m.group() == b"\n" else b"")
