"""The Redis broadcaster across two uvicorn workers (separate processes,
tests/redis_worker.py), against a real redis-server started by the fixture
on a free 127.0.0.1 port in a temp dir (append-only file, so the log
survives a restart).  SSE and WebSocket clients on each worker.

Fault tests (marked ``fault`` in their names): Redis killed and restarted
mid-stream; a worker killed and restarted (its clients resume on it with
their Last-Event-ID); stalled clients hitting their bound (``drop``: end of
stream; ``skip``: one gap event, then live ones) while the others keep
their latency.  Each checks that no event is lost or
doubled for the clients that keep up.
Every test runs with the workers on each codec twin."""
from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

redis_asyncio = pytest.importorskip("redis.asyncio")
httpx = pytest.importorskip("httpx")
websockets_client = pytest.importorskip("websockets.asyncio.client")
websockets_exceptions = pytest.importorskip("websockets.exceptions")

from streamcore.integrations.redis import GAP, Broadcaster  # noqa: E402

WORKER = Path(__file__).with_name("redis_worker.py")
ROOT = WORKER.parents[1]
if str(ROOT) not in sys.path:  # benchmarks/ (python -m pytest has it already)
    sys.path.append(str(ROOT))

from benchmarks.redis_server import RedisServer, free_port, wait_port  # noqa: E402

pytestmark = pytest.mark.interop


class Worker:
    """One uvicorn process serving tests/redis_worker.py."""

    def __init__(self, redis_port: int, twin: str) -> None:
        self.port = free_port()
        self.redis_port = redis_port
        self.env = dict(os.environ)
        self.env.pop("STREAMCORE_NO_EXTENSIONS", None)
        if twin == "python":
            self.env["STREAMCORE_NO_EXTENSIONS"] = "1"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(WORKER), str(self.port), str(self.redis_port)],
            cwd=str(ROOT), env=self.env)
        wait_port(self.port, self.proc, "worker")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.kill()  # a graceful stop would wait for the open streams


@pytest.fixture(params=["compiled", "python"])
def twin(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def redis_server(tmp_path: Any) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (make test installs it with apt-get)")
    server = RedisServer(str(tmp_path), persist=True)
    server.start()
    yield server
    if server.proc is not None and server.proc.poll() is None:
        server.kill()


@pytest.fixture
def workers(redis_server: RedisServer, twin: str) -> Iterator[list[Worker]]:
    pair = [Worker(redis_server.port, twin), Worker(redis_server.port, twin)]
    for worker in pair:
        worker.start()
    yield pair
    for worker in pair:
        worker.stop()


# -- clients ---------------------------------------------------------------

class Client:
    """Records (id, data, arrival time) of each message; with ``resume``
    it reconnects after a drop with the last id it saw (as EventSource does)."""

    def __init__(self, port: int, *, resume: bool = False, last_id: str | None = None,
                 query: str = "") -> None:
        self.port = port
        self.resume = resume
        self.last_id = last_id
        self.query = query
        self.got: list[tuple[str, str, float]] = []
        self.ready = asyncio.Event()
        self.connects = 0
        self.ended = asyncio.Event()
        self.close_code: int | None = None
        self.error: BaseException | None = None  # the last connection's, if it failed
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> Client:
        self.task = asyncio.create_task(self._run())
        try:
            await asyncio.wait_for(self.ready.wait(), 10)
        except asyncio.TimeoutError:
            raise AssertionError(
                f"{type(self).__name__} on port {self.port} not ready in 10 s: "
                f"{self.connects} connections, last error {self.error!r}") from None
        return self

    def record(self, entry_id: str, data: str) -> None:
        self.got.append((entry_id, data, time.time()))
        if not data.startswith("!"):
            self.last_id = entry_id

    async def _run(self) -> None:
        while True:
            try:
                await self.connect()
            except (OSError, httpx.HTTPError, websockets_exceptions.WebSocketException) as e:
                self.error = e
            if not self.resume:
                self.ended.set()
                return
            await asyncio.sleep(0.05)

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()

    def datas(self) -> list[str]:
        return [d for _, d, _ in self.got]

    async def connect(self) -> None:
        raise NotImplementedError


class SSEClient(Client):
    async def connect(self) -> None:
        headers = {} if self.last_id is None else {"Last-Event-ID": self.last_id}
        url = f"http://127.0.0.1:{self.port}/events?{self.query}"
        async with httpx.AsyncClient(timeout=httpx.Timeout(None, connect=1)) as http:
            async with http.stream("GET", url, headers=headers) as response:
                self.connects += 1
                entry_id, data, event = "", [], None
                async for line in response.aiter_lines():
                    if line == ": ready":
                        self.ready.set()
                    elif line.startswith("id: "):
                        entry_id = line[4:]
                    elif line.startswith("data: ") or line == "data":
                        data.append(line[6:])
                    elif line.startswith("event: "):
                        event = line[7:]
                    elif line == "" and entry_id:
                        self.record(entry_id, "!" + event if event else "\n".join(data))
                        entry_id, data, event = "", [], None


class WSClient(Client):
    async def connect(self) -> None:
        query = self.query + ("" if self.last_id is None else f"&last_event_id={self.last_id}")
        url = f"ws://127.0.0.1:{self.port}/ws?{query}"
        async with websockets_client.connect(url, open_timeout=1, max_size=None) as ws:
            self.connects += 1
            try:
                async for text in ws:
                    assert isinstance(text, str)
                    if text == "ready":
                        self.ready.set()
                        continue
                    entry_id, _, data = text.partition(" ")
                    self.record(entry_id, data)
            finally:
                self.close_code = ws.close_code


def broadcaster(server: RedisServer) -> Broadcaster:
    return Broadcaster(redis_asyncio.Redis(host="127.0.0.1", port=server.port, socket_timeout=2,
                                           socket_connect_timeout=0.5),
                       maxlen=100_000, backoff=(0.02, 0.25))


async def wait_all(clients: list[Client], n: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while any(len(c.got) < n for c in clients):
        if time.monotonic() > deadline:
            counts = [len(c.got) for c in clients]
            raise AssertionError(f"timed out waiting for {n} messages: {counts}")
        await asyncio.sleep(0.02)


async def publish_all(b: Broadcaster, items: list[str], pause: float = 0.0) -> list[str]:
    ids = []
    for item in items:
        ids.append(await b.publish("c", f"{item}:{time.time()}"))
        if pause:
            await asyncio.sleep(pause)
    return ids


def payloads(client: Client) -> list[str]:
    return [d.partition(":")[0] for d in client.datas()]


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 45))


