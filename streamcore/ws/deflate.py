"""permessage-deflate (RFC 7692): parameter negotiation and per-connection zlib state.

Theory of operation
-------------------
Two value objects hold the four extension parameters of RFC 7692 §7.1 (plus
local zlib tuning), one per stage, so that one cannot stand in for the other:

* :class:`PerMessageDeflate` is what one side *wants*, before the handshake:
  a client turns it into an offer (:meth:`PerMessageDeflate.offer`), a server
  judges the client's offers with it (:meth:`PerMessageDeflate.accept_offer`).
* :class:`NegotiatedDeflate` is what both sides *agreed*, the result of
  negotiation: :meth:`PerMessageDeflate.accept_offer` (server) and
  :meth:`PerMessageDeflate.accept_response` (client) return one.  The server
  answers with :meth:`NegotiatedDeflate.response`.  It is the only deflate
  object ``streamcore.ws.Connection(deflate=...)`` takes (a policy there is a
  :class:`TypeError`: the agreed parameters may differ from the policy, and a
  connection run on the policy fails the peer's second message with 1007);
  the connection calls :meth:`NegotiatedDeflate.session` once.

A :class:`DeflateSession` owns the zlib objects of one connection: a
compressor for the messages this side sends and a decompressor for the
messages it receives.  Decompression is bounded *while it runs*: zlib is told
to produce at most ``limit + 1`` bytes, so a decompression bomb costs at most
the limit in memory and time before :class:`~streamcore.LimitError` (close
code 1009) is raised.

The handshake helpers (:mod:`streamcore.ws.handshake`) parse the
``Sec-WebSocket-Extensions`` header and hand each permessage-deflate element
here as a list of ``(name, value)`` pairs, ``value`` being ``None`` for a
parameter without a value.
"""

from __future__ import annotations

import sys
import zlib
from collections.abc import Sequence

from .._contract import byte_view
from .._errors import LimitError, ProtocolError

__all__ = ["PerMessageDeflate", "NegotiatedDeflate", "DeflateSession", "EXTENSION_NAME"]

#: the extension token (RFC 7692 §7)
EXTENSION_NAME = "permessage-deflate"

# RFC 7692 §7.2.1: the compressor's output for a message ends with an empty
# stored block flushed with Z_SYNC_FLUSH, whose last four octets are removed
# before sending; the receiver appends them again before inflating.
_TAIL = b"\x00\x00\xff\xff"

# RFC 7692 §7.1.2.1 / §7.1.2.2: "an integer between 8 and 15 inclusive,
# without leading zeros" (written as a token or a quoted-string).
_WINDOW_BITS = {str(n): n for n in range(8, 16)}

# zlib refuses windowBits=8 for a raw deflate *compressor* ("until 256-byte
# window bug fixed", deflate.c).  Compressing with a 512-byte window is still
# safe when the peer asked for 256 bytes: zlib never emits a distance larger
# than w_size - MIN_LOOKAHEAD = 512 - 262 = 250 (MAX_DIST in deflate.h), which
# fits an 8-bit window.  The decompressor has no such limit: it uses 8.
_MIN_ZLIB_COMPRESS_BITS = 9

# The inflater always uses the largest window (32 KiB), not the agreed
# ``*_max_window_bits``.  zlib never checks a back reference against the
# window size, only against the bytes it still has: the window kept between
# inflate() calls plus what this call has produced (inflate.c, "invalid
# distance too far back").  With a smaller window the verdict on a peer that
# refers back farther than agreed would depend on where its frames are cut
# (and on CPython's output buffer blocks): one frame inflates, the same bytes
# in three frames fail with 1007 (fuzz/fuzz_ws_deflate.py found this).  With
# 15 bits every distance deflate can encode (<= 32768) is inside the window,
# so whole and split give the same answer, and every stream a conforming peer
# sends inflates exactly as before.  The agreed bits still bind *our*
# compressor (RFC 7692 §7.1.2); the cost is ~31 KiB more per inflater when a
# small window was agreed, held only while the inflater lives.
_INFLATE_BITS = 15

Params = Sequence[tuple[str, "str | None"]]


