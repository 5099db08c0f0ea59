"""End-to-end WebSocket echo over loopback (``make bench-e2e``).

Each server runs in its own process, the client in another, over
127.0.0.1, on uvloop when it is installed (asyncio otherwise).  The client is
picows (the fastest client we have, so it is not what is measured): it keeps
``inflight`` binary messages of ``size`` bytes in flight for ``seconds`` and
counts echoes; the round trip of every message gives p50 and p99.  The same
echo app runs on every server:

- ``streamcore``: ``streamcore.integrations.asyncio.serve(listener=..., views=True)``, the
  callback path; ``streamcore-async``: the same with an ``async for`` handler;
- ``picows``: its all-Cython server and ``WSListener``;
- ``websockets``: ``websockets.asyncio.server.serve``;
- ``aiohttp``: ``web.WebSocketResponse``;
- ``uvicorn-streamcore``, ``uvicorn-websockets-sansio``, ``uvicorn-wsproto``:
  one echo ASGI app on uvicorn (one worker) with
  ``--ws streamcore.integrations.uvicorn:WebSocketProtocol``, ``--ws
  websockets-sansio`` and ``--ws wsproto``.

Compression is off everywhere, message limits lifted, keepalive off.

Then idle memory: a client process opens ``--idle`` connections (1,000) to
each server, completes the handshake and sends nothing; the server's RSS
growth (``/proc/PID/status``, after a warm-up of 20 connections), divided by
the number of connections, is its memory per idle connection.

    python -m benchmarks.e2e [--seconds 2] [--servers streamcore,picows] [--quick]
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
SERVERS = ["streamcore", "streamcore-async", "picows", "websockets", "aiohttp",
           "uvicorn-streamcore", "uvicorn-websockets-sansio", "uvicorn-wsproto"]
CASES = [(256, 1), (256, 64), (65536, 1), (65536, 64)]
#: the ratio columns: each group's own server against its peers
GROUPS = {
    "streamcore": ["picows", "websockets", "aiohttp"],
    "uvicorn-streamcore": ["uvicorn-websockets-sansio", "uvicorn-wsproto"],
}
#: the servers of the idle-memory measurement (the async handler shares the
#: adapter's connection objects, so it is left out)
MEMORY_SERVERS = ["streamcore", "picows", "websockets", "uvicorn-streamcore",
                  "uvicorn-websockets-sansio", "uvicorn-wsproto"]
UVICORN_WS = {
    "uvicorn-streamcore": "streamcore.integrations.uvicorn:WebSocketProtocol",
    "uvicorn-websockets-sansio": "websockets-sansio",
    "uvicorn-wsproto": "wsproto",
}


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
    if callbacks:  # the listener writes each view straight back (no receive copy)
        server = await adapter.serve(listener=Echo, port=port, views=True, **options)
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


async def echo_asgi(scope: Any, receive: Any, send: Any) -> None:
    """The echo app every uvicorn row runs."""
    while True:
        message = await receive()
        kind = message["type"]
        if kind == "websocket.receive":
            if message.get("bytes") is not None:
                await send({"type": "websocket.send", "bytes": message["bytes"]})
            else:
                await send({"type": "websocket.send", "text": message["text"]})
        elif kind == "websocket.connect":
            await send({"type": "websocket.accept"})
        else:
            return


def serve_uvicorn(name: str, port: int) -> None:
    import uvicorn

    loop = "uvloop" if new_loop().__class__.__module__.startswith("uvloop") else "asyncio"

    class Ready(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            print("ready", flush=True)

    config = uvicorn.Config(
        echo_asgi, host="127.0.0.1", port=port, ws=UVICORN_WS[name], loop=loop,
        lifespan="off", log_level="warning", access_log=False, backlog=4096,
        ws_max_size=1 << 30, ws_ping_interval=None, ws_ping_timeout=None,
        ws_per_message_deflate=False,
    )
    Ready(config).run()


def serve(name: str, port: int) -> None:
    if name in UVICORN_WS:
        serve_uvicorn(name, port)
        return
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


async def hold_idle(port: int, warm: int, count: int) -> None:
    """Open ``warm`` connections, say so, wait for a line on stdin; open
    ``count`` more, say so, wait again.  Each one completes the handshake
    (raw bytes, the same request for every server) and then sends nothing."""
    import base64

    loop = asyncio.get_running_loop()
    held: list[asyncio.StreamWriter] = []
    gate = asyncio.Semaphore(50)  # below every server's listen backlog

    async def one() -> None:
        async with gate:
            key = base64.b64encode(os.urandom(16)).decode()
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write((
                f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n").encode())
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 101"):
                raise RuntimeError(f"handshake refused: {head[:40]!r}")
            held.append(writer)

    for n, word in ((warm, "warm"), (count, "open")):
        await asyncio.gather(*(one() for _ in range(n)))
        print(word, flush=True)
        await loop.run_in_executor(None, sys.stdin.readline)
    for writer in held:
        writer.close()


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def idle_memory(name: str, count: int, warm: int = 20) -> float:
    """KiB of server RSS per idle connection, over ``count`` connections."""
    proc, port = start_server(name)
    holder = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.e2e", "idle", str(port), str(warm), str(count)],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    assert holder.stdin is not None and holder.stdout is not None
    try:
        if holder.stdout.readline().strip() != "warm":
            raise RuntimeError(f"idle client against {name} failed")
        time.sleep(0.3)
        before = rss_kib(proc.pid)
        holder.stdin.write("\n")
        holder.stdin.flush()
        if holder.stdout.readline().strip() != "open":
            raise RuntimeError(f"idle client against {name} failed")
        time.sleep(0.5)  # let the server finish whatever the handshakes started
        after = rss_kib(proc.pid)
        holder.stdin.write("\n")
        holder.stdin.flush()
        holder.wait(30)
    finally:
        holder.kill()
        proc.kill()
        proc.wait()
    return (after - before) / count


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
    """One row per server and case; each group's own server gets a ratio
    column against each of its peers (blank where a peer was not run)."""
    groups = {ours: [p for p in peers if p in servers]
              for ours, peers in GROUPS.items() if ours in servers}
    width = max([len(peers) for peers in groups.values()] or [0])
    head = ["message", "in flight", "server", "messages/s", "p50 µs", "p99 µs"]
    head += ["ratios"] + [""] * (width - 1) if width else []
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for (size, inflight), by_server in results.items():
        for name in servers:
            r = by_server.get(name)
            if r is None:
                continue
            cells = [human(size), str(inflight), name, f"{r['messages_per_s']:,.0f}",
                     f"{r['p50_us']:,.0f}", f"{r['p99_us']:,.0f}"]
            ratios = [f"{r['messages_per_s'] / by_server[p]['messages_per_s']:.2f}x vs {p}"
                      for p in groups.get(name, []) if p in by_server]
            lines.append("| " + " | ".join(cells + ratios + [""] * (width - len(ratios))) + " |")
    return "\n".join(lines)


def memory_table(memory: dict[str, float], count: int) -> str:
    lines = [f"| server | KiB per idle connection ({count:,}) |", "|---|---|"]
    lines += [f"| {name} | {kib:.1f} |" for name, kib in memory.items()]
    return "\n".join(lines)


def chart(results: dict[tuple[int, int], dict[str, dict[str, float]]], servers: list[str],
          memory: dict[str, float], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases = list(results)
    panels = len(cases) + (1 if memory else 0)
    fig, axes = plt.subplots(1, panels, figsize=(4.2 * panels, 4.2))

    def color(name: str) -> str:
        return "#1f6feb" if "streamcore" in name else "#8b949e"

    for ax, case in zip(axes, cases):
        names = [s for s in servers if s in results[case]]
        values = [results[case][s]["messages_per_s"] / 1000 for s in names]
        ax.bar(names, values, color=[color(n) for n in names])
        ax.set_title(f"{human(case[0])}, {case[1]} in flight")
        ax.set_ylabel("thousand echoes/s")
        ax.tick_params(axis="x", rotation=60, labelsize=7)
    if memory:
        ax = axes[-1]
        ax.bar(list(memory), list(memory.values()), color=[color(n) for n in memory])
        ax.set_title("idle connection")
        ax.set_ylabel("server KiB per connection")
        ax.tick_params(axis="x", rotation=60, labelsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--servers", default=",".join(SERVERS))
    parser.add_argument("--idle", type=int, default=1000,
                        help="idle connections per server for the memory figure (0: skip)")
    parser.add_argument("--quick", action="store_true",
                        help="0.5 s per case (the whole run well under two minutes)")
    parser.add_argument("--no-chart", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.seconds = min(args.seconds, 0.5)
    servers = [s for s in args.servers.split(",") if s]
    unknown = set(servers) - set(SERVERS)
    if unknown:
        parser.error(f"unknown servers: {', '.join(sorted(unknown))}")
    results: dict[tuple[int, int], dict[str, dict[str, float]]] = {c: {} for c in CASES}
    failed: dict[str, str] = {}  # a server that fails a case gets no number at all
    failures = (RuntimeError, subprocess.SubprocessError, OSError)
    for name in servers:
        proc, port = start_server(name)
        try:
            for size, inflight in CASES:
                r = run_client(port, size, inflight, args.seconds)
                results[(size, inflight)][name] = r
                print(f"{name:26} {human(size):>7} x{inflight:<3} "
                      f"{r['messages_per_s']:>10,.0f}/s  p50 {r['p50_us']:>8,.0f} µs  "
                      f"p99 {r['p99_us']:>8,.0f} µs", flush=True)
        except failures as exc:
            failed[name] = f"{human(size)} x{inflight}: {type(exc).__name__}"
            print(f"{name:26} FAILED ({failed[name]}): left out", flush=True)
            for by_server in results.values():
                by_server.pop(name, None)
        finally:
            proc.kill()
            proc.wait()
    memory: dict[str, float] = {}
    if args.idle:
        for name in [s for s in MEMORY_SERVERS if s in servers and s not in failed]:
            try:
                memory[name] = idle_memory(name, args.idle)
            except failures as exc:
                failed[name] = f"idle connections: {type(exc).__name__}"
                print(f"{name:26} FAILED ({failed[name]}): left out", flush=True)
                continue
            print(f"{name:26} {memory[name]:6.1f} KiB per idle connection", flush=True)
    loop_name = "uvloop" if new_loop().__class__.__module__.startswith("uvloop") else "asyncio"
    text = (f"# WebSocket echo end to end ({loop_name}, picows client, "
            f"{args.seconds:g} s per case)\n\n" + table(results, servers) + "\n")
    if memory:
        text += ("\n## Server memory per idle connection (RSS growth over "
                 f"{args.idle:,} connections)\n\n" + memory_table(memory, args.idle) + "\n")
    if failed:
        text += "\nLeft out (failed): " + "; ".join(f"{n} ({why})" for n, why in failed.items())
        text += "\n"
    print("\n" + text)
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "e2e-ws.md"), "w") as fh:
        fh.write(text)
    if not args.no_chart:
        path = os.path.join(RESULTS, "e2e-ws.png")
        chart(results, servers, memory, path)
        print(f"chart: {os.path.relpath(path, ROOT)}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        serve(sys.argv[2], int(sys.argv[3]))
    elif len(sys.argv) > 1 and sys.argv[1] == "idle":
        new_loop().run_until_complete(
            hold_idle(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])))
    elif len(sys.argv) > 1 and sys.argv[1] == "client":
        client(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]))
    else:
        main()
