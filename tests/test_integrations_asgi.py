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


# -- coalescing and the per-connection deadline, against a bare ASGI send --------

class Peer:
    """A bare ASGI server side: records sends; ``stall`` makes body sends
    hang (a frozen client); ``disconnect`` answers receive()."""

    def __init__(self, send_delay: float = 0.0) -> None:
        self.bodies: list[bytes] = []
        self.send_delay = send_delay
        self.stall = False
        self.disconnect = asyncio.Event()
        self.ended = False

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] != "http.response.body":
            return
        if self.stall:
            await asyncio.sleep(3600)
        if self.send_delay:
            await asyncio.sleep(self.send_delay)
        if message["more_body"]:
            self.bodies.append(message["body"])
        else:
            self.ended = True

    async def receive(self) -> dict[str, Any]:
        await self.disconnect.wait()
        return {"type": "http.disconnect"}

    def events(self) -> list[str]:
        from streamcore.sse import SSEDecoder

        return [e.data for e in SSEDecoder().feed(b"".join(self.bodies))]


SCOPE = {"type": "http", "headers": []}


async def no_more_tasks_than(baseline: int) -> None:
    for _ in range(100):
        if len(asyncio.all_tasks()) <= baseline:
            return
        await asyncio.sleep(0.01)
    assert len(asyncio.all_tasks()) <= baseline


def test_ready_items_go_out_in_one_send_and_in_order() -> None:
    async def main() -> Peer:
        queue: asyncio.Queue[Any] = asyncio.Queue()

        async def from_queue() -> AsyncIterator[Any]:
            while True:
                item = await queue.get()
                if item is None:
                    return
                yield item

        for k in range(300):  # all ready before the first send
            queue.put_nowait([f"a{k}", {"data": f"b{k}"}] if k % 3 == 0 else f"c{k}")
        queue.put_nowait(None)
        peer = Peer()
        await asgi.EventSourceResponse(from_queue(), ping_interval=None)(
            SCOPE, peer.receive, peer.send)
        return peer

    peer = run(main())
    expected: list[str] = []
    for k in range(300):
        expected += [f"a{k}", f"b{k}"] if k % 3 == 0 else [f"c{k}"]
    assert peer.events() == expected
    assert peer.ended
    assert len(peer.bodies) < 10  # batched: 400 events, a few sends of <= max_batch
    assert all(len(b) <= 65536 + 64 for b in peer.bodies)


def test_items_arriving_one_by_one_keep_order_with_and_without_coalescing() -> None:
    async def main(coalesce: bool) -> Peer:
        async def trickle() -> AsyncIterator[Any]:
            for k in range(200):
                yield f"e{k}"
                if k % 7 == 0:
                    await asyncio.sleep(0)  # sometimes a wait in between
                if k % 50 == 0:
                    await asyncio.sleep(0.01)

        peer = Peer()
        await asgi.EventSourceResponse(trickle(), ping_interval=None, coalesce=coalesce)(
            SCOPE, peer.receive, peer.send)
        return peer

    for coalesce in (True, False):
        peer = run(main(coalesce))
        assert peer.events() == [f"e{k}" for k in range(200)]
        assert peer.ended
    assert len(run(main(False)).bodies) == 200


def test_a_frozen_send_times_out_and_closes_a_waiting_iterator() -> None:
    async def main() -> None:
        finished = asyncio.Event()
        peer = Peer()

        async def then_wait() -> AsyncIterator[Any]:
            try:
                yield "first"
                peer.stall = True  # the client stops reading
                yield "second"
                await asyncio.sleep(3600)  # left waiting when the write times out
                yield "never"
            finally:
                finished.set()

        started = asyncio.get_running_loop().time()
        await asgi.EventSourceResponse(then_wait(), ping_interval=None, send_timeout=0.2)(
            SCOPE, peer.receive, peer.send)
        assert 0.15 < asyncio.get_running_loop().time() - started < 2
        assert finished.is_set()
        assert not peer.ended  # no end of body to a frozen client

    run(main())


def test_a_frozen_keepalive_times_out() -> None:
    async def main() -> None:
        finished = asyncio.Event()
        peer = Peer()

        async def quiet() -> AsyncIterator[Any]:
            try:
                yield "first"
                peer.stall = True
                await asyncio.sleep(3600)
                yield "never"
            finally:
                finished.set()

        baseline = len(asyncio.all_tasks())
        await asgi.EventSourceResponse(quiet(), ping_interval=0.05, send_timeout=0.2)(
            SCOPE, peer.receive, peer.send)
        assert finished.is_set()
        await no_more_tasks_than(baseline)  # no watcher left

    run(main())


def test_slow_writes_under_the_timeout_do_not_time_out() -> None:
    async def main() -> Peer:
        peer = Peer(send_delay=0.06)  # each write well under the limit, together far over

        async def ten() -> AsyncIterator[Any]:
            for k in range(10):
                yield f"e{k}"
                await asyncio.sleep(0.001)

        await asgi.EventSourceResponse(ten(), ping_interval=None, send_timeout=0.1)(
            SCOPE, peer.receive, peer.send)
        return peer

    peer = run(main())
    assert peer.events() == [f"e{k}" for k in range(10)]
    assert peer.ended


