"""An ASGI app served over real HTTP from the test process: uvicorn on 127.0.0.1, in the test's
event loop (for what must be reached by URL: a receiver of webhooks, a service another process
calls)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import uvicorn


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers: Ctrl-C belongs to the process that serves it (pytest,
    the soak), which stops the server itself; uvicorn's would swallow the first Ctrl-C and raise
    it again from :meth:`InProcessServer.stop`, in the middle of the host's clean-up."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class InProcessServer:
    """``app`` served by uvicorn on ``port`` of 127.0.0.1 (0: a free one, known once started)."""

    def __init__(self, app: Any, port: int = 0, **config: Any) -> None:
        config.setdefault("log_level", "warning")
        self._server = _Server(uvicorn.Config(app, host="127.0.0.1", port=port, **config))
        self._task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        if self._server.config.port:
            return int(self._server.config.port)
        return int(self._server.servers[0].sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Serve, and return once uvicorn has started (its lifespan done when it has one)."""
        self._server.should_exit = False
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()  # its error: the port taken, the lifespan failed
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            await self._task
            self._task = None


@contextlib.asynccontextmanager
async def served(app: Any, port: int = 0, **config: Any) -> AsyncIterator[InProcessServer]:
    """``app`` served while the block runs (``config``: more of uvicorn's settings)."""
    server = InProcessServer(app, port, **config)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
