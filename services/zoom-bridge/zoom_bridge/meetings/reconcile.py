"""Reconciling a day's attendance after its meeting ended (R-ZOOM-5).

With the participant role there is no report to read (Zoom's reports need an administrator's
account; R-ZOOM-2: attendance without time spent): the joins the webhooks brought are the
day's final attendance, published as such once the meeting ended, without a call to Zoom.

Zoom's participants report is the truth, per meeting **instance**: the bridge lists the
instances Zoom held (``GET /past_meetings/{id}/instances``, plus any whose ``meeting.ended`` it
saw) and reads the report of each one not reconciled yet by its uuid (double-encoded when it
begins with ``/`` or contains ``//``, as Zoom requires). A report replaces the webhook rows of
the instance it covers; its waiting-room rows (``status: in_waiting_room``) are skipped.

A report that is unavailable never stops the final attendance: a refusal (4711, a missing
scope; 200 with the free plan's body instead of participants; any other 4xx; the account no
longer connected) at once, a 404 (Zoom does not have it yet) after
``ZOOM_RECONCILE_ATTEMPTS`` reads with the wait doubling, Zoom down after the retry budget:
the webhooks' stays of that instance count, the instance says why
(``report_unavailable_reason``), and the final figures are published all the same.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from te_shared import contracts as c
from te_shared.db import utcnow
from te_shared.logging import get_logger
from zoom_bridge.meetings import attendance, jobs
from zoom_bridge.meetings.attendance import REPORT, WEBHOOKS, Segment
from zoom_bridge.models import AttendanceSegment, MeetingInstance, ZoomMeeting
from zoom_bridge.settings import ZoomBridgeSettings
from zoom_bridge.zoom.client import ZoomClient, ZoomFatal, ZoomNotFound, ZoomRetryable

log = get_logger(__name__)


#: why a participant-role day's attendance is the webhooks' (``report_unavailable_reason``)
PARTICIPANT_ROLE = (
    "the participant role has no participants report (Zoom's reports need the administrator "
    "role): the joins Zoom's webhooks reported are the attendance"
)


class ReportUnavailable(Exception):
    """Zoom answered, but with no participants (the free plan's body under a 200)."""


# ---- pure --------------------------------------------------------------------------------------


def instance_path(instance: str) -> str:
    """A meeting instance's uuid as a path segment: encoded, and encoded twice when it begins
    with ``/`` or contains ``//`` (Zoom: "you must double encode the UUID")."""
    once = quote(instance, safe="")
    return quote(once, safe="") if instance.startswith("/") or "//" in instance else once


def from_report(
    instance: str, rows: Iterable[Any], existing: Sequence[Segment]
) -> tuple[list[Segment], list[str]]:
    """The rows of one instance's report as stays, and the keys of the rows they replace:
    every row of that instance (its webhook halves, an earlier report) but its breakout rooms'
    (:func:`attendance.in_breakout_room`), and rows kept before instances were (no instance) of
    people the report lists by e-mail. Waiting-room rows and
    stays without both times are skipped. A report row has no ``participant_uuid``: it takes
    the one of the webhook stay with the same ``user_id`` in that instance, so a guest stays
    the same participant (and an admin's match of them holds)."""
    known = {
        seg.stay: seg.who.participant_uuid
        for seg in existing
        if seg.instance == instance and seg.stay and seg.who.participant_uuid
    }
    new: list[Segment] = []
    for index, row in enumerate(rows):
        if not isinstance(row, Mapping) or row.get("status") == attendance.IN_WAITING_ROOM:
            continue
        join = attendance.parse_time(row.get("join_time"))
        leave = attendance.parse_time(row.get("leave_time"))
        if join is None or leave is None:
            continue
        stay = attendance.text_value(row.get("user_id"))
        who = attendance.who_of(row, email_field="user_email")
        if stay is not None and stay in known:
            who = who.merged(attendance.Who(participant_uuid=known[stay]))
        key = f"r:{instance}:{index}:{stay or ''}"
        new.append(Segment(key, REPORT, instance, stay, join, leave, who))
    listed = {s.who.email for s in new if s.who.email}
    gone = [
        seg.key
        for seg in existing
        if (seg.instance == instance and not attendance.in_breakout_room(seg.stay))
        or (seg.instance is None and seg.who.email in listed)
    ]
    return new, gone


def reason_of(exc: Exception) -> str:
    return str(exc)[:500]


# ---- Zoom --------------------------------------------------------------------------------------


async def listed_instances(
    zoom: ZoomClient, account_id: uuid.UUID, zoom_meeting_id: str
) -> list[str]:
    """The ended instances Zoom lists for the meeting (oldest first); none when it cannot
    say (the day's own ``meeting.ended`` notifications still name theirs)."""
    try:
        response = await zoom.call(account_id, "GET", f"/past_meetings/{zoom_meeting_id}/instances")
        data = response.json()
    except (ZoomFatal, ValueError) as exc:
        log.info("zoom_instances_unlisted", zoom_meeting_id=zoom_meeting_id, error=str(exc))
        return []
    items = data.get("meetings") if isinstance(data, dict) else None
    found = [
        str(m["uuid"])
        for m in items or []
        if isinstance(m, dict) and attendance.text_value(m.get("uuid")) is not None
    ]
    return list(dict.fromkeys(found))


async def report(zoom: ZoomClient, account_id: uuid.UUID, instance: str) -> list[Any]:
    """Every row of one instance's participants report (each page)."""
    rows: list[Any] = []
    token = ""
    while True:
        path = (
            f"/report/meetings/{instance_path(instance)}/participants"
            "?page_size=300&include_fields=registrant_id"
        )
        if token:
            path += f"&next_page_token={quote(token, safe='')}"
        data = (await zoom.call(account_id, "GET", path)).json()
        listed = data.get("participants") if isinstance(data, dict) else None
        if not isinstance(listed, list):
            said = data.get("message") if isinstance(data, dict) else None
            raise ReportUnavailable(f"Zoom answered 200 without participants: {said or data}")
        rows.extend(listed)
        token = str(data.get("next_page_token") or "")
        if not token:
            return rows


# ---- the job -----------------------------------------------------------------------------------


async def store_report(
    session: AsyncSession, day_id: uuid.UUID, instance: str, rows: Sequence[Any]
) -> None:
    """The report replaces the webhook rows of the instance it covers (one transaction)."""
    existing = [
        attendance.segment_of(r)
        for r in (
            await session.execute(
                select(AttendanceSegment).where(AttendanceSegment.day_id == day_id)
            )
        ).scalars()
    ]
    new, gone = from_report(instance, rows, existing)
    if gone:
        await session.execute(
            delete(AttendanceSegment).where(
                AttendanceSegment.day_id == day_id, AttendanceSegment.participant_key.in_(gone)
            )
        )
    for seg in new:
        session.add(
            AttendanceSegment(
                day_id=day_id,
                participant_key=seg.key,
                source=REPORT,
                instance_uuid=seg.instance,
                stay_id=seg.stay,
                join_time=seg.join,
                leave_time=seg.leave,
                email=seg.who.email,
                name=seg.who.name,
                participant_uuid=seg.who.participant_uuid,
                registrant_id=seg.who.registrant_id,
                zoom_user_id=seg.who.zoom_user_id,
            )
        )
    await _settle(session, day_id, {instance: None})


async def _settle(
    session: AsyncSession, day_id: uuid.UUID, outcomes: Mapping[str, str | None]
) -> None:
    """Record where each instance's attendance comes from: the report (reason None), or the
    webhooks because the report was unavailable (the reason)."""
    for instance, reason in outcomes.items():
        row = await session.get(MeetingInstance, (day_id, instance))
        if row is None:
            row = MeetingInstance(day_id=day_id, instance_uuid=instance)
            session.add(row)
        row.source = REPORT if reason is None else WEBHOOKS
        row.report_unavailable_reason = reason
    await session.flush()


async def run(
    zoom: ZoomClient,
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: ZoomBridgeSettings,
    claimed: jobs.Claimed,
) -> None:
    """Reconcile each instance not reconciled yet, then publish the day's final attendance."""
    day_id = claimed.day_id
    async with sessionmaker() as session, session.begin():
        meeting = await session.get(ZoomMeeting, day_id)
        if meeting is None:
            await jobs.finish(session, claimed)
            return
        account_id = meeting.meeting_account_id or meeting.account_id
        zoom_meeting_id = meeting.zoom_meeting_id
        held = {i.instance_uuid: i.source for i in await attendance.instances(session, day_id)}
        role = await attendance.role_of(session, meeting)
    unavailable: dict[str, str | None] = {}
    missing: dict[str, str] = {}
    try:
        if role == c.ZoomAccountRole.PARTICIPANT:
            pending = [i for i, source in held.items() if source is None]
            unavailable = dict.fromkeys(pending, PARTICIPANT_ROLE)
        elif account_id is None or zoom_meeting_id is None:
            pending = [i for i, source in held.items() if source is None]
            unavailable = dict.fromkeys(pending, "the day's meeting is no longer on Zoom")
        else:
            listed = await listed_instances(zoom, account_id, zoom_meeting_id)
            pending = [i for i in dict.fromkeys([*listed, *held]) if held.get(i) is None]
            for instance in pending:
                try:
                    rows = await report(zoom, account_id, instance)
                except ZoomNotFound as exc:
                    missing[instance] = reason_of(exc)
                    continue
                except (ZoomFatal, ReportUnavailable) as exc:
                    log.warning("zoom_report_unavailable", day_id=str(day_id), error=str(exc))
                    unavailable[instance] = reason_of(exc)
                    continue
                async with sessionmaker() as session, session.begin():
                    await store_report(session, day_id, instance, rows)
    except ZoomRetryable as exc:
        if await _retry(sessionmaker, settings, claimed, exc):
            return
        rest = f"Zoom did not answer in time: {reason_of(exc)}"
        await _finish(sessionmaker, claimed, {**unavailable, **dict.fromkeys(missing, rest)}, rest)
        return
    if missing and claimed.attempts < settings.zoom_reconcile_attempts:
        async with sessionmaker() as session, session.begin():
            await _settle(session, day_id, unavailable)
            delay = max(settings.zoom_reconcile_delay_seconds, 1.0) * 2 ** (claimed.attempts - 1)
            delay = min(delay, settings.zoom_retry_after_max_seconds)
            log.info("zoom_report_not_ready", day_id=str(day_id), delay=delay)
            await jobs.retry_later(session, claimed, delay, next(iter(missing.values())))
        return
    for instance, error in missing.items():
        log.warning("zoom_report_never_came", day_id=str(day_id), error=error)
        unavailable[instance] = (
            f"Zoom had no participants report after {claimed.attempts} attempts: {error}"
        )
    await _finish(sessionmaker, claimed, unavailable)


async def _retry(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: ZoomBridgeSettings,
    claimed: jobs.Claimed,
    exc: ZoomRetryable,
) -> bool:
    """R-ZOOM-8: Zoom slow, down or rate-limiting: try again later within the retry budget
    (a Retry-After wait does not count). False once the budget is spent."""
    asked = exc.status == 429 and exc.retry_after is not None
    delay = max(exc.min_delay, jobs.backoff(settings, claimed.attempts, exc.retry_after))
    async with sessionmaker() as session, session.begin():
        again = await jobs.retry_later(
            session,
            claimed,
            delay,
            str(exc),
            budget_seconds=settings.zoom_retry_budget_seconds,
            waited_as_asked=asked,
        )
    if again:
        log.info("zoom_reconcile_retry", day_id=str(claimed.day_id), delay=round(delay, 2))
    return again


async def _finish(
    sessionmaker: async_sessionmaker[AsyncSession],
    claimed: jobs.Claimed,
    unavailable: Mapping[str, str | None],
    rest: str | None = None,
) -> None:
    """Publish the day's final attendance and mark the instances it covers final. ``rest``:
    the reason for every instance still not reconciled (Zoom stopped answering)."""
    async with sessionmaker() as session, session.begin():
        meeting = await session.get(ZoomMeeting, claimed.day_id)
        if meeting is not None:
            await _settle(session, claimed.day_id, unavailable)
            held = await attendance.instances(session, claimed.day_id)
            if rest is not None:
                await _settle(
                    session,
                    claimed.day_id,
                    {i.instance_uuid: rest for i in held if i.source is None},
                )
            if not any(i.source is not None for i in held):
                # nothing names an instance: the webhooks' stays are all there is
                reason = rest or "Zoom listed no instance of the meeting"
                await _settle(session, claimed.day_id, {"": reason})
                held = await attendance.instances(session, claimed.day_id)
            now = utcnow()
            for instance in held:
                if instance.source is not None and instance.final_at is None:
                    instance.final_at = now
            await session.flush()
            await attendance.publish(session, meeting, final=True)
        await jobs.finish(session, claimed)


async def describe(
    session: AsyncSession, day_id: uuid.UUID
) -> tuple[attendance.Source | None, str | None]:
    """Where the day's final attendance came from (``report`` or ``webhooks``) and why the
    report was unavailable; (None, None) before it was reconciled."""
    return attendance.state_of(await attendance.instances(session, day_id))
