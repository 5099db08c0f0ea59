"""One asyncio server for WebSocket, a chunked report and an SSE stream, and
streamcore's own client reading them back (run it: it exits when done).

    python examples/asyncio_http_sse.py
"""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from streamcore.integrations.asyncio import (
    ChunkedResponse,
    EventStreamResponse,
    Request,
    Response,
    WebSocket,
    connect,
    event_source,
    request,
    serve,
)


async def echo(ws: WebSocket) -> None:
    async for message in ws:
        await ws.send(message)


def ticks(last_event_id: str | None) -> AsyncIterator[dict[str, Any]]:
    """Three events per connection, resuming after the client's Last-Event-ID."""
    start = int(last_event_id) + 1 if last_event_id else 0

    async def gen() -> AsyncIterator[dict[str, Any]]:
        for k in range(start, start + 3):
            yield {"data": f"tick {k}", "id": str(k)}
            await asyncio.sleep(0.01)

    return gen()


async def app(request: Request) -> Any:
    if request.path == "/report":
        async def rows() -> AsyncIterator[bytes]:
            for k in range(5):
                yield b"row %d\n" % k
        return ChunkedResponse(rows(), trailers=lambda: [("x-rows", "5")])
    if request.path == "/events":
        return EventStreamResponse(ticks, retry=10)
    return Response("not here", status=404)


async def main() -> None:
    server = await serve(echo, "127.0.0.1", 0, http=app)
    port = server.sockets[0].getsockname()[1]
    async with await request(f"http://127.0.0.1:{port}/report") as response:
        body = b"".join([data.data async for data in response.aiter_data()])
        print(response.status, body.decode().split(), response.trailers)
    # the stream ends after three events; event_source reconnects with Last-Event-ID
    events = [e async for e in event_source(f"http://127.0.0.1:{port}/events",
                                            max_reconnects=2)]
    print([(e.id, e.data) for e in events])
    assert [e.id for e in events] == [str(k) for k in range(9)]
    ws = await connect(f"ws://127.0.0.1:{port}/")
    await ws.send("hello")
    print(await ws.recv())
    await ws.close()
    server.close()
    await server.wait_closed()


if __name__ == "__main__":
    asyncio.run(main())
