from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from catalog.days import service
from catalog.days.schemas import DayOut, DayPatch
from te_shared.auth import AdminPrincipal
from te_shared.conditional import IfMatch, tagged
from te_shared.errors import problem_responses
from te_shared.service import SessionDep

router = APIRouter(prefix="/v1/days", tags=["days"], responses=problem_responses(401, 403))


@router.get("/{day_id}", response_model=DayOut, responses=problem_responses(404))
async def get_day(
    day_id: uuid.UUID, admin: AdminPrincipal, session: SessionDep, response: Response
) -> DayOut:
    """One day; `ETag`: its version, for `If-Match`."""
    return tagged(response, await service.get_day(session, admin.company_id, day_id))


@router.patch("/{day_id}", response_model=DayOut, responses=problem_responses(404, 412, 422))
async def update_day(
    day_id: uuid.UUID,
    body: DayPatch,
    admin: AdminPrincipal,
    session: SessionDep,
    response: Response,
    if_match: IfMatch = None,
) -> DayOut:
    """Change the day; with `If-Match`, only while it is still at that version (412)."""
    return tagged(
        response, await service.update_day(session, admin.company_id, day_id, body, if_match)
    )


@router.delete("/{day_id}", status_code=204, responses=problem_responses(404, 412))
async def delete_day(
    day_id: uuid.UUID, admin: AdminPrincipal, session: SessionDep, if_match: IfMatch = None
) -> Response:
    """Delete the day; with `If-Match`, only while it is still at that version (412)."""
    await service.delete_day(session, admin.company_id, day_id, if_match)
    return Response(status_code=204)
