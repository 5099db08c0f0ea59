"""SSE fan-out on one uvicorn worker (``make bench-e2e``).

The server (its own process, uvicorn, uvloop when installed) keeps one
asyncio queue per connected client; ``POST /publish`` puts each event in
every queue.  The same app runs with these responses:

- ``streamcore``: :class:`streamcore.integrations.asgi.EventSourceResponse`
  fed by :class:`streamcore.integrations.asgi.Broadcast` (docs/asgi.md, the
  documented way to fan out in one process): each event encoded once into
  one log that every client's response reads, instead of a queue each;
- ``streamcore-queue``: the same response fed by a queue per client, each
  event encoded once (``bytes``), as its API allows: the peers' app shape;
- ``sse-starlette``: ``sse_starlette.EventSourceResponse`` with dict events,
  encoded per connection, as its API requires;
- ``fastapi``: FastAPI's own ``response_class=EventSourceResponse`` with
  ``ServerSentEvent`` items (encoded per connection).

Not in the default run (it is no uvicorn worker), ``--servers
streamcore-asyncio`` adds the same app on
:mod:`streamcore.integrations.asyncio` alone (``serve(http=...)`` with an
``EventStreamResponse``), for its ratio to the ASGI stacks; and
``streamcore-single`` runs ours with ``coalesce=False`` (one
``http.response.body`` per event, as the others send), to show what
coalescing brings.

The client process opens ``clients`` connections (streamcore's chunked and
SSE decoders read them), then measures: memory per idle connection (the
server's RSS with every client connected, minus before, per client),
publish-to-delivery latency (p50, p99) at a fixed rate, and deliveries per
second for a burst published as fast as possible.  Every event carries its
publish time (``time.monotonic_ns``, one clock for every process).

    python -m benchmarks.e2e_sse [--clients 1000] [--servers streamcore,fastapi]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from typing import Any

from benchmarks.e2e import RESULTS, ROOT, free_port, new_loop

SERVERS = ["streamcore", "streamcore-queue", "sse-starlette", "fastapi"]
# on request: the asyncio adapter (no ASGI), and ours writing each event in its
# own send (coalesce=False), to show what coalescing brings
EXTRA_SERVERS = ["streamcore-asyncio", "streamcore-single"]


# -- the server ------------------------------------------------------------------

def make_app(kind: str) -> Any:
    queues: set[asyncio.Queue[Any]] = set()

    async def stream(encode: Any) -> Any:
        queue: asyncio.Queue[Any] = asyncio.Queue()
        queues.add(queue)
        try:
            while True:
                yield encode(await queue.get())
        finally:
            queues.discard(queue)

    hub = None
    if kind == "streamcore":
        from streamcore.integrations.asgi import Broadcast

        hub = Broadcast()  # one log for every client instead of a queue each

    def clients() -> int:
        return hub.subscribers if hub is not None else len(queues)

    async def publish(n: int, rate: float | None, size: int) -> None:
        pad = "x" * size
        for k in range(n):
            event = (f"{time.monotonic_ns()} {pad}", str(k))
            item: Any = event
            if hub is not None:
                hub.publish({"data": event[0], "id": event[1]})  # encoded once
            else:
                if kind.startswith("streamcore"):
                    from streamcore.sse import encode_event

                    item = encode_event(event[0], id=event[1])  # once for every client
                for queue in queues:
                    queue.put_nowait(item)
            await asyncio.sleep(1 / rate if rate else 0)

    if kind == "fastapi":
        from fastapi import FastAPI
        from fastapi.sse import EventSourceResponse, ServerSentEvent

        app = FastAPI()

        @app.get("/events", response_class=EventSourceResponse)
        async def events() -> Any:
            async for item in stream(lambda e: ServerSentEvent(raw_data=e[0], id=e[1])):
                yield item

        @app.post("/publish")
        async def publish_route(n: int, rate: float = 0, size: int = 0) -> dict[str, int]:
            await publish(n, rate or None, size)
            return {"clients": len(queues)}

        @app.get("/count")
        async def count() -> dict[str, int]:
            return {"clients": len(queues)}

        return app

    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    if kind == "streamcore":
        from streamcore.integrations.asgi import EventSourceResponse

        def response() -> Any:
            assert hub is not None
            return EventSourceResponse(hub.subscribe(), ping_interval=15)
    elif kind in ("streamcore-queue", "streamcore-single"):
        from streamcore.integrations.asgi import EventSourceResponse

        coalesce = kind == "streamcore-queue"  # the default; -single: one send per event

        def response() -> Any:
            return EventSourceResponse(stream(lambda item: item), ping_interval=15,
                                       coalesce=coalesce)
    else:
        from sse_starlette import EventSourceResponse as Peer

        def response() -> Any:
            return Peer(stream(lambda e: {"data": e[0], "id": e[1]}), ping=15)

    async def events_route(request: Request) -> Any:
        return response()

    async def publish_route(request: Request) -> Any:
        q = request.query_params
        await publish(int(q["n"]), float(q.get("rate", 0)) or None, int(q.get("size", 0)))
        return JSONResponse({"clients": clients()})

    async def count_route(request: Request) -> Any:
        return JSONResponse({"clients": clients()})

    return Starlette(routes=[Route("/events", events_route),
                             Route("/publish", publish_route, methods=["POST"]),
                             Route("/count", count_route)])


def serve_asyncio(port: int) -> None:
    """The same app on the asyncio adapter: /events, /publish, /count."""
    from urllib.parse import parse_qs

    from streamcore.integrations import asyncio as adapter
    from streamcore.sse import encode_event

    queues: set[asyncio.Queue[Any]] = set()

    async def stream() -> Any:
        queue: asyncio.Queue[Any] = asyncio.Queue()
        queues.add(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            queues.discard(queue)

    async def app(request: adapter.Request) -> Any:
        if request.path == "/events":
            return adapter.EventStreamResponse(stream(), ping_interval=15)
        if request.path == "/publish":
            q = {k: v[0] for k, v in parse_qs(request.query).items()}
            n, rate, size = int(q["n"]), float(q.get("rate", 0)) or None, int(q.get("size", 0))
            pad = "x" * size
            for k in range(n):
                item = encode_event(f"{time.monotonic_ns()} {pad}", id=str(k))  # once for all
                for queue in queues:
                    queue.put_nowait(item)
                await asyncio.sleep(1 / rate if rate else 0)
        return adapter.Response(f'{{"clients":{len(queues)}}}', content_type="application/json")

    async def main() -> None:
        server = await adapter.serve(http=app, port=port, backlog=4096)
        await server.serve_forever()

    loop = new_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(main())


def serve(kind: str, port: int) -> None:
    if kind == "streamcore-asyncio":
        serve_asyncio(port)
        return
    import uvicorn

    config = uvicorn.Config(make_app(kind), host="127.0.0.1", port=port, log_level="warning",
                            lifespan="off", backlog=4096, timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    loop = new_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(server.serve())


# -- the client --------------------------------------------------------------------

class Client(asyncio.Protocol):
    """One SSE connection: HTTP head skipped, chunked body and SSE decoded."""

    def __init__(self, latencies: list[float], counter: list[int]) -> None:
        from streamcore.chunked import ChunkedDecoder
        from streamcore.sse import SSEDecoder

        self.head = b""
        self.chunked = ChunkedDecoder(coalesce=True)
        self.sse = SSEDecoder()
        self.latencies = latencies
        self.counter = counter

    def data_received(self, data: bytes) -> None:
        if self.chunked is not None and self.head is not None:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            data, self.head = self.head[end + 4:], None  # type: ignore[assignment]
        now = time.monotonic_ns()
        for piece in self.chunked.feed(data):
            for event in self.sse.feed(piece.data):
                sent = int(event.data.split(" ", 1)[0])
                self.latencies.append((now - sent) / 1e6)
                self.counter[0] += 1


async def http(port: int, method: str, target: str) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"{method} {target} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
                 "Connection: close\r\n\r\n".encode())
    body = await reader.read()
    writer.close()
    return body


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (the server's own work,
    whatever else the machine runs)."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def measure(port: int, pid: int, clients: int, rate_events: int, burst: int,
                  size: int) -> dict[str, float]:
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    counter = [0]
    await asyncio.sleep(0.5)
    before = rss_kib(pid)
    transports = []
    for k in range(clients):
        transport, _ = await loop.create_connection(
            lambda: Client(latencies, counter), "127.0.0.1", port)
        transport.write(b"GET /events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
        transports.append(transport)
        if k % 100 == 99:
            await asyncio.sleep(0)
    while b'"clients":%d' % clients not in await http(port, "GET", "/count"):
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.5)
    per_connection = (rss_kib(pid) - before) / clients

    async def wait_for(total: int, timeout: float) -> float:
        deadline = time.monotonic() + timeout
        while counter[0] < total and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        return time.monotonic()

    # latency at a fixed rate: 100 events/s for rate_events / 100 s
    await http(port, "POST", f"/publish?n={rate_events}&rate=100&size={size}")
    await wait_for(rate_events * clients, 60)
    fixed = sorted(latencies)
    latencies.clear()
    # saturation: a burst published as fast as possible
    counter[0] = 0
    cpu = cpu_seconds(pid)
    start = time.monotonic()
    await http(port, "POST", f"/publish?n={burst}&size={size}")
    end = await wait_for(burst * clients, 120)
    delivered = counter[0]
    cpu = cpu_seconds(pid) - cpu
    for transport in transports:
        transport.close()
    return {
        "deliveries_per_s": delivered / (end - start),
        "delivered": delivered,
        "expected": burst * clients,
        "p50_ms": statistics.median(fixed),
        "p99_ms": fixed[min(len(fixed) - 1, int(len(fixed) * 0.99))],
        "kib_per_connection": per_connection,
        "server_cpu_us": cpu / max(delivered, 1) * 1e6,
    }


def chart(rows: list[tuple[str, dict[str, float]]], clients: int, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [kind for kind, _ in rows]
    colors = ["#1f6feb" if "streamcore" in n else "#8b949e" for n in names]
    panels = [("deliveries_per_s", "thousand deliveries/s", 1000),
              ("p99_ms", "p99 delivery latency, ms", 1),
              ("kib_per_connection", "server KiB per connection", 1)]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.2))
    for ax, (key, label, scale) in zip(axes, panels):
        ax.bar(names, [r[key] / scale for _, r in rows], color=colors)
        ax.set_ylabel(label)
        ax.tick_params(axis="x", rotation=60, labelsize=7)
    fig.suptitle(f"SSE fan-out, one uvicorn worker, {clients:,} clients")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--rate-events", type=int, default=200, help="events at 100/s")
    parser.add_argument("--burst", type=int, default=200, help="events as fast as possible")
    parser.add_argument("--size", type=int, default=64, help="bytes of padding per event")
    parser.add_argument("--servers", default=",".join(SERVERS),
                        help="of " + ", ".join(SERVERS + EXTRA_SERVERS))
    parser.add_argument("--no-chart", action="store_true")
    args = parser.parse_args()
    rows = []
    for kind in [s for s in args.servers.split(",") if s]:
        port = free_port()
        proc = subprocess.Popen([sys.executable, "-m", "benchmarks.e2e_sse", "serve", kind,
                                 str(port)], cwd=ROOT)
        try:
            for _ in range(100):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.1)
            loop = new_loop()
            r = loop.run_until_complete(measure(port, proc.pid, args.clients, args.rate_events,
                                                args.burst, args.size))
            loop.close()
        finally:
            proc.terminate()
            proc.wait()
        rows.append((kind, r))
        print(f"{kind:14} {r['deliveries_per_s']:>10,.0f} deliveries/s "
              f"({r['delivered']}/{r['expected']})  p50 {r['p50_ms']:.1f} ms  "
              f"p99 {r['p99_ms']:.1f} ms  {r['kib_per_connection']:.1f} KiB/conn  "
              f"server CPU {r['server_cpu_us']:.1f} us/delivery", flush=True)
    ours = dict(rows).get("streamcore")
    lines = [f"# SSE fan-out, one uvicorn worker, {args.clients} clients",
             "", f"{args.rate_events} events at 100/s for latency, a burst of {args.burst} "
             f"for throughput, {args.size} B of padding per event. Server CPU: the "
             "server process's user + system time over the burst, per delivery (the "
             "CPU-per-delivery ratio is the peer's over ours: how many times the work).", "",
             "| server | deliveries/s | delivered | p50 ms | p99 ms | KiB per connection "
             "| server CPU µs per delivery | streamcore deliveries/s ratio "
             "| streamcore CPU-per-delivery ratio |", "|---|---|---|---|---|---|---|---|---|"]
    for kind, r in rows:
        ratio = cpu_ratio = ""
        if ours and kind != "streamcore":
            ratio = f"{ours['deliveries_per_s'] / r['deliveries_per_s']:.2f}x"
            cpu_ratio = f"{r['server_cpu_us'] / ours['server_cpu_us']:.2f}x"
        lines.append(f"| {kind} | {r['deliveries_per_s']:,.0f} | {r['delivered']:,}/"
                     f"{r['expected']:,} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
                     f"{r['kib_per_connection']:.1f} | {r['server_cpu_us']:.1f} | {ratio} "
                     f"| {cpu_ratio} |")
    text = "\n".join(lines) + "\n"
    print("\n" + text)
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "e2e-sse.md"), "w") as fh:
        fh.write(text)
    if not args.no_chart and rows:
        path = os.path.join(RESULTS, "e2e-sse.png")
        chart(rows, args.clients, path)
        print(f"chart: {os.path.relpath(path, ROOT)}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        serve(sys.argv[2], int(sys.argv[3]))
    else:
        main()