def _check_bits(name: str, value: int | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 8 <= value <= 15:
        raise ValueError(f"{name} must be None or an int between 8 and 15, not {value!r}")
    return value


def _parse_bits(value: str | None) -> int | None:
    """The value of a ``*_max_window_bits`` parameter, or None when invalid."""
    if value is None:
        return None
    return _WINDOW_BITS.get(value)


class _Parsed:
    """One offer or response element, checked for duplicates and syntax.

    ``client_max_window_bits`` is ``True`` when the parameter came without a
    value (legal only in an offer, RFC 7692 §7.1.2.2).
    """

    __slots__ = ("client_nct", "server_nct", "client_bits", "server_bits")

    def __init__(self, params: Params, *, offer: bool) -> None:
        self.client_nct = False
        self.server_nct = False
        self.client_bits: int | bool | None = None
        self.server_bits: int | None = None
        seen: set[str] = set()
        for raw_name, value in params:
            name = raw_name.lower()
            # RFC 7692 §5: multiple parameters with the same name -> decline / fail
            if name in seen:
                raise ValueError(f"duplicate parameter {name!r}")
            seen.add(name)
            if name == "server_no_context_takeover":
                if value is not None:
                    raise ValueError(f"{name} takes no value")
                self.server_nct = True
            elif name == "client_no_context_takeover":
                if value is not None:
                    raise ValueError(f"{name} takes no value")
                self.client_nct = True
            elif name == "server_max_window_bits":
                bits = _parse_bits(value)
                if bits is None:
                    raise ValueError(f"invalid {name} value {value!r}")
                self.server_bits = bits
            elif name == "client_max_window_bits":
                if value is None and offer:
                    # §7.1.2.2: in an offer, "no value" means "I support it"
                    self.client_bits = True
                else:
                    bits = _parse_bits(value)
                    if bits is None:
                        raise ValueError(f"invalid {name} value {value!r}")
                    self.client_bits = bits
            else:
                raise ValueError(f"unknown parameter {name!r}")


class _Params:
    """The four RFC 7692 §7.1 parameters and the local zlib settings (shared
    by :class:`PerMessageDeflate` and :class:`NegotiatedDeflate`)."""

    __slots__ = (
        "client_no_context_takeover",
        "server_no_context_takeover",
        "client_max_window_bits",
        "server_max_window_bits",
        "compress_level",
        "mem_level",
    )

    name = EXTENSION_NAME

    def __init__(
        self,
        *,
        client_no_context_takeover: bool = False,
        server_no_context_takeover: bool = False,
        client_max_window_bits: int | None = None,
        server_max_window_bits: int | None = None,
        compress_level: int = 6,
        mem_level: int = 8,
    ) -> None:
        if not -1 <= compress_level <= 9:
            raise ValueError(f"compress_level must be between -1 and 9, not {compress_level!r}")
        if not 1 <= mem_level <= 9:
            raise ValueError(f"mem_level must be between 1 and 9, not {mem_level!r}")
        self.client_no_context_takeover = bool(client_no_context_takeover)
        self.server_no_context_takeover = bool(server_no_context_takeover)
        self.client_max_window_bits = _check_bits("client_max_window_bits", client_max_window_bits)
        self.server_max_window_bits = _check_bits("server_max_window_bits", server_max_window_bits)
        self.compress_level = compress_level
        self.mem_level = mem_level

    def __repr__(self) -> str:
        args = ", ".join(f"{name}={getattr(self, name)!r}" for name in _Params.__slots__)
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        # a policy never equals an agreement, even with the same values
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in _Params.__slots__)

    __hash__ = None  # type: ignore[assignment]


