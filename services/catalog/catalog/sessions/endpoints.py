from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from catalog.days import service as days
from catalog.days.schemas import DayIn, DayOut
from catalog.sessions import service
from catalog.sessions.repository import SessionRepository
from catalog.sessions.schemas import SessionOut, SessionPatch
from te_shared.auth import AdminPrincipal
from te_shared.conditional import IfMatch, created, created_headers, tagged
from te_shared.errors import problem_responses
from te_shared.service import SessionDep

router = APIRouter(prefix="/v1/sessions", tags=["sessions"], responses=problem_responses(401, 403))


@router.get("/{session_id}", response_model=SessionOut, responses=problem_responses(404))
async def get_session(
    session_id: uuid.UUID, admin: AdminPrincipal, session: SessionDep, response: Response
) -> SessionOut:
    """One session; `ETag`: its version, for `If-Match`."""
    row = await SessionRepository.from_session(session).get(admin.company_id, session_id)
    return tagged(response, await service.session_out(session, row))


@router.patch(
    "/{session_id}", response_model=SessionOut, responses=problem_responses(404, 409, 412, 422)
)
async def update_session(
    session_id: uuid.UUID,
    body: SessionPatch,
    admin: AdminPrincipal,
    session: SessionDep,
    response: Response,
    if_match: IfMatch = None,
) -> SessionOut:
    """Change the session; with `If-Match`, only while it is still at that version (412)."""
    return tagged(
        response,
        await service.update_session(session, admin.company_id, session_id, body, if_match),
    )


@router.delete("/{session_id}", status_code=204, responses=problem_responses(404, 412))
async def delete_session(
    session_id: uuid.UUID, admin: AdminPrincipal, session: SessionDep, if_match: IfMatch = None
) -> Response:
    """Delete the session; with `If-Match`, only while it is still at that version (412)."""
    await service.delete_session(session, admin.company_id, session_id, if_match)
    return Response(status_code=204)


@router.post(
    "/{session_id}/days",
    status_code=201,
    response_model=DayOut,
    responses={**problem_responses(404, 409, 422), **created_headers()},
)
async def create_day(
    session_id: uuid.UUID,
    body: DayIn,
    admin: AdminPrincipal,
    session: SessionDep,
    response: Response,
    confirm: Annotated[bool, Query(description="R-DAY-8: add a day to an ended session.")] = False,
) -> DayOut:
    day = await days.create_day(session, admin.company_id, session_id, body, confirm=confirm)
    return created(response, day, f"/v1/days/{day.id}")
