"""``make demo``: start a redis-server on a free loopback port (in a temp
dir) and two uvicorn workers of ``examples/demo/app.py`` on two ports, with
streamcore's ``--ws`` protocol; print the URLs; stop everything on Ctrl-C.

``python examples/demo/run.py [--seconds N]`` (N: stop after N seconds)."""
from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[Any], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process on port {port} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


class Demo:
    """redis-server and two workers; a context manager (the browser tests use it)."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.redis_port = free_port()
        self.ports = [free_port(), free_port()]
        self.procs: list[subprocess.Popen[Any]] = []

    def __enter__(self) -> Demo:
        try:
            redis = subprocess.Popen(
                ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1",
                 "--dir", self.directory, "--save", "", "--protected-mode", "no"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.procs.append(redis)
            wait_port(self.redis_port, redis)
            for n, port in enumerate(self.ports, 1):
                env = dict(os.environ, DEMO_WORKER=f"worker-{n}",
                           DEMO_REDIS_URL=f"redis://127.0.0.1:{self.redis_port}",
                           PYTHONPATH=os.pathsep.join([ROOT, HERE, os.environ.get("PYTHONPATH", "")]))
                proc = subprocess.Popen(
                    [sys.executable, "-m", "uvicorn", "app:app", "--host", "127.0.0.1",
                     "--port", str(port), "--ws", "streamcore.integrations.uvicorn:WebSocketProtocol",
                     "--log-level", "warning"], cwd=HERE, env=env)
                self.procs.append(proc)
            for port, proc in zip(self.ports, self.procs[1:]):
                wait_port(port, proc)
        except BaseException:
            self.__exit__()
            raise
        return self

    @property
    def urls(self) -> list[str]:
        return [f"http://127.0.0.1:{port}/" for port in self.ports]

    def __exit__(self, *exc: object) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory, Demo(directory) as demo:
        print(f"streamcore demo: open {demo.urls[0]} (worker 1) and {demo.urls[1]} (worker 2)",
              flush=True)
        try:
            time.sleep(args.seconds) if args.seconds else [time.sleep(3600) for _ in iter(int, 1)]
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
