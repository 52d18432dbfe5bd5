"""Application factory for the Zoom simulator.

The gateway middleware applies the faults armed with ``POST /_sim/faults`` to ``/v2/*`` and
``POST /oauth/token`` (an error in Zoom's shape, a delay, a 429 of either rate-limit type, an
answer lost after the work was done) and records those calls in the call log.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from zoom_sim import api, control
from zoom_sim.errors import (
    OAuthError,
    ZoomAPIError,
    fault_body,
    oauth_error_handler,
    zoom_api_error_handler,
)
from zoom_sim.settings import Settings
from zoom_sim.state import Clock, Fault, SimState, fmt_time, next_utc_midnight, utcnow
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


def _caller_account(request: Request, state: SimState) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    user = state.authenticate(token.strip())[0] if scheme.lower() == "bearer" else None
    return user.account_id if user is not None else state.default_user.account_id


def _fault_response(fault: Fault, request: Request, state: SimState) -> Response:
    assert fault.status is not None
    headers: dict[str, str] = {}
    now = state.now()
    daily = False
    if fault.status == 429:
        limit_type = fault.rate_limit_type or (
            "Daily-limit" if fault.retry_after_format == "iso" else "QPS"
        )
        daily = limit_type == "Daily-limit"
        if daily:
            when = (
                now + timedelta(seconds=fault.retry_after)
                if fault.retry_after is not None
                else next_utc_midnight(now)
            )
            headers["Retry-After"] = retry_after_value(
                max(0, math.ceil((when - now).total_seconds())), "iso", now
            )
        elif fault.retry_after is not None:
            headers["Retry-After"] = retry_after_value(
                fault.retry_after, fault.retry_after_format, now
            )
        headers["X-RateLimit-Category"] = "Light"
        headers["X-RateLimit-Type"] = limit_type
        headers["X-RateLimit-Limit"] = "30"
        headers["X-RateLimit-Remaining"] = "0"
    elif fault.retry_after is not None:
        headers["Retry-After"] = retry_after_value(fault.retry_after, fault.retry_after_format, now)
    found = re.search(r"/meetings/([^/]+)", request.url.path)
    body = fault_body(
        fault.status,
        daily=daily,
        zoom_code=fault.zoom_code,
        message=fault.message,
        account_id=_caller_account(request, state),
        ref=found.group(1) if found else "",
    )
    return JSONResponse(body, status_code=fault.status, headers=headers)


async def _drain(response: Response) -> None:
    """Read and discard an answer (the handler's work is done; its answer is not sent)."""
    body_iterator = getattr(response, "body_iterator", None)
    if body_iterator is not None:
        async for _ in body_iterator:
            pass


class DroppedConnection(Exception):
    """Raised mid-answer to make the server close the connection (a lost answer)."""


def _dropped() -> Response:
    """An answer that breaks off after its first bytes: the server closes the connection and
    the caller gets a protocol error, not a status."""

    async def broken() -> AsyncIterator[bytes]:
        yield b"{"
        raise DroppedConnection("zoom-sim dropped the answer on purpose (drop_after_commit)")

    return StreamingResponse(
        broken(), status_code=200, media_type="application/json", headers={"content-length": "512"}
    )


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
        fault = state.take_fault(method, path) if _is_api_path(path) else None
        response: Response | None = None
        dropped = False
        if fault is not None:
            if fault.delay_ms:
                # read the request first: like Zoom, a slow call still does its work when
                # the caller stopped waiting (a create whose answer is lost)
                await request.body()
                await asyncio.sleep(fault.delay_ms / 1000)
            if fault.drop_after_commit:
                # the call does its work (a refresh token rotates, a meeting is created) ...
                done = await call_next(request)
                await _drain(done)
                if fault.status is None:  # ... and the connection drops before any answer
                    state.log_call(method, path, done.status_code, faulted=True, dropped=True)
                    logger.info("%s %s -> %s, answer dropped", method, path, done.status_code)
                    return _dropped()
                dropped = True
            if fault.status is not None:  # ... or the caller gets this error instead
                response = _fault_response(fault, request, state)
        if response is None:
            response = await call_next(request)
        if _is_api_path(path):
            state.log_call(
                method, path, response.status_code, faulted=fault is not None, dropped=dropped
            )
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
