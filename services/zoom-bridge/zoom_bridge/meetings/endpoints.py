"""A day's meeting over HTTP: who may ask is checked here (the token's company and role); what
they see is :mod:`zoom_bridge.meetings.service`'s."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from te_shared.auth import AdminPrincipal, CurrentPrincipal
from te_shared.errors import problem_responses
from te_shared.logging import get_logger
from te_shared.service import RuntimeDep, SessionDep
from zoom_bridge.deps import ZoomDep
from zoom_bridge.meetings import service
from zoom_bridge.meetings.schemas import MeetingOut
from zoom_bridge.zoom.api import ZoomApi

log = get_logger(__name__)

router = APIRouter(prefix="/v1/days", tags=["meetings"])


@router.get(
    "/{day_id}/meeting",
    response_model=MeetingOut,
    response_model_exclude_none=True,
    responses=problem_responses(401, 404),
)
async def get_meeting(
    day_id: uuid.UUID, principal: CurrentPrincipal, runtime: RuntimeDep, zoom: ZoomDep
) -> MeetingOut:
    """R-ZOOM-3: the join link (and recordings) only for people holding a seat in the day's
    session (an allow-list: approved, awaiting confirmation, participated, missed), the
    organizer and admins; pending, waitlisted, denied and cancelled users get 404. The host
    link only for the organizer and admins; recordings only for the administrator role
    (R-ZOOM-7), and only links on Zoom's own hosts. The database is read in a short
    transaction of its own: asking Zoom for a fresh host link happens after it."""
    api = ZoomApi(zoom)
    async with runtime.session_factory()() as session, session.begin():
        seen = await service.view(session, api, principal, day_id)
    if seen.host is not None:
        await service.add_host_link(api, seen.host, seen.out)
    return seen.out


@router.post(
    "/{day_id}/meeting/retry",
    status_code=202,
    response_model=MeetingOut,
    response_model_exclude_none=True,
    responses=problem_responses(401, 403, 404),
)
async def retry_meeting(
    day_id: uuid.UUID, admin: AdminPrincipal, session: SessionDep
) -> MeetingOut:
    """R-ZOOM-8: try the day's meeting again now (after it failed, e.g. once its account is
    reconnected), with a fresh retry budget. Accepted: the bridge works on it in the
    background; GET shows the outcome."""
    out = await service.retry(session, admin.company_id, day_id)
    log.info("zoom_meeting_retry_requested", day_id=str(day_id), admin=admin.user_id)
    return out