def test_disconnect_while_the_next_item_is_pending_closes_the_iterator() -> None:
    async def main() -> None:
        finished = asyncio.Event()
        peer = Peer()
        got_first = asyncio.Event()

        async def one_then_wait() -> AsyncIterator[Any]:
            try:
                yield "first"
                got_first.set()
                await asyncio.sleep(3600)  # the coalescing poll leaves it waiting here
                yield "never"
            finally:
                finished.set()

        response = asgi.EventSourceResponse(one_then_wait(), ping_interval=None)
        baseline = len(asyncio.all_tasks())
        task = asyncio.ensure_future(response(SCOPE, peer.receive, peer.send))
        await got_first.wait()
        await asyncio.sleep(0.01)
        peer.disconnect.set()
        await asyncio.wait_for(task, 5)
        assert finished.is_set()
        assert peer.events() == ["first"]
        await no_more_tasks_than(baseline)

    run(main())


def test_shutdown_is_per_event_loop_a_new_server_starts_clear() -> None:
    async def first() -> None:  # a server that shuts down
        peer = Peer()

        async def forever() -> AsyncIterator[Any]:
            yield "a"
            await asyncio.sleep(3600)
            yield "never"

        task = asyncio.ensure_future(asgi.EventSourceResponse(
            forever(), ping_interval=None, shutdown_grace=0.01)(SCOPE, peer.receive, peer.send))
        await asyncio.sleep(0.01)
        asgi.shutdown()
        assert asgi.shutting_down.is_set()
        await asyncio.wait_for(task, 5)
        assert peer.ended and peer.events() == ["a"]

    async def second() -> Peer:  # the next one, in the same process, on a new loop
        assert not asgi.shutting_down.is_set()
        waiter = asyncio.ensure_future(asgi.shutting_down.wait())  # usable on this loop
        peer = Peer()

        async def three() -> AsyncIterator[Any]:
            for k in range(3):
                yield f"e{k}"
                await asyncio.sleep(0.03)  # longer than the first server's grace

        await asgi.EventSourceResponse(three(), ping_interval=None, shutdown_grace=0.01)(
            SCOPE, peer.receive, peer.send)
        assert not waiter.done()
        waiter.cancel()
        return peer

    run(first())
    peer = run(second())
    assert peer.events() == ["e0", "e1", "e2"]
    assert peer.ended


# -- coalescing while a producer keeps adding, and Broadcast --------------------

