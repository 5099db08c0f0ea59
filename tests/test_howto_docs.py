"""docs/howto-starlette.md runs as written: its Python blocks are joined into
one module, served by uvicorn with streamcore's ``--ws`` protocol (two
worker processes on one real redis-server, as the how-to describes), and
driven with httpx-sse, httpx and the ``websockets`` client, on both twins."""
from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as redis
import websockets
from httpx_sse import connect_sse

from streamcore.integrations.redis import Broadcaster

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # benchmarks/ (python -m pytest has it already)
    sys.path.append(str(ROOT))

from benchmarks.redis_server import RedisServer, free_port, wait_port  # noqa: E402

HOWTO = ROOT / "docs" / "howto-starlette.md"
REDIS_URL_IN_DOC = '"redis://127.0.0.1:6379"'
# What the how-to leaves to the reader: mounting its endpoints in one app.
APP_TAIL = """
from starlette.routing import Route, WebSocketRoute

app = Starlette(
    routes=[Route("/ticks", ticks), Route("/news", news),
            WebSocketRoute("/ws/echo", echo), WebSocketRoute("/chat", chat)],
    lifespan=lifespan,
)
"""


def howto_module() -> str:
    text = HOWTO.read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    source = "\n\n".join(blocks)
    assert REDIS_URL_IN_DOC in source, "the how-to's Redis URL changed: update this test"
    source = source.replace(REDIS_URL_IN_DOC, 'os.environ["HOWTO_REDIS_URL"]')
    return "import os\n" + source + APP_TAIL


class Servers:
    """redis-server, two uvicorn workers of the how-to's Starlette app, and
    one of its FastAPI app."""

    def __init__(self, directory: Path, twin: str) -> None:
        (directory / "howto_app.py").write_text(howto_module(), encoding="utf-8")
        self.procs: list[subprocess.Popen[bytes]] = []
        self.redis = RedisServer(str(directory))
        self.redis.start()
        assert self.redis.proc is not None
        self.procs.append(self.redis.proc)
        self.redis_port = self.redis.port
        self.redis_url = self.redis.url
        env = dict(os.environ, HOWTO_REDIS_URL=self.redis_url,
                   PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        env.pop("STREAMCORE_NO_EXTENSIONS", None)
        if twin == "python":
            env["STREAMCORE_NO_EXTENSIONS"] = "1"
        self.workers = [self._uvicorn("howto_app:app", directory, env) for _ in range(2)]
        self.fastapi = self._uvicorn("howto_app:api", directory, env)

    def _uvicorn(self, target: str, directory: Path, env: dict[str, str]) -> str:
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", target, "--app-dir", str(directory),
             "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
             "--ws", "streamcore.integrations.uvicorn:WebSocketProtocol"],
            cwd=str(directory), env=env)
        self.procs.append(proc)
        wait_port(port, proc, target)
        return f"127.0.0.1:{port}"

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


@pytest.fixture(scope="module", params=["compiled", "python"])
def servers(request: pytest.FixtureRequest, tmp_path_factory: Any) -> Iterator[Servers]:
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed (make system-deps installs it)")
    running = Servers(tmp_path_factory.mktemp("howto"), request.param)
    yield running
    running.stop()


def data_events(url: str, count: int, headers: dict[str, str] | None = None) -> list[Any]:
    """The first ``count`` events that carry data (httpx-sse also dispatches
    the ``retry``-only block as an event with empty data)."""
    out: list[Any] = []
    with httpx.Client(trust_env=False, timeout=10) as client:
        with connect_sse(client, "GET", url, headers=headers or {}) as source:
            for event in source.iter_sse():
                out.append(event)
                if sum(1 for e in out if e.data) == count:
                    return out
    return out


def test_sse_endpoint_resumes_after_last_event_id(servers: Servers) -> None:
    events = data_events(f"http://{servers.workers[0]}/ticks", 2, {"Last-Event-ID": "41"})
    assert events[0].retry == 2000  # `retry=2000` goes out first
    ticks = [(e.id, e.event, e.data) for e in events if e.data]
    assert ticks == [("42", "tick", "tick 42"), ("43", "tick", "tick 43")]


def test_fastapi_returns_the_response_as_is(servers: Servers) -> None:
    events = data_events(f"http://{servers.fastapi}/ticks", 1)
    assert [(e.id, e.data) for e in events if e.data] == [("0", "tick 0")]


def test_websocket_echo_on_streamcore_protocol(servers: Servers) -> None:
    async def main() -> None:
        async with websockets.connect(f"ws://{servers.workers[0]}/ws/echo", proxy=None) as ws:
            # uvicorn's deflate setting, honoured: 4 KiB windows
            assert "server_max_window_bits=12" in ws.response.headers["Sec-WebSocket-Extensions"]
            await ws.send("é" * 3000)
            assert await asyncio.wait_for(ws.recv(), 10) == "é" * 3000
    asyncio.run(main())


def test_chat_reaches_the_clients_of_both_workers(servers: Servers) -> None:
    async def main() -> None:
        one = await websockets.connect(f"ws://{servers.workers[0]}/chat", proxy=None)
        two = await websockets.connect(f"ws://{servers.workers[1]}/chat", proxy=None)
        try:
            # each worker's reader starts with its first subscriber: probe until
            # worker 2's client hears worker 1's, then check one message end to end
            deadline = time.monotonic() + 10
            for n in range(1000):
                await one.send(f"probe {n}")
                try:
                    await asyncio.wait_for(two.recv(), 0.3)
                    break
                except asyncio.TimeoutError:
                    assert time.monotonic() < deadline, "worker 2 never heard worker 1"
            await one.send("hello, other worker")
            for ws in (one, two):
                while (await asyncio.wait_for(ws.recv(), 10)) != "hello, other worker":
                    pass  # the probes, in order before it
        finally:
            await one.close()
            await two.close()
    asyncio.run(main())


def test_news_resumes_from_the_redis_log_on_another_worker(servers: Servers) -> None:
    async def publish() -> list[str]:
        client = redis.Redis.from_url(servers.redis_url)
        broadcaster = Broadcaster(client, maxlen=100)
        try:
            return [await broadcaster.publish("news", f"headline {n}", event="headline")
                    for n in range(3)]
        finally:
            await broadcaster.close()
            await client.aclose()

    ids = asyncio.run(publish())
    # a client that saw the first headline on worker 1 reconnects to worker 2
    events = data_events(f"http://{servers.workers[1]}/news", 2, {"Last-Event-ID": ids[0]})
    assert [(e.id, e.event, e.data) for e in events] == [
        (ids[1], "headline", "headline 1"), (ids[2], "headline", "headline 2")]
