"""Send-side fuzzing of the WebSocket Connection, on both twins.

Random sequences of ``send_text``/``send_binary`` (``final=False``
fragments included), ``send_ping``, ``send_pong`` and ``send_close``, with
control frames between fragments, the peer's Close arriving at any point and
its echo taken with ``data_to_send()``; client and server roles;
permessage-deflate off or negotiated on both ends (several parameter sets);
every buffer kind for the payloads.

What a call returns is decoded, call by call, by two strict receivers of
the opposite role:

(a) our own Connection (the same twin, ``assemble=True``, no size limit,
    deflate as negotiated), which must give exactly the completed messages
    and control frames the model expects;
(b) the ``websockets`` library's Sans-I/O ``Protocol`` (with its own
    permessage-deflate extension when deflate is on), which must accept
    every frame and give exactly the expected frames (opcode, FIN, payload).

A model of the state table (streamcore/ws/_connection.py) says which calls
are legal: an illegal one must raise ``StateError`` (a bad argument
``ValueError``) and emit nothing, with stats and state unchanged.  The
header bits are checked as well: RSV1 exactly on whole messages when
deflate is on, the mask bit exactly on a client's frames.  Both twins must
produce the same log (byte for byte as a server; a client's frames differ
only in their random mask keys, so there the decoded log is compared).

One websockets rule is stricter than RFC 6455: it refuses a Close that
arrives in the middle of a fragmented message ("incomplete fragmented
message"), which §5.4 allows (control frames may be injected between
fragments).  There the check is that websockets parsed exactly our Close
before refusing.

fuzz/fuzz_ws_send.py drives :func:`run` with atheris; the hypothesis test
below is sized for ``make test`` (derandomized, no example database).
"""
from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from helpers import BUFFER_KINDS, as_buffer, both_twins
from hypothesis import example, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ProtocolError as WsProtocolError
from websockets.extensions.permessage_deflate import PerMessageDeflate as WsDeflate
from websockets.frames import Opcode
from websockets.protocol import Protocol, Side

from streamcore import StateError
from streamcore.ws import Binary, Close, Ping, Pong, State, Text
from streamcore.ws.deflate import PerMessageDeflate

WS = both_twins("ws")
TWIN_NAMES = ("python", "cython")
ROLES = ("client", "server")

#: what the client offers (the server accepts with its defaults); None: no deflate
DEFLATE_OFFERS: tuple[dict[str, Any] | None, ...] = (
    None,
    {},
    {"client_no_context_takeover": True, "server_no_context_takeover": True},
    {"client_max_window_bits": 9, "server_max_window_bits": 10},
    {"client_max_window_bits": 8, "server_max_window_bits": 8,
     "server_no_context_takeover": True},
)

CONT, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
OPCODES = {Opcode.CONT: CONT, Opcode.TEXT: TEXT, Opcode.BINARY: BINARY, Opcode.CLOSE: CLOSE,
           Opcode.PING: PING, Opcode.PONG: PONG}
VALID_CODES = (None, 1000, 1001, 1003, 1011, 3000, 4999)
INVALID_CODES = (999, 1004, 1005, 1006, 1015, 2999, 5000)


def negotiate(offer: dict[str, Any]) -> PerMessageDeflate:
    """The parameters both ends agree on for this offer (as a handshake makes them)."""
    ours = PerMessageDeflate(**offer)
    agreed = PerMessageDeflate().accept_offer(ours.offer_params())
    assert agreed is not None
    client_side = ours.accept_response(agreed.response_params())
    assert client_side == agreed
    return agreed


def websockets_extension(agreed: PerMessageDeflate, sender: str) -> WsDeflate:
    """websockets' extension for the end that receives what ``sender`` sends.

    Only its decompressor is used: websockets refuses a local window of 8
    bits (zlib cannot compress with it), so its own side says 9 there."""
    other = "server" if sender == "client" else "client"
    return WsDeflate(
        remote_no_context_takeover=getattr(agreed, f"{sender}_no_context_takeover"),
        local_no_context_takeover=getattr(agreed, f"{other}_no_context_takeover"),
        remote_max_window_bits=getattr(agreed, f"{sender}_max_window_bits") or 15,
        local_max_window_bits=max(9, getattr(agreed, f"{other}_max_window_bits") or 15),
    )


