"""The participants of a day's meeting and admins' matches (R-ZOOM-5): every participant is
listed, matched or not, and an admin may credit one nothing matched (a guest, an unknown
e-mail) to a platform user of the day's session."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from te_shared import rules
from te_shared.db import utcnow
from te_shared.errors import Conflict, NotFound, field_error
from te_shared.logging import get_logger
from zoom_bridge.meetings import attendance
from zoom_bridge.meetings.attendance import DayAttendance, How, Participant
from zoom_bridge.models import Enrollment, ParticipantMatch, ZoomMeeting
from zoom_bridge.participants.schemas import ParticipantOut

log = get_logger(__name__)


async def _meeting(session: AsyncSession, day_id: uuid.UUID, company_id: str) -> ZoomMeeting:
    meeting = await session.get(ZoomMeeting, day_id)
    if meeting is None or meeting.company_id != company_id:
        raise NotFound("No meeting for this day.")
    return meeting


def _out(participant: Participant, day: DayAttendance) -> ParticipantOut:
    found = day.matches.get(participant.id)
    return ParticipantOut(
        id=participant.id,
        name=participant.who.name,
        email=participant.who.email,
        user_id=found.person.user_id if found else None,
        match=found.how.value if found else None,
        matched_by=found.matched_by if found else None,
        minutes=day.minutes(participant.seconds),
        joined_at=participant.joined_at,
        left_at=participant.left_at,
    )


async def listed(session: AsyncSession, day_id: uuid.UUID, company_id: str) -> list[ParticipantOut]:
    """Every participant of the day's meeting, by first join."""
    day = await attendance.load(session, await _meeting(session, day_id, company_id))
    return [_out(p, day) for p in day.participants]


async def match(
    session: AsyncSession,
    day_id: uuid.UUID,
    company_id: str,
    participant_id: str,
    user_id: str,
    admin_id: str,
) -> ParticipantOut:
    """Credit a participant nothing matched to ``user_id``, who must hold a live enrollment in
    the day's session (422 otherwise): the user's attendance is published (``matched_by``:
    the admin, when the match is all of it), so registration moves their status and its
    history says who. A participant already matched (by registrant id, e-mail or another
    admin's match to someone else) is a 409; the same match again changes nothing."""
    meeting = await _meeting(session, day_id, company_id)
    day = await attendance.load(session, meeting)
    participant = next((p for p in day.participants if p.id == participant_id), None)
    if participant is None:
        raise NotFound("No such participant in this day's meeting.")
    found = day.matches.get(participant.id)
    if found is not None:
        if found.how is How.ADMIN and found.person.user_id == user_id:
            return _out(participant, day)
        raise Conflict(
            f"The participant is already matched (by {found.how.value}).",
            code="participant_already_matched",
        )
    stmt = select(Enrollment).where(
        Enrollment.company_id == company_id,
        Enrollment.session_id == meeting.session_id,
        Enrollment.user_id == user_id,
        Enrollment.status.in_(sorted(rules.LIVE)),
    )
    enrollment = (await session.execute(stmt.limit(1))).scalars().first()
    if enrollment is None:
        raise field_error(
            "body.user_id",
            "The user holds no live enrollment in the day's session.",
            code="not_enrolled",
        )
    session.add(
        ParticipantMatch(
            day_id=meeting.day_id,
            participant_id=participant.id,
            user_id=user_id,
            email=enrollment.email,
            matched_by=admin_id,
            matched_at=utcnow(),
        )
    )
    await session.flush()
    day = await attendance.publish(session, meeting, person=user_id)
    log.info("zoom_participant_matched", day_id=str(day_id), admin=admin_id)
    matched = next(p for p in day.participants if participant.id in p.aliases)
    return _out(matched, day)
