"""A lean HTTP/1.1 load generator: keep-alive connections, one request in flight on each.

On a 2-core machine the client shares the cores with the service, PostgreSQL and RabbitMQ; a
general-purpose client (httpx) spends more CPU per request than the service it measures, so its
own queueing shows up as the service's latency. This one writes a request and reads the answer
(``Content-Length`` bodies, as uvicorn sends for JSON) on plain asyncio streams, and nothing else.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    seconds: float


class _Connection:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def send(self, request: Request) -> Answer:
        if self.writer is None or self.reader is None:
            await self.open()
        assert self.reader is not None
        assert self.writer is not None
        lines = [f"{request.method} {request.path} HTTP/1.1", f"host: {self.host}:{self.port}"]
        lines += [f"{k}: {v}" for k, v in request.headers.items()]
        lines.append(f"content-length: {len(request.body)}")
        start = time.perf_counter()
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + request.body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        length = 0
        closing = False
        for line in header_lines:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding":
                raise RuntimeError("chunked answers are not supported by this load generator")
            elif name == "connection" and value.strip().lower() == "close":
                closing = True
        body = await self.reader.readexactly(length) if length else b""
        seconds = time.perf_counter() - start
        if closing:
            await self.close()
        return Answer(status, body, seconds)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            await self.writer.wait_closed()
        self.reader = self.writer = None


async def fire(base_url: str, requests: Sequence[Request], concurrency: int) -> list[Answer]:
    """Send ``requests`` over ``concurrency`` keep-alive connections (opened before the clock
    starts, by the caller's warm-up); answers come back in the order of ``requests``."""
    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    connections = [_Connection(host, port) for _ in range(concurrency)]
    await asyncio.gather(*(c.open() for c in connections))
    answers: list[Answer | None] = [None] * len(requests)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(len(requests)):
        queue.put_nowait(i)

    async def worker(connection: _Connection) -> None:
        while True:
            try:
                i = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            answers[i] = await connection.send(requests[i])

    try:
        await asyncio.gather(*(worker(c) for c in connections))
    finally:
        await asyncio.gather(*(c.close() for c in connections))
    return [a for a in answers if a is not None]
