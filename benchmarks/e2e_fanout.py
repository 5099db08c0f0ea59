"""SSE and WebSocket fan-out across two uvicorn workers through Redis
(``make bench-e2e``).

Processes, all on 127.0.0.1: a private ``redis-server`` (a temp dir, a free
port, no persistence), two uvicorn workers (separate processes, each on its
own port, uvloop) running the same Starlette app, client processes holding
``--clients`` SSE and ``--clients`` WebSocket connections spread evenly over
the workers, and this driver, which publishes.  The app, on either side:

- ``GET /events``: an SSE stream of channel ``fanout``;
- ``/ws``: a WebSocket getting every message of ``fanout`` as a text frame.

Sides:

- ``streamcore``: :class:`streamcore.integrations.redis.Broadcaster` (one
  stream per channel, one ``XREAD`` reader per worker), each client reading
  ``Subscription.batches()`` (everything queued for it at once);
  :class:`streamcore.integrations.asgi.EventSourceResponse` given the SSE
  frames of a batch joined (``message.sse``, encoded once per worker), and
  uvicorn with ``--ws streamcore.integrations.uvicorn:WebSocketProtocol``
  writing a batch's shared frames in one write (``message.ws``, a
  :class:`streamcore.ws.Prepared`, a list of them under the
  ``streamcore.prepared`` ASGI extension);
- ``broadcaster``: encode/broadcaster's ``Broadcast("redis://...")`` (Redis
  pub/sub), ``sse_starlette.EventSourceResponse`` with dict events, and
  uvicorn's own ``--ws websockets``.

Clients are raw asyncio protocols on uvloop, built to cost as little as
possible per delivery (no decoder objects: the SSE client finds each
``data:`` line with ``bytes.find``, the WebSocket client reads the two- or
four-byte frame header of the server's unmasked frames), so that on a small
machine they are not what is measured.  Each event's data starts with its
publish time (``time.monotonic_ns``: one clock for every process on Linux)
and its sequence number, so each delivery gives a latency and each client
checks that it got every event once, in order.

Figures: memory per idle connection (the workers' RSS after the SSE clients,
then the WebSocket clients, connected, minus before, per connection);
p50/p99 publish-to-delivery latency with events published at a fixed rate
(``--rate``/s for ``--seconds``); deliveries/s for a burst of ``--burst``
events published as fast as the publisher can (first publish to last
delivery).

    python -m benchmarks.e2e_fanout [--quick] [--clients 1000] [--sides streamcore,broadcaster]
        [--repeat 3] [--latency-sweep 100,250,500]
    python -m benchmarks.e2e_fanout serve SIDE PORT REDIS_PORT     # one worker
    python -m benchmarks.e2e_fanout client PORTS SSE WS FILE       # one client process
"""
from __future__ import annotations

import argparse
import array
import asyncio
import base64
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from benchmarks.e2e import RESULTS, ROOT, free_port, new_loop
from benchmarks.redis_server import RedisServer, redis_server_path, wait_port

SIDES = ["streamcore", "broadcaster"]
CHANNEL = "fanout"
#: each subscription's bound on our side (the peer's queues are unbounded):
#: above any burst here, so no client is dropped for being behind
MAX_QUEUE = 4096


# -- the app (one per worker) -------------------------------------------------------

