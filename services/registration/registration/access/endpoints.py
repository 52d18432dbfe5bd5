from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends

from registration import readmodel
from registration.access.schemas import AccessIn, AccessOut
from registration.access.service import grant_access
from registration.binding import bind_principal
from te_shared.auth import AdminPrincipal
from te_shared.errors import problem_responses
from te_shared.service import SessionDep

router = APIRouter(
    tags=["access"],
    responses=problem_responses(401, 403, 404),
    dependencies=[Depends(bind_principal)],
)


@router.put(
    "/v1/events/{event_id}/access",
    response_model=AccessOut,
    responses=problem_responses(422),
    summary="Grant users access to an event (adds; idempotent)",
)
async def put_access(
    event_id: uuid.UUID, body: AccessIn, admin: AdminPrincipal, session: SessionDep
) -> AccessOut:
    await readmodel.get_event(session, admin.company_id, event_id)
    granted = await grant_access(
        session, admin.company_id, event_id, body.user_ids, by=admin.user_id
    )
    return AccessOut(granted=granted)
