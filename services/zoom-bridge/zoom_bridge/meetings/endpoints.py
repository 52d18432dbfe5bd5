from __future__ import annotations

import uuid

from fastapi import APIRouter
from sqlalchemy import select

from te_shared import contracts as c
from te_shared.auth import CurrentPrincipal
from te_shared.errors import NotFound, problem_responses
from te_shared.service import SessionDep
from zoom_bridge.deps import ZoomDep
from zoom_bridge.meetings.attendance import role_of
from zoom_bridge.meetings.schemas import MeetingOut, RecordingOut
from zoom_bridge.models import Enrollment, ZoomMeeting

router = APIRouter(prefix="/v1/days", tags=["meetings"])

NO_ACCESS = {c.EnrollmentStatus.CANCELLED.value, c.EnrollmentStatus.DENIED.value}


@router.get(
    "/{day_id}/meeting",
    response_model=MeetingOut,
    response_model_exclude_none=True,
    responses=problem_responses(401, 404),
)
async def get_meeting(
    day_id: uuid.UUID, principal: CurrentPrincipal, session: SessionDep, zoom: ZoomDep
) -> MeetingOut:
    """R-ZOOM-3: the join link for users with access; the host link only for the organizer and
    admins; recordings only for the administrator role (R-ZOOM-7)."""
    meeting = await session.get(ZoomMeeting, day_id)
    if (
        meeting is None
        or meeting.company_id != principal.company_id
        or meeting.desired != "present"
    ):
        raise NotFound("No meeting for this day.")
    organizer = meeting.organizer_user_id == principal.user_id
    if not principal.is_admin and not organizer:
        stmt = select(Enrollment.enrollment_id).where(
            Enrollment.company_id == principal.company_id,
            Enrollment.session_id == meeting.session_id,
            Enrollment.user_id == principal.user_id,
            Enrollment.status.not_in(NO_ACCESS),
        )
        if (await session.execute(stmt.limit(1))).first() is None:
            raise NotFound("No meeting for this day.")
    out = MeetingOut(
        status=c.MeetingStatus(meeting.status),
        zoom_meeting_id=meeting.zoom_meeting_id,
        join_url=meeting.join_url,
        error=meeting.error if meeting.status == c.MeetingStatus.FAILED.value else None,
    )
    if (principal.is_admin or organizer) and meeting.start_url_enc:
        out.start_url = zoom.cipher.decrypt(meeting.start_url_enc)
    if await role_of(session, meeting) == c.ZoomAccountRole.ADMINISTRATOR:
        out.recordings = [RecordingOut.model_validate(r) for r in meeting.recordings or []]
    return out
