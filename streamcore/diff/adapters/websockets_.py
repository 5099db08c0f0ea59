"""websockets' Sans-I/O ``Protocol`` as a server in the OPEN state.

The Sans-I/O layer returns frames and leaves assembly and UTF-8 decoding to
the I/O layer; this adapter assembles them as websockets' ``Assembler``
does: a text message goes through an incremental UTF-8 decoder one frame at
a time (``decoder.decode(frame.data, frame.fin)``), so invalid UTF-8 is found
at the end of the frame that holds it, as a websockets server finds it.

Where the input ends is asked of websockets itself: ``receive_eof()`` at a
frame boundary raises "unexpected end of stream", inside a frame (even one
whose header arrived without any payload) it reports how many bytes were
missing."""
from __future__ import annotations

import codecs

import websockets
from websockets.frames import Close, Frame, Opcode
from websockets.protocol import Protocol, Side, State

from ..outcome import ERROR, INCOMPLETE, OK, Outcome

_AT_BOUNDARY = "unexpected end of stream"


class Websockets:
    name = "websockets"
    protocol = "ws"
    version = getattr(websockets, "__version__", "?")

    def parse(self, chunks: list[bytes]) -> Outcome:
        proto = Protocol(Side.SERVER, state=State.OPEN, max_size=None)
        messages: list[tuple[str, object]] = []
        current: list[str | bytes] = []
        decoder: codecs.IncrementalDecoder | None = None
        fed = 0
        for piece in chunks:
            fed += len(piece)
            proto.receive_data(piece)
            for frame in proto.events_received():
                if not isinstance(frame, Frame):  # pragma: no cover - a server in OPEN gets frames only
                    continue
                op = frame.opcode
                if op is Opcode.PING:
                    messages.append(("ping", bytes(frame.data)))
                elif op is Opcode.PONG:
                    messages.append(("pong", bytes(frame.data)))
                elif op is Opcode.CLOSE:
                    close = Close.parse(bytes(frame.data)) if frame.data else None
                    code = close.code if close is not None else None
                    messages.append(("close", (code, close.reason if close is not None else "")))
                    return Outcome(OK, tuple(messages))
                else:
                    if op is Opcode.TEXT:
                        decoder = codecs.getincrementaldecoder("utf-8")()
                    elif op is Opcode.BINARY:
                        decoder = None
                    if decoder is not None:
                        try:
                            current.append(decoder.decode(bytes(frame.data), frame.fin))
                        except UnicodeDecodeError as exc:
                            return Outcome(ERROR, tuple(messages), None, "1007", fed, str(exc))
                    else:
                        current.append(bytes(frame.data))
                    if frame.fin:
                        if decoder is not None:
                            messages.append(("text", "".join(p for p in current if isinstance(p, str))))
                        else:
                            messages.append(("binary", b"".join(p for p in current if isinstance(p, bytes))))
                        current, decoder = [], None
            if proto.parser_exc is not None:
                code = proto.close_sent.code if proto.close_sent is not None else 1002
                return Outcome(ERROR, tuple(messages), None, str(int(code)), fed, str(proto.parser_exc))
        proto.receive_eof()
        end = proto.parser_exc
        mid_frame = isinstance(end, EOFError) and str(end) != _AT_BOUNDARY
        idle = not current and decoder is None and not mid_frame
        return Outcome(OK if idle else INCOMPLETE, tuple(messages))
