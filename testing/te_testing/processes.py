"""A service as its own process, started as ``make run`` starts it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

#: where the kernel picks the local ports of outgoing connections (Linux's default if unknown)
_EPHEMERAL = Path("/proc/sys/net/ipv4/ip_local_port_range")
#: the ports this process handed out, never twice
_handed_out: set[int] = set()


def _ephemeral_range() -> tuple[int, int]:
    with contextlib.suppress(OSError, ValueError):
        low, high = (int(n) for n in _EPHEMERAL.read_text().split())
        return low, high
    return 32768, 60999


def free_port() -> int:
    """A port of 127.0.0.1 free now, for a server started a moment later (its URL is handed
    out first). Not one the kernel gives outgoing connections: a port asked of it with
    ``bind(0)`` comes from that range, and a connection to PostgreSQL or RabbitMQ opened in
    between may take it as its local port, and the server then fails to bind (CI saw it)."""
    low, high = _ephemeral_range()
    outside = range(10000, low) if low - 10000 >= 1000 else range(high + 1, 65536)
    for _ in range(200):
        port = random.choice(outside)
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    with socket.socket() as sock:  # nothing free outside the range: the kernel's pick
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServiceProcess:
    """A service started as its own process (``python -m <module>``), as ``make run`` does."""

    module: str
    env: dict[str, str]
    port: int
    log_path: Path
    process: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        """The process's command line (a subclass may run the module under a profiler)."""
        return [sys.executable, "-m", self.module]

    async def start(self, timeout: float = 60.0) -> None:
        """Start the process and wait until ``/health/ready`` answers 200."""
        env = {**os.environ, **self.env, "PORT": str(self.port), "HOST": "127.0.0.1"}
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(  # noqa: ASYNC220, S603 - a long-lived child process
            self.command(), env=env, stdout=log, stderr=subprocess.STDOUT
        )
        deadline = asyncio.get_running_loop().time() + timeout
        async with httpx.AsyncClient(base_url=self.url, timeout=2) as client:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"{self.module} exited: {self.log_path.read_text()[-3000:]}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get("/health/ready")).status_code == 200:
                        return
                if asyncio.get_running_loop().time() > deadline:
                    raise TimeoutError(
                        f"{self.module} not ready: {self.log_path.read_text()[-3000:]}"
                    )
                await asyncio.sleep(0.2)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def stop(self, timeout: float = 30.0) -> int:
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except Exception:
                self.process.kill()
                self.process.wait(10)
        return int(self.process.returncode)
