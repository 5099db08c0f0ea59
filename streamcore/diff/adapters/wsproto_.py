"""wsproto as a server after the handshake.  A parse failure shows as a
``CloseConnection`` while the connection is still OPEN (a peer's Close
moves it to REMOTE_CLOSING)."""
from __future__ import annotations

import wsproto
from wsproto import events as ev
from wsproto.connection import Connection, ConnectionState, ConnectionType

from ..outcome import ERROR, INCOMPLETE, OK, Outcome


class Wsproto:
    name = "wsproto"
    protocol = "ws"
    version = getattr(wsproto, "__version__", "?")

    def parse(self, chunks: list[bytes]) -> Outcome:
        conn = Connection(ConnectionType.SERVER)
        messages: list[tuple[str, object]] = []
        text: list[str] = []
        binary: list[bytes] = []
        fed = 0
        pending = False
        for piece in chunks:
            if conn.state is not ConnectionState.OPEN:
                break
            fed += len(piece)
            conn.receive_data(piece)
            for e in conn.events():
                if isinstance(e, ev.TextMessage):
                    text.append(e.data)
                    pending = not e.message_finished
                    if e.message_finished:
                        messages.append(("text", "".join(text)))
                        text = []
                elif isinstance(e, ev.BytesMessage):
                    binary.append(bytes(e.data))
                    pending = not e.message_finished
                    if e.message_finished:
                        messages.append(("binary", b"".join(binary)))
                        binary = []
                elif isinstance(e, ev.Ping):
                    messages.append(("ping", bytes(e.payload)))
                elif isinstance(e, ev.Pong):
                    messages.append(("pong", bytes(e.payload)))
                elif isinstance(e, ev.CloseConnection):
                    if conn.state is ConnectionState.OPEN:
                        return Outcome(ERROR, tuple(messages), None, str(int(e.code)), fed, e.reason or "")
                    messages.append(("close", (None if e.code == 1005 else int(e.code), e.reason or "")))
                    return Outcome(OK, tuple(messages))
        # wsproto buffers partial frames itself; a message or frame still open is incomplete
        frames = conn._proto._frame_decoder
        idle = not pending and frames.header is None and len(frames.buffer) == 0
        return Outcome(OK if idle else INCOMPLETE, tuple(messages))