async def on_both(workers: list[Worker], **options: Any) -> list[Client]:
    clients: list[Client] = []
    for worker in workers:
        for kind in (SSEClient, SSEClient, WSClient, WSClient):
            clients.append(await kind(worker.port, **options).start())
    return clients


def check_exact(clients: list[Client], ids: list[str], items: list[str]) -> None:
    for n, c in enumerate(clients):
        got = payloads(c)
        if got != items or [i for i, _, _ in c.got] != ids:
            seen = [i for i, _, _ in c.got]
            doubled = sorted({(p, i) for p, i in zip(got, seen) if got.count(p) > 1})
            raise AssertionError(
                f"client {n} ({type(c).__name__}, {c.connects} connections): "
                f"{len(got)} of {len(items)}; lost {sorted(set(items) - set(got), key=int)[:10]}; "
                f"doubled (payload, id) {doubled[:10]}; ids not published "
                f"{sorted(set(seen) - set(ids))[:10]}")


# -- tests -------------------------------------------------------------------

def test_every_event_reaches_every_client_in_order(workers: list[Worker],
                                                   redis_server: RedisServer) -> None:
    async def main() -> None:
        clients = await on_both(workers)
        b = broadcaster(redis_server)
        items = [str(i) for i in range(300)]
        ids = await publish_all(b, items)
        await wait_all(clients, 300)
        await asyncio.sleep(0.1)  # nothing more arrives
        check_exact(clients, ids, items)
        for c in clients:
            c.stop()
        await b.close()
    run(main())


def test_resume_after_dropped_connection(workers: list[Worker],
                                         redis_server: RedisServer) -> None:
    async def main() -> None:
        b = broadcaster(redis_server)
        first = [await SSEClient(workers[0].port).start(), await WSClient(workers[1].port).start()]
        ids = await publish_all(b, [str(i) for i in range(50)])
        await wait_all(first, 50)
        for c in first:
            c.stop()
        await asyncio.sleep(0.05)
        ids += await publish_all(b, [str(i) for i in range(50, 120)])  # while they are away
        # they come back, each on the other worker, with the last id they saw
        again = [await SSEClient(workers[1].port, last_id=first[0].last_id).start(),
                 await WSClient(workers[0].port, last_id=first[1].last_id).start()]
        ids += await publish_all(b, [str(i) for i in range(120, 150)])
        await wait_all(again, 100)
        await asyncio.sleep(0.1)
        for c in again:
            assert payloads(c) == [str(i) for i in range(50, 150)]
            assert [i for i, _, _ in c.got] == ids[50:]
            c.stop()
        # an id older than the log keeps: one explicit gap event first
        await b.redis.xtrim("streamcore:c", maxlen=10, approximate=False)
        old = await SSEClient(workers[0].port, last_id=ids[5]).start()
        await wait_all([old], 11)
        assert old.got[0][1] == "!" + GAP
        assert payloads(old)[1:] == [str(i) for i in range(140, 150)]
        old.stop()
        await b.close()
    run(main())