def test_a_producer_adding_every_turn_is_coalesced_within_max_delay() -> None:
    async def main(max_delay: float) -> tuple[Peer, float]:
        async def every_turn() -> AsyncIterator[Any]:
            for k in range(200):
                yield f"e{k}"
                await asyncio.sleep(0)  # one more item per loop turn

        peer = Peer()
        first_write: list[float] = []
        send = peer.send

        async def timed(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.body" and not first_write:
                first_write.append(asyncio.get_running_loop().time())
            await send(message)

        started = asyncio.get_running_loop().time()
        await asgi.EventSourceResponse(every_turn(), ping_interval=None, max_delay=max_delay)(
            SCOPE, peer.receive, timed)
        return peer, first_write[0] - started

    peer, _ = run(main(10.0))
    assert peer.events() == [f"e{k}" for k in range(200)]
    assert len(peer.bodies) <= 2  # every turn brought more: one batch (or two)
    peer, _ = run(main(0.0))  # no wait beyond the first turn
    assert peer.events() == [f"e{k}" for k in range(200)]
    assert len(peer.bodies) >= 100

    async def slow_turns() -> tuple[Peer, float]:
        async def busy() -> AsyncIterator[Any]:
            import time as clock
            for k in range(40):
                yield f"e{k}"
                clock.sleep(0.005)  # each turn takes 5 ms
                await asyncio.sleep(0)

        peer = Peer()
        first: list[float] = []

        async def timed(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.body" and not first:
                first.append(asyncio.get_running_loop().time())
            await peer.send(message)

        started = asyncio.get_running_loop().time()
        await asgi.EventSourceResponse(busy(), ping_interval=None, max_delay=0.03)(
            SCOPE, peer.receive, timed)
        return peer, first[0] - started

    peer, first_after = run(slow_turns())
    assert peer.events() == [f"e{k}" for k in range(40)]
    assert first_after < 0.12  # max_delay (0.03) bounds the first wait; unbounded: 0.2 s
    assert len(peer.bodies) >= 4


def hub_app(hub: asgi.Broadcast) -> Any:
    return app_of(lambda scope: asgi.EventSourceResponse(hub.subscribe(), ping_interval=None))


def test_broadcast_delivers_every_event_in_order_to_every_client() -> None:
    async def main() -> None:
        hub = asgi.Broadcast()

        async def client(url: str, got: list[tuple[str, str]]) -> None:
            async with httpx.AsyncClient() as http_client:
                async with aconnect_sse(http_client, "GET", url) as source:
                    async for event in source.aiter_sse():
                        got.append((event.event, event.data))

        async with serving(hub_app(hub)) as url:
            results: list[list[tuple[str, str]]] = [[] for _ in range(5)]
            tasks = [asyncio.ensure_future(client(url, got)) for got in results]
            while hub.subscribers < 5:
                await asyncio.sleep(0.01)
            for k in range(300):
                form = k % 4
                if form == 0:
                    hub.publish({"data": f"d{k}", "event": "tick", "id": str(k)})
                elif form == 1:
                    hub.publish(f"d{k}")
                elif form == 2:
                    hub.publish(asgi.encode(Event(f"d{k}", "message", str(k))))
                else:
                    hub.publish([f"d{k}", {"data": f"x{k}"}])  # one node, two events
                if k % 10 == 0:
                    await asyncio.sleep(0)
            hub.close()  # every response ends its body
            await asyncio.wait_for(asyncio.gather(*tasks), 10)
        expected: list[tuple[str, str]] = []
        for k in range(300):
            expected.append(("tick" if k % 4 == 0 else "message", f"d{k}"))
            if k % 4 == 3:
                expected.append(("message", f"x{k}"))
        for got in results:
            assert got == expected
        assert hub.subscribers == 0

    run(main())


def test_broadcast_a_client_that_leaves_does_not_disturb_the_others() -> None:
    async def main() -> None:
        hub = asgi.Broadcast()
        peers = [Peer() for _ in range(3)]
        baseline = len(asyncio.all_tasks())
        tasks = [asyncio.ensure_future(asgi.EventSourceResponse(
            hub.subscribe(), ping_interval=None)(SCOPE, p.receive, p.send)) for p in peers]
        await asyncio.sleep(0.01)  # all three wait for the first event
        hub.publish("one")
        await asyncio.sleep(0.01)
        peers[0].disconnect.set()  # cancels the first response where it waits
        await asyncio.wait_for(tasks[0], 5)
        hub.publish("two")
        await asyncio.sleep(0.01)
        assert hub.subscribers == 2
        hub.close()
        await asyncio.wait_for(asyncio.gather(*tasks[1:]), 5)
        assert peers[0].events() == ["one"]
        assert [p.events() for p in peers[1:]] == [["one", "two"]] * 2
        assert all(p.ended for p in peers[1:])
        assert hub.subscribers == 0
        await no_more_tasks_than(baseline)

    run(main())


def test_broadcast_a_subscriber_too_far_behind_is_ended() -> None:
    async def main() -> None:
        hub = asgi.Broadcast(max_lag=16)
        slow, fast = hub.subscribe(), hub.subscribe()
        for k in range(5):
            hub.publish(str(k))
        assert await fast.__anext__() == b"".join(asgi.encode(str(k)) for k in range(5))
        for k in range(5, 20):
            hub.publish(str(k))
        with pytest.raises(StopAsyncIteration):
            await slow.__anext__()  # 20 behind: ended
        assert hub.subscribers == 1
        assert await fast.__anext__() == b"".join(asgi.encode(str(k)) for k in range(5, 20))
        late = hub.subscribe()  # starts at the next event
        hub.publish("next")
        assert await late.__anext__() == asgi.encode("next")
        assert await fast.__anext__() == asgi.encode("next")
        await late.aclose()
        assert hub.subscribers == 1

    run(main())


def test_broadcast_subscribers_that_leave_a_quiet_hub_are_not_kept() -> None:
    async def main() -> None:
        hub = asgi.Broadcast()
        for _ in range(200):  # each waits, then its response ends (cancelled)
            sub = hub.subscribe()
            task = asyncio.ensure_future(sub.__anext__())
            await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await sub.aclose()
        assert hub.subscribers == 0
        assert len(hub._waiters) <= 17  # not one future per subscriber that left
        stay = hub.subscribe()
        hub.publish("x")
        assert await stay.__anext__() == asgi.encode("x")

    run(main())


def test_iterators_awaiting_one_shared_future_all_go_on() -> None:
    async def main() -> list[Peer]:
        go: asyncio.Future[str] = asyncio.get_running_loop().create_future()

        async def after_go() -> AsyncIterator[Any]:
            yield "first"
            await asyncio.sleep(0)
            yield "more"  # a turn that brought more: the batch stays open
            yield await go  # every response's pending __anext__ waits on this one future

        peers = [Peer() for _ in range(3)]
        tasks = [asyncio.ensure_future(asgi.EventSourceResponse(
            after_go(), ping_interval=None)(SCOPE, p.receive, p.send)) for p in peers]
        await asyncio.sleep(0.01)
        go.set_result("second")
        await asyncio.wait_for(asyncio.gather(*tasks), 5)
        return peers

    for peer in run(main()):
        assert peer.events() == ["first", "more", "second"]
        assert peer.ended
