"""One uvicorn set-up for the tests: a real ``uvicorn.Server`` on 127.0.0.1,
in-process, on a port of its own, with streamcore's ``--ws`` class unless the
test picks another."""
from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn

from streamcore.integrations.uvicorn import WebSocketProtocol


class Server:
    """A running uvicorn: ``port``, ``url`` (ws://), ``http_url``, ``protocols()``."""

    def __init__(self, server: uvicorn.Server, port: int) -> None:
        self.server = server
        self.port = port
        self.url = f"ws://127.0.0.1:{port}"
        self.http_url = f"http://127.0.0.1:{port}"

    def protocols(self) -> list[WebSocketProtocol]:
        """Our protocol objects among the server's open connections."""
        return [p for p in self.server.server_state.connections if isinstance(p, WebSocketProtocol)]


@asynccontextmanager
async def serving(app: Any, ws_class: type | str = WebSocketProtocol,
                  **options: Any) -> AsyncIterator[Server]:
    """Serve ``app`` until the block ends (then uvicorn's graceful shutdown)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, ws=ws_class, lifespan="off", log_level="warning", **options)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()  # uvicorn failed to start: its error, not a hang
        await asyncio.sleep(0.01)
    try:
        yield Server(server, port)
    finally:
        server.should_exit = True
        await task
        sock.close()
