"""A private ``redis-server`` on 127.0.0.1 for the tests and the fan-out
benchmark: its own port and directory, started, killed and restarted on the
same port (tests/test_integrations_redis.py, tests/test_redis_workers.py,
tests/test_howto_docs.py, benchmarks/e2e_fanout.py).

    server = RedisServer(directory, persist=True)  # append-only file, fsync always
    server.start()          # returns once it accepts connections
    server.url              # redis://127.0.0.1:PORT
    server.kill()           # SIGKILL; start() again serves the same log
    server.stop()           # SIGTERM, then SIGKILL after 5 s
"""
from __future__ import annotations

import random
import shutil
import socket
import subprocess
import time
from typing import Any

__all__ = ["RedisServer", "free_port", "redis_server_path", "wait_port"]


def redis_server_path() -> str | None:
    """The ``redis-server`` on PATH (Debian's package puts it in /usr/bin)."""
    return shutil.which("redis-server")


def free_port() -> int:
    """A free loopback port below the kernel's ephemeral range.  A server
    restarted on its port could find one from that range taken meanwhile
    by an outgoing connection's source port (or a client retrying it could
    connect to itself), and fail to bind."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    for _ in range(200):
        port = random.randrange(max(1024, low - 16384), low)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port below the ephemeral range")


def wait_port(port: int, proc: subprocess.Popen[Any], what: str, timeout: float = 20) -> None:
    """Return once something accepts connections on ``port``; raise if
    ``proc`` exits first or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"{what} did not start")


class RedisServer:
    """One ``redis-server`` process in ``directory`` on a free port.

    ``persist``: an append-only file written with ``fsync`` on every write,
    so the log survives :meth:`kill` and :meth:`start` (the fault tests);
    otherwise no persistence at all (the benchmark, the how-to test).
    ``binary``: the server to run (default: ``redis-server`` on PATH)."""

    def __init__(self, directory: str, *, persist: bool = False,
                 binary: str | None = None) -> None:
        self.directory = str(directory)
        self.persist = persist
        self.binary = binary or redis_server_path() or "redis-server"
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> None:
        persistence = ["--appendonly", "yes", "--appendfsync", "always"] if self.persist \
            else ["--appendonly", "no"]
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", self.directory, "--save", "", *persistence, "--protected-mode", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, self.proc, "redis-server")

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def stop(self) -> None:
        if not self.running():
            return
        assert self.proc is not None
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.kill()

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
