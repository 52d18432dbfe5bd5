"""Messages zoom-bridge consumes. Day messages only record the desired meeting and arm a
durable job (fast, idempotent, keyed by day_id); the worker talks to Zoom."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from te_shared import contracts as c
from te_shared.inbox import Consumers
from te_shared.replica import follow_company_settings, upsert_if_newer
from te_shared.topology import ZOOM_BRIDGE
from zoom_bridge.meetings import jobs, store
from zoom_bridge.models import CompanyReplica, Enrollment, ZoomJob

consumers = Consumers(ZOOM_BRIDGE)


follow_company_settings(consumers, CompanyReplica)


def day_values(msg: c.DayData | c.DayCancelled) -> dict[str, Any]:
    """What the day message says of the day's meeting (:func:`store.record_day`'s values): a
    meeting to have for a zoom day, none for any other day or a cancelled one."""
    values: dict[str, Any] = {
        "day_id": msg.day_id,
        "company_id": msg.company_id,
        "session_id": msg.session_id,
        "event_id": msg.event_id,
        "version": msg.version,
        "desired": "absent",
        "account_id": None,
        "organizer_user_id": None,
        "auto_recording": False,
        "topic": "",
        "start": None,
        "end": None,
        "timezone": "UTC",
    }
    if isinstance(msg, c.DayData) and msg.format is c.DayFormat.ZOOM and msg.zoom is not None:
        values.update(
            desired="present",
            account_id=msg.zoom.account_id,
            organizer_user_id=msg.zoom.organizer_user_id,
            auto_recording=msg.zoom.auto_recording,
            topic=msg.topic[:300],
            start=msg.start,
            end=msg.end,
            timezone=msg.timezone,
        )
    return values


async def _on_day(session: AsyncSession, msg: c.DayData | c.DayCancelled) -> None:
    """Keep the day's desired meeting when the message is newer than what is kept (a stale
    one changes nothing) and arm the day's sync when Zoom has something to do: a meeting to
    have, one to remove (also one a create whose answer was lost may have made), or work in
    flight (never a Zoom call, nor a MeetingDeleted, for a day that never was a zoom day). A
    new version of the day re-arms a meeting that failed (R-ZOOM-8)."""
    meeting = await store.record_day(session, day_values(msg))
    if meeting is None:
        return
    zoom_has_work = (
        meeting.desired == "present"
        or meeting.zoom_meeting_id is not None
        or meeting.create_account_id is not None
    )
    # the job table is read only when nothing else says so: not on a zoom day's path
    if zoom_has_work or await session.get(ZoomJob, (msg.day_id, jobs.SYNC)) is not None:
        # handed to this process's worker as the message's transaction commits: no claim
        settles = meeting.create_settles_at if meeting.create_account_id is not None else None
        await jobs.arm(session, msg.day_id, jobs.SYNC, hand_over=True, settles_at=settles)


@consumers.handler(c.DayScheduled)
async def on_day_scheduled(session: AsyncSession, msg: c.DayScheduled) -> None:
    await _on_day(session, msg)


@consumers.handler(c.DayRescheduled)
async def on_day_rescheduled(session: AsyncSession, msg: c.DayRescheduled) -> None:
    await _on_day(session, msg)


@consumers.handler(c.DayCancelled)
async def on_day_cancelled(session: AsyncSession, msg: c.DayCancelled) -> None:
    await _on_day(session, msg)


@consumers.handler(c.EnrollmentChanged)
async def on_enrollment(session: AsyncSession, msg: c.EnrollmentChanged) -> None:
    """Who may read a day's meeting and whose attendance a join is. R-ZOOM-3: a newer version
    arms the registrants of the days of its session (and of the session it left)."""
    before = await session.get(Enrollment, msg.enrollment_id)
    left = before.session_id if before is not None else None
    written = await upsert_if_newer(
        session,
        Enrollment,
        key={"enrollment_id": msg.enrollment_id},
        version=msg.version,
        values={
            "company_id": msg.company_id,
            "event_id": msg.event_id,
            "session_id": msg.session_id,
            "user_id": msg.user_id,
            "email": msg.email.lower() if msg.email else None,
            "status": msg.status.value,
        },
    )
    if written:
        sessions = {msg.session_id} | ({left} if left is not None else set())
        days = await jobs.registrant_days(session, company_id=msg.company_id, session_ids=sessions)
        await jobs.arm_registrants(session, days)
