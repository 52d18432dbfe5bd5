from __future__ import annotations

import uuid
from dataclasses import dataclass

from fastapi import APIRouter
from sqlalchemy import select, update

from te_shared import contracts as c
from te_shared import rules
from te_shared.auth import AdminPrincipal, CurrentPrincipal
from te_shared.errors import NotFound, problem_responses
from te_shared.logging import get_logger
from te_shared.service import RuntimeDep, SessionDep
from zoom_bridge.deps import ZoomDep
from zoom_bridge.meetings import jobs, reconcile
from zoom_bridge.meetings.attendance import role_of
from zoom_bridge.meetings.schemas import MeetingOut, RecordingOut
from zoom_bridge.models import Enrollment, ZoomMeeting
from zoom_bridge.webhooks.service import safe_recording_link
from zoom_bridge.zoom.client import ZoomClient, ZoomError

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
    async with runtime.session_factory()() as session, session.begin():
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
                Enrollment.status.in_(sorted(rules.JOIN_LINK)),
            )
            if (await session.execute(stmt.limit(1))).first() is None:
                raise NotFound("No meeting for this day.")
        out = _out(meeting)
        if await role_of(session, meeting) == c.ZoomAccountRole.ADMINISTRATOR:
            out.recordings = [
                RecordingOut.model_validate(r)
                for r in meeting.recordings or []
                if safe_recording_link(r.get("play_url"), zoom.settings)
            ]
        if principal.is_admin or organizer:  # where the final attendance came from
            source = await reconcile.describe(session, meeting.day_id)
            out.attendance_source, out.report_unavailable_reason = source
        host = HostLink(
            day_id=meeting.day_id,
            zoom_meeting_id=meeting.zoom_meeting_id,
            account_id=meeting.meeting_account_id or meeting.account_id,
            stored_enc=meeting.start_url_enc,
        )
    if principal.is_admin or organizer:
        await _host_link(zoom, host, out)
    return out


def _out(meeting: ZoomMeeting) -> MeetingOut:
    return MeetingOut(
        status=c.MeetingStatus(meeting.status),
        zoom_meeting_id=meeting.zoom_meeting_id,
        join_url=meeting.join_url,
        error=meeting.error if meeting.status == c.MeetingStatus.FAILED.value else None,
    )


@dataclass(frozen=True)
class HostLink:
    day_id: uuid.UUID
    zoom_meeting_id: str | None
    account_id: uuid.UUID | None
    stored_enc: str | None


async def _host_link(zoom: ZoomClient, host: HostLink, out: MeetingOut) -> None:
    """Zoom's start_url expires (about 2 hours after Zoom hands it out): ask Zoom for a fresh
    one (GET /meetings/{id}) and keep it; when Zoom cannot answer in time, serve the stored one
    and say so (``start_url_fresh: false``)."""
    if host.zoom_meeting_id is not None and host.account_id is not None:
        try:
            response = await zoom.call(
                host.account_id,
                "GET",
                f"/meetings/{host.zoom_meeting_id}",
                timeout=zoom.settings.zoom_start_url_timeout,
            )
            fresh = response.json().get("start_url")
        except (ZoomError, ValueError) as exc:
            log.info(
                "zoom_start_url_not_refreshed",
                day_id=str(host.day_id),
                status=getattr(exc, "status", None),
            )
            fresh = None
        if isinstance(fresh, str) and fresh:
            async with zoom.sessionmaker() as session, session.begin():  # kept as the fallback
                await session.execute(
                    update(ZoomMeeting)
                    .where(ZoomMeeting.day_id == host.day_id)
                    .values(start_url_enc=zoom.cipher.encrypt(fresh))
                )
            out.start_url, out.start_url_fresh = fresh, True
            return
    if host.stored_enc:
        out.start_url = zoom.cipher.decrypt(host.stored_enc)
        out.start_url_fresh = False


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
    meeting = await session.get(ZoomMeeting, day_id)
    if meeting is None or meeting.company_id != admin.company_id or meeting.desired != "present":
        raise NotFound("No meeting for this day.")
    if meeting.status == c.MeetingStatus.FAILED.value and meeting.zoom_meeting_id is None:
        meeting.status = c.MeetingStatus.PENDING.value
    await jobs.arm(session, meeting.day_id, jobs.SYNC)
    log.info("zoom_meeting_retry_requested", day_id=str(day_id), admin=admin.user_id)
    return _out(meeting)