def make_app(side: str, redis_port: int) -> Any:
    import contextlib

    from starlette.applications import Starlette
    from starlette.routing import Route, WebSocketRoute
    from starlette.websockets import WebSocket, WebSocketDisconnect

    url = f"redis://127.0.0.1:{redis_port}"

    if side == "streamcore":
        import redis.asyncio as redis_asyncio

        from streamcore.integrations.asgi import EventSourceResponse
        from streamcore.integrations.redis import Broadcaster

        client = redis_asyncio.Redis.from_url(url)
        ours = Broadcaster(client, maxlen=10_000)

        @contextlib.asynccontextmanager
        async def lifespan(app: Any) -> Any:
            yield
            await ours.close()
            await client.aclose()

        async def events(request: Any) -> Any:
            async def stream() -> Any:
                async with ours.subscribe(CHANNEL, max_queue=MAX_QUEUE) as sub:
                    await ours.ready(CHANNEL)
                    yield {"comment": "ready"}
                    # every message queued by now, their frames (encoded and
                    # joined once per worker) in one write however far behind
                    async for batch in sub.batches():
                        yield batch.sse
            # batches() coalesces already: no extra loop turn per write
            return EventSourceResponse(stream(), ping_interval=15, coalesce=False)

        async def ws(websocket: WebSocket) -> None:
            await websocket.accept()
            async with ours.subscribe(CHANNEL, max_queue=MAX_QUEUE) as sub:
                await ours.ready(CHANNEL)
                await websocket.send_text("ready")
                send = websocket.send
                try:
                    async for batch in sub.batches():
                        # the frames built once per worker (streamcore.ws.Prepared),
                        # all that is queued in one write
                        await send({"type": "websocket.send",
                                    "streamcore.prepared": batch.ws})
                except (WebSocketDisconnect, OSError):
                    pass
    else:
        from broadcaster import Broadcast
        from sse_starlette import EventSourceResponse as PeerResponse

        peer = Broadcast(url)

        @contextlib.asynccontextmanager
        async def lifespan(app: Any) -> Any:
            await peer.connect()
            # broadcaster 0.3.1's Redis listener starts listening when the
            # first channel is subscribed, but before redis-py counts the
            # subscription, so it finds none, stops and never starts again:
            # no message is ever delivered.  A first subscription held for the
            # worker's life, to another channel, works around it (the next
            # one wakes the listener, now subscribed), and keeps the listener
            # alive when the last client of ``fanout`` leaves.
            anchored = asyncio.Event()

            async def anchor() -> None:
                async with peer.subscribe(CHANNEL + "-anchor"):
                    anchored.set()
                    await asyncio.Event().wait()

            task = asyncio.create_task(anchor())
            await anchored.wait()
            yield
            task.cancel()
            await peer.disconnect()

        async def events(request: Any) -> Any:
            async def stream() -> Any:
                async with peer.subscribe(CHANNEL) as sub:
                    yield {"comment": "ready"}
                    async for event in sub:
                        yield {"data": event.message}  # encoded per connection
            return PeerResponse(stream(), ping=15)

        async def ws(websocket: WebSocket) -> None:
            await websocket.accept()
            async with peer.subscribe(CHANNEL) as sub:
                await websocket.send_text("ready")
                try:
                    async for event in sub:
                        await websocket.send_text(event.message)
                except (WebSocketDisconnect, OSError):
                    pass

    return Starlette(routes=[Route("/events", events), WebSocketRoute("/ws", ws)],
                     lifespan=lifespan)


