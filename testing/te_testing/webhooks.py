"""An HTTP server in the test process that receives webhooks."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from te_testing.polling import eventually
from te_testing.processes import free_port
from te_testing.servers import InProcessServer


@dataclass(frozen=True)
class ReceivedWebhook:
    path: str
    headers: dict[str, str]
    body: bytes
    #: ``time.monotonic()`` when the request arrived
    at: float


class WebhookReceiver:
    """An HTTP server in the test process that receives webhooks (uvicorn on a free port of
    127.0.0.1, in the test's event loop). Every request is kept in :attr:`received`; each path
    answers 200 unless told otherwise: :meth:`answer` queues statuses (a ``Location`` goes with
    3xx), :meth:`answer_headers` adds headers, :meth:`delay` makes it slow."""

    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[ReceivedWebhook] = []
        self._statuses: dict[str, list[int]] = {}
        self._delays: dict[str, float] = {}
        self._bodies: dict[str, bytes] = {}
        self._headers: dict[str, dict[str, str]] = {}
        self._rules: list[tuple[Callable[[ReceivedWebhook], bool], list[int]]] = []
        self._server = InProcessServer(self, self.port, lifespan="off", timeout_graceful_shutdown=1)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def answer(self, path: str, *statuses: int, body: bytes = b"") -> None:
        """Answer the next requests to ``path`` with ``statuses`` in turn (then 200)."""
        self._statuses.setdefault(path, []).extend(statuses)
        if body:
            self._bodies[path] = body

    def answer_matching(self, match: Callable[[ReceivedWebhook], bool], *statuses: int) -> None:
        """Answer the next requests ``match`` accepts with ``statuses`` in turn (before any
        status queued for their path)."""
        self._rules.append((match, list(statuses)))

    def answer_headers(self, path: str, headers: dict[str, str]) -> None:
        """Send ``headers`` with every answer from ``path`` (``Retry-After``, ...)."""
        self._headers[path] = headers

    def delay(self, path: str, seconds: float) -> None:
        self._delays[path] = seconds

    def at(self, path: str = "/hook") -> list[ReceivedWebhook]:
        return [r for r in self.received if r.path == path]

    async def wait(self, path: str, count: int = 1, timeout: float = 15.0) -> list[ReceivedWebhook]:
        """The requests to ``path`` once there are ``count`` or more (polled every 20 ms)."""

        async def arrived() -> int:
            return len(self.at(path))

        await eventually(
            arrived,
            lambda n: n >= count,
            timeout=timeout,
            interval=0.02,
            what=f"{count} requests to {path}",
        )
        return self.at(path)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        path = scope["path"]
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        received = ReceivedWebhook(path, headers, body, time.monotonic())
        self.received.append(received)
        await asyncio.sleep(self._delays.get(path, 0))
        matched = next((s for match, s in self._rules if s and match(received)), None)
        queued = matched or self._statuses.get(path) or []
        status = queued.pop(0) if queued else 200
        extra = [(b"location", f"{path}/moved".encode())] if 300 <= status < 400 else []
        extra += [(k.encode(), v.encode()) for k, v in self._headers.get(path, {}).items()]
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"text/plain"), *extra],
            }
        )
        await send({"type": "http.response.body", "body": self._bodies.get(path, b"ok")})

    async def start(self) -> None:
        await self._server.start()

    async def stop(self) -> None:
        await self._server.stop()