class Model:
    """What the state table says the connection under test must do."""

    def __init__(self, deflate: bool) -> None:
        self.deflate = deflate
        self.close_sent = False  # our Close (or the echo) was framed
        self.close_seen = False  # the peer's Close arrived
        self.echo: tuple[int | None] | None = None  # the queued echo's code
        self.fragmented: int | None = None  # TEXT/BINARY of a message being sent in fragments
        self.parts: list[bytes] = []  # its payloads so far

    @property
    def state(self) -> State:
        if self.close_sent and self.close_seen:
            return State.CLOSED
        return State.CLOSING if self.close_sent or self.close_seen else State.OPEN

    def data(self, opcode: int, payload: bytes, final: bool) -> Any:
        """A send_text/send_binary: the frame and the completed message, or the error."""
        if self.close_sent:
            return StateError
        if self.fragmented is not None and self.fragmented != opcode:
            return StateError
        whole = final and self.fragmented is None
        frame = (opcode if self.fragmented is None else CONT, final, self.deflate and whole,
                 payload)
        self.parts.append(payload)
        self.fragmented = None if final else opcode
        message = None
        if final:
            body = b"".join(self.parts)
            self.parts = []
            message = Text(body.decode("utf-8")) if opcode == TEXT else Binary(body)
        return [frame], [message] if message is not None else []

    def ping(self, payload: bytes) -> Any:
        if self.close_sent:
            return StateError
        if len(payload) > 125:
            return ValueError
        return [(PING, True, False, payload)], [Ping(payload)]

    def pong(self, payload: bytes) -> Any:
        if self.state is State.CLOSED:
            return [], []  # the peer reads nothing after its Close: b""
        if len(payload) > 125:
            return ValueError
        return [(PONG, True, False, payload)], [Pong(payload)]

    def close(self, code: int | None, reason: str) -> Any:
        payload = b"" if code is None else code.to_bytes(2, "big") + reason.encode("utf-8")
        if (code is None and reason) or code in INVALID_CODES or len(payload) > 125:
            return ValueError
        if self.close_sent:
            return StateError
        self.close_sent = True
        self.echo = None  # our Close goes out in place of a queued echo
        return [(CLOSE, True, False, payload)], [Close(code, reason)]

    def peer_close(self, code: int | None) -> None:
        self.close_seen = True
        if not self.close_sent:
            self.echo = (code,)

    def take(self) -> Any:
        if self.echo is None:
            return [], []
        (code,) = self.echo
        self.echo = None
        self.close_sent = True
        payload = b"" if code is None else code.to_bytes(2, "big")
        return [(CLOSE, True, False, payload)], [Close(code, "")]


def header_bits(out: bytes) -> tuple[int, bool, bool, bool]:
    """(opcode, FIN, RSV1, MASK) of the single frame in ``out``."""
    return out[0] & 0x0F, bool(out[0] & 0x80), bool(out[0] & 0x40), bool(out[1] & 0x80)


class Observers:
    """The two strict receivers of the opposite role, fed call by call.

    After our Close a receiver reads nothing more (RFC 6455 §1.4; both
    implementations discard), so what is sent after it (Pongs) is decoded by
    fresh receivers, one per call."""

    def __init__(self, twin: ModuleType, role: str, agreed: PerMessageDeflate | None) -> None:
        self.twin, self.role, self.agreed = twin, role, agreed
        self.peer_role = "server" if role == "client" else "client"
        self.ours, self.theirs = self._ours(), self._theirs()
        self.after_close = False

    def _ours(self) -> Any:
        return self.twin.Connection(self.peer_role, max_message_size=None, deflate=self.agreed)

    def _theirs(self) -> Protocol:
        proto = Protocol(Side.SERVER if self.peer_role == "server" else Side.CLIENT,
                         max_size=None)
        if self.agreed is not None:
            proto.extensions = [websockets_extension(self.agreed, self.role)]
        return proto

    def feed(self, out: bytes, frames: list[Any], mid_message: bool) -> tuple[Any, Any]:
        """Decode ``out`` both ways; return (our events, websockets' frames)."""
        if self.after_close:
            self.ours, self.theirs = self._ours(), self._theirs()
        events = self.ours.receive_data(out)
        self.theirs.receive_data(out)
        got = [(OPCODES[f.opcode], f.fin, f.data) for f in self.theirs.events_received()]
        exc = self.theirs.parser_exc
        if frames and frames[0][0] == CLOSE:
            self.after_close = True
            if mid_message:
                # websockets' stricter rule (see the module docstring): it
                # parsed our Close, then refused it
                assert isinstance(exc, WsProtocolError), exc
                assert "incomplete fragmented message" in str(exc)
                close = self.theirs.close_rcvd
                assert close is not None
                payload = frames[0][3]
                code = int.from_bytes(payload[:2], "big") if payload else 1005
                assert (close.code, close.reason) == (code, payload[2:].decode("utf-8"))
                return events, [(CLOSE, True, payload)]
        assert exc is None, f"websockets refused {out!r}: {exc!r}"
        return events, got


