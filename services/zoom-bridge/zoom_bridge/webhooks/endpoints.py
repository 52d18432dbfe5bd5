from __future__ import annotations

import time
from typing import Any, cast

from fastapi import APIRouter, Request

from te_shared.errors import BadRequest, Unauthorized, problem_responses
from te_shared.service import get_runtime
from zoom_bridge import metrics
from zoom_bridge.metrics import BridgeMetrics
from zoom_bridge.settings import ZoomBridgeSettings
from zoom_bridge.webhooks import rules, service
from zoom_bridge.webhooks.intake import Intake
from zoom_bridge.webhooks.secrets import SecretCache
from zoom_bridge.worker import WEBHOOKS
from zoom_bridge.zoom.client import ZoomClient

router = APIRouter(prefix="/v1/zoom", tags=["zoom webhooks"])


@router.post("/webhooks", responses=problem_responses(400, 401))
async def receive(request: Request) -> dict[str, Any]:
    """R-ZOOM-4: the signature is checked over the raw bytes before anything parses them,
    with a timestamp window that covers Zoom's retries (ZOOM_WEBHOOK_MAX_AGE_SECONDS: a retry
    keeps its first timestamp; a replay within the window is a duplicate); then the body is
    parsed with a depth limit (400 when it is not a JSON object with an object ``payload``);
    URL validation is answered; other events are stored and processed in the background so
    Zoom never waits. A Server-to-Server connection's webhooks are signed with that app's own
    secret token (tried for the account the body names); ZOOM_WEBHOOK_SECRET is the OAuth
    app's. A webhook acts only on the meetings of the connection(s) whose secret verified
    it."""
    # read from the running service directly, not through three dependencies: solving them
    # was a fifth of accepting a webhook, on the path of every request of a storm
    runtime = get_runtime(request)
    settings = cast(ZoomBridgeSettings, runtime.settings)
    zoom = cast(ZoomClient, runtime.extras["zoom"])
    raw = await request.body()
    observed = runtime.extras.get("bridge_metrics")

    def count(event: object, outcome: str, *, verified: bool = True) -> None:
        if isinstance(observed, BridgeMetrics):
            known = None if verified else service.HANDLED | {service.URL_VALIDATION}
            observed.webhooks_received.labels(metrics.event_label(event, known), outcome).inc()

    cache = runtime.extras["webhook_secrets"]
    assert isinstance(cache, SecretCache)

    async def load(hint: str | None) -> list[rules.Candidate]:
        # a session of its own, closed before the webhook is stored: a request never holds a
        # connection while it waits for the intake's write (which needs one)
        async with runtime.session_factory()() as session:
            return await service.connection_secrets(session, zoom.cipher, hint)

    own = await cache.get(rules.account_hint(raw), load)
    candidates = [*own, rules.Candidate(settings.zoom_webhook_secret.get_secret_value())]
    try:
        signer = rules.verify(
            candidates,
            raw,
            request.headers.get("x-zm-request-timestamp"),
            request.headers.get("x-zm-signature"),
            now=time.time(),
            max_age=settings.zoom_webhook_max_age_seconds,
            max_future=settings.zoom_webhook_max_future_seconds,
        )
    except Unauthorized as exc:
        stale = exc.code == "stale_timestamp"
        outcome = metrics.STALE if stale else metrics.BAD_SIGNATURE
        count(rules.event_hint(raw), outcome, verified=False)
        raise
    try:
        body = rules.parse_body(raw)
    except BadRequest:
        count(rules.event_hint(raw), metrics.BAD_REQUEST, verified=False)
        raise
    event = str(body.get("event", ""))
    payload = body.get("payload") or {}
    if event == service.URL_VALIDATION:
        plain = payload.get("plainToken")
        if not isinstance(plain, str) or not plain or len(plain) > 200:
            count(event, metrics.BAD_REQUEST)
            raise BadRequest("The URL validation has no plainToken.", code="bad_json")
        count(event, metrics.VALIDATED)
        return service.url_validation(service.signing_secret(candidates, signer), plain)
    if event not in service.HANDLED:
        count(event, metrics.IGNORED)
        return {"status": "ignored"}
    intake = runtime.extras["webhook_intake"]
    assert isinstance(intake, Intake)
    stored = await intake.store(body, signer)
    count(event, metrics.ACCEPTED if stored else metrics.DUPLICATE)
    wake = runtime.extras.get("wake")
    if wake is not None:
        wake(WEBHOOKS)
    return {"status": "accepted" if stored else "duplicate"}
