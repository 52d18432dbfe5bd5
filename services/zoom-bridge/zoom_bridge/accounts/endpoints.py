from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse

from te_shared.auth import AdminPrincipal
from te_shared.contracts import ZoomAccountRole
from te_shared.errors import field_error, problem_responses
from te_shared.service import SessionDep
from zoom_bridge.accounts import service
from zoom_bridge.accounts.schemas import AccountOut, AccountPatch, ServerToServerIn
from zoom_bridge.deps import ZoomDep
from zoom_bridge.models import ZoomAccount

router = APIRouter(prefix="/v1/zoom", tags=["zoom accounts"])


def _out(account: ZoomAccount) -> AccountOut:
    return AccountOut.model_validate(account, from_attributes=True)


@router.get(
    "/oauth/authorize",
    status_code=302,
    response_class=RedirectResponse,
    responses=problem_responses(401, 403, 422),
)
async def authorize(
    admin: AdminPrincipal,
    session: SessionDep,
    zoom: ZoomDep,
    role: Annotated[ZoomAccountRole, Query()],
    return_to: Annotated[
        str,
        Query(
            max_length=2000,
            description="Where the admin's browser goes back to: a path of the admin panel, "
            "or a URL on an origin of `ZOOM_RETURN_ORIGINS`.",
            json_schema_extra={"pattern": service.RETURN_TO_PATTERN},
        ),
    ] = "/",
) -> RedirectResponse:
    """R-ZOOM-1: send the admin to Zoom's authorize page with a signed, single-use state, and
    bind the flow to this browser with an HttpOnly, SameSite=Lax cookie (Secure when the
    callback is https) that the callback requires. The request must come from the admin's
    browser (a navigation, or a fetch with credentials) on the host that serves the callback."""
    started = await service.authorize_url(
        session,
        zoom,
        company_id=admin.company_id,
        admin_user_id=admin.user_id,
        role=role,
        return_to=return_to,
    )
    response = RedirectResponse(started.url, status_code=302)
    binding = started.binding
    response.set_cookie(
        binding.name,
        binding.value,
        max_age=binding.max_age,
        path=binding.path,
        secure=binding.secure,
        httponly=True,
        samesite="lax",
    )
    return response


@router.get(
    "/oauth/callback",
    status_code=302,
    response_class=RedirectResponse,
    responses=problem_responses(400, 422),
)
async def callback(
    request: Request,
    session: SessionDep,
    zoom: ZoomDep,
    state: Annotated[str, Query(min_length=1, max_length=4000)],
    code: Annotated[str | None, Query(min_length=1, max_length=2000)] = None,
    error: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
) -> RedirectResponse:
    """Zoom's redirect: the state is checked and used up; a browser without the cookie the
    authorize step set goes back to ``return_to`` with ``zoom_error=state_mismatch`` and
    nothing is connected. With a code, the connection is stored; without one (``error``,
    e.g. ``access_denied`` when the admin declined), back to ``return_to`` with
    ``zoom_error``."""
    if code is None and error is None:
        raise field_error("code", "Zoom sent neither a code nor an error")
    outcome = await service.callback(
        session, zoom, state=state, code=code, error=error, cookies=request.cookies
    )
    response = RedirectResponse(outcome.location, status_code=302)
    if outcome.cookie_name is not None:
        response.delete_cookie(outcome.cookie_name, path=outcome.cookie_path, httponly=True)
    return response


@router.get("/accounts", response_model=list[AccountOut], responses=problem_responses(401, 403))
async def list_accounts(admin: AdminPrincipal, session: SessionDep) -> list[AccountOut]:
    return [_out(a) for a in await service.list_accounts(session, admin.company_id)]


@router.post(
    "/accounts/server-to-server",
    status_code=201,
    response_model=AccountOut,
    responses=problem_responses(401, 403, 422),
)
async def connect_s2s(
    body: ServerToServerIn, admin: AdminPrincipal, session: SessionDep, zoom: ZoomDep
) -> AccountOut:
    """R-ZOOM-1 alternative: a Server-to-Server OAuth app (client secret stored encrypted)."""
    return _out(await service.connect_s2s(session, zoom, admin.company_id, body))


@router.patch(
    "/accounts/{account_id}",
    response_model=AccountOut,
    responses=problem_responses(401, 403, 404, 422),
)
async def patch_account(
    account_id: uuid.UUID,
    body: AccountPatch,
    admin: AdminPrincipal,
    session: SessionDep,
    zoom: ZoomDep,
) -> AccountOut:
    """R-ZOOM-2: set the account's role (announced to catalog, which uses it for new days).
    R-ZOOM-4: a Server-to-Server connection's new ``webhook_secret_token`` (stored encrypted,
    never returned); 422 for an OAuth connection."""
    account = await service.get_account(session, admin.company_id, account_id)
    if body.webhook_secret_token is not None:
        account = await service.set_webhook_secret(
            session, zoom, admin.company_id, account_id, body.webhook_secret_token
        )
    if body.role is not None:
        account = await service.set_role(session, admin.company_id, account_id, body.role)
    return _out(account)
