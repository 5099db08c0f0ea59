"""The streamcore demo app: one ASGI app (Starlette routing) served by uvicorn
with streamcore's ``--ws`` protocol.

- ``/events``: an SSE token stream (ids, ``retry``, keep-alives) on
  :class:`streamcore.integrations.asgi.EventSourceResponse`; each connection
  is dropped by the server after ``DROP_EVERY`` events, and the browser
  resumes with ``Last-Event-ID``.
- ``/ws/echo``: echoes text and binary (permessage-deflate when offered).
- ``/ws/chat``: a chat across workers through Redis
  (:class:`streamcore.integrations.redis.Broadcaster`).
- ``/report``: a report streamed as it is computed (no Content-Length, so
  the response is sent with chunked transfer coding).

Environment: ``DEMO_REDIS_URL`` (default ``redis://127.0.0.1:6379``) and
``DEMO_WORKER`` (a name shown on the page).
"""
from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import redis.asyncio as redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from streamcore.integrations.asgi import EventSourceResponse
from streamcore.integrations.redis import Broadcaster, Overflow

WORKER = os.environ.get("DEMO_WORKER", "worker")
DROP_EVERY = 5  # events per SSE connection before the server drops it
TOKENS = "streamcore streams chunked bodies , server-sent events and websockets".split()
PAGE = (Path(__file__).with_name("index.html")).read_text()

broadcaster: Broadcaster | None = None


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    global broadcaster
    client = redis.Redis.from_url(os.environ.get("DEMO_REDIS_URL", "redis://127.0.0.1:6379"))
    broadcaster = Broadcaster(client, maxlen=1000)
    yield
    await broadcaster.close()
    await client.aclose()


async def page(request: Request) -> HTMLResponse:
    return HTMLResponse(PAGE.replace("{{worker}}", WORKER))


async def events(request: Request) -> EventSourceResponse:
    def stream(last_event_id: str | None) -> AsyncIterator[dict[str, Any]]:
        start = 0 if last_event_id is None else int(last_event_id) + 1

        async def gen() -> AsyncIterator[dict[str, Any]]:
            for n in range(start, start + DROP_EVERY):  # then the server drops it
                token = TOKENS[n % len(TOKENS)]
                yield {"data": f"{n} {token} (resumed after {last_event_id})",
                       "id": str(n), "event": "token"}
                await asyncio.sleep(0.2)
        return gen()
    return EventSourceResponse(stream, retry=500, ping_interval=1.0)


async def echo(ws: WebSocket) -> None:
    await ws.accept()
    try:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") is not None:
                await ws.send_text(message["text"])
            else:
                await ws.send_bytes(message["bytes"])
    except WebSocketDisconnect:
        pass


async def chat(ws: WebSocket) -> None:
    assert broadcaster is not None
    await ws.accept()
    subscription = broadcaster.subscribe("chat", max_queue=256)
    await broadcaster.ready("chat")

    async def forward() -> None:
        try:
            async for message in subscription:
                await ws.send_text(message.data)
        except Overflow:
            await ws.close(1008, "too slow")

    task = asyncio.create_task(forward())
    await ws.send_text(f"[{WORKER}] joined")
    try:
        while True:
            text = await ws.receive_text()
            await broadcaster.publish("chat", f"[{WORKER}] {text}")
    except WebSocketDisconnect:
        pass
    finally:
        subscription.close()
        task.cancel()


async def report(request: Request) -> StreamingResponse:
    async def rows() -> AsyncIterator[bytes]:
        yield b"streamcore report, one line per step\n"
        for step in range(1, 11):
            await asyncio.sleep(0.1)
            yield f"step {step:2d}: {step * step:4d}\n".encode()
        yield b"done\n"
    return StreamingResponse(rows(), media_type="text/plain")


app = Starlette(
    routes=[Route("/", page), Route("/events", events), Route("/report", report),
            WebSocketRoute("/ws/echo", echo), WebSocketRoute("/ws/chat", chat)],
    lifespan=lifespan,
)
