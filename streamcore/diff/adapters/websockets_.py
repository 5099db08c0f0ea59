"""websockets' Sans-I/O ``Protocol`` as a server in the OPEN state.

The Sans-I/O layer returns frames and leaves assembly and UTF-8 decoding to
the I/O layer (``Assembler``), which decodes a text message when it is
complete; this adapter does the same, so invalid UTF-8 is found at the end
of the message, as a websockets server finds it."""
from __future__ import annotations

import websockets
from websockets.frames import Close, Opcode
from websockets.protocol import Protocol, Side, State

from ..outcome import ERROR, INCOMPLETE, OK, Outcome


class Websockets:
    name = "websockets"
    protocol = "ws"
    version = getattr(websockets, "__version__", "?")

    def parse(self, chunks: list[bytes]) -> Outcome:
        proto = Protocol(Side.SERVER, state=State.OPEN, max_size=None)
        messages: list[tuple[str, object]] = []
        current: list[bytes] = []
        opcode = None
        fed = 0
        for piece in chunks:
            fed += len(piece)
            proto.receive_data(piece)
            for frame in proto.events_received():
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
                    if op is not Opcode.CONT:
                        opcode = op
                    current.append(bytes(frame.data))
                    if frame.fin:
                        payload = b"".join(current)
                        current = []
                        if opcode is Opcode.TEXT:
                            try:
                                messages.append(("text", payload.decode("utf-8")))
                            except UnicodeDecodeError as exc:
                                return Outcome(ERROR, tuple(messages), None, "1007", fed, str(exc))
                        else:
                            messages.append(("binary", payload))
                        opcode = None
            if proto.parser_exc is not None:
                code = proto.close_sent.code if proto.close_sent is not None else 1002
                return Outcome(ERROR, tuple(messages), None, str(int(code)), fed, str(proto.parser_exc))
        # a frame still arriving leaves bytes in the reader (a frame whose
        # header came but none of its payload is not seen: a known blind spot)
        idle = not current and not proto.reader.buffer
        return Outcome(OK if idle else INCOMPLETE, tuple(messages))
