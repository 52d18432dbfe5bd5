from __future__ import annotations

from fastapi import APIRouter

from catalog.company import service
from catalog.company.schemas import CompanySettingsIn, CompanySettingsOut
from te_shared.auth import AdminPrincipal
from te_shared.errors import problem_responses
from te_shared.service import SessionDep

router = APIRouter(prefix="/v1/company", tags=["company"], responses=problem_responses(401, 403))


@router.get("/settings", response_model=CompanySettingsOut)
async def get_company_settings(admin: AdminPrincipal, session: SessionDep) -> CompanySettingsIn:
    return await service.get_settings(session, admin.company_id)


@router.put("/settings", response_model=CompanySettingsOut, responses=problem_responses(422))
async def put_company_settings(
    body: CompanySettingsIn, admin: AdminPrincipal, session: SessionDep
) -> CompanySettingsIn:
    return await service.replace_settings(session, admin.company_id, body)