def run(twin: ModuleType, role: str, offer: dict[str, Any] | None, ops: list[tuple[Any, ...]],
        wrap: Callable[[bytes, str], Any] = as_buffer) -> list[Any]:
    """Run ``ops`` on a ``twin`` Connection of ``role``; check every call
    against the model and both receivers; return the log (for the twin
    differential).  ``wrap(payload, kind)`` makes the payload buffers."""
    agreed = None if offer is None else negotiate(offer)
    conn = twin.Connection(role, deflate=agreed)
    peer = twin.Connection("server" if role == "client" else "client", deflate=agreed)
    model = Model(agreed is not None)
    seen = Observers(twin, role, agreed)
    log: list[Any] = []
    frames_out = bytes_out = messages_out = 0
    for op in ops:
        name = op[0]
        before = (conn.stats, conn.state, conn.echo_pending)
        mid_message = model.fragmented is not None
        if name == "peer_close":
            if model.close_seen:
                continue  # the peer sends one Close; after it, nothing
            code = op[1]
            events = conn.receive_data(peer.send_close(code))
            assert events == [Close(code, "")], events
            model.peer_close(code)
            log.append((name, code, conn.state, conn.echo_pending))
            assert (conn.state, conn.echo_pending) == (model.state, model.echo is not None)
            continue
        try:
            if name == "text":
                expected = model.data(TEXT, op[1].encode("utf-8"), op[2])
                out = conn.send_text(op[1], final=op[2])
            elif name == "binary":
                expected = model.data(BINARY, op[1], op[2])
                out = conn.send_binary(wrap(op[1], op[3]), final=op[2])
            elif name == "ping":
                expected = model.ping(op[1])
                out = conn.send_ping(wrap(op[1], op[2]))
            elif name == "pong":
                expected = model.pong(op[1])
                out = conn.send_pong(wrap(op[1], op[2]))
            elif name == "close":
                expected = model.close(op[1], op[2])
                out = conn.send_close(op[1], op[2])
            else:
                assert name == "take"
                expected = model.take()
                out = conn.data_to_send()
        except (StateError, ValueError) as exc:
            assert type(exc) is expected, f"{op!r}: {exc!r}, expected {expected!r}"
            # refused: nothing was framed, nothing changed
            assert (conn.stats, conn.state, conn.echo_pending) == before, op
            log.append((name, type(exc).__name__, str(exc)))
            continue
        assert isinstance(expected, tuple), f"{op!r} returned {out!r}, expected {expected!r}"
        frames, messages = expected
        assert type(out) is bytes
        if not frames:
            assert out == b"", (op, out)
            log.append((name, b""))
            continue
        opcode, fin, rsv1, payload = frames[0]
        assert header_bits(out) == (opcode, fin, rsv1, role == "client"), (op, out[:2])
        events, got = seen.feed(out, frames, mid_message)
        assert events == messages, (op, events, messages)
        assert [type(e) for e in events] == [type(m) for m in messages]
        assert got == [(opcode, fin, payload)], (op, got)
        frames_out += 1
        bytes_out += len(out)
        messages_out += fin and opcode < 8
        stats = conn.stats
        assert (stats.frames_out, stats.bytes_out, stats.messages_out) == (
            frames_out, bytes_out, messages_out)
        assert (conn.state, conn.echo_pending) == (model.state, model.echo is not None)
        # a server's bytes are the same on both twins; a client's differ in
        # their mask keys, so the log holds what they decode to
        log.append((name, out if role == "server" else got, events, stats, conn.state))
    return log


def run_both(role: str, offer: dict[str, Any] | None, ops: list[tuple[Any, ...]],
             wrap: Callable[[bytes, str], Any] = as_buffer) -> list[Any]:
    """:func:`run` on both twins; the logs must be equal."""
    logs = [run(twin, role, offer, ops, wrap) for twin in WS]
    assert logs[0] == logs[1], f"twins disagree on {ops!r}:\n{logs[0]!r}\n{logs[1]!r}"
    return logs[0]