def serve(side: str, port: int, redis_port: int) -> None:
    import warnings

    import uvicorn

    # uvicorn 0.36+ warns that ``--ws websockets`` will mean another class one day
    warnings.filterwarnings("ignore", message=".*websockets. implementation is deprecated")

    ws = "streamcore.integrations.uvicorn:WebSocketProtocol" if side == "streamcore" \
        else "websockets"
    config = uvicorn.Config(make_app(side, redis_port), host="127.0.0.1", port=port,
                            log_level="warning", lifespan="on", backlog=4096, http="httptools",
                            ws=ws, ws_ping_interval=None, timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    loop = new_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(server.serve())


# -- the clients (several per process) -----------------------------------------------

class Tally:
    """What one client process counts (reset before each phase)."""

    def __init__(self) -> None:
        self.ready = 0
        self.latencies = array.array("f")  # ms
        self.reset()

    def reset(self) -> None:
        self.delivered = 0
        self.disorder = 0  # an event missing, doubled or out of order
        self.last_ns = 0
        del self.latencies[:]


class _Client(asyncio.Protocol):
    def __init__(self, tally: Tally) -> None:
        self.tally = tally
        self.buf = b""
        self.open = False  # past the response head
        self.ready = False
        self.seq = -1

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def deliver(self, ts: bytes, seq: bytes, now: int) -> None:
        t = self.tally
        t.delivered += 1
        t.latencies.append((now - int(ts)) / 1e6)
        n = int(seq)
        if n != self.seq + 1 and self.seq >= 0:
            t.disorder += 1
        self.seq = n
        t.last_ns = now

    def head(self) -> bool:
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return False
        self.check_head(self.buf[:end])
        self.buf = self.buf[end + 4:]
        self.open = True
        return True

    def check_head(self, head: bytes) -> None:
        raise NotImplementedError

    def mark_ready(self) -> None:
        self.ready = True
        self.tally.ready += 1
        self.seq = -1


class SSEClient(_Client):
    def check_head(self, head: bytes) -> None:
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(head.decode("latin-1"))

    def data_received(self, data: bytes) -> None:
        now = time.monotonic_ns()
        buf = self.buf + data if self.buf else data
        self.buf = buf
        if not self.open and not self.head():
            return
        buf = self.buf
        if not self.ready:
            if buf.find(b"ready") < 0:
                return
            self.mark_ready()
        pos = 0
        find = buf.find
        while True:
            i = find(b"data: ", pos)
            if i < 0:
                break
            j = find(b"\n", i)
            if j < 0:
                pos = i
                break
            ts, seq, _ = buf[i + 6:j].split(b" ", 2)
            self.deliver(ts, seq, now)
            pos = j + 1
        rest = buf[pos:]
        # keep what may be the start of a ``data:`` line
        self.buf = rest if rest.startswith(b"data: ") else rest[-6:]


class WSClient(_Client):
    KEY = base64.b64encode(b"streamcore-bench").decode()

    def check_head(self, head: bytes) -> None:
        if not head.startswith(b"HTTP/1.1 101"):
            raise RuntimeError(head.decode("latin-1"))

    def data_received(self, data: bytes) -> None:
        now = time.monotonic_ns()
        self.buf = self.buf + data if self.buf else data
        if not self.open and not self.head():
            return
        buf = self.buf
        size = len(buf)
        p = 0
        while p + 2 <= size:
            b0, b1 = buf[p], buf[p + 1]
            n = b1 & 0x7F
            h = 2
            if n == 126:
                if p + 4 > size:
                    break
                n = (buf[p + 2] << 8) | buf[p + 3]
                h = 4
            elif n == 127:
                if p + 10 > size:
                    break
                n = int.from_bytes(buf[p + 2:p + 10], "big")
                h = 10
            if p + h + n > size:
                break
            opcode = b0 & 0x0F
            payload = buf[p + h:p + h + n]
            p += h + n
            if opcode == 1:
                if not self.ready:
                    if payload == b"ready":
                        self.mark_ready()
                    continue
                ts, seq, _ = payload.split(b" ", 2)
                self.deliver(ts, seq, now)
            elif opcode == 9:  # ping: a pong with the same data, mask key 0
                self.transport.write(bytes([0x8A, 0x80 | len(payload)]) + b"\0\0\0\0" + payload)
            elif opcode == 8:
                self.transport.close()
        self.buf = buf[p:]


async def client_main(ports: list[int], sse: int, ws: int, lat_file: str) -> None:
    loop = asyncio.get_running_loop()
    tally = Tally()
    transports: list[Any] = []

    async def connect(kind: str, count: int) -> None:
        target = tally.ready + count
        for k in range(count):
            port = ports[k % len(ports)]
            if kind == "sse":
                transport, _ = await loop.create_connection(lambda: SSEClient(tally),
                                                            "127.0.0.1", port)
                transport.write(b"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                b"Accept: text/event-stream\r\n\r\n")
            else:
                transport, _ = await loop.create_connection(lambda: WSClient(tally),
                                                            "127.0.0.1", port)
                transport.write(
                    f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                    f"Connection: Upgrade\r\nSec-WebSocket-Key: {WSClient.KEY}\r\n"
                    f"Sec-WebSocket-Version: 13\r\n\r\n".encode())
            transports.append(transport)
            if k % 50 == 49:  # let the servers keep up with the handshakes
                while tally.ready < target - count + k - 200:
                    await asyncio.sleep(0.01)
        deadline = time.monotonic() + 60
        while tally.ready < target and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        if tally.ready < target:
            raise RuntimeError(f"only {tally.ready} of {target} clients ready")

    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    def reply(obj: Any) -> None:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    reply({"started": True})
    while True:
        line = (await reader.readline()).decode().strip()
        if not line or line == "quit":
            break
        if line == "connect sse":
            await connect("sse", sse)
            reply({"ready": tally.ready})
        elif line == "connect ws":
            await connect("ws", ws)
            reply({"ready": tally.ready})
        elif line == "reset":
            tally.reset()
            reply({"reset": True})
        elif line == "count":
            reply({"delivered": tally.delivered})
        elif line == "report":
            with open(lat_file, "wb") as fh:
                tally.latencies.tofile(fh)
            reply({"delivered": tally.delivered, "disorder": tally.disorder,
                   "last_ns": tally.last_ns})
    for transport in transports:
        transport.close()


def client(ports: str, sse: int, ws: int, lat_file: str) -> None:
    loop = new_loop()
    loop.run_until_complete(client_main([int(p) for p in ports.split(",")], sse, ws, lat_file))


# -- the driver --------------------------------------------------------------------

def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


class ClientProc:
    def __init__(self, ports: list[int], sse: int, ws: int, directory: str, k: int) -> None:
        self.lat_file = os.path.join(directory, f"latencies-{k}")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.e2e_fanout", "client",
             ",".join(map(str, ports)), str(sse), str(ws), self.lat_file],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.read()

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"client exited with {self.proc.wait()}")
        return json.loads(line)  # type: ignore[no-any-return]

    def ask(self, command: str) -> dict[str, Any]:
        self.send(command)
        return self.read()

    def latencies(self) -> array.array[float]:
        out = array.array("f")
        with open(self.lat_file, "rb") as fh:
            out.frombytes(fh.read())
        return out

    def stop(self) -> None:
        try:
            self.send("quit")
            self.proc.wait(10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()


def broadcast_all(clients: list[ClientProc], command: str) -> list[dict[str, Any]]:
    for c in clients:
        c.send(command)
    return [c.read() for c in clients]


class Publisher:
    """Publishes from the driver's own loop, with each side's own API."""

    def __init__(self, side: str, redis_port: int, size: int) -> None:
        self.side = side
        self.redis_port = redis_port
        self.pad = "x" * size
        self.seq = 0
        self.loop = new_loop()
        self.loop.run_until_complete(self._open())

    async def _open(self) -> None:
        url = f"redis://127.0.0.1:{self.redis_port}"
        if self.side == "streamcore":
            import redis.asyncio as redis_asyncio

            from streamcore.integrations.redis import Broadcaster

            self.redis = redis_asyncio.Redis.from_url(url)
            ours = Broadcaster(self.redis, maxlen=10_000)
            self._publish = lambda text: ours.publish(CHANNEL, text)
        else:
            from broadcaster import Broadcast

            self.peer = Broadcast(url)
            await self.peer.connect()
            self._publish = lambda text: self.peer.publish(CHANNEL, text)

    async def _run(self, n: int, rate: float | None) -> None:
        start = time.monotonic()
        for k in range(n):
            if rate:
                delay = start + k / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            await self._publish(f"{time.monotonic_ns()} {self.seq} {self.pad}")
            self.seq += 1

    def run(self, n: int, rate: float | None) -> None:
        self.loop.run_until_complete(self._run(n, rate))

    def close(self) -> None:
        async def close() -> None:
            if self.side == "streamcore":
                await self.redis.aclose()
            else:
                await self.peer.disconnect()
        self.loop.run_until_complete(close())
        self.loop.close()


def wait_delivered(clients: list[ClientProc], expected: int, stall: float = 5.0) -> int:
    """Poll the clients until ``expected`` deliveries arrived, or none came
    for ``stall`` seconds; returns what was delivered."""
    seen, since = -1, time.monotonic()
    while True:
        total = sum(r["delivered"] for r in broadcast_all(clients, "count"))
        if total >= expected:
            return total
        if total != seen:
            seen, since = total, time.monotonic()
        elif time.monotonic() - since > stall:
            return total
        time.sleep(0.05)


def cpu_seconds(pid: int) -> float:
    """The user + system CPU time a process has used (``/proc/PID/stat``)."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy() -> float:
    """CPU seconds all cores have been busy (``/proc/stat``: not idle, not
    waiting for I/O; steal counts as busy, the cores were not ours)."""
    with open("/proc/stat") as fh:
        ticks = [int(x) for x in fh.readline().split()[1:]]
    return (sum(ticks[:8]) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def phase(clients: list[ClientProc], publisher: Publisher, n: int, rate: float | None,
          receivers: int, pids: dict[str, int]) -> dict[str, Any]:
    broadcast_all(clients, "reset")
    cpu_before = {role: cpu_seconds(pid) for role, pid in pids.items()}
    busy_before = machine_busy()
    start_ns = time.monotonic_ns()
    publisher.run(n, rate)
    wait_delivered(clients, n * receivers)
    cpu = {role: cpu_seconds(pid) - cpu_before[role] for role, pid in pids.items()}
    cpu["other"] = max(0.0, machine_busy() - busy_before - sum(cpu.values()))
    reports = broadcast_all(clients, "report")
    lat = sorted(x for c in clients for x in c.latencies())
    delivered = sum(r["delivered"] for r in reports)
    end_ns = max(r["last_ns"] for r in reports)
    return {
        "delivered": delivered, "expected": n * receivers,
        "disorder": sum(r["disorder"] for r in reports),
        "seconds": (end_ns - start_ns) / 1e9,
        "deliveries_per_s": delivered / max((end_ns - start_ns) / 1e9, 1e-9),
        "p50_ms": statistics.median(lat) if lat else float("nan"),
        "p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else float("nan"),
        # CPU seconds each process used, from the first publish to the last
        # delivery (or the stall): who spends the machine's cores
        "cpu": cpu,
    }


def warm_up(ports: list[int]) -> None:
    """One SSE and one WebSocket connection to each worker, then closed, so
    what every worker loads on first use is in the baseline."""
    for port in ports:
        for request in (b"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
                        f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                        f"Connection: Upgrade\r\nSec-WebSocket-Key: {WSClient.KEY}\r\n"
                        f"Sec-WebSocket-Version: 13\r\n\r\n".encode()):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(request)
                got = b""
                while b"ready" not in got:
                    more = s.recv(65536)
                    if not more:
                        break
                    got += more


def run_side(side: str, args: argparse.Namespace, directory: str) -> dict[str, Any]:
    redis = RedisServer(tempfile.mkdtemp(prefix=f"redis-{side}-", dir=directory),
                        binary=args.redis_server)
    redis_port = redis.port
    workers: list[subprocess.Popen[Any]] = []
    clients: list[ClientProc] = []
    publisher: Publisher | None = None
    try:
        redis.start()
        ports = [free_port() for _ in range(2)]
        for port in ports:
            workers.append(subprocess.Popen(
                [sys.executable, "-m", "benchmarks.e2e_fanout", "serve", side, str(port),
                 str(redis_port)], cwd=ROOT))
        for port, proc in zip(ports, workers):
            wait_port(port, proc, f"{side} worker")
        warm_up(ports)
        time.sleep(1.0)
        procs = args.client_procs
        shares = [(args.clients // procs + (k < args.clients % procs)) for k in range(procs)]
        clients = [ClientProc(ports, n, n, directory, k) for k, n in enumerate(shares)]
        base = sum(rss_kib(w.pid) for w in workers)
        broadcast_all(clients, "connect sse")
        time.sleep(1.0)
        after_sse = sum(rss_kib(w.pid) for w in workers)
        broadcast_all(clients, "connect ws")
        time.sleep(1.0)
        after_ws = sum(rss_kib(w.pid) for w in workers)
        receivers = 2 * args.clients
        publisher = Publisher(side, redis_port, args.size)
        pids = {"redis": redis.pid, "driver": os.getpid(),
                **{f"worker {k}": w.pid for k, w in enumerate(workers)},
                **{f"clients {k}": c.proc.pid for k, c in enumerate(clients)}}
        fixed = phase(clients, publisher, int(args.rate * args.seconds), args.rate, receivers,
                      pids)
        burst = phase(clients, publisher, args.burst, None, receivers, pids)
        return {
            "kib_sse": (after_sse - base) / args.clients,
            "kib_ws": (after_ws - after_sse) / args.clients,
            "kib_idle": (after_ws - base) / receivers,
            "fixed": fixed, "burst": burst,
        }
    finally:
        for c in clients:
            c.stop()
        if publisher is not None:
            publisher.close()
        for proc in workers:  # a graceful stop would wait for the open streams
            proc.kill()
            proc.wait()
        redis.stop()


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Each figure's median over the runs; counts added up."""
    out: dict[str, Any] = {k: statistics.median(r[k] for r in runs)
                           for k in ("kib_sse", "kib_ws", "kib_idle")}
    for name in ("fixed", "burst"):
        out[name] = {k: statistics.median(r[name][k] for r in runs)
                     for k in ("deliveries_per_s", "p50_ms", "p99_ms", "seconds")}
        out[name].update({k: sum(r[name][k] for r in runs)
                          for k in ("delivered", "expected", "disorder")})
        out[name]["cpu"] = {role: statistics.median(r[name]["cpu"][role] for r in runs)
                            for role in runs[0][name]["cpu"]}
    return out


def cpu_groups(cpu: dict[str, float]) -> dict[str, float]:
    """A phase's CPU seconds by kind of process (both workers together, both
    client processes together)."""
    out: dict[str, float] = {}
    for role, seconds in cpu.items():
        kind = role.split()[0]
        out[kind] = out.get(kind, 0.0) + seconds
    return out


def cpu_table(rows: dict[str, dict[str, Any]], args: argparse.Namespace) -> str:
    """Who spent the CPU during the fixed rate: seconds, and microseconds
    per delivery, of each kind of process ("other": the rest of the
    machine, whatever else runs on it)."""
    kinds = ["worker", "clients", "redis", "driver", "other"]
    lines = [f"CPU during the fixed rate ({int(args.rate * args.seconds)} events at "
             f"{args.rate:g}/s; user + system seconds, median of the runs; µs per delivery "
             "in brackets):", "",
             "| side | " + " | ".join(f"{k}{'s' if k == 'worker' else ''}" for k in kinds)
             + " |", "|---|" + "---|" * len(kinds)]
    for side, r in rows.items():
        f = r["fixed"]
        groups = cpu_groups(f["cpu"])
        per = f["delivered"] / max(1, args.repeat)
        lines.append(f"| {side} | " + " | ".join(
            f"{groups.get(k, 0.0):.2f} s ({1e6 * groups.get(k, 0.0) / max(per, 1):.1f})"
            for k in kinds) + " |")
    return "\n".join(lines) + "\n"


def versions() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    import streamcore

    def version(name: str) -> str:
        try:
            return installed(name)
        except PackageNotFoundError:  # a side not installed is not run either
            return "not installed"

    names = ["redis", "uvicorn", "starlette", "uvloop", "broadcaster", "sse-starlette",
             "websockets"]
    found = [f"{n} {version(n)}" for n in names]
    server = subprocess.run(["redis-server", "--version"], capture_output=True, text=True)
    rv = next((w[2:] for w in server.stdout.split() if w.startswith("v=")), "?")
    return (f"streamcore {streamcore.__version__} ({streamcore.IMPLEMENTATION}), "
            f"redis-server {rv}, " + ", ".join(found) + f", Python {sys.version.split()[0]}, "
            f"{os.cpu_count()} CPUs")


def table(rows: dict[str, dict[str, Any]], args: argparse.Namespace) -> str:
    ours = rows.get("streamcore")
    lines = [
        f"# Fan-out through Redis: 2 uvicorn workers, {args.clients:,} SSE + "
        f"{args.clients:,} WebSocket clients",
        "",
        f"{versions()}.",
        "",
        f"Fixed rate: {int(args.rate * args.seconds)} events at {args.rate:g}/s; saturation: "
        f"{args.burst} events published as fast as possible; {args.size} B of padding per "
        f"event; {args.client_procs} client processes; "
        f"{args.repeat} run{'s' if args.repeat > 1 else ''} per side"
        f"{' (each figure the median)' if args.repeat > 1 else ''}.",
        "",
        "| side | deliveries/s (saturation) | delivered | p50 ms at "
        f"{args.rate:g}/s | p99 ms at {args.rate:g}/s | delivered at {args.rate:g}/s "
        "| KiB per idle SSE conn | KiB per idle WS conn | KiB per idle conn |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for side, r in rows.items():
        f, b = r["fixed"], r["burst"]
        bad = f" ({f['disorder'] + b['disorder']} out of order)" \
            if f["disorder"] + b["disorder"] else ""
        lines.append(
            f"| {side} | {b['deliveries_per_s']:,.0f} | {b['delivered']:,}/{b['expected']:,}"
            f"{bad} | {f['p50_ms']:.1f} | {f['p99_ms']:.1f} | {f['delivered']:,}/"
            f"{f['expected']:,} | {r['kib_sse']:.1f} | {r['kib_ws']:.1f} | "
            f"{r['kib_idle']:.1f} |")
    if ours is not None:
        lines += ["", "| target (issue 9) | streamcore | peer | result |", "|---|---|---|---|"]
        for side, r in rows.items():
            if side == "streamcore":
                continue
            ratio = ours["burst"]["deliveries_per_s"] / r["burst"]["deliveries_per_s"]
            mem = ours["kib_idle"] / r["kib_idle"] if r["kib_idle"] > 0 else float("nan")
            lines += [
                f"| deliveries/s at saturation >= 2x {side} | "
                f"{ours['burst']['deliveries_per_s']:,.0f} | {r['burst']['deliveries_per_s']:,.0f}"
                f" | {ratio:.2f}x, {'met' if ratio >= 2 else 'MISSED'} |",
                f"| memory per idle connection <= 0.5x {side} | {ours['kib_idle']:.1f} KiB | "
                f"{r['kib_idle']:.1f} KiB | {mem:.2f}x, {'met' if mem <= 0.5 else 'MISSED'} |",
            ]
        p99 = ours["fixed"]["p99_ms"]
        lines.append(f"| p99 < 50 ms at {args.rate:g} events/s | {p99:.1f} ms | | "
                     f"{'met' if p99 < 50 else 'MISSED'} |")
    return "\n".join(lines) + "\n"


def sweep_table(sweep: dict[int, dict[str, dict[str, Any]]], sides: list[str],
                args: argparse.Namespace) -> str:
    runs = f"{args.repeat} runs each, medians" if args.repeat > 1 else "one run each"
    lines = [f"Latency at {args.rate:g} events/s by number of clients ({runs}, "
             f"{int(args.rate * args.seconds)} events):", "",
             "| SSE + WebSocket clients | deliveries/s asked | "
             + " | ".join(f"{s} p50 ms | {s} p99 ms" for s in sides) + " |",
             "|---|---|" + "---|---|" * len(sides)]
    for n, by_side in sweep.items():
        cells = [f"{n:,} + {n:,}", f"{2 * n * args.rate:,.0f}"]
        for side in sides:
            f = by_side[side]
            cells += [f"{f['p50_ms']:.1f}", f"{f['p99_ms']:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def chart(rows: dict[str, dict[str, Any]], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(rows)
    colors = ["#1f6feb" if n == "streamcore" else "#8b949e" for n in names]
    panels = [
        ("thousand deliveries/s (saturation)",
         [rows[n]["burst"]["deliveries_per_s"] / 1000 for n in names]),
        ("p99 ms at the fixed rate (log scale)", [rows[n]["fixed"]["p99_ms"] for n in names]),
        ("KiB per idle connection", [rows[n]["kib_idle"] for n in names]),
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(11, 3.4))
    for ax, (title, values) in zip(axes, panels):
        bars = ax.bar(names, values, color=colors)
        ax.bar_label(bars, fmt="%.4g", fontsize=8)
        ax.set_title(title, fontsize=10)
        if title.startswith("p99"):
            ax.set_yscale("log")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="100 + 100 clients, 1 s at the fixed rate, a burst of 100")
    parser.add_argument("--clients", type=int, default=None,
                        help="SSE clients, and as many WebSocket clients (default 1000)")
    parser.add_argument("--rate", type=float, default=100.0, help="events/s of the fixed rate")
    parser.add_argument("--seconds", type=float, default=None, help="of the fixed rate (3)")
    parser.add_argument("--burst", type=int, default=None, help="events published at once (300)")
    parser.add_argument("--size", type=int, default=64, help="bytes of padding per event")
    parser.add_argument("--client-procs", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs per side, in turn; the table gives each figure's median")
    parser.add_argument("--sides", default=",".join(SIDES))
    parser.add_argument("--latency-sweep", default="", metavar="N,N,...",
                        help="then the fixed rate alone with N + N clients for each N")
    parser.add_argument("--no-chart", action="store_true")
    parser.add_argument("--out", default="fanout", help="<results>/<out>.md and .png")
    parser.add_argument("--results", default=RESULTS, help="the folder (benchmarks/results)")
    parser.add_argument("--json", action="store_true", help="also <out>.json, the figures")
    args = parser.parse_args()
    quick = {"clients": 100, "seconds": 1.0, "burst": 100}
    full = {"clients": 1000, "seconds": 3.0, "burst": 300}
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.redis_server = redis_server_path() or "/usr/bin/redis-server"
    if not os.path.exists(args.redis_server):
        sys.exit("redis-server is not installed (make system-deps installs Debian's)")
    runs: dict[str, list[dict[str, Any]]] = {}
    sides = [s for s in args.sides.split(",") if s]
    with tempfile.TemporaryDirectory(prefix="fanout-") as directory:
        for _ in range(args.repeat):  # sides in turn, so a busy spell hits both
            for side in sides:
                r = run_side(side, args, directory)
                runs.setdefault(side, []).append(r)
                f, b = r["fixed"], r["burst"]
                print(f"{side:12} {b['deliveries_per_s']:>9,.0f} deliveries/s "
                      f"({b['delivered']}/{b['expected']})  at {args.rate:g}/s: p50 "
                      f"{f['p50_ms']:.1f} ms p99 {f['p99_ms']:.1f} ms ({f['delivered']}/"
                      f"{f['expected']})  idle: {r['kib_sse']:.1f} KiB/SSE, "
                      f"{r['kib_ws']:.1f} KiB/WS  disorder {f['disorder'] + b['disorder']}  "
                      "CPU s at the fixed rate: " + ", ".join(
                          f"{k} {v:.2f}" for k, v in cpu_groups(f["cpu"]).items()),
                      flush=True)
        sweep: dict[int, dict[str, dict[str, Any]]] = {}
        for n in [int(x) for x in args.latency_sweep.split(",") if x]:
            small = argparse.Namespace(**{**vars(args), "clients": n, "burst": 10})
            points: dict[str, list[dict[str, Any]]] = {}
            for _ in range(args.repeat):
                for side in sides:
                    r = run_side(side, small, directory)
                    points.setdefault(side, []).append(r)
                    print(f"{side:12} {n} + {n} clients at {args.rate:g}/s: p50 "
                          f"{r['fixed']['p50_ms']:.1f} ms p99 {r['fixed']['p99_ms']:.1f} ms",
                          flush=True)
            sweep[n] = {side: median_run(rs)["fixed"] for side, rs in points.items()}
    rows = {side: median_run(side_runs) for side, side_runs in runs.items()}
    text = table(rows, args) + "\n" + cpu_table(rows, args)
    if sweep:
        text += "\n" + sweep_table(sweep, sides, args)
    print("\n" + text)
    os.makedirs(args.results, exist_ok=True)
    with open(os.path.join(args.results, f"{args.out}.md"), "w") as fh:
        fh.write(text)
    if args.json:
        with open(os.path.join(args.results, f"{args.out}.json"), "w") as fh:
            json.dump(rows, fh, indent=1)
    if not args.no_chart:
        path = os.path.join(args.results, f"{args.out}.png")
        chart(rows, path)
        print(f"chart: {os.path.relpath(path, ROOT)}")
        if args.out == "fanout" and args.results == RESULTS:  # the benchmarks page shows it
            shutil.copyfile(path, os.path.join(ROOT, "docs", "img", "bench-fanout.png"))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        serve(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif len(sys.argv) > 1 and sys.argv[1] == "client":
        client(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
    else:
        main()
