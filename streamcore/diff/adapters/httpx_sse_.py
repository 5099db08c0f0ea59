"""httpx-sse: its incremental line decoder (``SSELineDecoder``) and field
decoder (``SSEDecoder``), driven as ``EventSource.iter_sse`` drives them:
bytes decoded to text by httpx's incremental UTF-8 decoder
(``errors="replace"``), lines, then events.  ``retry`` is reported per
event, so the outcome's retry is the last one an event carried.  Only what
the public API shows is compared: the events (each with its ``id``); the
decoder's last event ID is private state, so it is reported as unknown
(None) and never compared."""
from __future__ import annotations

import codecs

import httpx_sse
from httpx_sse import _decoders

from ..outcome import OK, Outcome


class HttpxSSE:
    name = "httpx-sse"
    protocol = "sse"
    version = getattr(httpx_sse, "__version__", "?")

    def parse(self, chunks: list[bytes]) -> Outcome:
        text = codecs.getincrementaldecoder("utf-8")(errors="replace")
        lines = _decoders.SSELineDecoder()
        dec = _decoders.SSEDecoder()
        events = []

        def run(batch: list[str]) -> None:
            for line in batch:
                sse = dec.decode(line.rstrip("\n"))
                if sse is not None:
                    events.append(sse)

        for piece in chunks:
            t = text.decode(piece)
            if t:
                run(lines.decode(t))
        t = text.decode(b"", True)
        if t:
            run(lines.decode(t))
        run(lines.flush())
        retry = None
        for e in events:
            if e.retry is not None:
                retry = e.retry
        value = (tuple((e.event or "message", e.data, e.id) for e in events), None, retry)
        return Outcome(OK, value)
