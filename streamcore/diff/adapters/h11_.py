"""h11: the request head, then the chunked body; ``trailing_data`` is the rest."""
from __future__ import annotations

import h11

from ..outcome import ERROR, INCOMPLETE, OK, Outcome
from ._http import HEAD


class H11Chunked:
    name = "h11"
    protocol = "chunked"
    version = str(getattr(h11, "__version__", "?"))

    def parse(self, chunks: list[bytes]) -> Outcome:
        conn = h11.Connection(h11.SERVER)
        body: list[bytes] = []
        trailers: list[tuple[bytes, bytes]] = []
        pending = [HEAD, *chunks]
        try:
            while True:
                ev = conn.next_event()
                if ev is h11.NEED_DATA:
                    if not pending:
                        return Outcome(INCOMPLETE, (b"".join(body), tuple(trailers)))
                    conn.receive_data(pending.pop(0))
                    continue
                if isinstance(ev, h11.Data):
                    body.append(bytes(ev.data))
                elif isinstance(ev, h11.EndOfMessage):
                    trailers = [(bytes(n).lower(), bytes(v)) for n, v in ev.headers]
                    rest = bytes(conn.trailing_data[0]) + b"".join(pending)
                    return Outcome(OK, (b"".join(body), tuple(trailers)), rest)
        except h11.RemoteProtocolError as exc:
            return Outcome(ERROR, None, None, "RemoteProtocolError", None, str(exc))
