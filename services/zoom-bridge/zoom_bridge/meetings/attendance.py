"""Attendance from webhooks (R-ZOOM-5, R-ZOOM-2): segments per participant stay, matched to
platform users by e-mail through registration's enrollments; rejoins add up."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from te_shared import contracts as c
from te_shared.outbox import add_message
from zoom_bridge.models import AttendanceSegment, Enrollment, OutboxRecord, ZoomAccount, ZoomMeeting


def parse_time(value: Any) -> dt.datetime | None:
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


async def role_of(session: AsyncSession, meeting: ZoomMeeting) -> str | None:
    if meeting.account_id is None:
        return None
    account = await session.get(ZoomAccount, meeting.account_id)
    return account.role if account is not None else None


async def record_segment(
    session: AsyncSession, meeting: ZoomMeeting, participant: dict[str, Any], joined: bool
) -> str | None:
    """Join and leave of one stay fill the same row, whichever arrives first. Returns the
    participant's e-mail once known (the user whose attendance changed).

    Zoom's ``user_id`` names one stay. Without it, ``participant_uuid`` is the same for every
    stay of a participant, so such stays are keyed by their join (or, for a leave that came
    first, leave) time, and a leave pairs with the open stay it ends."""
    at = parse_time(participant.get("join_time" if joined else "leave_time"))
    user_id = str(participant.get("user_id") or "")
    puid = str(participant.get("participant_uuid") or "")
    segment: AttendanceSegment | None
    if user_id:
        key = user_id
        segment = await session.get(AttendanceSegment, (meeting.day_id, key))
    elif puid:
        key = f"p:{puid}:{'join' if joined else 'leave'}:{at.isoformat() if at else ''}"
        segment = await session.get(AttendanceSegment, (meeting.day_id, key))
        if segment is None:
            segment = await _pair(session, meeting, f"p:{puid}:", at, joined)
    else:
        return None
    if segment is None:
        segment = AttendanceSegment(day_id=meeting.day_id, participant_key=key)
        session.add(segment)
    email = str(participant.get("email") or "").lower()
    if email:
        segment.email = email
    if joined:
        segment.join_time = at
    else:
        segment.leave_time = at
    await session.flush()
    return segment.email or None


async def _pair(
    session: AsyncSession, meeting: ZoomMeeting, prefix: str, at: dt.datetime | None, joined: bool
) -> AttendanceSegment | None:
    """The stay a join or leave without ``user_id`` completes: for a leave, the latest open
    stay that began before it; for a join, the earliest lone leave after it."""
    if at is None:
        return None
    stmt = select(AttendanceSegment).where(
        AttendanceSegment.day_id == meeting.day_id,
        AttendanceSegment.participant_key.startswith(prefix, autoescape=True),
    )
    if joined:
        stmt = stmt.where(
            AttendanceSegment.join_time.is_(None), AttendanceSegment.leave_time >= at
        ).order_by(AttendanceSegment.leave_time)
    else:
        stmt = stmt.where(
            AttendanceSegment.leave_time.is_(None), AttendanceSegment.join_time <= at
        ).order_by(AttendanceSegment.join_time.desc())
    found: AttendanceSegment | None = (await session.execute(stmt.limit(1))).scalars().first()
    return found


async def publish(
    session: AsyncSession,
    meeting: ZoomMeeting,
    *,
    final: bool = False,
    email: str | None = None,
) -> None:
    """AttendanceRecorded per matched user of the day (minutes only for the administrator role).

    With ``email``, only that participant's attendance is published: a join or leave changes one
    user's figures, so a webhook costs one message, not one per participant of the meeting."""
    segment_query = select(AttendanceSegment).where(AttendanceSegment.day_id == meeting.day_id)
    enrollment_query = select(Enrollment).where(Enrollment.session_id == meeting.session_id)
    if email is not None:
        segment_query = segment_query.where(AttendanceSegment.email == email)
        enrollment_query = enrollment_query.where(Enrollment.email == email)
    segments = list((await session.execute(segment_query)).scalars())
    enrollments = (await session.execute(enrollment_query)).scalars()
    # a person is the user of the enrollment, or, for one not bound to a user yet, its e-mail
    by_email: dict[str, str | None] = {}
    for e in enrollments:  # an e-mail's bound enrollment wins over an unbound one
        if e.email and by_email.get(e.email) is None:
            by_email[e.email] = e.user_id
    seconds: dict[tuple[str | None, str], float] = {}
    for segment in segments:
        mail = segment.email or ""
        if mail not in by_email:
            continue
        person = (by_email[mail], mail)
        spent = 0.0
        if segment.join_time is not None and segment.leave_time is not None:
            spent = max(0.0, (segment.leave_time - segment.join_time).total_seconds())
        seconds[person] = seconds.get(person, 0.0) + spent
    administrator = await role_of(session, meeting) == c.ZoomAccountRole.ADMINISTRATOR
    for (user_id, mail), total in sorted(
        seconds.items(), key=lambda kv: (kv[0][0] or "", kv[0][1])
    ):
        add_message(
            session,
            OutboxRecord,
            c.AttendanceRecorded(
                company_id=meeting.company_id,
                day_id=meeting.day_id,
                user_id=user_id,
                email=mail,
                joined=True,
                minutes=round(total / 60) if administrator else None,
                final=final,
            ),
        )
