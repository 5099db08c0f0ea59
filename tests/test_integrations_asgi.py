"""streamcore.integrations.asgi.EventSourceResponse on a real uvicorn over
127.0.0.1, read by httpx + httpx-sse and by a raw socket."""
from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from httpx_sse import aconnect_sse
from starlette.applications import Starlette
from starlette.routing import Route
from uvicorn_helpers import serving as uvicorn_serving

from streamcore.integrations import asgi
from streamcore.sse import Event

pytestmark = pytest.mark.interop


@pytest.fixture(autouse=True)
def _fresh_shutdown_flag() -> None:
    asgi.shutting_down.clear()


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 30))


@asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    async with uvicorn_serving(app) as server:
        yield server.http_url


def app_of(make: Callable[[dict[str, Any]], asgi.EventSourceResponse]) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        await make(scope)(scope, receive, send)

    return app


def test_events_arrive_in_order_with_the_right_head() -> None:
    async def numbers() -> AsyncIterator[Any]:
        for k in range(100):
            if k % 4 == 0:
                yield {"data": f"n{k}", "id": str(k), "event": "tick"}
            elif k % 4 == 1:
                yield Event(f"n{k}", "message", str(k))
            elif k % 4 == 2:
                yield asgi.encode({"data": f"n{k}", "id": str(k)})  # encoded once
            else:
                yield {"data": f"n{k}", "id": str(k)}

    async def main() -> None:
        async with serving(app_of(lambda scope: asgi.EventSourceResponse(numbers()))) as url:
            async with httpx.AsyncClient() as client:
                async with aconnect_sse(client, "GET", url) as source:
                    head = source.response.headers
                    assert head["content-type"].startswith("text/event-stream")
                    assert head["cache-control"] == "no-store"
                    assert head["x-accel-buffering"] == "no"
                    got = [(e.data, e.id) async for e in source.aiter_sse()]
        assert got == [(f"n{k}", str(k)) for k in range(100)]

    run(main())


def test_last_event_id_is_handed_to_the_iterator() -> None:
    seen: list[str | None] = []

    def resume(last_event_id: str | None) -> AsyncIterator[Any]:
        seen.append(last_event_id)

        async def rest() -> AsyncIterator[Any]:
            start = 0 if last_event_id is None else int(last_event_id) + 1
            for k in range(start, 10):
                yield {"data": str(k), "id": str(k)}

        return rest()

    async def main() -> None:
        app = app_of(lambda scope: asgi.EventSourceResponse(resume))
        async with serving(app) as url, httpx.AsyncClient() as client:
            async with aconnect_sse(client, "GET", url, headers={"Last-Event-ID": "6"}) as s:
                assert [e.data async for e in s.aiter_sse()] == ["7", "8", "9"]
            async with aconnect_sse(client, "GET", url) as s:
                assert len([e async for e in s.aiter_sse()]) == 10

    run(main())
    assert seen == ["6", None]


async def raw_get(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = url[len("http://"):].split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    await reader.readuntil(b"\r\n\r\n")
    return reader, writer


def test_keepalive_comments_only_while_idle() -> None:
    async def burst_then_idle() -> AsyncIterator[Any]:
        for k in range(50):
            yield {"data": str(k)}
            await asyncio.sleep(0.01)  # busier than the ping interval
        await asyncio.sleep(0.55)
        yield {"data": "end"}

    async def main() -> bytes:
        app = app_of(lambda scope: asgi.EventSourceResponse(burst_then_idle(), ping_interval=0.1))
        async with serving(app) as url:
            reader, writer = await raw_get(url)
            body = b""
            while b"data: end" not in body:
                body += await reader.read(65536)
            writer.close()
            return body

    body = run(main())
    before_idle, after = body.split(b"data: 49", 1)
    assert b":\n\n" not in before_idle
    assert 3 <= after.count(b":\n\n") <= 6


def test_a_client_that_goes_away_closes_the_iterator_and_leaves_no_task() -> None:
    closed = asyncio.Event

    async def main() -> None:
        finished = closed()
        started = closed()

        async def forever() -> AsyncIterator[Any]:
            try:
                started.set()
                while True:
                    await asyncio.sleep(3600)
                    yield {"data": "never"}
            finally:
                finished.set()

        app = app_of(lambda scope: asgi.EventSourceResponse(forever(), ping_interval=None))
        async with serving(app) as url:
            baseline = len(asyncio.all_tasks())
            _reader, writer = await raw_get(url)
            await started.wait()
            writer.close()
            await asyncio.wait_for(finished.wait(), 5)  # seen through http.disconnect
            for _ in range(100):
                if len(asyncio.all_tasks()) <= baseline:
                    break
                await asyncio.sleep(0.01)
            assert len(asyncio.all_tasks()) <= baseline

    run(main())


def test_a_frozen_client_is_dropped_after_send_timeout() -> None:
    async def main() -> None:
        finished = asyncio.Event()

        async def flood() -> AsyncIterator[Any]:
            try:
                while True:
                    yield {"data": "x" * (1 << 20)}
            finally:
                finished.set()

        app = app_of(lambda scope: asgi.EventSourceResponse(flood(), send_timeout=0.2))
        async with serving(app) as url:
            sock = socket.create_connection(url[len("http://"):].split(":"))  # type: ignore[arg-type]
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # then never reads
            await asyncio.wait_for(finished.wait(), 10)
            sock.close()

    run(main())


def test_shutdown_ends_open_streams_after_the_grace_period() -> None:
    async def main() -> None:
        finished = asyncio.Event()

        async def forever() -> AsyncIterator[Any]:
            try:
                yield {"data": "first"}
                await asyncio.sleep(3600)
            finally:
                finished.set()

        app = app_of(lambda scope: asgi.EventSourceResponse(forever(), shutdown_grace=0.1))
        async with serving(app) as url, httpx.AsyncClient() as client:
            async with aconnect_sse(client, "GET", url) as source:
                events = source.aiter_sse()
                assert (await events.__anext__()).data == "first"
                asgi.shutdown()
                rest = [e async for e in events]  # the body ends: the client reconnects
            assert rest == []
            assert finished.is_set()

    run(main())


def test_as_a_starlette_response() -> None:
    async def endpoint(request: Any) -> asgi.EventSourceResponse:
        async def two() -> AsyncIterator[Any]:
            yield "one"
            yield "two"

        return asgi.EventSourceResponse(two(), headers={"X-Extra": "1"})

    async def main() -> None:
        app = Starlette(routes=[Route("/events", endpoint)])
        async with serving(app) as url, httpx.AsyncClient() as client:
            async with aconnect_sse(client, "GET", url + "/events") as source:
                assert source.response.headers["x-extra"] == "1"
                assert [e.data async for e in source.aiter_sse()] == ["one", "two"]

    run(main())


def test_signal_handlers_call_shutdown_then_the_previous_handler() -> None:
    import os
    import signal

    calls: list[int] = []
    previous = signal.signal(signal.SIGUSR1, lambda num, frame: calls.append(num))
    try:
        asgi.install_signal_handlers([signal.SIGUSR1])
        os.kill(os.getpid(), signal.SIGUSR1)
        assert asgi.shutting_down.is_set()
        assert calls == [signal.SIGUSR1]
    finally:
        signal.signal(signal.SIGUSR1, previous)