class PerMessageDeflate(_Params):
    """What one side wants of permessage-deflate (RFC 7692 §7.1), before the
    handshake, and local zlib settings.

    ``client_no_context_takeover`` / ``server_no_context_takeover``: that
    side resets its compressor after every message (RFC 7692 §7.1.1), so it
    holds no compression state between messages; the other side may then
    drop its decompressor between messages too.

    ``client_max_window_bits`` / ``server_max_window_bits``: the LZ77 window
    (``2**bits`` bytes, 8..15) that side's compressor may use (§7.1.2).
    ``None`` means "not limited" (15).

    ``compress_level`` (0..9, -1 = zlib default) and ``mem_level`` (1..9) are
    local zlib settings, never negotiated.

    Used as a client, the instance describes the offer; used as a server, it
    describes what the server requires or allows.  Negotiation
    (:meth:`accept_offer`, :meth:`accept_response`, or the handshake helpers)
    turns it into the :class:`NegotiatedDeflate` that
    ``Connection(deflate=...)`` takes; the policy itself is refused there.
    """

    __slots__ = ()

    def _agreed(self, **params: object) -> NegotiatedDeflate:
        return NegotiatedDeflate(
            compress_level=self.compress_level, mem_level=self.mem_level, **params  # type: ignore[arg-type]
        )

    # -- client side: the offer (RFC 7692 §5, §7.1) ---------------------------

    def offer_params(self) -> list[tuple[str, str | None]]:
        """The parameters of the client's offer.

        ``client_max_window_bits`` is always offered (without a value when not
        limited), telling the server it may limit our window (§7.1.2.2).
        """
        params: list[tuple[str, str | None]] = []
        if self.client_no_context_takeover:
            params.append(("client_no_context_takeover", None))
        if self.server_no_context_takeover:
            params.append(("server_no_context_takeover", None))
        if self.server_max_window_bits is not None:
            params.append(("server_max_window_bits", str(self.server_max_window_bits)))
        bits = self.client_max_window_bits
        params.append(("client_max_window_bits", None if bits is None else str(bits)))
        return params

    def offer(self) -> str:
        """The offer as a ``Sec-WebSocket-Extensions`` element (RFC 7692 §5)."""
        return _format(self.offer_params())

    def accept_response(self, params: Params) -> NegotiatedDeflate:
        """Client side: check the server's response to our offer (RFC 7692 §5, §7.1).

        Returns the agreed parameters.  Raises :class:`~streamcore.ProtocolError`
        (the client must _Fail the WebSocket Connection_) when the response
        has an unknown, duplicated or invalid parameter, omits something we
        required, or names a configuration we did not offer.
        """
        try:
            got = _Parsed(params, offer=False)
        except ValueError as exc:
            raise ProtocolError(f"bad permessage-deflate response: {exc}") from None
        # §7.1.1.1: we asked the server not to take over context; it must agree.
        if self.server_no_context_takeover and not got.server_nct:
            raise ProtocolError(
                "bad permessage-deflate response: server_no_context_takeover was "
                "requested and not confirmed"
            )
        # §7.1.2.1: an offered server_max_window_bits=N is answered with M <= N.
        server_bits = got.server_bits
        if self.server_max_window_bits is not None:
            if server_bits is None:
                raise ProtocolError(
                    "bad permessage-deflate response: server_max_window_bits was "
                    "requested and not confirmed"
                )
            if server_bits > self.server_max_window_bits:
                raise ProtocolError(
                    f"bad permessage-deflate response: server_max_window_bits={server_bits} "
                    f"is larger than the {self.server_max_window_bits} offered"
                )
        # §7.1.2.2: we always offer client_max_window_bits, so the server may
        # limit our window, but not above a value we named.
        client_bits = got.client_bits
        assert client_bits is not True  # a response always carries a value
        if client_bits is None:
            client_bits = self.client_max_window_bits
        elif self.client_max_window_bits is not None and client_bits > self.client_max_window_bits:
            raise ProtocolError(
                f"bad permessage-deflate response: client_max_window_bits={client_bits} "
                f"is larger than the {self.client_max_window_bits} offered"
            )
        return self._agreed(
            # Our own reset is always allowed, agreed or not (§7.1.1.2 hint).
            client_no_context_takeover=self.client_no_context_takeover or got.client_nct,
            server_no_context_takeover=got.server_nct,
            client_max_window_bits=client_bits,
            server_max_window_bits=server_bits,
        )

    # -- server side: accepting an offer (RFC 7692 §5, §7.1) ------------------

    def accept_offer(self, params: Params) -> NegotiatedDeflate | None:
        """Server side: the agreed parameters for one client offer, or ``None``.

        ``None`` declines the offer (RFC 7692 §5): an unknown, duplicated or
        invalid parameter, or a configuration this server does not accept
        (it requires ``client_max_window_bits`` and the client cannot limit
        its window).  Send the result's :meth:`NegotiatedDeflate.response`.
        """
        try:
            got = _Parsed(params, offer=True)
        except ValueError:
            return None
        # §7.1.2.1: the response names server_max_window_bits <= the offer's;
        # our own limit may be smaller, and may be named even if not offered.
        server_bits = self.server_max_window_bits
        if got.server_bits is not None:
            server_bits = (
                got.server_bits if server_bits is None else min(server_bits, got.server_bits)
            )
        # §7.1.2.2: client_max_window_bits may only be answered when offered.
        offered = got.client_bits
        client_bits: int | None
        if offered is None:
            if self.client_max_window_bits is not None:
                return None  # we must limit the client's window and cannot
            client_bits = None
        else:
            limits = [
                b for b in (self.client_max_window_bits, offered) if b is not True and b is not None
            ]
            client_bits = min(limits) if limits else None
        return self._agreed(
            # §7.1.1.1: server_no_context_takeover offered -> must be accepted
            server_no_context_takeover=self.server_no_context_takeover or got.server_nct,
            # §7.1.1.2: the client's hint is echoed, making it binding, so we
            # may free the decompressor between messages.
            client_no_context_takeover=self.client_no_context_takeover or got.client_nct,
            server_max_window_bits=server_bits,
            client_max_window_bits=client_bits,
        )



