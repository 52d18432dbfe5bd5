from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from catalog.days import service
from catalog.days.schemas import DayOut, DayPatch
from te_shared.auth import AdminPrincipal
from te_shared.errors import problem_responses
from te_shared.service import SessionDep

router = APIRouter(prefix="/v1/days", tags=["days"], responses=problem_responses(401, 403))


@router.get("/{day_id}", response_model=DayOut, responses=problem_responses(404))
async def get_day(day_id: uuid.UUID, admin: AdminPrincipal, session: SessionDep) -> DayOut:
    return await service.get_day(session, admin.company_id, day_id)


@router.patch("/{day_id}", response_model=DayOut, responses=problem_responses(404, 422))
async def update_day(
    day_id: uuid.UUID, body: DayPatch, admin: AdminPrincipal, session: SessionDep
) -> DayOut:
    return await service.update_day(session, admin.company_id, day_id, body)


@router.delete("/{day_id}", status_code=204, responses=problem_responses(404))
async def delete_day(day_id: uuid.UUID, admin: AdminPrincipal, session: SessionDep) -> Response:
    await service.delete_day(session, admin.company_id, day_id)
    return Response(status_code=204)
