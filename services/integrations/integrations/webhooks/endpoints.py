from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from integrations.delivery.worker import policy_of
from integrations.deps import CipherDep, SettingsDep
from integrations.webhooks import service
from integrations.webhooks.schemas import (
    DeliveryPage,
    DeliveryState,
    EndpointIn,
    EndpointOut,
    EndpointPatch,
    EndpointWithSecret,
    RecoverIn,
    RecoverOut,
)
from te_shared.auth import AdminPrincipal
from te_shared.conditional import created_headers, located
from te_shared.errors import problem_responses
from te_shared.service import SessionDep

router = APIRouter(
    prefix="/v1/webhooks/endpoints",
    tags=["webhooks"],
    responses=problem_responses(401, 403),
)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=EndpointWithSecret,
    responses={**problem_responses(409, 422), **created_headers(versioned=False)},
    summary="Register an endpoint; its signing secret is in this answer only",
    description=(
        "Deliveries of the chosen event types follow the Standard Webhooks specification "
        "(`webhook-id`, `webhook-timestamp`, `webhook-signature`). The URL must be `https` and "
        "its host must resolve to public addresses only (422 `https_required`, "
        "`target_refused`, `target_unresolvable`, `invalid_url`); an unknown event type is a "
        "422 naming it. 409 `too_many_endpoints` past 50 per company."
    ),
)
async def create_endpoint(
    body: EndpointIn,
    admin: AdminPrincipal,
    session: SessionDep,
    settings: SettingsDep,
    cipher: CipherDep,
    response: Response,
) -> EndpointWithSecret:
    await service.check_url(body.url, policy_of(settings))  # before the database is touched
    endpoint = await service.create(session, admin.company_id, body, cipher)
    located(response, f"/v1/webhooks/endpoints/{endpoint.id}")
    return endpoint


@router.get("", response_model=list[EndpointOut], summary="The company's endpoints")
async def list_endpoints(admin: AdminPrincipal, session: SessionDep) -> list[EndpointOut]:
    return await service.list_for(session, admin.company_id)


@router.get(
    "/{endpoint_id}",
    response_model=EndpointOut,
    responses=problem_responses(404),
    summary="One endpoint (no secret)",
)
async def get_endpoint(
    endpoint_id: uuid.UUID, admin: AdminPrincipal, session: SessionDep
) -> EndpointOut:
    return service.out(await service.get(session, admin.company_id, endpoint_id))


@router.patch(
    "/{endpoint_id}",
    response_model=EndpointOut,
    responses=problem_responses(404, 422),
    summary="Change an endpoint's URL, event types or description; enable or disable it",
    description=(
        "At least one field. A new `url` is checked as at registration (422 `https_required`, "
        "`target_refused`, `target_unresolvable`, `invalid_url`) and receives what is still "
        "pending. `enabled: true` turns on an endpoint that was disabled (its receiver "
        "answered 410 Gone, or an admin disabled it): changes from then on are delivered, and "
        "`POST .../recover` queues earlier ones again. `enabled: false` stops deliveries and "
        "discards what was pending. The secret is unchanged (see `rotate-secret`)."
    ),
)
async def update_endpoint(
    endpoint_id: uuid.UUID,
    body: EndpointPatch,
    admin: AdminPrincipal,
    session: SessionDep,
    settings: SettingsDep,
) -> EndpointOut:
    endpoint = await service.get(session, admin.company_id, endpoint_id)  # 404 before DNS
    if body.url is not None:
        await service.check_url(body.url, policy_of(settings))
    return await service.update(session, endpoint, body)


@router.post(
    "/{endpoint_id}/recover",
    response_model=RecoverOut,
    responses=problem_responses(404, 409, 422),
    summary="Queue again the deliveries given up or discarded since a time",
    description=(
        "For a receiver that was down longer than the retry schedule (about three days), or "
        "disabled: the endpoint's deliveries that were given up (`failed`) or `discarded`, of "
        "changes that happened from `since` (to `until`), are queued again, each with a new "
        "retry schedule, the same `webhook-id` and body (a receiver deduplicates one it already "
        "has) and in its subject's order. Deliveries are kept `WEBHOOK_RETENTION_DAYS` (30). "
        "409 `endpoint_disabled` while the endpoint is disabled."
    ),
)
async def recover_deliveries(
    endpoint_id: uuid.UUID, body: RecoverIn, admin: AdminPrincipal, session: SessionDep
) -> RecoverOut:
    return RecoverOut(recovered=await service.recover(session, admin.company_id, endpoint_id, body))


@router.delete(
    "/{endpoint_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(404),
    summary="Remove an endpoint, what was still to be delivered to it and its log",
)
async def delete_endpoint(
    endpoint_id: uuid.UUID, admin: AdminPrincipal, session: SessionDep
) -> Response:
    await service.remove(session, admin.company_id, endpoint_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{endpoint_id}/rotate-secret",
    response_model=EndpointWithSecret,
    responses=problem_responses(404),
    summary="A new signing secret; the old one keeps signing beside it for 24 h",
    description=(
        "The new secret is in this answer only. Until `previous_secret_expires_at` every "
        "delivery carries two signatures in `webhook-signature` (space-separated, the new "
        "secret's first), so a receiver may switch to the new secret whenever it likes."
    ),
)
async def rotate_secret(
    endpoint_id: uuid.UUID,
    admin: AdminPrincipal,
    session: SessionDep,
    settings: SettingsDep,
    cipher: CipherDep,
) -> EndpointWithSecret:
    overlap = dt.timedelta(hours=settings.webhook_rotation_overlap_hours)
    return await service.rotate(session, admin.company_id, endpoint_id, cipher, overlap)


@router.get(
    "/{endpoint_id}/deliveries",
    response_model=DeliveryPage,
    responses=problem_responses(404),
    summary="The deliveries log: each delivery with its attempts, newest first",
)
async def list_deliveries(
    endpoint_id: uuid.UUID,
    admin: AdminPrincipal,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(pattern=r"^\d{1,18}$")] = None,
    state: DeliveryState | None = None,
) -> DeliveryPage:
    return await service.deliveries(
        session,
        admin.company_id,
        endpoint_id,
        limit=limit,
        cursor=int(cursor) if cursor is not None else None,
        state=state,
    )