class NegotiatedDeflate(_Params):
    """The permessage-deflate parameters both sides agreed (RFC 7692 §7.1).

    Produced by negotiation: :meth:`PerMessageDeflate.accept_offer` (server),
    :meth:`PerMessageDeflate.accept_response` (client), and so the
    ``deflate`` of a handshake's :class:`~streamcore.ws.handshake.Upgrade`.
    It is the only deflate object ``Connection(deflate=...)`` takes.  The
    fields mean what they mean on :class:`PerMessageDeflate`, as agreed
    (``None`` window bits: 15).  Build one directly only when both sides'
    parameters are known without a handshake (tests, benchmarks).
    """

    __slots__ = ()

    def response_params(self) -> list[tuple[str, str | None]]:
        """The parameters of the server's response for these agreed parameters."""
        params: list[tuple[str, str | None]] = []
        if self.server_no_context_takeover:
            params.append(("server_no_context_takeover", None))
        if self.client_no_context_takeover:
            params.append(("client_no_context_takeover", None))
        if self.server_max_window_bits is not None:
            params.append(("server_max_window_bits", str(self.server_max_window_bits)))
        if self.client_max_window_bits is not None:
            params.append(("client_max_window_bits", str(self.client_max_window_bits)))
        return params

    def response(self) -> str:
        """The server's ``Sec-WebSocket-Extensions`` element (RFC 7692 §5)."""
        return _format(self.response_params())

    # -- runtime ---------------------------------------------------------------

    def session(self, client: bool) -> DeflateSession:
        """Fresh per-connection compression state for one side.

        ``client=True`` for the connection of a client (it compresses with the
        client's parameters and inflates with the server's).
        """
        if client:
            return DeflateSession(
                local_bits=self.client_max_window_bits or 15,
                remote_bits=self.server_max_window_bits or 15,
                local_no_context_takeover=self.client_no_context_takeover,
                remote_no_context_takeover=self.server_no_context_takeover,
                compress_level=self.compress_level,
                mem_level=self.mem_level,
            )
        return DeflateSession(
            local_bits=self.server_max_window_bits or 15,
            remote_bits=self.client_max_window_bits or 15,
            local_no_context_takeover=self.server_no_context_takeover,
            remote_no_context_takeover=self.client_no_context_takeover,
            compress_level=self.compress_level,
            mem_level=self.mem_level,
        )


def _format(params: Sequence[tuple[str, str | None]]) -> str:
    parts = [EXTENSION_NAME]
    for name, value in params:
        parts.append(name if value is None else f"{name}={value}")
    return "; ".join(parts)


