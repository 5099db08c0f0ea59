"""One uvicorn worker for tests/test_redis_workers.py: an ASGI app whose
SSE (``GET /events``) and WebSocket (``/ws``) endpoints fan out channel
``c`` of a :class:`streamcore.integrations.redis.Broadcaster`.

Run as ``python tests/redis_worker.py PORT REDIS_PORT``.  Query parameters:
``max_queue`` and ``policy`` (the subscription's bound), ``last_event_id``
(WebSocket resume; SSE uses the ``Last-Event-ID`` header).  Each stream
starts with a marker (an SSE comment ``ready``, a WebSocket text ``ready``)
once the subscription is live, so a test knows when to publish."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import redis.asyncio as redis_asyncio  # noqa: E402
import uvicorn  # noqa: E402

from streamcore.integrations.asgi import EventSourceResponse  # noqa: E402
from streamcore.integrations.redis import Broadcaster, Overflow  # noqa: E402

CHANNEL = "c"


def make_app(redis_port: int) -> Any:
    broadcaster = Broadcaster(
        redis_asyncio.Redis(host="127.0.0.1", port=redis_port, socket_timeout=5,
                            socket_connect_timeout=1),
        maxlen=100_000, block_ms=1000, backoff=(0.02, 0.25),
    )

    def options(scope: Any) -> dict[str, Any]:
        query = parse_qs(scope.get("query_string", b"").decode())
        return {"max_queue": int(query.get("max_queue", ["1024"])[0]),
                "policy": query.get("policy", ["drop"])[0],
                "last_event_id": query.get("last_event_id", [None])[0],
                "send_timeout": float(query.get("send_timeout", ["1"])[0]) or None}

    async def sse(scope: Any, receive: Any, send: Any) -> None:
        opts = options(scope)
        send_timeout = opts.pop("send_timeout")

        def stream(last_event_id: str | None) -> Any:
            async def gen() -> Any:
                sub = broadcaster.subscribe(CHANNEL, last_event_id=last_event_id,
                                            max_queue=opts["max_queue"], policy=opts["policy"])
                async with sub:
                    await broadcaster.ready(CHANNEL)
                    yield {"comment": "ready"}
                    try:
                        async for message in sub:
                            yield message.sse  # the bytes encoded once per worker
                    except Overflow:
                        return  # end of stream: the client resumes later
            return gen()

        await EventSourceResponse(stream, ping_interval=None,
                                  send_timeout=send_timeout)(
            scope, receive, send)

    async def ws(scope: Any, receive: Any, send: Any) -> None:
        opts = options(scope)
        del opts["send_timeout"]
        if (await receive())["type"] != "websocket.connect":
            return
        await send({"type": "websocket.accept"})
        sub = broadcaster.subscribe(CHANNEL, last_event_id=opts["last_event_id"],
                                    max_queue=opts["max_queue"], policy=opts["policy"])
        async with sub:
            await broadcaster.ready(CHANNEL)
            await send({"type": "websocket.send", "text": "ready"})
            try:
                async for message in sub:
                    await send({"type": "websocket.send", "text": f"{message.id} {message.data}"
                                if message.event is None else f"{message.id} !{message.event}"})
            except Overflow:
                await send({"type": "websocket.close", "code": 1013})
            except OSError:
                pass

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await broadcaster.close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        elif scope["type"] == "websocket":
            await ws(scope, receive, send)
        elif scope["path"] == "/events":
            await sse(scope, receive, send)
        else:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})

    return app


def main() -> None:
    port, redis_port = int(sys.argv[1]), int(sys.argv[2])
    uvicorn.run(make_app(redis_port), host="127.0.0.1", port=port, log_level="warning",
                ws="streamcore.integrations.uvicorn:WebSocketProtocol", lifespan="on")


if __name__ == "__main__":
    main()
