"""Application factory for the Zoom simulator."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

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
from zoom_sim.state import Clock, SimState, fmt_time, utcnow
from zoom_sim.webhooks import WebhookSender

logger = logging.getLogger("zoom_sim")


def retry_after_value(seconds: int, style: str, now: datetime) -> str:
    """``Retry-After`` for a wait of ``seconds``: as seconds, as an HTTP date, or as Zoom writes
    it for daily limits, an ISO 8601 time (``2020-05-31T00:00:00Z``). The dates are rounded up
    to the next whole second so the wait is never shorter than asked."""
    if style == "seconds":
        return str(seconds)
    when = now.astimezone(UTC) + timedelta(seconds=seconds)
    if when.microsecond:
        when = when.replace(microsecond=0) + timedelta(seconds=1)
    if style == "http-date":
        return format_datetime(when, usegmt=True)
    return fmt_time(when)


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
            await sender.cancel_all()  # retries still waiting are not sent after shutdown
            await client.aclose()

    app = FastAPI(title="Zoom simulator", version="0.1.0", lifespan=lifespan)
    state = SimState(settings=settings, clock=clock)
    app.state.settings = settings
    app.state.sim = state
    sender = WebhookSender(state, client, settings.webhook_timeout_s, settings.webhook_retry_scale)
    app.state.webhooks = sender

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
                    # read the request first: like Zoom, a slow call still does its work when
                    # the caller stopped waiting (a create whose answer is lost)
                    await request.body()
                    await asyncio.sleep(fault.delay_ms / 1000)
                if fault.status is not None:
                    headers: dict[str, str] = {}
                    daily = fault.retry_after_format == "iso"
                    if fault.retry_after is not None:
                        headers["Retry-After"] = retry_after_value(
                            fault.retry_after, fault.retry_after_format, state.now()
                        )
                    if fault.status == 429:
                        headers["X-RateLimit-Category"] = "Light"
                        headers["X-RateLimit-Type"] = "Daily-limit" if daily else "QPS"
                        headers["X-RateLimit-Limit"] = "30"
                        headers["X-RateLimit-Remaining"] = "0"
                    response = JSONResponse(
                        fault_body(fault.status, daily=daily),
                        status_code=fault.status,
                        headers=headers,
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