class DeflateSession:
    """The zlib state of one connection (RFC 7692 §7.2).

    ``compress`` handles whole messages this side sends; ``decompress`` the
    frames of compressed messages it receives.  Counters (running totals):
    ``bytes_before_compression``/``bytes_after_compression`` for sent
    messages, ``bytes_before_decompression``/``bytes_after_decompression``
    for received ones (the removed ``00 00 ff ff`` tail is not counted).

    ``remote_bits`` records the peer's agreed window; the inflater itself
    always uses 15 bits, so that how the peer cuts a message into frames
    never changes the outcome (see ``_INFLATE_BITS``).
    """

    __slots__ = (
        "local_bits",
        "remote_bits",
        "local_no_context_takeover",
        "remote_no_context_takeover",
        "compress_level",
        "mem_level",
        "_compressor",
        "_decompressor",
        "_inflating",
        "bytes_before_compression",
        "bytes_after_compression",
        "bytes_before_decompression",
        "bytes_after_decompression",
    )

    def __init__(
        self,
        *,
        local_bits: int = 15,
        remote_bits: int = 15,
        local_no_context_takeover: bool = False,
        remote_no_context_takeover: bool = False,
        compress_level: int = 6,
        mem_level: int = 8,
    ) -> None:
        self.local_bits = local_bits
        self.remote_bits = remote_bits
        self.local_no_context_takeover = local_no_context_takeover
        self.remote_no_context_takeover = remote_no_context_takeover
        self.compress_level = compress_level
        self.mem_level = mem_level
        # Created lazily: a connection that never sends (or never receives)
        # compressed data never pays for the zlib state (~256 KiB to deflate
        # and ~40 KiB to inflate with 15-bit windows and mem_level 8).
        self._compressor: zlib._Compress | None = None
        self._decompressor: zlib._Decompress | None = None
        self._inflating = False  # a received message's deflate data has begun
        self.bytes_before_compression = 0
        self.bytes_after_compression = 0
        self.bytes_before_decompression = 0
        self.bytes_after_decompression = 0

    def compress(self, data: bytes | bytearray | memoryview) -> bytes:
        """Compress one whole message payload (RFC 7692 §7.2.1).

        The trailing ``00 00 ff ff`` of the sync flush is removed.  With no
        context takeover on our side the compressor is dropped after the
        message, so no compression state stays allocated between messages.
        """
        if type(data) is not bytes:
            data = byte_view(data)  # any buffer: in order, lengths in bytes
        compressor = self._compressor
        if compressor is None:
            compressor = zlib.compressobj(
                self.compress_level,
                zlib.DEFLATED,
                -max(self.local_bits, _MIN_ZLIB_COMPRESS_BITS),
                self.mem_level,
            )
        body = compressor.compress(data)
        # Z_SYNC_FLUSH always ends with an empty stored block 00 00 ff ff
        # (byte-aligned), so the tail is in the flush output.
        flushed = compressor.flush(zlib.Z_SYNC_FLUSH)
        out = body + flushed[:-4] if body else flushed[:-4]
        # §7.1.1: with no context takeover, each message starts afresh.
        self._compressor = None if self.local_no_context_takeover else compressor
        self.bytes_before_compression += len(data)
        self.bytes_after_compression += len(out)
        return out

    def decompress(
        self, data: bytes | bytearray | memoryview, fin: bool, limit: int | None
    ) -> bytes:
        """Inflate one frame's payload of a compressed message (RFC 7692 §7.2.2).

        ``fin`` is the frame's FIN bit: on the last frame the ``00 00 ff ff``
        tail is appended, and the context is reset when the peer's side has
        no context takeover.  At most ``limit`` bytes are produced (``None``:
        no limit): when the output would exceed it,
        :class:`~streamcore.LimitError` with close code 1009 is raised before
        inflating the rest.  Invalid deflate data, or data after a final
        deflate block, raises :class:`~streamcore.ProtocolError` with close
        code 1007.  After an error the session must not be used again.
        """
        if type(data) is not bytes:
            data = byte_view(data)  # any buffer: in order, lengths in bytes
        if not len(data) and not self._inflating:
            # A message with no payload at all (RSV1, empty frames): it
            # carries no deflate data, so the inflater is not touched; feeding
            # it the 00 00 ff ff tail alone would leave zlib inside a stored
            # block and fail the next valid message with 1007.
            return b""
        self._inflating = not fin  # inside a message that has sent deflate data
        decompressor = self._decompressor
        if decompressor is None:
            # Always the largest window, whatever was agreed: see _INFLATE_BITS.
            decompressor = self._decompressor = zlib.decompressobj(wbits=-_INFLATE_BITS)
        # zlib's max_length=0 means "unlimited"; limit + 1 lets us tell
        # "exactly at the limit" from "over it" without inflating further.
        # Clamped: zlib takes a Py_ssize_t, and a huge limit must not overflow it.
        max_length = 0 if limit is None else min(limit + 1, sys.maxsize)
        try:
            if decompressor.eof and len(data):
                raise ProtocolError(
                    "compressed data after the final deflate block", close_code=1007
                )
            out = decompressor.decompress(data, max_length)
            if limit is not None and len(out) > limit:
                raise LimitError(
                    f"decompressed message exceeds the limit of {limit} bytes "
                    "(raise max_message_size to accept it)",
                    close_code=1009,
                )
            if decompressor.eof and decompressor.unused_data:
                # A BFINAL=1 block ended the deflate stream (allowed by
                # §7.2.3.4) but more data followed in the same message.
                raise ProtocolError(
                    "compressed data after the final deflate block", close_code=1007
                )
            if fin:
                if not decompressor.eof:
                    if limit is not None:
                        max_length = min(limit - len(out) + 1, sys.maxsize)
                    more = decompressor.decompress(_TAIL, max_length)
                    if more:
                        out += more
                        if limit is not None and len(out) > limit:
                            raise LimitError(
                                f"decompressed message exceeds the limit of {limit} bytes "
                                "(raise max_message_size to accept it)",
                                close_code=1009,
                            )
                # §7.2.2 / §7.1.1: the peer reset its context (or ended its
                # deflate stream with BFINAL): start the next message afresh
                # and free the window between messages.
                if self.remote_no_context_takeover or decompressor.eof:
                    self._decompressor = None
        except zlib.error as exc:
            raise ProtocolError(f"invalid compressed data: {exc}", close_code=1007) from None
        self.bytes_before_decompression += len(data)
        self.bytes_after_decompression += len(out)
        return out