def test_fault_redis_killed_and_restarted_mid_stream(workers: list[Worker],
                                                     redis_server: RedisServer) -> None:
    async def main() -> None:
        clients = await on_both(workers, resume=True)
        b = broadcaster(redis_server)
        items = [str(i) for i in range(300)]
        publisher = asyncio.create_task(publish_all(b, items, pause=0.003))
        while len(clients[0].got) < 100:
            await asyncio.sleep(0.005)
        redis_server.kill()
        await asyncio.sleep(0.5)
        redis_server.start()
        ids = await publisher
        # the log holds each event once (an XADD re-sent after its reply was
        # lost would be a second entry with the same payload)
        log = await b.redis.xrange("streamcore:c")
        assert [f[b"d"].decode().partition(":")[0] for _, f in log] == items
        assert [i.decode() for i, _ in log] == ids
        await wait_all(clients, 300)
        await asyncio.sleep(0.2)
        check_exact(clients, ids, items)
        for c in clients:
            c.stop()
        await b.close()
    run(main())


def test_fault_worker_killed_and_restarted(workers: list[Worker],
                                           redis_server: RedisServer) -> None:
    async def main() -> None:
        clients = await on_both(workers, resume=True)
        b = broadcaster(redis_server)
        items = [str(i) for i in range(300)]
        ids = await publish_all(b, items[:100])
        await wait_all(clients, 100)
        workers[0].kill()
        ids += await publish_all(b, items[100:200], pause=0.002)  # while it is down
        workers[0].start()
        ids += await publish_all(b, items[200:], pause=0.002)
        await wait_all(clients, 300)
        await asyncio.sleep(0.2)
        check_exact(clients, ids, items)
        connects = [(c.connects, repr(c.error)) for c in clients]
        assert all(c.connects == 2 for c in clients[:4]), connects  # worker 0's came back
        assert all(c.connects == 1 for c in clients[4:]), connects
        for c in clients:
            c.stop()
        await b.close()
    run(main())


async def stalled_sse(port: int, query: str) -> socket.socket:
    """An SSE client that connects and then does not read (until drained).
    (Not a shrunken SO_RCVBUF: a tiny TCP window stalls the stream for
    reasons of TCP's own, even once the client reads again.)"""
    sock = socket.socket()
    sock.connect(("127.0.0.1", port))
    sock.sendall(f"GET /events?{query} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await asyncio.sleep(0.2)
    return sock


def drain(sock: socket.socket, timeout: float) -> tuple[bytes, bool]:
    """What the stalled client had been sent, and whether the server ended it."""
    sock.settimeout(timeout)
    chunks = []
    try:
        while True:
            chunk = sock.recv(1 << 20)
            if not chunk:
                return b"".join(chunks), True
            chunks.append(chunk)
    except (socket.timeout, ConnectionResetError):
        return b"".join(chunks), False
    finally:
        sock.close()


def test_fault_slow_clients_hit_their_bound_others_keep_latency(workers: list[Worker],
                                          redis_server: RedisServer) -> None:
    async def main() -> None:
        b = broadcaster(redis_server)
        fast = [await SSEClient(workers[0].port).start(), await WSClient(workers[0].port).start(),
                await SSEClient(workers[1].port).start(), await WSClient(workers[1].port).start()]
        # no send timeout: the bound alone acts on these two
        dropped = await stalled_sse(workers[0].port, "max_queue=8&policy=drop&send_timeout=0")
        skipping = await stalled_sse(workers[1].port, "max_queue=8&policy=skip&send_timeout=0")
        body = "x" * 32_768
        ids = []
        for i in range(400):
            ids.append(await b.publish("c", f"{i}:{time.time()}:{body}"))
            await asyncio.sleep(0.001)
        await wait_all(fast, 400)
        items = [str(i) for i in range(400)]
        check_exact(fast, ids, items)
        latencies = sorted(t - float(d.split(":")[1]) for c in fast for _, d, t in c.got)
        p50, p99 = latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99)]
        assert p50 < 0.1 and p99 < 0.5, (p50, p99)
        # drop policy: once the client reads, what was sent, then end of stream
        sent, _ = await asyncio.to_thread(drain, dropped, 2)
        assert sent.endswith(b"\r\n0\r\n\r\n")  # the chunked body's end (keep-alive)
        assert 0 < sent.count(b"\nid: ") < 400
        # skip policy: what was sent, one gap event, then live ones up to the last
        sent, _ = await asyncio.to_thread(drain, skipping, 2)
        assert not sent.endswith(b"\r\n0\r\n\r\n")
        # an event starts a line: after the chunk head (\r\n) or, several in one
        # chunk (the response coalesces ready events), right after the last one
        frames = [f for f in sent.split(b"\n\n") if b"\nid: " in b"\n" + f]
        marks = [b"gap" if b"event: " + GAP.encode() in f
                 else f.split(b"data: ", 1)[1].partition(b":")[0] for f in frames]
        assert marks.count(b"gap") >= 1 and len(marks) < 400
        after = [int(m) for m in marks[marks.index(b"gap") + 1:] if m != b"gap"]
        assert after == sorted(after) and after[-1] == 399
        for c in fast:
            c.stop()
        await b.close()
    run(main())