# -- the hypothesis test ------------------------------------------------------------------

# payloads often a multiple of 4 bytes long, so that "itemsize4" is a real
# 4-byte-item view; up to 140 bytes, so the 125-byte control limit is met
payloads = st.one_of(
    st.binary(max_size=140),
    st.integers(0, 35).flatmap(lambda n: st.binary(min_size=4 * n, max_size=4 * n)),
)
kinds = st.sampled_from(BUFFER_KINDS)
data_ops = st.one_of(
    st.tuples(st.just("text"), st.text(max_size=20), st.booleans()),
    st.tuples(st.just("binary"), payloads, st.booleans(), kinds),
)
control_ops = st.one_of(
    st.tuples(st.just("ping"), payloads, kinds),
    st.tuples(st.just("pong"), payloads, kinds),
)
closing_ops = st.one_of(
    # "é" * 61: a 124-byte payload (the most allowed is 125), * 62: one too many
    st.tuples(st.just("close"), st.sampled_from(VALID_CODES + INVALID_CODES[:2]),
              st.sampled_from(["", "bye", "é" * 61, "é" * 62])),
    st.tuples(st.just("peer_close"), st.sampled_from(VALID_CODES)),
    st.tuples(st.just("take")),
)


@st.composite
def op_sequences(draw: Any) -> list[tuple[Any, ...]]:
    """Data and control frames, with up to three closing steps put anywhere
    (so that messages mostly go on long enough for controls to come between
    their fragments before a Close ends the sending)."""
    seq = draw(st.lists(st.one_of(data_ops, control_ops), max_size=12))
    for _ in range(draw(st.integers(0, 3))):
        seq.insert(draw(st.integers(0, len(seq))), draw(closing_ops))
    return seq

FRAGMENTS_WITH_CONTROLS = [
    ("text", "caf", False), ("ping", b"1234", "itemsize4"), ("text", "é", False),
    ("pong", b"", "strided"), ("binary", b"x", True, "bytes"), ("text", "!", True),
    ("binary", bytes(range(8)), False, "memoryview"), ("ping", b"p" * 126, "bytes"),
    ("binary", b"abcd", True, "itemsize4"), ("close", 1000, "bye"), ("text", "late", True),
    ("pong", b"after", "bytearray"), ("ping", b"", "bytes"), ("close", 1000, ""),
]
PEER_CLOSES_FIRST = [
    ("binary", b"ab", False, "strided"), ("peer_close", 1001), ("binary", b"cd", True, "bytes"),
    ("ping", b"still", "bytes"), ("take",), ("pong", b"x" * 200, "bytes"), ("take",),
    ("text", "no", True),
]


@settings(max_examples=300, derandomize=True, database=None, deadline=None)
@given(op_sequences(), st.sampled_from(ROLES), st.sampled_from(DEFLATE_OFFERS))
@example(FRAGMENTS_WITH_CONTROLS, "client", {})
@example(FRAGMENTS_WITH_CONTROLS, "server", None)
@example(PEER_CLOSES_FIRST, "server", {"client_max_window_bits": 9,
                                       "server_max_window_bits": 10})
@example(PEER_CLOSES_FIRST, "client", None)
def test_sent_frames_decode_exactly_on_both_receivers(ops: list[Any], role: str,
                                                      offer: dict[str, Any] | None) -> None:
    run_both(role, offer, ops)


@pytest.mark.parametrize("twin", WS, ids=TWIN_NAMES)
@pytest.mark.parametrize("offer", DEFLATE_OFFERS, ids=repr)
@pytest.mark.parametrize("kind", BUFFER_KINDS)
def test_every_kind_every_offer_round_trips(twin: ModuleType, offer: Any, kind: str) -> None:
    # a compressible message sent whole (compressed when deflate is on), the
    # same message in fragments around a Ping, then the close handshake
    body = b"streamcore " * 40  # 440 bytes: a real "I" view for itemsize4
    log = run(twin, "client", offer, [
        ("binary", body, True, kind), ("binary", body[:200], False, kind),
        ("ping", body[:4], kind), ("binary", body[200:], True, kind),
        ("close", 1000, "done"), ("peer_close", 1000),
    ])
    assert [entry[0] for entry in log] == ["binary", "binary", "ping", "binary", "close",
                                           "peer_close"]
    assert log[0][2] == [Binary(body)] and log[3][2] == [Binary(body)]
    assert log[-1][2:] == (State.CLOSED, False)
