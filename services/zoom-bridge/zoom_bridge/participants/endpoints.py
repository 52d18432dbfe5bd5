from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path

from te_shared.auth import AdminPrincipal
from te_shared.errors import problem_responses
from te_shared.service import SessionDep
from zoom_bridge.participants import service
from zoom_bridge.participants.schemas import MatchIn, ParticipantOut

router = APIRouter(prefix="/v1/days", tags=["participants"])

ParticipantId = Annotated[str, Path(min_length=1, max_length=40)]


@router.get(
    "/{day_id}/participants",
    response_model=list[ParticipantOut],
    responses=problem_responses(401, 403, 404),
)
async def list_participants(
    day_id: uuid.UUID, admin: AdminPrincipal, session: SessionDep
) -> list[ParticipantOut]:
    """R-ZOOM-5: every participant of the day's meeting, matched or not (guests, e-mails no
    enrollment has): who they are in Zoom, the platform user and how they were matched, their
    time (administrator role) and first join and last leave. Another company's day is a 404."""
    return await service.listed(session, day_id, admin.company_id)


@router.post(
    "/{day_id}/participants/{participant_id}/match",
    response_model=ParticipantOut,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def match_participant(
    day_id: uuid.UUID,
    participant_id: ParticipantId,
    body: MatchIn,
    admin: AdminPrincipal,
    session: SessionDep,
) -> ParticipantOut:
    """R-ZOOM-5, R-ENR-11: credit a participant nothing matched to a platform user holding a
    live enrollment in the day's session (422 otherwise): their attendance is published and
    registration moves their status, its history naming the admin. 404 for an unknown day or
    participant, 409 when the participant is already matched (the same match again: 200)."""
    return await service.match(
        session, day_id, admin.company_id, participant_id, body.user_id, admin.user_id
    )
