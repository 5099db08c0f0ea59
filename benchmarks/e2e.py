"""End-to-end WebSocket echo over loopback (``make bench-e2e``).

Each server runs in its own process, the client in another, over
127.0.0.1, on uvloop when it is installed (asyncio otherwise).  The client is
picows (the fastest client we have, so it is not what is measured): it keeps
``inflight`` binary messages of ``size`` bytes in flight for ``seconds`` and
counts echoes; the round trip of every message gives p50 and p99.  The same
echo app runs on every server:

- ``streamcore``: ``streamcore.integrations.asyncio.serve(listener=...)``, the
  callback path; ``streamcore-async``: the same with an ``async for`` handler;
- ``picows``: its all-Cython server and ``WSListener``;
- ``websockets``: ``websockets.asyncio.server.serve``;
- ``aiohttp``: ``web.WebSocketResponse``.

Compression is off everywhere, message limits lifted, keepalive off.

    python -m benchmarks.e2e [--seconds 2] [--servers streamcore,picows]
    python -m benchmarks.e2e serve NAME PORT      # one server (used by the above)
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections import deque
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RESULTS = os.path.join(HERE, "results")
SERVERS = ["streamcore", "streamcore-async", "picows", "websockets", "aiohttp"]
CASES = [(256, 1), (256, 64), (65536, 1), (65536, 64)]


def new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()  # type: ignore[no-any-return]


# -- servers -------------------------------------------------------------------

async def serve_streamcore(port: int, callbacks: bool) -> None:
    from streamcore.integrations import asyncio as adapter

    class Echo(adapter.WebSocketListener):
        def on_message(self, ws: adapter.WebSocket, message: Any) -> None:
            ws.send_nowait(message)

    async def echo(ws: adapter.WebSocket) -> None:
        async for message in ws:
            await ws.send(message)

    options: dict[str, Any] = {"max_message_size": None, "ping_interval": None}
    if callbacks:
        server = await adapter.serve(listener=Echo, port=port, **options)
    else:
        server = await adapter.serve(echo, port=port, **options)
    async with server:
        print("ready", flush=True)
        await server.serve_forever()


async def serve_picows(port: int) -> None:
    import picows

    class Echo(picows.WSListener):  # type: ignore[misc]
        def on_ws_frame(self, transport: Any, frame: Any) -> None:
            if frame.msg_type == picows.WSMsgType.CLOSE:
                transport.send_close(frame.get_close_code())
                transport.disconnect()
            elif frame.msg_type in (picows.WSMsgType.BINARY, picows.WSMsgType.TEXT):
                transport.send(frame.msg_type, frame.get_payload_as_memoryview())
            elif frame.msg_type == picows.WSMsgType.PING:
                transport.send_pong(frame.get_payload_as_bytes())

    server = await picows.ws_create_server(lambda request: Echo(), "127.0.0.1", port,
                                           max_frame_size=1 << 30)
    async with server:
        print("ready", flush=True)
        await server.serve_forever()


async def serve_websockets(port: int) -> None:
    from websockets.asyncio.server import serve

    async def echo(ws: Any) -> None:
        async for message in ws:
            await ws.send(message)

    async with serve(echo, "127.0.0.1", port, compression=None, max_size=None,
                     ping_interval=None) as server:
        print("ready", flush=True)
        await server.serve_forever()


async def serve_aiohttp(port: int) -> None:
    from aiohttp import WSMsgType, web

    async def echo(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0, compress=False, autoping=True)
        await ws.prepare(request)
        async for msg in ws:
            if msg.type == WSMsgType.BINARY:
                await ws.send_bytes(msg.data)
            elif msg.type == WSMsgType.TEXT:
                await ws.send_str(msg.data)
        return ws

    app = web.Application()
    app.router.add_get("/", echo)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print("ready", flush=True)
    await asyncio.Event().wait()


def serve(name: str, port: int) -> None:
    runners = {
        "streamcore": lambda: serve_streamcore(port, callbacks=True),
        "streamcore-async": lambda: serve_streamcore(port, callbacks=False),
        "picows": lambda: serve_picows(port),
        "websockets": lambda: serve_websockets(port),
        "aiohttp": lambda: serve_aiohttp(port),
    }
    loop = new_loop()
    loop.run_until_complete(runners[name]())


# -- the client ----------------------------------------------------------------

async def measure(port: int, size: int, inflight: int, seconds: float) -> dict[str, float]:
    import picows

    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    payload = os.urandom(size)
    rtts: list[float] = []

    class Client(picows.WSListener):  # type: ignore[misc]
        def on_ws_connected(self, transport: Any) -> None:
            self.transport = transport
            self.sent: deque[float] = deque()
            self.count = 0
            self.start = time.perf_counter()
            self.stop = self.start + seconds
            for _ in range(inflight):
                self.sent.append(time.perf_counter())
                transport.send(picows.WSMsgType.BINARY, payload)

        def on_ws_frame(self, transport: Any, frame: Any) -> None:
            if frame.msg_type != picows.WSMsgType.BINARY or done.done():
                return
            if frame.payload_size != size:
                done.set_exception(AssertionError(f"echo of {frame.payload_size} bytes"))
                return
            now = time.perf_counter()
            rtts.append(now - self.sent.popleft())
            self.count += 1
            if now < self.stop:
                self.sent.append(now)
                transport.send(picows.WSMsgType.BINARY, payload)
            elif not self.sent:
                self.elapsed = now - self.start
                done.set_result(None)

    transport, client = await picows.ws_connect(Client, f"ws://127.0.0.1:{port}/",
                                                max_frame_size=1 << 30)
    await asyncio.wait_for(done, seconds + 30)
    transport.send_close(1000)
    transport.disconnect()
    rtts.sort()
    return {
        "messages_per_s": client.count / client.elapsed,
        "p50_us": statistics.median(rtts) * 1e6,
        "p99_us": rtts[min(len(rtts) - 1, int(len(rtts) * 0.99))] * 1e6,
    }


def client(port: int, size: int, inflight: int, seconds: float) -> None:
    loop = new_loop()
    print(json.dumps(loop.run_until_complete(measure(port, size, inflight, seconds))))


# -- the driver ----------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(name: str) -> tuple[subprocess.Popen[str], int]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.e2e", "serve", name, str(port)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != "ready":
        proc.kill()
        raise RuntimeError(f"server {name} did not start")
    return proc, port


def run_client(port: int, size: int, inflight: int, seconds: float) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.e2e", "client", str(port), str(size),
         str(inflight), str(seconds)],
        cwd=ROOT, capture_output=True, text=True, check=True, timeout=seconds + 60,
    )
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def human(size: int) -> str:
    return f"{size // 1024} KiB" if size >= 1024 else f"{size} B"


def table(results: dict[tuple[int, int], dict[str, dict[str, float]]], servers: list[str]) -> str:
    peers = [s for s in servers if not s.startswith("streamcore")]
    head = ["message", "in flight", "server", "messages/s", "p50 µs", "p99 µs"]
    head += [f"streamcore / {p}" for p in peers]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for (size, inflight), by_server in results.items():
        ours = by_server.get("streamcore", {}).get("messages_per_s")
        for name in servers:
            r = by_server.get(name)
            if r is None:
                continue
            cells = [human(size), str(inflight), name, f"{r['messages_per_s']:,.0f}",
                     f"{r['p50_us']:,.0f}", f"{r['p99_us']:,.0f}"]
            if name == "streamcore" and ours:
                cells += [f"{ours / by_server[p]['messages_per_s']:.2f}x" if p in by_server else ""
                          for p in peers]
            else:
                cells += [""] * len(peers)
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def chart(results: dict[tuple[int, int], dict[str, dict[str, float]]], servers: list[str],
          path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases = list(results)
    fig, axes = plt.subplots(1, len(cases), figsize=(4 * len(cases), 3.6))
    for ax, case in zip(axes, cases):
        names = [s for s in servers if s in results[case]]
        values = [results[case][s]["messages_per_s"] / 1000 for s in names]
        ax.bar(names, values, color=["#1f6feb" if n.startswith("streamcore") else "#8b949e"
                                     for n in names])
        ax.set_title(f"{human(case[0])}, {case[1]} in flight")
        ax.set_ylabel("thousand echoes/s")
        ax.tick_params(axis="x", rotation=45)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--servers", default=",".join(SERVERS))
    parser.add_argument("--no-chart", action="store_true")
    args = parser.parse_args()
    servers = [s for s in args.servers.split(",") if s]
    results: dict[tuple[int, int], dict[str, dict[str, float]]] = {c: {} for c in CASES}
    for name in servers:
        proc, port = start_server(name)
        try:
            for size, inflight in CASES:
                r = run_client(port, size, inflight, args.seconds)
                results[(size, inflight)][name] = r
                print(f"{name:17} {human(size):>7} x{inflight:<3} "
                      f"{r['messages_per_s']:>10,.0f}/s  p50 {r['p50_us']:>8,.0f} µs  "
                      f"p99 {r['p99_us']:>8,.0f} µs", flush=True)
        finally:
            proc.kill()
            proc.wait()
    loop_name = "uvloop" if new_loop().__class__.__module__.startswith("uvloop") else "asyncio"
    text = (f"# WebSocket echo end to end ({loop_name}, picows client, "
            f"{args.seconds:g} s per case)\n\n" + table(results, servers) + "\n")
    print("\n" + text)
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "e2e-ws.md"), "w") as fh:
        fh.write(text)
    if not args.no_chart:
        path = os.path.join(RESULTS, "e2e-ws.png")
        chart(results, servers, path)
        print(f"chart: {os.path.relpath(path, ROOT)}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        serve(sys.argv[2], int(sys.argv[3]))
    elif len(sys.argv) > 1 and sys.argv[1] == "client":
        client(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]))
    else:
        main()
