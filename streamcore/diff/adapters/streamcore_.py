"""Our twins: ``streamcore-py`` (the reference) and ``streamcore-c``.

Both are loaded side by side (the twin modules directly, whatever
:data:`streamcore.IMPLEMENTATION` chose) and compared field by field.
Limits are opened wide so that only the grammar decides.
"""
from __future__ import annotations

import importlib

from ... import ProtocolError, StreamError
from ..outcome import ERROR, INCOMPLETE, OK, Outcome


def _twin(protocol: str, kind: str):  # type: ignore[no-untyped-def]
    return importlib.import_module(f"streamcore.{protocol}._{kind}")


class _Chunked:
    protocol = "chunked"
    exact = True
    kind = "py"

    def __init__(self) -> None:
        self.name = f"streamcore-{self.kind}"
        self._mod = _twin("chunked", self.kind)

    def parse(self, chunks: list[bytes]) -> Outcome:
        dec = self._mod.ChunkedDecoder(max_chunk_size=None, max_line_size=None, max_trailers_size=None)
        body, trailers = [], []
        rest = []
        try:
            for piece in chunks:
                if dec.done:
                    rest.append(piece)
                    continue
                for ev in dec.feed(piece):
                    if isinstance(ev, self._mod.Data):
                        body.append(ev.data)
                    elif isinstance(ev, self._mod.Trailers):
                        trailers.extend(ev.headers)
            if not dec.done:
                return Outcome(INCOMPLETE, (b"".join(body), tuple(trailers)))
        except StreamError as exc:
            return Outcome(ERROR, None, None, type(exc).__name__, getattr(exc, "offset", None), str(exc))
        return Outcome(OK, (b"".join(body), tuple(trailers)), dec.unused_data + b"".join(rest))


class ChunkedPy(_Chunked):
    kind = "py"


class ChunkedC(_Chunked):
    kind = "c"


class _SSE:
    protocol = "sse"
    exact = True
    kind = "py"

    def __init__(self) -> None:
        self.name = f"streamcore-{self.kind}"
        self._mod = _twin("sse", self.kind)

    def parse(self, chunks: list[bytes]) -> Outcome:
        dec = self._mod.SSEDecoder(max_event_size=None, max_line_size=None)
        events = []
        try:
            for piece in chunks:
                events.extend(dec.feed(piece))
            dec.eof()
        except StreamError as exc:
            return Outcome(ERROR, None, None, type(exc).__name__, getattr(exc, "offset", None), str(exc))
        value = (tuple((e.event, e.data, e.id) for e in events), dec.last_event_id, dec.retry)
        return Outcome(OK, value)


class SSEPy(_SSE):
    kind = "py"


class SSEC(_SSE):
    kind = "c"


_KINDS = {"Text": "text", "Binary": "binary", "Ping": "ping", "Pong": "pong", "Close": "close"}


class _WS:
    """A server receiving the client's frames."""

    protocol = "ws"
    exact = True
    kind = "py"

    def __init__(self) -> None:
        self.name = f"streamcore-{self.kind}"
        self._mod = _twin("ws", self.kind)

    def parse(self, chunks: list[bytes]) -> Outcome:
        conn = self._mod.Connection("server", max_message_size=None)
        messages = []
        fed = 0
        try:
            for piece in chunks:
                fed += len(piece)
                for ev in conn.receive_data(piece):
                    kind = _KINDS[type(ev).__name__]
                    if kind == "close":
                        messages.append((kind, (ev.code, ev.reason)))
                    else:
                        messages.append((kind, ev.data))
        except ProtocolError as exc:
            return Outcome(ERROR, tuple(messages), None, str(exc.close_code), fed, str(exc))
        if messages and messages[-1][0] == "close":
            return Outcome(OK, tuple(messages))
        status = OK if conn._rx.idle else INCOMPLETE
        return Outcome(status, tuple(messages))


class WSPy(_WS):
    kind = "py"


class WSC(_WS):
    kind = "c"
