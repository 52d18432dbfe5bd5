"""Application factory for the Zoom simulator."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from zoom_sim import api, control
from zoom_sim.errors import (
    OAuthError,
    ZoomAPIError,
    fault_body,
    oauth_error_handler,
    zoom_api_error_handler,
)
from zoom_sim.settings import Settings
from zoom_sim.state import Clock, SimState, utcnow
from zoom_sim.webhooks import WebhookSender

logger = logging.getLogger("zoom_sim")


def _is_api_path(path: str) -> bool:
    """Calls that faults apply to and that the call log records."""
    return path.startswith("/v2/") or path == "/oauth/token"


def create_app(
    settings: Settings | None = None,
    *,
    http_transport: httpx.AsyncBaseTransport | None = None,
    clock: Clock = utcnow,
) -> FastAPI:
    """Build the simulator app.

    ``http_transport`` replaces the network for outgoing webhooks (e.g. ``httpx.MockTransport``
    or ``httpx.ASGITransport(bridge_app)``); ``clock`` replaces "now" for the state.
    """
    settings = settings or Settings()
    client = httpx.AsyncClient(transport=http_transport)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await client.aclose()

    app = FastAPI(title="Zoom simulator", version="0.1.0", lifespan=lifespan)
    state = SimState(settings=settings, clock=clock)
    app.state.settings = settings
    app.state.sim = state
    app.state.webhooks = WebhookSender(state, client, settings.webhook_timeout_s)

    app.add_exception_handler(ZoomAPIError, zoom_api_error_handler)
    app.add_exception_handler(OAuthError, oauth_error_handler)

    @app.middleware("http")
    async def gateway(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        path = request.url.path
        method = request.method
        faulted = False
        response: Response | None = None
        if _is_api_path(path):
            fault = state.take_fault(method, path)
            if fault is not None:
                faulted = True
                if fault.delay_ms:
                    await asyncio.sleep(fault.delay_ms / 1000)
                if fault.status is not None:
                    headers: dict[str, str] = {}
                    if fault.retry_after is not None:
                        headers["Retry-After"] = str(fault.retry_after)
                    if fault.status == 429:
                        headers["X-RateLimit-Category"] = "Light"
                        headers["X-RateLimit-Type"] = "QPS"
                        headers["X-RateLimit-Limit"] = "30"
                        headers["X-RateLimit-Remaining"] = "0"
                    response = JSONResponse(
                        fault_body(fault.status), status_code=fault.status, headers=headers
                    )
        if response is None:
            response = await call_next(request)
        if _is_api_path(path):
            state.log_call(method, path, response.status_code, faulted=faulted)
        # Paths only: query strings may carry codes or tokens, and bodies are never logged.
        logger.info("%s %s -> %s", method, path, response.status_code)
        return response

    @app.get("/health/live", tags=["health"])
    async def live() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/health/ready", tags=["health"])
    async def ready() -> dict[str, str]:
        return {"status": "ok"}

    app.include_router(api.router)
    app.include_router(control.router)
    return app
