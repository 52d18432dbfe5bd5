"""The meeting endpoints' service: what a viewer of a day's meeting sees (R-ZOOM-3, R-ZOOM-7)
and the admin's retry (R-ZOOM-8). The endpoints decide who may ask; this module answers."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import Enum

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from te_shared import contracts as c
from te_shared import rules
from te_shared.auth import Principal
from te_shared.errors import NotFound
from te_shared.logging import get_logger
from zoom_bridge.meetings import jobs, reconcile
from zoom_bridge.meetings.attendance import role_of
from zoom_bridge.meetings.schemas import MeetingOut, RecordingOut
from zoom_bridge.models import Enrollment, MeetingRegistrant, ZoomMeeting
from zoom_bridge.webhooks.service import safe_recording_link
from zoom_bridge.zoom.api import ZoomApi
from zoom_bridge.zoom.client import ZoomError

log = get_logger(__name__)

NO_MEETING = "No meeting for this day."


class Audience(Enum):
    """Who is looking at a day's meeting, for what they may see of it."""

    #: the company's admins and the day's organizer: the host link besides the join link
    HOST = "host"
    #: a user holding a seat in the day's session (R-ZOOM-3 ruling): the join link
    SEAT = "seat"


def audience(*, is_admin: bool, is_organizer: bool, seat_status: str | None) -> Audience | None:
    """R-ZOOM-3: the host link for admins and the organizer; the join link (and recordings) for
    people holding a seat in the day's session (an allow-list, ``rules.JOIN_LINK``: approved,
    awaiting confirmation, participated, missed); None (404) for anyone else: pending,
    waitlisted, denied and cancelled users, strangers."""
    if is_admin or is_organizer:
        return Audience.HOST
    if seat_status is not None and seat_status in rules.JOIN_LINK:
        return Audience.SEAT
    return None


@dataclass(frozen=True)
class HostLink:
    """Where to ask Zoom for a fresh host link, and the stored one to fall back on."""

    day_id: uuid.UUID
    zoom_meeting_id: str | None
    account_id: uuid.UUID | None
    stored_enc: str | None


@dataclass(frozen=True)
class MeetingView:
    out: MeetingOut
    host: HostLink | None


async def _present_meeting(
    session: AsyncSession, company_id: str, day_id: uuid.UUID
) -> ZoomMeeting:
    meeting = await session.get(ZoomMeeting, day_id)
    if meeting is None or meeting.company_id != company_id or meeting.desired != "present":
        raise NotFound(NO_MEETING)
    return meeting


async def _seat(
    session: AsyncSession, meeting: ZoomMeeting, user_id: str
) -> tuple[uuid.UUID, str] | None:
    """The user's seat-holding enrollment in the day's session (its id and status), if any."""
    stmt = select(Enrollment.enrollment_id, Enrollment.status).where(
        Enrollment.company_id == meeting.company_id,
        Enrollment.session_id == meeting.session_id,
        Enrollment.user_id == user_id,
        Enrollment.status.in_(sorted(rules.JOIN_LINK)),
    )
    found = (await session.execute(stmt.limit(1))).first()
    return (found[0], found[1]) if found is not None else None


async def _personal_link(
    session: AsyncSession, zoom: ZoomApi, meeting: ZoomMeeting, enrollment_id: uuid.UUID
) -> str | None:
    """R-ZOOM-3: the seat holder's own join link, when they are registered for the day's
    current meeting (administrator role)."""
    row = await session.get(MeetingRegistrant, (meeting.day_id, enrollment_id))
    if row is None or row.zoom_meeting_id != meeting.zoom_meeting_id:
        return None
    return zoom.cipher.decrypt(row.join_url_enc)


def meeting_out(meeting: ZoomMeeting) -> MeetingOut:
    return MeetingOut(
        status=c.MeetingStatus(meeting.status),
        zoom_meeting_id=meeting.zoom_meeting_id,
        join_url=meeting.join_url,
        error=meeting.error if meeting.status != c.MeetingStatus.DELETED.value else None,
    )


async def view(
    session: AsyncSession, zoom: ZoomApi, principal: Principal, day_id: uuid.UUID
) -> MeetingView:
    """The day's meeting as ``principal`` may see it (404 when they may not see it at all):
    a registered seat holder's own join link (R-ZOOM-3; the shared one until they are
    registered), recordings for the administrator role (R-ZOOM-7), only links on Zoom's own
    hosts; for admins and the organizer, the shared join link and where to get a fresh host
    link."""
    meeting = await _present_meeting(session, principal.company_id, day_id)
    organizer = meeting.organizer_user_id == principal.user_id
    seat = None
    if not principal.is_admin and not organizer:
        seat = await _seat(session, meeting, principal.user_id)
    status = seat[1] if seat is not None else None
    who = audience(is_admin=principal.is_admin, is_organizer=organizer, seat_status=status)
    if who is None:
        raise NotFound(NO_MEETING)
    out = meeting_out(meeting)
    if who is Audience.SEAT and seat is not None:
        out.join_url = await _personal_link(session, zoom, meeting, seat[0]) or out.join_url
    if await role_of(session, meeting) == c.ZoomAccountRole.ADMINISTRATOR:
        out.recordings = [
            RecordingOut.model_validate(r)
            for r in meeting.recordings or []
            if safe_recording_link(r.get("play_url"), zoom.settings)
        ]
    host = None
    if who is Audience.HOST:  # where the final attendance came from (admins, the organizer)
        out.attendance_source, out.report_unavailable_reason = await reconcile.describe(
            session, meeting.day_id
        )
        host = HostLink(
            day_id=meeting.day_id,
            zoom_meeting_id=meeting.zoom_meeting_id,
            account_id=meeting.meeting_account_id or meeting.account_id,
            stored_enc=meeting.start_url_enc,
        )
    return MeetingView(out, host)


async def add_host_link(zoom: ZoomApi, host: HostLink, out: MeetingOut) -> None:
    """Zoom's start_url expires (about 2 hours after Zoom hands it out): ask Zoom for a fresh
    one (GET /meetings/{id}) and keep it; when Zoom cannot answer in time, serve the stored one
    and say so (``start_url_fresh: false``). Runs outside any request transaction: the stored
    link is replaced in a short transaction of its own."""
    if host.zoom_meeting_id is not None and host.account_id is not None:
        try:
            fresh = (
                await zoom.get_meeting(
                    host.account_id,
                    host.zoom_meeting_id,
                    timeout=zoom.settings.zoom_start_url_timeout,
                )
            ).start_url
        except (ZoomError, ValueError, KeyError) as exc:
            log.info(
                "zoom_start_url_not_refreshed",
                day_id=str(host.day_id),
                status=getattr(exc, "status", None),
            )
            fresh = None
        if fresh:
            async with zoom.client.sessionmaker() as session, session.begin():
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


async def retry(session: AsyncSession, company_id: str, day_id: uuid.UUID) -> MeetingOut:
    """R-ZOOM-8: arm the day's sync now with a fresh retry budget; a failed meeting that Zoom
    never made is pending again."""
    meeting = await _present_meeting(session, company_id, day_id)
    if meeting.status == c.MeetingStatus.FAILED.value and meeting.zoom_meeting_id is None:
        meeting.status = c.MeetingStatus.PENDING.value
        meeting.error = None
    await jobs.arm(session, meeting.day_id, jobs.SYNC)
    return meeting_out(meeting)
