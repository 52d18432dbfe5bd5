from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request

from te_shared.errors import BadRequest, Unauthorized, problem_responses
from te_shared.service import SessionDep
from zoom_bridge import metrics
from zoom_bridge.deps import SettingsDep, ZoomDep
from zoom_bridge.metrics import BridgeMetrics
from zoom_bridge.webhooks import service

router = APIRouter(prefix="/v1/zoom", tags=["zoom webhooks"])


@router.post("/webhooks", responses=problem_responses(400, 401))
async def receive(
    request: Request, session: SessionDep, settings: SettingsDep, zoom: ZoomDep
) -> dict[str, Any]:
    """R-ZOOM-4: signature over the raw body, 5-minute window, URL validation; store, then
    process in the background so Zoom never waits. A Server-to-Server connection's webhooks
    are signed with that app's own secret token (found by ``payload.account_id``); the global
    ZOOM_WEBHOOK_SECRET is the fallback."""
    raw = await request.body()
    observed = request.app.state.runtime.extras.get("bridge_metrics")
    body, account = service.account_of(raw)

    def count(event: object, outcome: str, *, verified: bool = True) -> None:
        if isinstance(observed, BridgeMetrics):
            known = None if verified else service.HANDLED | {service.URL_VALIDATION}
            observed.webhooks_received.labels(metrics.event_label(event, known), outcome).inc()

    claimed_event = body.get("event") if body is not None else None
    candidates = await service.secrets_for(
        session, zoom.cipher, settings.zoom_webhook_secret.get_secret_value(), account
    )
    try:
        secret = service.verify(
            candidates,
            raw,
            request.headers.get("x-zm-request-timestamp"),
            request.headers.get("x-zm-signature"),
            settings.zoom_webhook_max_age_seconds,
        )
    except Unauthorized as exc:
        stale = exc.code == "stale_timestamp"
        count(claimed_event, metrics.STALE if stale else metrics.BAD_SIGNATURE, verified=False)
        raise
    if body is None:
        count(None, metrics.BAD_REQUEST)
        try:
            json.loads(raw)
        except ValueError as exc:
            raise BadRequest("The body is not JSON.", code="bad_json") from exc
        raise BadRequest("The body is not a JSON object.", code="bad_json")
    event = str(body.get("event", ""))
    if event == service.URL_VALIDATION:
        count(event, metrics.VALIDATED)
        plain = str((body.get("payload") or {}).get("plainToken", ""))
        return service.url_validation(secret, plain)
    if event not in service.HANDLED:
        count(event, metrics.IGNORED)
        return {"status": "ignored"}
    stored = await service.store(session, body)
    count(event, metrics.ACCEPTED if stored else metrics.DUPLICATE)
    wake = request.app.state.runtime.extras.get("wake")
    if wake is not None:
        wake.set()
    return {"status": "accepted" if stored else "duplicate"}
